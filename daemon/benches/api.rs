//! API benchmark (not a test: it prints figures and asserts nothing about speed).
//!
//!     cargo bench -p softphone-bridge --bench api      (or ./dev bench)
//!
//! Starts the release binary on a free loopback port and reports:
//! - idle RSS with 3 clients connected (target ≤ 10 MB);
//! - connect-to-hello time over fresh TLS + WebSocket connections (target p50 ≤ 5 ms);
//! - event fan-out to 10 clients (target ≥ 10,000 events/s delivered), with the store (each event
//!   written before it is sent) and with `[store] enabled = false`, in the same run;
//! - request → reply for `update_presence` (a commit without fsync) and `submit_notes` (a commit
//!   with `synchronous=FULL`), with and without the store.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{CRM as ORIGIN, Client, Daemon};
use futures_util::{SinkExt, StreamExt};
use softphone_bridge::client::ClientStream;
use tokio_tungstenite::tungstenite::Message;

const CONNECTS: usize = 300;
const FANOUT_CLIENTS: usize = 10;
const FANOUT_EVENTS: usize = 3000;

const ROUND_TRIPS: usize = 300;

fn start(store: bool) -> Daemon {
    // Limits out of the way: this measures the daemon, not its rate limiter.
    Daemon::start(&format!(
        "actions_per_second = 1000000\naction_burst = 1000000\norigin_actions_per_second = 1000000\norigin_action_burst = 1000000\nreplay_events = 8192\n[log]\nlevel = \"warn\"\n[store]\nenabled = {store}\n[demo]\nline = true\n[audio]\nbackend = \"file\"\n"
    ))
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

/// One page changes presence FANOUT_EVENTS times; FANOUT_CLIENTS pages each receive all.
/// Returns (events delivered, seconds).
async fn fanout(daemon: &Daemon) -> (usize, f64) {
    let receivers: Vec<ClientStream> =
        futures_util::future::join_all((0..FANOUT_CLIENTS).map(|_| connect(daemon))).await;
    let mut sender = connect(daemon).await;
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
    (delivered, started.elapsed().as_secs_f64())
}

/// Request → reply times (sorted) of `update_presence` and of `submit_notes` on a call the demo
/// line ended.
async fn round_trips(daemon: &Daemon) -> (Vec<Duration>, Vec<Duration>) {
    let mut page: Client = daemon.connect(ORIGIN).await;
    page.registered().await;
    let id = page.start_call("5550100").await;
    page.event("callEnded").await;
    let mut time = async |action: &str, params: serde_json::Value| {
        let mut times = Vec::with_capacity(ROUND_TRIPS);
        for _ in 0..ROUND_TRIPS {
            let started = Instant::now();
            let (reply, _) = page.request(action, params.clone()).await;
            times.push(started.elapsed());
            assert_eq!(reply["ok"], true, "{reply}");
        }
        times.sort();
        times
    };
    let presence = time(
        "update_presence",
        serde_json::json!({"softphoneId": "busy"}),
    )
    .await;
    let notes = time(
        "submit_notes",
        serde_json::json!({"conversationId": id, "disposition": "Sale", "notes": "bench"}),
    )
    .await;
    (presence, notes)
}

/// TCP + TLS + upgrade + first frame, sequentially, sorted.
async fn connect_times(daemon: &Daemon) -> Vec<Duration> {
    let mut times = Vec::with_capacity(CONNECTS);
    for _ in 0..CONNECTS {
        let started = Instant::now();
        let ws = connect(daemon).await;
        times.push(started.elapsed());
        drop(ws);
    }
    times.sort();
    times
}

fn p50_p99(times: &[Duration]) -> String {
    format!(
        "p50 {:.3} ms, p99 {:.3} ms",
        percentile(times, 0.5).as_secs_f64() * 1e3,
        percentile(times, 0.99).as_secs_f64() * 1e3
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let daemon = start(true);
    let pid = daemon.pid();

    // 1. Idle RSS with 3 clients.
    let idle: Vec<ClientStream> =
        futures_util::future::join_all((0..3).map(|_| connect(&daemon))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(pid);
    drop(idle);

    // 2. Connect-to-hello: TCP + TLS + upgrade + first frame, sequentially.
    let times = connect_times(&daemon).await;

    // 3. Fan-out and round trips, with the store and without.
    let (delivered, elapsed) = fanout(&daemon).await;
    let busy_rss = rss_kib(pid);
    let (presence, notes) = round_trips(&daemon).await;
    drop(daemon);
    let memory_only = start(false);
    let times_memory = connect_times(&memory_only).await;
    let (delivered_memory, elapsed_memory) = fanout(&memory_only).await;
    let (presence_memory, notes_memory) = round_trips(&memory_only).await;
    drop(memory_only);

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
        "| connect-to-hello ({CONNECTS} fresh TLS+WS connections), store on | {} | p50 ≤ 5 ms |",
        p50_p99(&times)
    );
    println!(
        "| connect-to-hello ({CONNECTS} fresh TLS+WS connections), `[store] enabled = false` | {} | p50 ≤ 5 ms |",
        p50_p99(&times_memory)
    );
    for (what, delivered, elapsed) in [
        ("store on", delivered, elapsed),
        (
            "`[store] enabled = false`",
            delivered_memory,
            elapsed_memory,
        ),
    ] {
        println!(
            "| fan-out, {FANOUT_EVENTS} events × {FANOUT_CLIENTS} clients, {what} | {:.0} events/s delivered, {:.0} events/s written ({delivered} in {:.3} s) | ≥ 10,000/s |",
            delivered as f64 / elapsed,
            FANOUT_EVENTS as f64 / elapsed,
            elapsed
        );
    }
    println!(
        "| RSS after fan-out, 11 clients | {:.1} MB | — |",
        busy_rss as f64 / 1024.0
    );
    for (what, presence, notes) in [
        ("store on", &presence, &notes),
        ("`[store] enabled = false`", &presence_memory, &notes_memory),
    ] {
        println!(
            "| `update_presence` request → reply ({ROUND_TRIPS}), {what} | {} | — |",
            p50_p99(presence)
        );
        println!(
            "| `submit_notes` request → reply ({ROUND_TRIPS}), {what} | {} | — |",
            p50_p99(notes)
        );
    }
}
