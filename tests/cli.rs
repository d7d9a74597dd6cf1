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
    assert!(
        stdout(&shown).contains("status           dlq"),
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
