//! REST Proxy v3: the cluster, its brokers and topics; producing records is in
//! [`records`].

mod records;

pub(in crate::http) use records::{produce, produce_batch_entries};

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::{AdminError, TopicInfo, TopicSpec};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::validate::{self, Invalid};

/// The cluster ponte serves, as the links of its v3 answers name it.
struct Cluster {
    id: String,
    base: String,
}

impl Cluster {
    fn url(&self, rest: &str) -> String {
        format!("{}/v3/clusters/{}{rest}", self.base, self.id)
    }

    fn related(&self, rest: &str) -> Value {
        json!({ "related": self.url(rest) })
    }

    fn view(&self) -> Value {
        json!({
            "kind": "KafkaCluster",
            "metadata": {
                "self": self.url(""),
                "resource_name": format!("crn:///kafka={}", self.id),
            },
            "cluster_id": self.id,
            "acls": self.related("/acls"),
            "brokers": self.related("/brokers"),
            "broker_configs": self.related("/broker-configs"),
            "consumer_groups": self.related("/consumer-groups"),
            "topics": self.related("/topics"),
            "partition_reassignments": self.related("/topics/-/partitions/-/reassignment"),
        })
    }

    fn topic(&self, info: &TopicInfo) -> Value {
        let name = &info.name;
        let replication_factor = info.partitions.first().map_or(0, |p| p.replicas.len());
        json!({
            "kind": "KafkaTopic",
            "metadata": {
                "self": self.url(&format!("/topics/{name}")),
                "resource_name": format!("crn:///kafka={}/topic={name}", self.id),
            },
            "cluster_id": self.id,
            "topic_name": name,
            "is_internal": name.starts_with("__"),
            "replication_factor": replication_factor,
            "partitions_count": info.partitions.len(),
            "partitions": self.related(&format!("/topics/{name}/partitions")),
            "configs": self.related(&format!("/topics/{name}/configs")),
            "partition_reassignments":
                self.related(&format!("/topics/{name}/partitions/-/reassignment")),
            "authorized_operations": [],
        })
    }

    fn list(&self, kind: &str, rest: &str, data: &[Value]) -> Value {
        json!({
            "kind": kind,
            "metadata": { "self": self.url(rest), "next": null },
            "data": data,
        })
    }
}

/// The cluster of this request: `asked` must be the id Kafka reports.
async fn cluster(
    state: &AppState,
    headers: &HeaderMap,
    asked: Option<&str>,
) -> Result<Cluster, ApiError> {
    let id = state.admin.cluster_id().await.ok_or_else(|| {
        ApiError::Admin(AdminError::Unavailable(
            "the cluster id is not known yet".to_owned(),
        ))
    })?;
    if asked.is_some_and(|asked| asked != id) {
        return Err(ApiError::ClusterNotFound(
            asked.unwrap_or_default().to_owned(),
        ));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.tls { "https" } else { "http" };
    Ok(Cluster {
        id,
        base: format!("{scheme}://{host}"),
    })
}

/// `GET /v3/clusters`: the one cluster ponte serves.
pub(in crate::http) async fn clusters(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let cluster = cluster(&state, &headers, None).await?;
    let list = json!({
        "kind": "KafkaClusterList",
        "metadata": { "self": format!("{}/v3/clusters", cluster.base), "next": null },
        "data": [cluster.view()],
    });
    Ok(Json(list))
}

/// `GET /v3/clusters/{cluster_id}`.
pub(in crate::http) async fn get_cluster(
    State(state): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        cluster(&state, &headers, Some(&cluster_id)).await?.view(),
    ))
}

/// `GET /v3/clusters/{cluster_id}/brokers`.
pub(in crate::http) async fn brokers(
    State(state): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let cluster = cluster(&state, &headers, Some(&cluster_id)).await?;
    let data: Vec<Value> = state
        .admin
        .brokers()
        .await?
        .iter()
        .map(|broker| {
            let id = broker.id;
            json!({
                "kind": "KafkaBroker",
                "metadata": {
                    "self": cluster.url(&format!("/brokers/{id}")),
                    "resource_name": format!("crn:///kafka={}/broker={id}", cluster.id),
                },
                "cluster_id": cluster.id,
                "broker_id": id,
                "host": broker.host,
                "port": broker.port,
                "rack": null,
                "configs": cluster.related(&format!("/brokers/{id}/configs")),
                "partition_replicas": cluster.related(&format!("/brokers/{id}/partition-replicas")),
            })
        })
        .collect();
    Ok(Json(cluster.list("KafkaBrokerList", "/brokers", &data)))
}

/// `GET /v3/clusters/{cluster_id}/topics`.
pub(in crate::http) async fn topics(
    State(state): State<AppState>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let cluster = cluster(&state, &headers, Some(&cluster_id)).await?;
    let data: Vec<Value> = state
        .admin
        .describe_all()
        .await?
        .iter()
        .map(|info| cluster.topic(info))
        .collect();
    Ok(Json(cluster.list("KafkaTopicList", "/topics", &data)))
}

/// `GET /v3/clusters/{cluster_id}/topics/{topic}`.
pub(in crate::http) async fn get_topic(
    State(state): State<AppState>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    validate::topic_name(&topic)?;
    let cluster = cluster(&state, &headers, Some(&cluster_id)).await?;
    let info = state.admin.describe(&topic).await?;
    Ok(Json(cluster.topic(&info)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTopic {
    topic_name: String,
    #[serde(default)]
    partitions_count: Option<i32>,
    #[serde(default)]
    replication_factor: Option<i32>,
    #[serde(default)]
    configs: Vec<ConfigEntry>,
    #[serde(default)]
    validate_only: bool,
}

#[derive(Deserialize)]
struct ConfigEntry {
    name: String,
    value: Option<String>,
}

/// `POST /v3/clusters/{cluster_id}/topics`: creates a topic; `201`.
pub(in crate::http) async fn create_topic(
    State(state): State<AppState>,
    Path(cluster_id): Path<String>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateTopic = serde_json::from_slice(&body).map_err(|err| {
        Invalid::Body(format!(
            "the body must look like {{\"topic_name\": \"...\", \"partitions_count\": 3}}: {err}"
        ))
    })?;
    validate::topic_name(&request.topic_name)?;
    let cluster = cluster(&state, &headers, Some(&cluster_id)).await?;
    let spec = TopicSpec {
        name: request.topic_name,
        partitions: request.partitions_count.unwrap_or(-1),
        replication_factor: request.replication_factor.unwrap_or(-1),
        configs: request
            .configs
            .into_iter()
            .filter_map(|c| Some((c.name, c.value?)))
            .collect(),
        validate_only: request.validate_only,
    };
    state.admin.create(&spec).await?;
    if spec.validate_only {
        let info = TopicInfo {
            name: spec.name,
            partitions: Vec::new(),
        };
        return Ok((StatusCode::OK, Json(cluster.topic(&info))).into_response());
    }
    state.audit(caller, "topic.create", spec.name.clone()).await;
    // Kafka may take a moment to show a new topic; answer with what was asked.
    let info = match state.admin.describe(&spec.name).await {
        Ok(info) => cluster.topic(&info),
        Err(_) => {
            let mut view = cluster.topic(&TopicInfo {
                name: spec.name.clone(),
                partitions: Vec::new(),
            });
            view["partitions_count"] = json!(spec.partitions);
            view["replication_factor"] = json!(spec.replication_factor);
            view
        }
    };
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// `DELETE /v3/clusters/{cluster_id}/topics/{topic}`: `204`.
pub(in crate::http) async fn delete_topic(
    State(state): State<AppState>,
    Path((cluster_id, topic)): Path<(String, String)>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    validate::topic_name(&topic)?;
    cluster(&state, &headers, Some(&cluster_id)).await?;
    state.admin.delete(&topic).await?;
    state.audit(caller, "topic.delete", topic).await;
    Ok(StatusCode::NO_CONTENT)
}
