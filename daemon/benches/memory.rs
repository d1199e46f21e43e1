//! Memory after calls, not only at start (not a test: it prints figures). Needs the lab packages.
//!
//!     cargo bench -p softphone-bridge --bench memory      (or ./dev bench)
//!
//! The release daemon registered to Kamailio, and baresip beside it for reference: private
//! (anonymous) memory idle, then after 25 and 50 calls of half a second in a row to baresip, per
//! codec — what a call leaves behind once it has ended is what an agent's machine keeps all day.
//! The last calls' SIP transactions are still running 2 s after them (an ended call answers
//! retransmissions for up to 32 s, RFC 6026's Timer M), so the daemon is measured again once they
//! are over. baresip, which answered the same calls, is measured before and after them.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lab/mod.rs"]
mod lab;
mod measure;

use std::time::Duration;

use common::{CRM, Daemon};
use lab::{Baresip, Kamailio, write_tone};
use measure::{mb, usage};
use serde_json::json;

const CALLS: usize = 50;
/// Longer than the longest transaction timer (64·T1 = 32 s).
const TRANSACTIONS_OVER: Duration = Duration::from_secs(35);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let kamailio = Kamailio::start("MD5");
    println!(
        "private (anonymous) memory of the release daemon, {CALLS} calls of 0.5 s in a row to baresip"
    );
    println!(
        "| codec | idle, registered (private / RSS) | after 25 calls | after {CALLS} calls (private / RSS) | and {} s later | baresip idle (private / RSS) | baresip after the {CALLS} calls |",
        TRANSACTIONS_OVER.as_secs()
    );
    println!("|---|---|---|---|---|---|---|");
    for (codec, baresip_codec) in [("pcmu", "PCMU"), ("opus", "opus/48000/2")] {
        let baresip = Baresip::start(&kamailio, "1002", 441.0, baresip_codec);
        let dir = tempfile::tempdir().expect("tempdir");
        let tone = dir.path().join("agent.wav");
        write_tone(&tone, 48000, 1000.0, 0.5, 30.0);
        let daemon = Daemon::start(&format!(
            "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n\
             [log]\nlevel = \"warn\"\n[media]\ncodecs = [\"{codec}\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
            kamailio.port,
            tone.display(),
            dir.path().join("heard.wav").display()
        ));
        let mut page = daemon.connect(CRM).await;
        page.registered().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (idle, baresip_idle) = (usage(daemon.pid()), usage(baresip.pid()));
        let mut marks = Vec::new();
        for n in 1..=CALLS {
            let id = page.start_call("1002").await;
            page.event("callAccepted").await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            page.request("hangup", json!({"conversationId": id})).await;
            page.event("callEnded").await;
            if n % 25 == 0 {
                tokio::time::sleep(Duration::from_secs(2)).await;
                marks.push(usage(daemon.pid()));
                eprintln!("{codec}: {n} calls");
            }
        }
        let baresip_after = usage(baresip.pid());
        tokio::time::sleep(TRANSACTIONS_OVER).await;
        let settled = usage(daemon.pid());
        println!(
            "| {codec} | {} / {} | {} | {} / {} | {} / {} | {} / {} | {} / {} |",
            mb(idle.anon_kib),
            mb(idle.rss_kib),
            mb(marks[0].anon_kib),
            mb(marks[1].anon_kib),
            mb(marks[1].rss_kib),
            mb(settled.anon_kib),
            mb(settled.rss_kib),
            mb(baresip_idle.anon_kib),
            mb(baresip_idle.rss_kib),
            mb(baresip_after.anon_kib),
            mb(baresip_after.rss_kib)
        );
    }
}
