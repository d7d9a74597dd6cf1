//! Admin: topics and brokers, through Kafka's admin and metadata APIs.
//!
//! Beside the pipeline, for operators: list, describe, create and delete topics,
//! and see the brokers and the cluster id. Metadata calls block, so they run on
//! tokio's blocking pool.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use serde::Serialize;

use crate::config::Settings;

/// How long one metadata or admin request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The topic does not exist.
    #[error("topic {0} does not exist")]
    TopicNotFound(String),
    /// The topic exists already.
    #[error("topic {0} already exists")]
    TopicExists(String),
    /// The request is not one Kafka can carry out.
    #[error("{0}")]
    Invalid(String),
    /// Kafka could not be reached in time.
    #[error("kafka did not answer in time: {0}")]
    Unavailable(String),
    /// Kafka answered with an error.
    #[error("kafka error: {0}")]
    Kafka(String),
}

impl AdminError {
    fn from_kafka(error: &KafkaError, topic: &str) -> AdminError {
        let code = match error {
            KafkaError::AdminOp(code) => Some(*code),
            other => other.rdkafka_error_code(),
        };
        AdminError::from_code(code, error.to_string(), topic)
    }

    fn from_code(code: Option<RDKafkaErrorCode>, text: String, topic: &str) -> AdminError {
        use RDKafkaErrorCode as E;
        match code {
            Some(E::TopicAlreadyExists) => AdminError::TopicExists(topic.to_owned()),
            Some(E::UnknownTopicOrPartition | E::UnknownTopic) => {
                AdminError::TopicNotFound(topic.to_owned())
            }
            Some(
                E::InvalidPartitions
                | E::InvalidReplicationFactor
                | E::InvalidTopic
                | E::PolicyViolation,
            ) => AdminError::Invalid(text),
            Some(
                E::OperationTimedOut
                | E::RequestTimedOut
                | E::AllBrokersDown
                | E::BrokerTransportFailure,
            ) => AdminError::Unavailable(text),
            _ => AdminError::Kafka(text),
        }
    }
}

/// A topic's partitions and where they live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicInfo {
    /// The topic.
    pub name: String,
    /// Its partitions.
    pub partitions: Vec<PartitionInfo>,
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    /// Partition number.
    pub partition: i32,
    /// Broker id of the leader.
    pub leader: i32,
    /// Broker ids holding a replica.
    pub replicas: Vec<i32>,
    /// Broker ids of the in-sync replicas.
    pub isr: Vec<i32>,
}

/// One broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokerInfo {
    /// Broker id.
    pub id: i32,
    /// Host name.
    pub host: String,
    /// Port.
    pub port: i32,
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name (already validated).
    pub name: String,
    /// Number of partitions; -1 for the brokers' default.
    pub partitions: i32,
    /// Copies of each partition; -1 for the brokers' default.
    pub replication_factor: i32,
    /// Topic configuration, such as `cleanup.policy = compact`.
    pub configs: Vec<(String, String)>,
    /// Only check that Kafka would create it.
    pub validate_only: bool,
}

/// The admin connection to the cluster; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    client: Arc<AdminClient<DefaultClientContext>>,
    /// The cluster id, once known; it does not change while ponte runs.
    cluster_id: Arc<tokio::sync::OnceCell<String>>,
    /// Partition counts seen lately, by topic, with when they were seen.
    partition_counts: Arc<Mutex<HashMap<String, (usize, Instant)>>>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admin")
    }
}

impl Admin {
    /// Connects (in the background) with the brokers and the librdkafka
    /// properties (TLS, SASL) of `settings`.
    pub fn new(settings: &Settings) -> Result<Admin, KafkaError> {
        let mut config = ClientConfig::new();
        for (name, value) in &settings.kafka_properties {
            config.set(name, value);
        }
        config.set("bootstrap.servers", settings.broker_list().join(","));
        Ok(Admin {
            client: Arc::new(config.create()?),
            cluster_id: Arc::new(tokio::sync::OnceCell::new()),
            partition_counts: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    async fn metadata(&self, topic: Option<String>) -> Result<Metadata, AdminError> {
        self.metadata_within(topic, REQUEST_TIMEOUT).await
    }

    async fn metadata_within(
        &self,
        topic: Option<String>,
        timeout: Duration,
    ) -> Result<Metadata, AdminError> {
        let client = Arc::clone(&self.client);
        let asked = topic.clone().unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            client.inner().fetch_metadata(topic.as_deref(), timeout)
        })
        .await
        .map_err(|err| AdminError::Kafka(err.to_string()))?
        .map_err(|err| AdminError::from_kafka(&err, &asked))
    }

    /// Names of the cluster's topics, without Kafka's internal ones (`__...`).
    pub async fn topics(&self) -> Result<Vec<String>, AdminError> {
        let metadata = self.metadata(None).await?;
        let mut names: Vec<String> = metadata
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|name| !name.starts_with("__"))
            .collect();
        names.sort();
        Ok(names)
    }

    /// One topic's partitions, leaders, replicas and in-sync replicas.
    pub async fn describe(&self, topic: &str) -> Result<TopicInfo, AdminError> {
        self.describe_within(topic, REQUEST_TIMEOUT).await
    }

    async fn describe_within(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<TopicInfo, AdminError> {
        let metadata = self
            .metadata_within(Some(topic.to_owned()), timeout)
            .await?;
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| AdminError::TopicNotFound(topic.to_owned()))?;
        if found.error().is_some() || found.partitions().is_empty() {
            return Err(AdminError::TopicNotFound(topic.to_owned()));
        }
        let info = topic_info(found);
        self.remember(&info);
        Ok(info)
    }

    /// Every topic's partitions, without Kafka's internal topics, by name.
    pub async fn describe_all(&self) -> Result<Vec<TopicInfo>, AdminError> {
        let metadata = self.metadata(None).await?;
        let mut topics: Vec<TopicInfo> = metadata
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__") && t.error().is_none())
            .map(topic_info)
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics.iter().for_each(|info| self.remember(info));
        Ok(topics)
    }

    /// How many partitions `topic` has, from a recent answer when there is one,
    /// else asking Kafka for at most `wait`: `Ok(None)` when Kafka says there is
    /// no such topic (a cluster that creates topics on first use creates it now).
    pub async fn partition_count(
        &self,
        topic: &str,
        wait: Duration,
    ) -> Result<Option<usize>, AdminError> {
        const FRESH: Duration = Duration::from_secs(30);
        if let Ok(counts) = self.partition_counts.lock()
            && let Some((count, seen)) = counts.get(topic)
            && seen.elapsed() < FRESH
        {
            return Ok(Some(*count));
        }
        match self.describe_within(topic, wait).await {
            Ok(info) => Ok(Some(info.partitions.len())),
            Err(AdminError::TopicNotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn remember(&self, info: &TopicInfo) {
        if let Ok(mut counts) = self.partition_counts.lock() {
            counts.insert(info.name.clone(), (info.partitions.len(), Instant::now()));
        }
    }

    /// A topic's configuration entries that have a value, by name.
    pub async fn topic_configs(&self, topic: &str) -> Result<BTreeMap<String, String>, AdminError> {
        let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .client
            .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
            .await
            .map_err(|err| AdminError::from_kafka(&err, topic))?;
        match results.into_iter().next() {
            Some(Ok(resource)) => Ok(resource
                .entries
                .into_iter()
                .filter_map(|entry| Some((entry.name, entry.value?)))
                .collect()),
            Some(Err(code)) => Err(AdminError::from_kafka(&KafkaError::AdminOp(code), topic)),
            None => Err(AdminError::Kafka("kafka returned no result".to_owned())),
        }
    }

    /// The cluster's brokers.
    pub async fn brokers(&self) -> Result<Vec<BrokerInfo>, AdminError> {
        let metadata = self.metadata(None).await?;
        Ok(metadata
            .brokers()
            .iter()
            .map(|b| BrokerInfo {
                id: b.id(),
                host: b.host().to_owned(),
                port: b.port(),
            })
            .collect())
    }

    /// The cluster id, if the cluster reports one (asked once, then remembered).
    pub async fn cluster_id(&self) -> Option<String> {
        let client = Arc::clone(&self.client);
        let fetch = || async move {
            tokio::task::spawn_blocking(move || client.inner().fetch_cluster_id(REQUEST_TIMEOUT))
                .await
                .ok()
                .flatten()
                .ok_or(())
        };
        self.cluster_id.get_or_try_init(fetch).await.ok().cloned()
    }

    /// Creates a topic.
    pub async fn create(&self, spec: &TopicSpec) -> Result<(), AdminError> {
        let usable = |n: i32| n == -1 || n >= 1;
        if !usable(spec.partitions) || !usable(spec.replication_factor) {
            return Err(AdminError::Invalid(
                "partitions and replication factor must be at least 1".to_owned(),
            ));
        }
        let topic = spec.configs.iter().fold(
            NewTopic::new(
                &spec.name,
                spec.partitions,
                TopicReplication::Fixed(spec.replication_factor),
            ),
            |topic, (name, value)| topic.set(name, value),
        );
        let options = AdminOptions::new()
            .operation_timeout(Some(REQUEST_TIMEOUT))
            .validate_only(spec.validate_only);
        let results = self
            .client
            .create_topics([&topic], &options)
            .await
            .map_err(|err| AdminError::from_kafka(&err, &spec.name))?;
        single_result(results, &spec.name)
    }

    /// Deletes a topic.
    pub async fn delete(&self, topic: &str) -> Result<(), AdminError> {
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .client
            .delete_topics(&[topic], &options)
            .await
            .map_err(|err| AdminError::from_kafka(&err, topic))?;
        single_result(results, topic)
    }
}

fn topic_info(topic: &rdkafka::metadata::MetadataTopic) -> TopicInfo {
    let mut partitions: Vec<PartitionInfo> = topic
        .partitions()
        .iter()
        .map(|p| PartitionInfo {
            partition: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr: p.isr().to_vec(),
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    TopicInfo {
        name: topic.name().to_owned(),
        partitions,
    }
}

fn single_result(results: Vec<rdkafka::admin::TopicResult>, topic: &str) -> Result<(), AdminError> {
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err((_, code))) => Err(AdminError::from_kafka(&KafkaError::AdminOp(code), topic)),
        None => Err(AdminError::Kafka("kafka returned no result".to_owned())),
    }
}
