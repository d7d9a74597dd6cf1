//! The old middleware's HTTP contract, sent unchanged: the request and answer of
//! `POST /topics/:topic`, the `jq` paths operators read from `/health`, and a
//! clear JSON error for every kind of bad request.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::ponte::Ponte;
use support::{consume, placement};

const CONTRACT_REQUEST: &str = concat!(
    r#"{ "key": "NF-000001-001", "#,
    r#""data": { "documento": "000001", "serie": "001", "valor": 1500.00 } }"#
);

/// Looks up a `jq` path such as `.kafka.connected`.
fn jq<'a>(body: &'a Value, path: &str) -> &'a Value {
    path.trim_start_matches('.')
        .split('.')
        .fold(body, |value, field| &value[field])
}

fn start(env: &[(&str, &str)]) -> (support::Cluster, tempfile::TempDir, Ponte) {
    support::start_on_mock(env)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_contract_request_gets_the_contract_answer_and_its_exact_value() {
    let (cluster, _dir, ponte) = start(&[]);

    let (status, answer) = ponte
        .post_raw(
            "protheus-notas-fiscais",
            "application/json",
            CONTRACT_REQUEST.to_owned(),
        )
        .await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], json!(true));
    assert!(
        answer["message_id"]
            .as_str()
            .expect("id")
            .starts_with("protheus-notas-fiscais-")
    );
    assert!(
        answer["offsets"][0]["offset"].is_string(),
        "offset is a string"
    );
    assert!(
        answer["offsets"][0]["partition"].is_number(),
        "partition is a number"
    );
    assert_eq!(answer["offsets"][0]["error_code"], Value::Null);
    assert_eq!(answer["offsets"][0]["error"], Value::Null);
    assert_eq!(answer["acks"], json!("all"));
    assert_eq!(answer["confirmed"], json!(true));
    assert!(answer["duration_ms"].is_u64());

    let consumed = consume(
        &cluster.bootstrap_servers(),
        "protheus-notas-fiscais",
        1,
        Duration::from_secs(30),
    );
    assert_eq!(
        (consumed[0].partition, consumed[0].offset),
        placement(&answer)
    );
    assert_eq!(consumed[0].key.as_deref(), Some("NF-000001-001"));
    assert_eq!(
        consumed[0].value,
        r#"{ "documento": "000001", "serie": "001", "valor": 1500.00 }"#
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_protheus_invoice_fixture_is_published_unchanged() {
    let (cluster, _dir, ponte) = start(&[]);
    let fixture = include_str!("fixtures/nota-fiscal.json");
    let request: Value = serde_json::from_str(fixture).expect("fixture is JSON");

    let (status, answer) = ponte
        .post_raw(
            "protheus-notas-fiscais",
            "application/json; charset=utf-8",
            fixture.to_owned(),
        )
        .await;
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "protheus-notas-fiscais",
        1,
        Duration::from_secs(30),
    );

    assert_eq!(status, 200, "{answer}");
    assert_eq!(consumed[0].key.as_deref(), request["key"].as_str());
    let value: Value = serde_json::from_str(&consumed[0].value).expect("JSON value");
    assert_eq!(value, request["data"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_answers_every_path_operators_read() {
    let (_cluster, _dir, ponte) = start(&[]);
    for n in 0..3 {
        let (status, _) = ponte.post("saude", None, json!({ "n": n })).await;
        assert_eq!(status, 200);
    }

    // The answer comes before the outcome is written down: wait for both.
    let health = ponte
        .health_until(Duration::from_secs(10), |h| {
            h["status"] == json!("healthy") && h["outbox"]["pending"] == json!(0)
        })
        .await;

    assert_eq!(jq(&health, ".status"), &json!("healthy"));
    assert_eq!(jq(&health, ".kafka.connected"), &json!(true));
    assert_eq!(jq(&health, ".outbox.pending"), &json!(0));
    assert_eq!(jq(&health, ".outbox.enabled"), &json!(true));
    assert_eq!(jq(&health, ".kafka.acks"), &json!("all"));
    assert_eq!(jq(&health, ".metrics.totalReceived"), &json!(3));
    assert_eq!(jq(&health, ".metrics.totalSent"), &json!(3));
    for counter in ["totalFailed", "totalRetries", "totalDLQ"] {
        assert_eq!(health["metrics"][counter], json!(0), "{counter}");
    }
    assert!(jq(&health, ".kafka.brokers").is_array());
    assert!(jq(&health, ".uptime").is_u64());
    let timestamp = jq(&health, ".timestamp").as_str().expect("timestamp");
    assert!(humantime::parse_rfc3339(timestamp).is_ok(), "{timestamp}");
}

/// Sends one bad request and checks its status and JSON error body.
async fn assert_refused(
    ponte: &Ponte,
    topic: &str,
    content_type: &str,
    body: &str,
    status: u16,
) -> Value {
    let (got, answer) = ponte.post_raw(topic, content_type, body.to_owned()).await;
    assert_eq!(got, status, "{topic} {content_type} {body:.60}: {answer}");
    assert!(answer["error_code"].is_u64(), "{answer}");
    assert!(!answer["message"].as_str().expect("message").is_empty());
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn each_bad_request_gets_its_own_status_and_a_json_error_and_nothing_is_stored() {
    let (_cluster, _dir, ponte) = start(&[("PONTE_MAX_BODY_BYTES", "1024")]);
    let json_type = "application/json";

    let malformed = assert_refused(&ponte, "t", json_type, "{\"data\":", 400).await;
    let missing = assert_refused(&ponte, "t", json_type, r#"{"key":"k"}"#, 422).await;
    let key = assert_refused(&ponte, "t", json_type, r#"{"key":5,"data":{}}"#, 422).await;
    let media = assert_refused(&ponte, "t", "text/plain", r#"{"data":{}}"#, 415).await;
    let large = assert_refused(
        &ponte,
        "t",
        json_type,
        &format!(r#"{{"data":"{}"}}"#, "x".repeat(2000)),
        413,
    )
    .await;
    let slash = assert_refused(&ponte, "a%2Fb", json_type, r#"{"data":{}}"#, 400).await;
    let long = assert_refused(&ponte, &"x".repeat(250), json_type, r#"{"data":{}}"#, 400).await;
    assert_refused(&ponte, "t", "", r#"{"data":{}}"#, 415).await;

    assert!(
        malformed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not valid JSON")
    );
    assert!(
        missing["message"]
            .as_str()
            .unwrap_or_default()
            .contains("\"data\"")
    );
    assert!(
        key["message"]
            .as_str()
            .unwrap_or_default()
            .contains("\"key\"")
    );
    assert!(
        media["message"]
            .as_str()
            .unwrap_or_default()
            .contains("text/plain")
    );
    assert!(
        large["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1024")
    );
    assert!(
        slash["message"]
            .as_str()
            .unwrap_or_default()
            .contains("'/'")
    );
    assert!(long["message"].as_str().unwrap_or_default().contains("250"));

    let (status, _) = ponte
        .post("t", Some("k"), json!({ "still": "serving" }))
        .await;
    let (_, health) = ponte.get("/health").await;
    assert_eq!(status, 200, "ponte keeps serving after bad requests");
    assert_eq!(
        health["metrics"]["totalReceived"],
        json!(1),
        "only the good record was stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_methods_get_json_errors() {
    let (_cluster, _dir, ponte) = start(&[]);

    let (missing, missing_body) = ponte.get("/nothing/here").await;
    let (wrong_method, wrong_body) = ponte.get("/admin/topics").await;

    assert_eq!(missing, 404);
    assert_eq!(missing_body["error_code"], json!(40400));
    assert_eq!(wrong_method, 405);
    assert_eq!(wrong_body["error_code"], json!(40500));
}
