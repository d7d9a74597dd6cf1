//! Unmodified third-party REST Proxy client libraries, from their package
//! registries, pointed at ponte. `scripts/test` installs them
//! (`npm ci --prefix tests/clients`).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{consume, start_on_mock};

#[test]
fn confluents_node_client_produces_lists_and_describes_through_ponte() {
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    assert!(
        clients.join("node_modules/kafka-rest").is_dir(),
        "the npm package kafka-rest is not installed: run `npm ci --prefix tests/clients`"
    );
    let (cluster, _dir, ponte) = start_on_mock(&[]);

    let output = Command::new("node")
        .arg(clients.join("kafka-rest-node.js"))
        .env("PONTE_URL", ponte.url(""))
        .env("TOPIC", "cliente-node")
        .output()
        .expect("node runs (install Node.js)");
    assert!(
        output.status.success(),
        "the client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "cliente-node",
        2,
        Duration::from_secs(30),
    );

    let offsets = seen["produced"]["offsets"].as_array().expect("offsets");
    assert_eq!(offsets.len(), 2, "{seen}");
    assert_eq!(offsets[1]["partition"], 1);
    for (entry, (key, value)) in offsets
        .iter()
        .zip([("NF-1", "primeira"), ("NF-2", "segunda")])
    {
        let record = consumed
            .iter()
            .find(|c| {
                Some(i64::from(c.partition)) == entry["partition"].as_i64()
                    && Some(c.offset) == entry["offset"].as_i64()
            })
            .unwrap_or_else(|| panic!("no record where {entry} says"));
        assert_eq!(record.key.as_deref(), Some(key));
        assert_eq!(record.value, value);
    }
    assert!(
        seen["topics"]
            .as_array()
            .expect("topics")
            .contains(&Value::from("cliente-node"))
    );
    assert_eq!(seen["partitions"], 4, "the mock cluster makes 4 partitions");
}
