//! The command line as an operator meets it: `.env` files, clear refusals of bad
//! settings, and `ponte config` with secrets masked.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use serde_json::json;
use support::ponte::Ponte;
use support::{consume, sqlite3};

fn run_ponte(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ponte"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("ponte runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_dotenv_file_in_the_working_directory_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join(".env"), "PORT=9999\nDLQ_TOPIC=do-arquivo\n").expect(".env");

    let output = run_ponte(dir.path(), &["config"], &[("DLQ_TOPIC", "do-ambiente")]);

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("port = 9999"),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains("dlq_topic = \"do-ambiente\""));
}

#[test]
fn an_invalid_setting_stops_serve_with_a_message_naming_it() {
    let dir = tempfile::tempdir().expect("dir");

    let output = run_ponte(dir.path(), &["serve"], &[("PONTE_OUTBOX_PAHT", "x.db")]);

    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("outbox_paht"),
        "{}",
        stderr(&output)
    );
    assert!(
        !dir.path().join("outbox.db").exists(),
        "nothing was started"
    );
}

#[test]
fn an_unknown_librdkafka_property_is_refused_at_startup() {
    let dir = tempfile::tempdir().expect("dir");

    let output = run_ponte(dir.path(), &["serve", "-X", "no.such.property=1"], &[]);

    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no.such.property"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn config_prints_every_setting_with_secrets_masked() {
    let dir = tempfile::tempdir().expect("dir");
    let args = [
        "config",
        "--json",
        "-X",
        "sasl.password=hunter2",
        "-X",
        "sasl.username=erp",
    ];

    let output = run_ponte(dir.path(), &args, &[]);
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stdout(&output).contains("hunter2"));
    assert_eq!(printed["kafka_properties"]["sasl.password"], "********");
    assert_eq!(printed["kafka_properties"]["sasl.username"], "erp");
    assert_eq!(printed["port"], 8081);
    assert_eq!(printed["enable_outbox"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_commands_show_list_and_retry_records_a_running_ponte_then_sends() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("dir");
    let ponte = Ponte::start(&cluster.bootstrap_servers(), dir.path(), &[]);
    let (_, answer) = ponte.post("cli", Some("k"), json!({ "a": 1 })).await;
    let id = answer["message_id"].as_str().expect("id").to_owned();
    ponte
        .health_until(Duration::from_secs(10), |h| {
            h["outbox"]["pending"] == json!(0)
        })
        .await;
    let db = ponte.outbox_path();
    // What the dead-letter path leaves behind, made by hand.
    sqlite3(
        &db,
        &format!("UPDATE outbox SET status = 'dlq' WHERE message_id = '{id}'"),
    );
    let path = db.to_string_lossy().into_owned();
    let env = [("PONTE_OUTBOX_PATH", path.as_str())];

    let listed = run_ponte(
        dir.path(),
        &["messages", "list", "--status", "dlq", "--json"],
        &env,
    );
    let shown = run_ponte(dir.path(), &["messages", "show", &id], &env);
    let retried = run_ponte(dir.path(), &["messages", "retry", &id], &env);
    let again = run_ponte(dir.path(), &["messages", "retry", &id], &env);
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "cli",
        2,
        Duration::from_secs(30),
    );

    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(rows[0]["message_id"], json!(id));
    let status_line = |l: &str| l.contains("status") && l.contains("dlq");
    assert!(
        stdout(&shown).lines().any(status_line),
        "{}",
        stdout(&shown)
    );
    assert!(retried.status.success(), "{}", stderr(&retried));
    assert!(
        !again.status.success(),
        "a pending record is not retried twice"
    );
    assert_eq!(consumed.len(), 2, "the running ponte sent the record again");
}

#[tokio::test(flavor = "multi_thread")]
async fn outbox_stats_and_purge_work_on_the_file() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("dir");
    let ponte = Ponte::start(&cluster.bootstrap_servers(), dir.path(), &[]);
    for n in 0..3 {
        let (status, _) = ponte.post("limpeza", None, json!({ "n": n })).await;
        assert_eq!(status, 200);
    }
    ponte
        .health_until(Duration::from_secs(10), |h| {
            h["outbox"]["pending"] == json!(0)
        })
        .await;
    let path = ponte.outbox_path().to_string_lossy().into_owned();
    let env = [("PONTE_OUTBOX_PATH", path.as_str())];

    let stats = run_ponte(dir.path(), &["outbox", "stats", "--json"], &env);
    let refused = run_ponte(
        dir.path(),
        &["outbox", "purge", "--status", "pending"],
        &env,
    );
    let purged = run_ponte(dir.path(), &["outbox", "purge", "--status", "sent"], &env);
    let after = run_ponte(dir.path(), &["outbox", "stats", "--json"], &env);

    let before: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("JSON");
    assert_eq!(
        (before["sent"].as_u64(), before["pending"].as_u64()),
        (Some(3), Some(0))
    );
    assert!(before["file_bytes"].as_u64() > Some(0));
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("--force"), "{}", stderr(&refused));
    assert!(
        stdout(&purged).contains("purged 3 sent rows"),
        "{}",
        stdout(&purged)
    );
    let after: serde_json::Value = serde_json::from_slice(&after.stdout).expect("JSON");
    assert_eq!(after["sent"], json!(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_commands_create_describe_list_and_delete_on_tansu() {
    let tansu = support::brokers::Tansu::start();
    let dir = tempfile::tempdir().expect("dir");
    let brokers = tansu.bootstrap();
    let env = [("KAFKA_BROKERS", brokers.as_str())];

    let created = run_ponte(
        dir.path(),
        &["topics", "create", "pedidos", "--partitions", "2"],
        &env,
    );
    let listed = run_ponte(dir.path(), &["topics", "list", "--json"], &env);
    let described = run_ponte(
        dir.path(),
        &["topics", "describe", "pedidos", "--json"],
        &env,
    );
    let deleted = run_ponte(dir.path(), &["topics", "delete", "pedidos"], &env);
    let missing = run_ponte(dir.path(), &["topics", "describe", "pedidos"], &env);

    assert!(created.status.success(), "{}", stderr(&created));
    let names: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert!(names.as_array().expect("array").contains(&json!("pedidos")));
    let topic: serde_json::Value = serde_json::from_slice(&described.stdout).expect("JSON");
    assert_eq!(topic["partitions"].as_array().map(Vec::len), Some(2));
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert!(
        stderr(&missing).contains("does not exist"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_generated_key_prints_its_secret_apart_from_the_configuration_lines() {
    let dir = tempfile::tempdir().expect("dir");

    let output = run_ponte(
        dir.path(),
        &["keys", "generate", "erp", "--scope", "produce:protheus-*"],
        &[],
    );
    let secret = stderr(&output)
        .lines()
        .nth(1)
        .expect("the secret on the second line")
        .to_owned();
    std::fs::write(dir.path().join("ponte.toml"), &output.stdout).expect("config");
    let config = run_ponte(
        dir.path(),
        &["config", "--json", "--config", "ponte.toml"],
        &[],
    );
    let printed: serde_json::Value = serde_json::from_slice(&config.stdout).expect("JSON");

    assert!(output.status.success());
    assert!(
        !stdout(&output).contains(&secret),
        "the secret stays out of the file"
    );
    assert_eq!(printed["api_keys"][0]["name"], json!("erp"));
    assert_eq!(
        printed["api_keys"][0]["hash"],
        json!(ponte::auth::hash_secret(&secret))
    );
    assert_eq!(
        printed["api_keys"][0]["scopes"],
        json!(["produce:protheus-*"])
    );
}

#[test]
fn kafka_secrets_come_from_files_reach_librdkafka_and_are_never_printed() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("kafka-password"), "s3cr3t-do-not-print\n").expect("secret");
    std::fs::write(
        dir.path().join("ponte.toml"),
        "[kafka_secret_files]\n\"sasl.password\" = \"kafka-password\"\n\n\
         [kafka_properties]\n\"security.protocol\" = \"sasl_ssl\"\n\
         \"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\"sasl.username\" = \"ponte\"\n",
    )
    .expect("config");

    let shown = run_ponte(
        dir.path(),
        &["config", "--json", "--config", "ponte.toml"],
        &[],
    );
    let refused = run_ponte(
        dir.path(),
        &[
            "config",
            "--config",
            "ponte.toml",
            "-X",
            "security.protocol=carrier-pigeon",
        ],
        &[],
    );
    let printed: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("JSON");

    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(
        !stdout(&shown).contains("s3cr3t"),
        "the secret is never printed"
    );
    assert_eq!(
        printed["kafka_properties"]["sasl.password"],
        json!("********")
    );
    assert_eq!(
        printed["kafka_properties"]["sasl.mechanism"],
        json!("SCRAM-SHA-512")
    );
    assert!(
        !refused.status.success(),
        "librdkafka checks what is passed through"
    );
    assert!(
        stderr(&refused).contains("security.protocol"),
        "{}",
        stderr(&refused)
    );
    assert!(!stderr(&refused).contains("s3cr3t"));
}

#[test]
fn a_reader_that_stops_early_ends_a_long_listing_quietly() {
    let dir = tempfile::tempdir().expect("dir");
    let outbox = dir.path().join("outbox.db");
    let env = [("PONTE_OUTBOX_PATH", outbox.to_str().expect("path"))];
    drop(ponte::outbox::sqlite::SqliteStore::open(&outbox).expect("a new outbox"));
    sqlite3(
        &outbox,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
         INSERT INTO outbox (message_id, topic, key, value, timestamp, created_at)
         SELECT 'longa-' || i, 'longa', 'chave-' || i, '{}', i, i FROM n",
    );

    // Far more output than a pipe holds: ponte writes until the reader is gone.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ponte"))
        .args(["messages", "list", "--limit", "5000", "--json"])
        .env_clear()
        .envs(env)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ponte runs");
    let mut first = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().expect("stdout"), &mut first)
        .expect("some output");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("ponte ends");

    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        stderr(&output)
    );
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
}
