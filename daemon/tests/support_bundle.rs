//! `softphone-bridge support-bundle` against a running daemon: the zip a helpdesk gets holds the
//! config (secrets as `***`), the logs, versions, devices, status and the last 100 events, and not
//! one byte of the agent's password or auth key, in any file of it.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use common::{CRM, Daemon, command};

const PASSWORD: &str = "Bundle-pw-5f3a9c";
const AUTH_KEY: &str = "Bundle-key-77e1d2";
/// A webhook's token, in its URL's path.
const HOOK_TOKEN: &str = "HookToken9d81";
const HOOK_SECRET: &str = "Bundle-hmac-0c4e2b";

#[tokio::test]
async fn the_support_bundle_has_what_a_helpdesk_needs_and_no_secret() {
    // A registrar that never answers: the line keeps trying, so there are events and log lines.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let port = silent.local_addr().expect("addr").port();
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{port}\"\nusername = \"1001\"\npassword = \"{PASSWORD}\"\nauth_key = \"{AUTH_KEY}\"\n\
         [notifications]\nurl = \"https://127.0.0.1:9/hooks/{HOOK_TOKEN}?v=1\"\nsecret = \"{HOOK_SECRET}\"\n"
    ));
    let mut page = daemon.connect(CRM).await;
    let (reply, _) = page
        .request(
            "update_presence",
            serde_json::json!({"softphoneId": "break"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    page.event("statusChanged").await;

    // A line an older version (or a bug) might have written: the bundle redacts logs again.
    {
        use std::io::Write;
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(daemon.dir().join("logs/softphone-bridge.log"))
            .expect("the log");
        writeln!(
            log,
            "DEBUG sip: REGISTER password=\"{PASSWORD}\" auth_key={AUTH_KEY}"
        )
        .expect("append");
    }
    let out_dir = tempfile::tempdir().expect("tempdir");
    let zip_path = out_dir.path().join("ticket-4711.zip");
    let config = daemon.dir().join("config.toml");
    let run = || {
        command(daemon.dir())
            .args(["support-bundle", "--out"])
            .arg(&zip_path)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("cli runs")
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&zip_path)
        .expect("zip")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "owner-only");

    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(&zip_path).expect("open")).expect("a zip");
    let mut files = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).expect("entry");
        let mut text = String::new();
        file.read_to_string(&mut text).expect("utf-8 text");
        files.insert(file.name().expect("a UTF-8 name").to_string(), text);
    }
    for name in [
        "README.txt",
        "versions.txt",
        "status.txt",
        "config.toml",
        "config-origins.txt",
        "devices.txt",
        "events.json",
        "logs/softphone-bridge.log",
    ] {
        assert!(files.contains_key(name), "{name} in {:?}", files.keys());
    }
    for (name, text) in &files {
        assert!(!text.contains(PASSWORD), "the password in {name}");
        assert!(!text.contains(AUTH_KEY), "the auth key in {name}");
        assert!(!text.contains(HOOK_TOKEN), "the webhook's token in {name}");
        assert!(
            !text.contains(HOOK_SECRET),
            "the webhook's secret in {name}"
        );
    }
    assert!(
        files["config.toml"].contains("password = \"***\""),
        "{}",
        files["config.toml"]
    );
    assert!(files["config.toml"].contains(&format!("server = \"127.0.0.1:{port}\"")));
    assert!(
        files["config.toml"].contains("url = \"https://127.0.0.1:9/…\""),
        "{}",
        files["config.toml"]
    );
    assert!(files["logs/softphone-bridge.log"].contains("password=<redacted>"));
    assert!(
        files["config-origins.txt"].contains(&format!(
            "account.username = \"1001\"  # {}",
            config.display()
        )),
        "{}",
        files["config-origins.txt"]
    );
    assert!(
        files["versions.txt"]
            .starts_with(&format!("softphone-bridge {}", env!("CARGO_PKG_VERSION")))
    );
    assert!(
        files["status.txt"].contains(&format!("pid {}, port {}", daemon.pid(), daemon.port)),
        "{}",
        files["status.txt"]
    );
    let events: serde_json::Value = serde_json::from_str(&files["events.json"]).expect("JSON");
    let names: Vec<_> = events
        .as_array()
        .expect("an array")
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(names.iter().any(|n| n == "statusChanged"), "{names:?}");
    assert!(
        events
            .as_array()
            .expect("array")
            .iter()
            .any(|e| e["payload"]["softphoneId"] == "break"),
        "{events}"
    );
    assert!(
        files["logs/softphone-bridge.log"].contains("listening on"),
        "the daemon's log"
    );

    // A second bundle to the same name does not replace the first.
    let again = run();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    drop(silent);
}
