//! What operators watch and touch: the middleware's `/metrics` JSON, Prometheus
//! metrics that agree with the outbox and Kafka, liveness and readiness, topic
//! administration against Tansu, and retention.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::brokers::Tansu;
use support::ponte::Ponte;
use support::{consume, sqlite3};

fn start(env: &[(&str, &str)]) -> (support::Cluster, tempfile::TempDir, Ponte) {
    support::start_on_mock(env)
}

async fn post_some(ponte: &Ponte, topic: &str, count: usize) {
    for n in 0..count {
        let (status, answer) = ponte.post(topic, Some("k"), json!({ "n": n })).await;
        assert_eq!(status, 200, "{answer}");
    }
}

/// Scrapes `/metrics` as Prometheus does and parses it with the official Python
/// client's parser; returns each sample by name and sorted labels.
async fn scrape(ponte: &Ponte) -> HashMap<String, f64> {
    let accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3";
    let text = reqwest::Client::new()
        .get(ponte.url("/metrics"))
        .header("accept", accept)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let mut parser = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/prometheus.py"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client (scripts/test installs it)");
    let mut stdin = parser.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, text.as_bytes()).expect("write");
    drop(stdin);
    let output = parser.wait_with_output().expect("parser runs");
    assert!(
        output.status.success(),
        "not valid Prometheus text:\n{text}"
    );
    serde_json::from_slice(&output.stdout).expect("samples as JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_json_answers_every_path_operators_read() {
    let (_cluster, _dir, ponte) = start(&[]);
    post_some(&ponte, "medidas", 4).await;
    ponte
        .health_until(Duration::from_secs(10), |h| {
            h["outbox"]["pending"] == json!(0)
        })
        .await;

    let (status, metrics) = ponte.get("/metrics").await;

    assert_eq!(status, 200);
    assert_eq!(metrics["metrics"]["totalReceived"], json!(4));
    assert_eq!(metrics["metrics"]["totalSent"], json!(4));
    for counter in ["totalFailed", "totalRetries", "totalDLQ"] {
        assert_eq!(metrics["metrics"][counter], json!(0), "{counter}");
    }
    assert_eq!(
        metrics["outbox"],
        json!({"total": 4, "pending": 0, "sent": 4, "failed": 0, "dlq": 0})
    );
    assert_eq!(metrics["middleware"]["connected"], json!(true));
    assert!(metrics["middleware"]["uptime"].is_u64());
    assert!(metrics["middleware"]["memory"]["heapUsed"].as_u64() > Some(0));
    assert!(metrics["kafka"]["brokers"].is_array());
    assert!(metrics["kafka"].get("clusterId").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_metrics_agree_with_the_outbox_and_kafka() {
    let (cluster, _dir, ponte) = start(&[]);
    post_some(&ponte, "prometheus", 6).await;
    ponte
        .health_until(Duration::from_secs(10), |h| {
            h["outbox"]["pending"] == json!(0)
        })
        .await;

    let samples = scrape(&ponte).await;
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "prometheus",
        6,
        Duration::from_secs(30),
    );
    let rows = sqlite3(
        &ponte.outbox_path(),
        "SELECT count(*) AS n FROM outbox WHERE status = 'sent'",
    );

    let sample = |key: &str| {
        samples
            .get(key)
            .copied()
            .unwrap_or_else(|| panic!("no {key} in {samples:?}"))
    };
    assert_eq!(sample("ponte_records_received_total{}"), 6.0);
    assert!(sample("ponte_outbox_commit_duration_seconds_count{}") >= 1.0);
    assert_eq!(sample("ponte_records_sent_total{}"), consumed.len() as f64);
    assert_eq!(
        sample("ponte_outbox_records{status=sent}"),
        rows[0]["n"].as_f64().expect("n")
    );
    assert_eq!(sample("ponte_outbox_records{status=pending}"), 0.0);
    assert_eq!(
        sample("ponte_kafka_deliveries_total{result=sent,topic=prometheus}"),
        6.0
    );
    assert_eq!(
        sample("ponte_http_requests_total{method=POST,route=/topics/{topic},status=200}"),
        6.0
    );
    assert_eq!(sample("ponte_kafka_connected{}"), 1.0);
    assert_eq!(sample("ponte_outbox_oldest_unsent_age_seconds{}"), 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn ponte_is_ready_once_kafka_answers_without_waiting_for_a_statistics_report() {
    // Statistics an hour apart: readiness can only come from ponte asking Kafka.
    let (_cluster, _dir, ponte) = start(&[("PONTE_KAFKA_STATISTICS_INTERVAL_MS", "3600000")]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut answer = (0, Value::Null);
    while answer.0 != 200 && tokio::time::Instant::now() < deadline {
        answer = ponte.get("/health/ready").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer.0, 200, "{}", answer.1);
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_turns_503_with_a_reason_when_the_broker_stops_and_200_when_it_returns() {
    let (cluster, _dir, ponte) = start(&[]);
    let patience = Duration::from_secs(15);
    let ready = |expected: u16| {
        let ponte = &ponte;
        async move {
            let deadline = tokio::time::Instant::now() + patience;
            loop {
                let (status, body) = ponte.get("/health/ready").await;
                if status == expected || tokio::time::Instant::now() >= deadline {
                    return (status, body);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    let (live, _) = ponte.get("/health/live").await;
    let (up, _) = ready(200).await;
    cluster.broker_down(1).expect("broker down");
    let (down, reasons) = ready(503).await;
    cluster.broker_up(1).expect("broker up");
    let (back, _) = ready(200).await;

    assert_eq!((live, up, down, back), (200, 200, 503, 200));
    assert_eq!(reasons["reasons"], json!(["kafka is unreachable"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_are_created_described_listed_and_deleted_on_tansu() {
    let tansu = Tansu::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let ponte = Ponte::start(&tansu.bootstrap(), dir.path(), &[]);
    let spec =
        json!({ "topic": "protheus-notas-fiscais", "partitions": 3, "replicationFactor": 1 });

    let (created, _, _) = ponte.send("/admin/topics", &spec, &[]).await;
    let (again, _, exists) = ponte.send("/admin/topics", &spec, &[]).await;
    let (_, listed) = ponte.get("/topics").await;
    let (described_status, described) = ponte.get("/topics/protheus-notas-fiscais").await;
    let (_, brokers) = ponte.get("/brokers").await;
    let (bad, _, invalid) = ponte
        .send("/admin/topics", &json!({ "topic": "a/b" }), &[])
        .await;
    let deleted = reqwest::Client::new()
        .delete(ponte.url("/admin/topics/protheus-notas-fiscais"))
        .send()
        .await
        .expect("delete")
        .status();
    let (gone, _) = ponte.get("/topics/protheus-notas-fiscais").await;

    assert_eq!(created, 201);
    assert_eq!(
        (again, &exists["error_code"]),
        (409, &json!(40903)),
        "{exists}"
    );
    assert!(
        listed
            .as_array()
            .expect("array")
            .contains(&json!("protheus-notas-fiscais"))
    );
    assert_eq!(described_status, 200);
    let partitions = described["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 3);
    // The REST Proxy's v2 shape: each replica names its broker and whether it
    // leads and is in sync.
    assert!(partitions.iter().all(|p| {
        let leader = &p["leader"];
        p["replicas"].as_array().is_some_and(|replicas| {
            replicas
                .iter()
                .any(|r| r["broker"] == *leader && r["leader"] == json!(true))
                && replicas.iter().all(|r| r["in_sync"].is_boolean())
        })
    }));
    assert!(!brokers["brokers"].as_array().expect("ids").is_empty());
    assert_eq!((bad, &invalid["error_code"]), (400, &json!(40002)));
    assert_eq!(deleted.as_u16(), 200);
    assert_eq!(gone, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_old_sent_rows_and_keeps_dead_letters() {
    let (_cluster, _dir, ponte) = start(&[("PONTE_RETENTION_SENT_MS", "1")]);
    post_some(&ponte, "retencao", 5).await;
    let db = ponte.outbox_path();
    sqlite3(&db, "UPDATE outbox SET status = 'dlq' WHERE id = 1");

    let mut remaining = Value::Null;
    for _ in 0..150 {
        remaining = json!(sqlite3(
            &db,
            "SELECT status, count(*) AS n FROM outbox GROUP BY status"
        ));
        if remaining == json!([{"status": "dlq", "n": 1}]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, metrics) = ponte.get("/metrics").await;

    assert_eq!(
        remaining,
        json!([{"status": "dlq", "n": 1}]),
        "sent rows deleted, dlq kept"
    );
    assert_eq!(metrics["outbox"]["total"], json!(1));
}
