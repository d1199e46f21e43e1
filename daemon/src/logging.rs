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

/// Added to every filter, whatever `level` or `RUST_LOG` say: at debug and trace these crates
/// log whole WebSocket frames (a page's `provision` with its password, SIP-over-WebSocket
/// `Authorization` lines) and TURN credentials. No frame payload may reach a log.
const NEVER_VERBOSE: [&str; 6] = [
    "tungstenite=info",
    "tokio_tungstenite=info",
    "rustls=info",
    "tokio_rustls=info",
    "rtc_turn=info",
    "rtc_stun=info",
];

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
        if let Some(handle) = &self.filter
            && let Ok(new) = EnvFilter::try_new(directive(level))
        {
            let _ = handle.reload(filter(new));
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
        if !for_pages(metadata.target(), *metadata.level()) {
            return;
        }
        let mut text = MessageText::default();
        event.record(&mut text);
        let _ = self.lines.try_send(LogLine {
            level: metadata.level().as_str().to_ascii_lowercase(),
            message: redact(&text.0).into_owned(),
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

/// Whether a log line may become a `log` event. Lines that sending an event causes (the WebSocket
/// session, the event driver, the WebSocket and TLS crates) never do, or each event sent would
/// log a line that becomes an event. Other crates' lines only when they are warnings or errors.
fn for_pages(target: &str, level: tracing::Level) -> bool {
    const OWN: [&str; 2] = ["softphone_bridge", "sip_core"];
    const FEEDBACK: [&str; 2] = ["softphone_bridge::api", "softphone_bridge::phone::driver"];
    if FEEDBACK.iter().any(|t| target.starts_with(t)) {
        return false;
    }
    OWN.iter().any(|t| target.starts_with(t)) || level <= tracing::Level::WARN
}

/// Hides what must never be logged even if some code formats it: SIP `Authorization` and
/// `Proxy-Authorization` values (the digest response), `password`/`auth_key`/`credential`
/// values (JSON, `key = value`, `key: value`, escaped or not), and SDES keys (`inline:`).
///
/// One pass over the line: each match scans only its own value, so a hostile line full of
/// keywords costs linear time, and a quoted value ends at its closing quote (commas and braces
/// inside it stay hidden).
pub fn redact(line: &str) -> std::borrow::Cow<'_, str> {
    const KEYS: [&str; 5] = [
        "authorization:",
        "password",
        "auth_key",
        "credential",
        "inline:",
    ];
    let lower = line.to_ascii_lowercase();
    if !KEYS.iter().any(|k| lower.contains(k)) {
        return std::borrow::Cow::Borrowed(line);
    }
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        let Some(key) = KEYS
            .iter()
            .find(|k| lower.as_bytes()[i..].starts_with(k.as_bytes()))
        else {
            i += 1;
            continue;
        };
        let mut at = i + key.len();
        if !key.ends_with(':') {
            // `"password": "…"`, `\"password\":\"…\"`, `password = …`, `password=…`.
            let skip = bytes[at..]
                .iter()
                .take_while(|b| matches!(b, b'"' | b'\\' | b' '))
                .count();
            let separator = bytes.get(at + skip).filter(|b| matches!(b, b':' | b'='));
            if separator.is_none() {
                i = at;
                continue;
            }
            at += skip + 1;
        }
        at += bytes[at..].iter().take_while(|b| **b == b' ').count();
        let end = value_end(bytes, at, key.ends_with(':') && *key != "inline:");
        out.push_str(&line[copied..at]);
        out.push_str("<redacted>");
        copied = end;
        i = end.max(at + 1);
    }
    out.push_str(&line[copied.min(line.len())..]);
    std::borrow::Cow::Owned(out)
}

/// Where a secret value starting at `at` ends. A header value (`whole_line`) runs to the end of
/// its line (a real or an escaped line break). A quoted value (`"…"` or `\"…\"`) runs to its
/// closing quote; any other to a space, comma, brace, quote or line break.
fn value_end(bytes: &[u8], at: usize, whole_line: bool) -> usize {
    let rest = &bytes[at..];
    let is_break = |j: usize| {
        matches!(rest[j], b'\r' | b'\n')
            || (rest[j] == b'\\' && matches!(rest.get(j + 1), Some(b'r' | b'n')))
    };
    if whole_line {
        return at + (0..rest.len()).find(|&j| is_break(j)).unwrap_or(rest.len());
    }
    let escaped_quote = rest.starts_with(b"\\\"");
    if escaped_quote || rest.first() == Some(&b'"') {
        let open = if escaped_quote { 2 } else { 1 };
        let mut j = open;
        while j < rest.len() {
            match rest[j] {
                // `\\"` closes an escaped quote; `\x` inside a plain quoted value is an escape.
                b'\\' if escaped_quote && rest.get(j + 1) == Some(&b'"') => return at + j,
                b'\\' => j += 2,
                b'"' if !escaped_quote => return at + j + 1,
                b'\r' | b'\n' => return at + j,
                _ => j += 1,
            }
        }
        return bytes.len();
    }
    at + (0..rest.len())
        .find(|&j| is_break(j) || matches!(rest[j], b' ' | b',' | b'}' | b'"' | b';'))
        .unwrap_or(rest.len())
}

/// The log file, kept under its cap while the daemon runs: at the cap it becomes `….log.1`
/// (replacing an older one) and a fresh owner-only file starts, so nothing a peer can make the
/// daemon log (refused connections, a chatty PBX) fills the agent's disk.
struct CappedFile {
    path: std::path::PathBuf,
    file: std::fs::File,
    written: u64,
    cap: u64,
}

impl std::io::Write for CappedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() as u64 > self.cap {
            let mut older = self.path.clone().into_os_string();
            older.push(".1");
            std::fs::rename(&self.path, &older)?;
            let (file, _) = private_files::open(&self.path, private_files::Existing::Truncate)
                .map_err(std::io::Error::other)?;
            self.file = file;
            self.written = 0;
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A writer that redacts each formatted line before it reaches stderr or the file.
struct Redacting<W>(W);

impl<W: std::io::Write> std::io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Makes [`Redacting`] writers for tracing's formatter.
struct RedactingWriter<M>(M);

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for RedactingWriter<M>
{
    type Writer = Redacting<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        Redacting(self.0.make_writer())
    }
}

/// The filter for `level` (or `RUST_LOG`), with [`NEVER_VERBOSE`] on top.
fn filter(base: EnvFilter) -> EnvFilter {
    NEVER_VERBOSE
        .iter()
        .filter_map(|d| d.parse().ok())
        .fold(base, EnvFilter::add_directive)
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
    let base = from_env
        .or_else(|| EnvFilter::try_new(directive(level)).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter(base));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(RedactingWriter(std::io::stderr))
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
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        let capped = CappedFile {
            path,
            file,
            written,
            cap: MAX_LOG_BYTES,
        };
        Some(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_target(false)
                .with_writer(RedactingWriter(Mutex::new(capped))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_every_shape() {
        let cases = [
            (
                "SIP out: Authorization: Digest username=\"1001\", response=\"abc\"\r\nVia: x",
                "abc",
            ),
            (
                r#"frame {"action":"provision","params":{"password":"hunter2","auth_key":"k-7f3a"}}"#,
                "hunter2",
            ),
            (
                r#"frame {"action":"provision","params":{"password":"hunter2","auth_key":"k-7f3a"}}"#,
                "k-7f3a",
            ),
            (r#"debug {\"password\": \"hunter2\"}"#, "hunter2"),
            ("Proxy-Authorization: Digest response=\"zzz\"", "zzz"),
            ("password = s3cret", "s3cret"),
            (r#"{"password":"abc,def}ghi"}"#, "def"),
            (r#"{"password":"abc,def}ghi"}"#, "ghi"),
            (
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20",
                "WVNfX19",
            ),
            (r#"turn {"credential":"t0rn-pw"}"#, "t0rn-pw"),
        ];
        for (line, secret) in cases {
            let shown = redact(line);
            assert!(!shown.contains(secret), "{line} -> {shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
        assert_eq!(redact("REGISTER sip:x SIP/2.0"), "REGISTER sip:x SIP/2.0");
        // Any text, any characters: no panic.
        assert!(redact("ünïcødé password: ñ authorization: é").contains("<redacted>"));
        for odd in [
            "password",
            "password=",
            r#"\"password\":\""#,
            "authorization:",
            "inline:",
            r#"é password:"é"#,
        ] {
            let _ = redact(odd);
        }
        // A hostile line full of keywords: every value hidden (one pass by construction).
        let hostile = "password=x,".repeat(20_000);
        assert!(!redact(&hostile).contains('x'));
    }

    #[test]
    fn the_log_file_rolls_over_at_its_cap() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("softphone-bridge.log");
        let (file, _) = private_files::open(&path, private_files::Existing::Append).expect("open");
        let mut capped = CappedFile {
            path: path.clone(),
            file,
            written: 0,
            cap: 100,
        };
        for _ in 0..25 {
            capped.write_all(b"0123456789\n").expect("write");
        }
        let now = std::fs::metadata(&path).expect("log").len();
        let older = std::fs::metadata(dir.path().join("softphone-bridge.log.1"))
            .expect("rolled")
            .len();
        assert!(now <= 100 && older <= 100, "{now} {older}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("log").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn lines_from_sending_events_never_become_events() {
        use tracing::Level;
        assert!(!for_pages("softphone_bridge::api::session", Level::INFO));
        assert!(!for_pages("softphone_bridge::phone::driver", Level::WARN));
        assert!(!for_pages("tungstenite::protocol", Level::TRACE));
        assert!(!for_pages("tokio_tungstenite", Level::DEBUG));
        assert!(for_pages("softphone_bridge::line::runtime", Level::DEBUG));
        assert!(for_pages("rtc_ice::agent", Level::WARN));
    }
}
