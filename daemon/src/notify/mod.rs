//! Notifications (seed `002_…`, "set notification endpoint"): every event the store holds is
//! POSTed as JSON to `[notifications] url`, in order, each signed with HMAC-SHA256 over its
//! timestamp and body. The cursor (the last event the endpoint took) is kept in the store, so
//! delivery survives restarts and crashes: at least once, in `seq` order.
//!
//! A task with its own read connection to the store; it wakes when the journal stores events,
//! and retries one event with back-off until the endpoint answers 2xx. Redirects are not
//! followed (a 3xx is a failure), the response body is never read, and every request has a
//! timeout, so a hanging or hostile endpoint costs one connection and no memory.

mod delivery;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use tokio::sync::watch;

pub use delivery::{Backoff, signature};

use crate::config::{NotificationsConfig, Secret};
use crate::store::{Mark, Store, StoredEvent};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("[notifications] url is not a valid URL")]
    Url,
    #[error("[notifications] tls_fingerprint: {0}")]
    Fingerprint(#[from] crate::line::transport::tls::FingerprintError),
    #[error("[notifications]: {0}")]
    Tls(#[from] crate::line::transport::tls::TlsError),
    #[error("[notifications]: cannot set up the HTTP client: {0}")]
    Client(reqwest::Error),
}

/// Where and how events are posted.
pub struct Endpoint {
    url: reqwest::Url,
    /// Scheme, host and port only, for logs: the path or query may carry a token.
    shown: String,
    /// Names the endpoint's cursor in the store: a digest of the whole URL, never the URL.
    key: String,
    secret: Secret,
    client: reqwest::Client,
    retry_first: Duration,
    retry_max: Duration,
}

impl Endpoint {
    /// `None` when no `[notifications] url` is set. The config layer checked the URL's form.
    pub fn from_config(config: &NotificationsConfig) -> Result<Option<Self>, NotifyError> {
        let Some(text) = &config.url else {
            return Ok(None);
        };
        let url = reqwest::Url::parse(text).map_err(|_| NotifyError::Url)?;
        if url.scheme() != "https" {
            return Err(NotifyError::Url);
        }
        let shown = format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        let key = format!(
            "notify:{}",
            digest.as_ref()[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let pin = config
            .tls_fingerprint
            .as_deref()
            .map(crate::line::transport::tls::CertFingerprint::parse)
            .transpose()?;
        let tls = crate::line::transport::tls::client_config(crate::line::transport::tls::Trust {
            pin,
            ca_file: config.ca_file.as_deref(),
        })?;
        let timeout = Duration::from_secs(u64::from(config.timeout_seconds.max(1)));
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(1)
            // Events go to the endpoint and nowhere else (no HTTP(S)_PROXY from the environment).
            .no_proxy()
            .user_agent(concat!("softphone-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(NotifyError::Client)?;
        Ok(Some(Self {
            url,
            shown,
            key,
            secret: config.secret.clone(),
            client,
            retry_first: Duration::from_millis(config.retry_first_ms.max(1)),
            retry_max: Duration::from_secs(u64::from(config.retry_max_seconds.max(1))),
        }))
    }

    /// One attempt at delivering `event`; why it failed otherwise.
    async fn post(&self, instance: &str, event: &StoredEvent) -> Result<(), String> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(
                "X-Softphone-Signature",
                signature(self.secret.expose().as_bytes(), now, &event.json),
            )
            .header("X-Softphone-Event", event.name.as_str())
            .header("X-Softphone-Seq", event.seq)
            .header("X-Softphone-Instance", instance)
            .body(event.json.clone())
            .send()
            .await
            .map_err(|e| crate::http::describe(&e))?;
        let status = response.status();
        // The body is never read: an endpoint cannot make us hold anything.
        drop(response);
        if status.is_success() {
            Ok(())
        } else if status.is_redirection() {
            Err(format!("it answered {status}; redirects are not followed"))
        } else {
            Err(format!("it answered {status}"))
        }
    }
}

impl Endpoint {
    /// The key of its cursor among the store's marks.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Starts posting the store's events to `endpoint`; `stored` says when new ones were written.
pub fn spawn(endpoint: Endpoint, store: PathBuf, instance: String, stored: watch::Receiver<u64>) {
    tokio::spawn(run(endpoint, store, instance, stored));
}

/// Events read from the store at a time.
const BATCH: usize = 64;

/// Runs `work` with the store off the runtime's threads (SQLite blocks), and hands it back.
async fn with_store<T: Send + 'static>(
    store: Store,
    work: impl FnOnce(&mut Store) -> T + Send + 'static,
) -> Option<(Store, T)> {
    tokio::task::spawn_blocking(move || {
        let mut store = store;
        let out = work(&mut store);
        (store, out)
    })
    .await
    .ok()
}

async fn run(
    endpoint: Endpoint,
    path: PathBuf,
    instance: String,
    mut stored: watch::Receiver<u64>,
) {
    let opened = tokio::task::spawn_blocking(move || Store::open_reader(&path)).await;
    let mut store = match opened {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => {
            tracing::error!(endpoint = %endpoint.shown, "notifications are off: {e}");
            return;
        }
        Err(_) => return,
    };
    // The cursor is kept per endpoint: a new endpoint starts with the events from now on. A
    // cursor that cannot be read is retried, never replaced (that would skip events).
    let key = endpoint.key.clone();
    let mut mark = loop {
        let key = key.clone();
        let Some((back, found)) = with_store(store, move |s| {
            s.mark(&key).and_then(|mark| match mark {
                Some(mark) => Ok(mark),
                None => {
                    let last = s.last_seq()?;
                    let mark = Mark {
                        floor: last,
                        acked: last,
                        since_ms: time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
                    };
                    s.set_mark(&key, mark)?;
                    Ok(mark)
                }
            })
        })
        .await
        else {
            return;
        };
        store = back;
        match found {
            Ok(mark) => break mark,
            Err(e) => {
                tracing::warn!(endpoint = %endpoint.shown, "notifications: {e}; trying again");
                tokio::time::sleep(endpoint.retry_max).await;
            }
        }
    };
    tracing::info!(endpoint = %endpoint.shown, from_seq = mark.acked + 1, "posting events to the notification endpoint");
    let mut backoff = Backoff::new(endpoint.retry_first, endpoint.retry_max);
    loop {
        let after = mark.acked;
        let Some((back, batch)) = with_store(store, move |s| s.events_after(after, BATCH)).await
        else {
            return;
        };
        store = back;
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!("notifications: {e}");
                tokio::time::sleep(endpoint.retry_max).await;
                continue;
            }
        };
        let Some(first) = batch.first() else {
            if stored.changed().await.is_err() {
                return;
            }
            continue;
        };
        if first.seq > mark.acked + 1 {
            tracing::warn!(
                endpoint = %endpoint.shown,
                "{} events are not in the store (dropped by [store] retention) and were not posted",
                first.seq - mark.acked - 1
            );
        }
        for event in batch {
            loop {
                match endpoint.post(&instance, &event).await {
                    Ok(()) => {
                        if backoff.failures > 0 {
                            tracing::info!(endpoint = %endpoint.shown, "the notification endpoint takes events again");
                        }
                        backoff.succeeded();
                        break;
                    }
                    Err(why) => {
                        let wait = backoff.failed(jitter());
                        if backoff.worth_logging() {
                            tracing::warn!(
                                endpoint = %endpoint.shown,
                                attempts = backoff.failures,
                                "event {} not delivered: {why}; trying again in {:.1} s",
                                event.seq,
                                wait.as_secs_f64()
                            );
                        }
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            mark.acked = event.seq;
            // Kept after each event: a restart repeats at most the one in flight.
            let (key, saved) = (key.clone(), mark);
            let Some((back, written)) = with_store(store, move |s| s.set_mark(&key, saved)).await
            else {
                return;
            };
            store = back;
            if let Err(e) = written {
                tracing::debug!("{e}");
            }
        }
    }
}

/// A number in 0..1 from the OS generator, to spread retries.
fn jitter() -> f64 {
    let mut byte = [0u8; 1];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    f64::from(byte[0]) / 255.0
}
