//! `certs show` and `certs install` against a data folder the agent controls (issue 9, finding 5).
//!
//! The attacker is the agent: they own their data folder and can plant links and certificates in
//! it before IT runs `certs/install-linux.sh --system` (the binary's `certs install --system`) as
//! root. The root tests run the real binary in a private mount namespace whose system trust store
//! folders are empty tmpfs mounts, so even the code before the fix never reaches this machine's
//! real store; the agent's NSS databases live in a temporary `HOME`.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{BIN, command};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The uid/gid standing in for the agent (`nobody`).
const AGENT: u32 = 65534;
const ANCHOR: &str = "/usr/local/share/ca-certificates/softphone-bridge.crt";
const ANCHOR_MARK: &str = "@@anchor@@";

fn is_root() -> bool {
    softphone_bridge::private_files::running_as_root()
}

/// Root and a private mount namespace, or a clear reason why this test cannot run here.
fn root_lab(test: &str) -> bool {
    if !is_root() {
        eprintln!(
            "SKIPPED {test}: needs root (the attack is on the root install flow); CI runs as root"
        );
        return false;
    }
    let ok = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "SKIPPED {test}: `unshare --mount` failed; without a private mount namespace the install could reach the real trust store"
        );
    }
    ok
}

/// Runs `softphone-bridge --data-dir DATA certs install --system` as root with the system trust
/// folders replaced by empty tmpfs mounts; returns the output and the anchor file seen inside.
fn root_install(data_dir: &Path) -> (Output, Option<String>) {
    let mut args = vec![BIN.into(), "--data-dir".into(), data_dir.into()];
    args.extend(["certs", "install", "--system"].map(std::ffi::OsString::from));
    in_private_store(&args, &[])
}

/// Runs `program_and_args` as root in a private mount namespace whose system trust folders are
/// empty tmpfs mounts; returns the output and the anchor file as seen inside.
fn in_private_store(
    program_and_args: &[std::ffi::OsString],
    env: &[(&str, &std::ffi::OsStr)],
) -> (Output, Option<String>) {
    let home = tempfile::tempdir().expect("home");
    let script = format!(
        "for d in /usr/local/share/ca-certificates /etc/ssl/certs; do \
           mount -t tmpfs -o mode=0755 tmpfs \"$d\" || exit 97; done; \
         \"$@\"; rc=$?; echo {ANCHOR_MARK}; cat {ANCHOR} 2>/dev/null; exit $rc"
    );
    let mut run = Command::new("unshare");
    run.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
        "sh",
    ])
    .args(program_and_args)
    .env("HOME", home.path())
    .env("SOFTPHONE_BRIDGE_SYSTEM_CONFIG", "")
    .env("SOFTPHONE_BRIDGE_USER_CONFIG", "")
    .env_remove("RUST_LOG")
    .envs(env.iter().copied());
    let mut out = run.output().expect("unshare runs");
    assert_ne!(out.status.code(), Some(97), "tmpfs over the trust store");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (before, anchor) = stdout
        .split_once(&format!("{ANCHOR_MARK}\n"))
        .expect("marker");
    let anchor = (!anchor.trim().is_empty()).then(|| anchor.to_owned());
    out.stdout = before.as_bytes().to_vec();
    (out, anchor)
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Hands `path` (and what is under it, links themselves included) to the agent.
fn give_to_agent(path: &Path) {
    std::os::unix::fs::lchown(path, Some(AGENT), Some(AGENT)).expect("lchown");
    let meta = std::fs::symlink_metadata(path).expect("meta");
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).expect("dir") {
            give_to_agent(&entry.expect("entry").path());
        }
    }
}

/// A root-owned file in a root-owned folder, outside the agent's reach.
fn root_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("root dir");
    let file = dir.path().join("precious.conf");
    std::fs::write(&file, "root's own configuration\n").expect("write");
    (dir, file)
}

/// What an attacker plants: a CA with **no** name constraints, a localhost leaf it signed (so the
/// old code accepts the files as they are), and an `about.json` naming that CA's fingerprint.
fn plant_unconstrained_ca(data_dir: &Path) -> String {
    let certs = data_dir.join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "softphone-bridge local CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf");
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
    std::fs::write(certs.join("ca.pem"), ca_cert.pem()).expect("ca.pem");
    std::fs::write(certs.join("localhost.pem"), leaf_cert.pem()).expect("leaf");
    std::fs::write(certs.join("localhost.key"), leaf_key.serialize_pem()).expect("key");
    let sha = softphone_bridge::certs::sha256_hex(ca_cert.der());
    std::fs::write(
        certs.join("about.json"),
        format!(
            "{{\"createdUnix\": 0, \"leafNotAfterUnix\": 4102444800, \"caSha256\": \"{sha}\"}}"
        ),
    )
    .expect("about");
    sha
}

#[test]
fn root_install_never_writes_through_a_planted_link_to_a_root_file() {
    if !root_lab("root_install_never_writes_through_a_planted_link_to_a_root_file") {
        return;
    }
    let (_victim_dir, victim) = root_file();
    let data = tempfile::tempdir().expect("agent's data dir");
    let certs = data.path().join("certs");
    std::fs::create_dir(&certs).expect("certs");
    // A broken leaf makes the old code regenerate, writing ca.pem through the link.
    std::fs::write(certs.join("localhost.pem"), "garbage").expect("leaf");
    std::os::unix::fs::symlink(&victim, certs.join("ca.pem")).expect("link");
    give_to_agent(data.path());

    let (out, anchor) = root_install(data.path());
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "root's own configuration\n",
        "root's file was overwritten through the agent's link; {}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a symbolic link"),
        "{}",
        text(&out)
    );
    assert_eq!(anchor, None, "nothing installed");
    assert!(
        std::fs::symlink_metadata(certs.join("ca.pem"))
            .expect("link")
            .file_type()
            .is_symlink(),
        "the agent's folder is left as it was"
    );
}

#[test]
fn root_install_never_chmods_a_root_folder_the_certs_link_points_to() {
    if !root_lab("root_install_never_chmods_a_root_folder_the_certs_link_points_to") {
        return;
    }
    let root_folder = tempfile::tempdir().expect("root folder");
    std::fs::set_permissions(root_folder.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let data = tempfile::tempdir().expect("agent's data dir");
    std::os::unix::fs::symlink(root_folder.path(), data.path().join("certs")).expect("link");
    give_to_agent(data.path());

    let (out, anchor) = root_install(data.path());
    let mode = std::fs::metadata(root_folder.path())
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o755, "root's folder was chmod'ed; {}", text(&out));
    let written: Vec<_> = std::fs::read_dir(root_folder.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(written.is_empty(), "files written as root: {written:?}");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a symbolic link"),
        "{}",
        text(&out)
    );
    assert_eq!(anchor, None, "nothing installed");
}

#[test]
fn root_install_refuses_a_planted_unconstrained_ca() {
    if !root_lab("root_install_refuses_a_planted_unconstrained_ca") {
        return;
    }
    let data = tempfile::tempdir().expect("agent's data dir");
    plant_unconstrained_ca(data.path());
    give_to_agent(data.path());

    let (out, anchor) = root_install(data.path());
    assert_eq!(
        anchor,
        None,
        "an unconstrained CA reached the system store; {}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("carries no name constraints"),
        "{}",
        text(&out)
    );
}

#[test]
fn root_install_puts_exactly_the_ca_this_install_made_in_the_system_store() {
    if !root_lab("root_install_puts_exactly_the_ca_this_install_made_in_the_system_store") {
        return;
    }
    let data = tempfile::tempdir().expect("agent's data dir");
    let paths = softphone_bridge::certs::CertPaths::in_data_dir(data.path());
    softphone_bridge::certs::generate(&paths).expect("our CA");
    give_to_agent(data.path());
    let before: Vec<_> = ["ca.pem", "about.json", "localhost.pem", "localhost.key"]
        .iter()
        .map(|name| std::fs::read(paths.dir.join(name)).expect("file"))
        .collect();

    let (out, anchor) = root_install(data.path());
    assert!(out.status.success(), "{}", text(&out));
    let anchor = anchor.expect("anchor written");
    let installed = CertificateDer::from_pem_slice(anchor.as_bytes()).expect("pem");
    let ours = CertificateDer::from_pem_file(&paths.ca).expect("ca.pem");
    assert_eq!(installed, ours, "the anchor is our CA");
    let after: Vec<_> = ["ca.pem", "about.json", "localhost.pem", "localhost.key"]
        .iter()
        .map(|name| std::fs::read(paths.dir.join(name)).expect("file"))
        .collect();
    assert_eq!(before, after, "root changed nothing in the agent's folder");
    for entry in std::fs::read_dir(&paths.dir).expect("dir") {
        let meta = entry.expect("entry").metadata().expect("meta");
        assert_eq!(
            meta.uid(),
            AGENT,
            "nothing in the agent's folder became root's"
        );
    }
}

/// IT's script, as root, against the agent's folder with a planted link: it neither writes through
/// the link nor installs anything.
#[test]
fn install_script_as_root_never_writes_through_a_planted_link() {
    if !root_lab("install_script_as_root_never_writes_through_a_planted_link") {
        return;
    }
    let (_victim_dir, victim) = root_file();
    let data = tempfile::tempdir().expect("agent's data dir");
    let certs = data.path().join("certs");
    std::fs::create_dir(&certs).expect("certs");
    std::fs::write(certs.join("localhost.pem"), "garbage").expect("leaf");
    std::os::unix::fs::symlink(&victim, certs.join("ca.pem")).expect("link");
    give_to_agent(data.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs/install-linux.sh");

    let (out, anchor) = in_private_store(
        &[script.into(), "--system".into()],
        &[
            ("SOFTPHONE_BRIDGE_BIN", BIN.as_ref()),
            ("SOFTPHONE_BRIDGE_DATA_DIR", data.path().as_os_str()),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "root's own configuration\n",
        "root's file was overwritten through the agent's link; {}",
        text(&out)
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a symbolic link"),
        "{}",
        text(&out)
    );
    assert_eq!(anchor, None, "nothing installed");
}

/// The agent's own `certs install` (no root involved): a planted unconstrained CA is refused
/// before any NSS database is touched.
#[test]
fn agent_install_refuses_a_planted_unconstrained_ca() {
    let data = tempfile::tempdir().expect("agent's data dir");
    let home = tempfile::tempdir().expect("home");
    plant_unconstrained_ca(data.path());
    let mut install = if is_root() {
        // As the agent, not as root: root only ever installs into the system store.
        give_to_agent(data.path());
        give_to_agent(home.path());
        let mut as_agent = Command::new("setpriv");
        as_agent
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                BIN,
            ])
            .arg("--data-dir")
            .arg(data.path())
            .env("SOFTPHONE_BRIDGE_SYSTEM_CONFIG", "")
            .env("SOFTPHONE_BRIDGE_USER_CONFIG", "")
            .env_remove("RUST_LOG");
        as_agent
    } else {
        command(data.path())
    };
    let out = install
        .args(["certs", "install"])
        .env("HOME", home.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("carries no name constraints"),
        "{}",
        text(&out)
    );
    assert!(
        !home.path().join(".pki/nssdb/cert9.db").exists(),
        "no NSS database was created or changed"
    );
}

#[test]
fn certs_show_reports_what_a_planted_ca_really_says() {
    let data = tempfile::tempdir().expect("agent's data dir");
    let sha = plant_unconstrained_ca(data.path());
    let out = command(data.path())
        .args(["certs", "show"])
        .output()
        .expect("runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !shown.contains("Names allowed:  localhost"),
        "claims the CA does not make: {shown}"
    );
    assert!(shown.contains(&format!("SHA-256:        {sha}")), "{shown}");
    assert!(
        shown.contains("Name constraints: none"),
        "the missing constraints are reported: {shown}"
    );
    assert!(
        shown.contains("Verdict:        REFUSED: the CA carries no name constraints"),
        "{shown}"
    );
}

#[test]
fn certs_show_reports_our_ca_constraints_as_found_in_it() {
    let data = tempfile::tempdir().expect("data dir");
    let out = command(data.path())
        .args(["certs", "show"])
        .output()
        .expect("runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    for line in [
        "Subject:        CN=softphone-bridge local CA",
        "CA:             yes (path length 0)",
        "Name constraints: critical",
        "  permitted:    DNS localhost, IP 127.0.0.1/32, IP ::1/128",
        "Verdict:        OK",
    ] {
        assert!(shown.contains(line), "missing {line:?} in:\n{shown}");
    }
}
