//! The embedded Kafka of `ponte serve --dev`: librdkafka's in-process mock cluster.
//!
//! It speaks the Kafka protocol on a loopback port, so other programs (`kcat`, a
//! consumer) can read what ponte published, but it keeps everything in memory:
//! nothing survives the process. Topics are created on first use.

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A running in-process Kafka cluster; it stops when dropped.
pub struct DevKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for DevKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevKafka")
            .field("bootstrap_servers", &self.bootstrap_servers())
            .finish()
    }
}

impl DevKafka {
    /// Starts a one-broker cluster on a free loopback port.
    pub fn start() -> Result<Self, KafkaError> {
        Ok(DevKafka {
            cluster: MockCluster::new(1)?,
        })
    }

    /// The `host:port` list to give a Kafka client.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}
