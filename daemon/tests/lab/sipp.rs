//! sipp, playing a PBX from a scenario in `tests/lab/`: accepts the line's REGISTER, then calls
//! it or answers it as the scenario says.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::eventually;

/// sipp running `scenario` (from tests/lab, with `@KEY@` replaced) as a UAS on a free port.
pub struct Sipp {
    child: std::process::Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Sipp {
    /// `calls`: how many sipp calls (distinct Call-IDs) the scenario takes before sipp exits.
    pub fn start(scenario: &str, calls: u32, replacements: &[(&str, String)]) -> Self {
        Self::start_with(scenario, calls, replacements, &[])
    }

    /// [`Self::start`] with more sipp arguments (`-rtp_echo`, say).
    pub fn start_with(
        scenario: &str,
        calls: u32,
        replacements: &[(&str, String)],
        args: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut text = std::fs::read_to_string(format!(
            "{}/../tests/lab/{scenario}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("scenario");
        for (key, value) in replacements {
            text = text.replace(key, value);
        }
        let path = dir.path().join(scenario);
        std::fs::write(&path, text).expect("write");
        let port = super::free_port();
        let child = Command::new("sipp")
            .args(["-sf"])
            .arg(&path)
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-m",
                &calls.to_string(),
                "-timeout",
                "60",
                "-nostdin",
                "-trace_err",
            ])
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp (package sip-tester) is installed");
        Self { child, port, dir }
    }

    /// sipp's error log (`-trace_err`), for failure messages.
    pub fn errors(&self) -> String {
        self.trace("_errors.log")
    }

    /// A trace file sipp writes in its directory, by the end of its name (`_messages.log` with
    /// `-trace_msg`).
    pub fn trace(&self, suffix: &str) -> String {
        let entries = std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        entries
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }

    pub fn finished(&mut self) {
        let status = eventually("sipp to finish", Duration::from_secs(30), || {
            self.child.try_wait().ok().flatten()
        });
        assert!(
            status.success(),
            "sipp's scenario failed (exit {status:?}):\n{}",
            self.errors()
        );
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("sipp errors:\n{}", self.errors());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
