//! Agent approvals, kept in `DATA_DIR/origins.json` so they survive restarts. The CLI edits the
//! same file; the daemon rereads it when it changes, so `origins approve` takes effect at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Origin, Verdict};

/// Pending entries kept; the oldest goes when a new one comes, so a flood of junk origins cannot
/// crowd out a real CRM that asks again (the shim retries), and the file stays small.
const MAX_PENDING: usize = 50;
/// Pending entries kept per site (the last two labels of the host).
const MAX_PENDING_PER_SITE: usize = 3;
/// A pending origin not seen again for this long is dropped.
const PENDING_FOR: Duration = Duration::from_secs(60 * 60);
/// A pending origin seen again is re-stamped at most this often (each stamp is a file write).
const RESTAMP_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoredOrigins {
    pub approved: Vec<String>,
    pub denied: Vec<String>,
    /// Newest first: the tray lists them in this order.
    pub pending: Vec<String>,
    /// When each pending origin last asked (seconds since the Unix epoch).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pending_seen: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid origins file: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0:?} is not an origin: {1}")]
    BadOrigin(String, super::OriginError),
    #[error(
        "{0} is a plain http:// origin: the page could be altered on the network, so it cannot be approved (IT may list it in [api] allowed_origins)"
    )]
    Insecure(String),
}

#[derive(Debug)]
pub struct ApprovalStore {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    origins: StoredOrigins,
    /// Counts changes (loaded or made here), so watchers can tell something changed.
    revision: u64,
}

impl ApprovalStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut store = Self {
            path: path.to_owned(),
            stamp: None,
            origins: StoredOrigins::default(),
            revision: 0,
        };
        store.reload_if_changed()?;
        Ok(store)
    }

    pub fn origins(&self) -> &StoredOrigins {
        &self.origins
    }

    /// The daemon's decision for an origin that is neither configured nor our own.
    pub fn check_and_record(&mut self, origin: &Origin) -> Verdict {
        if let Err(e) = self.reload_if_changed() {
            tracing::warn!("{e}; keeping the approvals already loaded");
        }
        let name = origin.as_str().to_owned();
        if self.origins.approved.contains(&name) {
            return Verdict::Allowed;
        }
        if self.origins.denied.contains(&name) {
            return Verdict::Denied;
        }
        let now = unix_now();
        let expired = self.expire_pending(now);
        let seen = self.origins.pending_seen.get(&name).copied();
        let fresh = seen.is_some_and(|at| now.saturating_sub(at) < RESTAMP_AFTER.as_secs());
        let first = self.origins.pending.first() == Some(&name);
        if !(fresh && first) || expired {
            if seen.is_none() {
                tracing::info!(origin = %name, "origin awaits approval");
            }
            self.origins.pending.retain(|o| *o != name);
            // One site (wildcard DNS: x1.evil.example, x2.evil.example …) keeps only its newest
            // few entries, so it cannot push everyone else out of the list.
            let new_site = origin.site();
            let mut same_site = 0;
            self.origins.pending.retain(|o| {
                if Origin::parse(o).map_or(true, |o| o.site() != new_site) {
                    return true;
                }
                same_site += 1;
                same_site < MAX_PENDING_PER_SITE
            });
            self.origins.pending.insert(0, name.clone());
            self.origins.pending_seen.insert(name, now);
            self.origins.pending.truncate(MAX_PENDING);
            let kept = &self.origins.pending;
            self.origins.pending_seen.retain(|o, _| kept.contains(o));
            if let Err(e) = self.save() {
                tracing::warn!("{e}");
            }
        }
        Verdict::Pending
    }

    /// Drops pending origins not seen for [`PENDING_FOR`]; true if any went.
    fn expire_pending(&mut self, now: u64) -> bool {
        let before = self.origins.pending.len();
        let seen = &self.origins.pending_seen;
        // Entries from older files have no stamp: they count as seen now.
        self.origins.pending.retain(|o| {
            seen.get(o)
                .is_none_or(|at| now.saturating_sub(*at) < PENDING_FOR.as_secs())
        });
        let kept = &self.origins.pending;
        self.origins.pending_seen.retain(|o, _| kept.contains(o));
        self.origins.pending.len() != before
    }

    /// Rereads the file if it changed since it was last read or written here.
    pub fn reload(&mut self) -> Result<(), StoreError> {
        self.reload_if_changed()
    }

    /// Counts every change of the approvals this store saw.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn approve(&mut self, origin: &str) -> Result<Origin, StoreError> {
        self.decide(origin, true)
    }

    pub fn deny(&mut self, origin: &str) -> Result<Origin, StoreError> {
        self.decide(origin, false)
    }

    /// Forgets an origin entirely (approved, denied or pending).
    pub fn forget(&mut self, origin: &str) -> Result<Origin, StoreError> {
        let origin = Origin::parse(origin).map_err(|e| StoreError::BadOrigin(origin.into(), e))?;
        self.reload_if_changed()?;
        let name = origin.as_str();
        for list in [
            &mut self.origins.approved,
            &mut self.origins.denied,
            &mut self.origins.pending,
        ] {
            list.retain(|o| o != name);
        }
        self.origins.pending_seen.remove(name);
        self.save()?;
        Ok(origin)
    }

    fn decide(&mut self, origin: &str, approve: bool) -> Result<Origin, StoreError> {
        let origin = Origin::parse(origin).map_err(|e| StoreError::BadOrigin(origin.into(), e))?;
        if approve && origin.is_insecure() {
            return Err(StoreError::Insecure(origin.to_string()));
        }
        self.reload_if_changed()?;
        let name = origin.as_str().to_owned();
        for list in [
            &mut self.origins.approved,
            &mut self.origins.denied,
            &mut self.origins.pending,
        ] {
            list.retain(|o| *o != name);
        }
        self.origins.pending_seen.remove(&name);
        if approve {
            self.origins.approved.push(name);
        } else {
            self.origins.denied.push(name);
        }
        self.save()?;
        Ok(origin)
    }

    fn reload_if_changed(&mut self) -> Result<(), StoreError> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(StoreError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        if self.stamp == Some(stamp) {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.path).map_err(|source| StoreError::Read {
            path: self.path.clone(),
            source,
        })?;
        self.origins = serde_json::from_str(&text).map_err(|source| StoreError::Format {
            path: self.path.clone(),
            source,
        })?;
        self.stamp = Some(stamp);
        self.revision += 1;
        Ok(())
    }

    /// Writes atomically (temp file, then rename) so a reader never sees half a file, and
    /// owner-only: which pages an agent uses is nobody else's business.
    fn save(&mut self) -> Result<(), StoreError> {
        let write_err = |source| StoreError::Write {
            path: self.path.clone(),
            source,
        };
        let text = serde_json::to_string_pretty(&self.origins).unwrap_or_default();
        crate::private_files::write_atomic(&self.path, text.as_bytes()).map_err(|e| {
            StoreError::Write {
                path: e.path,
                source: e.source,
            }
        })?;
        let meta = std::fs::metadata(&self.path).map_err(write_err)?;
        self.stamp = Some((
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        ));
        self.revision += 1;
        Ok(())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
