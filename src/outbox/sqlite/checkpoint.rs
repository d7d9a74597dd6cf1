//! Copying the write-ahead log back into the database file, off the writer's path.
//!
//! SQLite normally checkpoints inside a commit, whenever the WAL has grown past
//! a thousand pages: that commit then also writes those pages into the database
//! file and fsyncs it, and every client waiting on it waits tens of
//! milliseconds longer. The checkpointer does the same work on its own
//! connection and thread, in `PASSIVE` mode, which never blocks the writer.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::BUSY_TIMEOUT;
use crate::outbox::store::StoreError;

/// The background checkpoint thread; stop it with [`Checkpointer::stop`].
#[derive(Debug)]
pub struct Checkpointer {
    stopping: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Checkpoints `path` every `every` on a connection of its own.
    pub(super) fn spawn(path: &Path, every: Duration) -> Result<Checkpointer, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let thread = std::thread::Builder::new()
            .name("outbox-checkpoint".to_owned())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::park_timeout(every);
                    checkpoint(&connection);
                }
            })
            .map_err(|err| StoreError::Durability(format!("checkpoint thread: {err}")))?;
        Ok(Checkpointer { stopping, thread })
    }

    /// Runs a last checkpoint and stops the thread.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        if self.thread.join().is_err() {
            tracing::error!("the outbox checkpoint thread panicked");
        }
    }
}

fn checkpoint(connection: &Connection) {
    let done = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match done {
        Ok((in_log, copied)) => tracing::trace!(in_log, copied, "outbox checkpoint"),
        Err(err) => tracing::warn!(error = %err, "outbox checkpoint failed"),
    }
}
