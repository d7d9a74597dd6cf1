//! The Confluent REST Proxy API, so that its clients switch to ponte by changing
//! a URL: v2 produce and metadata ([`v2`]) and v3 clusters, topics and records
//! ([`v3`]).
//!
//! Every record goes through the same path as the old middleware's: validated,
//! stored durably in the outbox, then published with an idempotent `acks=all`
//! producer. What differs from the REST Proxy is written down in
//! `docs/rest-proxy.md`.

pub(super) mod v2;
pub(super) mod v3;

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use crate::admin::AdminError;
use crate::validate::rest_proxy::V2Format;

/// How long a produce request may wait for Kafka to say whether its topic exists.
const TOPIC_CHECK_WAIT: Duration = Duration::from_secs(2);

/// What the `Content-Type` of `POST /topics/{topic}` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProduceMedia {
    /// `application/json`: the old middleware's body, or a v2 body with
    /// base64 data, told apart by shape.
    Json,
    /// A REST Proxy v2 (or v1) embedded format ponte publishes.
    V2(V2Format),
    /// A schema-registry format, by name: not supported.
    Registry(&'static str),
}

/// The request's `Content-Type` as sent, and its media type without parameters,
/// in lower case; `None` without one.
pub(super) fn content_type(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    if headers.get_all(header::CONTENT_TYPE).iter().count() > 1 {
        return Err(ApiError::UnsupportedMediaType {
            found: "more than one Content-Type header".to_owned(),
        });
    }
    Ok(headers.get(header::CONTENT_TYPE).map(|value| {
        let sent = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let essence = sent
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        (sent, essence)
    }))
}

/// Reads the produce request's `Content-Type`.
pub(super) fn produce_media(headers: &HeaderMap) -> Result<ProduceMedia, ApiError> {
    let (content_type, essence) = content_type(headers)?.unzip();
    let media = match essence.as_deref() {
        Some("application/json") => ProduceMedia::Json,
        Some("application/vnd.kafka.json.v2+json" | "application/vnd.kafka.json.v1+json") => {
            ProduceMedia::V2(V2Format::Json)
        }
        // The REST Proxy takes binary data when the embedded format is left out.
        Some(
            "application/vnd.kafka.binary.v2+json"
            | "application/vnd.kafka.binary.v1+json"
            | "application/vnd.kafka.v2+json"
            | "application/vnd.kafka.v1+json"
            | "application/vnd.kafka+json",
        ) => ProduceMedia::V2(V2Format::Binary),
        Some("application/vnd.kafka.avro.v2+json" | "application/vnd.kafka.avro.v1+json") => {
            ProduceMedia::Registry("Avro")
        }
        Some("application/vnd.kafka.protobuf.v2+json") => ProduceMedia::Registry("Protobuf"),
        Some("application/vnd.kafka.jsonschema.v2+json") => ProduceMedia::Registry("JSON Schema"),
        _ => {
            return Err(ApiError::UnsupportedMediaType {
                found: content_type.unwrap_or_else(|| "none".to_owned()),
            });
        }
    };
    Ok(media)
}

/// Refuses records for a topic or partition that Kafka says does not exist
/// (`40401`, `40402`). While Kafka cannot be asked, the records are taken: the
/// outbox holds them until Kafka is back, which is what ponte is for.
pub(super) async fn check_target(
    state: &AppState,
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
) -> Result<(), ApiError> {
    if !state.connectivity.is_connected() {
        return Ok(());
    }
    match state.admin.partition_count(topic, TOPIC_CHECK_WAIT).await {
        Ok(Some(count)) => match partitions
            .into_iter()
            .find(|&p| usize::try_from(p).map_or(true, |p| p >= count))
        {
            Some(partition) => Err(ApiError::PartitionNotFound {
                topic: topic.to_owned(),
                partition,
            }),
            None => Ok(()),
        },
        Ok(None) => Err(ApiError::Admin(AdminError::TopicNotFound(topic.to_owned()))),
        Err(err) => {
            tracing::debug!(topic, error = %err, "could not check the topic; taking the records");
            Ok(())
        }
    }
}

/// The REST Proxy's v2 media type, which its clients ask for in `Accept`.
pub(super) const V2_MEDIA_TYPE: &str = "application/vnd.kafka.v2+json";

/// Answers JSON with the REST Proxy's media type when the client's `Accept` asks
/// for it (`application/vnd.kafka.v2+json`, or v1, or `application/vnd.kafka+json`);
/// other clients keep getting `application/json`.
pub(super) async fn negotiate(request: Request, next: Next) -> Response {
    let wanted = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| {
            item.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .find_map(|item| match item.as_str() {
            "application/vnd.kafka.v2+json" | "application/vnd.kafka+json" => Some(V2_MEDIA_TYPE),
            "application/vnd.kafka.v1+json" => Some("application/vnd.kafka.v1+json"),
            _ => None,
        });
    let mut response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if let Some(wanted) = wanted
        && is_json
    {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(wanted));
    }
    response
}
