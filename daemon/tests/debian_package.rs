//! The Debian package, as IT installs and removes it: built by cargo-deb from this build's binary,
//! installed with `dpkg -i` with the machine-wide trust preseeded (debconf), the installed binary
//! run as an agent's session would, the demo line called, then `dpkg --purge` and nothing left.
//!
//! Needs root (dpkg) and cargo-deb (`./dev setup` installs it); as another user it is skipped with
//! a message. One test in this file: it changes the machine, so nothing else may run beside it.

mod common;

use std::os::unix::fs::MetadataExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::FutureExt;

use common::{CRM, Client, eventually, upgrade};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use softphone_bridge::client::Target;

const PACKAGE: &str = "softphone-bridge";
const INSTALLED: &str = "/usr/bin/softphone-bridge";
const TLS: &str = "/etc/softphone-bridge/workstation-tls";
const MACHINE_CONFIG: &str = "/etc/softphone-bridge/config.toml";
const ANCHOR: &str = "/usr/local/share/ca-certificates/softphone-bridge.crt";
const CHROMIUM_POLICY: &str = "/etc/chromium/policies/managed/softphone-bridge-ca.json";
const UNIT: &str = "/usr/lib/systemd/user/softphone-bridge.service";
const ENABLED: &str = "/etc/systemd/user/graphical-session.target.wants/softphone-bridge.service";
const AUTOSTART: &str = "/etc/xdg/autostart/softphone-bridge.desktop";

/// Everything the package may put on the machine; after a purge none may remain.
const LEFT_BEHIND: [&str; 10] = [
    INSTALLED,
    UNIT,
    ENABLED,
    AUTOSTART,
    TLS,
    MACHINE_CONFIG,
    ANCHOR,
    CHROMIUM_POLICY,
    "/etc/opt/chrome/policies/managed/softphone-bridge-ca.json",
    "/var/lib/softphone-bridge",
];

fn run(what: &str, command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// Builds the .deb from the binary this test run built (no release build: the packaging is what
/// is tested, and `./dev package` makes the release one).
fn build_deb(out: &Path) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let deb = out.join("softphone-bridge.deb");
    run(
        "cargo deb (install it with ./dev setup)",
        Command::new("cargo")
            .current_dir(&workspace)
            .args([
                "deb",
                "-p",
                PACKAGE,
                "--no-build",
                "--profile",
                "dev",
                "--fast",
                "-o",
            ])
            .arg(&deb),
    );
    deb
}

fn purge() -> String {
    run(
        "dpkg --purge",
        Command::new("dpkg")
            .args(["--purge", PACKAGE])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Processes running the installed binary.
fn installed_daemons() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let exe = std::fs::read_link(entry.path().join("exe")).ok()?;
            exe.to_str()?.starts_with(INSTALLED).then_some(pid)
        })
        .collect()
}

#[tokio::test]
async fn the_debian_package_installs_runs_the_demo_line_and_leaves_nothing_when_removed() {
    let uid = softphone_bridge::private_files::own_uid().expect("/proc/self");
    if uid != 0 {
        eprintln!("SKIPPED: installing a package needs root (uid {uid})");
        return;
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let deb = build_deb(scratch.path());
    let control = run("dpkg-deb -f", Command::new("dpkg-deb").arg("-f").arg(&deb));
    for needed in ["libasound2", "libopus0", "ca-certificates"] {
        assert!(
            control.contains(needed),
            "Depends names {needed}:\n{control}"
        );
    }

    // A fleet preseeds the machine-wide trust, as for any unattended install.
    let mut preseed = Command::new("debconf-set-selections")
        .stdin(Stdio::piped())
        .spawn()
        .expect("debconf-set-selections");
    {
        use std::io::Write;
        let mut stdin = preseed.stdin.take().expect("stdin");
        writeln!(stdin, "{PACKAGE} {PACKAGE}/trust-ca boolean true").expect("preseed");
    }
    assert!(preseed.wait().expect("waits").success());
    // Root acts for IT with HOME pointing nowhere: nothing may appear there.
    let nowhere_existed = Path::new("/nonexistent").exists();
    // Twice: the second is what an upgrade runs (prerm upgrade, postinst configure again).
    for _ in 0..2 {
        run(
            "dpkg -i",
            Command::new("dpkg")
                .arg("-i")
                .arg(&deb)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        );
    }

    let ca_pem = std::fs::read_to_string(format!("{TLS}/ca.pem")).unwrap_or_default();
    let mut daemon = None;
    let checks = AssertUnwindSafe(installed_and_working(&mut daemon))
        .catch_unwind()
        .await;
    // Removed whatever the checks found, so a failure leaves the machine clean too.
    let removal = purge();
    if let Err(panic) = checks {
        std::panic::resume_unwind(panic);
    }

    // Nothing left: no files, no trust, no autostart, no listener.
    let left: Vec<_> = LEFT_BEHIND
        .iter()
        .filter(|path| Path::new(path).exists())
        .collect();
    assert!(left.is_empty(), "left after purge: {left:?}\n{removal}");
    assert!(
        nowhere_existed || !Path::new("/nonexistent").exists(),
        "/nonexistent was created"
    );
    let bundle = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").expect("bundle");
    let body = ca_pem.lines().nth(1).expect("a PEM body");
    assert!(
        !bundle.contains(body),
        "the CA is still in the system bundle"
    );
    let (mut child, port) = daemon.expect("the daemon ran");
    // The package's prerm stopped it (it never exits by itself).
    eventually(
        "the daemon stopped by the removal",
        Duration::from_secs(10),
        || child.try_wait().ok().flatten(),
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on {port} any more"
    );
    assert!(
        installed_daemons().is_empty(),
        "a daemon still runs the removed binary"
    );
}

/// What an installed package must do; `daemon` gets the agent's daemon and its port, for the
/// removal to stop.
async fn installed_and_working(daemon: &mut Option<(Child, u16)>) {
    for path in [INSTALLED, UNIT, ENABLED, AUTOSTART, ANCHOR, CHROMIUM_POLICY] {
        assert!(Path::new(path).exists(), "{path} after install");
    }
    let config = std::fs::read_to_string(MACHINE_CONFIG).expect("machine config");
    assert!(
        config.contains(&format!("tls_cert = \"{TLS}/localhost.pem\"")),
        "{config}"
    );
    let policy = std::fs::read_to_string(CHROMIUM_POLICY).expect("policy");
    assert!(policy.contains("CACertificates"), "{policy}");
    let key = std::fs::metadata(format!("{TLS}/localhost.key")).expect("key");
    assert_eq!(
        key.mode() & 0o777,
        0o644,
        "every user's daemon reads the key"
    );

    // The agent's session starts it: the installed binary with the machine-wide config.
    let data = tempfile::tempdir().expect("tempdir");
    let child = Command::new(INSTALLED)
        .env("SOFTPHONE_BRIDGE_USER_CONFIG", "")
        .env_remove("SOFTPHONE_BRIDGE_SYSTEM_CONFIG")
        .arg("--data-dir")
        .arg(data.path())
        .args(["run", "--headless", "--port", "0", "--allow-origin", CRM])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the installed binary starts");
    let info = data.path().join("daemon.json");
    let port = eventually("daemon.json", Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&info).ok()?;
        let info: serde_json::Value = serde_json::from_str(&text).ok()?;
        u16::try_from(info["port"].as_u64()?).ok()
    });
    *daemon = Some((child, port));

    // Trusted through the system store alone: no per-user step, no prompt.
    let answer = upgrade("127.0.0.1", port, None, None);
    assert!(answer.starts_with("HTTP/1.1 101"), "system trust: {answer}");

    // The demo line answers a call.
    let ca = CertificateDer::from_pem_file(format!("{TLS}/ca.pem")).expect("ca.pem");
    let mut page = Client::connect(Target::new(port, Some(CRM)), &ca).await;
    page.start_call("echo").await;
    page.event("callAccepted").await;
}
