//! The call history and the agent's state, as projections of the events: each event changes
//! them in the transaction that stores it.

use rusqlite::{OptionalExtension, Row, Transaction, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Store, StoreError};
use crate::protocol::{
    CallRecord, Event, PartnerConfig, RecordingChanged, RecordingInfo, RecordingTagged,
};

/// What the agent had chosen when the daemon last stopped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SavedState {
    /// `softphoneId` of the presence status.
    pub presence: Option<String>,
    pub dispositions: Option<Vec<String>>,
    pub partner_config: Option<PartnerConfig>,
    /// The account a page provisioned, without its secrets (those are in the OS keyring).
    pub provisioning: Option<serde_json::Value>,
    /// The agent's blacklist (IT's is in the config).
    pub blacklist: Option<Vec<String>>,
    /// Callbacks the agent scheduled that were not due yet.
    pub callbacks: Option<Vec<crate::protocol::CallbackDue>>,
    /// The audio devices the agent chose.
    pub audio_devices: Option<crate::protocol::AudioDevices>,
}

/// One call as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCall {
    pub conversation_id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub number: String,
    pub partner_id: Option<String>,
    pub started_ms: i64,
    pub answered_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub duration: Option<u64>,
    pub cause: Option<String>,
    pub disposition: Option<String>,
    pub notes: Option<String>,
    pub recording: Option<String>,
}

impl StoredCall {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            conversation_id: row.get(0)?,
            direction: row.get(1)?,
            number: row.get(2)?,
            partner_id: row.get(3)?,
            started_ms: row.get(4)?,
            answered_ms: row.get(5)?,
            ended_ms: row.get(6)?,
            duration: row
                .get::<_, Option<i64>>(7)?
                .map(|d| u64::try_from(d).unwrap_or(0)),
            cause: row.get(8)?,
            disposition: row.get(9)?,
            notes: row.get(10)?,
            recording: row.get(11)?,
        })
    }

    /// The wire form (`get_history`).
    pub fn record(&self) -> CallRecord {
        CallRecord {
            conversation_id: self.conversation_id.clone(),
            partner_id: self.partner_id.clone(),
            call_type: self.direction.clone(),
            number: self.number.clone(),
            started_at: rfc3339(self.started_ms),
            answered_at: self.answered_ms.map(rfc3339),
            duration: self.duration,
            cause: self.cause.clone(),
            disposition: self.disposition.clone(),
            notes: self.notes.clone(),
            recording: self.recording.clone(),
        }
    }
}

/// One recording as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecording {
    pub id: String,
    pub conversation_id: String,
    pub file: Option<String>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub seconds: Option<f64>,
    pub state: String,
    pub problem: Option<String>,
    pub tags: Vec<String>,
}

impl StoredRecording {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let tags: String = row.get(8)?;
        Ok(Self {
            id: row.get(0)?,
            conversation_id: row.get(1)?,
            file: row.get(2)?,
            started_ms: row.get(3)?,
            ended_ms: row.get(4)?,
            seconds: row.get(5)?,
            state: row.get(6)?,
            problem: row.get(7)?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
        })
    }

    /// The wire form (`list_recordings`).
    pub fn info(&self) -> RecordingInfo {
        RecordingInfo {
            id: self.id.clone(),
            conversation_id: self.conversation_id.clone(),
            file: self.file.clone(),
            started_at: rfc3339(self.started_ms),
            state: self.state.clone(),
            duration: self.seconds,
            reason: self.problem.clone(),
            tags: self.tags.clone(),
        }
    }

    /// The event that says where it stands now (after a tag, or at a restart).
    pub fn event(&self) -> Event {
        Event::RecordingChanged(RecordingChanged {
            conversation_id: self.conversation_id.clone(),
            recording_id: self.id.clone(),
            state: self.state.clone(),
            file: self.file.clone(),
            duration: self.seconds,
            reason: self.problem.clone(),
        })
    }

    /// The event for its tags (`tag_recording`).
    pub fn tagged(&self) -> Event {
        Event::RecordingTagged(RecordingTagged {
            conversation_id: self.conversation_id.clone(),
            recording_id: self.id.clone(),
            tags: self.tags.clone(),
        })
    }
}

const RECORDING_COLUMNS: &str =
    "id, conversation_id, file, started_ms, ended_ms, seconds, state, problem, tags";

/// Milliseconds since the Unix epoch as RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

const CALL_COLUMNS: &str = "conversation_id, direction, number, partner_id, started_ms, \
     answered_ms, ended_ms, duration, cause, disposition, notes, recording_id";

/// What `event` (stored at `at_ms`) changes in the history and the agent's state.
pub(super) fn project(tx: &Transaction<'_>, at_ms: i64, event: &Event) -> rusqlite::Result<()> {
    match event {
        Event::OutboundCallInitiated(e) => {
            tx.execute(
                "INSERT OR IGNORE INTO calls (conversation_id, direction, number, partner_id, started_ms)
                 VALUES (?1, 'outbound', ?2, ?3, ?4)",
                params![e.conversation_id, e.dialled_to, e.partner_id, at_ms],
            )?;
        }
        Event::IncomingCall(e) => {
            tx.execute(
                "INSERT OR IGNORE INTO calls (conversation_id, direction, number, partner_id, started_ms)
                 VALUES (?1, 'inbound', ?2, ?3, ?4)",
                params![e.conversation_id, e.caller_ani, e.partner_id, at_ms],
            )?;
        }
        Event::CallAccepted(e) => {
            tx.execute(
                "UPDATE calls SET answered_ms = ?2, number = coalesce(?3, number)
                 WHERE conversation_id = ?1",
                params![e.conversation_id, at_ms, e.dialled_to],
            )?;
        }
        Event::CallTransferred(e) if e.kind == "remote" && e.result == "accepted" => {
            tx.execute(
                "UPDATE calls SET number = ?2 WHERE conversation_id = ?1 AND ?2 <> ''",
                params![e.conversation_id, e.to],
            )?;
        }
        Event::CallEnded(e) => {
            tx.execute(
                "UPDATE calls SET ended_ms = ?2, duration = ?3, cause = ?4,
                     disposition = coalesce(?5, disposition), notes = coalesce(?6, notes)
                 WHERE conversation_id = ?1",
                params![
                    e.conversation_id,
                    at_ms,
                    i64::try_from(e.duration).unwrap_or(i64::MAX),
                    cause_name(&e.cause),
                    e.disposition,
                    e.notes
                ],
            )?;
        }
        Event::CallRejected(e) => {
            tx.execute(
                "UPDATE calls SET ended_ms = ?2, duration = 0, cause = ?3 WHERE conversation_id = ?1",
                params![e.conversation_id, at_ms, cause_name(&e.cause)],
            )?;
        }
        Event::CallNotesSubmitted(e) => {
            tx.execute(
                "UPDATE calls SET disposition = ?2, notes = ?3 WHERE conversation_id = ?1",
                params![e.conversation_id, e.disposition, e.notes],
            )?;
        }
        Event::RecordingChanged(e) => {
            let ended = matches!(e.state.as_str(), "stopped" | "failed").then_some(at_ms);
            tx.execute(
                "INSERT INTO recordings (id, conversation_id, file, started_ms, ended_ms, seconds, state, problem)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET
                     file = coalesce(file, excluded.file),
                     ended_ms = coalesce(ended_ms, excluded.ended_ms),
                     seconds = coalesce(excluded.seconds, seconds),
                     state = excluded.state,
                     problem = coalesce(excluded.problem, problem)",
                params![
                    e.recording_id,
                    e.conversation_id,
                    e.file,
                    at_ms,
                    ended,
                    e.duration,
                    e.state,
                    e.reason,
                ],
            )?;
            // The call's latest recording is the one that started last.
            if e.file.is_some() {
                tx.execute(
                    "UPDATE calls SET recording_id = ?2 WHERE conversation_id = ?1",
                    params![e.conversation_id, e.recording_id],
                )?;
            }
        }
        Event::RecordingTagged(e) => {
            tx.execute(
                "UPDATE recordings SET tags = ?2 WHERE id = ?1",
                params![
                    e.recording_id,
                    serde_json::to_string(&e.tags).unwrap_or_else(|_| "[]".into())
                ],
            )?;
        }
        Event::StatusChanged(e) => save(tx, "presence", &e.softphone_id)?,
        Event::DispositionsChanged(e) => save(tx, "dispositions", &e.codes)?,
        Event::PartnerConfigChanged(config) => save(tx, "partner_config", config)?,
        Event::AudioDevicesChanged(devices) => save(tx, "audio_devices", &devices.as_chosen())?,
        _ => {}
    }
    Ok(())
}

fn cause_name(cause: &crate::protocol::EndCause) -> String {
    serde_json::to_value(cause)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn save(tx: &Transaction<'_>, key: &str, value: &impl serde::Serialize) -> rusqlite::Result<()> {
    let json = serde_json::to_string(value).unwrap_or_default();
    tx.execute(
        "INSERT INTO state (key, json) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET json = ?2",
        params![key, json],
    )
    .map(drop)
}

impl Store {
    /// The agent's state as the events last left it; a value that no longer parses is skipped.
    pub fn saved_state(&self) -> Result<SavedState, StoreError> {
        let load = |key: &str| -> Result<Option<String>, StoreError> {
            self.conn
                .query_row("SELECT json FROM state WHERE key = ?1", params![key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(self.read_error())
        };
        fn parse<T: serde::de::DeserializeOwned>(json: Option<String>) -> Option<T> {
            json.and_then(|j| serde_json::from_str(&j).ok())
        }
        Ok(SavedState {
            presence: parse(load("presence")?),
            dispositions: parse(load("dispositions")?),
            partner_config: parse(load("partner_config")?),
            provisioning: parse(load("provisioning")?),
            blacklist: parse(load("blacklist")?),
            callbacks: parse(load("callbacks")?),
            audio_devices: parse(load("audio_devices")?),
        })
    }

    /// Keeps a piece of state no event carries (the provisioned account without its secrets,
    /// the agent's blacklist), or forgets it (`None`).
    pub fn keep_state(
        &mut self,
        key: &str,
        value: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let result = match value {
            Some(value) => self.conn.execute(
                "INSERT INTO state (key, json) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET json = ?2",
                params![key, value.to_string()],
            ),
            None => self
                .conn
                .execute("DELETE FROM state WHERE key = ?1", params![key]),
        };
        result.map(drop).map_err(self.write_error())
    }

    /// Calls newest first: at most `limit`, started before `before_ms` and not ended before
    /// `since_ms`.
    pub fn history(
        &self,
        limit: u32,
        since_ms: i64,
        before_ms: Option<i64>,
    ) -> Result<Vec<StoredCall>, StoreError> {
        self.all(
            &format!(
                "SELECT {CALL_COLUMNS} FROM calls
                 WHERE coalesce(ended_ms, 9223372036854775807) >= ?1 AND started_ms < ?2
                 ORDER BY started_ms DESC, rowid DESC LIMIT ?3"
            ),
            params![since_ms, before_ms.unwrap_or(i64::MAX), i64::from(limit)],
            StoredCall::from_row,
        )
    }

    pub fn call(&self, conversation_id: &str) -> Result<Option<StoredCall>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {CALL_COLUMNS} FROM calls WHERE conversation_id = ?1"),
                params![conversation_id],
                StoredCall::from_row,
            )
            .optional()
            .map_err(self.read_error())
    }

    /// Calls that never ended: the daemon stopped during them.
    pub fn unfinished_calls(&self) -> Result<Vec<StoredCall>, StoreError> {
        self.all(
            &format!(
                "SELECT {CALL_COLUMNS} FROM calls WHERE ended_ms IS NULL ORDER BY started_ms, rowid"
            ),
            [],
            StoredCall::from_row,
        )
    }

    /// Recordings newest first: at most `limit`, started before `before_ms`, not ended before
    /// `since_ms`, of one call when given.
    pub fn recordings(
        &self,
        limit: u32,
        since_ms: i64,
        before_ms: Option<i64>,
        conversation_id: Option<&str>,
    ) -> Result<Vec<StoredRecording>, StoreError> {
        self.all(
            &format!(
                "SELECT {RECORDING_COLUMNS} FROM recordings
                 WHERE coalesce(ended_ms, 9223372036854775807) >= ?1 AND started_ms < ?2
                     AND (?3 IS NULL OR conversation_id = ?3)
                 ORDER BY started_ms DESC, rowid DESC LIMIT ?4"
            ),
            params![
                since_ms,
                before_ms.unwrap_or(i64::MAX),
                conversation_id,
                i64::from(limit)
            ],
            StoredRecording::from_row,
        )
    }

    pub fn recording(&self, id: &str) -> Result<Option<StoredRecording>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = ?1"),
                params![id],
                StoredRecording::from_row,
            )
            .optional()
            .map_err(self.read_error())
    }

    /// Recordings the daemon's stop cut (still `recording` or `paused`).
    pub fn unfinished_recordings(&self) -> Result<Vec<StoredRecording>, StoreError> {
        self.all(
            &format!(
                "SELECT {RECORDING_COLUMNS} FROM recordings WHERE state IN ('recording', 'paused')
                 ORDER BY started_ms"
            ),
            [],
            StoredRecording::from_row,
        )
    }

    /// Forgets recordings that ended before `before_ms`; their files, for the caller to delete.
    pub fn expire_recordings(&mut self, before_ms: i64) -> Result<Vec<String>, StoreError> {
        let mut query = self
            .conn
            .prepare("SELECT file FROM recordings WHERE ended_ms < ?1 AND file IS NOT NULL")
            .map_err(self.read_error())?;
        let files = query
            .query_map(params![before_ms], |r| r.get::<_, String>(0))
            .map_err(self.read_error())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.read_error())?;
        drop(query);
        self.conn
            .execute(
                "DELETE FROM recordings WHERE ended_ms < ?1",
                params![before_ms],
            )
            .map_err(self.write_error())?;
        Ok(files)
    }
}
