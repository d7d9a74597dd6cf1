//! The SQLite store's reads, on read-only connections: what the relay must send,
//! and what the status API shows.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rusqlite::types::{FromSqlError, Type, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::outbox::store::{Backlog, KeyView, ListFilter, RowView, StatusCounts, StoreError};
use crate::record::{Record, RecordHeader, StoredRecord};

/// Columns of [`RowView`], in the order [`view`] reads them.
pub(super) const VIEW_COLUMNS: &str = "id, message_id, topic, key, coalesce(status, 'pending'),
    coalesce(attempts, 0), coalesce(retry_count, 0), last_error,
    coalesce(created_at, timestamp), sent_at, dead_lettered_at, next_attempt_at,
    kafka_partition, kafka_offset, fingerprint, failure_class";

/// Columns of [`StoredRecord`], in the order [`stored`] reads them.
const RECORD_COLUMNS: &str = "id, message_id, topic, key, value, timestamp,
    coalesce(retry_count, 0), next_attempt_at, headers, target_partition, record_timestamp,
    coalesce(null_value, 0)";

/// One header as the `headers` column keeps it: the value in base64.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct StoredHeader<'a> {
    pub(super) name: Cow<'a, str>,
    pub(super) value: Option<Cow<'a, str>>,
}

/// Reads a row selected with [`VIEW_COLUMNS`].
pub(super) fn view(row: &Row<'_>) -> rusqlite::Result<RowView> {
    let offset: Option<String> = row.get(13)?;
    Ok(RowView {
        id: row.get(0)?,
        message_id: row.get(1)?,
        topic: row.get(2)?,
        key: bytes(row, 3)?.map(|key| match String::from_utf8(key) {
            Ok(text) => KeyView::Text(text),
            Err(binary) => KeyView::Binary(STANDARD.encode(binary.as_bytes())),
        }),
        status: row.get(4)?,
        attempts: row.get(5)?,
        retry_count: row.get(6)?,
        last_error: row.get(7)?,
        created_at: row.get(8)?,
        sent_at: row.get(9)?,
        dead_lettered_at: row.get(10)?,
        next_attempt_at: row.get(11)?,
        partition: row.get(12)?,
        offset: offset.and_then(|o| o.parse().ok()),
        fingerprint: row.get(14)?,
        failure_class: row.get(15)?,
    })
}

fn stored(row: &Row<'_>) -> rusqlite::Result<StoredRecord> {
    let null_value: i64 = row.get(11)?;
    let value = bytes(row, 4)?.unwrap_or_default();
    Ok(StoredRecord {
        id: row.get(0)?,
        record: Record {
            message_id: row.get(1)?,
            topic: row.get(2)?,
            key: bytes(row, 3)?,
            value: (null_value == 0).then_some(value),
            headers: decode_headers(row.get::<_, Option<String>>(8)?.as_deref())
                .map_err(|err| FromSqlError::Other(err.into()))
                .map_err(|err| {
                    rusqlite::Error::FromSqlConversionFailure(8, Type::Text, err.into())
                })?,
            partition: row.get(9)?,
            timestamp_ms: row.get(5)?,
            kafka_timestamp_ms: row.get(10)?,
        },
        retry_count: row.get(6)?,
        next_attempt_at_ms: row.get(7)?,
    })
}

/// A key or value column: TEXT and BLOB both read as their bytes.
fn bytes(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Vec<u8>>> {
    match row.get_ref(index)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Ok(Some(bytes.to_vec())),
        ValueRef::Integer(n) => Ok(Some(n.to_string().into_bytes())),
        ValueRef::Real(x) => Ok(Some(x.to_string().into_bytes())),
    }
}

/// The `headers` column back into headers.
fn decode_headers(column: Option<&str>) -> Result<Vec<RecordHeader>, String> {
    let Some(column) = column else {
        return Ok(Vec::new());
    };
    let stored: Vec<StoredHeader<'_>> =
        serde_json::from_str(column).map_err(|err| format!("headers column: {err}"))?;
    stored
        .into_iter()
        .map(|h| {
            let value = match h.value {
                Some(text) => Some(
                    STANDARD
                        .decode(text.as_bytes())
                        .map_err(|err| format!("header {}: {err}", h.name))?,
                ),
                None => None,
            };
            Ok(RecordHeader {
                name: h.name.into_owned(),
                value,
            })
        })
        .collect()
}

/// Read-only connection for finding unsent rows, counting them and showing them.
#[derive(Debug)]
pub struct SqliteBacklog {
    connection: Connection,
}

impl SqliteBacklog {
    pub(super) fn new(connection: Connection) -> SqliteBacklog {
        SqliteBacklog { connection }
    }

    /// The smallest unsent id above `after`, found through the status index.
    fn first_unsent_after(&self, after: i64) -> Result<Option<i64>, StoreError> {
        let mut smallest = self
            .connection
            .prepare_cached("SELECT min(id) FROM outbox WHERE status = ?1 AND id > ?2")?;
        let mut first: Option<i64> = None;
        for status in ["pending", "failed"] {
            let found: Option<i64> = smallest
                .query_row(params![status, after], |row| row.get(0))
                .optional()?
                .flatten();
            first = match (first, found) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(first)
    }
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl Backlog for SqliteBacklog {
    fn unsent(
        &mut self,
        after: i64,
        before: Option<i64>,
        page: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let Some(first) = self.first_unsent_after(after)? else {
            return Ok(Vec::new());
        };
        // The unary `+` keeps SQLite from using the status index here: a scan along
        // the primary key from `first` returns rows already in id order, where the
        // index would have to merge two status ranges for every page.
        let mut select = self.connection.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM outbox
             WHERE id >= ?1 AND id < ?2 AND +status IN ('pending', 'failed')
               AND next_attempt_at IS NULL
             ORDER BY id LIMIT ?3"
        ))?;
        let rows = select.query_map(
            params![first, before.unwrap_or(i64::MAX), limit(page)],
            stored,
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn scheduled(
        &mut self,
        after: i64,
        now_ms: i64,
        page: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut select = self.connection.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM outbox
             WHERE next_attempt_at IS NOT NULL AND id > ?1 AND next_attempt_at <= ?2
               AND status IN ('pending', 'failed')
             ORDER BY id LIMIT ?3"
        ))?;
        let rows = select.query_map(params![after, now_ms, limit(page)], stored)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn next_scheduled_at(&mut self) -> Result<Option<i64>, StoreError> {
        let next: Option<i64> = self.connection.query_row(
            "SELECT min(next_attempt_at) FROM outbox
             WHERE next_attempt_at IS NOT NULL AND status IN ('pending', 'failed')",
            [],
            |row| row.get(0),
        )?;
        Ok(next)
    }

    fn failing(&mut self) -> Result<Vec<StoredRecord>, StoreError> {
        let mut select = self.connection.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM outbox
             WHERE status = 'failed' AND coalesce(retry_count, 0) > 0 ORDER BY id"
        ))?;
        let rows = select.query_map([], stored)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn get(&mut self, id: i64) -> Result<Option<StoredRecord>, StoreError> {
        let mut select = self.connection.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM outbox WHERE id = ?1"
        ))?;
        Ok(select.query_row([id], stored).optional()?)
    }

    fn find(&mut self, message_id: &str) -> Result<Option<RowView>, StoreError> {
        let mut select = self.connection.prepare_cached(&format!(
            "SELECT {VIEW_COLUMNS} FROM outbox WHERE message_id = ?1"
        ))?;
        Ok(select.query_row([message_id], view).optional()?)
    }

    fn list(&mut self, filter: &ListFilter) -> Result<Vec<RowView>, StoreError> {
        let mut select = self.connection.prepare_cached(&format!(
            "SELECT {VIEW_COLUMNS} FROM outbox
             WHERE id > ?1
               AND (?2 IS NULL OR status = ?2)
               AND (?3 IS NULL OR topic = ?3)
               AND (?4 IS NULL OR coalesce(created_at, timestamp) >= ?4)
               AND (?5 IS NULL OR coalesce(created_at, timestamp) < ?5)
             ORDER BY id LIMIT ?6"
        ))?;
        let rows = select.query_map(
            params![
                filter.after_id,
                filter.status,
                filter.topic,
                filter.since_ms,
                filter.until_ms,
                limit(filter.limit)
            ],
            view,
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn counts(&mut self) -> Result<StatusCounts, StoreError> {
        let mut counts = StatusCounts::default();
        let mut select = self
            .connection
            .prepare_cached("SELECT status, n FROM outbox_counts")?;
        let rows = select.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (status, n) = row?;
            let n = u64::try_from(n).unwrap_or(0);
            match status.as_str() {
                "pending" => counts.pending += n,
                "sent" => counts.sent += n,
                "failed" => counts.failed += n,
                "dlq" => counts.dlq += n,
                _ => {}
            }
        }
        counts.oldest_unsent_ms = match self.first_unsent_after(0)? {
            Some(id) => self.connection.query_row(
                "SELECT coalesce(created_at, timestamp) FROM outbox WHERE id = ?1",
                [id],
                |row| row.get(0),
            )?,
            None => None,
        };
        Ok(counts)
    }
}
