//! The `outbox.db` file as operators see it through the `sqlite3` shell: the
//! contract's columns, filled in, and the documented runbook queries.

mod support;

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use support::ponte::Ponte;
use support::{consume, consume_until, placement, sqlite3};

#[tokio::test(flavor = "multi_thread")]
async fn the_contract_columns_are_there_with_their_types_and_filled_in() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("temp dir");
    let ponte = Ponte::start(&cluster.bootstrap_servers(), dir.path(), &[]);
    let (status, answer) = ponte
        .post("colunas", Some("NF-1"), json!({ "valor": 10 }))
        .await;
    assert_eq!(status, 200);
    ponte
        .health_until(Duration::from_secs(10), |h| {
            h["outbox"]["pending"] == json!(0)
        })
        .await;

    let columns = sqlite3(
        &ponte.outbox_path(),
        "SELECT name, type FROM pragma_table_info('outbox')",
    );
    let expected = [
        ("id", "INTEGER"),
        ("message_id", "TEXT"),
        ("topic", "TEXT"),
        ("key", "TEXT"),
        ("value", "TEXT"),
        ("timestamp", "INTEGER"),
        ("status", "TEXT"),
        ("retry_count", "INTEGER"),
        ("last_error", "TEXT"),
        ("created_at", "INTEGER"),
        ("sent_at", "INTEGER"),
        ("kafka_offset", "TEXT"),
        ("kafka_partition", "INTEGER"),
    ];
    for (name, kind) in expected {
        let column = columns.iter().find(|c| c["name"] == json!(name));
        assert_eq!(
            column.map(|c| &c["type"]),
            Some(&json!(kind)),
            "column {name}"
        );
    }

    let rows = sqlite3(&ponte.outbox_path(), "SELECT * FROM outbox");
    let row = &rows[0];
    let (partition, offset) = placement(&answer);
    assert_eq!(row["message_id"], answer["message_id"]);
    assert_eq!(row["topic"], json!("colunas"));
    assert_eq!(row["key"], json!("NF-1"));
    assert_eq!(row["value"], json!(r#"{"valor":10}"#));
    assert_eq!(row["status"], json!("sent"));
    assert_eq!(row["retry_count"], json!(0));
    assert_eq!(row["last_error"], Value::Null);
    assert_eq!(row["kafka_partition"], json!(partition));
    assert_eq!(row["kafka_offset"], json!(offset.to_string()));
    let timestamp = row["timestamp"].as_i64().expect("timestamp");
    assert_eq!(row["created_at"].as_i64(), Some(timestamp));
    assert!(row["sent_at"].as_i64().expect("sent_at") >= timestamp);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runbook_queries_work_and_a_manual_replay_is_published_after_restart() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ponte = Ponte::start(&cluster.bootstrap_servers(), dir.path(), &[]);
    for n in 0..4 {
        let (status, _) = ponte.post("runbook", Some("k"), json!({ "n": n })).await;
        assert_eq!(status, 200);
    }
    ponte
        .health_until(Duration::from_secs(10), |h| {
            h["outbox"]["pending"] == json!(0)
        })
        .await;
    ponte.kill();
    let db = ponte.outbox_path();
    // Stand-ins for what the dead-letter path leaves behind.
    sqlite3(
        &db,
        "UPDATE outbox SET status = 'dlq', last_error = 'boom', retry_count = 5 WHERE id <= 2",
    );

    let by_status = sqlite3(
        &db,
        "SELECT status, COUNT(*) AS n FROM outbox GROUP BY status ORDER BY status",
    );
    let failed = sqlite3(
        &db,
        "SELECT message_id, last_error FROM outbox WHERE status = 'failed'",
    );
    let dead = sqlite3(
        &db,
        "SELECT message_id, topic, last_error FROM outbox WHERE status = 'dlq'",
    );
    let rate = sqlite3(
        &db,
        "SELECT ROUND(100.0 * SUM(status = 'sent') / COUNT(*), 1) AS rate \
         FROM (SELECT status FROM outbox ORDER BY id DESC LIMIT 1000)",
    );
    sqlite3(
        &db,
        "UPDATE outbox SET status = 'pending', retry_count = 0 WHERE status = 'dlq';",
    );
    ponte.restart();

    assert_eq!(
        by_status,
        vec![
            json!({"status": "dlq", "n": 2}),
            json!({"status": "sent", "n": 2})
        ]
    );
    assert!(failed.is_empty());
    assert_eq!(dead.len(), 2);
    assert_eq!(rate[0]["rate"], json!(50.0));
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "runbook",
        6,
        Duration::from_secs(30),
    );
    assert_eq!(
        consumed.len(),
        6,
        "the two replayed records were published again"
    );
    let statuses = sqlite3(&db, "SELECT DISTINCT status FROM outbox");
    let drained = ponte
        .health_until(Duration::from_secs(10), |h| {
            h["outbox"]["pending"] == json!(0)
        })
        .await;
    assert_eq!(drained["outbox"]["pending"], json!(0));
    assert!(statuses.iter().all(|s| s["status"] != json!("dlq")));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outbox_left_by_the_old_middleware_is_adopted_and_its_pending_rows_published() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("outbox.db");
    sqlite3(
        &db,
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, \
         message_id TEXT UNIQUE NOT NULL, \
         topic TEXT NOT NULL, key TEXT, value TEXT NOT NULL, timestamp INTEGER NOT NULL, \
         status TEXT DEFAULT 'pending', retry_count INTEGER DEFAULT 0, last_error TEXT, \
         created_at INTEGER, sent_at INTEGER, kafka_offset TEXT, kafka_partition INTEGER); \
         INSERT INTO outbox \
         (message_id, topic, key, value, timestamp, status, retry_count, created_at) VALUES \
         ('legado-1', 'legado', 'k1', '{\"a\":1}', 1729504200000, 'sent', 0, 1729504200000), \
         ('legado-2', 'legado', 'k2', '{\"a\":2}', 1729504200001, 'pending', 0, 1729504200001), \
         ('legado-3', 'legado', NULL, '{\"a\":3}', 1729504200002, 'failed', 3, 1729504200002);",
    );

    let ponte = Ponte::start(&cluster.bootstrap_servers(), dir.path(), &[]);
    let consumed = consume_until(
        &cluster.bootstrap_servers(),
        "legado",
        Duration::from_secs(30),
        |r| r.len() >= 2,
    );
    ponte
        .health_until(Duration::from_secs(10), |h| {
            h["outbox"]["pending"] == json!(0)
        })
        .await;
    let rows = sqlite3(&db, "SELECT message_id, status FROM outbox ORDER BY id");

    let mut ids: Vec<Option<&str>> = consumed.iter().map(|c| c.header("message-id")).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec![Some("legado-2"), Some("legado-3")],
        "pending and failed rows: {rows:?}"
    );
    assert!(
        rows.iter().all(|r| r["status"] == json!("sent")),
        "{rows:?}"
    );
}
