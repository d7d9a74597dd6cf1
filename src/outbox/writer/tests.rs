use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::outbox::Outbox;
use crate::outbox::sqlite::SqliteStore;
use crate::outbox::store::{Commit, StoreError};
use crate::record::Record;

/// The real SQLite store, counting its commits.
struct CountingStore {
    inner: SqliteStore,
    commits: Arc<AtomicUsize>,
}

impl Store for CountingStore {
    fn commit(
        &mut self,
        appends: &[StoreAppend<'_>],
        outcomes: &[Outcome],
    ) -> Result<Commit, StoreError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit(appends, outcomes)
    }

    fn change(&mut self, change: &Change) -> Result<u64, StoreError> {
        self.inner.change(change)
    }

    fn count_unsent(&mut self) -> Result<u64, StoreError> {
        self.inner.count_unsent()
    }

    fn purge(&mut self, filter: &PurgeFilter, limit: usize) -> Result<u64, StoreError> {
        self.inner.purge(filter, limit)
    }

    fn expire_keys(&mut self, before_ms: i64, limit: usize) -> Result<u64, StoreError> {
        self.inner.expire_keys(before_ms, limit)
    }

    fn reclaim(&mut self, pages: u32) -> Result<(), StoreError> {
        self.inner.reclaim(pages)
    }

    fn audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.inner.audit(entry)
    }
}

fn record(n: usize) -> Record {
    Record {
        message_id: format!("m-{n}"),
        topic: "t".to_owned(),
        key: None,
        value: Some(b"{}".to_vec()),
        headers: Vec::new(),
        partition: None,
        timestamp_ms: 0,
        kafka_timestamp_ms: None,
    }
}

type Answer = oneshot::Receiver<Result<Appended, OutboxError>>;

/// Queues `records` before the writer runs, so they are all waiting at once.
fn queue(outbox: &Outbox, records: impl IntoIterator<Item = Record>) -> Vec<Answer> {
    records
        .into_iter()
        .map(|record| {
            let (answer, answered) = oneshot::channel();
            let command = Command::Append(vec![NewRecord {
                record,
                idempotency: None,
                waiter: None,
                answer,
            }]);
            outbox.commands.try_send(command).expect("queue has room");
            answered
        })
        .collect()
}

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new())
}

fn limits(max_batch: usize, max_unsent: u64) -> WriterLimits {
    WriterLimits {
        max_batch,
        max_unsent,
    }
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

fn results(answers: Vec<Answer>) -> Vec<Result<Appended, OutboxError>> {
    answers
        .into_iter()
        .map(|answer| answer.blocking_recv().expect("answered"))
        .collect()
}

#[test]
fn records_waiting_together_share_one_commit_each_batch() {
    let dir = tempfile::tempdir().expect("dir");
    let (outbox, commands, commits, store) = start(&dir);
    let answers = queue(&outbox, (0..1000).map(record));
    let (relay, mut handed_over) = mpsc::channel(64);

    let writer = spawn_writer(
        store,
        &outbox,
        commands,
        relay,
        limits(256, u64::MAX),
        metrics(),
    );
    let ids: Vec<i64> = results(answers)
        .into_iter()
        .map(|result| match result {
            Ok(Appended::Stored(id)) => id,
            other => panic!("stored: {other:?}"),
        })
        .collect();
    drop(outbox);
    writer.expect("writer").join().expect("writer stops");

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

/// Runs a writer over what `queued` put in its queue, until it stops; returns
/// the answers the queued records got.
fn answers_of(
    limits: WriterLimits,
    queued: impl FnOnce(&Outbox) -> Vec<Answer>,
) -> Vec<Result<Appended, OutboxError>> {
    let dir = tempfile::tempdir().expect("dir");
    let (outbox, commands, _, store) = start(&dir);
    let answers = queued(&outbox);
    let (relay, _handed_over) = mpsc::channel(64);

    let writer = spawn_writer(store, &outbox, commands, relay, limits, metrics());
    let outcomes = results(answers);
    drop(outbox);
    writer.expect("writer").join().expect("writer stops");
    outcomes
}

#[test]
fn a_record_that_cannot_be_stored_does_not_fail_its_neighbours() {
    let records = [record(1), record(2), record(1), record(3)];

    let outcomes = answers_of(limits(64, u64::MAX), |outbox| queue(outbox, records));

    let stored: Vec<bool> = outcomes.iter().map(Result::is_ok).collect();
    assert_eq!(
        stored,
        [true, true, false, true],
        "only the duplicate id is refused"
    );
}

#[test]
fn a_full_outbox_refuses_new_records_and_keeps_the_stored_ones() {
    let outcomes = answers_of(limits(64, 3), |outbox| queue(outbox, (0..5).map(record)));

    let refused: Vec<bool> = outcomes
        .iter()
        .map(|r| *r == Err(OutboxError::Full { limit: 3 }))
        .collect();
    assert_eq!(refused, [false, false, false, true, true]);
}

#[test]
fn records_offered_after_close_are_refused_as_shutting_down() {
    let outcomes = answers_of(limits(64, u64::MAX), |outbox| {
        outbox
            .commands
            .try_send(Command::Close)
            .expect("queue has room");
        queue(outbox, [record(1)])
    });

    assert_eq!(outcomes, [Err(OutboxError::ShuttingDown)]);
}

/// Queues `records` as one request, whose records are stored together.
fn queue_together(outbox: &Outbox, records: impl IntoIterator<Item = Record>) -> Vec<Answer> {
    let mut answers = Vec::new();
    let group = records
        .into_iter()
        .map(|record| {
            let (answer, answered) = oneshot::channel();
            answers.push(answered);
            NewRecord {
                record,
                idempotency: None,
                waiter: None,
                answer,
            }
        })
        .collect();
    outbox
        .commands
        .try_send(Command::Append(group))
        .expect("queue has room");
    answers
}

#[test]
fn a_request_whose_record_cannot_be_stored_stores_none_of_its_records() {
    let outcomes = answers_of(limits(64, u64::MAX), |outbox| {
        let mut answers = queue(outbox, [record(1)]);
        // The second record of this request repeats a stored message id.
        answers.extend(queue_together(outbox, [record(2), record(1), record(3)]));
        answers.extend(queue(outbox, [record(4)]));
        answers
    });

    let stored: Vec<bool> = outcomes.iter().map(Result::is_ok).collect();
    assert_eq!(stored, [true, false, false, false, true]);
}

#[test]
fn a_request_that_would_overfill_the_outbox_is_refused_whole() {
    let outcomes = answers_of(limits(64, 4), |outbox| {
        let mut answers = queue_together(outbox, (0..3).map(record));
        answers.extend(queue_together(outbox, (3..5).map(record)));
        answers.extend(queue_together(outbox, [record(5)]));
        answers
    });

    let refused: Vec<bool> = outcomes
        .iter()
        .map(|r| *r == Err(OutboxError::Full { limit: 4 }))
        .collect();
    assert_eq!(refused, [false, false, false, true, true, false]);
}
