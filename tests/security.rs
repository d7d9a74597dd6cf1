//! Nobody publishes without a key: every route without, with a wrong and with an
//! under-scoped credential, each way of presenting a key, the secure default, and
//! the audit trail of administrative actions.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use ponte::auth::{hash_secret, new_secret};
use reqwest::Method;
use serde_json::json;
use support::ponte::Ponte;
use support::{Cluster, sqlite3};

struct Keys {
    producer: String,
    reader: String,
    operator: String,
}

/// Starts ponte with three keys: one that may publish to `protheus-*`, one that may
/// read, one that may replay and administer.
fn start_with_keys() -> (Cluster, tempfile::TempDir, Ponte, Keys) {
    let keys = Keys {
        producer: new_secret(),
        reader: new_secret(),
        operator: new_secret(),
    };
    let config = format!(
        "[[api_keys]]\nname = \"erp\"\nhash = \"{}\"\nscopes = [\"produce:protheus-*\"]\n\n\
         [[api_keys]]\nname = \"painel\"\nhash = \"{}\"\nscopes = [\"read\"]\n\n\
         [[api_keys]]\nname = \"operador\"\nhash = \"{}\"\nscopes = [\"replay\", \"admin\"]\n",
        hash_secret(&keys.producer),
        hash_secret(&keys.reader),
        hash_secret(&keys.operator),
    );
    let cluster = Cluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ponte.toml");
    std::fs::write(&path, config).expect("config");
    let path = path.to_string_lossy().into_owned();
    let ponte = Ponte::start(
        &cluster.bootstrap_servers(),
        dir.path(),
        &[("PONTE_CONFIG", &path)],
    );
    (cluster, dir, ponte, keys)
}

async fn call(ponte: &Ponte, method: Method, path: &str, auth: Option<(&str, String)>) -> u16 {
    let mut request = reqwest::Client::new()
        .request(method, ponte.url(path))
        .header("content-type", "application/json")
        .body(r#"{"data":{"a":1}}"#);
    if let Some((name, value)) = auth {
        request = request.header(name, value);
    }
    request.send().await.expect("answer").status().as_u16()
}

fn bearer(secret: &str) -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {secret}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_wants_a_key_with_the_right_scope() {
    let (_cluster, _dir, ponte, keys) = start_with_keys();
    let routes: [(Method, &str, &str); 11] = [
        (Method::POST, "/topics/protheus-notas", "producer"),
        (Method::GET, "/topics", "reader"),
        (Method::GET, "/topics/protheus-notas", "reader"),
        (Method::GET, "/brokers", "reader"),
        (Method::GET, "/metrics", "reader"),
        (Method::GET, "/metrics/prometheus", "reader"),
        (Method::GET, "/messages?status=sent", "reader"),
        (Method::GET, "/messages/nada-1", "reader"),
        (Method::POST, "/messages/nada-1/retry", "operator"),
        (Method::POST, "/messages/replay", "operator"),
        (Method::POST, "/admin/topics", "operator"),
    ];
    let wrong = new_secret();

    for (method, path, owner) in routes {
        let (right, other) = match owner {
            "producer" => (&keys.producer, &keys.reader),
            "reader" => (&keys.reader, &keys.producer),
            _ => (&keys.operator, &keys.reader),
        };
        let without = call(&ponte, method.clone(), path, None).await;
        let wrong_key = call(&ponte, method.clone(), path, bearer(&wrong)).await;
        let under_scoped = call(&ponte, method.clone(), path, bearer(other)).await;
        let allowed = call(&ponte, method.clone(), path, bearer(right)).await;

        assert_eq!(
            (without, wrong_key, under_scoped),
            (401, 401, 403),
            "{method} {path}"
        );
        assert!(
            ![401, 403].contains(&allowed),
            "{method} {path} with its key: {allowed}"
        );
    }
    for probe in ["/health", "/health/live", "/health/ready"] {
        let open = call(&ponte, Method::GET, probe, None).await;
        assert!([200, 503].contains(&open), "{probe} needs no key: {open}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_works_as_bearer_x_api_key_and_basic_and_patterns_limit_topics() {
    let (_cluster, _dir, ponte, keys) = start_with_keys();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("erp:{}", keys.producer));
    let path = "/topics/protheus-pedidos";

    let by_bearer = call(&ponte, Method::POST, path, bearer(&keys.producer)).await;
    let by_header = call(
        &ponte,
        Method::POST,
        path,
        Some(("x-api-key", keys.producer.clone())),
    )
    .await;
    let by_basic = call(
        &ponte,
        Method::POST,
        path,
        Some(("authorization", format!("Basic {basic}"))),
    )
    .await;
    let elsewhere = reqwest::Client::new()
        .post(ponte.url("/topics/financeiro"))
        .bearer_auth(&keys.producer)
        .json(&json!({ "data": 1 }))
        .send()
        .await
        .expect("answer");
    let status = elsewhere.status().as_u16();
    let refusal: serde_json::Value = elsewhere.json().await.expect("JSON");

    assert_eq!((by_bearer, by_header, by_basic), (200, 200, 200));
    assert_eq!(status, 403);
    assert_eq!(refusal["error_code"], json!(40301));
    assert!(
        refusal["message"]
            .as_str()
            .unwrap_or_default()
            .contains("produce:financeiro")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn administrative_actions_are_kept_in_the_audit_trail_with_the_key_name() {
    let (_cluster, _dir, ponte, keys) = start_with_keys();

    let auth = format!("Bearer {}", keys.operator);
    let headers = [("authorization", auth.as_str())];
    let (replayed, _, _) = ponte.send("/messages/replay", &json!({}), &headers).await;
    let (retried, _, _) = ponte
        .send("/messages/nada-1/retry", &json!({}), &headers)
        .await;
    // The audit entry is written with the writer's next commit.
    ponte
        .health_until(Duration::from_millis(300), |_| false)
        .await;
    let trail = sqlite3(
        &ponte.outbox_path(),
        "SELECT actor, action FROM audit_log ORDER BY id",
    );

    assert_eq!((replayed, retried), (200, 404));
    assert_eq!(
        trail,
        [json!({"actor": "operador", "action": "records.replay"})]
    );
}

fn serve(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ponte"))
        .arg("serve")
        .env_clear()
        .env("PORT", support::brokers::free_port().to_string())
        .env("KAFKA_BROKERS", "127.0.0.1:9")
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ponte starts")
}

#[test]
fn listening_beyond_loopback_without_keys_is_refused_unless_anonymity_is_asked_for() {
    let dir = tempfile::tempdir().expect("dir");

    let refused = serve(dir.path(), &[("PONTE_BIND_ADDRESS", "0.0.0.0")])
        .wait_with_output()
        .expect("exits");
    let mut anonymous = serve(
        dir.path(),
        &[
            ("PONTE_BIND_ADDRESS", "0.0.0.0"),
            ("PONTE_ALLOW_ANONYMOUS", "true"),
        ],
    );
    std::thread::sleep(Duration::from_millis(800));
    let still_running = anonymous.try_wait().expect("status").is_none();
    let _ = anonymous.kill();
    let warned = anonymous.wait_with_output().expect("output");

    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("without API keys"));
    assert!(still_running, "anonymous access was asked for");
    assert!(String::from_utf8_lossy(&warned.stderr).contains("anonymous access allowed"));
}
