//! The WebRTC lab: coturn as the TURN relay, a JsSIP browser phone in headless Chromium, and the
//! network namespace every WebRTC test runs in. ICE gathers candidates on every interface and
//! checks them all, so a test outside a namespace with only `lo` would send packets to this
//! machine's own network address; inside one, loopback is all there is.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::free_port;

const IN_NAMESPACE: &str = "SOFTPHONE_TEST_NETNS";

/// True when this process may run a WebRTC test: inside the private namespace. Otherwise runs
/// this one test (`name`, as libtest knows it) again in a fresh network namespace with only
/// `lo`, asserts it passed there, and returns false so the caller returns at once.
pub fn in_loopback_namespace(name: &str) -> bool {
    if in_namespace() {
        return true;
    }
    let status = rerun_in_loopback_namespace(&["--exact", name, "--nocapture", "--test-threads=1"]);
    assert!(
        status.success(),
        "{name} failed inside its network namespace (output above)"
    );
    false
}

/// True inside the namespace [`rerun_in_loopback_namespace`] made.
pub fn in_namespace() -> bool {
    std::env::var_os(IN_NAMESPACE).is_some()
}

/// A bench's `main` where only loopback exists (ICE checks every interface; loss rules apply to
/// `lo` alone): outside, runs this executable again in a fresh namespace and exits with its
/// status; inside, runs `run` on a two-thread runtime.
pub fn block_on_in_loopback_namespace<F: std::future::Future<Output = ()>>(
    run: impl FnOnce() -> F,
) {
    if !in_namespace() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        std::process::exit(rerun_in_loopback_namespace(&args).code().unwrap_or(1));
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

/// Runs this executable again with `args` in a fresh network namespace where only `lo` is up.
pub fn rerun_in_loopback_namespace(args: &[&str]) -> std::process::ExitStatus {
    let exe = std::env::current_exe().expect("this executable");
    Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$@\"",
            "sh",
        ])
        .arg(exe)
        .args(args)
        .env(IN_NAMESPACE, "1")
        .status()
        .expect("unshare (util-linux) runs; needs root or CAP_SYS_ADMIN")
}

/// coturn with one long-term credential per user (`1001:secret1001`, …), relaying on loopback.
pub struct Coturn {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Coturn {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let relay = 40000 + (port % 1000) * 10;
        let config = format!(
            "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port={port}\nmin-port={relay}\nmax-port={}\n\
             lt-cred-mech\nrealm=lab\nuser=1001:secret1001\nuser=1002:secret1002\nuser=1003:secret1003\n\
             allow-loopback-peers\nno-tls\nno-dtls\nno-cli\nno-multicast-peers\nfingerprint\n\
             log-file=stdout\nsimple-log\nverbose\npidfile={}/turnserver.pid\nuserdb={}/turndb\n",
            relay + 9,
            dir.path().display(),
            dir.path().display()
        );
        let path = dir.path().join("turnserver.conf");
        std::fs::write(&path, config).expect("turnserver.conf");
        let log = std::fs::File::create(dir.path().join("turnserver.log")).expect("log");
        let child = Command::new("turnserver")
            .arg("-c")
            .arg(&path)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("coturn is installed (./dev setup)");
        let coturn = Self { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "coturn did not start:\n{}",
                coturn.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        coturn
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("turnserver.log")).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node script driving headless Chromium (`tests/lab/*.mjs`), spoken to in JSON lines: commands
/// in, events (`{"event": …}`) and replies (`{"reply": …}`) out.
pub struct NodeScript {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    /// Lines seen while waiting for others.
    seen: Vec<Value>,
}

/// A JsSIP phone in Chromium (tests/lab/browser-phone.mjs), registered over wss.
pub struct BrowserPhone;

impl BrowserPhone {
    /// Starts the phone for `user` (password `secret<user>`) with `tone` as its microphone.
    pub fn start(wss_port: u16, user: &str, tone: &Path) -> NodeScript {
        Self::start_with(wss_port, user, tone, false)
    }

    /// In the network namespace `netns`, registering with a Kamailio at `address` there.
    pub fn start_in(
        netns: &super::Netns,
        address: &str,
        wss_port: u16,
        user: &str,
        tone: &Path,
    ) -> NodeScript {
        let wss = format!("wss://{address}:{wss_port}");
        Self::launch(Some(&netns.path()), &wss, user, tone, false, false)
    }

    /// Optionally answering every call at once.
    pub fn start_with(wss_port: u16, user: &str, tone: &Path, auto_answer: bool) -> NodeScript {
        let wss = format!("wss://127.0.0.1:{wss_port}");
        Self::launch(None, &wss, user, tone, auto_answer, false)
    }

    /// Answering every call at once and, once it is up, sending back what it hears (its remote
    /// track in place of the microphone's, `tone` until then).
    pub fn start_echoing(wss_port: u16, user: &str, tone: &Path) -> NodeScript {
        let wss = format!("wss://127.0.0.1:{wss_port}");
        Self::launch(None, &wss, user, tone, true, true)
    }

    fn launch(
        netns: Option<&str>,
        wss: &str,
        user: &str,
        tone: &Path,
        auto_answer: bool,
        echo: bool,
    ) -> NodeScript {
        let config = json!({
            "wss": wss,
            "user": user,
            "password": format!("secret{user}"),
            "tone": tone,
            "autoAnswer": auto_answer,
            "echo": echo,
        });
        let mut phone = NodeScript::start_in(netns, "browser-phone.mjs", &config);
        phone.wait("registered");
        phone
    }
}

/// A CRM page in Chromium (tests/lab/crm-page.mjs) that runs the shim: `eval` runs an async
/// function body in the page, `reload` refreshes it as an agent would.
pub struct CrmPage;

impl CrmPage {
    pub fn open(url: &str) -> NodeScript {
        let mut page = NodeScript::start("crm-page.mjs", &json!({ "url": url }));
        page.wait("loaded");
        page
    }
}

impl NodeScript {
    pub fn start(script: &str, config: &Value) -> Self {
        Self::start_in(None, script, config)
    }

    /// In the network namespace at `netns` (`/proc/PID/ns/net`), when given.
    pub fn start_in(netns: Option<&str>, script: &str, config: &Value) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/lab")
            .join(script);
        let mut child = super::in_netns(netns, "node")
            .arg(script)
            .arg(config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (./dev setup installs the npm packages)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        if sender.send(value).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("node: {line}"),
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    pub fn send(&mut self, command: Value) {
        writeln!(self.stdin, "{command}").expect("node script stdin");
    }

    /// The node process (Chromium runs below it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for `{"event": name}`, reporting page errors on the way.
    pub fn wait(&mut self, name: &str) -> Value {
        self.next_where("event", name)
    }

    fn next_where(&mut self, key: &str, name: &str) -> Value {
        if let Some(i) = self.seen.iter().position(|e| e[key] == name) {
            return self.seen.remove(i);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no {key} {name:?} within 30 s (seen: {:?})", self.seen)
            });
            if line[key] == name {
                return line;
            }
            if let Some(error) = line.get("error") {
                eprintln!("browser error: {error}");
            }
            self.seen.push(line);
        }
    }

    /// The remote audio's peak frequency (Hz), level (dBFS), and level at each probe frequency.
    pub fn measure(&mut self, probes: &[f64]) -> Value {
        self.send(json!({ "cmd": "measure", "probes": probes }));
        self.next_where("reply", "measure")
    }

    /// Runs `body` (an async function body) in the page and returns what it returns.
    pub fn eval(&mut self, body: &str) -> Value {
        self.send(json!({ "cmd": "eval", "body": body }));
        let reply = self.next_where("reply", "eval");
        assert!(
            reply.get("error").is_none(),
            "in the page: {body}\n→ {reply}"
        );
        reply["value"].clone()
    }

    pub fn reload(&mut self) {
        self.send(json!({ "cmd": "reload" }));
        self.wait("loaded");
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({ "cmd": "quit" }));
        super::wait_or_kill(&mut self.child, Duration::from_secs(5));
    }
}
