//! `POST /topics/{topic}` with the old middleware's body, `{"key": ..., "data": ...}`.
//!
//! The answer is `200` with Kafka's partition and offset once Kafka acknowledged the
//! record with `acks=all`. With the outbox on, a record Kafka has not acknowledged
//! within `ack_timeout_ms` is answered `202 Accepted`: it is durable and ponte
//! keeps delivering it, so the client must not send it again. A client that does
//! not want to wait asks for `202` right after the durable commit with
//! `Prefer: respond-async` or `?async=true`.
//!
//! A client may make a repeat harmless with an `Idempotency-Key` header (or a
//! `message_id` in the body): a repeat with the same key and the same record gets
//! the first answer again and creates nothing; the same key with another record
//! gets `409`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use http_body_util::LengthLimitError;
use tokio::sync::oneshot;
use tower_http::timeout::TimeoutError;

use super::answer::{ProduceAnswer, Progress};
use super::error::ApiError;
use super::{AppState, Ingest};
use crate::outbox::{Appended, Idempotency, Outbox, RowView};
use crate::record::{DeliveryReport, Placement, Record};
use crate::relay::{Outgoing, Publisher, SendError};
use crate::validate::{self, Invalid};

/// Header carrying the client's idempotency key.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Stores a record and answers once Kafka has it, or once `ack_timeout_ms` passed.
pub(super) async fn produce(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<ProduceAnswer, ApiError> {
    let started = Instant::now();
    let Path(topic) = path.map_err(|rejection| Invalid::Path(rejection.body_text()))?;
    validate::topic_name(&topic)?;
    require_json(&headers)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let submission = validate::middleware_record(topic, &bytes)?;
    validate::within_limits(&bytes, &submission.record, state.body_limits)?;
    let idempotency = idempotency(&headers, &submission)?;
    let respond_async = wants_async(&headers, &query);

    let record = submission.record;
    match &state.ingest {
        Ingest::Outbox(outbox) => {
            let request = Request {
                record,
                idempotency,
                respond_async,
                started,
            };
            stored(&state, outbox, request).await
        }
        Ingest::Direct(publisher) => direct(&state, publisher, &record, started).await,
    }
}

/// A validated request, ready to be stored.
struct Request {
    record: Record,
    idempotency: Option<Idempotency>,
    respond_async: bool,
    started: Instant,
}

async fn stored(
    state: &AppState,
    outbox: &Outbox,
    request: Request,
) -> Result<ProduceAnswer, ApiError> {
    let Request {
        record,
        idempotency,
        respond_async,
        started,
    } = request;
    let message_id = record.message_id.clone();
    let fingerprint = idempotency.as_ref().map(|i| i.fingerprint.clone());
    let (waiter, report) = oneshot::channel();
    let waiter = (!respond_async).then_some(waiter);

    let appended = outbox
        .append(record, idempotency, waiter)
        .await
        .map_err(|err| ApiError::NotStored(err.to_string()))?;
    match appended {
        Appended::Stored(_) => {
            state.counters.record_received();
            let progress = if respond_async {
                Progress::Queued
            } else {
                match wait_for_kafka(report, state.ack_timeout).await {
                    Some(placement) => Progress::Delivered(placement),
                    None => Progress::Pending,
                }
            };
            Ok(ProduceAnswer::new(message_id, progress, started))
        }
        Appended::Repeat(earlier) => {
            if earlier.fingerprint.as_deref() != fingerprint.as_deref() {
                return Err(ApiError::IdempotencyConflict {
                    message_id: earlier.message_id,
                });
            }
            let wait = if respond_async {
                Duration::ZERO
            } else {
                state.ack_timeout
            };
            let settled = settled_within(state, *earlier, wait).await;
            Ok(repeat(&settled, started))
        }
    }
}

/// The earlier row once Kafka acknowledged or dead-lettered it, or as it is after
/// `wait`: a repeat waits as long as the first request would have.
async fn settled_within(state: &AppState, mut earlier: RowView, wait: Duration) -> RowView {
    const POLL: Duration = Duration::from_millis(20);
    let deadline = Instant::now() + wait;
    while matches!(earlier.status.as_str(), "pending" | "failed") && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        let message_id = earlier.message_id.clone();
        match state.read_outbox(move |b| b.find(&message_id)).await {
            Some(Ok(Some(row))) => earlier = row,
            _ => break,
        }
    }
    earlier
}

/// The answer to a repeat of an earlier request: the same id, and Kafka's
/// placement once it is known.
fn repeat(earlier: &RowView, started: Instant) -> ProduceAnswer {
    let progress = match earlier.placement() {
        Some(placement) => Progress::Delivered(placement),
        None if earlier.status == "dlq" => Progress::DeadLettered,
        None => Progress::Pending,
    };
    ProduceAnswer::new(earlier.message_id.clone(), progress, started).repeated()
}

/// Without an outbox Kafka's report is the only record of the send, so the
/// request waits for it (librdkafka bounds that by `kafka_message_timeout_ms`).
async fn direct(
    state: &AppState,
    publisher: &Publisher,
    record: &Record,
    started: Instant,
) -> Result<ProduceAnswer, ApiError> {
    let (waiter, report) = oneshot::channel();
    let outgoing = Outgoing {
        record,
        row_id: None,
        retry_count: 0,
        scheduled: false,
        waiter: Some(waiter),
    };
    publisher.send(outgoing).map_err(|(err, _)| match err {
        SendError::QueueFull => ApiError::ProducerBusy,
        SendError::Rejected(reason) => ApiError::NotDelivered(reason),
    })?;
    state.counters.record_received();
    let placement = match report.await {
        Ok(Ok(placement)) => placement,
        Ok(Err(reason)) => return Err(ApiError::NotDelivered(reason)),
        Err(_) => return Err(ApiError::NotDelivered("no delivery report".to_owned())),
    };
    let message_id = record.message_id.clone();
    Ok(ProduceAnswer::new(
        message_id,
        Progress::Delivered(placement),
        started,
    ))
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.get_all(header::CONTENT_TYPE).iter().count() > 1 {
        return Err(ApiError::UnsupportedMediaType {
            found: "more than one Content-Type header".to_owned(),
        });
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let essence = content_type
        .as_deref()
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType {
            found: content_type.unwrap_or_else(|| "none".to_owned()),
        }),
    }
}

/// Reads the whole body, refusing it as soon as it is known to exceed `limit`:
/// at once from `Content-Length`, or while reading when the client sent none.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::BodyTooLarge { limit });
    }

    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let cause = err.into_inner();
        if cause.downcast_ref::<LengthLimitError>().is_some() {
            ApiError::BodyTooLarge { limit }
        } else if cause.downcast_ref::<TimeoutError>().is_some() {
            ApiError::BodyTimeout
        } else {
            ApiError::BodyUnreadable(cause.to_string())
        }
    })
}

/// The request's idempotency key: the `Idempotency-Key` header, else a
/// `message_id` the client put in the body.
fn idempotency(
    headers: &HeaderMap,
    submission: &validate::Submission,
) -> Result<Option<Idempotency>, Invalid> {
    let from_header = match headers.get(IDEMPOTENCY_KEY) {
        Some(value) => match value.to_str() {
            Ok(key) if validate::client_id(key) => Some(key.to_owned()),
            _ => return Err(Invalid::BadIdempotencyKey),
        },
        None => None,
    };
    let record = &submission.record;
    let key = from_header.or_else(|| {
        submission
            .client_message_id
            .then(|| record.message_id.clone())
    });
    Ok(key.map(|key| Idempotency {
        key,
        fingerprint: record.fingerprint(),
    }))
}

fn wants_async(headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
    let preferred = headers
        .get_all(header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("respond-async"));
    let asked = query
        .get("async")
        .is_some_and(|value| matches!(value.as_str(), "true" | "1"));
    preferred || asked
}

/// Kafka's placement, if it acknowledged within `limit`. A failed send or a
/// timeout both leave a durable record that ponte keeps delivering: `None`.
async fn wait_for_kafka(
    report: oneshot::Receiver<DeliveryReport>,
    limit: Duration,
) -> Option<Placement> {
    match tokio::time::timeout(limit, report).await {
        Ok(Ok(Ok(placement))) => Some(placement),
        _ => None,
    }
}
