use super::*;

const LIMITS: BodyLimits = BodyLimits {
    max_key_bytes: 16,
    max_json_depth: 8,
};

fn v2(body: &str, format: V2Format) -> Result<Vec<Record>, Invalid> {
    v2_records("t", body.as_bytes(), format, None, LIMITS)
}

#[test]
fn v2_json_keys_and_values_reach_kafka_as_the_json_text_sent() {
    let records = v2(
        r#"{"records":[{"key":"somekey","value":{"foo": 1.50}},{"value":[1,2],"partition":1},{"value":53.5}]}"#,
        V2Format::Json,
    )
    .expect("valid");

    let keys: Vec<Option<&[u8]>> = records.iter().map(|r| r.key.as_deref()).collect();
    let values: Vec<&[u8]> = records.iter().filter_map(|r| r.value.as_deref()).collect();
    let partitions: Vec<Option<i32>> = records.iter().map(|r| r.partition).collect();
    assert_eq!(keys, [Some(b"\"somekey\"".as_slice()), None, None]);
    assert_eq!(values, [br#"{"foo": 1.50}"#.as_slice(), b"[1,2]", b"53.5"]);
    assert_eq!(partitions, [None, Some(1), None]);
}

#[test]
fn v2_binary_data_is_decoded_from_base64_and_null_values_are_tombstones() {
    let records = v2(
        r#"{"records":[{"key":"a2V5","value":"AP8="},{"key":"a2V5","value":null}]}"#,
        V2Format::Binary,
    )
    .expect("valid");

    assert_eq!(records[0].key.as_deref(), Some(b"key".as_slice()));
    assert_eq!(records[0].value.as_deref(), Some([0x00, 0xff].as_slice()));
    assert_eq!(records[1].value, None);
}

#[test]
fn one_bad_v2_record_refuses_the_request_and_names_the_record() {
    let refused = v2(
        r#"{"records":[{"value":"AA=="},{"value":"not base64!"}]}"#,
        V2Format::Binary,
    );
    match refused {
        Err(Invalid::RecordOfMany { at, reason }) => {
            assert_eq!(at, "records[1].value");
            assert!(reason.contains("base64"), "{reason}");
        }
        other => panic!("refused: {other:?}"),
    }
    assert!(matches!(
        v2(r#"{"records":[{"value":1,"partition":-1}]}"#, V2Format::Json),
        Err(Invalid::RecordOfMany { at, .. }) if at == "records[0].partition"
    ));
    assert!(matches!(
        v2(r#"{"records":[{"key":"far too long a key for the limit","value":1}]}"#, V2Format::Json),
        Err(Invalid::RecordOfMany { at, .. }) if at == "records[0].key"
    ));
    assert!(matches!(
        v2(r#"{"records":[]}"#, V2Format::Json),
        Err(Invalid::Body(_))
    ));
    assert!(matches!(
        v2(r#"{"records":{}}"#, V2Format::Json),
        Err(Invalid::Body(_))
    ));
    assert!(matches!(
        v2(r#"{"records":["#, V2Format::Json),
        Err(Invalid::MalformedJson(_))
    ));
}

#[test]
fn the_path_partition_applies_to_every_record_and_may_not_be_contradicted() {
    let body = br#"{"records":[{"value":1},{"value":2,"partition":2}]}"#;
    let records = v2_records("t", body, V2Format::Json, Some(2), LIMITS).expect("valid");
    assert!(records.iter().all(|r| r.partition == Some(2)));

    let contradicted = v2_records("t", body, V2Format::Json, Some(0), LIMITS);
    assert!(
        matches!(contradicted, Err(Invalid::RecordOfMany { at, .. }) if at == "records[1].partition")
    );
}

#[test]
fn schema_registry_requests_are_told_which_schema_is_missing() {
    let keys = br#"{"records":[{"key":1,"value":2}],"value_schema_id":1}"#;
    let values = br#"{"records":[{"value":2}]}"#;
    let complete = br#"{"records":[{"value":2}],"value_schema":"\"int\""}"#;

    assert_eq!(v2_missing_schema(keys), Ok(Some(Invalid::KeySchemaMissing)));
    assert_eq!(
        v2_missing_schema(values),
        Ok(Some(Invalid::ValueSchemaMissing))
    );
    assert_eq!(v2_missing_schema(complete), Ok(None));
}

#[test]
fn v2_bodies_are_told_from_middleware_bodies_by_shape() {
    assert!(looks_like_v2(br#"{"records":[{"value":1}]}"#));
    assert!(!looks_like_v2(br#"{"key":"k","data":{"records":1}}"#));
    assert!(!looks_like_v2(br#"{"records":[],"data":1}"#));
    assert!(!looks_like_v2(b"[1]"));
}

#[test]
fn v3_records_carry_typed_keys_and_values_headers_partition_and_timestamp() {
    let body = br#"{
        "partition_id": 1,
        "headers": [{"name": "Header-1", "value": "SGVhZGVyLTE="}, {"name": "none"}],
        "key": {"type": "BINARY", "data": "Zm9vYmFy"},
        "value": {"type": "JSON", "data": {"foo": "bar"}},
        "timestamp": "2021-02-05T19:14:42Z"
    }"#;
    let submission = v3_record("t", body, LIMITS).expect("valid");
    let record = submission.record;

    assert_eq!(record.key.as_deref(), Some(b"foobar".as_slice()));
    assert_eq!(
        record.value.as_deref(),
        Some(br#"{"foo": "bar"}"#.as_slice())
    );
    assert_eq!(record.partition, Some(1));
    assert_eq!(record.kafka_timestamp_ms, Some(1_612_552_482_000));
    assert_eq!(
        record.headers,
        [
            RecordHeader {
                name: "Header-1".to_owned(),
                value: Some(b"Header-1".to_vec()),
            },
            RecordHeader {
                name: "none".to_owned(),
                value: None,
            },
        ]
    );
    assert_eq!(submission.key_type, Some(V3Type::Binary));
    assert_eq!(submission.value_type, Some(V3Type::Json));
}

#[test]
fn v3_strings_are_sent_as_their_text_and_absent_parts_as_null() {
    let body = br#"{"value": {"type": "STRING", "data": "ol\u00e1"}}"#;
    let submission = v3_record("t", body, LIMITS).expect("valid");

    assert_eq!(submission.record.value.as_deref(), Some("olá".as_bytes()));
    assert_eq!(submission.record.key, None);
    assert_eq!(submission.key_type, None);
    assert_eq!(submission.record.partition, None);
}

#[test]
fn v3_schema_registry_types_and_untyped_data_are_refused_with_a_reason() {
    let refusal = |body: &str| match v3_record("t", body.as_bytes(), LIMITS) {
        Err(Invalid::Record { at, reason }) => format!("{at}: {reason}"),
        other => panic!("refused: {other:?}"),
    };

    assert!(refusal(r#"{"value":{"type":"AVRO","data":1}}"#).contains("schema registry"));
    assert!(refusal(r#"{"value":{"schema_id":3,"data":1}}"#).starts_with("value: schema"));
    assert!(refusal(r#"{"key":{"data":"x"}}"#).starts_with("key: \"type\" is required"));
    assert!(refusal(r#"{"value":{"type":"STRING","data":1}}"#).contains("JSON string"));
    assert!(
        refusal(r#"{"value":{"type":"JSON","data":1},"timestamp":"yesterday"}"#)
            .starts_with("timestamp")
    );
    assert!(refusal(r#"{"headers":[{"name":"h","value":"%%"}]}"#).starts_with("headers[0].value"));
}

#[test]
fn a_batch_reports_each_entry_under_its_id() {
    let body = br#"{"entries":[
        {"id":"1","value":{"type":"JSON","data":1}},
        {"id":"2","value":{"type":"BINARY","data":"***"}},
        {"id":3,"value":{"type":"STRING","data":"x"}}
    ]}"#;
    let entries = v3_batch("t", body, LIMITS).expect("valid batch");

    let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
    let valid: Vec<bool> = entries.iter().map(|(_, parsed)| parsed.is_ok()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(valid, [true, false, true]);
}

#[test]
fn a_batch_with_missing_or_repeated_ids_is_refused() {
    let repeated = br#"{"entries":[{"id":"a"},{"id":"a"}]}"#;
    let missing = br#"{"entries":[{"value":{"type":"JSON","data":1}}]}"#;

    assert!(
        matches!(v3_batch("t", repeated, LIMITS), Err(Invalid::Record { at, .. }) if at == "entries[1].id")
    );
    assert!(
        matches!(v3_batch("t", missing, LIMITS), Err(Invalid::Record { at, .. }) if at == "entries[0].id")
    );
    assert!(matches!(
        v3_batch("t", br#"{"entries":[]}"#, LIMITS),
        Err(Invalid::Body(_))
    ));
}

#[test]
fn rfc3339_times_with_fractions_and_offsets_are_read() {
    assert_eq!(rfc3339_ms("2021-02-05T19:14:42Z"), Some(1_612_552_482_000));
    assert_eq!(
        rfc3339_ms("2021-02-05T19:14:42.250Z"),
        Some(1_612_552_482_250)
    );
    assert_eq!(
        rfc3339_ms("2021-02-05T20:14:42+01:00"),
        Some(1_612_552_482_000)
    );
    assert_eq!(
        rfc3339_ms("2021-02-05T16:14:42-03:00"),
        Some(1_612_552_482_000)
    );
    assert_eq!(rfc3339_ms("2021-02-05"), None);
    assert_eq!(rfc3339_ms("2021-02-05T19:14:42é"), None);
    assert_eq!(rfc3339_ms(""), None);
}
