//! Records posted over HTTP reach real Kafka-protocol brokers exactly as the HTTP
//! answer said: value, key, headers, partition and offset.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use support::brokers::Tansu;
use support::ponte::Ponte;
use support::{Consumed, consume, placement};

const PATIENCE: Duration = Duration::from_secs(30);

/// Posts `count` records with a few distinct keys and returns each answer's body
/// together with the data that was sent.
async fn post_records(ponte: &Ponte, topic: &str, count: usize) -> Vec<(Value, String, Value)> {
    let mut sent = Vec::new();
    for n in 0..count {
        let key = format!("NF-{:06}-001", n % 5);
        let data = json!({ "documento": format!("{n:06}"), "serie": "001", "valor": 1500.00 });
        let (status, answer) = ponte.post(topic, Some(&key), data.clone()).await;
        assert_eq!(status, 200, "answer: {answer}");
        sent.push((answer, key, data));
    }
    sent
}

/// Checks every posted record against what the consumer read back.
fn assert_delivered_as_answered(sent: &[(Value, String, Value)], consumed: &[Consumed]) {
    assert_eq!(consumed.len(), sent.len(), "every record consumed once");
    let by_place: HashMap<(i32, i64), &Consumed> = consumed
        .iter()
        .map(|c| ((c.partition, c.offset), c))
        .collect();

    for (answer, key, data) in sent {
        let record = by_place
            .get(&placement(answer))
            .unwrap_or_else(|| panic!("no record at the answered place: {answer}"));
        assert_eq!(record.key.as_deref(), Some(key.as_str()));
        assert_eq!(
            serde_json::from_str::<Value>(&record.value).expect("JSON value"),
            *data
        );
        assert_eq!(record.header("message-id"), answer["message_id"].as_str());
        assert_eq!(record.header("source"), Some("ponte"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn records_posted_to_the_mock_cluster_are_consumed_where_the_answer_said() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("temp dir");
    let ponte = Ponte::start(&cluster.bootstrap_servers(), dir.path(), &[]);

    let sent = post_records(&ponte, "notas-fiscais", 20).await;
    let consumed = consume(&cluster.bootstrap_servers(), "notas-fiscais", 20, PATIENCE);

    assert_delivered_as_answered(&sent, &consumed);
}

#[tokio::test(flavor = "multi_thread")]
async fn records_posted_to_tansu_are_consumed_where_the_answer_said() {
    let tansu = Tansu::start();
    tansu.create_topic("notas-fiscais", 3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ponte = Ponte::start(&tansu.bootstrap(), dir.path(), &[]);

    let sent = post_records(&ponte, "notas-fiscais", 20).await;
    let consumed = consume(&tansu.bootstrap(), "notas-fiscais", 20, PATIENCE);

    assert_delivered_as_answered(&sent, &consumed);
}

#[tokio::test(flavor = "multi_thread")]
async fn records_with_the_same_key_keep_their_order_and_partition() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("temp dir");
    let ponte = Ponte::start(&cluster.bootstrap_servers(), dir.path(), &[]);

    let posts = (0..30).map(|n| ponte.post("pedidos", Some("PED-1"), json!({ "seq": n })));
    let answers = futures::future::join_all(posts).await;
    let consumed = consume(&cluster.bootstrap_servers(), "pedidos", 30, PATIENCE);

    let partitions: std::collections::HashSet<i32> = answers
        .iter()
        .map(|(_, answer)| placement(answer).0)
        .collect();
    assert_eq!(partitions.len(), 1, "one key, one partition");
    let mut by_offset = consumed;
    by_offset.sort_by_key(|c| c.offset);
    let ids_in_kafka: Vec<&str> = by_offset
        .iter()
        .filter_map(|c| c.header("message-id"))
        .collect();
    let mut ids_by_answer: Vec<(i64, &str)> = answers
        .iter()
        .map(|(_, a)| (placement(a).1, a["message_id"].as_str().expect("id")))
        .collect();
    ids_by_answer.sort();
    let answered: Vec<&str> = ids_by_answer.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids_in_kafka, answered);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_outbox_the_answer_waits_for_kafka_only() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("temp dir");
    let ponte = Ponte::start(
        &cluster.bootstrap_servers(),
        dir.path(),
        &[("ENABLE_OUTBOX", "false")],
    );

    let sent = post_records(&ponte, "direto", 5).await;
    let consumed = consume(&cluster.bootstrap_servers(), "direto", 5, PATIENCE);
    let (_, health) = ponte.get("/health").await;

    assert_delivered_as_answered(&sent, &consumed);
    assert_eq!(health["outbox"]["enabled"], json!(false));
    assert!(!ponte.outbox_path().exists(), "no outbox file is created");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_kafka_gets_202_and_the_record_still_arrives() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("temp dir");
    let ponte = Ponte::start(
        &cluster.bootstrap_servers(),
        dir.path(),
        &[("PONTE_ACK_TIMEOUT_MS", "300")],
    );
    // Let the producer learn the topic first, so the delay below slows only the send.
    let (status, _) = ponte.post("lento", None, json!({ "warm": true })).await;
    assert_eq!(status, 200);

    cluster
        .broker_round_trip_time(1, Duration::from_millis(1500))
        .expect("inject delay");
    let (status, answer) = ponte
        .post("lento", Some("k"), json!({ "slow": true }))
        .await;
    cluster
        .broker_round_trip_time(1, Duration::ZERO)
        .expect("remove delay");

    assert_eq!(status, 202, "answer: {answer}");
    assert_eq!(answer["confirmed"], json!(false));
    assert_eq!(answer["offsets"], json!([]));
    let consumed = consume(&cluster.bootstrap_servers(), "lento", 2, PATIENCE);
    let ids: Vec<Option<&str>> = consumed.iter().map(|c| c.header("message-id")).collect();
    assert!(
        ids.contains(&answer["message_id"].as_str()),
        "202 record reached Kafka"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_follows_the_broker_down_and_up() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("temp dir");
    let ponte = Ponte::start(&cluster.bootstrap_servers(), dir.path(), &[]);
    let patience = Duration::from_secs(15);

    let up = ponte
        .health_until(patience, |h| h["kafka"]["connected"] == json!(true))
        .await;
    cluster.broker_down(1).expect("broker down");
    let down = ponte
        .health_until(patience, |h| h["kafka"]["connected"] == json!(false))
        .await;
    let (down_status, _) = ponte.get("/health").await;
    cluster.broker_up(1).expect("broker up");
    let back = ponte
        .health_until(patience, |h| h["kafka"]["connected"] == json!(true))
        .await;

    assert_eq!(up["status"], json!("healthy"));
    assert_eq!(down["kafka"]["connected"], json!(false));
    assert_eq!(down["status"], json!("unhealthy"));
    assert_eq!(down_status, 503);
    assert_eq!(back["status"], json!("healthy"));
}
