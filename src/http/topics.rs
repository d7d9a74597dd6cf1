//! Topics and brokers: `GET /topics`, `POST /admin/topics`,
//! `DELETE /admin/topics/{topic}` and `GET /brokers` (a topic's own metadata is
//! served in the REST Proxy's v2 shape, in `rest_proxy::v2`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::admin::TopicSpec;
use crate::validate;

/// `GET /topics`: the names of the cluster's topics, as a JSON array.
pub(super) async fn list(State(state): State<AppState>) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(state.admin.topics().await?))
}

/// `POST /admin/topics`: creates a topic; `409` if it exists.
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = validate::create_topic_request(&body)?;
    let spec = TopicSpec {
        name: request.topic,
        partitions: request.partitions,
        replication_factor: request.replication_factor,
        configs: Vec::new(),
        validate_only: false,
    };
    state.admin.create(&spec).await?;
    state.audit(caller, "topic.create", spec.name.clone()).await;
    let body = json!({
        "success": true,
        "topic": spec.name,
        "partitions": spec.partitions,
        "replicationFactor": spec.replication_factor,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /admin/topics/{topic}`: deletes a topic; `404` if there is none.
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(topic): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    validate::topic_name(&topic)?;
    state.admin.delete(&topic).await?;
    state.audit(caller, "topic.delete", topic.clone()).await;
    Ok(Json(
        json!({ "success": true, "topic": topic, "deleted": true }),
    ))
}

/// `GET /brokers`: broker ids, in the Confluent REST Proxy's shape.
pub(super) async fn brokers(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ids: Vec<i32> = state.admin.brokers().await?.iter().map(|b| b.id).collect();
    Ok(Json(json!({ "brokers": ids })))
}
