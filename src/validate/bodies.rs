//! The small JSON bodies of the operator routes: replaying dead letters and
//! creating a topic.

use serde::Deserialize;

use super::{Invalid, moment_ms, topic_name};

/// Which dead-lettered records `POST /messages/replay` sends again.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    /// Only this topic.
    pub topic: Option<String>,
    /// Only records that arrived at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only records that arrived before this time (ms since the epoch).
    pub until_ms: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    topic: Option<String>,
    since: Option<Moment>,
    until: Option<Moment>,
}

/// A time given as milliseconds since the epoch or as RFC 3339 text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Moment {
    Millis(i64),
    Text(String),
}

impl Moment {
    fn millis(self, name: &str) -> Result<i64, Invalid> {
        match self {
            Moment::Millis(ms) => Ok(ms),
            Moment::Text(text) => moment_ms(&text).ok_or_else(|| {
                Invalid::Body(format!(
                    "{name} must be milliseconds since the epoch or an RFC 3339 time, got {text:?}"
                ))
            }),
        }
    }
}

/// Parses `{"topic", "since", "until"}`, all optional; an empty body replays all.
pub fn replay_request(body: &[u8]) -> Result<ReplayRequest, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ReplayRequest::default());
    }
    let parsed: ReplayBody =
        serde_json::from_slice(body).map_err(|err| Invalid::Body(err.to_string()))?;
    Ok(ReplayRequest {
        topic: parsed.topic,
        since_ms: parsed.since.map(|m| m.millis("since")).transpose()?,
        until_ms: parsed.until.map(|m| m.millis("until")).transpose()?,
    })
}

/// A topic to create, from the old middleware's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicRequest {
    /// Its name, valid for Kafka.
    pub topic: String,
    /// Number of partitions (1 when not given).
    pub partitions: i32,
    /// Copies of each partition (1 when not given).
    pub replication_factor: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateTopicBody {
    topic: String,
    partitions: Option<i32>,
    replication_factor: Option<i32>,
}

/// Parses `{"topic", "partitions", "replicationFactor"}` and checks the name.
pub fn create_topic_request(body: &[u8]) -> Result<CreateTopicRequest, Invalid> {
    let parsed: CreateTopicBody = serde_json::from_slice(body).map_err(|err| {
        Invalid::Body(format!(
            "body must be {{\"topic\", \"partitions\", \"replicationFactor\"}}: {err}"
        ))
    })?;
    topic_name(&parsed.topic)?;
    Ok(CreateTopicRequest {
        topic: parsed.topic,
        partitions: parsed.partitions.unwrap_or(1),
        replication_factor: parsed.replication_factor.unwrap_or(1),
    })
}
