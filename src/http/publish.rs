//! Publishing validated records, whatever API they came through: stored in the
//! outbox (all of a request's records in one commit), then waited for until
//! Kafka acknowledged them or `ack_timeout_ms` passed; or, without an outbox,
//! handed straight to the producer.
//!
//! The result is one [`Fate`] per record, in order, which each API turns into
//! its own answer.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::error::ApiError;
use super::{AppState, Ingest};
use crate::outbox::{Appended, Idempotency, RowView};
use crate::record::{DeliveryReport, Placement, Record};
use crate::relay::{Outgoing, SendError};

/// Where a record stands when the client is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Kafka acknowledged it.
    Delivered(Placement),
    /// Stored; Kafka has not acknowledged it yet.
    Pending,
    /// Stored; the client asked not to wait for Kafka.
    Queued,
    /// Stored earlier and moved to the dead-letter topic since.
    DeadLettered,
    /// Its idempotency key names an earlier, different record; nothing stored.
    Conflict,
    /// Without an outbox: Kafka or the producer did not take it.
    Failed {
        /// Why.
        reason: String,
        /// The producer's queue was full: trying again soon may work.
        busy: bool,
    },
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fate {
    /// The record's message id (the earlier record's, for a repeat).
    pub(crate) message_id: String,
    /// Where it stands.
    pub(crate) progress: Progress,
    /// Whether an earlier request with the same idempotency key stored it.
    pub(crate) repeated: bool,
}

/// A validated record and its idempotency key, ready to publish.
#[derive(Debug)]
pub(crate) struct Submitted {
    /// The record.
    pub(crate) record: Record,
    /// Its idempotency key, if the client gave one.
    pub(crate) idempotency: Option<Idempotency>,
}

impl Submitted {
    /// `record` with the idempotency key `key`, if any.
    pub(crate) fn new(record: Record, key: Option<String>) -> Submitted {
        let idempotency = key.map(|key| Idempotency {
            fingerprint: record.fingerprint(),
            key,
        });
        Submitted {
            record,
            idempotency,
        }
    }
}

/// Publishes `records` and reports each one's fate, in order. The request waits
/// for Kafka at most until `started + ack_timeout`, unless `respond_async`.
pub(crate) async fn publish(
    state: &AppState,
    records: Vec<Submitted>,
    respond_async: bool,
    started: Instant,
) -> Result<Vec<Fate>, ApiError> {
    let accepted = accept(state, records, respond_async).await?;
    Ok(settle(state, accepted, deadline(state, respond_async, started)).await)
}

/// Until when a request that arrived at `started` waits for Kafka.
pub(crate) fn deadline(state: &AppState, respond_async: bool, started: Instant) -> Instant {
    started
        + if respond_async {
            Duration::ZERO
        } else {
            state.ack_timeout
        }
}

/// A record taken for publishing, and how its fate will be known.
#[derive(Debug)]
pub(crate) struct Accepted {
    message_id: String,
    known: Known,
}

#[derive(Debug)]
enum Known {
    /// Stored; Kafka's report arrives here.
    Stored(oneshot::Receiver<DeliveryReport>),
    /// Stored; nobody waits for Kafka.
    Queued,
    /// An earlier request stored it (or another record under the same key).
    Repeat {
        earlier: Box<RowView>,
        fingerprint: Option<String>,
    },
    /// Handed to the producer without an outbox.
    Sent(oneshot::Receiver<DeliveryReport>),
    /// The producer did not take it.
    Refused(SendError),
}

/// Takes `records` in order: stores them in the outbox, all in one commit, or
/// without an outbox hands them to the producer. Once this returns, later
/// records cannot overtake them.
pub(crate) async fn accept(
    state: &AppState,
    records: Vec<Submitted>,
    respond_async: bool,
) -> Result<Vec<Accepted>, ApiError> {
    match &state.ingest {
        Ingest::Outbox(outbox) => {
            let mut reports = Vec::with_capacity(records.len());
            let mut fingerprints = Vec::with_capacity(records.len());
            let mut message_ids = Vec::with_capacity(records.len());
            let entries = records
                .into_iter()
                .map(|submitted| {
                    let (waiter, report) = oneshot::channel();
                    reports.push(report);
                    fingerprints.push(
                        submitted
                            .idempotency
                            .as_ref()
                            .map(|i| i.fingerprint.clone()),
                    );
                    message_ids.push(submitted.record.message_id.clone());
                    let waiter = (!respond_async).then_some(waiter);
                    (submitted.record, submitted.idempotency, waiter)
                })
                .collect();
            let appended = outbox
                .append_all(entries)
                .await
                .map_err(|err| ApiError::NotStored(err.to_string()))?;
            let answers = appended
                .into_iter()
                .zip(reports)
                .zip(fingerprints)
                .zip(message_ids);
            Ok(answers
                .map(
                    |(((appended, report), fingerprint), message_id)| match appended {
                        Appended::Stored(_) => {
                            state.counters.record_received();
                            let known = if respond_async {
                                Known::Queued
                            } else {
                                Known::Stored(report)
                            };
                            Accepted { message_id, known }
                        }
                        Appended::Repeat(earlier) => Accepted {
                            message_id: earlier.message_id.clone(),
                            known: Known::Repeat {
                                earlier,
                                fingerprint,
                            },
                        },
                    },
                )
                .collect())
        }
        Ingest::Direct(publisher) => Ok(records
            .into_iter()
            .map(|Submitted { record, .. }| {
                let (waiter, report) = oneshot::channel();
                let outgoing = Outgoing {
                    record: &record,
                    row_id: None,
                    retry_count: 0,
                    scheduled: false,
                    waiter: Some(waiter),
                };
                let known = match publisher.send(outgoing) {
                    Ok(()) => {
                        state.counters.record_received();
                        Known::Sent(report)
                    }
                    Err((err, _)) => Known::Refused(err),
                };
                Accepted {
                    message_id: record.message_id,
                    known,
                }
            })
            .collect()),
    }
}

/// Each accepted record's fate, waiting for Kafka until `deadline` (without an
/// outbox, until Kafka's report: it is the only record of the send).
pub(crate) async fn settle(
    state: &AppState,
    accepted: Vec<Accepted>,
    deadline: Instant,
) -> Vec<Fate> {
    let mut fates = Vec::with_capacity(accepted.len());
    for Accepted { message_id, known } in accepted {
        let (progress, repeated) = match known {
            Known::Stored(report) => (wait_for_kafka(report, deadline).await, false),
            Known::Queued => (Progress::Queued, false),
            Known::Repeat {
                earlier,
                fingerprint,
            } => (
                repeat(state, *earlier, fingerprint.as_deref(), deadline).await,
                true,
            ),
            Known::Sent(report) => {
                let progress = match report.await {
                    Ok(Ok(placement)) => Progress::Delivered(placement),
                    Ok(Err(reason)) => Progress::Failed {
                        reason,
                        busy: false,
                    },
                    Err(_) => Progress::Failed {
                        reason: "no delivery report".to_owned(),
                        busy: false,
                    },
                };
                (progress, false)
            }
            Known::Refused(SendError::QueueFull) => (
                Progress::Failed {
                    reason: "kafka producer queue is full".to_owned(),
                    busy: true,
                },
                false,
            ),
            Known::Refused(SendError::Rejected(reason)) => (
                Progress::Failed {
                    reason,
                    busy: false,
                },
                false,
            ),
        };
        fates.push(Fate {
            message_id,
            progress,
            repeated,
        });
    }
    fates
}

/// Kafka's placement if it acknowledged before `deadline`. A failed send or a
/// timeout both leave a durable record that ponte keeps delivering: `Pending`.
async fn wait_for_kafka(report: oneshot::Receiver<DeliveryReport>, deadline: Instant) -> Progress {
    match tokio::time::timeout_at(deadline.into(), report).await {
        Ok(Ok(Ok(placement))) => Progress::Delivered(placement),
        _ => Progress::Pending,
    }
}

/// Where a repeat of an earlier record stands: where the earlier one does, once
/// Kafka acknowledged or dead-lettered it or `deadline` passed, as the first
/// request would have waited. A repeat with another record is a conflict.
async fn repeat(
    state: &AppState,
    mut earlier: RowView,
    fingerprint: Option<&str>,
    deadline: Instant,
) -> Progress {
    const POLL: Duration = Duration::from_millis(20);
    if earlier.fingerprint.as_deref() != fingerprint {
        return Progress::Conflict;
    }
    while matches!(earlier.status.as_str(), "pending" | "failed") && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        let message_id = earlier.message_id.clone();
        match state.read_outbox(move |b| b.find(&message_id)).await {
            Some(Ok(Some(row))) => earlier = row,
            _ => break,
        }
    }
    match earlier.placement() {
        Some(placement) => Progress::Delivered(placement),
        None if earlier.status == "dlq" => Progress::DeadLettered,
        None => Progress::Pending,
    }
}
