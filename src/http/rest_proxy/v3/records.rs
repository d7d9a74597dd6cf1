//! REST Proxy v3 records.
//!
//! `POST /v3/clusters/{cluster_id}/topics/{topic}/records` takes one record and
//! answers with its result. Sent as a stream (`Transfer-Encoding: chunked`, or
//! several JSON objects one after another), it takes records for as long as the
//! client sends them and streams one result per record back, in order; records
//! that arrive together are stored together. `records:batch` takes
//! `{"entries": [...]}` and answers `207` with the `successes` and `failures`,
//! each under its entry's id.
//!
//! A result's `error_code` is an HTTP status, as the REST Proxy's are: `200`
//! once Kafka acknowledged the record, `202` when it is stored durably and ponte
//! keeps delivering it (do not send it again), `4xx` for a record that was not
//! stored, `5xx` for a record ponte could not take.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::produce::{Request, read_body};
use crate::http::publish::{Fate, Progress, Submitted, accept, deadline, settle};
use crate::http::rest_proxy::{self, check_target};
use crate::validate::rest_proxy::{V3Submission, V3Type, v3_batch, v3_record};
use crate::validate::{self, Invalid};

use super::cluster;

/// Results of a stream that may wait to be written before reading stops.
const STREAM_BACKLOG: usize = 64;

/// Checks the path of a records request: a usable topic that exists, and this
/// cluster's id (unless Kafka is away, when records are taken all the same).
async fn records_target(
    state: &AppState,
    headers: &HeaderMap,
    cluster_id: &str,
    topic: &str,
) -> Result<String, ApiError> {
    validate::topic_name(topic)?;
    require_json(headers)?;
    let id = if state.connectivity.is_connected() {
        cluster(state, headers, Some(cluster_id)).await?.id
    } else {
        cluster_id.to_owned()
    };
    check_target(state, topic, []).await?;
    Ok(id)
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match rest_proxy::content_type(headers)? {
        Some((_, essence)) if essence == "application/json" => Ok(()),
        other => Err(ApiError::UnsupportedMediaType {
            found: other.map_or_else(|| "none".to_owned(), |(sent, _)| sent),
        }),
    }
}

/// `POST /v3/clusters/{cluster_id}/topics/{topic}/records`: one record, or a
/// stream of them.
pub(in crate::http) async fn produce(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Path((cluster_id, topic)) =
        path.map_err(|rejection| Invalid::Path(rejection.body_text()))?;
    let cluster_id = records_target(&state, &headers, &cluster_id, &topic).await?;
    let request = Request {
        headers: &headers,
        query: &query,
        started,
    };
    let target = Target {
        cluster_id,
        topic,
        key: request.idempotency_key()?,
        respond_async: request.respond_async(),
    };
    let chunked = headers
        .get(header::TRANSFER_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    let length_unknown = !headers.contains_key(header::CONTENT_LENGTH);
    if chunked || length_unknown {
        return Ok(stream(state, target, body));
    }

    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let values = split_values(&bytes).map_err(|err| Invalid::MalformedJson(err.to_string()))?;
    if values.is_empty() {
        return Err(Invalid::Body("the body holds no record".to_owned()).into());
    }
    let alone = values.len() == 1;
    let numbered: Vec<(usize, &RawValue)> = values.into_iter().enumerate().collect();
    let parsed = parse_records(&state, &target, &numbered, !alone).await;
    // The parsed records own their data: let go of the body before the wait for
    // Kafka, so that many clients waiting with large requests hold each only once.
    drop(numbered);
    drop(bytes);
    let results = store_and_wait(&state, &target, parsed, started).await?;
    if alone {
        // A single record's result is the answer, with its status.
        let (status, result) = results
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::NotStored("no result for the record".to_owned()))?;
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        return Ok((status, Json(result)).into_response());
    }
    let mut text = Vec::new();
    for (_, result) in results {
        push_line(&mut text, &result);
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// Where a records request goes, and how it asked to be answered.
struct Target {
    cluster_id: String,
    topic: String,
    /// The request's `Idempotency-Key`.
    key: Option<String>,
    respond_async: bool,
}

impl Target {
    /// The idempotency key of the `n`th record: a lone record takes the
    /// request's key, records of a stream one derived from it and their place.
    fn key_of(&self, n: usize, alone: bool) -> Option<String> {
        self.key.as_ref().map(|key| {
            if alone {
                key.clone()
            } else {
                format!("{key}#{n}")
            }
        })
    }
}

/// Stores the parsed records of one request and returns each one's result
/// with its status, in order. Invalid records get their error; the valid ones
/// are stored together.
async fn store_and_wait(
    state: &AppState,
    target: &Target,
    parsed: Vec<Parsed>,
    arrived: Instant,
) -> Result<Vec<(u16, Value)>, ApiError> {
    let (results, pending) = store(state, target, parsed).await?;
    let deadline = deadline(state, target.respond_async, arrived);
    Ok(finish(state, target, results, pending, deadline).await)
}

/// One record of a request, checked and with its idempotency key, or the
/// status and result that refuse it.
type Parsed = Result<(V3Submission, Option<String>), (u16, Value)>;

async fn parse_records(
    state: &AppState,
    target: &Target,
    records: &[(usize, &RawValue)],
    streamed: bool,
) -> Vec<Parsed> {
    let mut parsed = Vec::with_capacity(records.len());
    for &(n, raw) in records {
        let submission = v3_record(&target.topic, raw.get().as_bytes(), state.body_limits);
        parsed.push(admit(state, target, submission, target.key_of(n, !streamed)).await);
    }
    parsed
}

/// Checks a parsed record against what Kafka knows of its partition and
/// against its topic's schema.
async fn admit(
    state: &AppState,
    target: &Target,
    parsed: Result<V3Submission, Invalid>,
    key: Option<String>,
) -> Parsed {
    let refusal = |err: &ApiError| {
        let status = err.status_and_code().0.as_u16();
        let mut result = error_result(status, &err.to_string());
        if let ApiError::SchemaViolation { violations, .. } = err {
            result["violations"] = json!(violations);
        }
        (status, result)
    };
    let submission = parsed.map_err(|invalid| refusal(&ApiError::from(invalid)))?;
    if let Some(partition) = submission.record.partition {
        check_target(state, &target.topic, [partition])
            .await
            .map_err(|err| refusal(&err))?;
    }
    state
        .check_schema(&submission.record)
        .map_err(|err| refusal(&err))?;
    Ok((submission, key))
}

/// What is known of each record once the valid ones are stored.
enum Slot {
    /// Refused before storing, with its result.
    Refused(u16, Value),
    /// Stored (or found stored); its fate is the next of the accepted ones.
    Accepted(Shape),
}

/// What a record's result reports of it: the types and sizes of its key and
/// value, and the timestamp the client gave.
#[derive(Debug, Clone, Copy)]
struct Shape {
    key: Option<(V3Type, usize)>,
    value: Option<(V3Type, usize)>,
    timestamp_ms: Option<i64>,
}

impl Shape {
    fn of(submission: &V3Submission) -> Shape {
        let record = &submission.record;
        let size = |bytes: Option<&Vec<u8>>| bytes.map_or(0, Vec::len);
        Shape {
            key: submission.key_type.map(|t| (t, size(record.key.as_ref()))),
            value: submission
                .value_type
                .map(|t| (t, size(record.value.as_ref()))),
            timestamp_ms: record.kafka_timestamp_ms,
        }
    }
}

async fn store(
    state: &AppState,
    target: &Target,
    parsed: Vec<Parsed>,
) -> Result<(Vec<Slot>, Vec<crate::http::publish::Accepted>), ApiError> {
    let mut slots = Vec::with_capacity(parsed.len());
    let mut submitted = Vec::new();
    for entry in parsed {
        match entry {
            Ok((submission, key)) => {
                slots.push(Slot::Accepted(Shape::of(&submission)));
                submitted.push(Submitted::new(submission.record, key));
            }
            Err((status, result)) => slots.push(Slot::Refused(status, result)),
        }
    }
    let accepted = if submitted.is_empty() {
        Vec::new()
    } else {
        accept(state, submitted, target.respond_async).await?
    };
    Ok((slots, accepted))
}

async fn finish(
    state: &AppState,
    target: &Target,
    slots: Vec<Slot>,
    accepted: Vec<crate::http::publish::Accepted>,
    deadline: Instant,
) -> Vec<(u16, Value)> {
    let mut fates = settle(state, accepted, deadline).await.into_iter();
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Refused(status, result) => (status, result),
            Slot::Accepted(shape) => match fates.next() {
                Some(fate) => result(target, &fate, shape),
                None => (500, error_result(500, "no result for the record")),
            },
        })
        .collect()
}

fn error_result(status: u16, message: &str) -> Value {
    json!({ "error_code": status, "message": message })
}

/// A stored record's result in the REST Proxy's shape, with ponte's
/// `message_id` (and `status` while Kafka has not acknowledged it).
fn result(target: &Target, fate: &Fate, shape: Shape) -> (u16, Value) {
    let mut result = json!({
        "cluster_id": target.cluster_id,
        "topic_name": target.topic,
        "message_id": fate.message_id,
    });
    let status = match &fate.progress {
        Progress::Delivered(placement) => {
            result["partition_id"] = json!(placement.partition);
            result["offset"] = json!(placement.offset);
            200
        }
        Progress::Pending | Progress::Queued => {
            result["status"] = json!("pending");
            result["message"] = json!(
                "stored durably; Kafka has not confirmed it yet and ponte keeps delivering it, \
                 so do not send it again"
            );
            202
        }
        Progress::DeadLettered => {
            return (
                500,
                error_result(
                    500,
                    &format!(
                        "stored earlier, then moved to the dead-letter topic; see /messages/{}",
                        fate.message_id
                    ),
                ),
            );
        }
        Progress::Conflict => {
            return (
                409,
                error_result(
                    409,
                    &format!(
                        "this idempotency key was used for a different record; the first one is {}",
                        fate.message_id
                    ),
                ),
            );
        }
        Progress::Failed { reason, busy } => {
            let status = if *busy { 503 } else { 500 };
            return (
                status,
                error_result(status, &format!("Kafka error: {reason}")),
            );
        }
    };
    result["error_code"] = json!(status);
    if let Some(timestamp) = shape.timestamp_ms.and_then(rfc3339) {
        result["timestamp"] = json!(timestamp);
    }
    for (name, part) in [("key", shape.key), ("value", shape.value)] {
        if let Some((kind, size)) = part {
            result[name] = json!({ "type": kind.name(), "size": size });
        }
    }
    (status, result)
}

fn rfc3339(ms: i64) -> Option<String> {
    let since = std::time::Duration::from_millis(u64::try_from(ms).ok()?);
    Some(humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + since).to_string())
}

/// The JSON values of a body that holds one or more of them, one after another.
fn split_values(bytes: &[u8]) -> Result<Vec<&RawValue>, serde_json::Error> {
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<&RawValue>()
        .collect()
}

fn push_line(out: &mut Vec<u8>, value: &Value) {
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.push(b'\n');
    }
}

/// Serves a stream: reads records as they arrive, stores each stretch that
/// arrived together in one commit, and writes their results back in order.
fn stream(state: AppState, target: Target, body: Body) -> Response {
    let (results, written) = mpsc::channel::<tokio::task::JoinHandle<Vec<u8>>>(STREAM_BACKLOG);
    tokio::spawn(read_stream(state, target, body, results));
    let output = futures_util::stream::unfold(written, |mut written| async move {
        let next = written.recv().await?;
        let bytes = next.await.unwrap_or_else(|_| {
            let mut out = Vec::new();
            push_line(&mut out, &error_result(500, "the record's result was lost"));
            out
        });
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(bytes)),
            written,
        ))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(output),
    )
        .into_response()
}

async fn read_stream(
    state: AppState,
    target: Target,
    body: Body,
    results: mpsc::Sender<tokio::task::JoinHandle<Vec<u8>>>,
) {
    let target = std::sync::Arc::new(target);
    let mut frames = body.into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut next_number = 0usize;
    let ready = |lines: Vec<u8>| tokio::spawn(async move { lines });
    loop {
        let frame = frames.next().await;
        let ended = frame.is_none();
        match frame {
            Some(Ok(bytes)) => buffer.extend_from_slice(&bytes),
            Some(Err(err)) => {
                let mut out = Vec::new();
                push_line(
                    &mut out,
                    &error_result(400, &format!("request body could not be read: {err}")),
                );
                let _ = results.send(ready(out)).await;
                return;
            }
            None => {}
        }
        // Every complete value in the buffer, and where the complete ones end.
        let mut values = serde_json::Deserializer::from_slice(&buffer).into_iter::<Box<RawValue>>();
        let mut complete = Vec::new();
        let mut broken = None;
        for value in values.by_ref() {
            match value {
                Ok(raw) => complete.push(raw),
                Err(err) if err.is_eof() && !ended => break,
                Err(err) => {
                    broken = Some(err);
                    break;
                }
            }
        }
        let consumed = values.byte_offset();
        if !complete.is_empty() {
            let first = next_number;
            next_number += complete.len();
            let (state, target) = (state.clone(), std::sync::Arc::clone(&target));
            let arrived = Instant::now();
            // Storing happens here, in arrival order; waiting for Kafka does not
            // hold up reading.
            let stored = {
                let numbered: Vec<(usize, &RawValue)> = complete
                    .iter()
                    .enumerate()
                    .map(|(i, raw)| (first + i, &**raw))
                    .collect();
                let parsed = parse_records(&state, &target, &numbered, true).await;
                store(&state, &target, parsed).await
            };
            let job = tokio::spawn(async move {
                let mut out = Vec::new();
                match stored {
                    Ok((slots, accepted)) => {
                        let deadline = deadline(&state, target.respond_async, arrived);
                        for (_, result) in finish(&state, &target, slots, accepted, deadline).await
                        {
                            push_line(&mut out, &result);
                        }
                    }
                    Err(err) => {
                        let (status, _) = err.status_and_code();
                        let message = err.to_string();
                        for _ in 0..complete.len() {
                            push_line(&mut out, &error_result(status.as_u16(), &message));
                        }
                    }
                }
                out
            });
            if results.send(job).await.is_err() {
                return;
            }
        }
        buffer.drain(..consumed);
        if let Some(err) = broken {
            let mut out = Vec::new();
            push_line(
                &mut out,
                &error_result(
                    400,
                    &format!("request body is not valid JSON: {err}; the stream ends here"),
                ),
            );
            let _ = results.send(ready(out)).await;
            return;
        }
        if buffer.len() > state.max_body_bytes {
            let mut out = Vec::new();
            let message = format!(
                "a record is larger than the limit of {} bytes; the stream ends here",
                state.max_body_bytes
            );
            push_line(&mut out, &error_result(413, &message));
            let _ = results.send(ready(out)).await;
            return;
        }
        if ended {
            return;
        }
    }
}

/// `POST /v3/clusters/{cluster_id}/topics/{topic}/records:batch`: `207` with the
/// result of each entry under its id.
pub(in crate::http) async fn produce_batch_entries(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Path((cluster_id, topic)) =
        path.map_err(|rejection| Invalid::Path(rejection.body_text()))?;
    let cluster_id = records_target(&state, &headers, &cluster_id, &topic).await?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let request = Request {
        headers: &headers,
        query: &query,
        started,
    };
    let key = request.idempotency_key()?;
    let target = Target {
        cluster_id,
        topic,
        key: None,
        respond_async: request.respond_async(),
    };
    let entries = v3_batch(&target.topic, &bytes, state.body_limits)?;
    // Let go of the body before the wait for Kafka; the entries own their data.
    drop(bytes);

    let mut ids = Vec::with_capacity(entries.len());
    let mut parsed: Vec<Parsed> = Vec::with_capacity(entries.len());
    for (id, entry) in entries {
        let derived = key.as_ref().map(|key| format!("{key}#{id}"));
        parsed.push(admit(&state, &target, entry, derived).await);
        ids.push(id);
    }
    let (slots, accepted) = store(&state, &target, parsed).await?;
    let deadline = deadline(&state, target.respond_async, started);
    let results = finish(&state, &target, slots, accepted, deadline).await;

    let mut successes = Vec::new();
    let mut failures = Vec::new();
    for (id, (status, mut result)) in ids.into_iter().zip(results) {
        result["id"] = json!(id);
        if status < 300 {
            successes.push(result);
        } else {
            failures.push(result);
        }
    }
    let body = BatchAnswer {
        successes,
        failures,
    };
    Ok((StatusCode::MULTI_STATUS, Json(body)).into_response())
}

#[derive(Serialize)]
struct BatchAnswer {
    successes: Vec<Value>,
    failures: Vec<Value>,
}
