//! Log setup: human-readable lines on stderr and in `DATA_DIR/logs/softphone-bridge.log`.
//! Passwords and auth keys never reach here: they are [`crate::config::Secret`]s.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// A log file larger than this is started afresh at the next daemon start.
const MAX_LOG_BYTES: u64 = 10 * 1024 * 1024;

const QUIET_WEBRTC: &str = "rtc=warn,rtc_dtls=error,rtc_sctp=warn,rtc_srtp=warn,rtc_interceptor=warn,rtc_ice=info,rtc_turn=info,webrtc=info";

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level`.
pub fn init(level: &str, log_dir: Option<&Path>) {
    // The WebRTC stack logs every DTLS record and STUN transaction: keep it to what helps an
    // IT person (connection states, TURN allocation) unless a full filter is given.
    let directive = if level.contains('=') { level.to_owned() } else { format!("{level},{QUIET_WEBRTC}") };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(directive))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    let file = log_dir.and_then(|dir| {
        std::fs::create_dir_all(dir).ok()?;
        let path = dir.join("softphone-bridge.log");
        let too_big = std::fs::metadata(&path).map(|m| m.len() > MAX_LOG_BYTES).unwrap_or(false);
        let file = OpenOptions::new().create(true).append(!too_big).write(true).truncate(too_big).open(path).ok()?;
        Some(tracing_subscriber::fmt::layer().with_ansi(false).with_target(false).with_writer(Mutex::new(file)))
    });
    let _ = tracing_subscriber::registry().with(filter).with(stderr).with(file).try_init();
}
