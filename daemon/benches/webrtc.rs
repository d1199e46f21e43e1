//! The WebRTC line against the webphone it replaces (not a test: it prints figures). Needs the lab
//! packages (`./dev setup`) and root for a network namespace, like the WebRTC tests.
//!
//!     cargo bench -p softphone-bridge --bench webrtc      (or ./dev bench)
//!
//! Kamailio with its WebSocket modules, the release daemon provisioned for wss, and a JsSIP phone in
//! headless Chromium (the seed's webphone is sip.js in a browser tab) that answers at once:
//! - call setup over wss: `start_call` sent → `callAccepted` on the page's WebSocket;
//! - CPU seconds and RSS during a 20 s Opus call, for the daemon and for Chromium (every process
//!   of the browser summed: its RSS sum counts shared pages more than once, its private memory not).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lab/mod.rs"]
mod lab;
mod measure;

use std::time::{Duration, Instant};

use common::{CRM, Daemon};
use lab::webrtc::{BrowserPhone, Coturn};
use lab::{Kamailio, write_tone};
use measure::{Usage, clock_ticks_per_second, mb, tree_usage, usage};
use serde_json::json;

const SETUPS: usize = 10;
const CALL: Duration = Duration::from_secs(20);

fn main() {
    lab::webrtc::block_on_in_loopback_namespace(run);
}

fn percentiles(mut times: Vec<Duration>) -> String {
    times.sort();
    let at = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    format!(
        "p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.9),
        at(1.0)
    )
}

async fn run() {
    let kamailio = Kamailio::start_with_ws("MD5");
    let wss = kamailio.ws_ports.expect("ws").1;
    let dir = tempfile::tempdir().expect("tempdir");
    let (agent_tone, far_tone) = (dir.path().join("agent.wav"), dir.path().join("far.wav"));
    write_tone(&agent_tone, 48000, 1000.0, 0.5, 60.0);
    write_tone(&far_tone, 48000, 441.0, 0.5, 120.0);
    let mut phone = BrowserPhone::start_with(wss, "1002", &far_tone, true);
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"wss://127.0.0.1:{wss}\"\nusername = \"1001\"\npassword = \"secret1001\"\nca_file = \"{}\"\n\
         [log]\nlevel = \"warn\"\n[media]\ncodecs = [\"opus\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
        kamailio.ca_file().display(),
        agent_tone.display(),
        dir.path().join("heard.wav").display()
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = usage(daemon.pid());
    eprintln!("call setup over wss ({SETUPS} calls)");
    let mut setups = Vec::new();
    for _ in 0..SETUPS {
        let start = Instant::now();
        let (reply, _) = page.request("start_call", json!({"dialTo": "1002"})).await;
        page.event("callAccepted").await;
        setups.push(start.elapsed());
        page.request(
            "hangup",
            json!({"conversationId": reply["result"]["conversationId"]}),
        )
        .await;
        page.event("callEnded").await;
        phone.wait("ended");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The anchor: the browser phone's own setup, JsSIP calling JsSIP through the same Kamailio,
    // timed inside the caller's page (`calling` → `confirmed`).
    eprintln!("browser to browser call setup ({SETUPS} calls)");
    let mut caller = BrowserPhone::start(wss, "1003", &far_tone);
    let mut browser_setups = Vec::new();
    for _ in 0..SETUPS {
        caller.send(json!({"cmd": "call", "target": "sip:1002@127.0.0.1"}));
        let calling = caller.wait("calling");
        let confirmed = caller.wait("confirmed");
        let ms = confirmed["at"].as_f64().unwrap_or(0.0) - calling["at"].as_f64().unwrap_or(0.0);
        browser_setups.push(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
        caller.send(json!({"cmd": "hangup"}));
        caller.wait("ended");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(caller);

    // Daemon calling daemon: a second daemon on the WebRTC line (1004) answering by itself.
    eprintln!("daemon to daemon call setup ({} calls)", SETUPS * 2);
    let callee = Daemon::start(&format!(
        "[account]\nserver = \"wss://127.0.0.1:{wss}\"\nusername = \"1004\"\npassword = \"secret1004\"\nca_file = \"{}\"\nauto_answer = \"always\"\n\
         [log]\nlevel = \"warn\"\n[media]\ncodecs = [\"opus\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\n",
        kamailio.ca_file().display(),
        far_tone.display(),
    ));
    callee.connect(CRM).await.registered().await;
    let mut daemon_setups = Vec::new();
    for _ in 0..SETUPS * 2 {
        let start = Instant::now();
        let (reply, _) = page.request("start_call", json!({"dialTo": "1004"})).await;
        page.event("callAccepted").await;
        daemon_setups.push(start.elapsed());
        page.request(
            "hangup",
            json!({"conversationId": reply["result"]["conversationId"]}),
        )
        .await;
        page.event("callEnded").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The same, the caller's account with a TURN server (coturn; the seed's `turn_port`): each
    // call gathers a relay candidate too.
    eprintln!(
        "daemon to daemon call setup with TURN ({} calls)",
        SETUPS * 2
    );
    let coturn = Coturn::start();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(8);
    let turn_caller = Daemon::start(&format!(
        "[account]\nserver = \"wss://127.0.0.1:{wss}\"\nusername = \"1003\"\npassword = \"secret1003\"\nca_file = \"{}\"\n\
         auth_key = \"k-7f3a\"\ncustomer_id = 77\nuser_id = 1003\nturn_port = {}\nexpire_date = \"{}\"\n\
         [log]\nlevel = \"warn\"\n[media]\ncodecs = [\"opus\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\n",
        kamailio.ca_file().display(),
        coturn.port,
        expires
            .format(&time::format_description::well_known::Rfc3339)
            .expect("date"),
        agent_tone.display(),
    ));
    let mut turn_page = turn_caller.connect(CRM).await;
    turn_page.registered().await;
    let mut turn_setups = Vec::new();
    for _ in 0..SETUPS * 2 {
        let start = Instant::now();
        let (reply, _) = turn_page
            .request("start_call", json!({"dialTo": "1004"}))
            .await;
        turn_page.event("callAccepted").await;
        turn_setups.push(start.elapsed());
        turn_page
            .request(
                "hangup",
                json!({"conversationId": reply["result"]["conversationId"]}),
            )
            .await;
        turn_page.event("callEnded").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(turn_page);
    drop(turn_caller);
    drop(coturn);
    drop(callee);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_setups = usage(daemon.pid());
    eprintln!("a 20 s Opus call");
    let (reply, _) = page.request("start_call", json!({"dialTo": "1002"})).await;
    page.event("callAccepted").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (daemon_before, browser_before) = (usage(daemon.pid()), tree_usage(phone.pid()));
    let (mut daemon_peak, mut browser_peak) = (Usage::default(), Usage::default());
    let end = Instant::now() + CALL;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (d, b) = (usage(daemon.pid()), tree_usage(phone.pid()));
        if d.rss_kib > daemon_peak.rss_kib {
            daemon_peak = d;
        }
        if b.rss_kib > browser_peak.rss_kib {
            browser_peak = b;
        }
    }
    let (daemon_after, browser_after) = (usage(daemon.pid()), tree_usage(phone.pid()));
    page.request(
        "hangup",
        json!({"conversationId": reply["result"]["conversationId"]}),
    )
    .await;

    let hz = clock_ticks_per_second();
    let cpu = |before: Usage, after: Usage| {
        format!(
            "{:.2} s",
            after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / hz
        )
    };
    println!(
        "softphone-bridge WebRTC line vs a JsSIP webphone in Chromium (release build, loopback, 2 cores)"
    );
    println!("| measure | softphone-bridge | browser phone (Chromium, all processes) |");
    println!("|---|---|---|");
    println!(
        "| call setup over wss: `start_call` → `callAccepted` ({SETUPS} calls, callee answers at once) | {} | JsSIP calling JsSIP: {} |",
        percentiles(setups),
        percentiles(browser_setups)
    );
    println!(
        "| call setup, daemon calling daemon ({} calls, callee answers by itself) | {} | — |",
        SETUPS * 2,
        percentiles(daemon_setups)
    );
    println!(
        "| call setup, daemon calling daemon, the caller's account with a TURN server (coturn) ({} calls) | {} | — |",
        SETUPS * 2,
        percentiles(turn_setups)
    );
    println!(
        "| CPU for a 20 s Opus call | {} | {} |",
        cpu(daemon_before, daemon_after),
        cpu(browser_before, browser_after)
    );
    println!(
        "| RSS in the call | {} | {} (sum) |",
        mb(daemon_peak.rss_kib),
        mb(browser_peak.rss_kib)
    );
    println!(
        "| of which private (anonymous) | {} | {} |",
        mb(daemon_peak.anon_kib),
        mb(browser_peak.anon_kib)
    );
    println!(
        "| daemon RSS registered, before any call / after {SETUPS} ended calls | {} / {} | — |",
        mb(idle.rss_kib),
        mb(after_setups.rss_kib)
    );
}
