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
