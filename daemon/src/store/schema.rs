//! The database's schema, as a list of migrations: version N is reached by applying
//! `MIGRATIONS[..N]` in order, each in its own transaction, and recorded in `user_version`.
//! A migration is never edited once released; a change is a new entry at the end.

use rusqlite::Connection;

/// Marks the file as ours (`PRAGMA application_id`, "SPBR"), so a foreign SQLite file in our
/// place is recognised and set aside instead of being written into.
pub const APPLICATION_ID: i32 = 0x5350_4252;

/// Every version's SQL, oldest first.
pub const MIGRATIONS: &[&str] = &[
    // 1: events, the page origins' delivery marks, agent state and the call history.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
     CREATE TABLE events (
         seq INTEGER PRIMARY KEY,
         at_ms INTEGER NOT NULL,
         name TEXT NOT NULL,
         json TEXT NOT NULL
     ) STRICT;
     CREATE INDEX events_by_time ON events (at_ms);
     CREATE TABLE origins (
         origin TEXT PRIMARY KEY,
         floor INTEGER NOT NULL,
         acked INTEGER NOT NULL,
         since_ms INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE state (key TEXT PRIMARY KEY, json TEXT NOT NULL) STRICT;
     CREATE TABLE calls (
         conversation_id TEXT PRIMARY KEY,
         direction TEXT NOT NULL,
         number TEXT NOT NULL,
         partner_id TEXT,
         started_ms INTEGER NOT NULL,
         answered_ms INTEGER,
         ended_ms INTEGER,
         duration INTEGER,
         cause TEXT,
         disposition TEXT,
         notes TEXT
     ) STRICT;
     CREATE INDEX calls_by_start ON calls (started_ms);",
    // 2: call recordings, and each call's latest.
    "CREATE TABLE recordings (
         id TEXT PRIMARY KEY,
         conversation_id TEXT NOT NULL,
         file TEXT,
         started_ms INTEGER NOT NULL,
         ended_ms INTEGER,
         seconds REAL,
         state TEXT NOT NULL,
         problem TEXT,
         tags TEXT NOT NULL DEFAULT '[]'
     ) STRICT;
     CREATE INDEX recordings_by_start ON recordings (started_ms);
     CREATE INDEX recordings_by_end ON recordings (ended_ms);
     ALTER TABLE calls ADD COLUMN recording_id TEXT;",
];

/// The version this build writes.
pub fn latest() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "it was written by a newer softphone-bridge (schema version {found}, this one knows up to {latest})"
    )]
    Newer { found: u32, latest: u32 },
    #[error("migration to schema version {version} failed: {source}")]
    Migration {
        version: u32,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

pub fn version(conn: &Connection) -> Result<u32, rusqlite::Error> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Brings the database up to `target` (normally [`latest`]).
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<(), SchemaError> {
    let found = version(conn)?;
    if found > latest() {
        return Err(SchemaError::Newer {
            found,
            latest: latest(),
        });
    }
    for version in found + 1..=target.min(latest()) {
        let sql = MIGRATIONS[version as usize - 1];
        let apply = |conn: &mut Connection| -> Result<(), rusqlite::Error> {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()
        };
        apply(conn).map_err(|source| SchemaError::Migration { version, source })?;
    }
    Ok(())
}
