//! A terminal server (Citrix, RDS, a multi-user Linux host): every agent's daemon runs on the same
//! machine from one IT config with a port range. Each takes the next free port, records it in its
//! own `daemon.json`, and only its own OS user gets through to it.
//!
//! The two agents are this test's own user and the throwaway account of `other_user.rs`; both need
//! root (as in CI), else the test is skipped with a message saying why.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::sync::atomic::{AtomicU16, Ordering};

use common::{CRM, Daemon, as_user, other_user, try_upgrade};

/// `count` consecutive ports below Linux's ephemeral range (32768–60999), so no outgoing
/// connection takes one, held on both loopbacks until the caller drops the listeners.
fn free_range(count: u16) -> (u16, u16, Vec<TcpListener>) {
    let hold = |first: u16| {
        let mut held = Vec::new();
        for port in first..first + count {
            held.push(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok()?);
            held.push(TcpListener::bind((Ipv6Addr::LOCALHOST, port)).ok()?);
        }
        Some((first, first + count - 1, held))
    };
    // Tests of this binary run at once: each starts its search elsewhere.
    static CALLS: AtomicU16 = AtomicU16::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let seed = u16::try_from(std::process::id() % 1000).expect("below 1000") + call * 3000;
    (0..200)
        .find_map(|i| hold(20_000 + (seed + i * 37) % 10_000))
        .expect("a free range of ports")
}

#[test]
fn agents_on_one_machine_each_get_their_own_port_and_only_their_own_daemon() {
    let Some(other) = other_user() else {
        return;
    };
    let (first, last, held) = free_range(4);
    let config = format!("[api]\nport = \"{first}-{last}\"\n");
    // The whole file, written before the harness would write its own (`port = 0`).
    let write = |dir: &tempfile::TempDir| {
        std::fs::write(
            dir.path().join("config.toml"),
            format!("[demo]\nline = false\n{config}allowed_origins = [\"{CRM}\"]\n"),
        )
        .expect("config");
    };
    drop(held);
    let theirs_dir = tempfile::tempdir().expect("tempdir");
    write(&theirs_dir);
    let theirs = Daemon::start_as(theirs_dir, "", other);
    let ours_dir = tempfile::tempdir().expect("tempdir");
    write(&ours_dir);
    let ours = Daemon::start_in(ours_dir, "");

    // The first daemon took the range's first port; the second skipped it for the next one.
    assert_eq!(theirs.port, first, "{}", theirs.log());
    assert_eq!(ours.port, first + 1, "{}", ours.log());

    // Each user reaches their own daemon and is refused by the other's, though the config, the
    // origin and (for the client) the certificate would all do.
    for host in ["127.0.0.1", "::1"] {
        let own = try_upgrade(ours.dir(), host, ours.port, None);
        assert!(own.starts_with("HTTP/1.1 101"), "{host}: {own}");
        let own = try_upgrade(theirs.dir(), host, theirs.port, Some(other));
        assert!(
            own.starts_with("HTTP/1.1 101"),
            "{host}, uid {}: {own}",
            other.0
        );
        let across = try_upgrade(theirs.dir(), host, theirs.port, None);
        assert!(across.starts_with("refused"), "{host}: {across}");
        let across = try_upgrade(ours.dir(), host, ours.port, Some(other));
        assert!(across.starts_with("refused"), "{host}: {across}");
    }

    // `status` finds each user's daemon through that user's own data folder.
    let status = |daemon: &Daemon, user: Option<(u32, u32)>| {
        let mut command = match user {
            Some(user) => as_user(
                user,
                daemon
                    .binary_path()
                    .expect("the other user's daemon runs a copy"),
            ),
            None => std::process::Command::new(common::BIN),
        };
        let out = command
            .env("SOFTPHONE_BRIDGE_SYSTEM_CONFIG", "")
            .env("SOFTPHONE_BRIDGE_USER_CONFIG", "")
            .arg("--data-dir")
            .arg(daemon.dir())
            .arg("status")
            .current_dir("/")
            .output()
            .expect("status runs");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let mine = status(&ours, None);
    assert!(
        mine.contains(&format!("wss://localhost:{}/ws", ours.port)),
        "{mine}"
    );
    let their_own = status(&theirs, Some(other));
    assert!(
        their_own.contains(&format!("wss://localhost:{}/ws", theirs.port)),
        "{their_own}"
    );
}

#[test]
fn a_full_range_stops_the_daemon_and_says_so() {
    // Held by "other programs" while the daemon starts.
    let (first, last, _held) = free_range(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::command(dir.path())
        .args(["run", "--headless", "--port", &format!("{first}-{last}")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("every port of {first}-{last} is taken")),
        "{err}"
    );
}
