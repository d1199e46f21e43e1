//! Voice quality under packet loss, ours beside baresip's (not a test: it prints scores).
//! Needs the lab packages, root for a network namespace, and `./dev bench`'s extras: espeak-ng
//! for the speech and the `pesq` package (ITU-T P.862) in `.lab/quality` (or
//! `QUALITY_PYTHON`).
//!
//!     cargo bench -p softphone-bridge --bench quality      (or ./dev bench)
//!     QUALITY_CODECS=opus QUALITY_CONDITIONS=jitter cargo bench ...   (only some rows: codecs by
//!                                     name, conditions by a part of theirs, comma-separated)
//!
//! In a network namespace where only `lo` exists. `tc netem` would add loss and jitter, but this
//! machine's kernel has no netem qdisc ("Specified qdisc kind is unknown"): the sender runs with
//! `tests/lab/jitter.c` preloaded instead, which drops that share of the RTP packets it sends
//! and holds back each media packet for a random 0..2·J ms (`netem delay J J`'s spread); SIP is
//! spared, so every call is set up the same way. Its draws are seeded by the round: our daemon's
//! call and baresip's call of a round lose the same packets and meet the same delays.
//! baresip (1002) plays speech (espeak-ng, a few sentences looped); the receiving end records
//! what it plays out after its jitter buffer and concealment: first our daemon calling it (its
//! file backend), then a second baresip (1003) calling it — the same sender, the same network,
//! so the difference is the receiver's. That baresip plays out into ALSA's `file` plugin paced
//! like a sound card (`tests/lab/paced_alsa.c`); what its `sndfile` module records before its
//! playout is scored too, in a column of its own. PESQ scores each recording (narrow band for
//! PCMU, wide band for Opus).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lab/mod.rs"]
mod lab;
mod measure;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{CRM, Daemon};
use lab::{Baresip, Jitter, Kamailio, Playout};
use serde_json::json;

/// Seconds recorded per call (the first is skipped by the scorer), and calls per row.
const CALL: Duration = Duration::from_secs(9);
const ROUNDS: usize = 6;

/// (name, percent of media packets dropped, jitter J: each packet late by a uniform 0..2·J ms).
const CONDITIONS: [(&str, u32, u32); 4] = [
    ("no loss", 0, 0),
    ("3 % loss", 3, 0),
    ("10 % loss", 10, 0),
    ("40 ms jitter", 0, 40),
];

fn main() {
    lab::webrtc::block_on_in_loopback_namespace(run);
}

fn python() -> PathBuf {
    std::env::var_os("QUALITY_PYTHON").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.lab/quality/bin/python"
            ))
        },
        PathBuf::from,
    )
}

fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/lab/quality.py")
}

fn score(reference: &Path, recording: &Path) -> String {
    let out = Command::new(python())
        .args([script(), "score"])
        .arg(reference)
        .arg(recording)
        .output()
        .expect("the quality venv (./dev bench makes it)");
    if !out.status.success() {
        return format!("error: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether a row is picked: `variable` unset, or one of its comma-separated parts `matches`.
fn picked(variable: &str, matches: impl Fn(&str) -> bool) -> bool {
    std::env::var(variable).map_or(true, |only| only.split(',').any(matches))
}

/// "mean (each score)".
fn summary(scores: &[String]) -> String {
    let values: Vec<f64> = scores.iter().filter_map(|s| s.parse().ok()).collect();
    if values.len() != scores.len() || values.is_empty() {
        return scores.join(", ");
    }
    format!(
        "**{:.2}** ({})",
        values.iter().sum::<f64>() / values.len() as f64,
        scores.join(", ")
    )
}

async fn run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = Command::new(python())
        .args([script(), "speech"])
        .arg(dir.path())
        .status()
        .expect("the quality venv (./dev bench makes it)");
    assert!(made.success(), "speech (espeak-ng)");
    let kamailio = Kamailio::start("MD5");
    println!(
        "PESQ (MOS-LQO) of what the receiver plays out, baresip sending speech to it, media packets dropped and delayed (the same draws for both receivers in a round)"
    );
    println!(
        "| codec | condition | softphone-bridge receiving: mean (each call) | baresip receiving, played out | baresip, before its playout (`sndfile`) |"
    );
    println!("|---|---|---|---|---|");
    for (codec, baresip_codec, reference) in [
        ("pcmu", "PCMU", "speech-8k.wav"),
        ("opus", "opus/48000/2", "speech-48k.wav"),
    ] {
        if !picked("QUALITY_CODECS", |only| only == codec) {
            continue;
        }
        let reference = dir.path().join(reference);
        let heard = dir.path().join(format!("heard-{codec}.wav"));
        let daemon = Daemon::start(&format!(
            "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n\
             [log]\nlevel = \"warn\"\n[media]\ncodecs = [\"{codec}\"]\n[audio]\nbackend = \"file\"\noutput_file = \"{}\"\n",
            kamailio.port,
            heard.display()
        ));
        let mut page = daemon.connect(CRM).await;
        page.registered().await;
        // One sender and one receiving baresip for all the calls of a codec (a baresip killed
        // between calls would leave its registration behind at Kamailio).
        let jitter = Jitter::build();
        let sender =
            Baresip::start_playing_jittered(&kamailio, "1002", &reference, baresip_codec, &jitter);
        let playout = Playout::build();
        let receiver = Baresip::start_playing_out(&kamailio, "1003", baresip_codec, &playout);
        for (name, percent, jitter_ms) in CONDITIONS {
            if !picked("QUALITY_CONDITIONS", |part| name.contains(part)) {
                continue;
            }
            // Where the losses fall scatters the score from call to call: the mean of ROUNDS
            // calls each.
            let (mut ours, mut theirs, mut decoded) = (Vec::new(), Vec::new(), Vec::new());
            // The interarrival jitter our daemon measured (RFC 3550), each call's last report.
            let (mut measured, mut concealed) = (Vec::new(), Vec::new());
            for round in 0..ROUNDS {
                // Both receivers' calls of the round: the same packets lost, the same delays.
                jitter.set(jitter_ms, percent, round as u32);
                let id = page.start_call("1002").await;
                page.event("callAccepted").await;
                tokio::time::sleep(CALL).await;
                let (state, _) = page.request("get_state", json!({})).await;
                let quality = &state["result"]["state"]["calls"][0]["quality"];
                if let Some(ms) = quality["jitterMs"].as_f64() {
                    measured.push(format!("{ms:.1}"));
                }
                concealed.push(
                    quality["concealedFrames"]
                        .as_u64()
                        .unwrap_or_default()
                        .to_string(),
                );
                page.request("hangup", json!({"conversationId": id})).await;
                page.event("callEnded").await;
                let ours_file = dir
                    .path()
                    .join(format!("ours-{codec}-{percent}-{round}.wav"));
                std::fs::copy(&heard, &ours_file).expect("our recording");
                let before = receiver.recording_count();
                receiver.command(
                    "dial",
                    &format!("sip:1002@{}:{}", kamailio.address, kamailio.port),
                );
                tokio::time::sleep(CALL + Duration::from_secs(1)).await;
                receiver.command("hangup", "");
                tokio::time::sleep(Duration::from_millis(500)).await;
                let theirs_file = dir
                    .path()
                    .join(format!("theirs-{codec}-{percent}-{round}.wav"));
                match playout.last_call(baresip_codec) {
                    Some((rate, samples)) => {
                        // A check that the rate and channels are right: ~10 s per call.
                        let log = receiver.log();
                        eprintln!(
                            "{codec}, {name}: baresip played out {:.1} s ({})",
                            samples.len() as f64 / f64::from(rate),
                            log.lines()
                                .rfind(|l| l.starts_with("paced_alsa"))
                                .unwrap_or("paced_alsa: no pace")
                        );
                        measure::write_wav(&theirs_file, rate, &samples)
                    }
                    None => eprintln!("baresip played out nothing: {}", receiver.log()),
                }
                let decoded_file = dir
                    .path()
                    .join(format!("decoded-{codec}-{percent}-{round}.wav"));
                let recorded = (receiver.recording_count() > before)
                    .then(|| receiver.newest_recording())
                    .flatten();
                match recorded {
                    Some((rate, samples)) => measure::write_wav(&decoded_file, rate, &samples),
                    None => eprintln!("baresip recorded nothing: {}", receiver.log()),
                }
                ours.push(score(&reference, &ours_file));
                theirs.push(score(&reference, &theirs_file));
                decoded.push(score(&reference, &decoded_file));
            }
            jitter.set(0, 0, 0);
            eprintln!(
                "{codec}, {name}: jitter measured by our daemon (ms): {}; frames it concealed (at its last report, 1 s and every 5 s): {}",
                measured.join(", "),
                concealed.join(", ")
            );
            println!(
                "| {codec} | {name} | {} | {} | {} |",
                summary(&ours),
                summary(&theirs),
                summary(&decoded)
            );
        }
        drop((receiver, sender, playout));
    }
}
