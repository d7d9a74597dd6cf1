//! The broker a benchmark writes to: creating its topics, since Tansu (like many
//! production clusters) does not create them on first use.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Partitions of every benchmark topic: a few, so that the producer sends to
/// several partition leaders at once as it would on a real cluster.
pub const PARTITIONS: i32 = 3;

/// The Kafka cluster a benchmark writes to and reads back from.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `host:port` bootstrap list.
    pub bootstrap: String,
    /// Topics appear on first use, so none are created beforehand: librdkafka's
    /// mock cluster does that and does not answer topic creation requests.
    pub creates_topics_on_use: bool,
}

impl Cluster {
    /// A real cluster, on which benchmark topics are created before use.
    pub fn at(bootstrap: &str) -> Cluster {
        Cluster {
            bootstrap: bootstrap.to_owned(),
            creates_topics_on_use: false,
        }
    }

    /// Makes sure `topic` exists before anything is sent to it.
    pub async fn prepare_topic(&self, topic: &str) -> Result<(), KafkaError> {
        if self.creates_topics_on_use {
            return Ok(());
        }
        ensure_topic(&self.bootstrap, topic).await
    }
}

/// Creates `topic` with [`PARTITIONS`] partitions unless it exists.
pub async fn ensure_topic(brokers: &str, topic: &str) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let topics = [NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))];
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}
