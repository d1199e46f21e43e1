//! `softphone-bridge leads archive`: the platform's lead-archive endpoint (seeds 000/001) driven
//! from the command line, for IT's scripts — any number of ids, checked first with the
//! platform's own rules, sent in batches of at most 500 in order, each batch's outcome written
//! to a journal before the next is sent, so a run that stops resumes where it stopped.
//!
//! Exit codes ([`Outcome`]'s `exit_code`): 0 every batch processed; 2 bad usage or ids the
//! platform would refuse (nothing sent); 3 the key was refused (401); 4 office hours (403: run
//! again after them); 5 the platform refused some batches (400; the others were processed);
//! 6 the platform could not be reached or kept failing (5xx) after the retries; 1 anything
//! else (the journal could not be written, an unexpected answer).

pub mod client;
pub mod ids;
pub mod journal;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::config::Secret;
use client::{Answer, ArchiveClient, Steps};
use journal::{Counts, Journal, Recorded};

/// The key's name in the OS keyring (`leads key set`).
pub const KEYRING_NAME: &str = "leads-api-key";
/// The keyring "instance" of the CLI's secrets (the daemon's use its store's instance id).
pub const KEYRING_INSTANCE: &str = "cli";

/// An archive run, as the command line gives it.
#[derive(Debug)]
pub struct Run {
    pub server: String,
    pub ids_text: String,
    pub steps: Steps,
    pub batch_size: usize,
    pub retries: u32,
    pub first_retry: Duration,
    pub dry_run: bool,
    pub fresh: bool,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LeadsError {
    #[error(transparent)]
    Ids(#[from] ids::IdsError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl LeadsError {
    pub fn exit_code(&self) -> u8 {
        match self {
            // What the person running it can fix: the ids, the address, the key they gave.
            Self::Ids(_) | Self::Client(client::ClientError::Url(_)) => 2,
            Self::Key(KeyError::Keyring(_)) => 1,
            Self::Key(_) => 2,
            Self::Client(_) | Self::Journal(_) => 1,
        }
    }
}

/// How one batch ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BatchOutcome {
    /// Processed in this run.
    Processed {
        #[serde(flatten)]
        counts: Counts,
    },
    /// Processed by an earlier run of the same command (the journal says so).
    AlreadyDone {
        #[serde(flatten)]
        counts: Option<Counts>,
    },
    /// Sent by an interrupted run whose answer was lost, and processed then: resent, none of
    /// its ids are in `vicidial_list` any more.
    DoneBeforeInterruption,
    /// Refused by the platform (400): its body (as JSON, and as sent for the words).
    Rejected {
        body: serde_json::Value,
        #[serde(skip)]
        raw: String,
    },
    /// Not sent: `--dry-run`, or the run stopped before it.
    NotSent,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    /// 1-based, as shown.
    pub batch: usize,
    pub ids: usize,
    pub first_id: i64,
    pub last_id: i64,
    #[serde(flatten)]
    pub outcome: BatchOutcome,
}

/// Why a run stopped before its last batch.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "stopped", rename_all = "snake_case")]
pub enum Stop {
    /// 401.
    KeyRefused {
        body: serde_json::Value,
        #[serde(skip)]
        raw: String,
    },
    /// 403: office hours.
    OfficeHours {
        body: serde_json::Value,
        #[serde(skip)]
        raw: String,
    },
    /// No answer, or 5xx, after every retry.
    Unreachable { error: String },
    /// The platform's certificate was refused (not tried again).
    Certificate { error: String },
    /// An answer the contract does not have.
    Unexpected { status: u16, body: String },
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub url: String,
    pub journal: PathBuf,
    pub batches: Vec<BatchReport>,
    #[serde(flatten)]
    pub stop: Option<Stop>,
    pub totals: Counts,
    pub exit_code: u8,
}

/// Reports progress as batches go (a progress bar, lines on a terminal), and nothing for
/// `--json`.
pub trait Progress {
    fn start(&mut self, batches: usize);
    fn batch(&mut self, report: &BatchReport, total: usize);
    fn retry(&mut self, batch: usize, error: &str, wait: Duration);
}

/// The body as JSON if it is, else as a string (verbatim either way).
fn verbatim(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

/// Whether a 400 says every id of the batch is gone from `vicidial_list`: for a batch sent
/// before an interruption with `delete_leads`, the mark that it was processed then. The ids it
/// lists must be exactly the batch's.
fn all_gone(body: &serde_json::Value, ids: &[i64]) -> bool {
    let listed: Option<std::collections::BTreeSet<i64>> = body["lead_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect());
    body["message"] == "lead_ids does not exist"
        && listed.is_some_and(|listed| listed == ids.iter().copied().collect())
}

/// The ids as part of the run's identity: the same ids in the same order, however they were
/// separated, are the same run.
fn ids_normalised(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

pub async fn archive(
    run: &Run,
    key: &Secret,
    journal_dir: &Path,
    progress: &mut dyn Progress,
) -> Result<Outcome, LeadsError> {
    let ids = ids::parse(&run.ids_text)?;
    let client = ArchiveClient::new(&run.server, key, run.ca_file.as_deref())?;
    let batches = ids::batches(&ids, run.batch_size);
    let key_of_run = journal::run_key(&[
        client.url().as_str(),
        &serde_json::to_string(&run.steps).unwrap_or_default(),
        &run.batch_size.clamp(1, ids::MAX_BATCH).to_string(),
        &ids_normalised(&ids),
    ]);
    let mut journal = if run.dry_run {
        Journal::read(journal_dir, &key_of_run, run.fresh)
    } else {
        Journal::open(journal_dir, &key_of_run, run.fresh)?
    };
    let mut outcome = Outcome {
        url: client.url().to_string(),
        journal: journal.path().to_owned(),
        batches: Vec::new(),
        stop: None,
        totals: Counts::default(),
        exit_code: 0,
    };
    progress.start(batches.len());
    for (index, batch) in batches.iter().enumerate() {
        let mut report = BatchReport {
            batch: index + 1,
            ids: batch.len(),
            first_id: batch.first().copied().unwrap_or_default(),
            last_id: batch.last().copied().unwrap_or_default(),
            outcome: BatchOutcome::NotSent,
        };
        let recorded = journal.recorded(index);
        match recorded {
            Recorded::Done(counts) => {
                report.outcome = BatchOutcome::AlreadyDone {
                    counts: Some(counts),
                }
            }
            Recorded::DoneBefore => report.outcome = BatchOutcome::AlreadyDone { counts: None },
            Recorded::InDoubt | Recorded::NotSent if run.dry_run || outcome.stop.is_some() => {}
            Recorded::InDoubt | Recorded::NotSent => {
                journal.sending(index)?;
                let (answer, answer_lost) =
                    send_with_retries(&client, run, index, batch, progress).await;
                // A 4xx says this request was not processed — not that an earlier one, sent
                // before an interruption or unanswered, was not: such a batch stays in doubt
                // until a 200 or "every id gone" settles it. A 2xx we could not read is not
                // "not processed" either.
                let maybe_processed_before = recorded == Recorded::InDoubt || answer_lost;
                let not_processed = |journal: &mut Journal, status: u16| {
                    if maybe_processed_before || !(400..500).contains(&status) {
                        Ok(())
                    } else {
                        journal.answered(index, status)
                    }
                };
                // A 4xx was answered and not processed: the journal says so, so the batch is
                // not in doubt on a later run. A 5xx or no answer leaves it in doubt.
                match answer {
                    Ok(Answer::Processed(counts)) => {
                        journal.done(index, counts)?;
                        report.outcome = BatchOutcome::Processed { counts };
                    }
                    Ok(Answer::Rejected(text)) => {
                        let body = verbatim(&text);
                        // Sent before (an interrupted run, or a try whose answer was lost) and
                        // every id now gone: processed then.
                        if maybe_processed_before
                            && run.steps.delete_leads
                            && all_gone(&body, batch)
                        {
                            journal.done_before(index)?;
                            report.outcome = BatchOutcome::DoneBeforeInterruption;
                        } else {
                            not_processed(&mut journal, 400)?;
                            report.outcome = BatchOutcome::Rejected { body, raw: text };
                        }
                    }
                    Ok(Answer::Unauthorized(text)) => {
                        not_processed(&mut journal, 401)?;
                        outcome.stop = Some(Stop::KeyRefused {
                            body: verbatim(&text),
                            raw: text,
                        })
                    }
                    Ok(Answer::OfficeHours(text)) => {
                        not_processed(&mut journal, 403)?;
                        outcome.stop = Some(Stop::OfficeHours {
                            body: verbatim(&text),
                            raw: text,
                        })
                    }
                    Ok(Answer::Unexpected(status, body)) => {
                        not_processed(&mut journal, status)?;
                        outcome.stop = Some(Stop::Unexpected { status, body })
                    }
                    Ok(Answer::ServerError(status, body)) => {
                        outcome.stop = Some(Stop::Unreachable {
                            error: format!("the platform answered {status}: {body}"),
                        })
                    }
                    Err(unanswered) if unanswered.certificate => {
                        outcome.stop = Some(Stop::Certificate {
                            error: unanswered.error,
                        })
                    }
                    Err(unanswered) => {
                        outcome.stop = Some(Stop::Unreachable {
                            error: unanswered.error,
                        })
                    }
                }
            }
        }
        if let BatchOutcome::Processed { counts }
        | BatchOutcome::AlreadyDone {
            counts: Some(counts),
        } = &report.outcome
        {
            // Figures from the server: added without overflowing, whatever it sent.
            let totals = &mut outcome.totals;
            totals.select_count = totals.select_count.saturating_add(counts.select_count);
            totals.insert_count = totals.insert_count.saturating_add(counts.insert_count);
            totals.update_count = totals.update_count.saturating_add(counts.update_count);
            totals.delete_count = totals.delete_count.saturating_add(counts.delete_count);
        }
        progress.batch(&report, batches.len());
        outcome.batches.push(report);
    }
    outcome.exit_code = match &outcome.stop {
        Some(Stop::KeyRefused { .. }) => 3,
        Some(Stop::OfficeHours { .. }) => 4,
        Some(Stop::Unreachable { .. }) => 6,
        Some(Stop::Unexpected { .. } | Stop::Certificate { .. }) => 1,
        None if outcome
            .batches
            .iter()
            .any(|b| matches!(b.outcome, BatchOutcome::Rejected { .. })) =>
        {
            5
        }
        None => 0,
    };
    Ok(outcome)
}

/// 5xx and no answer are tried again, after 1, 2, 4… times `first_retry` (at most a minute);
/// a refused certificate is not. Also says whether a try may have reached the platform
/// unanswered (it may have processed the batch).
async fn send_with_retries(
    client: &ArchiveClient,
    run: &Run,
    index: usize,
    batch: &[i64],
    progress: &mut dyn Progress,
) -> (Result<Answer, client::Unanswered>, bool) {
    let mut wait = run.first_retry;
    let (mut attempt, mut answer_lost) = (0, false);
    loop {
        let answer = client.send(run.steps, batch).await;
        let error = match &answer {
            Ok(Answer::ServerError(status, body)) => {
                format!("the platform answered {status}: {body}")
            }
            Err(unanswered) if unanswered.certificate => return (answer, answer_lost),
            Err(unanswered) => unanswered.error.clone(),
            Ok(_) => return (answer, answer_lost),
        };
        if attempt >= run.retries {
            return (answer, answer_lost);
        }
        answer_lost |= matches!(&answer, Err(u) if u.maybe_sent);
        attempt += 1;
        progress.retry(index + 1, &error, wait);
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(60));
    }
}

/// Why no API key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the key file {0} is not a file")]
    NotAFile(PathBuf),
    #[error(
        "the key file {path} can be read by other users (mode {mode:o}); make it owner-only: chmod 600 {path}"
    )]
    Readable { path: PathBuf, mode: u32 },
    #[error("the key file {0} holds no key")]
    Empty(PathBuf),
    #[error(
        "no API key: pass --key-file FILE (owner-only), or store it once with `softphone-bridge leads key set` (reads it from standard input)"
    )]
    None,
    #[error("no key on standard input")]
    NoneOnStdin,
    #[error("the OS keyring: {0}")]
    Keyring(#[from] crate::secrets::VaultError),
}

/// The OS keyring's entries of the CLI (`leads key set`, `leads key forget`).
pub fn keyring() -> Result<crate::secrets::Vault, KeyError> {
    crate::secrets::prepare_process();
    Ok(crate::secrets::Vault::os(KEYRING_INSTANCE)?)
}

/// Reads the API key: from `file` (owner-only, as ssh asks of its keys: a key others can read
/// is refused), else from the OS keyring (`leads key set`).
pub fn read_key(file: Option<&Path>) -> Result<Secret, KeyError> {
    let Some(file) = file else {
        return keyring()?
            .get(KEYRING_NAME)?
            .map(Secret::new)
            .ok_or(KeyError::None);
    };
    use std::io::Read;
    let cannot = |source| KeyError::Read {
        path: file.to_owned(),
        source,
    };
    // A regular file only: a FIFO would block the run at `open` (a file swapped for one
    // between this check and the open still could; the key's folder is the user's own).
    if !std::fs::metadata(file).map_err(cannot)?.is_file() {
        return Err(KeyError::NotAFile(file.to_owned()));
    }
    let opened = std::fs::File::open(file).map_err(cannot)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = opened.metadata().map_err(cannot)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Readable {
                path: file.to_owned(),
                mode: mode & 0o777,
            });
        }
    }
    let mut text = String::new();
    opened
        .take(4096)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    match text.trim() {
        "" => Err(KeyError::Empty(file.to_owned())),
        key => Ok(Secret::new(key)),
    }
}
