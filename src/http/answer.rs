//! The answer of `POST /topics/{topic}`, in the old middleware's shape, for each
//! stage a record can be in when the client is answered.

use std::time::Instant;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;
use super::publish::{Fate, Progress};
use crate::record::Placement;

/// Where a record stands in a successful answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Delivered(Placement),
    Pending,
    Queued,
    DeadLettered,
}

/// The answer, ready to be turned into a response.
#[derive(Debug)]
pub(crate) struct ProduceAnswer {
    message_id: String,
    stage: Stage,
    duration_ms: u64,
    repeated: bool,
}

#[derive(Serialize)]
struct Body<'a> {
    success: bool,
    message_id: &'a str,
    offsets: Vec<OffsetEntry>,
    acks: &'static str,
    confirmed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    repeated: bool,
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

const PENDING: &str = "stored durably; Kafka has not confirmed it yet and ponte keeps \
                       delivering it, so do not send it again";
const QUEUED: &str = "stored durably; ponte delivers it to Kafka in the background";
const DEAD: &str = "stored earlier, then moved to the dead-letter topic; see status_url";

impl ProduceAnswer {
    /// The answer for a record's fate, or the error a failed one gets.
    pub(crate) fn from_fate(fate: Fate, started: Instant) -> Result<Self, ApiError> {
        let stage = match fate.progress {
            Progress::Delivered(placement) => Stage::Delivered(placement),
            Progress::Pending => Stage::Pending,
            Progress::Queued => Stage::Queued,
            Progress::DeadLettered => Stage::DeadLettered,
            Progress::Conflict => {
                return Err(ApiError::IdempotencyConflict {
                    message_id: fate.message_id,
                });
            }
            Progress::Failed { busy: true, .. } => return Err(ApiError::ProducerBusy),
            Progress::Failed { reason, .. } => return Err(ApiError::NotDelivered(reason)),
        };
        Ok(ProduceAnswer {
            message_id: fate.message_id,
            stage,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            repeated: fate.repeated,
        })
    }

    fn status_url(&self) -> String {
        format!("/messages/{}", self.message_id)
    }
}

impl IntoResponse for ProduceAnswer {
    fn into_response(self) -> Response {
        let (status, offsets, label, message) = match self.stage {
            Stage::Delivered(placement) => {
                (StatusCode::OK, vec![offset_entry(placement)], None, None)
            }
            Stage::Pending => (StatusCode::ACCEPTED, vec![], Some("pending"), Some(PENDING)),
            Stage::Queued => (StatusCode::ACCEPTED, vec![], Some("pending"), Some(QUEUED)),
            Stage::DeadLettered => (StatusCode::ACCEPTED, vec![], Some("dlq"), Some(DEAD)),
        };
        let confirmed = status == StatusCode::OK;
        let status_url = (!confirmed).then(|| self.status_url());
        let body = Body {
            success: true,
            message_id: &self.message_id,
            offsets,
            acks: "all",
            confirmed,
            status: label,
            status_url: status_url.clone(),
            message,
            repeated: self.repeated,
            duration_ms: self.duration_ms,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(url) = status_url.and_then(|url| HeaderValue::from_str(&url).ok()) {
            headers.insert(header::LOCATION, url);
        }
        if self.stage == Stage::Queued {
            headers.insert(
                header::HeaderName::from_static("preference-applied"),
                HeaderValue::from_static("respond-async"),
            );
        }
        response
    }
}

fn offset_entry(placement: Placement) -> OffsetEntry {
    OffsetEntry {
        offset: placement.offset.to_string(),
        partition: placement.partition,
        error_code: None,
        error: None,
    }
}
