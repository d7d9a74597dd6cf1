//! The body of `POST /topics/{topic}` and the topic in its path: whatever the
//! bytes, decoding answers a record or an error, and never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ponte::validate::{self, BodyLimits};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |n| usize::from(*n)).min(data.len());
    let (topic, body) = data.split_at(split);
    let _ = validate::topic_name(&String::from_utf8_lossy(topic));

    if let Ok(submission) = validate::middleware_record("t".to_owned(), body) {
        let limits = BodyLimits {
            max_key_bytes: 4_096,
            max_json_depth: 64,
        };
        let _ = validate::within_limits(body, &submission.record, limits);
        // What is accepted is valid JSON, as published.
        let value = submission.record.value.as_deref().unwrap_or_default();
        assert!(serde_json::from_slice::<&serde_json::value::RawValue>(value).is_ok());
    }
});
