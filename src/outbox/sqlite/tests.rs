use super::*;
use crate::record::Placement;

fn record(n: usize) -> Record {
    Record {
        message_id: format!("t-1-{n:012}"),
        topic: "t".to_owned(),
        key: Some(format!("k{}", n % 3)),
        value: format!("{{\"n\":{n}}}"),
        timestamp_ms: 1_000 + n as i64,
    }
}

fn store_with(dir: &tempfile::TempDir, count: usize) -> (SqliteStore, Vec<i64>) {
    let mut store = SqliteStore::open(&dir.path().join("outbox.db")).expect("open");
    let records: Vec<Record> = (0..count).map(record).collect();
    let refs: Vec<&Record> = records.iter().collect();
    let ids = store.commit(&refs, &[]).expect("commit");
    (store, ids)
}

fn sent(id: i64, offset: i64) -> Outcome {
    Outcome {
        id,
        at_ms: 5_000,
        result: Ok(Placement {
            partition: 1,
            offset,
        }),
    }
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
    let (store, ids) = store_with(&dir, 5);
    drop(store);

    let reopened = SqliteStore::open(&dir.path().join("outbox.db")).expect("reopen");
    let mut backlog = reopened.backlog().expect("backlog");
    let unsent = backlog.unsent(0, None, 100).expect("unsent");

    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    assert_eq!(unsent.iter().map(|s| s.id).collect::<Vec<_>>(), ids);
    assert_eq!(unsent[2].record, record(2));
    assert_eq!(backlog.count_pending().expect("count"), 5);
}

#[test]
fn outcomes_mark_rows_sent_or_failed() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, ids) = store_with(&dir, 3);
    let failure = Outcome {
        id: ids[1],
        at_ms: 5_000,
        result: Err("broker said no".to_owned()),
    };

    store
        .commit(&[], &[sent(ids[0], 42), failure.clone()])
        .expect("outcomes");
    store.commit(&[], &[failure]).expect("second failure");

    let row = |id: i64| {
        store
            .connection
            .query_row(
                "SELECT status, retry_count, last_error, sent_at, kafka_offset, kafka_partition
                 FROM outbox WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                    ))
                },
            )
            .expect("row")
    };
    assert_eq!(
        row(ids[0]),
        (
            "sent".to_owned(),
            0,
            None,
            Some(5_000),
            Some("42".to_owned()),
            Some(1)
        )
    );
    assert_eq!(
        row(ids[1]),
        (
            "failed".to_owned(),
            2,
            Some("broker said no".to_owned()),
            None,
            None,
            None
        )
    );
    assert_eq!(row(ids[2]).0, "pending");
}

#[test]
fn unsent_returns_pending_and_failed_rows_in_id_order_within_bounds() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, ids) = store_with(&dir, 10);
    let failure = Outcome {
        id: ids[3],
        at_ms: 1,
        result: Err("x".to_owned()),
    };
    store
        .commit(&[], &[sent(ids[0], 0), sent(ids[1], 1), failure])
        .expect("outcomes");
    store
        .connection
        .execute("UPDATE outbox SET status = 'dlq' WHERE id = ?1", [ids[5]])
        .expect("dlq by hand");
    let mut backlog = store.backlog().expect("backlog");

    let mut page = |after, before, limit| -> Vec<i64> {
        backlog
            .unsent(after, before, limit)
            .expect("unsent")
            .iter()
            .map(|s| s.id)
            .collect()
    };

    assert_eq!(
        page(0, None, 100),
        [ids[2], ids[3], ids[4], ids[6], ids[7], ids[8], ids[9]]
    );
    assert_eq!(page(0, None, 2), [ids[2], ids[3]]);
    assert_eq!(page(ids[3], Some(ids[8]), 100), [ids[4], ids[6], ids[7]]);
    assert_eq!(page(ids[9], None, 100), Vec::<i64>::new());
}

#[test]
fn only_pending_rows_are_counted_as_pending() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, ids) = store_with(&dir, 4);
    store.commit(&[], &[sent(ids[0], 0)]).expect("outcome");

    let mut backlog = store.backlog().expect("backlog");

    assert_eq!(backlog.count_pending().expect("count"), 3);
}

#[test]
fn a_table_without_a_contract_column_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("outbox.db");
    Connection::open(&path)
        .and_then(|c| c.execute_batch("CREATE TABLE outbox (id INTEGER PRIMARY KEY, topic TEXT)"))
        .expect("foreign table");

    let refused = SqliteStore::open(&path).expect_err("must be refused");

    assert!(
        matches!(refused, StoreError::MissingColumn("message_id")),
        "{refused}"
    );
}

#[test]
fn a_duplicate_message_id_fails_its_commit_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut store, _) = store_with(&dir, 1);
    let fresh = record(7);
    let duplicate = record(0);

    let failed = store.commit(&[&fresh, &duplicate], &[]);
    let mut backlog = store.backlog().expect("backlog");

    assert!(failed.is_err());
    assert_eq!(
        backlog.count_pending().expect("count"),
        1,
        "the transaction rolled back"
    );
}
