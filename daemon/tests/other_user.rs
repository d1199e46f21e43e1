//! Another OS user on the same machine (a terminal server): the real daemon refuses its
//! connections even with an allowed `Origin`, and none of the daemon's files are readable by it.
//!
//! The other user is a throwaway system account made with `useradd` when missing; its client is
//! Debian's `python3` (ssl + socket) run through `setpriv`. Both need root, as in CI: without root
//! or these tools the connection test is skipped with a message saying why.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{CRM, Daemon, eventually};

/// The throwaway account playing "another agent on the terminal server".
const OTHER_USER: &str = "sb-test-other";
const PYTHON: &str = "/usr/bin/python3";
const SETPRIV: &str = "/usr/bin/setpriv";

/// Connects to `host:port` over TLS (trusting only the CA in `$CA_PEM`) and asks for a WebSocket
/// upgrade with the allowed `Origin`. Prints the status line, or `refused <why>` when the daemon
/// closed the connection before answering. The socket timeout only bounds a hung daemon.
const CLIENT: &str = r#"
import os, socket, ssl, sys
host, port, origin = sys.argv[1], int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cadata=os.environ["CA_PEM"])
raw = socket.create_connection((host, port), timeout=20)
try:
    tls = context.wrap_socket(raw, server_hostname=host)
    tls.sendall((
        "GET /ws HTTP/1.1\r\nHost: localhost:%d\r\nOrigin: %s\r\nConnection: Upgrade\r\n"
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" % (port, origin)).encode())
    data = b""
    while b"\r\n" not in data:
        chunk = tls.recv(4096)
        if not chunk:
            break
        data += chunk
except (OSError, ssl.SSLError) as e:
    print("refused", type(e).__name__)
    sys.exit(0)
print(data.split(b"\r\n", 1)[0].decode() if data else "refused EOF")
"#;

/// The uid and gid of the throwaway user, created if missing; `None` (with the reason printed)
/// when this machine cannot run the test.
fn other_user() -> Option<(u32, u32)> {
    let own_uid = softphone_bridge::private_files::own_uid().expect("/proc/self");
    if own_uid != 0 {
        eprintln!("SKIPPED: needs root to create and switch to another OS user (uid {own_uid})");
        return None;
    }
    for tool in [SETPRIV, PYTHON] {
        if !Path::new(tool).exists() {
            eprintln!("SKIPPED: {tool} is missing (apt-get install util-linux python3)");
            return None;
        }
    }
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, OTHER_USER]).output().ok()?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .ok()
    };
    if id("-u").is_none() {
        // A second test binary may create it at the same moment: its "already exists" is fine.
        let _ = Command::new("useradd")
            .args(["-r", "-M", "-s", "/usr/sbin/nologin", OTHER_USER])
            .status();
    }
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) if uid != own_uid => Some((uid, gid)),
        _ => {
            eprintln!("SKIPPED: could not create the throwaway user {OTHER_USER}");
            None
        }
    }
}

/// Runs [`CLIENT`] against the daemon, as `user` (uid, gid) or as ourselves; its one line.
fn try_upgrade(daemon: &Daemon, host: &str, user: Option<(u32, u32)>) -> String {
    let ca = std::fs::read_to_string(daemon.data_dir().join("certs/ca.pem")).expect("ca.pem");
    let mut command = match user {
        Some((uid, gid)) => {
            let mut c = Command::new(SETPRIV);
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg(PYTHON);
            c
        }
        None => Command::new(PYTHON),
    };
    let out = command
        .args(["-I", "-c", CLIENT, host, &daemon.port.to_string(), CRM])
        .env("CA_PEM", ca)
        .current_dir("/")
        .output()
        .expect("client runs");
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn another_os_user_is_refused_even_with_an_allowed_origin() {
    let Some(other) = other_user() else {
        return;
    };
    let daemon = Daemon::start("");
    for host in ["127.0.0.1", "::1"] {
        // The same client, as the daemon's own user, is let in: the refusal is about the user.
        let ours = try_upgrade(&daemon, host, None);
        assert!(ours.starts_with("HTTP/1.1 101"), "{host}, own user: {ours}");

        let theirs = try_upgrade(&daemon, host, Some(other));
        assert!(
            theirs.starts_with("refused"),
            "{host}, uid {}: {theirs}",
            other.0
        );
    }
    let warning = format!("uid={}", other.0);
    eventually("the refusal in the log", Duration::from_secs(10), || {
        let log = daemon.log();
        log.lines()
            .any(|l| l.contains("another OS user") && l.contains(&warning))
            .then_some(())
    });
    // The daemon's own user still gets through, also with the real client.
    let client = daemon.connect(CRM).await;
    assert_eq!(client.hello()["event"], "hello");
}

/// Every entry below `root` (not following links) with its permission bits.
fn modes(root: &Path) -> Vec<(PathBuf, u32)> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        let mode = std::fs::symlink_metadata(&folder).expect("meta").mode() & 0o7777;
        found.push((folder.clone(), mode));
        for entry in std::fs::read_dir(&folder).expect("read_dir") {
            let entry = entry.expect("entry");
            let kind = entry.file_type().expect("type");
            if kind.is_dir() {
                folders.push(entry.path());
            } else {
                let mode = entry.metadata().expect("meta").mode() & 0o7777;
                found.push((entry.path(), mode));
            }
        }
    }
    found
}

/// Entries other users may read, write or enter; empty when all are owner-only.
fn open_to_others(root: &Path) -> Vec<String> {
    modes(root)
        .into_iter()
        .filter(|(path, mode)| {
            let owner_only = if path.is_dir() { 0o700 } else { 0o600 };
            *mode != owner_only
        })
        .map(|(path, mode)| format!("{} {mode:04o}", path.display()))
        .collect()
}

/// Makes the daemon write each of its files: approvals (a pending origin), daemon.json, the log,
/// certificates.
async fn exercise(daemon: &Daemon) {
    let pending = daemon.data_dir().join("origins.json");
    let _ = softphone_bridge::client::connect(
        &daemon.target(Some("https://new-crm.example.com")),
        &daemon.ca,
    )
    .await;
    eventually("origins.json", Duration::from_secs(10), || {
        pending.exists().then_some(())
    });
}

#[tokio::test]
async fn every_file_and_folder_the_daemon_writes_is_owner_only() {
    let daemon = Daemon::start("");
    exercise(&daemon).await;
    let dir = daemon.data_dir();
    for name in [
        "daemon.json",
        "origins.json",
        "logs/softphone-bridge.log",
        "certs/ca.pem",
        "certs/localhost.key",
        "softphone.db",
        "softphone.db-wal",
        "softphone.db-shm",
    ] {
        assert!(dir.join(name).exists(), "{name} written");
    }
    assert_eq!(open_to_others(dir), Vec::<String>::new());
}

#[tokio::test]
async fn a_data_folder_left_open_by_an_older_install_is_tightened_on_start_with_a_warning() {
    // An older install: a running daemon wrote everything; then it was all left 0755/0644.
    let mut first = Daemon::start("");
    exercise(&first).await;
    // A clean stop removes daemon.json, so the restart below is seen by its new one.
    first.terminate();
    assert_eq!(
        first.wait_exit(Duration::from_secs(10)),
        Some(0),
        "clean stop"
    );
    let dir = first.stop();
    assert!(!dir.path().join("daemon.json").exists());
    let loose = ["", "logs", "certs"];
    for (path, _) in modes(dir.path()) {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    assert!(!open_to_others(dir.path()).is_empty());

    let daemon = Daemon::start_in(dir, "");
    let data = daemon.data_dir();
    assert_eq!(open_to_others(data), Vec::<String>::new());
    let log = daemon.log();
    for name in loose
        .iter()
        .chain(&["origins.json", "logs/softphone-bridge.log", "certs/ca.pem"])
    {
        let path = data.join(name);
        let path = path.to_string_lossy();
        let path = path.trim_end_matches('/');
        assert!(
            log.lines().any(|l| l.contains("WARN")
                && l.contains(&format!("{path} was open to other users (mode 0"))),
            "a warning for {path} in:\n{log}"
        );
    }
}
