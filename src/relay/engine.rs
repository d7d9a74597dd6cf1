//! The relay's loop: the ordinary path, the pause, and the scheduled path, as
//! described in the [`super`] module documentation.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use super::Relay;
use super::backoff::Pause;
use super::delivery::{Notice, Outgoing, SendError};
use super::lanes::{Lane, Lanes};
use crate::outbox::{Backlog, Change, Committed, StoreError};
use crate::record::{DeliveryWaiter, StoredRecord, now_ms};

/// Rows read from the outbox at a time.
const PAGE_SIZE: usize = 1_000;

/// How long to wait before offering a record again to a full producer queue.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(5);

/// How long to wait before reading the outbox again after a read failed.
const READ_FAILURE_PAUSE: Duration = Duration::from_secs(1);

/// How often the scheduled path looks for due rows when nothing calls it sooner;
/// this is also how soon an operator's retry made in `sqlite3` is noticed.
const PASS_INTERVAL: Duration = Duration::from_secs(1);

/// How often to look again whether the producer has drained, to end a pause.
const DRAIN_CHECK: Duration = Duration::from_millis(20);

/// What became of a record offered to the producer.
#[derive(Debug, PartialEq, Eq)]
enum Handed {
    /// The producer took it; its report will come.
    Taken,
    /// The producer refused it at once; it was reported as refused.
    Refused,
    /// The relay paused while waiting for room; the record stays in the outbox.
    Abandoned,
}

pub(super) struct Engine<B> {
    relay: Relay<B>,
    /// Highest row id handed over on the ordinary path.
    last_sent: i64,
    lanes: Lanes,
    pause: Pause,
    /// When to look again whether the producer drained, while a pause ends.
    drain_check: Option<Instant>,
    /// Records Kafka had acknowledged when the running pause began.
    sent_at_pause: u64,
    /// Records sent by the scheduled path whose reports have not arrived.
    scheduled_in_flight: usize,
    /// Rows whose dead-letter copy is on its way.
    dead_letters: HashSet<i64>,
    /// When the scheduled path runs next.
    next_pass: Instant,
    /// Rows held back on the ordinary path, to be marked as scheduled.
    deferred: Vec<i64>,
}

impl<B: Backlog> Engine<B> {
    pub(super) fn new(relay: Relay<B>) -> Engine<B> {
        let pause = Pause::new(relay.policy.backoff);
        Engine {
            relay,
            last_sent: 0,
            lanes: Lanes::default(),
            pause,
            drain_check: None,
            sent_at_pause: 0,
            scheduled_in_flight: 0,
            dead_letters: HashSet::new(),
            next_pass: Instant::now(),
            deferred: Vec::new(),
        }
    }

    pub(super) async fn run(mut self) {
        self.load_lanes().await;
        self.sweep(None).await;
        loop {
            let wake = self.next_wake();
            tokio::select! {
                biased;
                Some(notice) = self.relay.notices.recv() => self.on_notice(notice),
                batch = self.relay.live.recv() => match batch {
                    Some(batch) => self.on_batch(batch).await,
                    None => break,
                },
                () = tokio::time::sleep_until(wake) => self.on_wake().await,
            }
        }
        self.finish();
    }

    fn next_wake(&self) -> Instant {
        match (self.pause.until(), self.drain_check) {
            (Some(_), Some(check)) => check,
            (Some(until), None) => until,
            (None, _) => self.next_pass,
        }
    }

    // ----- the ordinary path -------------------------------------------------

    async fn on_batch(&mut self, batch: Vec<Committed>) {
        for committed in batch {
            if self.pause.is_paused() {
                // Stored, so nothing is lost: the sweep after the pause sends it.
                continue;
            }
            let id = committed.stored.id;
            if id <= self.last_sent {
                // Already read from the outbox and sent; dropping its waiter lets
                // the request answer 202 instead of waiting for nothing.
                continue;
            }
            if id > self.last_sent + 1 {
                self.sweep(Some(id)).await;
            }
            if self.ordinary(&committed.stored, committed.waiter).await != Handed::Abandoned {
                self.last_sent = id;
            }
        }
        self.flush_deferred().await;
    }

    /// Sends every unscheduled unsent row after the cursor and before `before`.
    async fn sweep(&mut self, before: Option<i64>) {
        loop {
            let last_sent = self.last_sent;
            let Some(page) = self.read(|b| b.unsent(last_sent, before, PAGE_SIZE)).await else {
                return;
            };
            let full_page = page.len() == PAGE_SIZE;
            for stored in page {
                self.relay.counters.record_retry();
                self.relay.metrics.retry(&stored.record.topic);
                if self.ordinary(&stored, None).await == Handed::Abandoned {
                    return;
                }
                self.last_sent = stored.id;
            }
            self.drain_notices();
            if !full_page || self.pause.is_paused() {
                break;
            }
        }
        if let Some(before) = before {
            self.last_sent = self.last_sent.max(before - 1);
        }
        self.flush_deferred().await;
    }

    async fn ordinary(&mut self, stored: &StoredRecord, waiter: Option<DeliveryWaiter>) -> Handed {
        let lane = Lane::of(
            &stored.record.topic,
            stored.record.key.as_deref(),
            stored.id,
        );
        if self.lanes.holds_back(&lane, stored.id) {
            self.deferred.push(stored.id);
            return Handed::Taken;
        }
        self.publish(stored, waiter, false).await
    }

    async fn flush_deferred(&mut self) {
        if self.deferred.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.deferred);
        if let Err(err) = self.relay.outbox.change(Change::Defer { ids }).await {
            tracing::warn!(error = %err, "could not hold records back behind a failed one");
        }
    }

    // ----- notices and the pause ---------------------------------------------

    fn on_notice(&mut self, notice: Notice) {
        match notice {
            Notice::Unavailable => self.begin_pause(),
            Notice::Refused { id, lane, due_ms } => {
                self.lanes.hold(lane, id);
                self.pass_at(due_ms);
            }
            Notice::ScheduledSettled { id, delivered } => {
                self.scheduled_in_flight = self.scheduled_in_flight.saturating_sub(1);
                if delivered {
                    self.lanes.release(id);
                    self.pass_at(now_ms());
                }
            }
            Notice::DeadLettered { id } => {
                self.dead_letters.remove(&id);
                self.lanes.release(id);
                self.pass_at(now_ms());
            }
            Notice::DeadLetterFailed { id } => {
                self.dead_letters.remove(&id);
                let retry = self.relay.policy.backoff.delay(1);
                self.next_pass = self.next_pass.min(Instant::now() + retry);
            }
        }
    }

    fn drain_notices(&mut self) {
        while let Ok(notice) = self.relay.notices.try_recv() {
            self.on_notice(notice);
        }
    }

    fn begin_pause(&mut self) {
        if self.pause.is_paused() {
            return;
        }
        let sent = self.relay.counters.sent();
        if sent > self.sent_at_pause {
            self.pause.reset();
        }
        self.sent_at_pause = sent;
        let until = self.pause.begin();
        self.relay.publisher.withdraw_queued();
        let pause_ms = until.saturating_duration_since(Instant::now()).as_millis() as u64;
        tracing::warn!(pause_ms, "kafka unavailable, pausing sends");
    }

    async fn on_wake(&mut self) {
        let now = Instant::now();
        if let Some(until) = self.pause.until() {
            if now >= until {
                self.end_pause().await;
            }
            return;
        }
        if now >= self.next_pass {
            self.pass().await;
        }
    }

    /// Ends the pause once every record handed over has been reported, then starts
    /// over from the oldest unsent row.
    async fn end_pause(&mut self) {
        if self.relay.publisher.in_flight() > 0 {
            self.drain_check = Some(Instant::now() + DRAIN_CHECK);
            return;
        }
        self.drain_check = None;
        self.drain_notices();
        self.pause.end();
        tracing::info!("resuming sends");
        self.last_sent = 0;
        self.sweep(None).await;
        self.next_pass = Instant::now();
    }

    // ----- the scheduled path ------------------------------------------------

    fn pass_at(&mut self, due_ms: i64) {
        let wait = u64::try_from(due_ms - now_ms()).unwrap_or(0);
        self.next_pass = self
            .next_pass
            .min(Instant::now() + Duration::from_millis(wait));
    }

    /// Sends the scheduled rows that are due, in id order, one pass at a time.
    async fn pass(&mut self) {
        self.next_pass = Instant::now() + PASS_INTERVAL;
        if self.scheduled_in_flight > 0 {
            // The report of the last one sent will call the next pass.
            return;
        }
        let now = now_ms();
        let mut after = 0;
        loop {
            let Some(page) = self.read(|b| b.scheduled(after, now, PAGE_SIZE)).await else {
                return;
            };
            let full_page = page.len() == PAGE_SIZE;
            for stored in page {
                after = stored.id;
                self.scheduled(&stored).await;
                if self.pause.is_paused() {
                    return;
                }
            }
            if !full_page {
                break;
            }
        }
        if let Some(Some(due)) = self.read(|b| b.next_scheduled_at()).await
            && due > now
        {
            self.pass_at(due);
        }
    }

    async fn scheduled(&mut self, stored: &StoredRecord) {
        let lane = Lane::of(
            &stored.record.topic,
            stored.record.key.as_deref(),
            stored.id,
        );
        if stored.retry_count >= i64::from(self.relay.policy.dead_letter_after) {
            if self.dead_letters.insert(stored.id) {
                self.lanes.hold(lane, stored.id);
                self.dead_letter(stored).await;
            }
            return;
        }
        if self.lanes.holds_back(&lane, stored.id) {
            return;
        }
        if stored.retry_count > 0 {
            self.lanes.hold(lane, stored.id);
        }
        self.relay.counters.record_retry();
        self.relay.metrics.retry(&stored.record.topic);
        if self.publish(stored, None, true).await != Handed::Abandoned {
            self.scheduled_in_flight += 1;
        }
    }

    async fn dead_letter(&mut self, stored: &StoredRecord) {
        let message_id = stored.record.message_id.clone();
        let found = self.read(move |b| b.find(&message_id)).await.flatten();
        let (error, class) = found.map_or((None, None), |row| (row.last_error, row.failure_class));
        let error = error.unwrap_or_else(|| "refused by kafka".to_owned());
        let class = class.unwrap_or_else(|| "permanent".to_owned());
        let sent = self.relay.publisher.send_dead_letter(
            &self.relay.dead_letter_topic,
            stored.id,
            &stored.record,
            (&error, &class),
            stored.retry_count,
        );
        if let Err(reason) = sent {
            tracing::warn!(
                message_id = %stored.record.message_id,
                error = ?reason,
                "dead-letter write not accepted, will retry"
            );
            self.dead_letters.remove(&stored.id);
        }
    }

    // ----- shared ------------------------------------------------------------

    async fn publish(
        &mut self,
        stored: &StoredRecord,
        mut waiter: Option<DeliveryWaiter>,
        scheduled: bool,
    ) -> Handed {
        loop {
            let outgoing = Outgoing {
                record: &stored.record,
                row_id: Some(stored.id),
                retry_count: stored.retry_count,
                scheduled,
                waiter,
            };
            match self.relay.publisher.send(outgoing) {
                Ok(()) => return Handed::Taken,
                Err((SendError::QueueFull, returned)) => {
                    waiter = returned;
                    tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                    self.drain_notices();
                    if self.pause.is_paused() {
                        return Handed::Abandoned;
                    }
                }
                Err((SendError::Rejected(reason), returned)) => {
                    if let Some(waiter) = returned {
                        let _ = waiter.send(Err(reason.clone()));
                    }
                    self.relay
                        .publisher
                        .refused_locally(stored, scheduled, &reason);
                    return Handed::Refused;
                }
            }
        }
    }

    async fn load_lanes(&mut self) {
        let Some(failing) = self.read(|b| b.failing()).await else {
            return;
        };
        for stored in failing {
            let lane = Lane::of(
                &stored.record.topic,
                stored.record.key.as_deref(),
                stored.id,
            );
            self.lanes.hold(lane, stored.id);
        }
    }

    /// Reads from the outbox, retrying a failed read until it succeeds or the relay
    /// is asked to stop.
    async fn read<T>(&mut self, query: impl Fn(&mut B) -> Result<T, StoreError>) -> Option<T> {
        loop {
            match query(&mut self.relay.backlog) {
                Ok(found) => return Some(found),
                Err(err) => {
                    tracing::error!(error = %err, "reading the outbox failed, retrying");
                    if self.relay.live.is_closed() {
                        return None;
                    }
                    tokio::time::sleep(READ_FAILURE_PAUSE).await;
                }
            }
        }
    }

    fn finish(self) {
        let publisher = &self.relay.publisher;
        if let Err(err) = publisher.flush(self.relay.flush_timeout) {
            tracing::warn!(
                error = %err,
                unreported = publisher.in_flight(),
                "producer not drained at shutdown; unsent records wait for the next start"
            );
        }
    }
}
