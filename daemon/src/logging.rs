//! Log setup: human-readable lines on stderr and in `DATA_DIR/logs/softphone-bridge.log`, and —
//! when the seed's `debug_html` is on — a copy of each line for pages (`log` events). The seed's
//! `debug_console` raises verbosity to debug at runtime. Passwords and auth keys never reach here:
//! they are [`crate::config::Secret`]s.

use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::private_files::{self, Existing};

/// A log file larger than this is started afresh at the next daemon start.
const MAX_LOG_BYTES: u64 = 10 * 1024 * 1024;
/// Lines waiting for the phone task to hand them to pages; beyond this they are dropped.
const PAGE_QUEUE: usize = 256;

// The WebRTC stack logs every DTLS record and STUN transaction: keep it to what helps an IT
// person (connection states, TURN allocation) unless a full filter is given.
const QUIET_WEBRTC: &str = "rtc=warn,rtc_dtls=error,rtc_sctp=warn,rtc_srtp=warn,rtc_interceptor=warn,rtc_ice=info,rtc_turn=info,webrtc=info";

/// One log line for pages.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// Runtime control over logging: verbosity (`debug_console`) and the page copy (`debug_html`).
#[derive(Clone)]
pub struct LogControl {
    filter: Option<reload::Handle<EnvFilter, Registry>>,
    level: String,
    tap: Arc<PageTap>,
}

impl LogControl {
    /// `debug_console`: debug verbosity on, or back to the configured level.
    pub fn set_verbose(&self, verbose: bool) {
        let level = if verbose {
            "debug"
        } else {
            self.level.as_str()
        };
        if let Some(filter) = &self.filter
            && let Ok(new) = EnvFilter::try_new(directive(level))
        {
            let _ = filter.reload(new);
        }
    }

    /// `debug_html`: copy log lines to pages.
    pub fn set_pages(&self, on: bool) {
        self.tap.enabled.store(on, Ordering::Relaxed);
    }
}

/// Copies formatted events to the phone task while enabled.
struct PageTap {
    enabled: AtomicBool,
    lines: mpsc::Sender<LogLine>,
}

impl<S: tracing::Subscriber> Layer<S> for PageTap {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let metadata = event.metadata();
        // Publishing a log event logs at debug itself: never feed pages from that.
        if metadata
            .target()
            .starts_with("softphone_bridge::phone::driver")
        {
            return;
        }
        let mut text = MessageText::default();
        event.record(&mut text);
        let _ = self.lines.try_send(LogLine {
            level: metadata.level().as_str().to_ascii_lowercase(),
            message: text.0,
        });
    }
}

/// `message` first, then `key=value` for the other fields, as the console shows them.
#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push_str(&rest);
            }
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

fn directive(level: &str) -> String {
    if level.contains('=') {
        level.to_owned()
    } else {
        format!("{level},{QUIET_WEBRTC}")
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level` (and runtime changes).
/// Returns the control handle and the lines meant for pages.
pub fn init(level: &str, log_dir: Option<&Path>) -> (LogControl, mpsc::Receiver<LogLine>) {
    let from_env = EnvFilter::try_from_default_env().ok();
    let pinned = from_env.is_some();
    let filter = from_env
        .or_else(|| EnvFilter::try_new(directive(level)).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    // Logs hold numbers and caller IDs: owner-only, like everything the daemon writes. What an
    // older install left loose is tightened here and reported once the subscriber is set up.
    let mut tightened = Vec::new();
    let file = log_dir.and_then(|dir| {
        tightened.extend(private_files::create_dir(dir).ok()?);
        let path = dir.join("softphone-bridge.log");
        let too_big = std::fs::metadata(&path)
            .map(|m| m.len() > MAX_LOG_BYTES)
            .unwrap_or(false);
        let existing = if too_big {
            Existing::Truncate
        } else {
            Existing::Append
        };
        let (file, loose) = private_files::open(&path, existing).ok()?;
        tightened.extend(loose);
        Some(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_target(false)
                .with_writer(Mutex::new(file)),
        )
    });
    let (sender, lines) = mpsc::channel(PAGE_QUEUE);
    let tap = Arc::new(PageTap {
        enabled: AtomicBool::new(false),
        lines: sender,
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .with(TapLayer(tap.clone()))
        .try_init();
    for path in &tightened {
        path.warn();
    }
    let control = LogControl {
        filter: (!pinned).then_some(handle),
        level: level.to_owned(),
        tap,
    };
    (control, lines)
}

/// The shared tap as a layer (the control keeps the other reference).
struct TapLayer(Arc<PageTap>);

impl<S: tracing::Subscriber> Layer<S> for TapLayer {
    fn on_event(&self, event: &tracing::Event<'_>, context: Context<'_, S>) {
        self.0.on_event(event, context);
    }
}
