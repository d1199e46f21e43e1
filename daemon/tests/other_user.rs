//! Another OS user on the same machine (a terminal server): the real daemon refuses its
//! connections even with an allowed `Origin`, and none of the daemon's files are readable by it.
//!
//! The other user is a throwaway system account made with `useradd` when missing; its client is
//! Debian's `python3` (ssl + socket) run through `setpriv`. Both need root, as in CI: without root
//! or these tools the connection test is skipped with a message saying why.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{CRM, Daemon, eventually, other_user};

/// Runs the upgrade client against the daemon, as `user` (uid, gid) or as ourselves.
fn try_upgrade(daemon: &Daemon, host: &str, user: Option<(u32, u32)>) -> String {
    common::try_upgrade(daemon.data_dir(), host, daemon.port, user)
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
