//! Agent approvals, kept in `DATA_DIR/origins.json` so they survive restarts. The CLI edits the
//! same file; the daemon rereads it when it changes, so `origins approve` takes effect at once.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{Origin, Verdict};

/// More pending entries than this are not recorded, so a hostile page cannot grow the file.
const MAX_PENDING: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoredOrigins {
    pub approved: Vec<String>,
    pub denied: Vec<String>,
    pub pending: Vec<String>,
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
}

#[derive(Debug)]
pub struct ApprovalStore {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    origins: StoredOrigins,
}

impl ApprovalStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut store = Self {
            path: path.to_owned(),
            stamp: None,
            origins: StoredOrigins::default(),
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
        if !self.origins.pending.contains(&name) && self.origins.pending.len() < MAX_PENDING {
            tracing::info!(origin = %name, "origin awaits approval");
            self.origins.pending.push(name);
            if let Err(e) = self.save() {
                tracing::warn!("{e}");
            }
        }
        Verdict::Pending
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
        self.save()?;
        Ok(origin)
    }

    fn decide(&mut self, origin: &str, approve: bool) -> Result<Origin, StoreError> {
        let origin = Origin::parse(origin).map_err(|e| StoreError::BadOrigin(origin.into(), e))?;
        self.reload_if_changed()?;
        let name = origin.as_str().to_owned();
        for list in [
            &mut self.origins.approved,
            &mut self.origins.denied,
            &mut self.origins.pending,
        ] {
            list.retain(|o| *o != name);
        }
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
        Ok(())
    }
}
