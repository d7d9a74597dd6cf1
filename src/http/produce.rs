//! `POST /topics/{topic}`: the old middleware's body, `{"key": ..., "data": ...}`,
//! and the entry to the REST Proxy's v2 produce on the same path.
//!
//! The middleware's answer is `200` with Kafka's partition and offset once Kafka acknowledged the
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
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use http_body_util::LengthLimitError;
use tower_http::timeout::TimeoutError;

use super::AppState;
use super::answer::ProduceAnswer;
use super::error::ApiError;
use super::publish::{Submitted, publish};
use super::rest_proxy::{self, ProduceMedia};
use crate::validate::{self, Invalid};

/// Header carrying the client's idempotency key.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// `POST /topics/{topic}`: the old middleware's body with `application/json`, or
/// a Confluent REST Proxy v2 request (told apart by its content type, or by its
/// `records` array when it comes as `application/json`).
pub(super) async fn produce(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Path(topic) = path.map_err(|rejection| Invalid::Path(rejection.body_text()))?;
    validate::topic_name(&topic)?;
    let media = rest_proxy::produce_media(&headers)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let request = Request {
        headers: &headers,
        query: &query,
        started,
    };
    match media {
        ProduceMedia::Json if !validate::rest_proxy::looks_like_v2(&bytes) => {
            middleware(&state, topic, &bytes, &request).await
        }
        media => rest_proxy::v2::produce(&state, &topic, None, media, bytes, &request).await,
    }
}

/// What the produce routes need of a request beside its body.
#[derive(Debug, Clone, Copy)]
pub(super) struct Request<'a> {
    pub(super) headers: &'a HeaderMap,
    pub(super) query: &'a HashMap<String, String>,
    pub(super) started: Instant,
}

impl Request<'_> {
    /// Whether the client asked for `202` right after the durable commit, with
    /// `Prefer: respond-async` or `?async=true`.
    pub(super) fn respond_async(&self) -> bool {
        let preferred = self
            .headers
            .get_all(header::HeaderName::from_static("prefer"))
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("respond-async"));
        let asked = self
            .query
            .get("async")
            .is_some_and(|value| matches!(value.as_str(), "true" | "1"));
        preferred || asked
    }

    /// The `Idempotency-Key` header, if the client sent one.
    pub(super) fn idempotency_key(&self) -> Result<Option<String>, Invalid> {
        match self.headers.get(IDEMPOTENCY_KEY) {
            Some(value) => match value.to_str() {
                Ok(key) if validate::client_id(key) => Ok(Some(key.to_owned())),
                _ => Err(Invalid::BadIdempotencyKey),
            },
            None => Ok(None),
        }
    }
}

/// The old middleware's `{"key": ..., "data": ...}`: stores the record and answers
/// once Kafka has it, or once `ack_timeout_ms` passed.
async fn middleware(
    state: &AppState,
    topic: String,
    bytes: &[u8],
    request: &Request<'_>,
) -> Result<Response, ApiError> {
    let submission = validate::middleware_record(topic, bytes)?;
    validate::within_limits(bytes, &submission.record, state.body_limits)?;
    state.check_schema(&submission.record)?;
    // The key: the `Idempotency-Key` header, else a `message_id` in the body.
    let record = submission.record;
    let key = request.idempotency_key()?.or_else(|| {
        submission
            .client_message_id
            .then(|| record.message_id.clone())
    });
    let submitted = vec![Submitted::new(record, key)];
    let fates = publish(state, submitted, request.respond_async(), request.started).await?;
    let fate = fates.into_iter().next().ok_or_else(|| {
        ApiError::NotStored("the outbox gave no answer for the record".to_owned())
    })?;
    Ok(ProduceAnswer::from_fate(fate, request.started)?.into_response())
}

/// Reads the whole body, refusing it as soon as it is known to exceed `limit`:
/// at once from `Content-Length`, or while reading when the client sent none.
pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
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
