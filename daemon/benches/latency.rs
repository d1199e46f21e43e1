//! Mouth-to-ear latency through an endpoint, ours beside baresip's (not a test: it prints
//! figures). Needs the lab packages.
//!
//!     cargo bench -p softphone-bridge --bench latency      (or ./dev bench)
//!
//! A click train (10 ms bursts of 1 kHz at irregular spacing) is our file backend's microphone;
//! our speaker is a file written one frame per 20 ms tick, on the same tick as the microphone is
//! read, so a sample's place in the output file is its time. The far end sends back what it
//! receives, and each click's delay from microphone to speaker is measured:
//! - **sipp echoing RTP** (`-rtp_echo`: each packet straight back, no decoding): the round trip
//!   is our own path — our send (the frame read on a tick goes out on that tick) plus our
//!   receive (jitter buffer, decoder, playout on the next ticks); loopback adds microseconds;
//! - **baresip echoing through its audio path** (`aubridge`: its player's audio fed to its
//!   source): the same plus baresip's receive and send paths (jitter buffer, decoder, player
//!   buffer, source buffer, encoder). The difference is baresip's mouth-to-ear, both ways,
//!   without sound-card buffers — the same thing the first figure is for us.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lab/mod.rs"]
mod lab;
mod measure;

use std::path::Path;
use std::time::Duration;

use common::{CRM, Daemon};
use lab::sipp::Sipp;
use lab::{Baresip, Kamailio};
use serde_json::json;

const RATE: u32 = 48000;
/// Click onsets, in ms from the start of the train: 30 clicks in ~24 s, at least 650 ms apart, so
/// a click is matched to its own echo (the first onset heard within 600 ms after it) while the
/// round trip stays under 650 ms; irregular, so a periodic delay cannot line up with the spacing.
const SPACING_MS: [u32; 6] = [700, 900, 800, 1000, 650, 850];
const CLICKS: usize = 30;
/// A sample louder than this (−24 dBFS) after 20 ms of quiet starts a click.
const THRESHOLD: i16 = 2000;

fn click_times_ms() -> Vec<u32> {
    let mut at = 1000;
    (0..CLICKS)
        .map(|i| {
            let this = at;
            at += SPACING_MS[i % SPACING_MS.len()];
            this
        })
        .collect()
}

fn write_click_train(path: &Path) -> u32 {
    let clicks = click_times_ms();
    let total = clicks.last().copied().unwrap_or(0) + 2000;
    let mut samples = vec![0i16; (RATE * total / 1000) as usize];
    let burst = (RATE / 100) as usize;
    for at in clicks {
        let start = (RATE * at / 1000) as usize;
        for n in 0..burst {
            let t = n as f64 / f64::from(RATE);
            let window = (std::f64::consts::PI * n as f64 / burst as f64).sin();
            samples[start + n] =
                (16000.0 * window * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16;
        }
    }
    measure::write_wav(path, RATE, &samples);
    total
}

/// Onsets (ms) of the clicks in a recording.
fn onsets_ms(path: &Path) -> Vec<f64> {
    let (rate, samples) = lab::read_wav(path).expect("the speaker's file");
    let quiet_needed = rate as usize / 50;
    let (mut quiet, mut onsets) = (quiet_needed, Vec::new());
    for (i, s) in samples.iter().enumerate() {
        if s.unsigned_abs() > THRESHOLD.unsigned_abs() {
            if quiet >= quiet_needed {
                onsets.push(i as f64 * 1000.0 / f64::from(rate));
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    onsets
}

/// Each click's delay: the first onset heard within 600 ms after it was played, skipping the
/// first two seconds (the jitter buffer settling).
fn delays_ms(played: &[f64], heard: &[f64]) -> Vec<f64> {
    played
        .iter()
        .filter(|&&p| p >= 2000.0)
        .filter_map(|&p| {
            heard
                .iter()
                .find(|&&h| h >= p && h < p + 600.0)
                .map(|h| h - p)
        })
        .collect()
}

fn summary(delays: &[f64]) -> String {
    if delays.is_empty() {
        return "no click came back".to_owned();
    }
    let mut sorted = delays.to_vec();
    sorted.sort_by(f64::total_cmp);
    format!(
        "{:.1} ms (min {:.1}, max {:.1}; {} clicks)",
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
        sorted.len()
    )
}

/// One call from a daemon on `server` to 1002 with `codec`, the click train as its microphone;
/// returns the onsets heard in its speaker file.
async fn call(server: u16, codec: &str, millis: u32) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (train, heard) = (dir.path().join("train.wav"), dir.path().join("heard.wav"));
    write_click_train(&train);
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{server}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n\
         [log]\nlevel = \"warn\"\n[media]\ncodecs = [\"{codec}\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
        train.display(),
        heard.display()
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let (reply, _) = page.request("start_call", json!({"dialTo": "1002"})).await;
    let id = reply["result"]["conversationId"]
        .as_str()
        .unwrap_or_else(|| panic!("start_call: {reply}\n{}", daemon.log()))
        .to_owned();
    page.event("callAccepted").await;
    tokio::time::sleep(Duration::from_millis(u64::from(millis))).await;
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    // The speaker's file is complete once the call's media has stopped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    onsets_ms(&heard)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The played onset is where the burst first crosses the threshold, as for the heard one.
    let (length_ms, played) = {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("train.wav");
        (write_click_train(&path), onsets_ms(&path))
    };
    let kamailio = Kamailio::start("MD5");
    println!(
        "mouth-to-ear through each endpoint: click train in, the speaker file out, {CLICKS} clicks per call (release daemon, file audio backend)"
    );
    println!(
        "| codec | round trip, sipp echoing RTP (= our path: send + receive) | round trip, baresip echoing its audio | baresip's path (difference of medians) |"
    );
    println!("|---|---|---|---|");
    for (codec, baresip_codec, pt, rtpmap) in [
        ("pcmu", "PCMU", "0", "a=rtpmap:0 PCMU/8000"),
        ("opus", "opus/48000/2", "111", "a=rtpmap:111 opus/48000/2"),
    ] {
        let media_port = lab::free_port().to_string();
        let sipp = Sipp::start_with(
            "sipp-soak.xml",
            100,
            &[(
                "RTP/AVP 0\na=rtpmap:0 PCMU/8000",
                format!("RTP/AVP {pt}\n{rtpmap}"),
            )],
            &["-rtp_echo", "-mp", &media_port, "-deadcall_wait", "100"],
        );
        let ours = delays_ms(&played, &call(sipp.port, codec, length_ms).await);
        drop(sipp);
        let echo = Baresip::start_echoing(&kamailio, "1002", baresip_codec);
        let through_baresip = delays_ms(&played, &call(kamailio.port, codec, length_ms).await);
        drop(echo);
        let median = |d: &[f64]| {
            let mut s = d.to_vec();
            s.sort_by(f64::total_cmp);
            s.get(s.len() / 2).copied()
        };
        let difference = match (median(&through_baresip), median(&ours)) {
            (Some(b), Some(o)) => format!("{:.1} ms", b - o),
            _ => "—".to_owned(),
        };
        println!(
            "| {codec} | {} | {} | {difference} |",
            summary(&ours),
            summary(&through_baresip)
        );
    }
}
