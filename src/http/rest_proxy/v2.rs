//! REST Proxy v2: produce (`POST /topics/{topic}` and
//! `POST /topics/{topic}/partitions/{partition}`) and the topic, partition and
//! broker metadata (`GET /topics/{topic}`, `GET /topics/{topic}/partitions`,
//! `GET /topics/{topic}/partitions/{partition}`).
//!
//! A produce answer has one `offsets` entry per record, in order. Kafka's
//! partition and offset are there once Kafka acknowledged the record. A record
//! stored durably but not yet acknowledged within `ack_timeout_ms` (or at all,
//! with `Prefer: respond-async`) has null partition and offset and
//! `"status": "pending"`, and the answer is `202`: ponte keeps delivering it, so
//! the client must not send it again. Every entry also names the record's
//! `message_id`, for `GET /messages/{message_id}`.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ProduceMedia, V2_MEDIA_TYPE, check_target};
use crate::admin::{PartitionInfo, TopicInfo};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::produce::{Request, read_body};
use crate::http::publish::{Fate, Progress, Submitted, publish};
use crate::validate::rest_proxy::{V2Format, v2_missing_schema, v2_records};
use crate::validate::schemas::Violation;
use crate::validate::{self, Invalid};

/// `POST /topics/{topic}/partitions/{partition}`: v2 produce to one partition.
pub(in crate::http) async fn produce_to_partition(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Path((topic, partition)) =
        path.map_err(|rejection| Invalid::Path(rejection.body_text()))?;
    validate::topic_name(&topic)?;
    let partition = partition_number(&partition)?;
    let media = super::produce_media(&headers)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let request = Request {
        headers: &headers,
        query: &query,
        started,
    };
    produce(&state, &topic, Some(partition), media, bytes, &request).await
}

/// Publishes a v2 produce request's records and answers with their offsets.
/// The body is let go of once its records are read out of it, before the wait
/// for Kafka: many clients waiting with large batches would otherwise each hold
/// their request twice.
pub(in crate::http) async fn produce(
    state: &AppState,
    topic: &str,
    partition: Option<i32>,
    media: ProduceMedia,
    body: Bytes,
    request: &Request<'_>,
) -> Result<Response, ApiError> {
    let format = match media {
        // A `{"records": [...]}` body sent as plain JSON: the REST Proxy reads
        // its data as base64, and so does ponte.
        ProduceMedia::Json => V2Format::Binary,
        ProduceMedia::V2(format) => format,
        ProduceMedia::Registry(name) => {
            return Err(match v2_missing_schema(&body)? {
                Some(missing) => missing.into(),
                None => ApiError::SchemaRegistry(name),
            });
        }
    };
    let records = v2_records(topic, &body, format, partition, state.body_limits)?;
    drop(body);
    // Every record of the request is checked, so that the answer lists all that
    // is wrong at once; one violation refuses the whole request.
    let mut violations = Vec::new();
    for (n, record) in records.iter().enumerate() {
        if let Err(found) = state.schemas.check(topic, record.value.as_deref()) {
            violations.extend(found.into_iter().map(|v| Violation {
                record: Some(n),
                ..v
            }));
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::SchemaViolation {
            topic: topic.to_owned(),
            violations,
        });
    }
    let mut partitions: Vec<i32> = records.iter().filter_map(|r| r.partition).collect();
    partitions.dedup();
    check_target(state, topic, partitions).await?;

    // Each record of a request with an idempotency key gets its own key,
    // derived from the request's and its place in the request.
    let key = request.idempotency_key()?;
    let submitted = records
        .into_iter()
        .enumerate()
        .map(|(n, record)| Submitted::new(record, key.as_ref().map(|key| format!("{key}#{n}"))))
        .collect();
    let fates = publish(state, submitted, request.respond_async(), request.started).await?;
    Ok(answer(&fates))
}

#[derive(Serialize)]
struct Answer {
    key_schema_id: Option<i32>,
    value_schema_id: Option<i32>,
    offsets: Vec<Offset>,
}

#[derive(Serialize)]
struct Offset {
    partition: Option<i32>,
    offset: Option<i64>,
    error_code: Option<u32>,
    error: Option<String>,
    message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
}

/// `200` when Kafka acknowledged every record that did not fail, `202` while
/// any is only stored.
fn answer(fates: &[Fate]) -> Response {
    let offsets: Vec<Offset> = fates.iter().map(offset).collect();
    let stored_only = offsets.iter().any(|o| o.status == Some("pending"));
    let status = if stored_only {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let body = Answer {
        key_schema_id: None,
        value_schema_id: None,
        offsets,
    };
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(V2_MEDIA_TYPE),
    );
    response
}

fn offset(fate: &Fate) -> Offset {
    let message_id = fate.message_id.clone();
    let failed = |error_code: u32, error: String, status: &'static str| Offset {
        partition: None,
        offset: None,
        error_code: Some(error_code),
        error: Some(error),
        message_id: fate.message_id.clone(),
        status: Some(status),
    };
    match &fate.progress {
        Progress::Delivered(placement) => Offset {
            partition: Some(placement.partition),
            offset: Some(placement.offset),
            error_code: None,
            error: None,
            message_id,
            status: None,
        },
        Progress::Pending | Progress::Queued => Offset {
            partition: None,
            offset: None,
            error_code: None,
            error: None,
            message_id,
            status: Some("pending"),
        },
        Progress::DeadLettered => failed(
            50002,
            format!(
                "stored earlier, then moved to the dead-letter topic; see /messages/{}",
                fate.message_id
            ),
            "dlq",
        ),
        Progress::Conflict => failed(
            40901,
            format!(
                "this idempotency key was used for a different record; the first one is {}",
                fate.message_id
            ),
            "conflict",
        ),
        Progress::Failed { reason, busy } => {
            // The REST Proxy's codes: 50003 for a retriable Kafka error, 50002 else.
            let code = if *busy { 50003 } else { 50002 };
            failed(code, format!("Kafka error: {reason}"), "failed")
        }
    }
}

/// `GET /topics/{topic}`: the topic's configuration and partitions.
pub(in crate::http) async fn describe(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Json<TopicView>, ApiError> {
    validate::topic_name(&topic)?;
    let info = state.admin.describe(&topic).await?;
    // Brokers that cannot describe configurations (some Kafka-compatible ones)
    // leave `configs` empty rather than failing the whole answer.
    let configs = match state.admin.topic_configs(&topic).await {
        Ok(configs) => configs,
        Err(err) => {
            tracing::debug!(topic, error = %err, "topic configuration unavailable");
            BTreeMap::new()
        }
    };
    Ok(Json(TopicView {
        partitions: info.partitions.iter().map(PartitionView::of).collect(),
        name: info.name,
        configs,
    }))
}

/// `GET /topics/{topic}/partitions`: the topic's partitions.
pub(in crate::http) async fn partitions(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Json<Vec<PartitionView>>, ApiError> {
    validate::topic_name(&topic)?;
    let info = state.admin.describe(&topic).await?;
    Ok(Json(
        info.partitions.iter().map(PartitionView::of).collect(),
    ))
}

/// `GET /topics/{topic}/partitions/{partition}`: one partition.
pub(in crate::http) async fn partition(
    State(state): State<AppState>,
    Path((topic, partition)): Path<(String, String)>,
) -> Result<Json<PartitionView>, ApiError> {
    validate::topic_name(&topic)?;
    let number = partition_number(&partition)?;
    let info: TopicInfo = state.admin.describe(&topic).await?;
    info.partitions
        .iter()
        .find(|p| p.partition == number)
        .map(|p| Json(PartitionView::of(p)))
        .ok_or(ApiError::PartitionNotFound {
            topic,
            partition: number,
        })
}

fn partition_number(text: &str) -> Result<i32, ApiError> {
    text.parse::<i32>().ok().filter(|n| *n >= 0).ok_or_else(|| {
        Invalid::Path(format!("partition {text:?} is not a partition number")).into()
    })
}

/// A topic in the v2 shape.
#[derive(Debug, Serialize)]
pub(in crate::http) struct TopicView {
    name: String,
    configs: BTreeMap<String, String>,
    partitions: Vec<PartitionView>,
}

/// A partition in the v2 shape.
#[derive(Debug, Serialize)]
pub(in crate::http) struct PartitionView {
    partition: i32,
    leader: i32,
    replicas: Vec<ReplicaView>,
}

#[derive(Debug, Serialize)]
struct ReplicaView {
    broker: i32,
    leader: bool,
    in_sync: bool,
}

impl PartitionView {
    fn of(partition: &PartitionInfo) -> PartitionView {
        PartitionView {
            partition: partition.partition,
            leader: partition.leader,
            replicas: partition
                .replicas
                .iter()
                .map(|&broker| ReplicaView {
                    broker,
                    leader: broker == partition.leader,
                    in_sync: partition.isr.contains(&broker),
                })
                .collect(),
        }
    }
}
