//! Which web origins may drive the phone: those IT allows in config, the daemon's own pages,
//! and those the agent approved. Everything else is refused and listed as pending approval.

mod store;

pub use store::{ApprovalStore, StoreError, StoredOrigins};

use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// A web origin, normalized: lower-case scheme and host, default port left out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(String);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OriginError {
    #[error("the opaque origin `null` cannot be allowed")]
    Null,
    #[error("expected scheme://host[:port]")]
    Shape,
    #[error("an origin has no path, query or user info")]
    Extra,
    #[error("invalid port")]
    Port,
    #[error("invalid host")]
    Host,
}

impl Origin {
    pub fn parse(text: &str) -> Result<Self, OriginError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("null") {
            return Err(OriginError::Null);
        }
        let (scheme, rest) = text.split_once("://").ok_or(OriginError::Shape)?;
        let scheme = scheme.to_ascii_lowercase();
        let scheme_ok = scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err(OriginError::Shape);
        }
        if rest.contains(['/', '?', '#', '@']) {
            return Err(OriginError::Extra);
        }
        let (host, port) = split_host_port(rest)?;
        let host = host.to_ascii_lowercase();
        let host_ok = !host.is_empty()
            && host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
            });
        if !host_ok {
            return Err(OriginError::Host);
        }
        let default_port = match scheme.as_str() {
            "https" | "wss" => Some(443),
            "http" | "ws" => Some(80),
            _ => None,
        };
        Ok(match port {
            Some(p) if Some(p) != default_port => Self(format!("{scheme}://{host}:{p}")),
            _ => Self(format!("{scheme}://{host}")),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host, lower-case, IPv6 literals in brackets (`[::1]`).
    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map_or("", |(_, rest)| rest);
        // Parsed once already, so this cannot fail; an empty host would only mean "not local".
        split_host_port(rest).map_or("", |(host, _)| host)
    }

    /// The site, for grouping origins a wildcard DNS name can multiply: the last two labels of
    /// the host (`evil.example` for `https://x1.evil.example:8443`), or the whole IP address.
    pub fn site(&self) -> &str {
        let host = self.host();
        if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
            return host;
        }
        match host.rmatch_indices('.').nth(1) {
            Some((dot, _)) => &host[dot + 1..],
            None => host,
        }
    }

    /// `http://` on a network host: the page itself could be altered on the way, so the agent may
    /// not approve it (IT may still list one, with a warning at start). `http://localhost`,
    /// `127.0.0.1` and `[::1]` never cross a network (browsers count them as secure contexts too),
    /// so a developer's local CRM can still be approved.
    pub fn is_insecure(&self) -> bool {
        self.0.starts_with("http://") && !matches!(self.host(), "localhost" | "127.0.0.1" | "[::1]")
    }
}

fn split_host_port(rest: &str) -> Result<(&str, Option<u16>), OriginError> {
    // IPv6 literal: [::1]:port
    if rest.starts_with('[') {
        let end = rest.find(']').ok_or(OriginError::Host)?;
        let (host, after) = rest.split_at(end + 1);
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some(p.parse().map_err(|_| OriginError::Port)?))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(OriginError::Host),
        };
    }
    match rest.rsplit_once(':') {
        Some((host, p)) => Ok((host, Some(p.parse().map_err(|_| OriginError::Port)?))),
        None => Ok((rest, None)),
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The answer for one origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Not (yet) approved; now listed for the agent to decide.
    Pending,
    Denied,
    /// A plain `http://` origin: never recorded, never approvable.
    Insecure,
}

/// The origin rules of a running daemon. Cheap to clone; the approval store behind it is
/// shared with the tray.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    configured: Arc<Vec<Origin>>,
    own: Arc<Vec<Origin>>,
    store: Arc<Mutex<ApprovalStore>>,
    /// Bumped whenever the approvals change, so open connections re-check their origin.
    changes: Arc<watch::Sender<u64>>,
    /// The approved origins at the last refresh.
    approved: Arc<Mutex<Vec<String>>>,
}

impl OriginPolicy {
    pub fn new(configured: Vec<Origin>, port: u16, store: ApprovalStore) -> Self {
        let own = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .map(|host| Origin(format!("https://{host}:{port}")))
            .collect();
        Self {
            configured: Arc::new(configured),
            own: Arc::new(own),
            store: Arc::new(Mutex::new(store)),
            changes: Arc::new(watch::channel(0).0),
            approved: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// True for the daemon's own pages (`/demo`, `/bridge.html`).
    pub fn is_own(&self, origin: &Origin) -> bool {
        self.own.contains(origin)
    }

    /// The origins that may embed the daemon's agent panel: IT's and the agent's approved ones.
    pub fn embedders(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .configured
            .iter()
            .map(|o| o.as_str().to_owned())
            .collect();
        if let Ok(store) = self.store.lock() {
            all.extend(store.origins().approved.iter().cloned());
        }
        all
    }

    /// Decides, and records an unknown origin as pending.
    pub fn check(&self, origin: &Origin) -> Verdict {
        if self.is_own(origin) || self.configured.contains(origin) {
            return Verdict::Allowed;
        }
        if origin.is_insecure() {
            return Verdict::Insecure;
        }
        let Ok(mut store) = self.store.lock() else {
            return Verdict::Denied;
        };
        store.check_and_record(origin)
    }

    /// Whether an origin that was allowed still is (the agent may have denied or forgotten it
    /// since); records nothing.
    pub fn still_allowed(&self, origin: &Origin) -> bool {
        if self.is_own(origin) || self.configured.contains(origin) {
            return true;
        }
        let Ok(store) = self.store.lock() else {
            return false;
        };
        store
            .origins()
            .approved
            .iter()
            .any(|o| o == origin.as_str())
    }

    /// Rereads the approvals if the file changed (the CLI) or the tray changed them, and tells
    /// open connections when anything did. Returns the origins no longer approved since the last
    /// refresh (their replay history must start afresh if they are approved again).
    pub fn refresh(&self) -> Vec<Origin> {
        let (revision, approved) = match self.store.lock() {
            Ok(mut store) => {
                if let Err(e) = store.reload() {
                    tracing::warn!("{e}; keeping the approvals already loaded");
                }
                (store.revision(), store.origins().approved.clone())
            }
            Err(_) => return Vec::new(),
        };
        let mut revoked = Vec::new();
        if let Ok(mut last) = self.approved.lock() {
            revoked = last
                .iter()
                .filter(|o| !approved.contains(o))
                .filter_map(|o| Origin::parse(o).ok())
                .collect();
            *last = approved;
        }
        self.changes.send_if_modified(|seen| {
            let changed = *seen != revision;
            *seen = revision;
            changed
        });
        revoked
    }

    /// Fires after each change of the approvals that [`Self::refresh`] noticed.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn store(&self) -> &Arc<Mutex<ApprovalStore>> {
        &self.store
    }
}

#[cfg(test)]
mod tests;
