//! Call control side by side with another phone doing the same (not a test: it prints figures,
//! asserts nothing). Needs the lab (`./dev setup`).
//!
//!     cargo bench -p softphone-bridge --bench call_control      (or ./dev bench)
//!
//! - A 3-party conference for 20 s: the phone calls two baresip phones (PCMU) and mixes them
//!   with its own microphone; CPU seconds and RSS of the mixing phone. baresip 1.0 has no local
//!   conference, so the other phone is PJSIP 2.15 (its conference bridge, driven from Python:
//!   `tests/lab/pjsip_phone.py`, whose interpreter is part of its figures).
//! - Blind transfer: from the request (our `transfer` action; PJSIP's `xfer`) to the call's end
//!   on the transferor (our `callEnded`; PJSIP's disconnect), the target a baresip phone that
//!   answers at once; five of each.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lab/mod.rs"]
mod lab;
mod measure;

use std::time::{Duration, Instant};

use common::{CRM, Daemon};
use lab::pjsip::Pjsip;
use lab::{Baresip, Kamailio, write_tone};
use measure::{Usage, clock_ticks_per_second, mb, usage};

const CONFERENCE: Duration = Duration::from_secs(20);
const TRANSFERS: usize = 5;

fn daemon(kamailio: &Kamailio, dir: &std::path::Path) -> Daemon {
    let tone = dir.join("agent.wav");
    write_tone(&tone, 48000, 1000.0, 0.5, 30.0);
    Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n\
         [log]\nlevel = \"warn\"\n[media]\ncodecs = [\"pcmu\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
        kamailio.port,
        tone.display(),
        dir.join("heard.wav").display()
    ))
}

/// Two baresip phones that answer at once: 1002 (441 Hz) and 1003 (660 Hz).
fn far_ends(kamailio: &Kamailio) -> (Baresip, Baresip) {
    (
        Baresip::start(kamailio, "1002", 441.0, "PCMU"),
        Baresip::start(kamailio, "1003", 660.0, "PCMU"),
    )
}

fn cpu(usage: Usage) -> String {
    format!("{:.2} s", usage.cpu_ticks as f64 / clock_ticks_per_second())
}

fn median(mut times: Vec<Duration>) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "p50 {:.0} ms (min {:.0}, max {:.0})",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    )
}

/// CPU over the conference, and RSS at its end.
fn over_conference(pid: u32) -> (Usage, Usage) {
    let before = usage(pid);
    std::thread::sleep(CONFERENCE);
    let after = usage(pid);
    (
        Usage {
            cpu_ticks: after.cpu_ticks - before.cpu_ticks,
            ..after
        },
        after,
    )
}

#[tokio::main]
async fn main() {
    let kamailio = Kamailio::start("MD5");
    let target = |user: &str| format!("sip:{user}@127.0.0.1:{}", kamailio.port);

    eprintln!("conference: softphone-bridge");
    let ours = {
        let _far_ends = far_ends(&kamailio);
        let dir = tempfile::tempdir().expect("tempdir");
        let daemon = daemon(&kamailio, dir.path());
        let mut page = daemon.connect(CRM).await;
        page.registered().await;
        let first = page.start_call("1002").await;
        page.event("callAccepted").await;
        let second = page.start_call("1003").await;
        page.event("callAccepted").await;
        page.request(
            "conference",
            serde_json::json!({"conversationIds": [first, second]}),
        )
        .await;
        page.event("conferenceChanged").await;
        over_conference(daemon.pid())
    };

    eprintln!("conference: PJSIP");
    let theirs = {
        let _far_ends = far_ends(&kamailio);
        let phone = Pjsip::start(&kamailio, "1004", 1000.0);
        phone.command(&format!("dial {}", target("1002")));
        phone.expect("confirmed 0", Duration::from_secs(10));
        phone.command(&format!("dial {}", target("1003")));
        phone.expect("confirmed 1", Duration::from_secs(10));
        phone.command("conference");
        phone.expect("done conference", Duration::from_secs(10));
        over_conference(phone.pid())
    };

    eprintln!("blind transfers: softphone-bridge");
    let mut our_transfers = Vec::new();
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let daemon = daemon(&kamailio, dir.path());
        let mut page = daemon.connect(CRM).await;
        page.registered().await;
        for _ in 0..TRANSFERS {
            let _far_ends = far_ends(&kamailio);
            let id = page.start_call("1002").await;
            page.event("callAccepted").await;
            let asked = Instant::now();
            page.request(
                "transfer",
                serde_json::json!({"to": "1003", "conversationId": id}),
            )
            .await;
            page.event("callEnded").await;
            our_transfers.push(asked.elapsed());
        }
    }

    eprintln!("blind transfers: PJSIP");
    let mut their_transfers = Vec::new();
    for _ in 0..TRANSFERS {
        let _far_ends = far_ends(&kamailio);
        let phone = Pjsip::start(&kamailio, "1004", 1000.0);
        phone.command(&format!("dial {}", target("1002")));
        phone.expect("confirmed 0", Duration::from_secs(10));
        let asked = Instant::now();
        phone.command(&format!("transfer {}", target("1003")));
        phone.expect("disconnected 0", Duration::from_secs(40));
        their_transfers.push(asked.elapsed());
    }

    println!(
        "call control, softphone-bridge vs PJSIP 2.15 (release build, loopback, {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| measure | softphone-bridge | PJSIP (pjsua2-python) |");
    println!("|---|---|---|");
    println!(
        "| CPU, 3-party conference for 20 s (PCMU) | {} | {} |",
        cpu(ours.0),
        cpu(theirs.0)
    );
    println!(
        "| RSS at its end | {} | {} |",
        mb(ours.1.rss_kib),
        mb(theirs.1.rss_kib)
    );
    println!(
        "| of which private | {} | {} |",
        mb(ours.1.anon_kib),
        mb(theirs.1.anon_kib)
    );
    println!(
        "| blind transfer, request → the transferor's call ended ({TRANSFERS}) | {} | {} |",
        median(our_transfers),
        median(their_transfers)
    );
}
