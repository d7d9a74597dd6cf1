use rusqlite::Connection;

use super::*;
use crate::outbox::store::{
    Append, Appended, Backlog, Change, Idempotency, ListFilter, Outcome, PurgeFilter, ReplayFilter,
    Settled, Store,
};
use crate::record::{Placement, Record, RecordHeader};

fn record(n: usize) -> Record {
    Record {
        message_id: format!("t-1-{n:012}"),
        topic: "t".to_owned(),
        key: Some(format!("k{}", n % 3).into_bytes()),
        value: Some(format!("{{\"n\":{n}}}").into_bytes()),
        headers: Vec::new(),
        partition: None,
        timestamp_ms: 1_000 + n as i64,
        kafka_timestamp_ms: None,
    }
}

fn plain(records: &[Record]) -> Vec<Append<'_>> {
    records
        .iter()
        .map(|record| Append {
            record,
            idempotency: None,
        })
        .collect()
}

fn stored_ids(appended: &[Appended]) -> Vec<i64> {
    appended
        .iter()
        .map(|a| match a {
            Appended::Stored(id) => *id,
            Appended::Repeat(row) => panic!("unexpected repeat of {}", row.message_id),
        })
        .collect()
}

fn store_with(dir: &tempfile::TempDir, count: usize) -> (SqliteStore, Vec<i64>) {
    let mut store = SqliteStore::open(&dir.path().join("outbox.db")).expect("open");
    let records: Vec<Record> = (0..count).map(record).collect();
    let commit = store.commit(&plain(&records), &[]).expect("commit");
    (store, stored_ids(&commit.appended))
}

fn outcome(id: i64, settled: Settled) -> Outcome {
    Outcome {
        id,
        at_ms: 5_000,
        settled,
    }
}

fn sent(id: i64, offset: i64) -> Outcome {
    outcome(
        id,
        Settled::Sent(Placement {
            partition: 1,
            offset,
        }),
    )
}

fn failed(id: i64, counts: bool, next_attempt_at_ms: Option<i64>) -> Outcome {
    let error = "broker said no".to_owned();
    outcome(
        id,
        Settled::Failed {
            error,
            class: if counts { "permanent" } else { "retriable" },
            counts,
            next_attempt_at_ms,
        },
    )
}

fn row_ids(rows: &[crate::record::StoredRecord]) -> Vec<i64> {
    rows.iter().map(|s| s.id).collect()
}

#[test]
fn opening_sets_wal_and_full_sync_and_they_read_back() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, _) = store_with(&dir, 0);

    let journal: String = store
        .connection
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    let synchronous: i64 = store
        .connection
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("synchronous");

    assert_eq!(journal, "wal");
    assert_eq!(synchronous, 2, "FULL");
}

#[test]
fn committed_records_get_increasing_ids_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, ids_stored) = store_with(&dir, 5);
    drop(store);

    let mut reopened = SqliteStore::open(&dir.path().join("outbox.db")).expect("reopen");
    let mut backlog = reopened.backlog().expect("backlog");
    let unsent = backlog.unsent(0, None, 100).expect("unsent");

    assert!(
        ids_stored.windows(2).all(|pair| pair[0] < pair[1]),
        "{ids_stored:?}"
    );
    assert_eq!(row_ids(&unsent), ids_stored);
    assert_eq!(unsent[2].record, record(2));
    assert_eq!(backlog.counts().expect("counts").pending, 5);
    assert_eq!(reopened.count_unsent().expect("count"), 5);
}

#[test]
fn outcomes_mark_rows_sent_failed_or_dead_lettered() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, ids) = store_with(&dir, 4);

    let first = store
        .commit(&[], &[sent(ids[0], 42), failed(ids[1], true, Some(9_000))])
        .expect("outcomes");
    store
        .commit(&[], &[failed(ids[2], false, None)])
        .expect("outage");
    let dead = store
        .commit(&[], &[outcome(ids[3], Settled::DeadLettered)])
        .expect("dlq");
    let mut backlog = store.backlog().expect("backlog");
    let row = |backlog: &mut SqliteBacklog, n: usize| {
        backlog
            .find(&record(n).message_id)
            .expect("read")
            .expect("row")
    };

    assert_eq!((first.settled, dead.settled), (1, 1));
    let delivered = row(&mut backlog, 0);
    assert_eq!(delivered.status, "sent");
    assert_eq!(
        (delivered.partition, delivered.offset, delivered.sent_at),
        (Some(1), Some(42), Some(5_000))
    );
    let refused = row(&mut backlog, 1);
    assert_eq!(
        (
            refused.status.as_str(),
            refused.retry_count,
            refused.attempts
        ),
        ("failed", 1, 1)
    );
    assert_eq!(refused.next_attempt_at, Some(9_000));
    assert_eq!(refused.last_error.as_deref(), Some("broker said no"));
    let waiting = row(&mut backlog, 2);
    assert_eq!(
        (
            waiting.status.as_str(),
            waiting.retry_count,
            waiting.attempts
        ),
        ("failed", 0, 1)
    );
    assert_eq!(
        waiting.next_attempt_at, None,
        "an outage does not schedule the row"
    );
    let moved = row(&mut backlog, 3);
    assert_eq!(
        (moved.status.as_str(), moved.dead_lettered_at),
        ("dlq", Some(5_000))
    );
}

#[test]
fn unsent_returns_unscheduled_pending_and_failed_rows_in_id_order_within_bounds() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, ids) = store_with(&dir, 10);
    let outcomes = [
        sent(ids[0], 0),
        sent(ids[1], 1),
        failed(ids[3], false, None),
        failed(ids[4], true, Some(1)),
        outcome(ids[5], Settled::DeadLettered),
    ];
    store.commit(&[], &outcomes).expect("outcomes");
    let mut backlog = store.backlog().expect("backlog");

    let mut page = |after, before, limit| -> Vec<i64> {
        row_ids(&backlog.unsent(after, before, limit).expect("unsent"))
    };

    assert_eq!(
        page(0, None, 100),
        [ids[2], ids[3], ids[6], ids[7], ids[8], ids[9]]
    );
    assert_eq!(page(0, None, 2), [ids[2], ids[3]]);
    assert_eq!(page(ids[3], Some(ids[8]), 100), [ids[6], ids[7]]);
    assert_eq!(page(ids[9], None, 100), Vec::<i64>::new());
}

#[test]
fn scheduled_rows_come_back_when_due_in_id_order() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, ids) = store_with(&dir, 4);
    store
        .commit(
            &[],
            &[
                failed(ids[2], true, Some(100)),
                failed(ids[0], true, Some(300)),
            ],
        )
        .expect("outcomes");
    store
        .change(&Change::Defer { ids: vec![ids[1]] })
        .expect("defer");
    let mut backlog = store.backlog().expect("backlog");

    assert_eq!(ids_of(backlog.scheduled(0, 50, 10)), [ids[1]]);
    assert_eq!(ids_of(backlog.scheduled(0, 200, 10)), [ids[1], ids[2]]);
    assert_eq!(ids_of(backlog.scheduled(ids[1], 300, 10)), [ids[2]]);
    assert_eq!(backlog.next_scheduled_at().expect("next"), Some(0));
    assert_eq!(ids_of(backlog.failing()), [ids[0], ids[2]]);
}

fn ids_of(rows: Result<Vec<crate::record::StoredRecord>, StoreError>) -> Vec<i64> {
    row_ids(&rows.expect("rows"))
}

#[test]
fn a_repeated_idempotency_key_returns_the_first_row_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = SqliteStore::open(&dir.path().join("outbox.db")).expect("open");
    let key = Idempotency {
        key: "NF-1".to_owned(),
        fingerprint: "abc".to_owned(),
    };
    let (first, second) = (record(1), record(2));
    let appends = [
        Append {
            record: &first,
            idempotency: Some(&key),
        },
        Append {
            record: &second,
            idempotency: Some(&key),
        },
    ];

    let commit = store.commit(&appends, &[]).expect("commit");

    let Appended::Stored(id) = commit.appended[0] else {
        panic!("first is stored: {:?}", commit.appended[0]);
    };
    match &commit.appended[1] {
        Appended::Repeat(row) => {
            assert_eq!(
                (row.id, row.message_id.as_str()),
                (id, first.message_id.as_str())
            );
            assert_eq!(row.fingerprint.as_deref(), Some("abc"));
        }
        other => panic!("second is a repeat: {other:?}"),
    }
    assert_eq!(store.count_unsent().expect("count"), 1);
}

#[test]
fn an_expired_idempotency_key_stores_a_new_record() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = SqliteStore::open(&dir.path().join("outbox.db"))
        .expect("open")
        .with_idempotency_window(Duration::from_millis(1));
    let key = Idempotency {
        key: "NF-1".to_owned(),
        fingerprint: "abc".to_owned(),
    };
    let (first, second) = (record(1), record(2));

    let earlier = store.commit(
        &[Append {
            record: &first,
            idempotency: Some(&key),
        }],
        &[],
    );
    let later = store.commit(
        &[Append {
            record: &second,
            idempotency: Some(&key),
        }],
        &[],
    );

    assert!(matches!(
        earlier.expect("first").appended[0],
        Appended::Stored(_)
    ));
    assert!(matches!(
        later.expect("second").appended[0],
        Appended::Stored(_)
    ));
}

#[test]
fn retry_and_replay_put_records_back_on_the_schedule() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, ids) = store_with(&dir, 4);
    let outcomes = [
        outcome(ids[0], Settled::DeadLettered),
        outcome(ids[1], Settled::DeadLettered),
        failed(ids[2], true, Some(99_999_999)),
        sent(ids[3], 7),
    ];
    store.commit(&[], &outcomes).expect("outcomes");

    let retried_sent = store.change(&Change::Retry {
        message_id: record(3).message_id,
    });
    let retried = store.change(&Change::Retry {
        message_id: record(2).message_id,
    });
    let replay = ReplayFilter {
        topic: Some("t".to_owned()),
        since_ms: Some(1_001),
        until_ms: None,
        limit: None,
    };
    let replayed = store.change(&Change::Replay(replay));
    let mut backlog = store.backlog().expect("backlog");

    assert_eq!(
        retried_sent.expect("no-op"),
        0,
        "a sent record is not retried"
    );
    assert_eq!(retried.expect("retry"), 1);
    assert_eq!(
        replayed.expect("replay"),
        1,
        "only the dlq row inside the time range"
    );
    assert_eq!(ids_of(backlog.scheduled(0, 0, 10)), [ids[1], ids[2]]);
    let row = backlog
        .find(&record(2).message_id)
        .expect("read")
        .expect("row");
    assert_eq!((row.status.as_str(), row.retry_count), ("pending", 0));
    assert_eq!(store.count_unsent().expect("count"), 2);
}

#[test]
fn listing_filters_by_status_topic_and_time_and_pages_by_id() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, ids) = store_with(&dir, 6);
    store
        .commit(&[], &[sent(ids[0], 0), sent(ids[1], 1)])
        .expect("outcomes");
    let mut backlog = store.backlog().expect("backlog");
    let filter = |status: Option<&str>, since_ms, after_id, limit| ListFilter {
        status: status.map(str::to_owned),
        topic: Some("t".to_owned()),
        since_ms,
        until_ms: None,
        after_id,
        limit,
    };
    let mut listed = |f: ListFilter| -> Vec<i64> {
        backlog
            .list(&f)
            .expect("list")
            .iter()
            .map(|r| r.id)
            .collect()
    };

    assert_eq!(listed(filter(Some("sent"), None, 0, 10)), [ids[0], ids[1]]);
    assert_eq!(
        listed(filter(Some("pending"), None, 0, 2)),
        [ids[2], ids[3]]
    );
    assert_eq!(
        listed(filter(Some("pending"), None, ids[3], 2)),
        [ids[4], ids[5]]
    );
    assert_eq!(listed(filter(None, Some(1_004), 0, 10)), [ids[4], ids[5]]);
}

#[test]
fn a_middleware_table_gets_ponte_columns_and_a_foreign_table_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("outbox.db");
    let middleware = TABLE.replace("IF NOT EXISTS ", "");
    Connection::open(&path)
        .and_then(|c| c.execute_batch(&middleware))
        .expect("middleware table");
    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign)
        .and_then(|c| c.execute_batch("CREATE TABLE outbox (id INTEGER PRIMARY KEY, topic TEXT)"))
        .expect("foreign table");

    let adopted = SqliteStore::open(&path).expect("adopted");
    let refused = SqliteStore::open(&foreign).expect_err("must be refused");

    let columns: Vec<String> = adopted
        .connection
        .prepare("SELECT name FROM pragma_table_info('outbox')")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("columns");
    for (name, _) in PONTE_COLUMNS {
        assert!(columns.iter().any(|c| c == name), "{name} added");
    }
    assert!(
        matches!(refused, StoreError::MissingColumn("message_id")),
        "{refused}"
    );
}

#[test]
fn a_duplicate_message_id_fails_its_commit_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, _) = store_with(&dir, 1);
    let batch = [record(7), record(0)];

    let failed = store.commit(&plain(&batch), &[]);

    assert!(failed.is_err());
    assert_eq!(
        store.count_unsent().expect("count"),
        1,
        "the transaction rolled back"
    );
}

#[test]
fn counts_follow_every_change_including_deletes_and_hand_edits() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, ids) = store_with(&dir, 5);
    let outcomes = [
        sent(ids[0], 0),
        sent(ids[1], 1),
        failed(ids[2], false, None),
    ];
    store.commit(&[], &outcomes).expect("outcomes");
    store
        .connection
        .execute("UPDATE outbox SET status = 'dlq' WHERE id = ?1", [ids[3]])
        .expect("by hand");
    let old = PurgeFilter {
        status: "sent".to_owned(),
        topic: None,
        before_ms: i64::MAX,
    };
    let purged = store.purge(&old, 1).expect("purge");
    let mut backlog = store.backlog().expect("backlog");

    let counts = backlog.counts().expect("counts");

    assert_eq!(purged, 1, "one row per batch of one");
    assert_eq!(
        (counts.pending, counts.sent, counts.failed, counts.dlq),
        (1, 1, 1, 1)
    );
    assert_eq!(
        counts.oldest_unsent_ms,
        Some(1_002),
        "the failed row is the oldest unsent"
    );
}

#[test]
fn expired_idempotency_keys_are_forgotten_in_batches() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = SqliteStore::open(&dir.path().join("outbox.db")).expect("open");
    let records: Vec<Record> = (0..3).map(record).collect();
    let keys: Vec<Idempotency> = (0..3)
        .map(|n| Idempotency {
            key: format!("k{n}"),
            fingerprint: "f".to_owned(),
        })
        .collect();
    let appends: Vec<Append<'_>> = records
        .iter()
        .zip(&keys)
        .map(|(record, key)| Append {
            record,
            idempotency: Some(key),
        })
        .collect();
    store.commit(&appends, &[]).expect("commit");

    let first = store.expire_keys(1_002, 10).expect("expire");
    let second = store.expire_keys(i64::MAX, 1).expect("expire");

    assert_eq!(
        (first, second),
        (2, 1),
        "records 0 and 1 arrived before 1002"
    );
}

#[test]
fn purging_and_reclaiming_gives_freed_pages_back_to_the_file_system() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, ids) = store_with(&dir, 2_000);
    let outcomes: Vec<Outcome> = ids.iter().map(|id| sent(*id, *id)).collect();
    store.commit(&[], &outcomes).expect("outcomes");
    let pages = |store: &SqliteStore| -> i64 {
        store
            .connection
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("page_count")
    };
    let before = pages(&store);
    let old = PurgeFilter {
        status: "sent".to_owned(),
        topic: None,
        before_ms: i64::MAX,
    };

    store.purge(&old, 10_000).expect("purge");
    store.reclaim(u32::MAX).expect("reclaim");

    assert!(
        pages(&store) < before / 2,
        "{} pages left of {before}",
        pages(&store)
    );
}

#[test]
fn binary_keys_null_values_headers_partitions_and_timestamps_survive_the_outbox() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.db");
    let mut store = SqliteStore::open(&path).expect("open");
    let mut tombstone = record(0);
    tombstone.key = Some(vec![0xff, 0x00, 0xfe]);
    tombstone.value = None;
    tombstone.headers = vec![
        RecordHeader {
            name: "trace".to_owned(),
            value: Some(vec![0, 1, 2, 0xff]),
        },
        RecordHeader {
            name: "empty".to_owned(),
            value: None,
        },
    ];
    tombstone.partition = Some(3);
    tombstone.kafka_timestamp_ms = Some(1_612_552_482_000);
    let text = record(1);
    let records = [tombstone, text];
    store.commit(&plain(&records), &[]).expect("commit");

    let mut backlog = store.backlog().expect("backlog");
    let read: Vec<Record> = backlog
        .unsent(0, None, 10)
        .expect("unsent")
        .into_iter()
        .map(|stored| stored.record)
        .collect();
    assert_eq!(read, records);

    let check = Connection::open(&path).expect("open for checking");
    let types: Vec<(String, String)> = check
        .prepare("SELECT typeof(key), typeof(value) FROM outbox ORDER BY id")
        .expect("prepare")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        types,
        [
            ("blob".to_owned(), "text".to_owned()),
            ("text".to_owned(), "text".to_owned())
        ],
        "UTF-8 stays TEXT for the middleware's tools; other bytes are BLOBs"
    );
}

#[test]
fn purging_sent_rows_reads_only_the_expired_ones_through_their_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut store, ids) = store_with(&dir, 4);
    let outcomes: Vec<Outcome> = ids.iter().map(|&id| sent(id, id)).collect();
    store.commit(&[], &outcomes).expect("sent at 5,000");
    // A row marked sent by another tool, without sent_at, goes by its arrival.
    store
        .connection
        .execute("UPDATE outbox SET sent_at = NULL WHERE id = ?1", [ids[3]])
        .expect("by hand");
    let plan: Vec<String> = store
        .connection
        .prepare(
            "EXPLAIN QUERY PLAN SELECT id FROM outbox INDEXED BY outbox_sent_at
             WHERE status = 'sent' AND sent_at < 1 ORDER BY sent_at",
        )
        .expect("plan")
        .query_map([], |row| row.get::<_, String>(3))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("plan rows");
    let expired = PurgeFilter {
        status: "sent".to_owned(),
        topic: None,
        before_ms: 5_001,
    };
    let too_early = PurgeFilter {
        before_ms: 1_000,
        ..expired.clone()
    };

    assert_eq!(store.purge(&too_early, 100).expect("purge"), 0);
    assert_eq!(store.purge(&expired, 100).expect("purge"), 4);
    assert!(
        plan.iter()
            .any(|step| step.starts_with("SEARCH") && step.contains("outbox_sent_at")),
        "{plan:?}"
    );
}
