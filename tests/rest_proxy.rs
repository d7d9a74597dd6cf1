//! The Confluent REST Proxy API: requests as its documentation writes them, sent
//! unchanged, and the records read back from Kafka match what each answer said,
//! keys, values, partitions, timestamps and headers included.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::brokers::Tansu;
use support::ponte::Ponte;
use support::{Consumed, consume, consume_until, sqlite3, start_on_mock};

const PATIENCE: Duration = Duration::from_secs(30);
const JSON_V2: &str = "application/vnd.kafka.json.v2+json";
const BINARY_V2: &str = "application/vnd.kafka.binary.v2+json";
const ACCEPT_V2: (&str, &str) = ("accept", "application/vnd.kafka.v2+json");

/// Waits until ponte sees Kafka, so that topics and partitions are checked.
async fn connected(ponte: &Ponte) {
    ponte
        .health_until(PATIENCE, |health| {
            health["kafka"]["connected"] == json!(true)
        })
        .await;
}

/// `POST path` with `content_type`; returns status, headers and JSON.
async fn post(
    ponte: &Ponte,
    path: &str,
    content_type: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let (status, headers, text) = ponte
        .request(Method::POST, path, content_type, body.to_string(), headers)
        .await;
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON answer: {text}"));
    (status, headers, json)
}

fn by_place(consumed: &[Consumed]) -> HashMap<(i64, i64), &Consumed> {
    consumed
        .iter()
        .map(|c| ((i64::from(c.partition), c.offset), c))
        .collect()
}

fn place(entry: &Value, partition: &str) -> (i64, i64) {
    let partition = entry[partition].as_i64();
    let offset = entry["offset"].as_i64();
    match (partition, offset) {
        (Some(partition), Some(offset)) => (partition, offset),
        _ => panic!("no partition and offset in {entry}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_json_and_binary_records_reach_kafka_as_the_rest_proxy_sends_them() {
    let (cluster, _dir, ponte) = start_on_mock(&[]);
    // The example of the REST Proxy's documentation, unchanged.
    let documented = json!({"records": [
        {"key": "somekey", "value": {"foo": "bar"}},
        {"value": ["foo", "bar"], "partition": 1},
        {"value": 53.5}
    ]});
    let binary = json!({"records": [
        {"key": "AP8=", "value": "S2Fma2E="},
        {"value": "bG9ncw=="}
    ]});

    let (json_status, json_headers, json_answer) = post(
        &ponte,
        "/topics/rest-v2",
        JSON_V2,
        &documented,
        &[ACCEPT_V2],
    )
    .await;
    let (binary_status, _, binary_answer) =
        post(&ponte, "/topics/rest-v2", BINARY_V2, &binary, &[]).await;
    let consumed = consume(&cluster.bootstrap_servers(), "rest-v2", 5, PATIENCE);

    assert_eq!(
        (json_status, binary_status),
        (200, 200),
        "{json_answer} {binary_answer}"
    );
    assert_eq!(
        json_headers["content-type"], "application/vnd.kafka.v2+json",
        "the REST Proxy's media type"
    );
    assert_eq!(json_answer["key_schema_id"], Value::Null);
    assert_eq!(json_answer["value_schema_id"], Value::Null);
    let offsets: Vec<&Value> = json_answer["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .chain(binary_answer["offsets"].as_array().expect("offsets"))
        .collect();
    assert_eq!(offsets.len(), 5, "one entry per record, in order");
    assert!(
        offsets
            .iter()
            .all(|o| o["error_code"].is_null() && o["offset"].is_i64())
    );
    assert_eq!(offsets[1]["partition"], 1, "the partition asked for");

    let stored = by_place(&consumed);
    let expected: [(Option<&[u8]>, &[u8]); 5] = [
        (Some(b"\"somekey\""), br#"{"foo":"bar"}"#),
        (None, br#"["foo","bar"]"#),
        (None, b"53.5"),
        (Some(&[0x00, 0xff]), b"Kafka"),
        (None, b"logs"),
    ];
    for (entry, (key, value)) in offsets.iter().zip(expected) {
        let record = stored[&place(entry, "partition")];
        assert_eq!(record.key_bytes.as_deref(), key, "{entry}");
        assert_eq!(record.value_bytes.as_deref(), Some(value), "{entry}");
        assert_eq!(record.header("message-id"), entry["message_id"].as_str());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_requests_ponte_cannot_take_are_refused_whole_with_the_rest_proxy_codes() {
    let (cluster, _dir, ponte) = start_on_mock(&[]);
    connected(&ponte).await;
    let one = json!({"records": [{"value": "AA=="}]});

    let (to_partition, _, placed) =
        post(&ponte, "/topics/parts/partitions/2", BINARY_V2, &one, &[]).await;
    let (no_partition, _, missing) =
        post(&ponte, "/topics/parts/partitions/99", BINARY_V2, &one, &[]).await;
    let half_bad = json!({"records": [{"value": "AA=="}, {"value": "%%%"}]});
    let (bad, _, invalid) = post(&ponte, "/topics/parts", BINARY_V2, &half_bad, &[]).await;
    let avro = json!({"records": [{"value": {"a": 1}}]});
    let (no_schema, _, schema_missing) = post(
        &ponte,
        "/topics/parts",
        "application/vnd.kafka.avro.v2+json",
        &avro,
        &[],
    )
    .await;
    let with_schema = json!({"value_schema": "\"int\"", "records": [{"value": 1}]});
    let (registry, _, unsupported) = post(
        &ponte,
        "/topics/parts",
        "application/vnd.kafka.avro.v2+json",
        &with_schema,
        &[],
    )
    .await;
    let (text, _, not_json) = post(&ponte, "/topics/parts", "text/plain", &one, &[]).await;
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "parts",
        2,
        Duration::from_secs(5),
    );

    assert_eq!(
        (to_partition, placed["offsets"][0]["partition"].clone()),
        (200, json!(2))
    );
    assert_eq!(
        (no_partition, missing["error_code"].clone()),
        (404, json!(40402))
    );
    assert_eq!((bad, invalid["error_code"].clone()), (422, json!(42206)));
    assert!(
        invalid["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("records[1].value")),
        "{invalid}"
    );
    assert_eq!(
        (no_schema, schema_missing["error_code"].clone()),
        (422, json!(42202))
    );
    assert_eq!(
        (registry, unsupported["error_code"].clone()),
        (415, json!(41502))
    );
    assert!(
        unsupported["message"]
            .as_str()
            .is_some_and(|m| m.contains("Avro"))
    );
    assert_eq!((text, not_json["error_code"].clone()), (415, json!(41501)));
    assert_eq!(
        consumed.len(),
        1,
        "only the record posted to partition 2 reached Kafka: {consumed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_metadata_has_the_rest_proxy_shapes_and_media_type() {
    let (_cluster, _dir, ponte) = start_on_mock(&[]);
    let one = json!({"records": [{"value": 1}]});
    let (status, _, _) = post(&ponte, "/topics/meta", JSON_V2, &one, &[]).await;
    assert_eq!(status, 200);

    let (topic_status, topic_headers, topic) = ponte
        .request(
            Method::GET,
            "/topics/meta",
            "application/json",
            String::new(),
            &[ACCEPT_V2],
        )
        .await;
    let topic: Value = serde_json::from_str(&topic).expect("JSON");
    let (_, partitions) = ponte.get("/topics/meta/partitions").await;
    let (one_status, partition) = ponte.get("/topics/meta/partitions/3").await;
    let (none_status, none) = ponte.get("/topics/meta/partitions/4").await;
    let (_, topics) = ponte.get("/topics").await;
    let (_, brokers) = ponte.get("/brokers").await;

    assert_eq!(topic_status, 200);
    assert_eq!(
        topic_headers["content-type"],
        "application/vnd.kafka.v2+json"
    );
    assert_eq!(topic["name"], "meta");
    assert!(topic["configs"].is_object());
    assert_eq!(
        topic["partitions"], partitions,
        "the same partitions both ways"
    );
    assert_eq!(
        partitions.as_array().map(Vec::len),
        Some(4),
        "the mock makes 4"
    );
    assert_eq!(one_status, 200);
    assert_eq!(partition["partition"], 3);
    assert_eq!(
        partition["replicas"][0],
        json!({"broker": partition["leader"], "leader": true, "in_sync": true})
    );
    assert_eq!(
        (none_status, none["error_code"].clone()),
        (404, json!(40402))
    );
    assert!(topics.as_array().expect("names").contains(&json!("meta")));
    assert_eq!(brokers, json!({"brokers": [1]}));
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_batches_with_an_idempotency_key_are_stored_once_however_often_they_are_sent() {
    let (cluster, _dir, ponte) = start_on_mock(&[]);
    let batch = json!({"records": [{"key": "a", "value": 1}, {"key": "b", "value": 2}]});
    let other = json!({"records": [{"key": "a", "value": 1}, {"key": "b", "value": 3}]});
    let key = [("idempotency-key", "pedido-77")];

    let (first_status, _, first) = post(&ponte, "/topics/idem", JSON_V2, &batch, &key).await;
    let (again_status, _, again) = post(&ponte, "/topics/idem", JSON_V2, &batch, &key).await;
    let (changed_status, _, changed) = post(&ponte, "/topics/idem", JSON_V2, &other, &key).await;
    let consumed = consume(
        &cluster.bootstrap_servers(),
        "idem",
        3,
        Duration::from_secs(5),
    );

    assert_eq!((first_status, again_status), (200, 200));
    assert_eq!(
        first["offsets"], again["offsets"],
        "the repeat gets the first answer"
    );
    assert_eq!(changed_status, 200, "{changed}");
    assert_eq!(
        changed["offsets"][0], first["offsets"][0],
        "the same first record"
    );
    assert_eq!(
        changed["offsets"][1]["error_code"], 40901,
        "a different second record"
    );
    assert_eq!(consumed.len(), 2, "each record once in Kafka: {consumed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn v3_records_batches_and_topics_work_on_tansu_with_headers_and_timestamps() {
    let tansu = Tansu::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let ponte = Ponte::start(&tansu.bootstrap(), dir.path(), &[]);
    connected(&ponte).await;

    let (_, clusters) = ponte.get("/v3/clusters").await;
    let cluster_id = clusters["data"][0]["cluster_id"]
        .as_str()
        .expect("cluster id")
        .to_owned();
    let base = format!("/v3/clusters/{cluster_id}");
    let (cluster_status, cluster) = ponte.get(&base).await;
    let spec = json!({"topic_name": "eventos", "partitions_count": 2, "replication_factor": 1});
    let (created, _, topic) = post(
        &ponte,
        &format!("{base}/topics"),
        "application/json",
        &spec,
        &[],
    )
    .await;
    let (_, listed) = ponte.get(&format!("{base}/topics")).await;
    let (missing_status, _, missing) = post(
        &ponte,
        &format!("{base}/topics/nao-existe/records"),
        "application/json",
        &json!({"value": {"type": "JSON", "data": 1}}),
        &[],
    )
    .await;

    // The example of the REST Proxy's documentation, unchanged.
    let documented = json!({
        "partition_id": 1,
        "headers": [
            {"name": "Header-1", "value": "SGVhZGVyLTE="},
            {"name": "Header-2", "value": "SGVhZGVyLTI="}
        ],
        "key": {"type": "BINARY", "data": "Zm9vYmFy"},
        "value": {"type": "JSON", "data": {"foo": "bar"}},
        "timestamp": "2021-02-05T19:14:42Z"
    });
    let records = format!("{base}/topics/eventos/records");
    let (single_status, _, single) =
        post(&ponte, &records, "application/json", &documented, &[]).await;
    let batch = json!({"entries": [
        {"id": "1", "key": {"type": "STRING", "data": "k1"}, "value": {"type": "STRING", "data": "um"}},
        {"id": "2", "value": {"type": "BINARY", "data": "not base64"}},
        {"id": "3", "partition_id": 7, "value": {"type": "JSON", "data": 3}}
    ]});
    let (batch_status, _, batched) = post(
        &ponte,
        &format!("{records}:batch"),
        "application/json",
        &batch,
        &[],
    )
    .await;
    let consumed = consume(&tansu.bootstrap(), "eventos", 2, PATIENCE);

    assert_eq!(cluster_status, 200);
    assert_eq!(cluster["kind"], "KafkaCluster");
    assert_eq!(created, 201, "{topic}");
    assert_eq!(
        (
            topic["topic_name"].clone(),
            topic["partitions_count"].clone()
        ),
        (json!("eventos"), json!(2))
    );
    assert!(
        listed["data"]
            .as_array()
            .expect("topics")
            .iter()
            .any(|t| t["topic_name"] == "eventos")
    );
    assert_eq!(
        missing_status, 404,
        "Tansu creates no topic on first use: {missing}"
    );
    assert_eq!(missing["error_code"], 40401);

    assert_eq!(single_status, 200, "{single}");
    assert_eq!(single["error_code"], 200);
    assert_eq!(single["partition_id"], 1);
    assert_eq!(single["timestamp"], "2021-02-05T19:14:42.000Z");
    assert_eq!(single["key"], json!({"type": "BINARY", "size": 6}));
    let stored = by_place(&consumed);
    let record = stored[&place(&single, "partition_id")];
    assert_eq!(record.key_bytes.as_deref(), Some(b"foobar".as_slice()));
    assert_eq!(
        record.value_bytes.as_deref(),
        Some(br#"{"foo":"bar"}"#.as_slice())
    );
    assert_eq!(record.timestamp_ms, Some(1_612_552_482_000));
    assert_eq!(record.header("Header-1"), Some("Header-1"));
    assert_eq!(record.header("Header-2"), Some("Header-2"));
    assert_eq!(record.header("message-id"), single["message_id"].as_str());

    assert_eq!(batch_status, 207, "{batched}");
    let successes = batched["successes"].as_array().expect("successes");
    let failures = batched["failures"].as_array().expect("failures");
    assert_eq!(successes.len(), 1, "{batched}");
    assert_eq!(successes[0]["id"], "1");
    let failed: Vec<(&Value, &Value)> = failures
        .iter()
        .map(|f| (&f["id"], &f["error_code"]))
        .collect();
    assert_eq!(
        failed,
        [(&json!("2"), &json!(422)), (&json!("3"), &json!(404))]
    );
    let one = stored[&place(&successes[0], "partition_id")];
    assert_eq!(one.key_bytes.as_deref(), Some(b"k1".as_slice()));
    assert_eq!(one.value_bytes.as_deref(), Some(b"um".as_slice()));

    let (deleted, _, _) = ponte
        .request(
            Method::DELETE,
            &format!("{base}/topics/eventos"),
            "application/json",
            String::new(),
            &[],
        )
        .await;
    let (gone, _) = ponte.get(&format!("{base}/topics/eventos")).await;
    assert_eq!((deleted, gone), (204, 404));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v3_stream_answers_each_record_in_order_while_the_client_keeps_sending() {
    let (cluster, _dir, ponte) = start_on_mock(&[]);
    connected(&ponte).await;
    let (_, clusters) = ponte.get("/v3/clusters").await;
    let cluster_id = clusters["data"][0]["cluster_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let url = ponte.url(&format!("/v3/clusters/{cluster_id}/topics/fluxo/records"));

    let (sender, chunks) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_of(chunks));
    let response = tokio::spawn(
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send(),
    );
    let record = |n: usize| {
        format!(
            r#"{{"key":{{"type":"STRING","data":"k{n}"}},"value":{{"type":"JSON","data":{n}}}}}"#
        )
    };

    // The first record's result arrives before the client sends the second.
    sender.send(Ok(record(0).into_bytes())).await.expect("send");
    let mut response = response.await.expect("task").expect("response head");
    assert_eq!(response.status(), 200);
    let mut seen = String::new();
    while !seen.contains('\n') {
        let chunk = tokio::time::timeout(PATIENCE, response.chunk())
            .await
            .expect("first result in time")
            .expect("chunk")
            .expect("more body");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // The rest: a valid record, an invalid one, and one split across chunks.
    sender.send(Ok(record(1).into_bytes())).await.expect("send");
    sender
        .send(Ok(br#"{"value":{"type":"AVRO","data":1}}"#.to_vec()))
        .await
        .expect("send");
    let split = record(3).into_bytes();
    sender.send(Ok(split[..10].to_vec())).await.expect("send");
    sender.send(Ok(split[10..].to_vec())).await.expect("send");
    drop(sender);
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }

    let results: Vec<Value> = seen
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON result per line"))
        .collect();
    let codes: Vec<&Value> = results.iter().map(|r| &r["error_code"]).collect();
    assert_eq!(
        codes,
        [&json!(200), &json!(200), &json!(422), &json!(200)],
        "{seen}"
    );
    let consumed = consume(&cluster.bootstrap_servers(), "fluxo", 3, PATIENCE);
    let stored = by_place(&consumed);
    for (result, n) in [(&results[0], 0), (&results[1], 1), (&results[3], 3)] {
        let record = stored[&place(result, "partition_id")];
        assert_eq!(record.key.as_deref(), Some(format!("k{n}").as_str()));
        assert_eq!(record.value, n.to_string());
    }
}

/// The chunks `receiver` yields, as a stream for a request body.
fn tokio_stream_of(
    receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn each_rest_proxy_record_is_one_outbox_row_in_order() {
    let (cluster, _dir, ponte) = start_on_mock(&[]);
    let batch = json!({"records": [{"value": {"n": 1}}, {"value": {"n": 2}}]});
    let (status, _, answer) = post(&ponte, "/topics/linhas", JSON_V2, &batch, &[]).await;
    assert_eq!(status, 200, "{answer}");
    let consumed = consume_until(&cluster.bootstrap_servers(), "linhas", PATIENCE, |read| {
        read.len() >= 2
    });

    let rows = sqlite3(
        &ponte.outbox_path(),
        "SELECT message_id, value, status FROM outbox WHERE topic = 'linhas' ORDER BY id",
    );
    let ids: Vec<&Value> = rows.iter().map(|row| &row["message_id"]).collect();
    let answered: Vec<&Value> = answer["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .map(|o| &o["message_id"])
        .collect();
    assert_eq!(ids, answered, "one row per record, in order");
    assert_eq!(
        rows[0]["value"], r#"{"n":1}"#,
        "JSON values stay readable text"
    );
    assert_eq!(consumed.len(), 2);
}
