//! Harness for end-to-end tests: starts the real `softphone-bridge` binary on a free loopback
//! port with its own data directory and config, and speaks WSS to it trusting only its CA.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use softphone_bridge::client::{self, ClientStream, Target};
use tokio_tungstenite::tungstenite::Message;

pub const BIN: &str = env!("CARGO_BIN_EXE_softphone-bridge");
pub const CRM: &str = "https://crm.example.com";
const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub ca: CertificateDer<'static>,
    child: Child,
    /// A copy of the binary another OS user may run (see [`Daemon::start_as`]).
    binary: Option<tempfile::TempDir>,
}

impl Daemon {
    /// Starts a daemon allowing `CRM`, with `extra` appended to its config file.
    pub fn start(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, extra)
    }

    pub fn start_in(dir: tempfile::TempDir, extra: &str) -> Self {
        Self::launch(dir, extra, &[], true)
    }

    /// Starts the daemon as another OS `user` (uid, gid), as on a terminal server where every
    /// agent runs their own. Its data folder becomes theirs; it runs a copy of the binary in a
    /// folder anyone may enter, since the build folder may sit under a private home.
    pub fn start_as(dir: tempfile::TempDir, extra: &str, user: (u32, u32)) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let binary = tempfile::tempdir().expect("tempdir");
        let copy = binary.path().join("softphone-bridge");
        std::fs::copy(BIN, &copy).expect("copy the binary");
        std::fs::set_permissions(binary.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::os::unix::fs::chown(dir.path(), Some(user.0), Some(user.1)).expect("chown");
        let mut daemon = Self::spawn(dir, extra, &[], true, Some((user, &copy)));
        daemon.binary = Some(binary);
        daemon
    }

    /// Starts with extra environment variables; `headless: false` lets it try to show a tray.
    pub fn launch(
        dir: tempfile::TempDir,
        extra: &str,
        env: &[(&str, &str)],
        headless: bool,
    ) -> Self {
        Self::spawn(dir, extra, env, headless, None)
    }

    fn spawn(
        dir: tempfile::TempDir,
        extra: &str,
        env: &[(&str, &str)],
        headless: bool,
        user: Option<((u32, u32), &Path)>,
    ) -> Self {
        let config = dir.path().join("config.toml");
        if !config.exists() {
            // The demo line is off unless a test asks for it, so "no line" stays testable.
            let demo = if extra.contains("[demo]") {
                ""
            } else {
                "[demo]\nline = false\n"
            };
            std::fs::write(
                &config,
                format!("{demo}[api]\nport = 0\nallowed_origins = [\"{CRM}\"]\n{extra}"),
            )
            .expect("config");
        }
        let info = dir.path().join("daemon.json");
        // A daemon killed before (restart tests) left its port behind: wait for the new one.
        let _ = std::fs::remove_file(&info);
        let mut run = match user {
            Some((user, binary)) => {
                std::os::unix::fs::chown(&config, Some(user.0), Some(user.1)).expect("chown");
                isolated(as_user(user, binary), dir.path())
            }
            None => command(dir.path()),
        };
        run.envs(env.iter().copied()).arg("run");
        if headless {
            run.arg("--headless");
        }
        let child = run
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("daemon starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            let parsed = std::fs::read_to_string(&info)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok());
            if let Some(port) = parsed.and_then(|v| v["port"].as_u64()) {
                break u16::try_from(port).expect("port");
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not start; log:\n{}",
                log(dir.path())
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let ca = CertificateDer::from_pem_file(dir.path().join("certs/ca.pem")).expect("ca.pem");
        Daemon {
            dir,
            port,
            ca,
            child,
            binary: None,
        }
    }

    /// The copy of the binary a daemon of another OS user runs.
    pub fn binary_path(&self) -> Option<std::path::PathBuf> {
        self.binary
            .as_ref()
            .map(|dir| dir.path().join("softphone-bridge"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn target(&self, origin: Option<&str>) -> Target {
        Target::new(self.port, origin)
    }

    pub async fn connect(&self, origin: &str) -> Client {
        self.connect_to(self.target(Some(origin))).await
    }

    pub async fn connect_to(&self, target: Target) -> Client {
        Client::connect(target, &self.ca).await
    }

    /// Runs the CLI against this daemon's data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        command(self.dir.path())
            .args(args)
            .output()
            .expect("cli runs")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the daemon to stop (SIGTERM), as a service manager would.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits up to `timeout` for the daemon to exit by itself; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log(&self) -> String {
        log(self.dir.path())
    }

    /// Its data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the daemon and hands back its data directory (for restart tests).
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A profiled daemon (`./dev link-order`) writes its profile when it exits by itself.
        if profiler().is_some() {
            self.terminate();
            let _ = self.wait_exit(Duration::from_secs(60));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `softphone-bridge config check FILE` on `dir/name` holding `text`.
pub fn check_config(dir: &Path, name: &str, text: &str) -> Output {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("write the config file");
    command(dir)
        .args(["config", "check"])
        .arg(&file)
        .output()
        .expect("cli runs")
}

/// A CLI command isolated from the machine's real config files.
pub fn command(data_dir: &Path) -> Command {
    let command = match profiler() {
        Some(profiler) => {
            let words: Vec<&str> = profiler.split_whitespace().collect();
            let mut command = Command::new(words[0]); // not blank: `profiler` checked
            command.args(&words[1..]).arg(BIN);
            command
        }
        None => Command::new(BIN),
    };
    isolated(command, data_dir)
}

/// `SOFTPHONE_BRIDGE_PROFILER`: a command line the daemons run under (`./dev link-order` sets
/// it to callgrind); unset for tests.
fn profiler() -> Option<String> {
    std::env::var("SOFTPHONE_BRIDGE_PROFILER")
        .ok()
        .filter(|p| !p.trim().is_empty())
}

fn isolated(mut command: Command, data_dir: &Path) -> Command {
    command
        .env("SOFTPHONE_BRIDGE_SYSTEM_CONFIG", "")
        .env("SOFTPHONE_BRIDGE_USER_CONFIG", "")
        .env_remove("RUST_LOG")
        .arg("--data-dir")
        .arg(data_dir);
    command
}

/// Seconds of audio a mono 16-bit WAV being written holds so far, at the rate its header says
/// (0 before the header is there).
pub fn wav_seconds(path: &Path) -> f64 {
    let Ok(bytes) = std::fs::read(path) else {
        return 0.0;
    };
    let Some(rate) = bytes
        .get(24..28)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .filter(|r| *r > 0)
    else {
        return 0.0;
    };
    bytes.len().saturating_sub(44) as f64 / 2.0 / f64::from(rate)
}

/// util-linux's tool to run a command as another OS user.
pub const SETPRIV: &str = "/usr/bin/setpriv";
/// The throwaway account playing "another agent on the terminal server".
pub const OTHER_USER: &str = "sb-test-other";
const PYTHON: &str = "/usr/bin/python3";

/// The uid and gid of the throwaway user, created if missing; `None` (with the reason printed)
/// when this machine cannot run the test.
pub fn other_user() -> Option<(u32, u32)> {
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

/// Connects to `host:port` over TLS (trusting only the CA in `$CA_PEM`, or the system store when it is
/// empty) and asks for a WebSocket upgrade with the allowed `Origin`. Prints the status line, or
/// `refused <why>` when the daemon closed the connection before answering. The socket timeout only
/// bounds a hung daemon.
const CLIENT: &str = r#"
import os, socket, ssl, sys
host, port, origin = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ca = os.environ.get("CA_PEM")
context = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
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

/// Runs [`CLIENT`] against the daemon whose data folder is `data_dir` at `host:port`, as `user`
/// (uid, gid) or as ourselves; its one line (`HTTP/1.1 101 …` or `refused …`).
pub fn try_upgrade(data_dir: &Path, host: &str, port: u16, user: Option<(u32, u32)>) -> String {
    let ca = std::fs::read_to_string(data_dir.join("certs/ca.pem")).expect("ca.pem");
    upgrade(host, port, Some(&ca), user)
}

/// Runs [`CLIENT`] against `host:port` trusting only `ca` (PEM), or with `None` the system's
/// trust store, as `user` (uid, gid) or as ourselves.
pub fn upgrade(host: &str, port: u16, ca: Option<&str>, user: Option<(u32, u32)>) -> String {
    let mut command = match user {
        Some(user) => as_user(user, PYTHON),
        None => Command::new(PYTHON),
    };
    let out = command
        .args(["-I", "-c", CLIENT, host, &port.to_string(), CRM])
        .env("CA_PEM", ca.unwrap_or_default())
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

/// `program` run as `user` (uid, gid) with no supplementary groups.
pub fn as_user((uid, gid): (u32, u32), program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(SETPRIV);
    command
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(program);
    command
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("logs/softphone-bridge.log")).unwrap_or_default()
}

pub struct Client {
    pub ws: ClientStream,
    next_id: u64,
    pub hello: Option<Value>,
    /// Events that arrived while waiting for a reply, kept for [`Client::event`].
    pending: std::collections::VecDeque<Value>,
}

impl Client {
    /// Connects to a daemon at `target` trusting only `ca`; returns once `hello` arrived.
    pub async fn connect(target: Target, ca: &CertificateDer<'static>) -> Self {
        let ws = client::connect(&target, ca)
            .await
            .unwrap_or_else(|e| panic!("connect {target:?}: {e}"));
        let mut client = Client {
            ws,
            next_id: 1,
            hello: None,
            pending: Default::default(),
        };
        let hello = client.next_message().await;
        assert_eq!(hello["event"], "hello", "first frame is hello: {hello}");
        client.hello = Some(hello);
        client
    }

    /// Events received but not yet taken with [`Self::event`].
    pub fn pending_events(&self) -> Vec<Value> {
        self.pending.iter().cloned().collect()
    }

    pub fn hello(&self) -> &Value {
        self.hello.as_ref().expect("hello")
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next JSON frame; fails the test after 5 s.
    pub async fn next_message(&mut self) -> Value {
        self.message_within(READ_TIMEOUT)
            .await
            .expect("a frame within 5 s")
    }

    /// The next JSON frame if one comes within `within`.
    async fn message_within(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?
                .expect("connection open")
                .expect("frame reads");
            match frame {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("JSON frame"));
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Like [`Client::next_event`], but `None` when nothing comes within `within` (a slow peer
    /// is not a failure yet).
    pub async fn next_event_within(&mut self, within: Duration) -> Option<Value> {
        match self.pending.pop_front() {
            Some(message) => Some(message),
            None => self.message_within(within).await,
        }
    }

    /// The next event: one that came in while waiting for a reply first (the daemon sends what an
    /// action caused before its reply), else the next frame.
    pub async fn next_event(&mut self) -> Value {
        match self.pending.pop_front() {
            Some(message) => message,
            None => self.next_message().await,
        }
    }

    /// Sends an action and returns its reply, collecting any events that arrive first.
    pub async fn request(&mut self, action: &str, params: Value) -> (Value, Vec<Value>) {
        let id = self.next_id;
        self.next_id += 1;
        let mut frame = json!({ "id": id, "action": action });
        if !params.is_null() {
            frame["params"] = params;
        }
        self.send_text(&frame.to_string()).await;
        let mut events = Vec::new();
        loop {
            let message = self.next_message().await;
            if message.get("event").is_some() {
                self.pending.push_back(message.clone());
                events.push(message);
            } else {
                assert_eq!(message["id"], json!(id), "reply to our request");
                return (message, events);
            }
        }
    }

    /// The payload of the next `registrationChanged` whose state is `state`.
    pub async fn registration(&mut self, state: &str) -> Value {
        let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
        loop {
            let event = self.event("registrationChanged").await;
            if event["payload"]["state"] == state {
                return event["payload"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no registration `{state}` within {EVENT_DEADLINE:?}; last: {event}"
            );
        }
    }

    /// Returns once the line is registered: already in `hello`, or by a later event.
    /// The line's failure — `{state, reason, …}` — from the snapshot if it failed before this
    /// page connected (a failure that is not retried sends no second event), else the event.
    pub async fn registration_failure(&mut self) -> Value {
        let line = &self.hello()["payload"]["state"]["line"];
        if line["state"] == "failed" {
            return line.clone();
        }
        self.registration("failed").await
    }

    pub async fn registered(&mut self) {
        if self.hello()["payload"]["state"]["line"]["state"] != "registered" {
            self.registration("registered").await;
        }
    }

    /// [`Self::event`] for an event that may follow a silence longer than one frame's wait
    /// (nothing else is sent meanwhile); fails the test after `within`.
    pub async fn event_after_silence(&mut self, name: &str, within: Duration) -> Value {
        match self.event_within(name, within).await {
            Some(event) => event,
            None => panic!("no `{name}` within {within:?}"),
        }
    }

    /// The next event named `name` if one comes within `within` (other events are skipped).
    pub async fn event_within(&mut self, name: &str, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next_event_within(left).await?;
            if message["event"] == name {
                return Some(message);
            }
        }
    }

    /// The next event named `name` (including ones that arrived during a request), skipping others.
    pub async fn event(&mut self, name: &str) -> Value {
        while let Some(message) = self.pending.pop_front() {
            if message["event"] == name {
                return message;
            }
        }
        // Other events (a line failing over and over) must not keep us waiting forever.
        let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
        loop {
            let message = self.next_message().await;
            if message["event"] == name {
                return message;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no `{name}` within {EVENT_DEADLINE:?}; last: {message}"
            );
        }
    }

    /// `start_call` to `dial_to`; returns the new call's `conversationId`.
    pub async fn start_call(&mut self, dial_to: &str) -> String {
        let (reply, _) = self
            .request("start_call", json!({ "dialTo": dial_to }))
            .await;
        conversation_id(&reply["result"], &reply)
    }

    /// Waits for `incomingCall`; returns its `conversationId` and payload.
    /// Asks for the snapshot and checks that `id` is its first call: a call that survived
    /// `what` (a restart, a failover, a failed transfer) is still listed.
    pub async fn assert_call_listed(&mut self, id: &str, what: &str) {
        let (state, _) = self.request("get_state", Value::Null).await;
        assert_eq!(
            state["result"]["state"]["calls"][0]["conversationId"], id,
            "the call outlived {what}: {state}"
        );
    }

    pub async fn incoming_call(&mut self) -> (String, Value) {
        let incoming = self.event("incomingCall").await;
        let payload = incoming["payload"].clone();
        (conversation_id(&payload, &incoming), payload)
    }
}

fn conversation_id(holder: &Value, context: &Value) -> String {
    holder["conversationId"]
        .as_str()
        .unwrap_or_else(|| panic!("a conversationId in {context}"))
        .to_owned()
}

/// Longest wait for one named event while others keep arriving.
const EVENT_DEADLINE: Duration = Duration::from_secs(30);

/// Polls `check` until it holds, for at most `timeout`: waits on observable state, never a
/// fixed sleep.
pub fn eventually<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    eventually_or(what, timeout, check, String::new)
}

/// [`eventually`], with `explain`'s clue (say, the daemon's log lines) in the failure.
pub fn eventually_or<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}\n{}", explain());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
