//! The on-disk store: one SQLite database (`DATA_DIR/softphone.db`) holding every business
//! event before it is sent, each page origin's delivery marks (and the notifier's cursor), the
//! agent's state (presence, dispositions, partner config), the call history and the recordings'
//! entries, so none of the agent's work is lost to a crash or a restart.
//!
//! Call history and agent state are projections of the events, written in the same transaction
//! as the event itself ([`history`]): what a page was told and what the store remembers cannot
//! disagree. Durability (docs/decisions.md): WAL with `synchronous=NORMAL`, which survives the
//! process being killed at any point; the agent's notes are committed with `synchronous=FULL`
//! (at most ten a second; the checkpoint thread makes the rest durable within 5 s), which also
//! survives a power cut. Checkpoints run on a thread of their own, never inside a commit.
//!
//! A file that is not our database, or is damaged, is moved aside (named in the error) and a
//! fresh store is started; a store that cannot be written (disk full, read-only) is reported by
//! the caller and tried again with the next event, while what is already on disk stays intact.

mod history;
pub mod schema;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

pub use history::{SavedState, StoredCall, StoredRecording};

use crate::protocol::Event;

/// The database file's name in the data folder.
pub const FILE_NAME: &str = "softphone.db";

/// Each connection's page cache, in KiB. SQLite's default (2 MiB) filled up one call's events
/// at a time — ~1.6 KB a call in issue 15's soak, for the first thousand calls — and the OS keeps
/// the file's pages cached anyway; what the store reads again soon (the newest events, the
/// indexes) fits in this.
const CACHE_KIB: i64 = 256;
/// The checkpointer's: it copies WAL pages into the database and reads little else.
const CHECKPOINTER_CACHE_KIB: i64 = 64;

/// One event as the store keeps it.
pub struct NewEvent<'a> {
    pub seq: u64,
    pub at_ms: i64,
    pub event: &'a Event,
    pub json: &'a str,
}

/// A stored event read back for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub name: String,
    pub json: String,
}

/// Where a page origin's delivery stands: replay never reaches before `floor` (its first
/// connection, at `since_ms`), and events up to `acked` were processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    pub floor: u64,
    pub acked: u64,
    /// When the origin first connected: it sees the history of calls from then on.
    pub since_ms: i64,
}

impl Mark {
    /// The last seq this origin needs no more.
    pub fn delivered(self) -> u64 {
        self.floor.max(self.acked)
    }
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    pub events: u64,
    /// Of those, events some origin had not acknowledged.
    pub unacknowledged: u64,
}

/// A file found in the store's place that could not be used, and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub file: PathBuf,
    pub why: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {}: {}", path.display(), describe(source))]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the store {} is unusable ({why}) and could not be moved aside: {source}", path.display())]
    SetAside {
        path: PathBuf,
        why: String,
        source: std::io::Error,
    },
    #[error("the store {}: {source}", path.display())]
    Schema {
        path: PathBuf,
        source: schema::SchemaError,
    },
    #[error("cannot write the store {}: {}", path.display(), describe(source))]
    Write {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot read the store {}: {}", path.display(), describe(source))]
    Read {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot start the store's checkpoint thread: {0}")]
    Thread(std::io::Error),
}

/// Moves the WAL into the database on its own thread and connection, so the phone's commits
/// never pay for it: left to itself SQLite checkpoints inside the commit that crosses 1000
/// pages, an fsync or two on the way to a `callAccepted`. Stops when dropped.
pub struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path, every: std::time::Duration) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let _ = conn.busy_timeout(std::time::Duration::from_secs(1));
        // Copying WAL pages into the database needs no cache of its own to speak of.
        let _ = conn.pragma_update(None, "cache_size", -CHECKPOINTER_CACHE_KIB);
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    // PASSIVE never waits for the writer; what it cannot copy now waits for
                    // the next round.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!("store checkpoint: {e}");
                    }
                }
            })
            .map_err(StoreError::Thread)?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How often the checkpointer runs (often in unit tests, which wait for it).
const CHECKPOINT_EVERY: std::time::Duration = if cfg!(test) {
    std::time::Duration::from_millis(20)
} else {
    std::time::Duration::from_secs(5)
};

/// SQLite's error in words an agent or IT can act on.
fn describe(error: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as Code;
    match error.sqlite_error_code() {
        Some(Code::DiskFull) => "the disk is full".into(),
        Some(Code::ReadOnly) => "the file or its folder is read-only".into(),
        Some(Code::CannotOpen) => "the file cannot be opened or created".into(),
        Some(Code::PermissionDenied) => "permission denied".into(),
        Some(Code::DatabaseBusy | Code::DatabaseLocked) => {
            "another process holds it locked (a second daemon on this data folder?)".into()
        }
        Some(Code::SystemIoFailure) => format!("an I/O error ({error})"),
        _ => error.to_string(),
    }
}

/// Why a file in the store's place cannot be used as it is.
enum Unusable {
    /// Not ours, or damaged: set it aside and start afresh.
    Foreign(String),
    Failed(StoreError),
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Held for its thread; `None` when it could not start (SQLite then checkpoints in commits
    /// as usual).
    _checkpointer: Option<Checkpointer>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path`, migrated to the latest schema. A foreign
    /// or damaged file is renamed to `softphone.db.unusable-<stamp>` and a fresh store opened.
    pub fn open(path: &Path, stamp: &str) -> Result<(Self, Option<SetAside>), StoreError> {
        match Self::open_checked(path) {
            Ok(store) => Ok((store, None)),
            Err(Unusable::Failed(e)) => Err(e),
            Err(Unusable::Foreign(why)) => {
                // Never over an earlier one kept for support (a crash loop).
                let aside = (0..100)
                    .map(|n| match n {
                        0 => path.with_file_name(format!("{FILE_NAME}.unusable-{stamp}")),
                        n => path.with_file_name(format!("{FILE_NAME}.unusable-{stamp}-{n}")),
                    })
                    .find(|candidate| !candidate.exists())
                    .unwrap_or_else(|| {
                        path.with_file_name(format!("{FILE_NAME}.unusable-{stamp}-last"))
                    });
                std::fs::rename(path, &aside).map_err(|source| StoreError::SetAside {
                    path: path.to_owned(),
                    why: why.clone(),
                    source,
                })?;
                for suffix in ["-wal", "-shm"] {
                    let mut from = path.as_os_str().to_owned();
                    from.push(suffix);
                    let mut to = aside.as_os_str().to_owned();
                    to.push(suffix);
                    // Absent is fine; these belong to the file set aside.
                    let _ = std::fs::rename(&from, &to);
                }
                match Self::open_checked(path) {
                    Ok(store) => Ok((store, Some(SetAside { file: aside, why }))),
                    Err(Unusable::Failed(e)) => Err(e),
                    Err(Unusable::Foreign(why)) => Err(StoreError::SetAside {
                        path: path.to_owned(),
                        why,
                        source: std::io::Error::other("a fresh file was unusable too"),
                    }),
                }
            }
        }
    }

    fn open_checked(path: &Path) -> Result<Self, Unusable> {
        let open_error = |source| {
            Unusable::Failed(StoreError::Open {
                path: path.to_owned(),
                source,
            })
        };
        // Owner-only from the start: SQLite gives its -wal and -shm files the same mode. On a
        // read-only folder this fails and SQLite opens what is there read-only.
        let _ = crate::private_files::open(path, crate::private_files::Existing::Append);
        let mut conn = Connection::open(path).map_err(open_error)?;
        let _ = conn.busy_timeout(std::time::Duration::from_secs(2));
        let _ = conn.pragma_update(None, "cache_size", -CACHE_KIB);
        let application_id: i32 = match conn.query_row("PRAGMA application_id", [], |r| r.get(0)) {
            Ok(id) => id,
            Err(e) if is_not_ours(&e) => return Err(Unusable::Foreign(why_not_ours(&e))),
            Err(e) => return Err(open_error(e)),
        };
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| match is_not_ours(&e) {
                true => Unusable::Foreign(why_not_ours(&e)),
                false => open_error(e),
            })?;
        if application_id != schema::APPLICATION_ID && (application_id != 0 || objects > 0) {
            return Err(Unusable::Foreign(
                "it is a database of another program".into(),
            ));
        }
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| match is_not_ours(&e) {
                true => Unusable::Foreign(why_not_ours(&e)),
                false => open_error(e),
            })?;
        if check != "ok" {
            return Err(Unusable::Foreign(format!("it is damaged: {check}")));
        }
        // A new file gives freed pages back (after pruning), a little at a time.
        if objects == 0 {
            let _ = conn.pragma_update(None, "auto_vacuum", "INCREMENTAL");
        }
        // WAL: readers never block the writer, and a commit is one append. On a read-only
        // file these fail; reads still work and writes report the read-only file.
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        // The WAL shrinks back to this after a checkpoint rather than keeping its largest size.
        let _ = conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024);
        schema::migrate_to(&mut conn, schema::latest()).map_err(|source| {
            Unusable::Failed(StoreError::Schema {
                path: path.to_owned(),
                source,
            })
        })?;
        let checkpointer = match Checkpointer::start(path, CHECKPOINT_EVERY) {
            Ok(checkpointer) => {
                let _ = conn.pragma_update(None, "wal_autocheckpoint", 0);
                Some(checkpointer)
            }
            Err(e) => {
                tracing::warn!("{e}; the store checkpoints in its commits");
                None
            }
        };
        Ok(Self {
            conn,
            path: path.to_owned(),
            _checkpointer: checkpointer,
        })
    }

    /// A second connection to a store the journal opened (the notifier's): no checks, no
    /// migrations, no checkpointer.
    pub fn open_reader(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let _ = conn.busy_timeout(std::time::Duration::from_secs(2));
        let _ = conn.pragma_update(None, "cache_size", -CACHE_KIB);
        // Its commits never checkpoint either: the journal's checkpointer does.
        let _ = conn.pragma_update(None, "wal_autocheckpoint", 0);
        Ok(Self {
            conn,
            path: path.to_owned(),
            _checkpointer: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every row `sql` gives for `params`, as `row` makes it.
    fn all<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut query = self.conn.prepare(sql).map_err(self.read_error())?;
        let rows = query.query_map(params, row).map_err(self.read_error())?;
        rows.collect::<Result<_, _>>().map_err(self.read_error())
    }

    fn read_error(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Read {
            path: self.path.clone(),
            source,
        }
    }

    fn write_error(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Records when the store was opened: a store that cannot be written (a read-only file)
    /// says so at start rather than at the first event.
    pub fn check_writable(&mut self, now_ms: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES ('opened_ms', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = ?1",
                params![now_ms.to_string()],
            )
            .map(drop)
            .map_err(self.write_error())
    }

    /// The data folder's instance id, made by `make` the first time.
    pub fn instance(&mut self, make: impl FnOnce() -> String) -> Result<String, StoreError> {
        if let Some(id) = self.meta("instance")? {
            return Ok(id);
        }
        let id = make();
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES ('instance', ?1)",
                params![id],
            )
            .map_err(self.write_error())?;
        Ok(id)
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.read_error())
    }

    /// The newest event's seq (0 when none was ever stored).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(to_u64)
            .map_err(self.read_error())
    }

    /// When the newest event was stored (ms since the Unix epoch).
    pub fn last_event_ms(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT max(at_ms) FROM events", [], |r| r.get(0))
            .map_err(self.read_error())
    }

    /// Writes `events` and what they change in the history and the agent's state, in one
    /// transaction; `durable` commits with `synchronous=FULL` (survives a power cut).
    pub fn append(&mut self, events: &[NewEvent<'_>], durable: bool) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        if durable {
            let _ = self.conn.pragma_update(None, "synchronous", "FULL");
        }
        let path = self.path.clone();
        let result = (|| {
            let tx = self.conn.transaction()?;
            {
                let mut insert = tx.prepare(
                    "INSERT INTO events (seq, at_ms, name, json) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for e in events {
                    insert.execute(params![to_i64(e.seq), e.at_ms, e.event.name(), e.json])?;
                    history::project(&tx, e.at_ms, e.event)?;
                }
            }
            tx.commit()
        })();
        if durable {
            let _ = self.conn.pragma_update(None, "synchronous", "NORMAL");
        }
        result.map_err(|source| StoreError::Write { path, source })
    }

    /// The newest stored events in `after..before` (exclusive), oldest first: at most `limit`
    /// of them and about `max_bytes` of JSON (at least one). Reads newest first and stops at
    /// the cap, so memory stays bounded whatever is stored. `true` when the cap cut older ones.
    pub fn newest_events_between(
        &self,
        after: u64,
        before: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<(Vec<StoredEvent>, bool), StoreError> {
        let mut query = self
            .conn
            .prepare(
                "SELECT seq, name, json FROM events WHERE seq > ?1 AND seq < ?2 ORDER BY seq DESC",
            )
            .map_err(self.read_error())?;
        let mut rows = query
            .query(params![to_i64(after), to_i64(before)])
            .map_err(self.read_error())?;
        let (mut out, mut bytes, mut cut) = (Vec::new(), 0usize, false);
        while let Some(row) = rows.next().map_err(self.read_error())? {
            let json: String = row.get(2).map_err(self.read_error())?;
            if out.len() >= limit || (!out.is_empty() && bytes + json.len() > max_bytes) {
                cut = true;
                break;
            }
            bytes += json.len();
            out.push(StoredEvent {
                seq: to_u64(row.get(0).map_err(self.read_error())?),
                name: row.get(1).map_err(self.read_error())?,
                json,
            });
        }
        out.reverse();
        Ok((out, cut))
    }

    /// Every key with a mark (page origins, `notify:` cursors).
    pub fn mark_keys(&self) -> Result<Vec<String>, StoreError> {
        let mut query = self
            .conn
            .prepare("SELECT origin FROM origins")
            .map_err(self.read_error())?;
        let keys = query
            .query_map([], |r| r.get(0))
            .map_err(self.read_error())?;
        keys.collect::<Result<_, _>>().map_err(self.read_error())
    }

    /// Stored events after `seq`, oldest first, at most `limit`.
    pub fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let mut query = self
            .conn
            .prepare("SELECT seq, name, json FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(self.read_error())?;
        let rows = query
            .query_map(
                params![to_i64(seq), i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(StoredEvent {
                        seq: to_u64(r.get(0)?),
                        name: r.get(1)?,
                        json: r.get(2)?,
                    })
                },
            )
            .map_err(self.read_error())?;
        rows.collect::<Result<_, _>>().map_err(self.read_error())
    }

    pub fn mark(&self, origin: &str) -> Result<Option<Mark>, StoreError> {
        self.conn
            .query_row(
                "SELECT floor, acked, since_ms FROM origins WHERE origin = ?1",
                params![origin],
                |r| {
                    Ok(Mark {
                        floor: to_u64(r.get(0)?),
                        acked: to_u64(r.get(1)?),
                        since_ms: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(self.read_error())
    }

    pub fn set_mark(&mut self, origin: &str, mark: Mark) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO origins (origin, floor, acked, since_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (origin) DO UPDATE SET floor = ?2, acked = ?3, since_ms = ?4",
                params![
                    origin,
                    to_i64(mark.floor),
                    to_i64(mark.acked),
                    mark.since_ms
                ],
            )
            .map(drop)
            .map_err(self.write_error())
    }

    pub fn forget_mark(&mut self, origin: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM origins WHERE origin = ?1", params![origin])
            .map(drop)
            .map_err(self.write_error())
    }

    /// Events dropped by [`Store::prune`] before every origin had acknowledged them, ever.
    pub fn dropped_events(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta("dropped_events")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Deletes events older than `keep_ms`, beyond the newest `max_events`, or beyond the newest
    /// `max_bytes` of JSON (the newest event always stays, so seq never goes back), counting
    /// those some origin had not acknowledged, and gives the freed pages back.
    pub fn prune(
        &mut self,
        now_ms: i64,
        keep_ms: i64,
        max_events: u64,
        max_bytes: u64,
    ) -> Result<Pruned, StoreError> {
        let last = self.last_seq()?;
        if last == 0 {
            return Ok(Pruned::default());
        }
        let too_old: u64 = self
            .conn
            .query_row(
                "SELECT coalesce(max(seq), 0) FROM events WHERE at_ms < ?1",
                params![now_ms.saturating_sub(keep_ms)],
                |r| r.get::<_, i64>(0),
            )
            .map(to_u64)
            .map_err(self.read_error())?;
        let too_big: u64 = self
            .conn
            .query_row(
                "SELECT coalesce(max(seq), 0) FROM (
                     SELECT seq, sum(length(json)) OVER (ORDER BY seq DESC) AS total FROM events
                 ) WHERE total > ?1",
                params![to_i64(max_bytes)],
                |r| r.get::<_, i64>(0),
            )
            .map(to_u64)
            .map_err(self.read_error())?;
        let cut = too_old
            .max(too_big)
            .max(last.saturating_sub(max_events))
            .min(last - 1);
        let first = self
            .conn
            .query_row("SELECT coalesce(min(seq), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(to_u64)
            .map_err(self.read_error())?;
        if cut < first {
            return Ok(Pruned::default());
        }
        let least_delivered: Option<i64> = self
            .conn
            .query_row("SELECT min(max(floor, acked)) FROM origins", [], |r| {
                r.get(0)
            })
            .map_err(self.read_error())?;
        let unacknowledged = match least_delivered.map(to_u64) {
            Some(delivered) if delivered < cut => cut - delivered.max(first.saturating_sub(1)),
            _ => 0,
        };
        let dropped = self.dropped_events()? + unacknowledged;
        let path = self.path.clone();
        let result = (|| {
            let tx = self.conn.transaction()?;
            let events = tx.execute("DELETE FROM events WHERE seq <= ?1", params![to_i64(cut)])?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('dropped_events', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = ?1",
                params![dropped.to_string()],
            )?;
            tx.commit()?;
            Ok(events)
        })();
        let events = result.map_err(|source| StoreError::Write { path, source })?;
        // Free pages go back to the file system (auto_vacuum=INCREMENTAL on new stores).
        let _ = self.conn.execute_batch("PRAGMA incremental_vacuum");
        Ok(Pruned {
            events: u64::try_from(events).unwrap_or(0),
            unacknowledged,
        })
    }
}

/// Errors that mean the file is not an SQLite database of ours, or is damaged.
fn is_not_ours(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

fn why_not_ours(error: &rusqlite::Error) -> String {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => "it is not an SQLite database".into(),
        _ => format!("it is damaged ({error})"),
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
