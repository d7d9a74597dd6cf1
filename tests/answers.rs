//! Answers that never invite a duplicate: idempotency keys, asynchronous
//! acknowledgement, a full outbox, and the status and replay API.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::ponte::Ponte;
use support::{consume, consume_until, message_ids, placement};

fn start(env: &[(&str, &str)]) -> (support::Cluster, tempfile::TempDir, Ponte) {
    support::start_on_mock(env)
}

fn invoice(n: u32) -> Value {
    json!({ "key": "NF-000123-001", "data": { "documento": "000123", "valor": n } })
}

async fn post_keyed(ponte: &Ponte, key: &str, body: &Value) -> (u16, Value) {
    let (status, _, answer) = ponte
        .send("/topics/notas", body, &[("Idempotency-Key", key)])
        .await;
    (status, answer)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_idempotency_key_gets_the_first_answer_and_makes_no_second_record() {
    let (cluster, _dir, ponte) = start(&[]);

    let (first_status, first) = post_keyed(&ponte, "SF2-01-000123-001", &invoice(1)).await;
    let (again_status, again) = post_keyed(&ponte, "SF2-01-000123-001", &invoice(1)).await;
    let (other_status, other) = post_keyed(&ponte, "SF2-01-000123-001", &invoice(2)).await;
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "notas",
        2,
        Duration::from_secs(3),
    );

    assert_eq!((first_status, again_status), (200, 200));
    assert_eq!(again["message_id"], first["message_id"]);
    assert_eq!(placement(&again), placement(&first));
    assert_eq!(again["repeated"], json!(true));
    assert_eq!(other_status, 409, "same key, different record: {other}");
    assert_eq!(other["error_code"], json!(40901));
    assert_eq!(consumed.len(), 1, "one record in Kafka");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_posted_concurrently_makes_one_record() {
    let (cluster, _dir, ponte) = start(&[]);

    let body = invoice(7);
    let posts = (0..10).map(|_| post_keyed(&ponte, "concorrente-1", &body));
    let answers = futures::future::join_all(posts).await;
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "notas",
        2,
        Duration::from_secs(3),
    );

    let ids: std::collections::HashSet<&str> = answers
        .iter()
        .map(|(status, answer)| {
            assert!(*status == 200 || *status == 202, "{status}: {answer}");
            answer["message_id"].as_str().expect("id")
        })
        .collect();
    assert_eq!(ids.len(), 1, "every answer names the same record");
    assert_eq!(consumed.len(), 1, "one record in Kafka");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_is_remembered_across_a_restart() {
    let (cluster, _dir, mut ponte) = start(&[]);
    let (_, first) = post_keyed(&ponte, "reinicio-1", &invoice(3)).await;
    // Stop only once the outcome is written down, so the test is about the key and
    // not about the crash window (where the record may be published again).
    ponte
        .health_until(Duration::from_secs(10), |h| {
            h["outbox"]["pending"] == json!(0)
        })
        .await;

    ponte.restart();
    let (status, again) = post_keyed(&ponte, "reinicio-1", &invoice(3)).await;
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "notas",
        2,
        Duration::from_secs(3),
    );

    assert_eq!(status, 200);
    assert_eq!(again["message_id"], first["message_id"]);
    assert_eq!(placement(&again), placement(&first));
    assert_eq!(consumed.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_id_in_the_body_is_the_record_id_and_its_idempotency_key() {
    let (cluster, _dir, ponte) = start(&[]);
    let body = json!({ "message_id": "NF-000123-001-01", "key": "k", "data": { "a": 1 } });

    let (_, _, first) = ponte.send("/topics/notas", &body, &[]).await;
    let (_, _, again) = ponte.send("/topics/notas", &body, &[]).await;
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "notas",
        2,
        Duration::from_secs(3),
    );

    assert_eq!(first["message_id"], json!("NF-000123-001-01"));
    assert_eq!(again["message_id"], json!("NF-000123-001-01"));
    assert_eq!(message_ids(&consumed), ["NF-000123-001-01"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn asking_for_an_asynchronous_answer_gets_202_after_the_commit() {
    let (cluster, _dir, ponte) = start(&[]);

    let (by_header, headers, answer) = ponte
        .send(
            "/topics/assincrono",
            &invoice(1),
            &[("Prefer", "respond-async")],
        )
        .await;
    let (by_query, _, queried) = ponte
        .send("/topics/assincrono?async=true", &invoice(2), &[])
        .await;
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "assincrono",
        2,
        Duration::from_secs(30),
    );

    assert_eq!((by_header, by_query), (202, 202));
    assert_eq!(headers["preference-applied"], "respond-async");
    let status_url = format!("/messages/{}", answer["message_id"].as_str().expect("id"));
    assert_eq!(answer["status_url"], json!(status_url));
    assert_eq!(headers["location"], status_url.as_str());
    assert_eq!(answer["confirmed"], json!(false));
    assert_eq!(queried["confirmed"], json!(false));
    assert_eq!(consumed.len(), 2, "both are delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_outbox_answers_503_with_retry_after_and_keeps_what_it_stored() {
    let (cluster, _dir, ponte) = start(&[
        ("PONTE_OUTBOX_MAX_UNSENT", "3"),
        ("PONTE_ACK_TIMEOUT_MS", "100"),
        ("PONTE_RETRY_BACKOFF_INITIAL_MS", "100"),
        ("PONTE_RETRY_BACKOFF_MAX_MS", "300"),
        ("PONTE_KAFKA_MESSAGE_TIMEOUT_MS", "1000"),
    ]);
    cluster.broker_down(1).expect("broker down");

    let mut stored = Vec::new();
    for n in 0..3 {
        let (status, _, answer) = ponte.send("/topics/cheio", &invoice(n), &[]).await;
        assert_eq!(status, 202, "{answer}");
        stored.push(answer["message_id"].as_str().expect("id").to_owned());
    }
    let (full, headers, refusal) = ponte.send("/topics/cheio", &invoice(9), &[]).await;
    cluster.broker_up(1).expect("broker up");
    let consumed = consume_until(
        &cluster.bootstrap_servers(),
        "cheio",
        Duration::from_secs(60),
        |r| r.len() >= 3,
    );

    assert_eq!(full, 503, "{refusal}");
    assert_eq!(headers["retry-after"], "1");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not stored")
    );
    assert_eq!(message_ids(&consumed), stored);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_api_shows_finds_lists_and_refuses_what_it_cannot_retry() {
    let (_cluster, _dir, ponte) = start(&[]);
    let (_, delivered) = ponte.post("estado", Some("k"), json!({ "a": 1 })).await;
    let id = delivered["message_id"].as_str().expect("id");
    // The outbox learns of the acknowledgement a commit after the client does.
    ponte
        .health_until(Duration::from_secs(10), |h| {
            h["outbox"]["pending"] == json!(0)
        })
        .await;

    let (shown_status, shown) = ponte.get(&format!("/messages/{id}")).await;
    let (missing_status, missing) = ponte.get("/messages/nada-1").await;
    let (_, listed) = ponte
        .get("/messages?status=sent&topic=estado&limit=10")
        .await;
    let (bad_status, bad) = ponte.get("/messages?status=perdido").await;
    let (retry_status, _, retry) = ponte
        .send(&format!("/messages/{id}/retry"), &json!({}), &[])
        .await;

    assert_eq!(shown_status, 200);
    assert_eq!(shown["status"], json!("sent"));
    assert_eq!((shown["partition"].as_i64(), shown["offset"].as_i64()), {
        let (p, o) = placement(&delivered);
        (Some(i64::from(p)), Some(o))
    });
    assert_eq!(shown["attempts"], json!(0));
    assert!(shown["sent_at"].is_i64());
    assert_eq!(
        (missing_status, &missing["error_code"]),
        (404, &json!(40404))
    );
    assert_eq!(listed["messages"][0]["message_id"], json!(id));
    assert_eq!(listed["next"], Value::Null);
    assert_eq!((bad_status, &bad["error_code"]), (400, &json!(40005)));
    assert_eq!((retry_status, &retry["error_code"]), (409, &json!(40902)));
}
