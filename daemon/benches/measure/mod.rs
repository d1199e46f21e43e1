//! Process figures for the benches, read from /proc: resident memory and CPU time.

#![allow(dead_code)]

use std::path::Path;

#[derive(Clone, Copy, Default)]
pub struct Usage {
    pub rss_kib: u64,
    /// Private (anonymous) memory: RSS without the mapped pages of the binary and its libraries.
    pub anon_kib: u64,
    pub cpu_ticks: u64,
}

impl Usage {
    pub fn add(self, other: Self) -> Self {
        Self {
            rss_kib: self.rss_kib + other.rss_kib,
            anon_kib: self.anon_kib + other.anon_kib,
            cpu_ticks: self.cpu_ticks + other.cpu_ticks,
        }
    }
}

/// A process's columns in the soak's and the idle bench's curves: RSS, private memory, open
/// file descriptors, threads, CPU seconds since `first`.
pub fn curve_columns(pid: u32, first: Usage, ticks_per_second: f64) -> String {
    let now = usage(pid);
    format!(
        "{} | {} | {} | {} | {:.2} s",
        mb(now.rss_kib),
        mb(now.anon_kib),
        open_files(pid),
        threads(pid),
        now.cpu_ticks.saturating_sub(first.cpu_ticks) as f64 / ticks_per_second
    )
}

/// A mono 16-bit WAV.
pub fn write_wav(path: &Path, rate: u32, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("wav");
    for s in samples {
        writer.write_sample(*s).expect("sample");
    }
    writer.finalize().expect("finalize");
}

/// Open file descriptors of the process.
pub fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Threads of the process.
pub fn threads(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub fn usage(pid: u32) -> Usage {
    let proc = Path::new("/proc").join(pid.to_string());
    let status = std::fs::read_to_string(proc.join("status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let (rss_kib, anon_kib) = (field("VmRSS:"), field("RssAnon:"));
    // utime and stime are fields 14 and 15, counted after the parenthesised command name.
    let stat = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Usage {
        rss_kib,
        anon_kib,
        cpu_ticks: ticks(11) + ticks(12),
    }
}

/// The process and all its descendants (a browser is many processes), summed. RSS of shared
/// pages is counted once per process, so the sum overstates memory; `anon_kib` does not.
pub fn tree_usage(root: u32) -> Usage {
    let parent_of = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let in_tree = |mut pid: u32| loop {
        if pid == root {
            return true;
        }
        match parent_of(pid) {
            Some(parent) if parent > 1 => pid = parent,
            _ => return false,
        }
    };
    pids.into_iter()
        .filter(|pid| in_tree(*pid))
        .map(usage)
        .fold(Usage::default(), Usage::add)
}

pub fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

pub fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

/// A speech-like signal for the CPU benches: eight harmonics with a pitch gliding 80–160 Hz, at
/// about −15 dBFS; with `syllables`, on for 200 ms and off for 100 ms, as speech pauses.
pub fn speech_like(rate: u32, seconds: usize, syllables: bool) -> Vec<i16> {
    let rate = f64::from(rate);
    (0..rate as usize * seconds)
        .map(|i| {
            let t = i as f64 / rate;
            let pitch = 120.0 + 40.0 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            let phase = 2.0 * std::f64::consts::PI * pitch * t;
            let voice: f64 = (1..=8).map(|h| (phase * h as f64).sin() / h as f64).sum();
            let on = !syllables || (t * 1000.0) as u64 % 300 < 200;
            if on { (voice * 6000.0) as i16 } else { 0 }
        })
        .collect()
}
