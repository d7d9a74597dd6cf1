//! Hostile requests while honest clients post: each gets a clear refusal, nothing
//! hostile reaches the outbox or Kafka, and the honest records all arrive.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use support::ponte::{Ponte, try_post};
use support::{consume_until, message_ids, start_on_mock};

/// Sends raw bytes and returns the status code of the answer, or 0 when the
/// connection was closed without one.
fn raw(ponte: &Ponte, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", ponte.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn post(path: &str, content_type: Option<&str>, body: &[u8], extra: &str) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: ponte\r\nConnection: close\r\n");
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n{extra}\r\n", body.len()));
    [head.as_bytes(), body].concat()
}

/// The JSON error body of a raw answer, if it has one.
fn error_body(answer: &str) -> Option<Value> {
    let body = answer.split("\r\n\r\n").nth(1)?;
    serde_json::from_str(body).ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_are_refused_while_honest_clients_are_served() {
    let (cluster, _dir, ponte) = start_on_mock(&[("PONTE_MAX_BODY_BYTES", "65536")]);
    let url = ponte.url("/topics/honesto");
    let honest = tokio::spawn(async move {
        let mut ids = Vec::new();
        for n in 0..60 {
            let (status, answer) = try_post(&url, "k", json!({ "n": n }))
                .await
                .expect("answer");
            assert_eq!(status, 200, "{answer}");
            ids.push(answer["message_id"].as_str().expect("id").to_owned());
        }
        ids
    });

    let deep = format!("{{\"data\":{}{}}}", "[".repeat(20_000), "]".repeat(20_000));
    let huge_key = format!("{{\"key\":\"{}\",\"data\":1}}", "k".repeat(10_000));
    let json = Some("application/json");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "truncated JSON",
            post("/topics/t", json, b"{\"data\":{\"a\":", ""),
            400,
        ),
        (
            "not JSON",
            post("/topics/t", json, b"\x00\x01\x02", ""),
            400,
        ),
        (
            "invalid UTF-8",
            post("/topics/t", json, b"{\"data\":\"\xc3\x28\"}", ""),
            400,
        ),
        (
            "deep nesting",
            post("/topics/t", json, deep.as_bytes(), ""),
            422,
        ),
        (
            "huge key",
            post("/topics/t", json, huge_key.as_bytes(), ""),
            422,
        ),
        (
            "huge value",
            post("/topics/t", json, &vec![b' '; 70_000], ""),
            413,
        ),
        (
            "path separator in topic",
            post("/topics/a%2Fb", json, b"{\"data\":1}", ""),
            400,
        ),
        (
            "control character in topic",
            post("/topics/a%0Ab", json, b"{\"data\":1}", ""),
            400,
        ),
        (
            "dot-dot topic",
            post("/topics/%2E%2E", json, b"{\"data\":1}", ""),
            400,
        ),
        (
            "wrong content type",
            post("/topics/t", Some("text/xml"), b"<data/>", ""),
            415,
        ),
        (
            "no content type",
            post("/topics/t", None, b"{\"data\":1}", ""),
            415,
        ),
        (
            "two content types",
            post(
                "/topics/t",
                json,
                b"{\"data\":1}",
                "Content-Type: text/plain\r\n",
            ),
            415,
        ),
    ];
    for (what, request, expected) in &cases {
        let (status, answer) = raw(&ponte, request);
        assert_eq!(status, *expected, "{what}: {answer:.300}");
        let body = error_body(&answer).unwrap_or_else(|| panic!("{what}: no JSON error"));
        assert!(
            body["error_code"].is_u64() && body["message"].is_string(),
            "{what}: {body}"
        );
    }

    let absurd = b"POST /topics/t HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\n\
        Content-Length: 99999999999999999999\r\n\r\n{}";
    let (absurd_status, _) = raw(&ponte, absurd);
    let many = format!(
        "GET /health HTTP/1.1\r\nHost: p\r\n{}Connection: close\r\n\r\n",
        (0..200)
            .map(|n| format!("X-Pad-{n}: x\r\n"))
            .collect::<String>()
    );
    let (many_status, _) = raw(&ponte, many.as_bytes());

    let ids = honest.await.expect("honest client");
    let consumed = consume_until(
        &cluster.bootstrap_servers(),
        "honesto",
        Duration::from_secs(30),
        |r| r.len() >= ids.len(),
    );
    let (_, health) = ponte.get("/health").await;

    assert!(
        [400, 413].contains(&absurd_status),
        "absurd Content-Length: {absurd_status}"
    );
    assert_eq!(many_status, 431, "too many headers");
    assert_eq!(
        message_ids(&consumed),
        ids,
        "every honest record, once, in order"
    );
    assert_eq!(
        health["metrics"]["totalReceived"],
        json!(ids.len()),
        "nothing hostile stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_too_slow_with_its_headers_is_cut_off_and_others_are_served() {
    let (_cluster, _dir, ponte) = start_on_mock(&[("PONTE_HEADER_TIMEOUT_MS", "500")]);
    let mut slow = TcpStream::connect(("127.0.0.1", ponte.port)).expect("connect");
    slow.write_all(b"POST /topics/t HTTP/1.1\r\nHost: p\r\n")
        .expect("partial headers");
    slow.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");

    let (status, _) = ponte.post("t", None, json!({ "meanwhile": true })).await;
    let mut rest = Vec::new();
    let started = std::time::Instant::now();
    let _ = slow.read_to_end(&mut rest);

    assert_eq!(status, 200, "others are served meanwhile");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the slow client was cut off"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let (_cluster, _dir, ponte) = start_on_mock(&[("PONTE_RATE_LIMIT_PER_KEY", "2")]);

    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let response = reqwest::Client::new()
            .post(ponte.url("/topics/t"))
            .json(&json!({ "data": 1 }))
            .send()
            .await
            .expect("answer");
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").cloned();
        }
    }

    assert_eq!(&statuses[..2], [200, 200]);
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(
        retry_after.as_ref().and_then(|v| v.to_str().ok()),
        Some("1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_are_closed_until_others_go() {
    let (_cluster, _dir, ponte) = start_on_mock(&[("PONTE_MAX_CONNECTIONS", "2")]);
    // The start-up probe's connection must be gone before the two are taken.
    std::thread::sleep(Duration::from_millis(300));
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", ponte.port)).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    let (refused, _) = raw(
        &ponte,
        b"GET /health/live HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n",
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let (served, _) = raw(
        &ponte,
        b"GET /health/live HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n",
    );

    assert_eq!(refused, 0, "closed without an answer");
    assert_eq!(served, 200);
}
