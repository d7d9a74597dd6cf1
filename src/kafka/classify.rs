//! Sorting Kafka failures by what ponte should do about them.
//!
//! The question for each failure is whether it says something about Kafka right
//! now (wait and try again, however long it takes) or about the record itself
//! (trying again may never help, so it counts toward the dead-letter limit).

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What a failed send means for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Kafka or the network is unavailable: wait and send again; no attempt spent.
    Retriable,
    /// The record cannot be written as it is: counts toward the dead-letter limit.
    Permanent,
    /// ponte withdrew the send itself (to keep order while pausing); not a failure.
    Withdrawn,
    /// Not recognised: treated like a permanent failure, and logged as unknown, so
    /// that an unclassified error cannot make a record loop forever.
    Unknown,
}

impl FailureClass {
    /// Whether this failure counts toward the dead-letter limit.
    pub fn counts_toward_dead_letter(self) -> bool {
        matches!(self, FailureClass::Permanent | FailureClass::Unknown)
    }

    /// A short name for logs and the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Retriable => "retriable",
            FailureClass::Permanent => "permanent",
            FailureClass::Withdrawn => "withdrawn",
            FailureClass::Unknown => "unknown",
        }
    }
}

/// Classifies the error of a failed send.
pub fn classify(error: &KafkaError) -> FailureClass {
    match error.rdkafka_error_code() {
        Some(code) => classify_code(code),
        None => FailureClass::Unknown,
    }
}

/// Classifies a librdkafka or broker error code.
// One arm per reason, each with its comment, even where two arms share a class.
#[allow(clippy::match_same_arms)]
pub fn classify_code(code: RDKafkaErrorCode) -> FailureClass {
    use FailureClass::{Permanent, Retriable, Unknown, Withdrawn};
    use RDKafkaErrorCode as E;

    match code {
        // Brokers unreachable, connections dropped, names not resolving: the
        // cluster is away, not the record's fault.
        E::BrokerTransportFailure
        | E::AllBrokersDown
        | E::Resolve
        | E::BrokerNotAvailable
        | E::NetworkException => Retriable,
        // The producer or a request ran out of time; the cluster may be slow or
        // partitioned.
        E::MessageTimedOut | E::RequestTimedOut | E::OperationTimedOut | E::TimedOutQueue => {
            Retriable
        }
        // Fewer in-sync replicas than min.insync.replicas: acks=all cannot be met yet.
        E::NotEnoughReplicas | E::NotEnoughReplicasAfterAppend | E::ISRInsufficient => Retriable,
        // Leadership is moving or metadata is stale; it settles by itself.
        E::LeaderNotAvailable
        | E::NotLeaderForPartition
        | E::FencedLeaderEpoch
        | E::UnknownLeaderEpoch
        | E::ReplicaNotAvailable
        | E::PreferredLeaderNotAvailable
        | E::EligibleLeadersNotAvailable
        | E::ReassignmentInProgress
        | E::NotController
        | E::KafkaStorageError
        | E::RebootstrapRequired => Retriable,
        // The broker asks clients to slow down.
        E::ThrottlingQuotaExceeded => Retriable,
        // Producer-id bookkeeping lost by the broker; librdkafka re-registers.
        E::OutOfOrderSequenceNumber | E::UnknownProducerId | E::InvalidProducerEpoch => Retriable,
        // The local producer queue is full: back-pressure, not a failure.
        E::QueueFull => Retriable,

        // ponte purged its own queue to keep records in order during a pause.
        E::PurgeQueue | E::PurgeInflight => Withdrawn,

        // The record is larger than the broker or topic accepts.
        E::MessageSizeTooLarge | E::MessageBatchTooLarge | E::InvalidMessageSize => Permanent,
        // The broker refuses the record's contents.
        E::InvalidMessage | E::InvalidRecord | E::InvalidTimestamp => Permanent,
        E::BadMessage | E::BadCompression | E::UnsupportedCompressionType => Permanent,
        // Not allowed to write there.
        E::TopicAuthorizationFailed
        | E::ClusterAuthorizationFailed
        | E::SaslAuthenticationFailed
        | E::Authentication => Permanent,
        // The topic does not exist (and the cluster does not create it) or is invalid.
        E::UnknownTopicOrPartition | E::UnknownTopic | E::UnknownPartition | E::InvalidTopic => {
            Permanent
        }
        E::PolicyViolation | E::InvalidRequiredAcks | E::UnsupportedForMessageFormat => Permanent,

        _ => Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_cluster_is_retriable() {
        for code in [
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::LeaderNotAvailable,
        ] {
            assert_eq!(classify_code(code), FailureClass::Retriable, "{code:?}");
            assert!(!classify_code(code).counts_toward_dead_letter());
        }
    }

    #[test]
    fn a_record_kafka_will_never_take_is_permanent() {
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::InvalidRecord,
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::UnknownTopic,
        ] {
            assert_eq!(classify_code(code), FailureClass::Permanent, "{code:?}");
            assert!(classify_code(code).counts_toward_dead_letter());
        }
    }

    #[test]
    fn purges_are_withdrawals_and_unrecognised_codes_count_as_failures() {
        assert_eq!(
            classify_code(RDKafkaErrorCode::PurgeQueue),
            FailureClass::Withdrawn
        );
        assert!(!FailureClass::Withdrawn.counts_toward_dead_letter());
        assert_eq!(
            classify_code(RDKafkaErrorCode::Fenced),
            FailureClass::Unknown
        );
        assert!(FailureClass::Unknown.counts_toward_dead_letter());
    }
}
