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
        err.contains("bad.toml") && err.contains("api.port") && err.contains("is not a port"),
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

/// One daemon per data folder: a second one exits at once, saying which one runs, and leaves
/// the first one's files alone; after a kill -9 of the first, a new one starts (the OS dropped
/// the lock with the process).
#[test]
fn a_second_daemon_on_one_data_folder_exits_and_says_why() {
    let daemon = Daemon::start("");
    let info = std::fs::read_to_string(daemon.dir().join("daemon.json")).expect("daemon.json");
    let out = command(daemon.dir())
        .args(["run", "--headless", "--config"])
        .arg(daemon.dir().join("config.toml"))
        .output()
        .expect("runs");
    assert!(!out.status.success(), "the second one stops");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already runs on the data folder")
            && err.contains(&format!("pid {}", daemon.pid())),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(daemon.dir().join("daemon.json")).expect("daemon.json"),
        info,
        "the running daemon's daemon.json is untouched"
    );
    let dir = daemon.stop();
    let again = Daemon::start_in(dir, "");
    assert_ne!(again.port, 0);
}

/// IT's partial machine-wide file checks clean with --machine; `config show` prints TOML that
/// parses; `--origin` says, per key, which file set it, and a locked key stays IT's.
#[test]
fn machine_files_locks_and_where_each_key_came_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let it = dir.path().join("machine.toml");
    std::fs::write(
        &it,
        "[account]\nserver = \"pbx.example.com\"\ntransport = \"tls\"\n\
         [api]\nallowed_origins = [\"https://crm.example.com\"]\n[lock]\nkeys = [\"api.allowed_origins\", \"account.server\"]\n",
    )
    .expect("write");
    let agent = dir.path().join("agent.toml");
    std::fs::write(
        &agent,
        "[account]\nserver = \"attacker.example\"\nusername = \"1001\"\npassword = \"s3cret\"\n\
         [api]\nallowed_origins = [\"https://evil.example\"]\n",
    )
    .expect("write");
    let run = |args: &[&str]| {
        command(dir.path())
            .env("SOFTPHONE_BRIDGE_SYSTEM_CONFIG", &it)
            .env("SOFTPHONE_BRIDGE_USER_CONFIG", &agent)
            .args(args)
            .output()
            .expect("runs")
    };
    let text = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    let it_path = it.to_str().expect("path");
    let strict = run(&["config", "check", it_path]);
    assert!(!strict.status.success(), "partial: {}", text(&strict));
    let machine = run(&["config", "check", "--machine", it_path]);
    assert!(machine.status.success(), "{}", text(&machine));

    let show = run(&["config", "show"]);
    assert!(show.status.success(), "{}", text(&show));
    let shown = String::from_utf8_lossy(&show.stdout);
    let parsed: toml::Table = toml::from_str(&shown).expect("config show prints TOML");
    assert_eq!(
        parsed["account"]["server"].as_str(),
        Some("pbx.example.com")
    );
    assert_eq!(parsed["account"]["password"].as_str(), Some("***"));
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        text(&show).contains("`account.server` is locked"),
        "the agent hears why: {}",
        text(&show)
    );

    let origin = run(&["config", "show", "--origin"]);
    let lines = String::from_utf8_lossy(&origin.stdout);
    let line = |key: &str| {
        lines
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("api.allowed_origins").ends_with(&format!("# {}", it.display())),
        "{lines}"
    );
    assert!(
        line("account.username").ends_with(&format!("# {}", agent.display())),
        "{lines}"
    );
    assert!(line("api.port").ends_with("# default"), "{lines}");
}

/// IT's own PKI: a CA and a localhost certificate made by OpenSSL, given as `[api] tls_cert` and
/// `tls_key`. A client trusting only IT's CA connects; one trusting only the per-install CA does
/// not (so IT's certificate is what is served).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_can_serve_its_own_localhost_certificate() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pki = tempfile::tempdir().expect("tempdir");
    let at = |name: &str| pki.path().join(name);
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(pki.path())
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=IT Root",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
    ]);
    std::fs::write(
        at("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        "ext.cnf",
        "-out",
        "leaf.pem",
    ]);

    let daemon = Daemon::start(&format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        at("leaf.pem").display(),
        at("leaf.key").display()
    ));
    let it_ca = CertificateDer::from_pem_file(at("ca.pem")).expect("ca.pem");
    let target = daemon.target(Some(common::CRM));
    softphone_bridge::client::connect(&target, &it_ca)
        .await
        .expect("a browser trusting IT's PKI connects");
    assert!(
        softphone_bridge::client::connect(&target, &daemon.ca)
            .await
            .is_err(),
        "the per-install CA's certificate is not what is served"
    );

    // Half of the pair is a config error naming the missing key.
    let out = common::check_config(
        pki.path(),
        "lonely.toml",
        &format!("[api]\ntls_cert = \"{}\"\n", at("leaf.pem").display()),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("api.tls_key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Local Network Access policies for IT: the Linux form is the managed-policy JSON Chrome
/// reads, listing the origins under both policies; a bad origin is refused by name.
#[test]
fn policies_print_what_chrome_and_edge_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = command(dir.path())
        .args([
            "policies",
            "--origin",
            "https://crm.example.com",
            "--origin",
            "[*.]force.com",
            "--os",
            "linux",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for name in [
        "LocalNetworkAccessAllowedForUrls",
        "LoopbackNetworkAllowedForUrls",
    ] {
        assert_eq!(
            policy[name],
            serde_json::json!(["https://crm.example.com", "[*.]force.com"]),
            "{policy}"
        );
    }
    let all = command(dir.path())
        .args(["policies", "--origin", "https://crm.example.com"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&all.stdout);
    assert!(
        text.contains("Windows Registry Editor") && text.contains("<plist version=\"1.0\">"),
        "{text}"
    );
    let bad = command(dir.path())
        .args(["policies", "--origin", "crm.example.com/login"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("crm.example.com/login"));
}
