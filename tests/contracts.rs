//! The Protheus event contracts in `schemas/`: every sample validates or fails
//! as its name says, the shared invoice fixture matches the invoice schema, and
//! ponte with per-topic validation on takes the valid samples and refuses the
//! invalid ones with `422` and their violations.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use ponte::validate::schemas::{Schemas, TopicSchema};
use serde_json::{Value, json};
use support::{sqlite3, start_on_mock};

/// Each event: its samples folder and schema file under `schemas/`, and the
/// topic the Protheus guide publishes it to.
const EVENTS: [(&str, &str); 4] = [
    ("invoice", "protheus.notas-fiscais"),
    ("sales-order", "protheus.pedidos-venda"),
    ("stock-movement", "protheus.movimentos-estoque"),
    ("receivable", "protheus.contas-receber"),
];

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema_path(event: &str) -> PathBuf {
    repository()
        .join("schemas")
        .join(format!("{event}.schema.json"))
}

/// The samples of `event`, by file name, with whether the name says valid.
fn samples(event: &str) -> Vec<(String, bool, Vec<u8>)> {
    let folder = repository().join("schemas/samples").join(event);
    let mut found: Vec<(String, bool, Vec<u8>)> = std::fs::read_dir(&folder)
        .unwrap_or_else(|err| panic!("{}: {err}", folder.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let valid = name.starts_with("valid-");
            assert!(
                valid || name.starts_with("invalid-"),
                "unlabelled sample {name}"
            );
            (name, valid, std::fs::read(&path).expect("sample"))
        })
        .collect();
    found.sort();
    found
}

fn schemas_for(topic: &str, event: &str) -> Schemas {
    let entry = TopicSchema {
        topic: topic.to_owned(),
        schema: schema_path(event),
    };
    Schemas::load(&[entry]).expect("the schema compiles")
}

#[test]
fn every_sample_validates_or_fails_as_its_name_says() {
    for (event, topic) in EVENTS {
        let schemas = schemas_for(topic, event);
        let samples = samples(event);
        let valid = samples.iter().filter(|(_, valid, _)| *valid).count();
        assert!(valid >= 2, "{event}: at least two valid samples");
        assert!(
            samples.len() - valid >= 3,
            "{event}: at least three invalid samples"
        );
        for (name, valid, bytes) in samples {
            let checked = schemas.check(topic, Some(&bytes));
            if valid {
                assert_eq!(checked, Ok(()), "{event}/{name} should be valid");
            } else {
                let violations = checked.expect_err(&format!("{event}/{name} should fail"));
                assert!(!violations.is_empty());
            }
        }
    }
}

#[test]
fn the_shared_invoice_fixture_matches_the_invoice_schema() {
    let fixture: Value = serde_json::from_slice(
        &std::fs::read(repository().join("tests/fixtures/nota-fiscal.json")).expect("fixture"),
    )
    .expect("JSON fixture");
    let schemas = schemas_for("protheus.notas-fiscais", "invoice");
    let data = serde_json::to_vec(&fixture["data"]).expect("data");

    assert_eq!(schemas.check("protheus.notas-fiscais", Some(&data)), Ok(()));
}

#[tokio::test(flavor = "multi_thread")]
async fn ponte_takes_valid_samples_and_refuses_invalid_ones_with_their_violations() {
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = config_dir.path().join("ponte.toml");
    let mut text = String::new();
    for (event, topic) in EVENTS {
        text.push_str(&format!(
            "[[topic_schemas]]\ntopic = \"{topic}\"\nschema = {:?}\n\n",
            schema_path(event).display().to_string()
        ));
    }
    std::fs::write(&config, text).expect("config");
    let config = config.display().to_string();
    let (_cluster, _dir, ponte) = start_on_mock(&[("PONTE_CONFIG", config.as_str())]);

    let mut accepted = 0;
    for (event, topic) in EVENTS {
        for (name, valid, bytes) in samples(event) {
            let data: Value = serde_json::from_slice(&bytes).expect("JSON sample");
            let (status, answer) = ponte.post(topic, Some(&name), data).await;
            if valid {
                assert!(
                    matches!(status, 200 | 202),
                    "{event}/{name}: {status} {answer}"
                );
                accepted += 1;
            } else {
                assert_eq!(status, 422, "{event}/{name}: {answer}");
                assert_eq!(answer["error_code"], 42210);
                let violations = answer["violations"].as_array().expect("violations");
                assert!(!violations.is_empty(), "{event}/{name}");
                assert!(
                    violations
                        .iter()
                        .all(|v| v["pointer"].is_string() && v["message"].is_string())
                );
            }
        }
    }

    let rows = sqlite3(&ponte.outbox_path(), "SELECT count(*) AS n FROM outbox");
    assert_eq!(
        rows[0]["n"],
        json!(accepted),
        "refused records are not stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_apply_to_rest_proxy_records_too() {
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = config_dir.path().join("ponte.toml");
    std::fs::write(
        &config,
        format!(
            "[[topic_schemas]]\ntopic = \"protheus.*\"\nschema = {:?}\n",
            schema_path("invoice").display().to_string()
        ),
    )
    .expect("config");
    let config = config.display().to_string();
    let (_cluster, _dir, ponte) = start_on_mock(&[("PONTE_CONFIG", config.as_str())]);
    let valid: Value = serde_json::from_slice(
        &samples("invoice")[..]
            .iter()
            .find(|(_, valid, _)| *valid)
            .expect("a valid invoice")
            .2,
    )
    .expect("JSON");
    let body = json!({"records": [{"value": valid}, {"value": {"documento": 1}}]});

    let (status, _, text) = ponte
        .request(
            reqwest::Method::POST,
            "/topics/protheus.notas",
            "application/vnd.kafka.json.v2+json",
            body.to_string(),
            &[],
        )
        .await;
    let answer: Value = serde_json::from_str(&text).expect("JSON");

    assert_eq!(status, 422, "{answer}");
    let violations = answer["violations"].as_array().expect("violations");
    assert!(
        violations.iter().all(|v| v["record"] == 1),
        "only the second record: {answer}"
    );
    let rows = sqlite3(&ponte.outbox_path(), "SELECT count(*) AS n FROM outbox");
    assert_eq!(rows[0]["n"], 0, "a v2 request is refused whole");
}

#[test]
fn a_bad_schema_stops_startup_with_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = dir.path().join("broken.schema.json");
    std::fs::write(&schema, r#"{"type": "objeto"}"#).expect("schema");
    let config = dir.path().join("ponte.toml");
    std::fs::write(
        &config,
        "[[topic_schemas]]\ntopic = \"notas\"\nschema = \"broken.schema.json\"\n",
    )
    .expect("config");

    let output = Command::new(env!("CARGO_BIN_EXE_ponte"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_clear()
        .env("PONTE_OUTBOX_PATH", dir.path().join("outbox.db"))
        .env("PONTE_BIND_ADDRESS", "127.0.0.1")
        .env("PORT", "0")
        .current_dir(Path::new("/"))
        .output()
        .expect("ponte runs");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "ponte must not start: {stderr}");
    assert!(stderr.contains("topic_schemas"), "{stderr}");
    assert!(stderr.contains("broken.schema.json"), "{stderr}");
    assert!(
        !dir.path().join("outbox.db").exists(),
        "stopped before opening the outbox"
    );
}

#[test]
fn relative_schema_paths_are_taken_from_the_configuration_files_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("contratos")).expect("folder");
    std::fs::copy(schema_path("invoice"), dir.path().join("contratos/nf.json")).expect("copy");
    let config = dir.path().join("ponte.toml");
    std::fs::write(
        &config,
        "[[topic_schemas]]\ntopic = \"notas\"\nschema = \"contratos/nf.json\"\n",
    )
    .expect("config");

    let output = Command::new(env!("CARGO_BIN_EXE_ponte"))
        .args(["config", "--json", "--config"])
        .arg(&config)
        .env_clear()
        .current_dir(Path::new("/"))
        .output()
        .expect("ponte runs");
    let printed: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));

    let resolved = dir.path().join("contratos/nf.json").display().to_string();
    assert_eq!(printed["topic_schemas"][0]["schema"], resolved);
}
