//! The SIP lab: independent SIP software started on loopback by the tests, with configs the
//! tests write, stopped by pid on drop. See `../shared/lab-notes.md` for what was verified here.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kamailio as registrar/proxy: users 1001..1003, passwords secret1001..secret1003.
pub struct Kamailio {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Kamailio {
    /// `algorithm`: the digest algorithm Kamailio challenges with (`MD5`, `SHA-256`).
    pub fn start(algorithm: &str) -> Self {
        Self::start_on(free_port(), algorithm)
    }

    pub fn start_on(port: u16, algorithm: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/lab/kamailio.cfg")).expect("kamailio.cfg");
        let config = template
            .replace("@DIR@", &dir.path().to_string_lossy())
            .replace("@UDP@", &port.to_string())
            .replace("@TCP@", &port.to_string())
            .replace("@ALGORITHM@", algorithm);
        let path = dir.path().join("kamailio.cfg");
        std::fs::write(&path, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("kamailio.log")).expect("log");
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(&path)
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-P"])
            .arg(dir.path().join("kamailio.pid"))
            .arg("-w")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kamailio is installed (./dev setup)");
        let kamailio = Self { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !kamailio.rpc("core.version").contains("kamailio") {
            assert!(Instant::now() < deadline, "kamailio did not start:\n{}", kamailio.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        kamailio
    }

    /// Runs a kamcmd RPC; kamcmd exits 0 even on errors, so callers read the text.
    pub fn rpc(&self, command: &str) -> String {
        let socket = format!("unix:{}", self.dir.path().join("kamailio.ctl").display());
        Command::new("kamcmd")
            .args(["-s", &socket, command])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Contacts registered for `user` (from `ul.dump`).
    pub fn contacts(&self, user: &str) -> Vec<String> {
        let dump = self.rpc("ul.dump");
        let mut contacts = Vec::new();
        let mut in_user = false;
        for line in dump.lines().map(str::trim) {
            if let Some(aor) = line.strip_prefix("AoR: ") {
                in_user = aor == user;
            } else if in_user && let Some(address) = line.strip_prefix("Address: ") {
                contacts.push(address.to_owned());
            }
        }
        contacts
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Kamailio forks workers; they exit when the main process goes, but make sure.
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("kamailio.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 (Kamailio listens on both).
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Polls `check` until it holds, for at most `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
