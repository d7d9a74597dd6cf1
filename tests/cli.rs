//! The command line as an operator meets it: `.env` files, clear refusals of bad
//! settings, and `ponte config` with secrets masked.

use std::path::Path;
use std::process::{Command, Output};

fn ponte(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
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

    let output = ponte(dir.path(), &["config"], &[("DLQ_TOPIC", "do-ambiente")]);

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

    let output = ponte(dir.path(), &["serve"], &[("PONTE_OUTBOX_PAHT", "x.db")]);

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

    let output = ponte(dir.path(), &["serve", "-X", "no.such.property=1"], &[]);

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

    let output = ponte(dir.path(), &args, &[]);
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stdout(&output).contains("hunter2"));
    assert_eq!(printed["kafka_properties"]["sasl.password"], "********");
    assert_eq!(printed["kafka_properties"]["sasl.username"], "erp");
    assert_eq!(printed["port"], 8081);
    assert_eq!(printed["enable_outbox"], true);
}
