//! ponte: an HTTP-to-Kafka bridge with a durable outbox.
//!
//! A record crosses the modules in pipeline order:
//!
//! 1. [`http`] accepts `POST /topics/{topic}` and answers the client;
//! 2. [`validate`] turns the request into a [`record::Record`] or a clear
//!    client error, before anything is stored;
//! 3. [`outbox`] makes the record durable (fsynced) before the answer;
//! 4. [`relay`] hands committed records to Kafka in outbox order, retries what
//!    fails, dead-letters what never succeeds, and feeds delivery reports back
//!    into the outbox;
//! 5. [`kafka`] configures the idempotent producer, classifies its failures and
//!    keeps the broker connectivity view.
//!
//! Beside the pipeline: [`config`] (settings and their defaults), [`telemetry`]
//! (logs, counters and Prometheus metrics), [`admin`] (topics and brokers),
//! [`cli`] (the command line), [`server`], which wires everything together
//! and shuts it down in order, and [`bench`], which measures it all.

pub mod admin;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod http;
pub mod kafka;
pub mod outbox;
pub mod record;
pub mod relay;
pub mod server;
pub mod telemetry;
pub mod validate;
