//! Lanes keep records of one key in order while one of them waits for a retry.
//!
//! A lane is a topic and a key. When a record fails for a reason of its own, it
//! becomes the head of its lane: later records of the same key are held back
//! until the head is delivered or dead-lettered. Records without a key have no
//! order to keep, so each is a lane of its own and never holds anything back.

use std::collections::HashMap;

/// The ordering unit: a topic and a key, or a record without a key on its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Records of one key in one topic.
    Keyed {
        /// The topic.
        topic: String,
        /// The key's bytes.
        key: Vec<u8>,
    },
    /// A record without a key, by row id.
    Alone(i64),
}

impl Lane {
    /// The lane of row `id` with this topic and key.
    pub fn of(topic: &str, key: Option<&[u8]>, id: i64) -> Lane {
        match key {
            Some(key) => Lane::Keyed {
                topic: topic.to_owned(),
                key: key.to_vec(),
            },
            None => Lane::Alone(id),
        }
    }
}

/// The lanes that are held, each by the row id of its head.
// TODO(relay): held lanes live in memory, one per key with a failing head. A topic
// that refuses everything while clients keep posting many distinct keys grows this
// map without bound; it should spill to the outbox past a limit.
#[derive(Debug, Default)]
pub struct Lanes {
    heads: HashMap<Lane, i64>,
}

impl Lanes {
    /// Makes `id` the head of `lane`, unless an earlier record already is.
    pub fn hold(&mut self, lane: Lane, id: i64) {
        let head = self.heads.entry(lane).or_insert(id);
        *head = (*head).min(id);
    }

    /// Whether row `id` of `lane` must wait behind another record.
    pub fn holds_back(&self, lane: &Lane, id: i64) -> bool {
        self.heads.get(lane).is_some_and(|head| *head < id)
    }

    /// Releases the lane whose head is `id`, if any.
    pub fn release(&mut self, id: i64) {
        self.heads.retain(|_, head| *head != id);
    }

    /// Number of held lanes.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Whether no lane is held.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(key: &str) -> Lane {
        Lane::of("t", Some(key.as_bytes()), 0)
    }

    #[test]
    fn a_held_lane_holds_back_later_records_of_its_key_only() {
        let mut lanes = Lanes::default();
        lanes.hold(keyed("a"), 10);

        assert!(lanes.holds_back(&keyed("a"), 11));
        assert!(!lanes.holds_back(&keyed("a"), 10), "the head itself may go");
        assert!(!lanes.holds_back(&keyed("b"), 11));
        assert!(!lanes.holds_back(&Lane::of("other", Some(b"a"), 0), 11));
    }

    #[test]
    fn the_earliest_failure_stays_head_and_release_frees_the_lane() {
        let mut lanes = Lanes::default();
        lanes.hold(keyed("a"), 10);
        lanes.hold(keyed("a"), 7);
        lanes.hold(keyed("a"), 12);

        assert!(lanes.holds_back(&keyed("a"), 10));
        lanes.release(10);
        assert!(lanes.holds_back(&keyed("a"), 10), "7 is still the head");
        lanes.release(7);
        assert!(lanes.is_empty());
    }

    #[test]
    fn records_without_a_key_never_wait_for_each_other() {
        let mut lanes = Lanes::default();
        lanes.hold(Lane::of("t", None, 5), 5);

        assert!(!lanes.holds_back(&Lane::of("t", None, 6), 6));
        assert_eq!(lanes.len(), 1);
    }
}
