//! The status and replay API: what became of a record, which records are in which
//! state, and sending failed or dead-lettered records again.
//!
//! - `GET /messages/{message_id}`: one record's status, attempts, last error,
//!   partition, offset and times;
//! - `GET /messages?status=&topic=&since=&until=&after=&limit=`: a page of records
//!   in arrival order; `next` in the answer is the `after` of the next page;
//! - `POST /messages/{message_id}/retry`: send a `failed` or `dlq` record again now;
//! - `POST /messages/replay` with `{"topic", "since", "until"}` (all optional):
//!   send dead-lettered records again.
//!
//! Times are milliseconds since the Unix epoch, or RFC 3339 text in requests.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use super::{AppState, Ingest};
use crate::outbox::{Backlog, Change, ListFilter, REPLAY_BATCH, ReplayFilter, RowView, StoreError};
use crate::validate;

/// Records in a listing page when the client does not say.
const DEFAULT_PAGE: usize = 100;
/// Most records in one listing page.
const MAX_PAGE: usize = 1_000;
/// The statuses a record can have.
const STATUSES: [&str; 4] = ["pending", "sent", "failed", "dlq"];

/// `GET /messages/{message_id}`.
pub(super) async fn show(
    State(state): State<AppState>,
    Path(message_id): Path<String>,
) -> Result<Json<RowView>, ApiError> {
    let wanted = message_id.clone();
    read(&state, move |backlog| backlog.find(&wanted))
        .await?
        .map(Json)
        .ok_or(ApiError::MessageNotFound(message_id))
}

/// Query of `GET /messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    status: Option<String>,
    topic: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<i64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct Page {
    messages: Vec<RowView>,
    next: Option<i64>,
}

/// `GET /messages`.
pub(super) async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|r| ApiError::BadQuery(r.body_text()))?;
    if let Some(status) = query.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::BadQuery(format!(
            "status {status:?} is not one of pending, sent, failed, dlq"
        )));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let filter = ListFilter {
        status: query.status,
        topic: query.topic,
        since_ms: parse_time("since", query.since.as_deref())?,
        until_ms: parse_time("until", query.until.as_deref())?,
        after_id: query.after.unwrap_or(0),
        limit,
    };
    let messages = read(&state, move |backlog| backlog.list(&filter)).await?;
    let next = (messages.len() == limit)
        .then(|| messages.last().map(|m| m.id))
        .flatten();
    Ok(Json(Page { messages, next }).into_response())
}

#[derive(Serialize)]
struct Retried<'a> {
    message_id: &'a str,
    status: &'static str,
}

/// `POST /messages/{message_id}/retry`.
pub(super) async fn retry(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(message_id): Path<String>,
) -> Result<Response, ApiError> {
    let wanted = message_id.clone();
    let Some(row) = read(&state, move |backlog| backlog.find(&wanted)).await? else {
        return Err(ApiError::MessageNotFound(message_id));
    };
    if !matches!(row.status.as_str(), "failed" | "dlq") {
        return Err(ApiError::NotRetriable {
            message_id,
            status: row.status,
        });
    }
    change(
        &state,
        Change::Retry {
            message_id: message_id.clone(),
        },
    )
    .await?;
    state
        .audit(caller, "record.retry", message_id.clone())
        .await;
    let body = Retried {
        message_id: &message_id,
        status: "pending",
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Serialize)]
struct Replayed {
    replayed: u64,
}

/// `POST /messages/replay`.
pub(super) async fn replay(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = validate::replay_request(&body)?;
    let filter = ReplayFilter {
        topic: request.topic,
        since_ms: request.since_ms,
        until_ms: request.until_ms,
        limit: Some(REPLAY_BATCH),
    };
    // In batches, each its own writer turn, so that ingestion goes on meanwhile.
    let mut replayed = 0;
    loop {
        let batch = change(&state, Change::Replay(filter.clone())).await?;
        replayed += batch;
        if batch < REPLAY_BATCH as u64 {
            break;
        }
    }
    let target = format!("{filter:?} ({replayed} records)");
    state.audit(caller, "records.replay", target).await;
    Ok(Json(Replayed { replayed }).into_response())
}

/// Parses `since`/`until`: milliseconds since the epoch, or RFC 3339 text.
fn parse_time(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    validate::moment_ms(value).map(Some).ok_or_else(|| {
        ApiError::BadQuery(format!(
            "{name} must be milliseconds since the epoch or an RFC 3339 time, got {value:?}"
        ))
    })
}

async fn read<T: Send + 'static>(
    state: &AppState,
    query: impl FnOnce(&mut dyn Backlog) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match state.read_outbox(query).await {
        None => Err(ApiError::NoOutbox),
        Some(Ok(found)) => Ok(found),
        Some(Err(reason)) => Err(ApiError::OutboxUnreadable(reason)),
    }
}

async fn change(state: &AppState, change: Change) -> Result<u64, ApiError> {
    let Ingest::Outbox(outbox) = &state.ingest else {
        return Err(ApiError::NoOutbox);
    };
    outbox
        .change(change)
        .await
        .map_err(|err| ApiError::OutboxUnreadable(err.to_string()))
}
