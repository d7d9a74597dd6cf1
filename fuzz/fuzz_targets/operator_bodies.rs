//! The bodies of the operator routes (replay, topic creation) and the times and
//! ids they carry: decoding never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ponte::validate;

fuzz_target!(|data: &[u8]| {
    let _ = validate::replay_request(data);
    let _ = validate::create_topic_request(data);
    let text = String::from_utf8_lossy(data);
    let _ = validate::moment_ms(&text);
    let _ = validate::client_id(&text);
});
