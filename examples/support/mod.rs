//! What the benchmarks share: starting the release `ponte` binary and reading the
//! outbox file's size and the process's memory.

// Each benchmark uses its own part of this module.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts `ponte serve` (`$PONTE_BIN`, or the release build) on `port` against
/// `brokers`, with its outbox in `dir`.
pub fn start_ponte(dir: &Path, brokers: &str, port: u16) -> std::io::Result<Child> {
    let binary = std::env::var("PONTE_BIN").unwrap_or_else(|_| "target/release/ponte".to_owned());
    Command::new(binary)
        .arg("serve")
        .env_clear()
        .env("PORT", port.to_string())
        .env("KAFKA_BROKERS", brokers)
        .env("PONTE_BIND_ADDRESS", "127.0.0.1")
        .env("PONTE_OUTBOX_PATH", dir.join("outbox.db"))
        .env("LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .spawn()
}

/// A free TCP port on loopback.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Size of the outbox file and its write-ahead log, in MiB.
pub fn file_mib(path: &Path) -> f64 {
    let wal = path.with_extension("db-wal");
    let bytes: u64 = [path.to_path_buf(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    bytes as f64 / 1_048_576.0
}

/// Resident memory of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    ponte::telemetry::process_memory(&pid.to_string(), "VmRSS")
}
