// Confluent's Node.js client for the REST Proxy (npm package `kafka-rest`),
// used as any of its users would: list the topics, read one topic's metadata,
// and produce keyed records to it. Prints what the client returned as JSON.
//
//   PONTE_URL=http://127.0.0.1:8081 TOPIC=t node kafka-rest-node.js
"use strict";

const KafkaRest = require("kafka-rest");

const client = new KafkaRest({ url: process.env.PONTE_URL });
const topic = client.topic(process.env.TOPIC);
const out = {};

function fail(step, err) {
  console.error(`${step} failed: ${err && (err.message || JSON.stringify(err))}`);
  process.exit(1);
}

topic.produce(
  { key: "NF-1", value: "primeira" },
  { key: "NF-2", value: "segunda", partition: 1 },
  (err, produced) => {
    if (err) fail("produce", err);
    out.produced = produced;
    client.topics.list((err, topics) => {
      if (err) fail("list topics", err);
      out.topics = topics.map((t) => t.name);
      topic.get((err, described) => {
        if (err) fail("describe topic", err);
        out.partitions = described.raw.partitions.length;
        console.log(JSON.stringify(out));
      });
    });
  }
);
