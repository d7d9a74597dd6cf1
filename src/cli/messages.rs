//! `ponte messages`: show, list, retry and replay records, straight from the
//! outbox file. It works whether ponte runs or not; a running ponte picks up
//! retries and replays within a second.

use std::path::Path;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::table::{print_json, progress, table, time};
use crate::outbox::sqlite::SqliteStore;
use crate::outbox::{
    AuditEntry, Backlog, Change, KeyView, ListFilter, REPLAY_BATCH, ReplayFilter, RowView, Store,
};
use crate::validate;

/// What to do with records.
#[derive(Debug, Subcommand)]
pub(super) enum MessagesCommand {
    /// One record: status, attempts, last error, partition, offset and times.
    Show {
        /// The record's message id.
        message_id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Records in arrival order, optionally filtered.
    List {
        /// Only records with this status: pending, sent, failed or dlq.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        range: Range,
        /// Only records after this row id (the `next` of the previous page).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Most records to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send a failed or dead-lettered record again.
    Retry {
        /// The record's message id.
        message_id: String,
    },
    /// Send dead-lettered records again, optionally only some.
    Replay {
        #[command(flatten)]
        range: Range,
    },
}

/// Which records, by topic and arrival time.
#[derive(Debug, clap::Args)]
pub(super) struct Range {
    /// Only records for this topic.
    #[arg(long)]
    topic: Option<String>,
    /// Only records that arrived at or after this time (RFC 3339 or epoch ms).
    #[arg(long)]
    since: Option<String>,
    /// Only records that arrived before this time (RFC 3339 or epoch ms).
    #[arg(long)]
    until: Option<String>,
}

impl Range {
    fn times(&self) -> anyhow::Result<(Option<i64>, Option<i64>)> {
        Ok((
            moment("--since", self.since.as_deref())?,
            moment("--until", self.until.as_deref())?,
        ))
    }
}

/// Runs one `ponte messages` command against the outbox at `path`.
pub(super) fn run(command: MessagesCommand, path: &Path) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!(
            "no outbox at {} (set outbox_path or --outbox-path)",
            path.display()
        );
    }
    let mut store = SqliteStore::open(path).context("cannot open the outbox")?;
    let mut backlog = store.backlog().context("cannot read the outbox")?;

    match command {
        MessagesCommand::Show { message_id, json } => {
            let Some(row) = backlog.find(&message_id)? else {
                bail!("no record with message id {message_id}");
            };
            print_rows(&[row], json, true)
        }
        MessagesCommand::List {
            status,
            range,
            after,
            limit,
            json,
        } => {
            let (since_ms, until_ms) = range.times()?;
            let filter = ListFilter {
                status,
                topic: range.topic,
                since_ms,
                until_ms,
                after_id: after,
                limit,
            };
            print_rows(&backlog.list(&filter)?, json, false)
        }
        MessagesCommand::Retry { message_id } => {
            let changed = store.change(&Change::Retry {
                message_id: message_id.clone(),
            })?;
            if changed == 0 {
                bail!("{message_id} is not a failed or dlq record");
            }
            store.audit(&AuditEntry::now(
                &super::operator(),
                "record.retry",
                message_id.clone(),
            ))?;
            out!("{message_id} will be sent again");
            Ok(())
        }
        MessagesCommand::Replay { range } => {
            let (since_ms, until_ms) = range.times()?;
            let dead = backlog.counts()?.dlq;
            let filter = ReplayFilter {
                topic: range.topic,
                since_ms,
                until_ms,
                limit: Some(REPLAY_BATCH),
            };
            let bar = progress(dead, "replaying");
            let mut replayed = 0;
            loop {
                let batch = store.change(&Change::Replay(filter.clone()))?;
                replayed += batch;
                bar.inc(batch);
                if batch < REPLAY_BATCH as u64 {
                    break;
                }
            }
            bar.finish_and_clear();
            let target = format!("{filter:?} ({replayed} records)");
            store.audit(&AuditEntry::now(
                &super::operator(),
                "records.replay",
                target,
            ))?;
            out!("{replayed} dead-lettered records will be sent again");
            Ok(())
        }
    }
}

fn moment(flag: &str, value: Option<&str>) -> anyhow::Result<Option<i64>> {
    match value {
        None => Ok(None),
        Some(text) => validate::moment_ms(text).map(Some).with_context(|| {
            format!("{flag} must be an RFC 3339 time or milliseconds since the epoch")
        }),
    }
}

fn print_rows(rows: &[RowView], json: bool, detailed: bool) -> anyhow::Result<()> {
    match (json, detailed) {
        (true, true) if rows.len() == 1 => print_json(&rows[0]),
        (true, _) => print_json(&rows),
        (false, true) => {
            rows.iter().for_each(print_detail);
            Ok(())
        }
        (false, false) => {
            print_table(rows);
            Ok(())
        }
    }
}

fn print_detail(row: &RowView) {
    let mut detail = table(&["field", "value"]);
    let lines = [
        ("message_id", row.message_id.clone()),
        ("topic", row.topic.clone()),
        (
            "key",
            row.key.as_ref().map(KeyView::to_string).unwrap_or_default(),
        ),
        ("status", row.status.clone()),
        ("attempts", row.attempts.to_string()),
        ("retry_count", row.retry_count.to_string()),
        ("last_error", row.last_error.clone().unwrap_or_default()),
        (
            "failure_class",
            row.failure_class.clone().unwrap_or_default(),
        ),
        ("partition", optional(row.partition)),
        ("offset", optional(row.offset)),
        ("created_at", time(Some(row.created_at))),
        ("sent_at", time(row.sent_at)),
        ("dead_lettered_at", time(row.dead_lettered_at)),
        ("next_attempt_at", time(row.next_attempt_at)),
    ];
    for (name, value) in lines {
        detail.add_row(vec![name.to_owned(), value]);
    }
    out!("{detail}");
}

fn print_table(rows: &[RowView]) {
    let mut listing = table(&[
        "id",
        "message_id",
        "topic",
        "status",
        "attempts",
        "created_at",
        "last_error",
    ]);
    for row in rows {
        listing.add_row(vec![
            row.id.to_string(),
            row.message_id.clone(),
            row.topic.clone(),
            row.status.clone(),
            row.attempts.to_string(),
            time(Some(row.created_at)),
            row.last_error.clone().unwrap_or_default(),
        ]);
    }
    out!("{listing}");
    if let Some(last) = rows.last() {
        out!("next page: --after {}", last.id);
    }
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}
