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
    assert_eq!(
        seen.len(),
        consumed.len(),
        "a clean stop sends nothing twice"
    );
}

/// Posts `per_client` records from each of `CLIENTS` clients, asking for the
/// answer right after the commit; returns each client's ids in posting order.
async fn post_backlog(ponte: &Ponte, topic: &str, per_client: usize) -> Vec<Vec<String>> {
    let url = ponte.url(&format!("/topics/{topic}?async=true"));
    let clients = (0..CLIENTS).map(|client| {
        let url = url.clone();
        tokio::spawn(async move {
            let key = format!("client-{client}");
            let mut ids = Vec::new();
            for n in 0..per_client {
                let (status, answer) = try_post(&url, &key, json!({ "n": n }))
                    .await
                    .expect("answer");
                assert_eq!(status, 202, "{answer}");
                ids.push(answer["message_id"].as_str().expect("id").to_owned());
            }
            ids
        })
    });
    futures::future::join_all(clients)
        .await
        .into_iter()
        .map(|ids| ids.expect("client task"))
        .collect()
}

/// Checks that each client's records all arrived and, counting each record's first
/// copy, in the order that client posted them.
fn assert_complete_and_in_order(consumed: &[support::Consumed], posted: &[Vec<String>]) {
    let mut first_seen = Vec::new();
    let mut seen = HashSet::new();
    for id in support::message_ids(consumed) {
        if seen.insert(id.clone()) {
            first_seen.push(id);
        }
    }
    for ids in posted {
        let wanted: HashSet<&String> = ids.iter().collect();
        let arrived: Vec<&String> = first_seen.iter().filter(|id| wanted.contains(id)).collect();
        assert_eq!(
            arrived,
            ids.iter().collect::<Vec<_>>(),
            "one client's records, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_during_a_backlog_drain_loses_nothing_and_keeps_key_order() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ponte = Ponte::start(&bootstrap, dir.path(), &[]);
    cluster.broker_down(1).expect("broker down");
    let posted = post_backlog(&ponte, "drain", 250).await;
    ponte.kill();
    cluster.broker_up(1).expect("broker up");

    ponte.restart();
    tokio::time::sleep(Duration::from_millis(40)).await;
    ponte.restart();
    let total: usize = posted.iter().map(Vec::len).sum();
    let consumed = consume_until(&bootstrap, "drain", Duration::from_secs(60), |records| {
        support::message_ids(records)
            .into_iter()
            .collect::<HashSet<_>>()
            .len()
            >= total
    });

    assert_complete_and_in_order(&consumed, &posted);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_while_a_record_waits_for_its_retry_keeps_its_count_and_order() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        ("PONTE_RETRY_BACKOFF_INITIAL_MS", "2000"),
        ("PONTE_ACK_TIMEOUT_MS", "200"),
    ];
    let mut ponte = Ponte::start(&bootstrap, dir.path(), &env);
    let (status, _) = ponte.post("retentativa", Some("warm-up"), json!({})).await;
    assert_eq!(status, 200);
    let refusal = [RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED];
    cluster.request_errors(RDKafkaApiKey::Produce, &refusal);

    let mut posted = Vec::new();
    for n in 0..3 {
        let (status, answer) = ponte
            .post("retentativa", Some("k"), json!({ "n": n }))
            .await;
        assert_eq!(status, 202, "{answer}");
        posted.push(answer["message_id"].as_str().expect("id").to_owned());
    }
    ponte.kill();
    let counted = support::sqlite3(
        &ponte.outbox_path(),
        &format!(
            "SELECT retry_count FROM outbox WHERE message_id = '{}'",
            posted[0]
        ),
    );
    ponte.restart();
    let consumed = consume_until(&bootstrap, "retentativa", Duration::from_secs(30), |r| {
        r.len() >= 4
    });

    assert!(
        counted[0]["retry_count"].as_i64() >= Some(1),
        "the refusal was recorded: {counted:?}"
    );
    assert_complete_and_in_order(&consumed, &[posted]);
}
