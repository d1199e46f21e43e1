//! The SIP lab: independent SIP software started on loopback by the tests, with configs the
//! tests write, stopped by pid on drop. See `../shared/lab-notes.md` for what was verified here.
//! The WebRTC parts (coturn, a browser phone, the network namespace) are in [`webrtc`].

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::eventually;

pub mod pjsip;
pub mod sipp;
pub mod sound_server;
pub mod webrtc;

/// Runs `ip ARGS` (iproute2) in the test's network namespace.
pub fn ip(args: &str) {
    let status = Command::new("ip")
        .args(args.split(' '))
        .status()
        .expect("ip (iproute2) runs");
    assert!(status.success(), "ip {args}");
}

/// `program` to run in the network namespace at `netns` (`/proc/PID/ns/net`), or in the test's.
fn in_netns(netns: Option<&str>, program: &str) -> Command {
    match netns {
        Some(path) => {
            let mut command = Command::new("nsenter");
            command.arg(format!("--net={path}")).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// A network namespace of its own (a PBX across a link), held open by a sleeping process that
/// dies with it. Only inside a test's private namespace (see `webrtc::in_loopback_namespace`).
pub struct Netns {
    holder: Child,
}

impl Netns {
    pub fn new() -> Self {
        let ours = std::fs::read_link("/proc/self/ns/net").expect("our network namespace");
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "3600"])
            .spawn()
            .expect("unshare (util-linux) runs");
        let netns = Self { holder };
        // unshare makes the namespace before it becomes `sleep`: until then the path is ours.
        eventually("the new network namespace", Duration::from_secs(5), || {
            std::fs::read_link(netns.path())
                .ok()
                .filter(|theirs| *theirs != ours)
        });
        netns.ip("link set lo up");
        netns
    }

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// `/proc/PID/ns/net`, for `nsenter --net=`.
    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.pid())
    }

    /// Runs `ip ARGS` (iproute2) in the namespace.
    pub fn ip(&self, args: &str) {
        let status = in_netns(Some(&self.path()), "ip")
            .args(args.split(' '))
            .status()
            .expect("nsenter runs");
        assert!(status.success(), "ip {args} in the PBX namespace");
    }
}

/// The link flap tests' addresses: the PBX across the veth pair, and the agent's end before
/// and after the flap.
pub const PBX_ADDRESS: &str = "10.9.1.1";
pub const AGENT_BEFORE: &str = "10.9.1.2";
pub const AGENT_AFTER: &str = "10.9.1.3";

impl Netns {
    /// A namespace for the PBX joined to the test's by a veth pair: `vpbx` at [`PBX_ADDRESS`]
    /// there, `vagent` at [`AGENT_BEFORE`] here.
    pub fn linked_pbx() -> Self {
        let pbx = Self::new();
        ip(&format!(
            "link add vagent type veth peer name vpbx netns {}",
            pbx.pid()
        ));
        pbx.ip(&format!("addr add {PBX_ADDRESS}/24 dev vpbx"));
        pbx.ip("link set vpbx up");
        ip(&format!("addr add {AGENT_BEFORE}/24 dev vagent"));
        ip("link set vagent up");
        pbx
    }
}

/// The agent's end of the link goes down for `outage` (the outage itself, not a wait for
/// anything) and comes back up at [`AGENT_AFTER`]; returns when it came back.
pub async fn flap_agent_link(outage: Duration) -> Instant {
    ip("link set vagent down");
    tokio::time::sleep(outage).await;
    ip(&format!("addr del {AGENT_BEFORE}/24 dev vagent"));
    ip(&format!("addr add {AGENT_AFTER}/24 dev vagent"));
    let returned = Instant::now();
    ip("link set vagent up");
    returned
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// How a Kamailio is set up beyond its ports and certificate.
#[derive(Default)]
struct Setup {
    /// Run in this network namespace (`/proc/PID/ns/net`).
    netns: Option<String>,
    /// `Flow-Timer` instead of [`FLOW_TIMER`].
    flow_timer: Option<u32>,
}

/// The lab registrar's `Flow-Timer` (RFC 5626): outbound clients ping at least this often.
pub const FLOW_TIMER: u32 = 20;

/// Kamailio as registrar/proxy: users 1001..1003, passwords secret1001..secret1003.
pub struct Kamailio {
    pub port: u16,
    pub tls_port: Option<u16>,
    /// SIP over WebSocket: (ws, wss) ports.
    pub ws_ports: Option<(u16, u16)>,
    /// Where it listens: 127.0.0.1 unless started with [`Self::start_at`].
    pub address: String,
    /// The network namespace it runs in (`/proc/PID/ns/net`), when not the test's.
    netns: Option<String>,
    dir: tempfile::TempDir,
    child: Child,
}

/// The processes whose command line names `file` (a lab peer's config, unique to its instance).
fn processes_running(file: &std::path::Path) -> Vec<u32> {
    let needle = file.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

impl Kamailio {
    /// `algorithm`: the digest algorithm Kamailio challenges with (`MD5`, `SHA-256`).
    pub fn start(algorithm: &str) -> Self {
        Self::start_on(free_port(), algorithm)
    }

    pub fn start_on(port: u16, algorithm: &str) -> Self {
        Self::launch(port, None, None, algorithm, None)
    }

    /// Listening on `address` (an address of this machine other than 127.0.0.1), UDP and TCP.
    pub fn start_at(address: &str, algorithm: &str) -> Self {
        let setup = Setup::default();
        Self::launch_set(address, free_port(), None, None, algorithm, None, setup)
    }

    /// Runs in the network namespace `netns`, listening at `address` there; the baresips
    /// started for it run there too.
    pub fn start_in(netns: &Netns, address: &str, algorithm: &str) -> Self {
        let setup = Setup {
            netns: Some(netns.path()),
            ..Setup::default()
        };
        Self::launch_set(address, free_port(), None, None, algorithm, None, setup)
    }

    /// [`Self::start_in`] with SIP over WebSocket and TLS too (the certificate names `address`).
    pub fn start_with_ws_in(netns: &Netns, address: &str) -> Self {
        let setup = Setup {
            netns: Some(netns.path()),
            ..Setup::default()
        };
        Self::launch_set(
            address,
            free_port(),
            Some(free_port()),
            Some((free_port(), free_port())),
            "MD5",
            None,
            setup,
        )
    }

    /// With a `Flow-Timer` of `seconds` instead of [`FLOW_TIMER`].
    pub fn start_with_flow_timer(algorithm: &str, seconds: u32) -> Self {
        let setup = Setup {
            flow_timer: Some(seconds),
            ..Setup::default()
        };
        Self::launch_set("127.0.0.1", free_port(), None, None, algorithm, None, setup)
    }

    /// Also listens for SIP over WebSocket (ws and wss, RFC 7118) and TLS.
    pub fn start_with_ws(algorithm: &str) -> Self {
        Self::launch(
            free_port(),
            Some(free_port()),
            Some((free_port(), free_port())),
            algorithm,
            None,
        )
    }

    /// Like [`Self::start_with_ws`] (TLS, ws and wss), but serving on both TLS sockets the
    /// certificate and key given, such as [`openssl_self_signed`]'s; `ca_file()` is a copy of it.
    pub fn start_with_certificate(algorithm: &str, certificate: &Path, key: &Path) -> Self {
        Self::launch(
            free_port(),
            Some(free_port()),
            Some((free_port(), free_port())),
            algorithm,
            Some((certificate, key)),
        )
    }

    /// Also listens for TLS on `tls_port` with a certificate for 127.0.0.1 and localhost;
    /// `ca_file()` is what clients must trust.
    pub fn start_with_tls(algorithm: &str) -> Self {
        Self::launch(free_port(), Some(free_port()), None, algorithm, None)
    }

    /// The self-signed certificate Kamailio serves over TLS.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn launch(
        port: u16,
        tls_port: Option<u16>,
        ws_ports: Option<(u16, u16)>,
        algorithm: &str,
        certificate: Option<(&Path, &Path)>,
    ) -> Self {
        Self::launch_set(
            "127.0.0.1",
            port,
            tls_port,
            ws_ports,
            algorithm,
            certificate,
            Setup::default(),
        )
    }

    fn launch_set(
        address: &str,
        port: u16,
        tls_port: Option<u16>,
        ws_ports: Option<(u16, u16)>,
        algorithm: &str,
        certificate: Option<(&Path, &Path)>,
        setup: Setup,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/lab/kamailio.cfg"
        ))
        .expect("kamailio.cfg");
        let mut config = template
            .replace("@DIR@", &dir.path().to_string_lossy())
            .replace("@UDP@", &port.to_string())
            .replace("@TCP@", &port.to_string())
            .replace("@TLS@", &tls_port.unwrap_or(0).to_string())
            .replace("@WS@", &ws_ports.map_or(0, |p| p.0).to_string())
            .replace("@WSS@", &ws_ports.map_or(0, |p| p.1).to_string())
            .replace("@ALGORITHM@", algorithm)
            .replace(
                "@FLOW_TIMER@",
                &setup.flow_timer.unwrap_or(FLOW_TIMER).to_string(),
            )
            .replace("listen=udp:127.0.0.1:", &format!("listen=udp:{address}:"))
            .replace("listen=tcp:127.0.0.1:", &format!("listen=tcp:{address}:"))
            .replace("listen=tls:127.0.0.1:", &format!("listen=tls:{address}:"));
        if ws_ports.is_some() {
            config = config.replacen("#!KAMAILIO\n", "#!KAMAILIO\n#!define WITH_WS\n", 1);
        }
        if tls_port.is_some() {
            if let Some((certificate, key)) = certificate {
                std::fs::copy(certificate, dir.path().join("cert.pem")).expect("cert");
                std::fs::copy(key, dir.path().join("key.pem")).expect("key");
            } else {
                let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
                if address != "127.0.0.1" {
                    names.push(address.to_owned());
                }
                let certified = rcgen::generate_simple_self_signed(names).expect("certificate");
                std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).expect("cert");
                std::fs::write(
                    dir.path().join("key.pem"),
                    certified.signing_key.serialize_pem(),
                )
                .expect("key");
            }
            let tls = format!(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\nprivate_key = {0}/key.pem\ncertificate = {0}/cert.pem\n",
                dir.path().display()
            );
            std::fs::write(dir.path().join("tls.cfg"), tls).expect("tls.cfg");
            config = config.replacen("#!KAMAILIO\n", "#!KAMAILIO\n#!define WITH_TLS\n", 1);
        }
        let path = dir.path().join("kamailio.cfg");
        std::fs::write(&path, config).expect("write config");
        let child = Self::spawn(dir.path(), setup.netns.as_deref());
        let mut kamailio = Self {
            port,
            tls_port,
            ws_ports,
            address: address.to_owned(),
            netns: setup.netns,
            dir,
            child,
        };
        kamailio.wait_started();
        kamailio
    }

    fn spawn(dir: &std::path::Path, netns: Option<&str>) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("kamailio.log"))
            .expect("log");
        in_netns(netns, "kamailio")
            .arg("-f")
            .arg(dir.join("kamailio.cfg"))
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-P"])
            .arg(dir.join("kamailio.pid"))
            .arg("-w")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kamailio is installed (./dev setup)")
    }

    fn wait_started(&mut self) {
        // 15 s was once not enough for a Kamailio restarted mid-test while the other namespace
        // tests loaded both cores (its log showed a normal start, its RPC not yet answering).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.rpc("core.version").contains("kamailio") {
            assert!(
                Instant::now() < deadline,
                "kamailio did not start:\n{}",
                self.log()
            );
            // Started again on its ports a moment after it stopped, it once found one still
            // taken ("Address already in use") and exited: it is started again until one frees.
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(500));
                self.child = Self::spawn(self.dir.path(), self.netns.as_deref());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops Kamailio (every connection to it drops, its registrations are lost) and starts it
    /// again on the same ports with the same certificate.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(self.dir.path(), self.netns.as_deref());
        self.wait_started();
    }

    /// Starts it again after [`Self::stop`], on the same ports.
    pub fn start_again(&mut self) {
        self.child = Self::spawn(self.dir.path(), self.netns.as_deref());
        self.wait_started();
    }

    /// Freezes every Kamailio process (SIGSTOP): connections stay open, nothing is answered —
    /// a hung server or a path that silently drops.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Undoes [`Self::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let main = self.child.id().to_string();
        let _ = Command::new("pkill").args([signal, "-P", &main]).status();
        let _ = Command::new("kill").args([signal, &main]).status();
    }

    /// SIGTERM, not SIGKILL: Kamailio forks workers, and only its main process stopping cleanly
    /// takes them down too (a killed main process leaves them running).
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // A paused Kamailio (a test that failed before resuming it) would not hear SIGTERM.
        self.resume();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Its worker processes are told to stop by the main one, and once some outlived it,
        // orphaned, holding its listening sockets: started again on the same ports, Kamailio
        // could not bind ("Address already in use"). Whatever runs this instance's config goes.
        let config = self.dir.path().join("kamailio.cfg");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = processes_running(&config);
            if left.is_empty() || Instant::now() >= deadline {
                break;
            }
            for pid in left {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

    /// `user`'s contacts once Kamailio holds at least one (its location table is updated just
    /// after it answers the REGISTER), waiting at most 5 s.
    pub fn wait_contacts(&self, user: &str) -> Vec<String> {
        eventually(
            "the contact in Kamailio's location table",
            Duration::from_secs(5),
            || {
                let contacts = self.contacts(user);
                (!contacts.is_empty()).then_some(contacts)
            },
        )
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
        self.stop();
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost made the way many PBX admins make one,
/// `openssl req -x509` (which marks it `CA:TRUE`), written to `dir` as `NAME.pem` and
/// `NAME.key`. Returns (certificate, key).
pub fn openssl_self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (certificate, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args(["-subj", "/CN=pbx"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&certificate)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl req -x509: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (certificate, key)
}

/// The certificate's SHA-256 as `sha256:AB:CD:…`, computed by OpenSSL (not by the daemon), the way
/// an admin would get it: `openssl x509 -noout -fingerprint -sha256`.
pub fn openssl_fingerprint(certificate: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(certificate)
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, hex) = text
        .trim()
        .split_once('=')
        .unwrap_or_else(|| panic!("openssl fingerprint output: {text}"));
    format!("sha256:{hex}")
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

/// A port whose successor is free too, both for UDP and TCP on 127.0.0.1.
pub fn free_port_pair() -> u16 {
    loop {
        let port = free_port();
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", next)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", next)).is_ok()
        {
            return port;
        }
    }
}

/// baresip as the far-end phone: registers as `user` (password `secret{user}`) with Kamailio,
/// answers automatically, plays `tone_hz` from a WAV, records what it hears (`sndfile`), and
/// takes commands over `ctrl_tcp`.
pub struct Baresip {
    dir: tempfile::TempDir,
    /// Where it listens, SIP, media and ctrl_tcp alike: its Kamailio's address.
    address: String,
    ctrl_port: u16,
    /// Where it listens for SIP (it also takes calls sent straight to it).
    pub sip_port: u16,
    child: Child,
}

/// Network jitter and loss without netem (this kernel has none): `tests/lab/jitter.c`, built with
/// the system's C compiler, loaded into a sender with `LD_PRELOAD`, holds back each RTP/RTCP
/// packet it sends for a random 0..2·J ms and drops L % of its RTP packets (set with
/// [`Jitter::set`]), the draws seeded anew at each of the sender's streams.
pub struct Jitter {
    dir: tempfile::TempDir,
}

/// A new folder holding `tests/lab/{name}.c` built by the system's C compiler as `{name}.so`, a
/// library to load with `LD_PRELOAD`.
fn build_preload(name: &str, libraries: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(dir.path().join(format!("{name}.so")))
        .arg(format!(
            "{}/../tests/lab/{name}.c",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args(libraries)
        .status()
        .expect("a C compiler (cc)");
    assert!(status.success(), "tests/lab/{name}.c builds");
    dir
}

impl Jitter {
    pub fn build() -> Self {
        let jitter = Self {
            dir: build_preload("jitter", &["-ldl", "-lpthread"]),
        };
        jitter.set(0, 0, 0);
        jitter
    }

    /// The sender's next stream (its next call) is late by a uniform 0..2·`ms` per packet (0:
    /// none) and loses `loss` % of its RTP packets, both drawn from `seed`, so streams started
    /// under the same seed meet the same network. The library reads this at a stream's first
    /// packet (and every 100 ms), so it is set before the call, with nothing to wait for.
    pub fn set(&self, ms: u32, loss: u32, seed: u32) {
        std::fs::write(
            self.dir.path().join("jitter-ms"),
            format!("{ms} {loss} {seed}"),
        )
        .expect("jitter control");
    }

    fn env(&self) -> Vec<(&'static str, std::path::PathBuf)> {
        vec![
            ("LD_PRELOAD", self.dir.path().join("jitter.so")),
            ("JITTER_CONTROL", self.dir.path().join("jitter-ms")),
        ]
    }
}

/// A receiving baresip's played-out audio (for the voice-quality bench): its player is ALSA's
/// `file` plugin, which writes each frame played to a file, paced to real time by
/// `tests/lab/paced_alsa.c` (built with the system's C compiler, loaded with `LD_PRELOAD`) as a
/// sound card would pace it — so what is recorded is after its jitter buffer and playout, as
/// our daemon's file backend records ours, not before them as `sndfile` does.
pub struct Playout {
    dir: tempfile::TempDir,
}

impl Playout {
    pub fn build() -> Self {
        Self {
            dir: build_preload("paced_alsa", &["-ldl", "-lasound", "-lpthread"]),
        }
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("played.raw")
    }

    /// What the last call of a baresip using `codec` played out (the file is truncated at each
    /// call's start), its first channel, with its rate: raw 16-bit samples in the format
    /// baresip opens its player with for the codec.
    pub fn last_call(&self, codec: &str) -> Option<(u32, Vec<i16>)> {
        let (rate, channels) = audio_format(codec);
        let samples = first_channel(&std::fs::read(self.file()).ok()?, usize::from(channels));
        (!samples.is_empty()).then_some((rate, samples))
    }
}

/// What [`Baresip::launch`] adds to a plain start.
#[derive(Default)]
struct Extras {
    env: Vec<(&'static str, std::path::PathBuf)>,
    /// Modules loaded besides the template's.
    modules: Vec<&'static str>,
    /// Settings of its config file (key, value): replacing the template's, or added.
    settings: Vec<(&'static str, String)>,
}

impl Extras {
    /// `template` with the modules and settings.
    fn apply(&self, template: &str) -> String {
        let mut lines: Vec<String> = template.lines().map(str::to_owned).collect();
        for (key, value) in &self.settings {
            let line = format!("{key}\t\t{value}");
            match lines
                .iter_mut()
                .find(|l| l.split_whitespace().next() == Some(*key))
            {
                Some(existing) => *existing = line,
                None => lines.push(line),
            }
        }
        lines.extend(self.modules.iter().map(|m| format!("module\t\t\t{m}")));
        lines.join("\n") + "\n"
    }
}

/// What baresip plays into its calls.
enum Source<'a> {
    /// A sine at this frequency, half scale.
    Tone(f64),
    /// A WAV at the codec's rate.
    File(&'a std::path::Path),
    /// What it hears: its player bridged to its source (baresip's `aubridge`), so what comes
    /// back has been through its whole receive and send paths.
    Echo,
}

impl Baresip {
    /// `codec`: the one codec it offers/accepts (`PCMU`, `PCMA`, `opus/48000/2`). Answers at once.
    pub fn start(kamailio: &Kamailio, user: &str, tone_hz: f64, codec: &str) -> Self {
        Self::start_with(kamailio, user, tone_hz, codec, "auto")
    }

    /// `answermode`: `auto`, or `manual` to let calls ring until a `hangup` (486) or `accept`.
    pub fn start_with(
        kamailio: &Kamailio,
        user: &str,
        tone_hz: f64,
        codec: &str,
        answermode: &str,
    ) -> Self {
        Self::start_with_params(kamailio, user, tone_hz, codec, answermode, "")
    }

    /// `params`: more account parameters, such as `;mediaenc=srtp-mand`.
    pub fn start_with_params(
        kamailio: &Kamailio,
        user: &str,
        tone_hz: f64,
        codec: &str,
        answermode: &str,
        params: &str,
    ) -> Self {
        Self::launch(
            kamailio,
            user,
            Source::Tone(tone_hz),
            codec,
            answermode,
            params,
            Extras::default(),
        )
    }

    /// Playing `source` (a WAV at the codec's rate: 8 kHz mono for G.711, 48 kHz stereo for
    /// Opus, and longer than the call) instead of a tone.
    pub fn start_playing(
        kamailio: &Kamailio,
        user: &str,
        source: &std::path::Path,
        codec: &str,
        answermode: &str,
    ) -> Self {
        Self::launch(
            kamailio,
            user,
            Source::File(source),
            codec,
            answermode,
            "",
            Extras::default(),
        )
    }

    /// [`Self::start_playing`], its RTP sent through `jitter`'s delays.
    pub fn start_playing_jittered(
        kamailio: &Kamailio,
        user: &str,
        source: &std::path::Path,
        codec: &str,
        jitter: &Jitter,
    ) -> Self {
        let extras = Extras {
            env: jitter.env(),
            ..Extras::default()
        };
        Self::launch(
            kamailio,
            user,
            Source::File(source),
            codec,
            "auto",
            "",
            extras,
        )
    }

    /// [`Self::start`] (a tone, answering at once), playing out what it hears into `playout`.
    pub fn start_playing_out(
        kamailio: &Kamailio,
        user: &str,
        codec: &str,
        playout: &Playout,
    ) -> Self {
        let env = vec![("LD_PRELOAD", playout.dir.path().join("paced_alsa.so"))];
        let player = format!("alsa,file:{}", playout.file().display());
        Self::launch_on_alsa(kamailio, user, codec, env, vec![("audio_player", player)])
    }

    /// On the default ALSA devices (its `alsa` module), in the environment `env` (a
    /// [`sound_server::SoundServer`]'s). Answers at once.
    pub fn start_on_devices(
        kamailio: &Kamailio,
        user: &str,
        codec: &str,
        env: &[(&'static str, String)],
    ) -> Self {
        let env = env.iter().map(|(k, v)| (*k, PathBuf::from(v))).collect();
        let devices = vec![
            ("audio_source", "alsa,default".to_owned()),
            ("audio_player", "alsa,default".to_owned()),
        ];
        Self::launch_on_alsa(kamailio, user, codec, env, devices)
    }

    /// Answering at once, with its `alsa` module and `settings` (its ring and beeps elsewhere,
    /// not into what is measured); a tone, unless `settings` name another source.
    fn launch_on_alsa(
        kamailio: &Kamailio,
        user: &str,
        codec: &str,
        env: Vec<(&'static str, PathBuf)>,
        mut settings: Vec<(&'static str, String)>,
    ) -> Self {
        settings.push(("audio_alert", "alsa,null".to_owned()));
        let extras = Extras {
            env,
            modules: vec!["alsa.so"],
            settings,
        };
        Self::launch(
            kamailio,
            user,
            Source::Tone(441.0),
            codec,
            "auto",
            "",
            extras,
        )
    }

    /// Sending back what it hears, through its jitter buffer, player, source and encoder
    /// (`aubridge`): an echo with baresip's own delay in it. Answers at once.
    pub fn start_echoing(kamailio: &Kamailio, user: &str, codec: &str) -> Self {
        Self::launch(
            kamailio,
            user,
            Source::Echo,
            codec,
            "auto",
            "",
            Extras::default(),
        )
    }

    fn launch(
        kamailio: &Kamailio,
        user: &str,
        source: Source<'_>,
        codec: &str,
        answermode: &str,
        params: &str,
        extras: Extras,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let tone = dir.path().join("tone.wav");
        // Longer than any call: baresip hangs up when its source file ends. Its aufile source
        // must match the codec's rate.
        let (rate, channels) = audio_format(codec);
        let echo = matches!(source, Source::Echo);
        match source {
            Source::File(file) => {
                std::fs::copy(file, &tone).expect("baresip's source file");
            }
            Source::Tone(hz) => write_tone_channels(&tone, rate, channels, hz, 0.5, 120.0),
            Source::Echo => write_tone_channels(&tone, rate, channels, 440.0, 0.0, 1.0),
        }
        let recordings = dir.path().join("rec");
        std::fs::create_dir_all(&recordings).expect("rec dir");
        let conf = dir.path().join("conf");
        std::fs::create_dir_all(&conf).expect("conf dir");
        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/lab/baresip.conf"
        ))
        .expect("baresip.conf");
        // Echoing: its player bridged to its source, instead of playing the tone file.
        let template = if echo {
            let source = "audio_source\t\taufile,@TONE@";
            assert!(
                template.contains(source),
                "baresip.conf names its source as {source:?}"
            );
            template.replace(
                source,
                "audio_source\t\taubridge,echo\naudio_player\t\taubridge,echo\nmodule\t\t\taubridge.so",
            )
        } else {
            template
        };
        let template = extras.apply(&template);
        std::fs::write(
            conf.join("accounts"),
            format!("<sip:{user}@{}:{}>;auth_pass=secret{user};answermode={answermode};audio_codecs={codec}{params}\n", kamailio.address, kamailio.port),
        )
        .expect("accounts");
        // Across a link (Kamailio in a namespace of its own) baresip lives beside Kamailio, at
        // its address; otherwise on 127.0.0.1 whatever Kamailio's address.
        let address = match kamailio.netns {
            Some(_) => kamailio.address.clone(),
            None => "127.0.0.1".to_owned(),
        };
        // Ports are picked free but may be taken by a parallel test before baresip binds them;
        // baresip then exits at once, and a new start with new ports is the cure.
        for attempt in 1..=3 {
            // baresip listens for TLS on the SIP port + 1: both must be free.
            let (sip_port, ctrl_port) = (free_port_pair(), free_port());
            let config = template
                .replace("@SIP@", &sip_port.to_string())
                .replace("@CTRL@", &ctrl_port.to_string())
                .replace("@TONE@", &tone.to_string_lossy())
                .replace("@REC@", &recordings.to_string_lossy())
                .replace("127.0.0.1", &address);
            std::fs::write(conf.join("config"), config).expect("config");
            let log = std::fs::File::create(dir.path().join("baresip.log")).expect("log");
            let mut child = in_netns(kamailio.netns.as_deref(), "baresip")
                .envs(extras.env.iter().map(|(k, v)| (k, v)))
                .arg("-f")
                .arg(&conf)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("baresip is installed (./dev setup)");
            let log =
                || std::fs::read_to_string(dir.path().join("baresip.log")).unwrap_or_default();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if !kamailio.contacts(user).is_empty() {
                    return Self {
                        dir,
                        address: address.clone(),
                        ctrl_port,
                        sip_port,
                        child,
                    };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(
                        attempt < 3,
                        "baresip exited ({status}) three times:\n{}",
                        log()
                    );
                    eprintln!("baresip exited ({status}); starting it again:\n{}", log());
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "timed out waiting for baresip to register:\n{}\n--- kamailio ---\n{}",
                        log(),
                        kamailio.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        unreachable!("the loop returns or panics")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the phone vanishes mid-call without a word (a crash, a pulled cable).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a ctrl_tcp command (JSON in a netstring) and waits for baresip's response to it.
    pub fn command(&self, command: &str, params: &str) {
        use std::io::{Read, Write};
        let body = format!(r#"{{"command":"{command}","params":"{params}","token":"t"}}"#);
        // ctrl_tcp may still be starting up (or restarting its listener) under load.
        let mut stream = eventually("baresip's ctrl_tcp", Duration::from_secs(10), || {
            std::net::TcpStream::connect((self.address.as_str(), self.ctrl_port)).ok()
        });
        stream
            .write_all(format!("{}:{body},", body.len()).as_bytes())
            .expect("send");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut seen = Vec::new();
        let mut chunk = [0u8; 2048];
        while !String::from_utf8_lossy(&seen).contains(r#""response":true"#) {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => panic!("baresip did not answer `{command}`:\n{}", self.log()),
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Bytes baresip has recorded so far, over all its calls (the files grow while calls run).
    pub fn recorded_bytes(&self) -> u64 {
        std::fs::read_dir(self.dir.path().join("rec"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with("-dec.wav"))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// How many calls baresip has recorded (one `-dec.wav` each).
    pub fn recording_count(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("rec")).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with("-dec.wav"))
                .count()
        })
    }

    /// Samples baresip received and decoded, once a call's recording is closed.
    pub fn recording(&self) -> Option<(u32, Vec<i16>)> {
        let entries = std::fs::read_dir(self.dir.path().join("rec")).ok()?;
        let path = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))?;
        read_wav(&path)
    }

    /// The newest call's decoded samples, once its recording is closed (for a phone that had
    /// several calls).
    pub fn newest_recording(&self) -> Option<(u32, Vec<i16>)> {
        let entries = std::fs::read_dir(self.dir.path().join("rec")).ok()?;
        let path = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with("-dec.wav"))
            .max_by_key(|e| {
                e.metadata()
                    .and_then(|m| m.created().or_else(|_| m.modified()))
                    .ok()
            })?
            .path();
        read_wav(&path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `grace` for a child asked to stop, then kills it.
pub fn wait_or_kill(child: &mut Child, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Writes a mono 16-bit sine tone.
pub fn write_tone(path: &std::path::Path, rate: u32, hz: f64, amplitude: f64, seconds: f64) {
    write_tone_channels(path, rate, 1, hz, amplitude, seconds);
}

/// Writes a 16-bit sine tone, the same in every channel.
pub fn write_tone_channels(
    path: &std::path::Path,
    rate: u32,
    channels: u16,
    hz: f64,
    amplitude: f64,
    seconds: f64,
) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("tone file");
    for n in 0..(f64::from(rate) * seconds) as u32 {
        let v = amplitude
            * 32767.0
            * (2.0 * std::f64::consts::PI * hz * f64::from(n) / f64::from(rate)).sin();
        for _ in 0..channels {
            writer.write_sample(v as i16).expect("sample");
        }
    }
    writer.finalize().expect("finalize");
}

/// Reads a 16-bit PCM WAV (first channel) with its rate; `None` if unreadable or empty.
/// baresip 1.0's `sndfile` never finalizes its header (the data length stays 0), so a zero or
/// oversized data length means "to the end of the file".
pub fn read_wav(path: &std::path::Path) -> Option<(u32, Vec<i16>)> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.get(0..4)? != b"RIFF" || bytes.get(8..12)? != b"WAVE" {
        return None;
    }
    let (mut at, mut rate, mut channels) = (12usize, 0u32, 1usize);
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        let body = at + 8;
        if id == b"fmt " {
            let fmt = bytes.get(body..body + 16)?;
            let bits = u16::from_le_bytes([fmt[14], fmt[15]]);
            if u16::from_le_bytes([fmt[0], fmt[1]]) != 1 || bits != 16 {
                return None;
            }
            channels = usize::from(u16::from_le_bytes([fmt[2], fmt[3]]).max(1));
            rate = u32::from_le_bytes(fmt[4..8].try_into().ok()?);
        } else if id == b"data" {
            let end = if size == 0 || body + size > bytes.len() {
                bytes.len()
            } else {
                body + size
            };
            let samples = first_channel(&bytes[body..end], channels);
            return (rate > 0 && !samples.is_empty()).then_some((rate, samples));
        }
        at = body + size + (size & 1);
    }
    None
}

/// The first channel of interleaved 16-bit little-endian samples.
fn first_channel(bytes: &[u8], channels: usize) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .step_by(channels.max(1))
        .collect()
}

/// The rate and channels baresip runs a codec's audio at (its `aufile` source must match them,
/// and its player opens with them): `opus/48000/2` 48 kHz stereo, G.722 16 kHz, G.711 8 kHz.
pub fn audio_format(codec: &str) -> (u32, u16) {
    if codec.to_ascii_lowercase().starts_with("opus") {
        (48000, 2)
    } else if codec.eq_ignore_ascii_case("g722") {
        (16000, 1)
    } else {
        (8000, 1)
    }
}

/// What a recording sounds like: the strongest of the probed frequencies and the level.
#[derive(Debug)]
pub struct ToneReport {
    /// (frequency, power relative to the total) for each probe, strongest first.
    pub peaks: Vec<(f64, f64)>,
    /// RMS level in dBFS of the analysed middle part.
    pub level_dbfs: f64,
    pub seconds: f64,
}

/// Goertzel power at each probe frequency over the middle of the recording (skipping start-up
/// and hang-up), relative to the signal's total power.
pub fn analyse(rate: u32, samples: &[i16], probes: &[f64]) -> ToneReport {
    let seconds = samples.len() as f64 / f64::from(rate);
    let skip = samples.len() / 5;
    let middle: Vec<f64> = samples[skip..samples.len() - skip]
        .iter()
        .map(|s| f64::from(*s) / 32768.0)
        .collect();
    let energy: f64 = middle.iter().map(|x| x * x).sum();
    let rms = (energy / middle.len().max(1) as f64).sqrt();
    // Goertzel over 100 ms blocks, summed: a receiver that drops or repeats a frame now and then
    // (clock drift between two phones, which a jitter buffer must absorb) shifts the tone's phase,
    // and one Goertzel over seconds would count that as "something else". Per block it does not.
    let block = (rate as usize / 10).max(1);
    let mut peaks: Vec<(f64, f64)> = probes
        .iter()
        .map(|&hz| {
            let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
            let coefficient = 2.0 * w.cos();
            let power: f64 = middle
                .chunks_exact(block)
                .map(|chunk| {
                    let (mut s1, mut s2) = (0.0, 0.0);
                    for x in chunk {
                        let s0 = x + coefficient * s1 - s2;
                        s2 = s1;
                        s1 = s0;
                    }
                    // A pure sine of energy E gives Goertzel power N·E/2.
                    2.0 * (s1 * s1 + s2 * s2 - coefficient * s1 * s2) / block as f64
                })
                .sum();
            let blocks_energy: f64 = middle.chunks_exact(block).flatten().map(|x| x * x).sum();
            (hz, power / blocks_energy.max(f64::EPSILON))
        })
        .collect();
    peaks.sort_by(|a, b| b.1.total_cmp(&a.1));
    ToneReport {
        peaks,
        level_dbfs: 20.0 * rms.max(1e-9).log10(),
        seconds,
    }
}
