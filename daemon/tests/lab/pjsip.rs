//! A PJSIP phone (`tests/lab/pjsip_phone.py` on PJSIP's Python binding, installed by
//! `./dev setup` into `.lab/pjsip`): the second, independent SIP stack of the call-control
//! tests. It answers every call, plays a tone, records each call, and follows REFER and
//! `Replaces` as PJSIP does.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Kamailio, read_wav};

pub struct Pjsip {
    dir: tempfile::TempDir,
    child: Child,
    stdin: Mutex<ChildStdin>,
    /// Every line it reported so far.
    lines: Arc<Mutex<Vec<String>>>,
}

impl Pjsip {
    /// Starts `user` (1004…1006 in the lab's Kamailio) with a tone of `tone_hz`; returns once
    /// it is registered.
    pub fn start(kamailio: &Kamailio, user: &str, tone_hz: f64) -> Self {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let python = format!("{root}/.lab/pjsip/bin/python");
        let dir = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(dir.path().join("pjsip.log")).expect("log");
        let mut child = Command::new(&python)
            .arg(format!("{root}/tests/lab/pjsip_phone.py"))
            .arg(kamailio.port.to_string())
            .arg(user)
            .arg(tone_hz.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{python}: {e} (./dev setup installs PJSIP)"));
        let stdout = child.stdout.take().expect("stdout");
        let stdin = Mutex::new(child.stdin.take().expect("stdin"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        let phone = Self {
            dir,
            child,
            stdin,
            lines,
        };
        phone.expect("registered", Duration::from_secs(20));
        phone
    }

    /// Sends one command (see the script's doc).
    pub fn command(&self, line: &str) {
        let mut stdin = self.stdin.lock().expect("stdin");
        writeln!(stdin, "{line}").expect("the PJSIP phone runs");
        stdin.flush().expect("flush");
    }

    /// The first line it reported that starts with `prefix`, waiting up to `within`.
    pub fn expect(&self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .expect("lines")
                .iter()
                .find(|l| l.starts_with(prefix))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "PJSIP never said `{prefix}`; it said {:?}\n{}",
                self.lines.lock().expect("lines"),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What call `number` heard, once that call ended (the recording is closed).
    pub fn recording(&self, number: usize) -> Option<(u32, Vec<i16>)> {
        read_wav(&self.dir.path().join(format!("call-{number}.wav")))
    }

    /// Bytes recorded so far for call `number`.
    pub fn recorded_bytes(&self, number: usize) -> u64 {
        std::fs::metadata(self.dir.path().join(format!("call-{number}.wav")))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pjsip.log")).unwrap_or_default()
    }
}

impl Drop for Pjsip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
