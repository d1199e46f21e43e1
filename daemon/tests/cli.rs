//! The command-line surface: config check, certs show, status, exit codes.

mod common;

use common::{Daemon, command};

#[test]
fn config_check_reports_file_key_and_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[api]\nport = \"not a number\"\n").expect("write");
    let out = command(dir.path())
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("api.port") && err.contains("u16"),
        "{err}"
    );

    let good =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/config/it-managed.toml");
    let out = command(dir.path())
        .args(["config", "check"])
        .arg(&good)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn run_refuses_a_bad_config_with_exit_code_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[audio]\nbackend = \"pulse\"\n").expect("write");
    let out = command(dir.path())
        .args(["run", "--headless", "--config"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audio.backend") && err.contains("pulse"),
        "{err}"
    );
}

#[test]
fn certs_show_prints_path_and_fingerprint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = command(dir.path())
        .args(["certs", "show"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ca.pem") && text.contains("SHA-256:"),
        "{text}"
    );
    let fingerprint = text
        .lines()
        .find(|l| l.starts_with("SHA-256:"))
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        fingerprint.matches(':').count(),
        32,
        "32 hex pairs: {fingerprint}"
    );
}

#[test]
fn status_reports_a_running_daemon_and_a_stopped_one() {
    let daemon = Daemon::start("");
    let out = daemon.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("wss://localhost:{}/ws", daemon.port))
            && text.contains("presence: Available"),
        "{text}"
    );
    let dir = daemon.stop();
    let out = command(dir.path()).arg("status").output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
}

/// Red-team follow-up to finding 8: denying an origin IT lists has no effect on the daemon, and
/// the CLI says so instead of reporting a revocation that did not happen.
#[test]
fn denying_an_it_listed_origin_says_it_stays_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let system = dir.path().join("system.toml");
    std::fs::write(
        &system,
        "[api]\nallowed_origins = [\"https://crm.example.com\"]\n",
    )
    .expect("write");
    let out = command(dir.path())
        .env("SOFTPHONE_BRIDGE_SYSTEM_CONFIG", &system)
        .args(["origins", "deny", "https://CRM.example.com:443"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keeps allowing it"), "{err}");
    let out = command(dir.path())
        .args(["origins", "deny", "https://other.example.com"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
}
