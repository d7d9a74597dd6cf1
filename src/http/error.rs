//! The one place that turns a failure into an HTTP status and a JSON error body.
//!
//! Error codes follow the Confluent REST Proxy convention: the HTTP status followed
//! by two digits that tell failures with the same status apart.

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::admin::AdminError;
use crate::validate::Invalid;
use crate::validate::schemas::Violation;

/// Seconds a client is asked to wait before retrying after a `503`.
const RETRY_AFTER_SECONDS: &str = "1";

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is wrong.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The body is not of a media type the route takes.
    #[error(
        "Content-Type must be application/json, application/vnd.kafka.json.v2+json or \
         application/vnd.kafka.binary.v2+json, got {found}"
    )]
    UnsupportedMediaType {
        /// What the client sent, or `none`.
        found: String,
    },
    /// The body is larger than `max_body_bytes`.
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The body could not be read (the client went away mid-body).
    #[error("request body could not be read: {0}")]
    BodyUnreadable(String),
    /// The client did not send its body within `body_timeout_ms`.
    #[error("request body not received in time")]
    BodyTimeout,
    /// The key sent more requests than `rate_limit_per_key` allows.
    #[error("too many requests for this API key; retry in {retry_after} s")]
    RateLimited {
        /// Seconds until a request is allowed again.
        retry_after: u64,
    },
    /// The record was not stored: retrying is safe.
    #[error("record not stored: {0}; retry later")]
    NotStored(String),
    /// Without an outbox: the producer's queue is full, the record was not taken.
    #[error("kafka producer queue is full; retry later")]
    ProducerBusy,
    /// Without an outbox: Kafka did not take the record.
    #[error("kafka did not accept the record: {0}")]
    NotDelivered(String),
    /// The idempotency key was used before for a different record.
    #[error(
        "this idempotency key was used for a different record (topic, key or data differ); \
         the first one is {message_id}"
    )]
    IdempotencyConflict {
        /// The message id of the first record.
        message_id: String,
    },
    /// No record has this message id.
    #[error("no record with message id {0}")]
    MessageNotFound(String),
    /// The record is not in a state that can be retried.
    #[error("record {message_id} is {status}; only failed and dlq records can be retried")]
    NotRetriable {
        /// The record's message id.
        message_id: String,
        /// Its status.
        status: String,
    },
    /// A query parameter or request field is not usable.
    #[error("{0}")]
    BadQuery(String),
    /// The outbox is off, so there are no records to show or replay.
    #[error("the outbox is off (ENABLE_OUTBOX=false): ponte keeps no records")]
    NoOutbox,
    /// The outbox could not be read or changed right now.
    #[error("outbox unavailable: {0}; retry later")]
    OutboxUnreadable(String),
    /// An admin operation failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// No credentials, or credentials that match no key.
    #[error("an API key is required: send it as Authorization: Bearer, X-API-Key or Basic")]
    Unauthenticated,
    /// The key does not cover the route.
    #[error("API key {key} lacks the scope {need}")]
    Forbidden {
        /// The key's name.
        key: String,
        /// The scope the route needs.
        need: String,
    },
    /// A REST Proxy format that needs a schema registry (Avro, Protobuf, JSON
    /// Schema), which ponte does not support.
    #[error(
        "{0} needs a schema registry, which ponte does not support yet; send \
         application/vnd.kafka.json.v2+json or application/vnd.kafka.binary.v2+json"
    )]
    SchemaRegistry(&'static str),
    /// The topic has no such partition.
    #[error("topic {topic} has no partition {partition}")]
    PartitionNotFound {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },
    /// The cluster id in a v3 path is not this cluster's.
    #[error("cluster {0} not found; GET /v3/clusters lists the cluster ponte serves")]
    ClusterNotFound(String),
    /// A record does not match its topic's JSON Schema; nothing was stored.
    #[error(
        "the record does not match the schema of topic {topic} ({} violation(s)); nothing \
         was stored",
        violations.len()
    )]
    SchemaViolation {
        /// The topic.
        topic: String,
        /// Every violation found (up to a limit).
        violations: Vec<Violation>,
    },
    /// No such route.
    #[error("no route for {method} {path}")]
    UnknownRoute {
        /// Method of the request.
        method: Method,
        /// Path of the request.
        path: String,
    },
    /// The route exists but not for this method.
    #[error("method {0} is not allowed on this route")]
    MethodNotAllowed(Method),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error_code: u32,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    violations: Option<&'a [Violation]>,
}

impl ApiError {
    /// The HTTP status and the REST Proxy style error code of this failure.
    pub(crate) fn status_and_code(&self) -> (StatusCode, u32) {
        match self {
            ApiError::Invalid(Invalid::MalformedJson(_)) => (StatusCode::BAD_REQUEST, 40001),
            ApiError::Invalid(
                Invalid::TopicEmpty
                | Invalid::TopicTooLong { .. }
                | Invalid::TopicReserved
                | Invalid::TopicCharacter { .. },
            ) => (StatusCode::BAD_REQUEST, 40002),
            ApiError::Invalid(Invalid::Path(_)) => (StatusCode::BAD_REQUEST, 40003),
            ApiError::BodyUnreadable(_) => (StatusCode::BAD_REQUEST, 40004),
            ApiError::BadQuery(_) | ApiError::Invalid(Invalid::Body(_)) => {
                (StatusCode::BAD_REQUEST, 40005)
            }
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, 40101),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, 40301),
            ApiError::Invalid(Invalid::BadIdempotencyKey) => (StatusCode::BAD_REQUEST, 40006),
            ApiError::MessageNotFound(_) => (StatusCode::NOT_FOUND, 40404),
            ApiError::NoOutbox => (StatusCode::NOT_FOUND, 40405),
            ApiError::IdempotencyConflict { .. } => (StatusCode::CONFLICT, 40901),
            ApiError::NotRetriable { .. } => (StatusCode::CONFLICT, 40902),
            ApiError::OutboxUnreadable(_) => (StatusCode::SERVICE_UNAVAILABLE, 50304),
            ApiError::Admin(AdminError::TopicNotFound(_)) => (StatusCode::NOT_FOUND, 40401),
            ApiError::PartitionNotFound { .. } => (StatusCode::NOT_FOUND, 40402),
            ApiError::ClusterNotFound(_) => (StatusCode::NOT_FOUND, 40406),
            ApiError::SchemaRegistry(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 41502),
            ApiError::SchemaViolation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, 42210),
            ApiError::Admin(AdminError::TopicExists(_)) => (StatusCode::CONFLICT, 40903),
            ApiError::Admin(AdminError::Invalid(_)) => (StatusCode::BAD_REQUEST, 40007),
            ApiError::Admin(AdminError::Unavailable(_)) => (StatusCode::SERVICE_UNAVAILABLE, 50302),
            ApiError::Invalid(
                Invalid::WrongShape(_)
                | Invalid::MissingData
                | Invalid::KeyNotString { .. }
                | Invalid::KeyTooLong { .. }
                | Invalid::TooDeep { .. }
                | Invalid::BadMessageId
                | Invalid::Record { .. }
                | Invalid::RecordOfMany { .. },
            ) => (StatusCode::UNPROCESSABLE_ENTITY, 42206),
            ApiError::Invalid(Invalid::KeySchemaMissing) => {
                (StatusCode::UNPROCESSABLE_ENTITY, 42201)
            }
            ApiError::Invalid(Invalid::ValueSchemaMissing) => {
                (StatusCode::UNPROCESSABLE_ENTITY, 42202)
            }
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, 40801),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, 42901),
            ApiError::UnknownRoute { .. } => (StatusCode::NOT_FOUND, 40400),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, 40500),
            ApiError::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, 41301),
            ApiError::UnsupportedMediaType { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 41501),
            ApiError::NotDelivered(_) | ApiError::Admin(AdminError::Kafka(_)) => {
                (StatusCode::BAD_GATEWAY, 50002)
            }
            ApiError::NotStored(_) => (StatusCode::SERVICE_UNAVAILABLE, 50301),
            ApiError::ProducerBusy => (StatusCode::SERVICE_UNAVAILABLE, 50303),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_code) = self.status_and_code();
        let violations = match &self {
            ApiError::SchemaViolation { violations, .. } => Some(violations.as_slice()),
            _ => None,
        };
        let body = ErrorBody {
            error_code,
            message: self.to_string(),
            violations,
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer, Basic realm=\"ponte\""),
            );
        }
        if let ApiError::RateLimited { retry_after } = &self
            && let Ok(value) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// Answers requests for paths ponte does not serve.
pub(crate) async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::UnknownRoute {
        method,
        path: uri.path().to_owned(),
    }
}

/// Answers requests whose path exists with another method.
pub(crate) async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method)
}
