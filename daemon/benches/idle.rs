//! Idle, registered, for hours — time-compressed (not a test: it prints the curve). Needs the lab
//! packages.
//!
//!     cargo bench -p softphone-bridge --bench idle      (or ./dev bench)
//!
//! What an idle daemon does over a shift is driven by its timers: registration refreshes (and
//! their transactions, timers, log lines), the page's WebSocket keepalives, the store's and the
//! replay window's housekeeping. So the compression is in the registrar: sipp grants 10 s instead
//! of the usual 600–3600 s, and the line refreshes every 5 s — 120 refreshes in 10 minutes, more
//! than an 8 h shift brings at 600 s (56) or at 3600 s (9). A page stays connected throughout.
//! Every minute: resident and private memory, open file descriptors, threads, CPU time and the
//! REGISTERs sipp has answered so far — a daemon that keeps nothing from one refresh to the next
//! prints a flat curve.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lab/mod.rs"]
mod lab;
mod measure;

use std::time::{Duration, Instant};

use common::{CRM, Daemon};
use lab::sipp::Sipp;
use measure::{clock_ticks_per_second, curve_columns, usage};

const MINUTES: u64 = 10;
const GRANTED_SECONDS: u32 = 10;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The soak's PBX, with the registrar's grant cut to 10 s: our Contact (as sipp saw it) comes
    // back with `expires=10`, which is what the line honours.
    let sipp = Sipp::start_with(
        "sipp-soak.xml",
        100_000,
        &[
            (
                r#"<recv request="REGISTER" optional="true" next="register"/>"#,
                r#"<recv request="REGISTER" optional="true" next="register"><action><ereg regexp="&lt;([^>]*)>" search_in="hdr" header="Contact:" assign_to="contact,uri"/></action></recv><Reference variables="contact"/>"#
                    .to_owned(),
            ),
            (
                "[last_Contact:]\nExpires: 600",
                format!("Contact: <[$uri]>;expires={GRANTED_SECONDS}\nExpires: {GRANTED_SECONDS}"),
            ),
        ],
        &["-deadcall_wait", "100", "-timeout", "3600", "-trace_msg"],
    );
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n\
         [log]\nlevel = \"info\"\n[media]\ncodecs = [\"pcmu\"]\n[audio]\nbackend = \"file\"\n",
        sipp.port,
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let registers = || sipp.trace("_messages.log").matches("REGISTER sip:").count();
    let hz = clock_ticks_per_second();
    let started = Instant::now();
    let first = usage(daemon.pid());
    println!(
        "idle: {MINUTES} minutes registered to sipp granting {GRANTED_SECONDS} s, one page connected, release daemon"
    );
    println!(
        "| minutes | REGISTERs answered | RSS | private | open fds | threads | CPU since start |"
    );
    println!("|---|---|---|---|---|---|---|");
    for minute in 0..=MINUTES {
        if minute > 0 {
            // The page reads what comes (nothing, but keepalives are answered underneath).
            let _ = page
                .event_within("no event expected", Duration::from_secs(60))
                .await;
        }
        println!(
            "| {minute} | {} | {} |",
            registers(),
            curve_columns(daemon.pid(), first, hz)
        );
    }
    println!(
        "({:.0} s; the line's registration state at the end: {})",
        started.elapsed().as_secs_f64(),
        page.request("get_state", serde_json::json!({})).await.0["result"]["state"]["line"]["state"]
    );
}
