use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::outbox::Outbox;
use crate::outbox::sqlite::SqliteStore;
use crate::outbox::store::StoreError;

/// The real SQLite store, counting its commits.
struct CountingStore {
    inner: SqliteStore,
    commits: Arc<AtomicUsize>,
}

impl Store for CountingStore {
    fn commit(
        &mut self,
        records: &[&Record],
        outcomes: &[Outcome],
    ) -> Result<Vec<i64>, StoreError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit(records, outcomes)
    }
}

fn record(n: usize) -> Record {
    Record {
        message_id: format!("m-{n}"),
        topic: "t".to_owned(),
        key: None,
        value: "{}".to_owned(),
        timestamp_ms: 0,
    }
}

type Answer = oneshot::Receiver<Result<i64, OutboxError>>;

/// Queues `records` before the writer runs, so they are all waiting at once.
fn queue(outbox: &Outbox, records: impl IntoIterator<Item = Record>) -> Vec<Answer> {
    records
        .into_iter()
        .map(|record| {
            let (committed, answer) = oneshot::channel();
            let command = Command::Append {
                record,
                waiter: None,
                committed,
            };
            outbox.commands.try_send(command).expect("queue has room");
            answer
        })
        .collect()
}

fn start(
    dir: &tempfile::TempDir,
) -> (
    Outbox,
    mpsc::Receiver<Command>,
    Arc<AtomicUsize>,
    CountingStore,
) {
    let (outbox, commands) = Outbox::channel();
    let commits = Arc::new(AtomicUsize::new(0));
    let store = CountingStore {
        inner: SqliteStore::open(&dir.path().join("outbox.db")).expect("open"),
        commits: Arc::clone(&commits),
    };
    (outbox, commands, commits, store)
}

#[test]
fn records_waiting_together_share_one_commit_each_batch() {
    let dir = tempfile::tempdir().expect("dir");
    let (outbox, commands, commits, store) = start(&dir);
    let answers = queue(&outbox, (0..1000).map(record));
    let (relay, mut handed_over) = mpsc::channel(64);

    let writer = spawn_writer(store, &outbox, commands, relay, 256).expect("writer");
    let ids: Vec<i64> = answers
        .into_iter()
        .map(|answer| answer.blocking_recv().expect("answered").expect("stored"))
        .collect();
    drop(outbox);
    writer.join().expect("writer stops");

    assert_eq!(
        commits.load(Ordering::SeqCst),
        4,
        "1000 records in batches of 256"
    );
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids in arrival order"
    );
    let mut relayed = Vec::new();
    while let Ok(batch) = handed_over.try_recv() {
        relayed.extend(batch.into_iter().map(|c| c.stored.id));
    }
    assert_eq!(relayed, ids, "the relay receives every record, in order");
}

#[test]
fn a_record_that_cannot_be_stored_does_not_fail_its_neighbours() {
    let dir = tempfile::tempdir().expect("dir");
    let (outbox, commands, _, store) = start(&dir);
    let answers = queue(&outbox, [record(1), record(2), record(1), record(3)]);
    let (relay, _handed_over) = mpsc::channel(64);

    let writer = spawn_writer(store, &outbox, commands, relay, 64).expect("writer");
    let results: Vec<bool> = answers
        .into_iter()
        .map(|answer| answer.blocking_recv().expect("answered").is_ok())
        .collect();
    drop(outbox);
    writer.join().expect("writer stops");

    assert_eq!(
        results,
        [true, true, false, true],
        "only the duplicate id is refused"
    );
}

#[test]
fn records_offered_after_close_are_refused_as_shutting_down() {
    let dir = tempfile::tempdir().expect("dir");
    let (outbox, commands, _, store) = start(&dir);
    outbox
        .commands
        .try_send(Command::Close)
        .expect("queue has room");
    let answers = queue(&outbox, [record(1)]);
    let (relay, _handed_over) = mpsc::channel(64);

    let writer = spawn_writer(store, &outbox, commands, relay, 64).expect("writer");
    let refused = answers
        .into_iter()
        .next()
        .expect("one answer")
        .blocking_recv()
        .expect("answered");
    drop(outbox);
    writer.join().expect("writer stops");

    assert_eq!(refused, Err(OutboxError::ShuttingDown));
}
