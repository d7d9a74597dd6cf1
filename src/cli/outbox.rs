//! `ponte outbox`: how full the outbox is, and purging old rows, straight from the
//! outbox file (ponte may be running or not).

use std::path::Path;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde::Serialize;

use super::table::{print_json, progress, table, time};
use crate::outbox::sqlite::SqliteStore;
use crate::outbox::{AuditEntry, Backlog, PurgeFilter, StatusCounts, Store};
use crate::record::now_ms;
use crate::validate;

/// Rows deleted per transaction by a purge.
const PURGE_BATCH: usize = 10_000;

/// What to do with the outbox.
#[derive(Debug, Subcommand)]
pub(super) enum OutboxCommand {
    /// Rows by status, the oldest unsent record, and the file's size.
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete rows of one status last changed before a time.
    Purge {
        /// Status of the rows to delete: sent, dlq, failed or pending.
        #[arg(long)]
        status: String,
        /// Only rows last changed (sent, dead-lettered or arrived) before this time
        /// (RFC 3339 or epoch ms); default: now.
        #[arg(long)]
        before: Option<String>,
        /// Only rows for this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Needed to delete `pending` or `failed` rows, which Kafka never received.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Serialize)]
struct Stats {
    path: String,
    file_bytes: u64,
    #[serde(flatten)]
    counts: StatusCounts,
}

/// Runs one `ponte outbox` command against the outbox at `path`.
pub(super) fn run(command: OutboxCommand, path: &Path) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!(
            "no outbox at {} (set outbox_path or --outbox-path)",
            path.display()
        );
    }
    let mut store = SqliteStore::open(path).context("cannot open the outbox")?;
    match command {
        OutboxCommand::Stats { json } => {
            let counts = store.backlog()?.counts()?;
            let stats = Stats {
                path: path.display().to_string(),
                file_bytes: file_bytes(path),
                counts,
            };
            if json {
                return print_json(&stats);
            }
            print_stats(&stats);
            Ok(())
        }
        OutboxCommand::Purge {
            status,
            before,
            topic,
            force,
        } => {
            let before_ms = match before.as_deref() {
                Some(text) => validate::moment_ms(text)
                    .context("--before must be an RFC 3339 time or milliseconds since the epoch")?,
                None => now_ms(),
            };
            let filter = PurgeFilter {
                status,
                topic,
                before_ms,
            };
            purge(&mut store, &filter, force)
        }
    }
}

/// The database file plus its write-ahead log.
fn file_bytes(path: &Path) -> u64 {
    let wal = path.with_extension("db-wal");
    [path.to_path_buf(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn print_stats(stats: &Stats) {
    let counts = &stats.counts;
    let mut summary = table(&["", ""]);
    let rows = [
        ("outbox", stats.path.clone()),
        (
            "size",
            format!("{:.1} MiB", stats.file_bytes as f64 / 1_048_576.0),
        ),
        ("pending", counts.pending.to_string()),
        ("failed", counts.failed.to_string()),
        ("sent", counts.sent.to_string()),
        ("dlq", counts.dlq.to_string()),
        ("total", counts.total().to_string()),
        ("oldest unsent", time(counts.oldest_unsent_ms)),
    ];
    for (name, value) in rows {
        summary.add_row(vec![name.to_owned(), value]);
    }
    out!("{summary}");
}

fn purge(store: &mut SqliteStore, filter: &PurgeFilter, force: bool) -> anyhow::Result<()> {
    let counts = store.backlog()?.counts()?;
    let total = match filter.status.as_str() {
        "sent" => counts.sent,
        "dlq" => counts.dlq,
        "pending" | "failed" if !force => bail!(
            "{} rows never reached Kafka; deleting them loses them: add --force to do it anyway",
            filter.status
        ),
        "pending" => counts.pending,
        "failed" => counts.failed,
        other => bail!("--status must be sent, dlq, failed or pending, not {other:?}"),
    };
    let bar = progress(total, "purging");
    let mut purged = 0;
    loop {
        let batch = store.purge(filter, PURGE_BATCH)?;
        purged += batch;
        bar.inc(batch);
        if batch < PURGE_BATCH as u64 {
            break;
        }
    }
    store.reclaim(u32::MAX)?;
    bar.finish_and_clear();
    let target = format!("{filter:?} ({purged} rows)");
    store.audit(&AuditEntry::now(
        &super::operator(),
        "records.purge",
        target,
    ))?;
    out!("purged {purged} {} rows", filter.status);
    Ok(())
}
