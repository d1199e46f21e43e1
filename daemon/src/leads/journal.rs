//! What an archive run has done, on disk, so a run that stopped (a crash, Ctrl-C, the network,
//! office hours) resumes where it stopped without sending a finished batch again — which the
//! platform would answer "lead_ids does not exist", its leads being archived and deleted.
//!
//! One file per run, named by a digest of what makes the run (server, options, ids, batch
//! size), in `DATA_DIR/leads/`, owner-only; JSON lines appended and synced before the next
//! batch is sent: `sending` before a request, `done` with the counts after its 200. A batch
//! with `sending` and no `done` is in doubt: the platform may have processed it before the
//! answer was lost.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The counts of a processed batch, as the platform's 200 gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub select_count: u64,
    pub insert_count: u64,
    pub update_count: u64,
    pub delete_count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Entry {
    Sending {
        batch: usize,
    },
    Done {
        batch: usize,
        #[serde(flatten)]
        counts: Counts,
    },
    /// Sent before an interruption, and found processed when resent (none of its ids left in
    /// `vicidial_list`): done, its counts unknown.
    DoneBefore {
        batch: usize,
    },
    /// Answered, and not processed (a 4xx): no longer in doubt.
    Answered {
        batch: usize,
        status: u16,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot keep the run's journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot keep the run's journal: {0}")]
    File(#[from] crate::private_files::PrivateFileError),
    #[error(
        "another run of the same command is under way (its journal {0} is locked); wait for it to end"
    )]
    Busy(PathBuf),
}

/// What a batch's journal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Done(Counts),
    DoneBefore,
    InDoubt,
    NotSent,
}

pub struct Journal {
    path: PathBuf,
    /// `None` when only read (a dry run).
    file: Option<std::fs::File>,
    done: BTreeMap<usize, Option<Counts>>,
    sending: BTreeSet<usize>,
}

/// The journal's name for a run: the same inputs give the same file.
pub fn run_key(parts: &[&str]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part.as_bytes());
    }
    context.finish().as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Journal {
    /// Opens (or, with `fresh`, starts again) the journal of run `key` in `dir`, locked for
    /// this run: two runs of the same command at once (an overlapping cron job) would send the
    /// same batches twice.
    pub fn open(dir: &Path, key: &str, fresh: bool) -> Result<Self, JournalError> {
        crate::private_files::create_dir(dir)?;
        let path = dir.join(format!("archive-{key}.jsonl"));
        let existing = crate::private_files::Existing::Append;
        let (file, _) = crate::private_files::open(&path, existing)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(JournalError::Busy(path)),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(JournalError::Io { path, source });
            }
        }
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        if fresh {
            file.set_len(0).map_err(io)?;
        }
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let mut journal = Self::from_text(path, Some(file), &text);
        // A line torn by a crash: what is appended next starts on a line of its own.
        if !text.is_empty() && !text.ends_with('\n') {
            let path = journal.path.clone();
            if let Some(file) = journal.file.as_mut() {
                file.write_all(b"\n")
                    .map_err(|source| JournalError::Io { path, source })?;
            }
        }
        Ok(journal)
    }

    /// The journal of run `key` as it stands, for a dry run: nothing created, locked or written.
    pub fn read(dir: &Path, key: &str, fresh: bool) -> Self {
        let path = dir.join(format!("archive-{key}.jsonl"));
        let text = if fresh {
            String::new()
        } else {
            std::fs::read_to_string(&path).unwrap_or_default()
        };
        Self::from_text(path, None, &text)
    }

    fn from_text(path: PathBuf, file: Option<std::fs::File>, text: &str) -> Self {
        let mut journal = Self {
            path,
            file,
            done: BTreeMap::new(),
            sending: BTreeSet::new(),
        };
        // A line torn by a crash mid-write is skipped: its batch is then in doubt or unsent,
        // never done by mistake.
        for entry in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
        {
            journal.apply(&entry);
        }
        journal
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn apply(&mut self, entry: &Entry) {
        match *entry {
            Entry::Sending { batch } => {
                self.sending.insert(batch);
            }
            Entry::Done { batch, counts } => {
                self.done.insert(batch, Some(counts));
            }
            Entry::DoneBefore { batch } => {
                self.done.insert(batch, None);
            }
            Entry::Answered { batch, .. } => {
                self.sending.remove(&batch);
            }
        }
    }

    pub fn recorded(&self, batch: usize) -> Recorded {
        match self.done.get(&batch) {
            Some(Some(counts)) => Recorded::Done(*counts),
            Some(None) => Recorded::DoneBefore,
            None if self.sending.contains(&batch) => Recorded::InDoubt,
            None => Recorded::NotSent,
        }
    }

    pub fn sending(&mut self, batch: usize) -> Result<(), JournalError> {
        self.append(Entry::Sending { batch })
    }

    pub fn done(&mut self, batch: usize, counts: Counts) -> Result<(), JournalError> {
        self.append(Entry::Done { batch, counts })
    }

    pub fn done_before(&mut self, batch: usize) -> Result<(), JournalError> {
        self.append(Entry::DoneBefore { batch })
    }

    /// The platform answered `status` and did not process the batch.
    pub fn answered(&mut self, batch: usize, status: u16) -> Result<(), JournalError> {
        self.append(Entry::Answered { batch, status })
    }

    /// Appends and syncs one line: once this returns, a crash does not lose it.
    fn append(&mut self, entry: Entry) -> Result<(), JournalError> {
        let mut line = serde_json::to_string(&entry).unwrap_or_default();
        line.push('\n');
        let path = self.path.clone();
        let io = move |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let Some(file) = self.file.as_mut() else {
            return Err(io(std::io::Error::other(
                "the journal was opened to read only",
            )));
        };
        file.write_all(line.as_bytes()).map_err(&io)?;
        file.sync_data().map_err(&io)?;
        self.apply(&entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNTS: Counts = Counts {
        select_count: 500,
        insert_count: 500,
        update_count: 0,
        delete_count: 500,
    };

    #[test]
    fn a_reopened_journal_knows_what_was_done_and_what_is_in_doubt() {
        let dir = tempfile::tempdir().expect("ok");
        let key = run_key(&["https://dialer", "ids"]);
        let mut journal = Journal::open(dir.path(), &key, false).expect("ok");
        journal.sending(0).expect("ok");
        journal.done(0, COUNTS).expect("ok");
        journal.sending(1).expect("ok");
        drop(journal);
        let mut journal = Journal::open(dir.path(), &key, false).expect("ok");
        assert_eq!(journal.recorded(0), Recorded::Done(COUNTS));
        assert_eq!(journal.recorded(1), Recorded::InDoubt);
        assert_eq!(journal.recorded(2), Recorded::NotSent);
        journal.done_before(1).expect("ok");
        drop(journal);
        let journal = Journal::open(dir.path(), &key, false).expect("ok");
        assert_eq!(journal.recorded(1), Recorded::DoneBefore);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(journal.path())
                .expect("ok")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
        }
    }

    #[test]
    fn a_torn_last_line_leaves_its_batch_not_done() {
        let dir = tempfile::tempdir().expect("ok");
        let mut journal = Journal::open(dir.path(), "k", false).expect("ok");
        journal.sending(0).expect("ok");
        let path = journal.path().to_owned();
        drop(journal);
        let mut text = std::fs::read_to_string(&path).expect("ok");
        text.push_str(r#"{"state":"done","batch":0,"select_co"#);
        std::fs::write(&path, text).expect("ok");
        let mut journal = Journal::open(dir.path(), "k", false).expect("ok");
        assert_eq!(journal.recorded(0), Recorded::InDoubt);
        // What is written next is not lost with the torn line.
        journal.done(1, COUNTS).expect("ok");
        drop(journal);
        let journal = Journal::open(dir.path(), "k", false).expect("ok");
        assert_eq!(journal.recorded(1), Recorded::Done(COUNTS));
    }

    #[test]
    fn an_answered_batch_is_not_in_doubt_and_a_second_run_is_refused() {
        let dir = tempfile::tempdir().expect("ok");
        let mut journal = Journal::open(dir.path(), "k", false).expect("ok");
        journal.sending(0).expect("ok");
        journal.answered(0, 400).expect("ok");
        assert_eq!(journal.recorded(0), Recorded::NotSent);
        assert!(matches!(
            Journal::open(dir.path(), "k", false),
            Err(JournalError::Busy(_))
        ));
        // A dry run reads it without taking it.
        assert_eq!(
            Journal::read(dir.path(), "k", false).recorded(0),
            Recorded::NotSent
        );
        assert!(Journal::read(dir.path(), "other", false).path().parent() == Some(dir.path()));
        drop(journal);
        assert!(Journal::open(dir.path(), "k", false).is_ok());
    }

    #[test]
    fn fresh_forgets_and_other_runs_have_other_files() {
        let dir = tempfile::tempdir().expect("ok");
        let mut journal = Journal::open(dir.path(), "k", false).expect("ok");
        journal.done(0, COUNTS).expect("ok");
        drop(journal);
        let journal = Journal::open(dir.path(), "k", true).expect("ok");
        assert_eq!(journal.recorded(0), Recorded::NotSent);
        assert_ne!(run_key(&["ab", "c"]), run_key(&["a", "bc"]));
        assert_eq!(run_key(&["x", "y"]), run_key(&["x", "y"]));
    }
}
