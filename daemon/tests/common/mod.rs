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

    /// Starts with extra environment variables; `headless: false` lets it try to show a tray.
    pub fn launch(
        dir: tempfile::TempDir,
        extra: &str,
        env: &[(&str, &str)],
        headless: bool,
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
        let mut run = command(dir.path());
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
        }
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
        let ws = client::connect(&target, &self.ca)
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
    let mut command = Command::new(BIN);
    command
        .env("SOFTPHONE_BRIDGE_SYSTEM_CONFIG", "")
        .env("SOFTPHONE_BRIDGE_USER_CONFIG", "")
        .env_remove("RUST_LOG")
        .arg("--data-dir")
        .arg(data_dir);
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
        loop {
            let frame = tokio::time::timeout(READ_TIMEOUT, self.ws.next())
                .await
                .expect("a frame within 5 s")
                .expect("connection open")
                .expect("frame reads");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
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
        while let Some(message) = self.pending.pop_front() {
            if message["event"] == name {
                return Some(message);
            }
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?
                .expect("connection open")
                .expect("frame reads");
            if let Message::Text(text) = frame {
                let message: Value = serde_json::from_str(&text).expect("JSON frame");
                if message["event"] == name {
                    return Some(message);
                }
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
