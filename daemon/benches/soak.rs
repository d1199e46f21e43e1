//! A soak (not a test: it prints the curve). Needs the lab packages.
//!
//!     cargo bench -p softphone-bridge --bench soak      (or ./dev bench)
//!
//! The release daemon against sipp playing a PBX that answers every call (media echoed back; it
//! forgets an ended "call" after 0.1 s, so the line's REGISTER refreshes, which reuse its
//! Call-ID, are answered): 1,000 calls, four at a time (each new one holds the others, as for an
//! agent), each held for a second — time-compressed from issue 15's 5 s so a run takes minutes; what a leak grows with is the number of calls, not their length. Every
//! 100 calls: resident and private memory, open file descriptors, threads, CPU time — a daemon
//! that keeps nothing from ended calls prints a flat curve. The page acknowledges the events it
//! handled, as the shim does (unacknowledged, they stay in the bounded replay window).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lab/mod.rs"]
mod lab;
mod measure;

use std::time::{Duration, Instant};

use common::{CRM, Daemon};
use lab::sipp::Sipp;
use lab::write_tone;
use measure::{clock_ticks_per_second, curve_columns, usage};
use serde_json::json;

const CALLS: usize = 1000;
const AT_ONCE: usize = 4;
const HOLD: Duration = Duration::from_secs(1);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let media_port = lab::free_port().to_string();
    let sipp = Sipp::start_with(
        "sipp-soak.xml",
        (CALLS + 100) as u32,
        &[],
        &[
            "-rtp_echo",
            "-mp",
            &media_port,
            "-deadcall_wait",
            "100",
            "-timeout",
            "3600",
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("agent.wav");
    write_tone(&tone, 8000, 1000.0, 0.5, 10.0);
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n\
         [log]\nlevel = \"warn\"\n[media]\ncodecs = [\"pcmu\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
        sipp.port,
        tone.display(),
        dir.path().join("heard.wav").display()
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hz = clock_ticks_per_second();
    let started = Instant::now();
    let first = usage(daemon.pid());
    let row = |calls: usize| {
        format!(
            "| {calls} | {:.0} s | {} |",
            started.elapsed().as_secs_f64(),
            curve_columns(daemon.pid(), first, hz)
        )
    };
    println!(
        "soak: {CALLS} calls to sipp ({AT_ONCE} at a time, {} s each, PCMU, media echoed), release daemon",
        HOLD.as_secs()
    );
    println!("| calls | elapsed | RSS | private | open fds | threads | CPU since start |");
    println!("|---|---|---|---|---|---|---|");
    println!("{}", row(0));
    let mut done = 0;
    while done < CALLS {
        let mut ids = Vec::new();
        for _ in 0..AT_ONCE {
            let (reply, _) = page.request("start_call", json!({"dialTo": "1002"})).await;
            match reply["result"]["conversationId"].as_str() {
                Some(id) => ids.push(id.to_owned()),
                None => panic!(
                    "after {done} calls: {reply}\nthe daemon's log:\n{}\nsipp:\n{}",
                    daemon.log(),
                    sipp.errors()
                ),
            }
        }
        for _ in 0..AT_ONCE {
            page.event("callAccepted").await;
        }
        tokio::time::sleep(HOLD).await;
        for id in &ids {
            page.request("hangup", json!({"conversationId": id})).await;
        }
        let mut last_seq = 0;
        for _ in 0..AT_ONCE {
            last_seq = page.event("callEnded").await["seq"].as_u64().unwrap_or(0);
        }
        // As the shim does: what this page has handled, it acknowledges, so the replay window
        // need not keep it for a reconnect.
        page.request("ack", json!({"seq": last_seq})).await;
        done += AT_ONCE;
        if done % 100 == 0 {
            // The last calls' media tasks and threads wind down first.
            tokio::time::sleep(Duration::from_millis(500)).await;
            println!("{}", row(done));
        }
    }
}
