//! Every event a page may need goes through the journal: numbered, written to the store, then
//! sent; replayed to each page origin from where it left off (its acknowledgement, or the
//! `?since=` it asks for) — also after a restart, since the store keeps the numbering.
//!
//! `log` lines and `storageChanged` are sent but never numbered nor kept (they must not use up
//! the window). Without a store (it could not be opened) or while writing fails, events are
//! kept in the memory window only, and the snapshot's `storage` says so.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod provisioning;

pub use provisioning::Unkept;

use super::event_log::{EventLog, Published, Replay};
use crate::origins::Origin;
use crate::protocol::{CallRecord, Event, EventMessage, RecordingInfo, StorageInfo, StorageState};
use crate::store::{
    Mark, NewEvent, SavedState, SetAside, Store, StoreError, StoredCall, StoredRecording,
};

/// How long and how many events the store keeps for pages that have not acknowledged them.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub keep: Duration,
    pub max_events: u64,
    /// Of JSON, all events together.
    pub max_bytes: u64,
}

/// Appends between two prunes of the store.
const PRUNE_EVERY: u32 = 1_000;
/// At most one fsynced commit (the agent's notes) this often.
const DURABLE_EVERY_MS: i64 = 100;
/// What one connection is replayed at most: the newest events within these caps (older ones
/// are the snapshot's; `resumed` is false then).
const MAX_REPLAY_EVENTS: usize = 5_000;
const MAX_REPLAY_BYTES: usize = 8 * 1024 * 1024;

/// Where a reconnecting page left off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub instance: String,
    pub since: u64,
}

/// What the journal found on disk at start.
#[derive(Debug, Default)]
pub struct Startup {
    pub saved: SavedState,
    /// Calls that were up or ringing when the daemon stopped.
    pub interrupted: Vec<StoredCall>,
    /// Recordings that were running when it stopped.
    pub interrupted_recordings: Vec<StoredRecording>,
    /// When the last event was stored before this start (ms since the Unix epoch).
    pub last_event_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JournalError {
    #[error("seq {seq} is newer than the newest event ({last})")]
    AckFromTheFuture { seq: u64, last: u64 },
    #[error("only pages acknowledge events")]
    AckWithoutOrigin,
    #[error("{0}")]
    Unavailable(String),
}

pub struct Journal {
    memory: EventLog,
    store: Option<Store>,
    status: StorageInfo,
    instance: String,
    /// Each origin's mark, as loaded from (and written through to) the store.
    marks: HashMap<Origin, Mark>,
    retention: Retention,
    appends_since_prune: u32,
    /// The wall clock in ms since the Unix epoch (an origin's first connection is dated).
    clock: fn() -> i64,
    /// Told the last stored seq after each write (the notifier waits on it).
    stored: Option<tokio::sync::watch::Sender<u64>>,
    /// The first event the store did not take, while writing fails.
    unstored_from: Option<u64>,
    /// When the last fsynced commit was (ms since the Unix epoch).
    last_durable_ms: i64,
    /// The store's folder, kept out of what pages are told.
    data_dir: Option<std::path::PathBuf>,
    /// Where a provisioned account's secrets are kept, or why they cannot be.
    vault: Result<crate::secrets::Vault, String>,
}

impl Journal {
    /// Opens the store at `path`, making the data folder's instance id with `make_instance` the
    /// first time. When the store cannot be opened the journal runs in memory and says why.
    pub fn open(
        path: &Path,
        stamp: &str,
        memory_window: usize,
        retention: Retention,
        clock: fn() -> i64,
        make_instance: impl FnOnce() -> String,
    ) -> (Self, Startup) {
        let now_ms = clock();
        let data_dir = path.parent().map(Path::to_path_buf);
        let opened = Store::open(path, stamp).and_then(|(mut store, set_aside)| {
            let instance = store.instance(make_instance)?;
            Ok((store, set_aside, instance))
        });
        let (mut store, set_aside, instance) = match opened {
            Ok(opened) => opened,
            Err(e) => return Self::memory_only(&e, data_dir, memory_window, retention, clock),
        };
        let mut status = StorageInfo::ok();
        if let Err(e) = store.check_writable(now_ms) {
            tracing::error!(
                "{e}; what it holds is read, new events are kept in memory only until it can be written"
            );
            status.state = StorageState::Failing;
            status.reason = Some(e.to_string());
        }
        if let Some(SetAside { file, why }) = &set_aside {
            let reason = format!(
                "the store was unusable ({why}); it was moved to {} and a new one started",
                file.display()
            );
            tracing::error!("{reason}");
            status.reason = Some(reason);
        }
        let startup = (|| -> Result<(Startup, u64), StoreError> {
            Ok((
                Startup {
                    saved: store.saved_state()?,
                    interrupted: store.unfinished_calls()?,
                    interrupted_recordings: store.unfinished_recordings()?,
                    last_event_ms: store.last_event_ms()?,
                },
                store.last_seq()?,
            ))
        })();
        let (startup, last_seq) = match startup {
            Ok(found) => found,
            // Without its numbering the store cannot be written without reusing seqs: this run
            // keeps events in memory, under an instance of its own.
            Err(e) => return Self::memory_only(&e, data_dir, memory_window, retention, clock),
        };
        match store.prune(
            now_ms,
            millis(retention.keep),
            retention.max_events,
            retention.max_bytes,
        ) {
            Ok(pruned) if pruned.unacknowledged > 0 => tracing::warn!(
                "the store dropped {} events no page had acknowledged ([store] keep_days / max_events)",
                pruned.unacknowledged
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("{e}"),
        }
        status.dropped_events = store.dropped_events().unwrap_or(0);
        let mut journal = Self::with(
            Some(store),
            status,
            instance,
            (memory_window, last_seq),
            retention,
            clock,
        );
        journal.data_dir = data_dir;
        if let Some(reason) = &journal.status.reason {
            journal.status.reason = Some(journal.for_pages(reason));
        }
        (journal, startup)
    }

    /// A journal for a run whose store could not be used: memory only, an instance of its own,
    /// and `error` (its path as `DATA_DIR`) in the snapshot.
    fn memory_only(
        error: &StoreError,
        data_dir: Option<std::path::PathBuf>,
        memory_window: usize,
        retention: Retention,
        clock: fn() -> i64,
    ) -> (Self, Startup) {
        tracing::error!("{error}; events, notes and call history are kept in memory only");
        let mut journal = Self::unstored(String::new(), memory_window, retention, clock);
        journal.data_dir = data_dir;
        journal.status.reason = Some(journal.for_pages(&error.to_string()));
        (journal, Startup::default())
    }

    /// A journal with no store this run: memory only, `unavailable` for `reason`, an instance of
    /// its own (its numbering starts again).
    fn unstored(
        reason: String,
        memory_window: usize,
        retention: Retention,
        clock: fn() -> i64,
    ) -> Self {
        let status = StorageInfo {
            state: StorageState::Unavailable,
            reason: Some(reason),
            dropped_events: 0,
        };
        Self::with(
            None,
            status,
            crate::ids::random_hex(8),
            (memory_window, 0),
            retention,
            clock,
        )
    }

    /// A journal that keeps nothing on disk (`[store] enabled = false`).
    pub fn without_store(memory_window: usize, clock: fn() -> i64) -> (Self, Startup) {
        let retention = Retention {
            keep: Duration::MAX,
            max_events: u64::MAX,
            max_bytes: u64::MAX,
        };
        let reason =
            "IT turned the store off ([store] enabled = false): nothing is kept on disk".into();
        (
            Self::unstored(reason, memory_window, retention, clock),
            Startup::default(),
        )
    }

    /// `memory`: the window's size and the last seq so far.
    fn with(
        store: Option<Store>,
        status: StorageInfo,
        instance: String,
        memory: (usize, u64),
        retention: Retention,
        clock: fn() -> i64,
    ) -> Self {
        Self {
            memory: EventLog::new(memory.0, memory.1),
            store,
            status,
            instance,
            marks: HashMap::new(),
            retention,
            appends_since_prune: 0,
            clock,
            stored: None,
            unstored_from: None,
            last_durable_ms: i64::MIN,
            data_dir: None,
            vault: Err("no OS keyring was opened for this data folder".into()),
        }
    }

    /// A channel told the newest stored seq after every write; `None` without a store.
    pub fn watch_stored(&mut self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.store.as_ref()?;
        let (sender, receiver) = tokio::sync::watch::channel(self.memory.last_seq());
        self.stored = Some(sender);
        Some(receiver)
    }

    pub fn has_store(&self) -> bool {
        self.store.is_some()
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn last_seq(&self) -> u64 {
        self.memory.last_seq()
    }

    pub fn status(&self) -> StorageInfo {
        self.status.clone()
    }

    /// Numbers `events`, writes them to the store and returns them to send, in order; a
    /// `storageChanged` follows when writing started or stopped failing. Events numbered while
    /// writing failed are written with the next batch that can be (from the memory window), so
    /// a `seq` never stands for two events and the notifier misses none.
    pub fn publish(&mut self, events: &[Event], now_ms: i64) -> Vec<Arc<Published>> {
        let mut out: Vec<Arc<Published>> = events.iter().map(|e| self.memory.push(e)).collect();
        let Some(first_new) = out.first().map(|p| p.seq) else {
            return out;
        };
        let Some(store) = &mut self.store else {
            return out;
        };
        // Events the store missed, read back from the window (their JSON is the event).
        let missed: Vec<(u64, Event, String)> = match self.unstored_from {
            Some(from) => self
                .memory
                .kept_after(from.saturating_sub(1))
                .filter(|p| p.seq < first_new)
                .filter_map(|p| {
                    let message: EventMessage = serde_json::from_str(&p.json).ok()?;
                    Some((p.seq, message.event, p.json.clone()))
                })
                .collect(),
            None => Vec::new(),
        };
        // The agent's notes are committed so that even a power cut keeps them, at most ten
        // fsyncs a second (docs/decisions.md); the checkpoint within 5 s covers the rest.
        let durable = events
            .iter()
            .any(|e| matches!(e, Event::CallNotesSubmitted(_)))
            && now_ms.saturating_sub(self.last_durable_ms) >= DURABLE_EVERY_MS;
        let rows: Vec<NewEvent<'_>> = missed
            .iter()
            .map(|(seq, event, json)| NewEvent {
                seq: *seq,
                at_ms: now_ms,
                event,
                json,
            })
            .chain(events.iter().zip(&out).map(|(event, published)| NewEvent {
                seq: published.seq,
                at_ms: now_ms,
                event,
                json: &published.json,
            }))
            .collect();
        let written = store.append(&rows, durable);
        let was = self.status.state;
        match written {
            Ok(()) => {
                if durable {
                    self.last_durable_ms = now_ms;
                }
                if let (Some(stored), Some(last)) = (&self.stored, out.last()) {
                    let _ = stored.send(last.seq);
                }
                if let Some(from) = self.unstored_from.take() {
                    let lost = (first_new - from).saturating_sub(missed.len() as u64);
                    if lost > 0 {
                        tracing::warn!(
                            "{lost} events sent while the store failed had left the memory window ([api] replay_events) and are not kept"
                        );
                    }
                }
                if was == StorageState::Failing {
                    tracing::warn!("the store {} is written again", store.path().display());
                    self.status.state = StorageState::Ok;
                    self.status.reason = None;
                }
                self.appends_since_prune += 1;
                if self.appends_since_prune >= PRUNE_EVERY {
                    self.appends_since_prune = 0;
                    self.prune(now_ms);
                }
            }
            Err(e) => {
                if was != StorageState::Failing {
                    tracing::error!(
                        "{e}; events are sent and kept in memory only until it can be written again"
                    );
                }
                self.unstored_from.get_or_insert(first_new);
                self.status.state = StorageState::Failing;
                self.status.reason = Some(self.for_pages(&e.to_string()));
            }
        }
        if self.status.state != was {
            out.push(self.transient(&Event::StorageChanged(self.status.clone())));
        }
        out
    }

    /// A message for pages: the data folder's path (the agent's home, user name) becomes
    /// `DATA_DIR`; the log keeps it.
    fn for_pages(&self, text: &str) -> String {
        match self.data_dir.as_deref().and_then(Path::to_str) {
            Some(dir) if !dir.is_empty() => text.replace(dir, "DATA_DIR"),
            _ => text.to_owned(),
        }
    }

    fn prune(&mut self, now_ms: i64) {
        let Some(store) = &mut self.store else { return };
        match store.prune(
            now_ms,
            millis(self.retention.keep),
            self.retention.max_events,
            self.retention.max_bytes,
        ) {
            Ok(pruned) => {
                if pruned.unacknowledged > 0 {
                    tracing::warn!(
                        "the store dropped {} events no page had acknowledged ([store] keep_days / max_events)",
                        pruned.unacknowledged
                    );
                    self.status.dropped_events += pruned.unacknowledged;
                }
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// An event sent live but neither numbered nor kept.
    pub fn transient(&self, event: &Event) -> Arc<Published> {
        self.memory.transient(event)
    }

    /// Where `origin` stands, created at the current seq on its first connection (a newly
    /// allowed page does not receive other pages' history).
    fn mark(&mut self, origin: &Origin) -> Mark {
        if let Some(mark) = self.marks.get(origin) {
            return *mark;
        }
        let last = self.memory.last_seq();
        let fresh = Mark {
            floor: last,
            acked: 0,
            since_ms: (self.clock)(),
        };
        let stored = self.store.as_ref().map(|s| s.mark(origin.as_str()));
        let mark = match stored {
            // A mark from a different numbering (the store was replaced) starts over.
            Some(Ok(Some(mark))) if mark.floor <= last && mark.acked <= last => mark,
            // Unreadable: nothing is replayed this time, and the stored mark is left as it is.
            Some(Err(e)) => {
                tracing::warn!("{e}");
                return fresh;
            }
            _ => {
                self.write_mark(origin, fresh);
                fresh
            }
        };
        self.marks.insert(origin.clone(), mark);
        mark
    }

    fn write_mark(&mut self, origin: &Origin, mark: Mark) {
        if let Some(store) = &mut self.store
            && let Err(e) = store.set_mark(origin.as_str(), mark)
        {
            tracing::debug!("{e}");
        }
    }

    /// What a new connection of `origin` is sent after `hello`: every event its origin has not
    /// acknowledged and every event after the `since` it resumes from, oldest first. Whether
    /// it `resumed`: it asked, and nothing since its `since` is missing.
    pub fn subscribe(
        &mut self,
        origin: Option<&Origin>,
        resume: Option<&Resume>,
    ) -> (bool, Vec<Arc<Published>>) {
        let Some(origin) = origin else {
            return (false, Vec::new());
        };
        let mark = self.mark(origin);
        let last = self.memory.last_seq();
        let since = resume
            .filter(|r| r.instance == self.instance && r.since <= last)
            .map(|r| r.since);
        let from = since
            .map_or(mark.delivered(), |s| s.min(mark.delivered()))
            .max(mark.floor);
        let (events, complete) = self.after(from);
        let resumed = since.is_some_and(|s| s >= mark.floor) && complete;
        (resumed, events)
    }

    /// Events after `from`, oldest first: from memory when the window reaches back that far,
    /// else the newest from the store up to where the window starts (within the replay caps),
    /// then the window (which also holds events the store could not take). `complete` when
    /// none is missing.
    fn after(&self, from: u64) -> (Vec<Arc<Published>>, bool) {
        let last = self.memory.last_seq();
        if from >= last {
            return (Vec::new(), true);
        }
        if let Replay::Events(events) = self.memory.since(from) {
            return (events, true);
        }
        let kept: Vec<Arc<Published>> = self.memory.kept_after(from).cloned().collect();
        let kept_bytes: usize = kept.iter().map(|p| p.json.len()).sum();
        let window = self.memory.oldest_seq();
        let room = MAX_REPLAY_EVENTS.saturating_sub(kept.len());
        let mut out = Vec::new();
        if let Some(store) = &self.store
            && room > 0
        {
            let bytes = MAX_REPLAY_BYTES.saturating_sub(kept_bytes).max(1);
            match store.newest_events_between(from, window, room, bytes) {
                Ok((rows, _)) => out.extend(rows.into_iter().map(|row| {
                    Arc::new(Published {
                        seq: row.seq,
                        json: row.json,
                        stored: true,
                    })
                })),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        out.extend(kept);
        let complete = out.first().map(|p| p.seq) == Some(from + 1)
            && out.windows(2).all(|w| w[1].seq == w[0].seq + 1)
            && out.last().map(|p| p.seq) == Some(last);
        (out, complete)
    }

    /// `origin` has processed every event up to `seq`; returns what it has acknowledged now.
    pub fn ack(&mut self, origin: Option<&Origin>, seq: u64) -> Result<u64, JournalError> {
        let origin = origin.ok_or(JournalError::AckWithoutOrigin)?;
        let last = self.memory.last_seq();
        if seq > last {
            return Err(JournalError::AckFromTheFuture { seq, last });
        }
        let mut mark = self.mark(origin);
        if seq > mark.acked {
            mark.acked = seq;
            self.marks.insert(origin.clone(), mark);
            self.write_mark(origin, mark);
        }
        Ok(mark.delivered())
    }

    /// Forgets the marks of every key `keep` refuses (origins no longer allowed, cursors of
    /// notification endpoints no longer configured), so a re-approved origin starts afresh and
    /// stale marks do not count as unacknowledged forever.
    pub fn retain_marks(&mut self, keep: impl Fn(&str) -> bool) {
        let Some(store) = &mut self.store else { return };
        let keys = match store.mark_keys() {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!("{e}");
                return;
            }
        };
        for key in keys.iter().filter(|k| !keep(k)) {
            if let Err(e) = store.forget_mark(key) {
                tracing::warn!("{e}");
            }
        }
        self.marks.retain(|origin, _| keep(origin.as_str()));
    }

    /// The origin was revoked: if allowed again, it starts without history.
    pub fn forget(&mut self, origin: &Origin) {
        self.marks.remove(origin);
        if let Some(store) = &mut self.store
            && let Err(e) = store.forget_mark(origin.as_str())
        {
            tracing::debug!("{e}");
        }
    }

    /// From when `origin` may see the call history: calls still going at its first connection
    /// or later, so a newly allowed page does not read the calls and notes of before (as it
    /// gets no events of before). The daemon's own surfaces (`None`) see it all.
    fn visible_since(&mut self, origin: Option<&Origin>) -> i64 {
        origin.map_or(i64::MIN, |o| self.mark(o).since_ms)
    }

    /// Past calls `origin` may see, newest first.
    pub fn history(
        &mut self,
        origin: Option<&Origin>,
        limit: u32,
        before_ms: Option<i64>,
    ) -> Result<Vec<CallRecord>, JournalError> {
        let since = self.visible_since(origin);
        let store = self.store.as_ref().ok_or_else(|| {
            JournalError::Unavailable(format!(
                "there is no call history: {}",
                self.status.reason.as_deref().unwrap_or("no store")
            ))
        })?;
        // (`status.reason` is already written for pages.)
        store
            .history(limit, since, before_ms)
            .map(|calls| calls.iter().map(StoredCall::record).collect())
            .map_err(|e| JournalError::Unavailable(self.for_pages(&e.to_string())))
    }

    fn unavailable(&self) -> JournalError {
        JournalError::Unavailable(format!(
            "there is no store: {}",
            self.status.reason.as_deref().unwrap_or("none this run")
        ))
    }

    /// Recordings `origin` may see, newest first.
    pub fn recordings(
        &mut self,
        origin: Option<&Origin>,
        limit: u32,
        before_ms: Option<i64>,
        conversation_id: Option<&str>,
    ) -> Result<Vec<RecordingInfo>, JournalError> {
        let since = self.visible_since(origin);
        let store = self.store.as_ref().ok_or_else(|| self.unavailable())?;
        store
            .recordings(limit, since, before_ms, conversation_id)
            .map(|all| all.iter().map(StoredRecording::info).collect())
            .map_err(|e| JournalError::Unavailable(self.for_pages(&e.to_string())))
    }

    /// One recording, if `origin` may see it.
    pub fn recording(&mut self, origin: Option<&Origin>, id: &str) -> Option<StoredRecording> {
        let since = self.visible_since(origin);
        self.store
            .as_ref()
            .and_then(|s| s.recording(id).ok().flatten())
            .filter(|r| r.ended_ms.is_none_or(|ended| ended >= since))
    }

    /// Forgets recordings that ended before `before_ms`; the names of their files.
    pub fn expire_recordings(&mut self, before_ms: i64) -> Vec<String> {
        match self.store.as_mut().map(|s| s.expire_recordings(before_ms)) {
            Some(Ok(files)) => files,
            Some(Err(e)) => {
                tracing::warn!("{e}");
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// Keeps state no event carries (the agent's blacklist) for the next start.
    pub fn keep_state(&mut self, key: &str, value: &serde_json::Value) -> Result<(), JournalError> {
        let Some(store) = &mut self.store else {
            return Err(JournalError::Unavailable(
                "there is no store this run".into(),
            ));
        };
        store
            .keep_state(key, Some(value))
            .map_err(|e| JournalError::Unavailable(self.for_pages(&e.to_string())))
    }

    /// One call of the history, if `origin` may see it.
    pub fn call(&mut self, origin: Option<&Origin>, conversation_id: &str) -> Option<StoredCall> {
        let since = self.visible_since(origin);
        self.store
            .as_ref()
            .and_then(|s| s.call(conversation_id).ok().flatten())
            .filter(|call| call.ended_ms.is_none_or(|ended| ended >= since))
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
