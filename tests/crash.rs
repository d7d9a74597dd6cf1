//! ponte killed with SIGKILL while clients post loses nothing it acknowledged.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use serde_json::json;
use support::consume_until;
use support::ponte::{Ponte, try_post};

const CLIENTS: usize = 8;

/// Posts from `CLIENTS` concurrent clients until ponte stops answering; returns
/// the message ids that were answered 200 or 202.
async fn post_until_refused(url: String) -> Vec<String> {
    let clients = (0..CLIENTS).map(|client| {
        let url = url.clone();
        tokio::spawn(async move {
            let key = format!("client-{client}");
            let mut acknowledged = Vec::new();
            for n in 0.. {
                let Some((status, answer)) = try_post(&url, &key, json!({ "n": n })).await else {
                    break;
                };
                assert!(status == 200 || status == 202, "{status}: {answer}");
                acknowledged.push(answer["message_id"].as_str().expect("id").to_owned());
            }
            acknowledged
        })
    });
    let mut all = Vec::new();
    for client in futures::future::join_all(clients).await {
        all.extend(client.expect("client task"));
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_record_reaches_kafka_after_a_sigkill_and_restart() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ponte = Ponte::start(&bootstrap, dir.path(), &[("PONTE_ACK_TIMEOUT_MS", "50")]);

    let posting = tokio::spawn(post_until_refused(ponte.url("/topics/crash")));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ponte.kill();
    let acknowledged = posting.await.expect("posting task");
    ponte.restart();

    assert!(
        acknowledged.len() > 50,
        "clients got answers before the kill"
    );
    let expected: HashSet<String> = acknowledged.into_iter().collect();
    let consumed = consume_until(&bootstrap, "crash", Duration::from_secs(60), |records| {
        let seen: HashSet<&str> = records
            .iter()
            .filter_map(|r| r.header("message-id"))
            .collect();
        expected.iter().all(|id| seen.contains(id.as_str()))
    });
    let seen: HashSet<&str> = consumed
        .iter()
        .filter_map(|r| r.header("message-id"))
        .collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !seen.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_stored_while_kafka_was_down_are_published_after_a_restart() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ponte = Ponte::start(&bootstrap, dir.path(), &[("PONTE_ACK_TIMEOUT_MS", "200")]);
    let (status, _) = ponte
        .post("recovery", Some("k"), json!({ "before": true }))
        .await;
    assert_eq!(status, 200);

    cluster.broker_down(1).expect("broker down");
    let mut stored = Vec::new();
    for n in 0..10 {
        let (status, answer) = ponte.post("recovery", Some("k"), json!({ "n": n })).await;
        assert_eq!(status, 202, "{answer}");
        stored.push(answer["message_id"].as_str().expect("id").to_owned());
    }
    let pending = ponte.health_until(Duration::from_secs(5), |_| true).await;
    ponte.kill();
    cluster.broker_up(1).expect("broker up");
    ponte.restart();

    assert_eq!(pending["outbox"]["pending"], json!(10));
    let consumed = consume_until(&bootstrap, "recovery", Duration::from_secs(60), |records| {
        records.len() > stored.len()
    });
    let ids: Vec<&str> = consumed
        .iter()
        .filter_map(|r| r.header("message-id"))
        .collect();
    for id in &stored {
        assert!(ids.contains(&id.as_str()), "{id} published after restart");
    }
    let drained = ponte
        .health_until(Duration::from_secs(30), |h| {
            h["outbox"]["pending"] == json!(0)
        })
        .await;
    assert_eq!(drained["outbox"]["pending"], json!(0), "rows marked sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_exits_cleanly_with_every_record_sent() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ponte = Ponte::start(&bootstrap, dir.path(), &[("PONTE_ACK_TIMEOUT_MS", "50")]);

    let posting = tokio::spawn(post_until_refused(ponte.url("/topics/graceful")));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let status = ponte.terminate();
    let acknowledged = posting.await.expect("posting task");
    let log = ponte.log();
    ponte.restart();
    let health = ponte.health_until(Duration::from_secs(5), |_| true).await;

    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(log.contains("ponte stopped"), "{log}");
    assert!(!acknowledged.is_empty());
    assert_eq!(
        health["outbox"]["pending"],
        json!(0),
        "nothing left pending"
    );
    let expected: HashSet<String> = acknowledged.into_iter().collect();
    let consumed = consume_until(&bootstrap, "graceful", Duration::from_secs(30), |records| {
        records.len() >= expected.len()
    });
    let seen: HashSet<&str> = consumed
        .iter()
        .filter_map(|r| r.header("message-id"))
        .collect();
    assert!(expected.iter().all(|id| seen.contains(id.as_str())));
}
