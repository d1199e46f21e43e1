//! API benchmark (not a test: it prints figures and asserts nothing about speed).
//!
//!     cargo bench -p softphone-bridge --bench api      (or ./dev bench)
//!
//! Starts the release binary on a free loopback port and reports:
//! - idle RSS with 3 clients connected (target ≤ 10 MB);
//! - connect-to-hello time over fresh TLS + WebSocket connections (target p50 ≤ 5 ms);
//! - event fan-out to 10 clients (target ≥ 10,000 events/s delivered).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{CRM as ORIGIN, Daemon};
use futures_util::{SinkExt, StreamExt};
use softphone_bridge::client::ClientStream;
use tokio_tungstenite::tungstenite::Message;

const CONNECTS: usize = 300;
const FANOUT_CLIENTS: usize = 10;
const FANOUT_EVENTS: usize = 3000;

fn start() -> Daemon {
    // Limits out of the way: this measures the daemon, not its rate limiter.
    Daemon::start(
        "actions_per_second = 1000000\naction_burst = 1000000\norigin_actions_per_second = 1000000\norigin_action_burst = 1000000\nreplay_events = 8192\n[log]\nlevel = \"warn\"\n",
    )
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
        .unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn connect(daemon: &Daemon) -> ClientStream {
    daemon.connect(ORIGIN).await.ws
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let daemon = start();
    let pid = daemon.pid();

    // 1. Idle RSS with 3 clients.
    let idle: Vec<ClientStream> =
        futures_util::future::join_all((0..3).map(|_| connect(&daemon))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(pid);
    drop(idle);

    // 2. Connect-to-hello: TCP + TLS + upgrade + first frame, sequentially.
    let mut times = Vec::with_capacity(CONNECTS);
    for _ in 0..CONNECTS {
        let started = Instant::now();
        let ws = connect(&daemon).await;
        times.push(started.elapsed());
        drop(ws);
    }
    times.sort();

    // 3. Fan-out: one page changes presence FANOUT_EVENTS times; 10 pages each receive all.
    let receivers: Vec<ClientStream> =
        futures_util::future::join_all((0..FANOUT_CLIENTS).map(|_| connect(&daemon))).await;
    let mut sender = connect(&daemon).await;
    let started = Instant::now();
    let tasks: Vec<_> = receivers
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut seen = 0;
                while seen < FANOUT_EVENTS {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) if t.contains("\"statusChanged\"") => seen += 1,
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
                seen
            })
        })
        .collect();
    let statuses = ["available", "busy", "break", "offline"];
    for i in 0..FANOUT_EVENTS {
        let frame = format!(
            r#"{{"id":{i},"action":"update_presence","params":{{"softphoneId":"{}"}}}}"#,
            statuses[i % 4]
        );
        sender.feed(Message::text(frame)).await.expect("send");
    }
    sender.flush().await.expect("flush");
    let mut delivered = 0;
    for task in tasks {
        delivered += task.await.unwrap_or(0);
    }
    let elapsed = started.elapsed();
    let busy_rss = rss_kib(pid);

    println!(
        "softphone-bridge API benchmark (release build, loopback, {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| measure | result | target |");
    println!("|---|---|---|");
    println!(
        "| idle RSS, 3 clients connected | {:.1} MB | ≤ 10 MB |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| connect-to-hello ({CONNECTS} fresh TLS+WS connections) | p50 {:.2} ms, p99 {:.2} ms | p50 ≤ 5 ms |",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "| fan-out, {FANOUT_EVENTS} events × {FANOUT_CLIENTS} clients | {:.0} events/s delivered ({delivered} in {:.3} s) | ≥ 10,000/s |",
        delivered as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "| RSS after fan-out, 11 clients | {:.1} MB | — |",
        busy_rss as f64 / 1024.0
    );
}
