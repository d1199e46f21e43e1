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
