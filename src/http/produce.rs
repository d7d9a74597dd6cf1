//! `POST /topics/{topic}` with the old middleware's body, `{"key": ..., "data": ...}`.
//!
//! The answer is `200` with Kafka's partition and offset once Kafka acknowledged the
//! record with `acks=all`. With the outbox on, a record Kafka has not acknowledged
//! within `ack_timeout_ms` is answered `202 Accepted`: it is durable and ponte
//! keeps delivering it, so the client must not send it again.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::LengthLimitError;
use serde::Serialize;
use tokio::sync::oneshot;

use super::error::ApiError;
use super::{AppState, Ingest};
use crate::record::{DeliveryReport, Placement};
use crate::relay::SendError;
use crate::validate::{self, Invalid};

/// Stores a record and answers once Kafka has it, or once `ack_timeout_ms` passed.
pub(super) async fn produce(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Path(topic) = path.map_err(|rejection| Invalid::Path(rejection.body_text()))?;
    validate::topic_name(&topic)?;
    require_json(&headers)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let record = validate::middleware_record(topic, &bytes)?;

    let message_id = record.message_id.clone();
    let (waiter, report) = oneshot::channel();
    let placement = match &state.ingest {
        Ingest::Outbox(outbox) => {
            outbox
                .append(record, Some(waiter))
                .await
                .map_err(|err| ApiError::NotStored(err.to_string()))?;
            state.counters.record_received();
            wait_for_kafka(report, state.ack_timeout).await
        }
        Ingest::Direct(publisher) => {
            publisher
                .send(&record, None, Some(waiter))
                .map_err(|(err, _)| match err {
                    SendError::QueueFull => ApiError::ProducerBusy,
                    SendError::Rejected(reason) => ApiError::NotDelivered(reason),
                })?;
            state.counters.record_received();
            Some(direct_report(report).await?)
        }
    };
    Ok(answer(&message_id, placement, started))
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
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
        } else {
            ApiError::BodyUnreadable(cause.to_string())
        }
    })
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

/// Without an outbox Kafka's report is the only record of the send, so the
/// request waits for it (librdkafka bounds that by `kafka_message_timeout_ms`).
async fn direct_report(report: oneshot::Receiver<DeliveryReport>) -> Result<Placement, ApiError> {
    match report.await {
        Ok(Ok(placement)) => Ok(placement),
        Ok(Err(reason)) => Err(ApiError::NotDelivered(reason)),
        Err(_) => Err(ApiError::NotDelivered("no delivery report".to_owned())),
    }
}

#[derive(Serialize)]
struct ProduceAnswer<'a> {
    success: bool,
    message_id: &'a str,
    offsets: Vec<OffsetEntry>,
    acks: &'static str,
    confirmed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    duration_ms: u64,
}

/// One entry of `offsets`, in the middleware's shape: the offset is a string.
#[derive(Serialize)]
struct OffsetEntry {
    offset: String,
    partition: i32,
    error_code: Option<u32>,
    error: Option<String>,
}

fn answer(message_id: &str, placement: Option<Placement>, started: Instant) -> Response {
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (status, body) = match placement {
        Some(placement) => (
            StatusCode::OK,
            ProduceAnswer {
                success: true,
                message_id,
                offsets: vec![OffsetEntry {
                    offset: placement.offset.to_string(),
                    partition: placement.partition,
                    error_code: None,
                    error: None,
                }],
                acks: "all",
                confirmed: true,
                status: None,
                message: None,
                duration_ms,
            },
        ),
        None => (
            StatusCode::ACCEPTED,
            ProduceAnswer {
                success: true,
                message_id,
                offsets: Vec::new(),
                acks: "all",
                confirmed: false,
                status: Some("pending"),
                message: Some(
                    "stored durably; Kafka has not confirmed it yet and ponte keeps delivering \
                     it, so do not send it again",
                ),
                duration_ms,
            },
        ),
    };
    (status, Json(body)).into_response()
}
