//! The SQLite store's writes: group commits, delivery outcomes and operators'
//! changes.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use super::read::{StoredHeader, VIEW_COLUMNS, view};
use crate::outbox::store::{
    Append, Appended, AuditEntry, Change, Commit, Outcome, PurgeFilter, RowView, Settled, Store,
    StoreError,
};
use crate::record::{RecordHeader, now_ms};

impl Store for SqliteStore {
    fn commit(
        &mut self,
        appends: &[Append<'_>],
        outcomes: &[Outcome],
    ) -> Result<Commit, StoreError> {
        let window_start = now_ms().saturating_sub(self.idempotency_window_ms);
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let appended = appends
            .iter()
            .map(|a| append(&transaction, a, window_start))
            .collect::<Result<Vec<_>, _>>()?;
        let settled = write_outcomes(&transaction, outcomes)?;
        transaction.commit()?;
        Ok(Commit { appended, settled })
    }

    fn change(&mut self, change: &Change) -> Result<u64, StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = apply_change(&transaction, change)?;
        transaction.commit()?;
        Ok(changed)
    }

    fn count_unsent(&mut self) -> Result<u64, StoreError> {
        let count: i64 = self.connection.query_row(
            "SELECT coalesce(sum(n), 0) FROM outbox_counts WHERE status IN ('pending', 'failed')",
            [],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    fn purge(&mut self, filter: &PurgeFilter, limit: usize) -> Result<u64, StoreError> {
        if filter.status == "sent" {
            return purge_sent(&self.connection, filter, limit);
        }
        let mut delete = self.connection.prepare_cached(
            "DELETE FROM outbox WHERE id IN (
                 SELECT id FROM outbox
                 WHERE status = ?1
                   AND (?2 IS NULL OR topic = ?2)
                   AND coalesce(sent_at, dead_lettered_at, created_at, timestamp) < ?3
                 ORDER BY id LIMIT ?4)",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let deleted = delete.execute(params![
            filter.status,
            filter.topic,
            filter.before_ms,
            limit
        ])?;
        Ok(deleted as u64)
    }

    fn expire_keys(&mut self, before_ms: i64, limit: usize) -> Result<u64, StoreError> {
        let mut expire = self.connection.prepare_cached(
            "UPDATE outbox SET idempotency_key = NULL, fingerprint = NULL WHERE id IN (
                 SELECT id FROM outbox
                 WHERE idempotency_key IS NOT NULL AND coalesce(created_at, timestamp) < ?1
                 LIMIT ?2)",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(expire.execute(params![before_ms, limit])? as u64)
    }

    fn audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.connection.execute(
            "INSERT INTO audit_log (at, actor, action, target) VALUES (?1, ?2, ?3, ?4)",
            params![entry.at_ms, entry.actor, entry.action, entry.target],
        )?;
        Ok(())
    }

    fn reclaim(&mut self, pages: u32) -> Result<(), StoreError> {
        // Without auto_vacuum (files made by the old middleware) this does nothing,
        // and SQLite reuses the freed pages for new rows instead.
        // The pragma frees one page per step: run it to completion. Its argument is
        // a signed 32-bit count, where 0 means the whole free list.
        let pages = i32::try_from(pages).unwrap_or(0);
        let mut vacuum = self
            .connection
            .prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
        let mut steps = vacuum.query([])?;
        while steps.next()?.is_some() {}
        Ok(())
    }
}

/// Deletes `sent` rows acknowledged before the cut-off through the `outbox_sent_at`
/// index, touching only the rows it deletes: the periodic cleanup runs this on
/// the writer's thread, and a scan of every `sent` row there would hold up
/// every commit behind it. Rows without `sent_at` (written by other tools) go by
/// their arrival time.
fn purge_sent(
    connection: &Connection,
    filter: &PurgeFilter,
    limit: usize,
) -> Result<u64, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut acknowledged = connection.prepare_cached(
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox INDEXED BY outbox_sent_at
             WHERE status = 'sent' AND sent_at < ?2 AND (?1 IS NULL OR topic = ?1)
             ORDER BY sent_at LIMIT ?3)",
    )?;
    let deleted = acknowledged.execute(params![filter.topic, filter.before_ms, limit])?;
    let mut undated = connection.prepare_cached(
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox INDEXED BY outbox_sent_at
             WHERE status = 'sent' AND sent_at IS NULL AND (?1 IS NULL OR topic = ?1)
               AND coalesce(created_at, timestamp) < ?2
             LIMIT ?3)",
    )?;
    let rest = limit - i64::try_from(deleted).unwrap_or(limit);
    let more = if rest > 0 {
        undated.execute(params![filter.topic, filter.before_ms, rest])?
    } else {
        0
    };
    Ok((deleted + more) as u64)
}

/// Stores one record, unless its idempotency key (within the window) or its
/// message id is already known: then the earlier row is the answer.
fn append(
    connection: &Connection,
    append: &Append<'_>,
    window_start: i64,
) -> Result<Appended, StoreError> {
    let record = append.record;
    if let Some(idempotency) = append.idempotency {
        if let Some(earlier) = view_where(connection, "idempotency_key = ?1", &idempotency.key)? {
            if earlier.created_at >= window_start {
                return Ok(Appended::Repeat(Box::new(earlier)));
            }
            connection.execute(
                "UPDATE outbox SET idempotency_key = NULL WHERE id = ?1",
                [earlier.id],
            )?;
        }
        if let Some(earlier) = view_where(connection, "message_id = ?1", &record.message_id)? {
            return Ok(Appended::Repeat(Box::new(earlier)));
        }
    }

    let mut insert = connection.prepare_cached(
        "INSERT INTO outbox (message_id, topic, key, value, timestamp, status, retry_count,
                             attempts, created_at, idempotency_key, fingerprint, headers,
                             target_partition, record_timestamp, null_value)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, 0, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    insert.execute(params![
        record.message_id,
        record.topic,
        record.key.as_deref().map(Bytes),
        Bytes(record.value.as_deref().unwrap_or_default()),
        record.timestamp_ms,
        append.idempotency.map(|i| &i.key),
        append.idempotency.map(|i| &i.fingerprint),
        encode_headers(&record.headers),
        record.partition,
        record.kafka_timestamp_ms,
        record.value.is_none().then_some(1),
    ])?;
    Ok(Appended::Stored(connection.last_insert_rowid()))
}

/// Bytes stored as TEXT when they are UTF-8, so that the old middleware's tools
/// and `sqlite3` show JSON as JSON, and as a BLOB otherwise.
struct Bytes<'a>(&'a [u8]);

impl ToSql for Bytes<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match std::str::from_utf8(self.0) {
            Ok(_) => ValueRef::Text(self.0),
            Err(_) => ValueRef::Blob(self.0),
        }))
    }
}

/// The client's headers as the JSON kept in the `headers` column; `None` without.
fn encode_headers(headers: &[RecordHeader]) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    let stored: Vec<StoredHeader<'_>> = headers
        .iter()
        .map(|h| StoredHeader {
            name: Cow::Borrowed(&h.name),
            value: h.value.as_deref().map(|v| Cow::Owned(STANDARD.encode(v))),
        })
        .collect();
    serde_json::to_string(&stored).ok()
}

fn view_where(
    connection: &Connection,
    condition: &str,
    value: &str,
) -> Result<Option<RowView>, StoreError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM outbox WHERE {condition}");
    let mut select = connection.prepare_cached(&sql)?;
    Ok(select.query_row([value], view).optional()?)
}

/// Writes delivery outcomes; returns how many rows stopped being owed to Kafka.
fn write_outcomes(connection: &Connection, outcomes: &[Outcome]) -> Result<u64, StoreError> {
    const UNSENT: &str = "status IN ('pending', 'failed')";
    let mut sent = connection.prepare_cached(&format!(
        "UPDATE outbox SET status = 'sent', sent_at = ?2, kafka_partition = ?3,
                           kafka_offset = ?4, last_error = NULL, next_attempt_at = NULL
         WHERE id = ?1 AND {UNSENT}"
    ))?;
    let mut counted = connection.prepare_cached(&format!(
        "UPDATE outbox SET status = 'failed', retry_count = coalesce(retry_count, 0) + 1,
                           attempts = coalesce(attempts, 0) + 1, last_error = ?2,
                           next_attempt_at = ?3, failure_class = ?4
         WHERE id = ?1 AND {UNSENT}"
    ))?;
    // A record waiting out an outage keeps its place: on the ordinary path
    // (no schedule) or, if it was a scheduled retry, due again at once.
    let mut uncounted = connection.prepare_cached(&format!(
        "UPDATE outbox SET status = 'failed', attempts = coalesce(attempts, 0) + 1,
                           last_error = ?2, failure_class = ?4,
                           next_attempt_at = CASE WHEN next_attempt_at IS NULL THEN NULL
                                                  ELSE ?3 END
         WHERE id = ?1 AND {UNSENT}"
    ))?;
    let mut dead = connection.prepare_cached(&format!(
        "UPDATE outbox SET status = 'dlq', dead_lettered_at = ?2, next_attempt_at = NULL
         WHERE id = ?1 AND {UNSENT}"
    ))?;

    let mut settled = 0;
    for outcome in outcomes {
        let id = outcome.id;
        match &outcome.settled {
            Settled::Sent(p) => {
                let offset = p.offset.to_string();
                settled += sent.execute(params![id, outcome.at_ms, p.partition, offset])? as u64;
            }
            Settled::Failed {
                error,
                class,
                counts: true,
                next_attempt_at_ms,
            } => {
                counted.execute(params![id, error, next_attempt_at_ms, class])?;
            }
            Settled::Failed { error, class, .. } => {
                uncounted.execute(params![id, error, outcome.at_ms, class])?;
            }
            Settled::DeadLettered => {
                settled += dead.execute(params![id, outcome.at_ms])? as u64;
            }
        }
    }
    Ok(settled)
}

fn apply_change(connection: &Connection, change: &Change) -> Result<u64, StoreError> {
    let changed = match change {
        Change::Retry { message_id } => connection.execute(
            "UPDATE outbox SET status = 'pending', retry_count = 0, next_attempt_at = 0
             WHERE message_id = ?1 AND status IN ('failed', 'dlq')",
            [message_id],
        )?,
        Change::Replay(filter) => connection.execute(
            "UPDATE outbox SET status = 'pending', retry_count = 0, next_attempt_at = 0
             WHERE id IN (
                 SELECT id FROM outbox
                 WHERE status = 'dlq'
                   AND (?1 IS NULL OR topic = ?1)
                   AND (?2 IS NULL OR created_at >= ?2)
                   AND (?3 IS NULL OR created_at < ?3)
                 ORDER BY id LIMIT ?4)",
            params![
                filter.topic,
                filter.since_ms,
                filter.until_ms,
                filter
                    .limit
                    .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))
            ],
        )?,
        Change::Defer { ids } => {
            let mut defer = connection.prepare_cached(
                "UPDATE outbox SET next_attempt_at = 0
                 WHERE id = ?1 AND next_attempt_at IS NULL AND status IN ('pending', 'failed')",
            )?;
            let mut changed = 0;
            for id in ids {
                changed += defer.execute([id])?;
            }
            changed
        }
    };
    Ok(changed as u64)
}
