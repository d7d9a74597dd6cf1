use super::*;

#[test]
fn topic_names_of_allowed_characters_pass() {
    for name in [
        "protheus-notas-fiscais",
        "a",
        "A.b_c-9",
        "...",
        &"x".repeat(249),
    ] {
        assert_eq!(topic_name(name), Ok(()), "{name}");
    }
}

#[test]
fn topic_names_breaking_kafka_rules_are_refused() {
    assert_eq!(topic_name(""), Err(Invalid::TopicEmpty));
    assert_eq!(topic_name("."), Err(Invalid::TopicReserved));
    assert_eq!(topic_name(".."), Err(Invalid::TopicReserved));
    assert_eq!(
        topic_name(&"x".repeat(250)),
        Err(Invalid::TopicTooLong { length: 250 })
    );
    assert_eq!(
        topic_name("a/b"),
        Err(Invalid::TopicCharacter { found: '/' })
    );
    assert_eq!(
        topic_name("a b"),
        Err(Invalid::TopicCharacter { found: ' ' })
    );
    assert_eq!(
        topic_name("nota\u{e7}"),
        Err(Invalid::TopicCharacter { found: '\u{e7}' })
    );
    assert_eq!(
        topic_name("a\nb"),
        Err(Invalid::TopicCharacter { found: '\n' })
    );
}

#[test]
fn data_reaches_the_record_byte_for_byte() {
    let body = br#"{"key":"NF-1","data":{"valor": 1500.00, "id": 12345678901234567890}}"#;
    let record = middleware_record("t".to_owned(), body)
        .expect("valid body")
        .record;

    assert_eq!(
        record.value.as_deref(),
        Some(br#"{"valor": 1500.00, "id": 12345678901234567890}"#.as_slice())
    );
    assert_eq!(record.key.as_deref(), Some(b"NF-1".as_slice()));
    assert_eq!(record.topic, "t");
}

#[test]
fn key_may_be_absent_or_null() {
    let absent = middleware_record("t".to_owned(), br#"{"data":1}"#)
        .expect("valid")
        .record;
    let null = middleware_record("t".to_owned(), br#"{"data":1,"key":null}"#).expect("valid");
    let null = null.record;

    assert_eq!(absent.key, None);
    assert_eq!(null.key, None);
}

#[test]
fn escaped_keys_are_decoded() {
    let record = middleware_record("t".to_owned(), br#"{"data":1,"key":"a\"b\u00e7"}"#);
    assert_eq!(
        record.expect("valid").record.key.as_deref(),
        Some("a\"b\u{e7}".as_bytes())
    );
}

/// Tells whether an error is the one a case expects.
type Expected = fn(&Invalid) -> bool;

#[test]
fn each_malformed_body_names_its_problem() {
    let cases: [(&[u8], Expected); 7] = [
        (b"{\"data\":", |e| matches!(e, Invalid::MalformedJson(_))),
        (b"not json", |e| matches!(e, Invalid::MalformedJson(_))),
        (b"[1,2]", |e| matches!(e, Invalid::WrongShape(_))),
        (b"{\"key\":\"k\"}", |e| *e == Invalid::MissingData),
        (b"{\"data\":null}", |e| *e == Invalid::MissingData),
        (b"{\"data\":1,\"key\":7}", |e| {
            *e == Invalid::KeyNotString { found: "a number" }
        }),
        (b"{\"data\":1,\"key\":{}}", |e| {
            *e == Invalid::KeyNotString { found: "an object" }
        }),
    ];
    for (body, expected) in cases {
        let err = middleware_record("t".to_owned(), body).expect_err("must be refused");
        assert!(
            expected(&err),
            "{}: got {err:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn invalid_utf8_is_malformed_json() {
    let err = middleware_record("t".to_owned(), b"{\"data\":\"\xff\"}").expect_err("refused");
    assert!(matches!(err, Invalid::MalformedJson(_)), "{err:?}");
}

#[test]
fn a_message_id_in_the_body_becomes_the_record_id() {
    let body = br#"{"data":1,"message_id":"NF-000123-001"}"#;
    let submission = middleware_record("t".to_owned(), body).expect("valid");

    assert_eq!(submission.record.message_id, "NF-000123-001");
    assert!(submission.client_message_id);
}

#[test]
fn unusable_message_ids_are_refused() {
    for body in [
        &br#"{"data":1,"message_id":""}"#[..],
        br#"{"data":1,"message_id":"has space"}"#,
        br#"{"data":1,"message_id":7}"#,
    ] {
        let refused = middleware_record("t".to_owned(), body).expect_err("refused");
        assert_eq!(
            refused,
            Invalid::BadMessageId,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(!client_id(&"x".repeat(256)));
    assert!(client_id(&"x".repeat(255)));
}

#[test]
fn moments_are_milliseconds_or_rfc3339_text() {
    assert_eq!(moment_ms("1729504200000"), Some(1_729_504_200_000));
    assert_eq!(moment_ms("2024-10-21T10:30:00Z"), Some(1_729_506_600_000));
    assert_eq!(moment_ms("yesterday"), None);
}

#[test]
fn nesting_is_measured_outside_strings_only() {
    assert_eq!(nesting_depth(br#"{"data":1}"#), 1);
    assert_eq!(nesting_depth(br#"{"data":[[{"a":[]}]]}"#), 5);
    assert_eq!(nesting_depth(br#"{"data":"[[[[{{{{","k":"\"[["}"#), 1);
}

#[test]
fn keys_and_nesting_beyond_the_limits_are_refused() {
    let limits = BodyLimits {
        max_key_bytes: 4,
        max_json_depth: 3,
    };
    let long = middleware_record("t".to_owned(), br#"{"key":"12345","data":1}"#).expect("parsed");
    let deep_body = br#"{"data":[[[1]]]}"#;
    let deep = middleware_record("t".to_owned(), deep_body).expect("parsed");

    assert_eq!(
        within_limits(br#"{"key":"12345","data":1}"#, &long.record, limits),
        Err(Invalid::KeyTooLong {
            length: 5,
            limit: 4
        })
    );
    assert_eq!(
        within_limits(deep_body, &deep.record, limits),
        Err(Invalid::TooDeep { limit: 3 })
    );
}

#[test]
fn replay_bodies_take_optional_topic_and_times() {
    assert_eq!(replay_request(b"  "), Ok(ReplayRequest::default()));
    let parsed = replay_request(br#"{"topic":"t","since":"2024-10-21T10:30:00Z","until":5}"#);
    assert_eq!(
        parsed,
        Ok(ReplayRequest {
            topic: Some("t".to_owned()),
            since_ms: Some(1_729_506_600_000),
            until_ms: Some(5),
        })
    );
    assert!(matches!(
        replay_request(br#"{"since":"yesterday"}"#),
        Err(Invalid::Body(_))
    ));
    assert!(matches!(
        replay_request(br#"{"data":1}"#),
        Err(Invalid::Body(_))
    ));
}

#[test]
fn create_topic_bodies_take_the_middleware_fields_and_a_valid_name() {
    let parsed = create_topic_request(br#"{"topic":"t","partitions":3,"replicationFactor":2}"#);
    assert_eq!(
        parsed,
        Ok(CreateTopicRequest {
            topic: "t".to_owned(),
            partitions: 3,
            replication_factor: 2,
        })
    );
    assert_eq!(
        create_topic_request(br#"{"topic":"t"}"#).map(|r| r.partitions),
        Ok(1)
    );
    assert!(matches!(
        create_topic_request(br#"{"topic":"a/b"}"#),
        Err(Invalid::TopicCharacter { .. })
    ));
    assert!(matches!(create_topic_request(b"[]"), Err(Invalid::Body(_))));
}
