//! `softphone-bridge support-bundle`: one zip an agent attaches to a helpdesk ticket.
//!
//! What a helpdesk needs to see why a phone misbehaves, and nothing an attacker could use: the
//! merged config with secrets shown as `***` (and where each key came from), the logs (written
//! redacted, and redacted again here), versions, audio devices, whether the daemon runs, the
//! certificate's fingerprint and dates, the origins' approvals, and the last 100 events. Never in
//! it: passwords and auth keys (they live in the OS keyring), private keys, recordings, the DTMF
//! digits callers pressed (PINs, card numbers), the agents' call notes, and the path and query of
//! the notification URL (webhook URLs often carry their token there).
//!
//! The zip is built in memory and written owner-only, without replacing an existing file.

use std::path::{Path, PathBuf};

use crate::config::Loaded;
use crate::run::DaemonInfo;

/// The newest events the bundle keeps.
const EVENTS: u64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot build the zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("{path} already exists; choose another --out")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One file of the bundle.
#[derive(Debug)]
pub struct Entry {
    pub name: &'static str,
    pub text: String,
}

/// Writes the bundle for the daemon of `data_dir` to `out` (or a dated name in the current
/// folder); returns where.
pub fn write(
    data_dir: &Path,
    loaded: &Loaded,
    out: Option<PathBuf>,
) -> Result<PathBuf, super::commands::CliError> {
    let entries = collect(data_dir, loaded)?;
    let bytes = zip(&entries).map_err(BundleError::from)?;
    let path = out.unwrap_or_else(default_name);
    write_new(&path, &bytes)?;
    Ok(path)
}

fn default_name() -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_default();
    PathBuf::from(format!("softphone-bridge-support-{stamp}.zip"))
}

/// Everything the bundle holds, in order.
pub fn collect(data_dir: &Path, loaded: &Loaded) -> Result<Vec<Entry>, super::commands::CliError> {
    let mut config = super::commands::config_value(loaded)?;
    if let Some(url) = config
        .get_mut("notifications")
        .and_then(|n| n.get_mut("url"))
    {
        *url = toml::Value::String(url_origin(url.as_str().unwrap_or_default()));
    }
    let mut entries = vec![
        Entry {
            name: "README.txt",
            text: README.into(),
        },
        Entry {
            name: "versions.txt",
            text: versions(),
        },
        Entry {
            name: "status.txt",
            text: status(data_dir),
        },
        Entry {
            name: "config.toml",
            // Secrets serialize as `***` (config::Secret): the file stays valid TOML.
            text: super::commands::config_render(&config, loaded, false),
        },
        Entry {
            name: "config-origins.txt",
            text: super::commands::config_render(&config, loaded, true),
        },
        Entry {
            name: "devices.txt",
            text: super::commands::devices_text(),
        },
        Entry {
            name: "events.json",
            text: events(data_dir),
        },
    ];
    if let Ok(text) = std::fs::read_to_string(data_dir.join("origins.json")) {
        entries.push(Entry {
            name: "origins.json",
            text,
        });
    }
    for (name, file) in [
        ("logs/softphone-bridge.log.1", "softphone-bridge.log.1"),
        ("logs/softphone-bridge.log", "softphone-bridge.log"),
    ] {
        if let Ok(bytes) = std::fs::read(data_dir.join("logs").join(file)) {
            entries.push(Entry {
                name,
                text: redacted(&String::from_utf8_lossy(&bytes)),
            });
        }
    }
    Ok(entries)
}

const README: &str = "softphone-bridge support bundle\n\
\n\
versions.txt        this build and the operating system\n\
status.txt          whether the daemon runs (daemon.json), its certificate's fingerprint and dates\n\
config.toml         the merged configuration, secrets shown as ***\n\
config-origins.txt  every key with the file (or default) its value came from\n\
devices.txt         the audio devices this computer offers\n\
events.json         the last 100 events the daemon numbered (calls, presence); DTMF digits and\n\
                    call notes left out\n\
origins.json        web origins approved, denied or waiting\n\
logs/               the daemon's log (rotated at 10 MB), with secrets redacted\n\
\n\
Not included: passwords and auth keys (kept in the OS keyring), private keys, recordings,\n\
the path and query of the notification URL.\n";

/// `https://hooks.example.com:8443/T0K3N?k=…` → `https://hooks.example.com:8443/…`.
fn url_origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find(['/', '?', '#']) {
        Some(end) => format!("{}/…", &url[..after_scheme + end]),
        None => url.to_owned(),
    }
}

/// What an event may carry that a helpdesk must not see: the digits a caller pressed and the
/// agent's notes are replaced by what they were (their length).
fn masked(mut message: serde_json::Value) -> serde_json::Value {
    if let Some(payload) = message.get_mut("payload").and_then(|p| p.as_object_mut()) {
        for key in ["digit", "digits", "notes"] {
            if let Some(value) = payload.get_mut(key) {
                let length = value.as_str().map_or(0, |s| s.chars().count());
                *value = serde_json::Value::String(format!("({length} characters left out)"));
            }
        }
    }
    message
}

/// The log redaction, once more: a line written by an older version is covered too.
fn redacted(text: &str) -> String {
    text.lines()
        .map(|line| crate::logging::redact(line).into_owned() + "\n")
        .collect()
}

fn versions() -> String {
    let mut out = format!(
        "softphone-bridge {}\ntarget: {} {}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let read = |path: &str| std::fs::read_to_string(path).ok();
    if let Some(release) = read("/etc/os-release") {
        let pretty = release
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned());
        if let Some(name) = pretty {
            out.push_str(&format!("os: {name}\n"));
        }
    }
    if let Some(kernel) = read("/proc/sys/kernel/osrelease") {
        out.push_str(&format!("kernel: {}\n", kernel.trim()));
    }
    out
}

fn status(data_dir: &Path) -> String {
    let mut out = match DaemonInfo::read(data_dir) {
        Some(info) => format!(
            "daemon.json: pid {}, port {}, instance {}\nprocess: {}\n",
            info.pid,
            info.port,
            info.instance,
            if Path::new(&format!("/proc/{}", info.pid)).exists() || !cfg!(target_os = "linux") {
                "present"
            } else {
                "gone (the daemon stopped without cleaning up)"
            }
        ),
        None => "daemon.json: none (the daemon is not running)\n".into(),
    };
    let about = crate::certs::CertPaths::in_data_dir(data_dir).about;
    match std::fs::read_to_string(&about)
        .ok()
        .and_then(|text| serde_json::from_str::<crate::certs::About>(&text).ok())
    {
        Some(about) => out.push_str(&format!(
            "local CA SHA-256: {}\nlocal CA created (unix): {}\nlocalhost certificate valid until (unix): {}\n",
            about.ca_sha256, about.created_unix, about.leaf_not_after_unix
        )),
        None => out.push_str("local CA: none yet\n"),
    }
    out
}

/// The newest events as a JSON array of the messages pages got (`event`, `payload`, `seq`),
/// oldest first.
fn events(data_dir: &Path) -> String {
    let path = data_dir.join(crate::store::FILE_NAME);
    let read = || -> Result<Vec<serde_json::Value>, crate::store::StoreError> {
        let store = crate::store::Store::open_reader(&path)?;
        let last = store.last_seq()?;
        let events = store.events_after(last.saturating_sub(EVENTS), EVENTS as usize)?;
        Ok(events
            .into_iter()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.json)
                    .map(masked)
                    .unwrap_or_else(|_| serde_json::json!({"seq": e.seq, "event": e.name}))
            })
            .collect())
    };
    match read() {
        Ok(events) => serde_json::to_string_pretty(&events).unwrap_or_default(),
        Err(e) => serde_json::json!({ "unavailable": e.to_string() }).to_string(),
    }
}

/// The entries as a zip (deflated), built in memory.
pub fn zip(entries: &[Entry]) -> Result<Vec<u8>, zip::result::ZipError> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o600);
    for entry in entries {
        writer.start_file(entry.name, options)?;
        writer.write_all(entry.text.as_bytes())?;
    }
    Ok(writer.finish()?.into_inner())
}

/// Owner-only, and never over an existing file (a link planted there is not followed either).
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => BundleError::Exists {
            path: path.to_owned(),
        },
        _ => BundleError::Write {
            path: path.to_owned(),
            source,
        },
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| BundleError::Write {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_keeps_only_where_it_goes() {
        assert_eq!(
            url_origin("https://hooks.example.com:8443/T0K3N?k=1"),
            "https://hooks.example.com:8443/…"
        );
        assert_eq!(
            url_origin("https://hooks.example.com?token=1"),
            "https://hooks.example.com/…"
        );
        assert_eq!(
            url_origin("https://hooks.example.com"),
            "https://hooks.example.com"
        );
    }

    #[test]
    fn digits_and_notes_are_left_out_of_events() {
        let dtmf = masked(serde_json::json!({
            "event": "dtmfReceived", "seq": 4,
            "payload": {"conversationId": "c1", "digit": "7"}
        }));
        assert_eq!(dtmf["payload"]["digit"], "(1 characters left out)");
        assert_eq!(dtmf["payload"]["conversationId"], "c1");
        let notes = masked(serde_json::json!({
            "event": "callNotesSubmitted", "seq": 5,
            "payload": {"conversationId": "c1", "disposition": "Sale", "notes": "card 4111 1111"}
        }));
        assert_eq!(notes["payload"]["notes"], "(14 characters left out)");
        assert_eq!(notes["payload"]["disposition"], "Sale");
    }
}
