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
//!
//! Then **WebRTC**, where no peer echoes SRTP: two of our daemons call each other over the
//! WebRTC line (wss to Kamailio, ICE, DTLS-SRTP, Opus), each with the click train as its
//! microphone and its speaker in a file. Each file starts when its own call's media does, so a
//! direction's figure is off by the difference between the two starts — the same difference with
//! the opposite sign the other way: the two directions' sum is exact, and each direction is our
//! send plus our receive, as with sipp, so half the sum is our path over WebRTC. Run in a network
//! namespace with only loopback up (as the WebRTC tests: root), so ICE gathers loopback alone.
//!
//! Then **through audio devices**: this machine has no sound card, so a private PulseAudio
//! ([`lab::sound_server`]) stands in for one — a clock-driven sink whose left channel is the
//! agent's mouth (what the default microphone hears) and whose right channel is the agent's ear
//! (where the default speaker plays). The click train is said into the mouth in real time, the
//! room is recorded, and each click's delay from mouth to ear is measured on the room's clock,
//! with sipp echoing RTP: our daemon on its cpal backend, then baresip on its ALSA module, both
//! reaching the server through ALSA's default device, in the same run. This is the whole
//! endpoint, both ways: the microphone's capture buffer, a frame's fill, the encoder, the jitter
//! buffer, the decoder and the speaker's buffer. Ours moves from call to call, so it is measured
//! over several calls (`LATENCY_CALLS`, 3); `LATENCY_PARTS=devices` runs this table alone, `LATENCY_PARTS=webrtc` the WebRTC row.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lab/mod.rs"]
mod lab;
mod measure;

use std::path::Path;
use std::time::Duration;

use common::{CRM, Client, Daemon};
use lab::sipp::Sipp;
use lab::sound_server::{self, SoundServer};
use lab::webrtc::{BrowserPhone, block_on_in_loopback_namespace};
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

/// The codecs measured: ours, baresip's name for it, its payload type and rtpmap line.
const CODECS: [(&str, &str, &str, &str); 2] = [
    ("pcmu", "PCMU", "0", "a=rtpmap:0 PCMU/8000"),
    ("opus", "opus/48000/2", "111", "a=rtpmap:111 opus/48000/2"),
];

/// sipp answering every call with `pt`/`rtpmap` and sending each RTP packet straight back.
fn sipp_echo(pt: &str, rtpmap: &str) -> Sipp {
    let media_port = lab::free_port().to_string();
    Sipp::start_with(
        "sipp-soak.xml",
        100,
        &[(
            "RTP/AVP 0\na=rtpmap:0 PCMU/8000",
            format!("RTP/AVP {pt}\n{rtpmap}"),
        )],
        &["-rtp_echo", "-mp", &media_port, "-deadcall_wait", "100"],
    )
}

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
    let (total, samples) = click_train();
    measure::write_wav(path, RATE, &samples);
    total
}

/// The click train at [`RATE`], and its length in ms.
fn click_train() -> (u32, Vec<i16>) {
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
    (total, samples)
}

/// Onsets (ms) of the clicks in a recording.
fn onsets_ms(path: &Path) -> Vec<f64> {
    let (rate, samples) = lab::read_wav(path).expect("the speaker's file");
    onsets_in(rate, &samples)
}

/// Onsets (ms) of the clicks in `samples` at `rate`.
fn onsets_in(rate: u32, samples: &[i16]) -> Vec<f64> {
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

/// The clicks from a second after the first on (before, the jitter buffer settles).
fn settled(played: &[f64]) -> impl Iterator<Item = f64> + '_ {
    let from = played.first().map_or(0.0, |first| first + 1000.0);
    played.iter().copied().filter(move |&p| p >= from)
}

/// Each click's delay: the first onset heard within 600 ms after it was played, skipping the
/// clicks within a second of the first (the jitter buffer settling).
fn delays_ms(played: &[f64], heard: &[f64]) -> Vec<f64> {
    settled(played)
        .filter_map(|p| {
            heard
                .iter()
                .find(|&&h| h >= p && h < p + 600.0)
                .map(|h| h - p)
        })
        .collect()
}

/// As [`delays_ms`], for two files whose timelines may be apart by up to 300 ms either way: the
/// onset heard nearest the click, within 300 ms of it.
fn offset_delays_ms(played: &[f64], heard: &[f64]) -> Vec<f64> {
    settled(played)
        .filter_map(|p| {
            heard
                .iter()
                .map(|&h| h - p)
                .filter(|d| d.abs() < 300.0)
                .min_by(|a, b| a.abs().total_cmp(&b.abs()))
        })
        .collect()
}

fn median(delays: &[f64]) -> Option<f64> {
    let mut sorted = delays.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// `a`'s median less `b`'s.
fn difference(a: &[f64], b: &[f64]) -> String {
    match (median(a), median(b)) {
        (Some(a), Some(b)) => format!("{:.1} ms", a - b),
        _ => "—".to_owned(),
    }
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
    call_for(&mut page, "1002", millis).await;
    // The speaker's file is complete once the call's media has stopped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    onsets_ms(&heard)
}

/// A WebRTC call from our daemon 1001 to our daemon 1004 (answering by itself) through
/// Kamailio's wss, Opus, each with the click train as its microphone; returns the onsets each
/// heard (caller's, callee's).
async fn webrtc_call(kamailio: &Kamailio, millis: u32) -> (Vec<f64>, Vec<f64>) {
    let wss = kamailio.ws_ports.expect("Kamailio's WebSocket ports").1;
    let dir = tempfile::tempdir().expect("tempdir");
    let train = dir.path().join("train.wav");
    write_click_train(&train);
    let heard = |who: &str| dir.path().join(format!("{who}.wav"));
    let config = |user: &str, extra: &str| {
        format!(
            "[account]\nserver = \"wss://127.0.0.1:{wss}\"\nusername = \"{user}\"\npassword = \"secret{user}\"\nca_file = \"{}\"\n{extra}\
             [log]\nlevel = \"warn\"\n[media]\ncodecs = [\"opus\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
            kamailio.ca_file().display(),
            train.display(),
            heard(user).display()
        )
    };
    let callee = Daemon::start(&config("1004", "auto_answer = \"always\"\n"));
    callee.connect(CRM).await.registered().await;
    let caller = Daemon::start(&config("1001", ""));
    let mut page = caller.connect(CRM).await;
    page.registered().await;
    call_for(&mut page, "1004", millis).await;
    // Both speakers' files are complete once both calls' media has stopped.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    (onsets_ms(&heard("1001")), onsets_ms(&heard("1004")))
}

/// A WebRTC call from our daemon to a JsSIP phone in Chromium that sends back what it hears;
/// returns the onsets our daemon heard.
async fn webrtc_through_browser(kamailio: &Kamailio, millis: u32) -> Vec<f64> {
    let wss = kamailio.ws_ports.expect("Kamailio's WebSocket ports").1;
    let dir = tempfile::tempdir().expect("tempdir");
    let (train, heard, silence) = (
        dir.path().join("train.wav"),
        dir.path().join("heard.wav"),
        dir.path().join("silence.wav"),
    );
    write_click_train(&train);
    // The browser's microphone until it echoes: nothing to mistake for a click.
    measure::write_wav(&silence, RATE, &vec![0; RATE as usize]);
    let mut browser = BrowserPhone::start_echoing(wss, "1002", &silence);
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"wss://127.0.0.1:{wss}\"\nusername = \"1001\"\npassword = \"secret1001\"\nca_file = \"{}\"\n\
         [log]\nlevel = \"warn\"\n[media]\ncodecs = [\"opus\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
        kamailio.ca_file().display(),
        train.display(),
        heard.display()
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    call_for(&mut page, "1002", millis).await;
    // It echoed from the call's start (the first second of clicks is not measured).
    browser.wait("echoing");
    tokio::time::sleep(Duration::from_millis(500)).await;
    onsets_ms(&heard)
}

/// Calls `to` from `page`'s daemon, lets the call run `millis`, and hangs up.
async fn call_for(page: &mut Client, to: &str, millis: u32) {
    let id = page.start_call(to).await;
    page.event("callAccepted").await;
    tokio::time::sleep(Duration::from_millis(u64::from(millis))).await;
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
}

/// What the room recorded while `run` went on: each said click's delay to its echo in the ear.
async fn through_the_room(
    server: &SoundServer,
    train: &[i16],
    run: impl AsyncFnOnce(&mut dyn FnMut() -> std::process::Child),
) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let recording = dir.path().join("room.raw");
    let mut recorder = server.record(&recording);
    run(&mut || server.say(train)).await;
    let _ = recorder.kill();
    let _ = recorder.wait();
    let (said, heard) = sound_server::channels(&recording);
    delays_ms(
        &onsets_in(sound_server::RATE, &said),
        &onsets_in(sound_server::RATE, &heard),
    )
}

/// Waits for a player (`say`) to end: at most the train's length and ten seconds (a stalled
/// sound server must not hang the bench).
async fn finished(mut player: std::process::Child) {
    let (length_ms, _) = click_train();
    let deadline = std::time::Instant::now() + Duration::from_millis(u64::from(length_ms) + 10_000);
    loop {
        match player.try_wait() {
            Ok(Some(status)) => {
                assert!(status.success(), "the player (pacat) failed: {status}");
                return;
            }
            Ok(None) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => {
                let _ = player.kill();
                panic!("the player (pacat) did not finish in time");
            }
        }
    }
}

/// Our daemon on its cpal backend (the system's default devices) calling the echo at
/// `sipp_port`.
async fn ours_on_devices(server: &SoundServer, sipp_port: u16, codec: &str) -> Vec<f64> {
    let (_, train) = click_train();
    let env = server.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let daemon = Daemon::launch(
        tempfile::tempdir().expect("tempdir"),
        &format!(
            "[account]\nserver = \"127.0.0.1:{sipp_port}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n\
             [log]\nlevel = \"info\"\n[media]\ncodecs = [\"{codec}\"]\n[audio]\nbackend = \"cpal\"\n"
        ),
        &env,
        true,
    );
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let delays = through_the_room(server, &train, async |say| {
        let id = page.start_call("1002").await;
        page.event("callAccepted").await;
        finished(say()).await;
        page.request("hangup", json!({"conversationId": id})).await;
        page.event("callEnded").await;
    })
    .await;
    // The periods the devices granted, for the figures' record.
    for line in daemon
        .log()
        .lines()
        .filter(|l| l.contains("audio devices open") || l.contains("holding more"))
    {
        eprintln!("  {codec}: {line}");
    }
    delays
}

/// The sound server's own mouth-to-ear: ALSA's recorder piped into its player between the
/// default devices, 10 ms buffers. `None` without alsa-utils.
async fn wire_on_devices(server: &SoundServer) -> Option<Vec<f64>> {
    let (_, train) = click_train();
    let wire = server.wire(10)?;
    // Both its streams running before the first click.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delays = through_the_room(server, &train, async |say| finished(say()).await).await;
    drop(wire);
    Some(delays)
}

/// baresip on its ALSA module (the system's default devices) calling the echo at `sipp_port`.
async fn baresip_on_devices(
    server: &SoundServer,
    kamailio: &Kamailio,
    sipp_port: u16,
    codec: &str,
) -> Vec<f64> {
    let (_, train) = click_train();
    let phone = Baresip::start_on_devices(kamailio, "1001", codec, &server.env());
    through_the_room(server, &train, async |say| {
        phone.command("dial", &format!("sip:echo@127.0.0.1:{sipp_port}"));
        // sipp answers at once; the train's first second is not measured anyway.
        tokio::time::sleep(Duration::from_millis(300)).await;
        finished(say()).await;
        phone.command("hangup", "");
    })
    .await
}

fn main() {
    block_on_in_loopback_namespace(run);
}

async fn run() {
    // LATENCY_PARTS=devices: only the second table; =webrtc: only the WebRTC row.
    let parts = std::env::var("LATENCY_PARTS").unwrap_or_default();
    if parts == "devices" {
        devices().await;
        return;
    }
    // The played onset is where the burst first crosses the threshold, as for the heard one.
    let (length_ms, played) = {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("train.wav");
        (write_click_train(&path), onsets_ms(&path))
    };
    if parts == "webrtc" {
        webrtc(&played, length_ms).await;
        return;
    }
    let kamailio = Kamailio::start("MD5");
    println!(
        "mouth-to-ear through each endpoint: click train in, the speaker file out, {CLICKS} clicks per call (release daemon, file audio backend)"
    );
    println!(
        "| codec | round trip, sipp echoing RTP (= our path: send + receive) | round trip, baresip echoing its audio | baresip's path (difference of medians) |"
    );
    println!("|---|---|---|---|");
    for (codec, baresip_codec, pt, rtpmap) in CODECS {
        let sipp = sipp_echo(pt, rtpmap);
        let ours = delays_ms(&played, &call(sipp.port, codec, length_ms).await);
        drop(sipp);
        let echo = Baresip::start_echoing(&kamailio, "1002", baresip_codec);
        let through_baresip = delays_ms(&played, &call(kamailio.port, codec, length_ms).await);
        drop(echo);
        println!(
            "| {codec} | {} | {} | {} |",
            summary(&ours),
            summary(&through_baresip),
            difference(&through_baresip, &ours)
        );
    }
    drop(kamailio);
    webrtc(&played, length_ms).await;
    devices().await;
}

/// The WebRTC row: our path, from two of our daemons calling each other, and the browser
/// phone's, from a JsSIP phone echoing our daemon.
async fn webrtc(played: &[f64], length_ms: u32) {
    let kamailio = Kamailio::start_with_ws("MD5");
    let (caller_heard, callee_heard) = webrtc_call(&kamailio, length_ms).await;
    let through_browser = delays_ms(played, &webrtc_through_browser(&kamailio, length_ms).await);
    let (to_caller, to_callee) = (
        offset_delays_ms(played, &caller_heard),
        offset_delays_ms(played, &callee_heard),
    );
    let ours = match (median(&to_caller), median(&to_callee)) {
        (Some(back), Some(forth)) => Some((back + forth) / 2.0),
        _ => None,
    };
    println!(
        "| webrtc (Opus) | {} — daemon calling daemon, half the two directions' sum (each way, off by the files' starts: caller to callee {}; callee to caller {}) | JsSIP in Chromium echoing: {} | browser phone's path: {} |",
        ours.map_or_else(
            || "no click came back".to_owned(),
            |ms| format!("**{ms:.1} ms**")
        ),
        summary(&to_callee),
        summary(&to_caller),
        summary(&through_browser),
        match (median(&through_browser), ours) {
            (Some(round), Some(ours)) => format!("{:.1} ms", round - ours),
            _ => "—".to_owned(),
        }
    );
}

/// The second table: mouth to ear through (virtual) audio devices.
async fn devices() {
    let Some(server) = SoundServer::start() else {
        println!("\nthrough audio devices: skipped (PulseAudio is not installed: ./dev setup)");
        return;
    };
    let kamailio = Kamailio::start("MD5");
    println!(
        "\nmouth-to-ear through audio devices (a PulseAudio sink as the room, reached through ALSA's default device), sipp echoing RTP, {CLICKS} clicks per call"
    );
    // The server's floor: what the same devices cost a program that only copies.
    let floor = wire_on_devices(&server).await.unwrap_or_default();
    println!(
        "the sound server's floor, arecord | aplay copying the default microphone to the default speaker (10 ms buffers, 2.5 ms periods): {}",
        if floor.is_empty() {
            "not measured (alsa-utils is not installed: ./dev bench)".to_owned()
        } else {
            summary(&floor)
        }
    );
    // Ours moves from call to call (where the devices' periods and the sound server's requests
    // fall against the call's ticks, set as it starts): several calls, each call's median shown.
    let calls: usize = std::env::var("LATENCY_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
        .max(1);
    println!(
        "| codec | softphone-bridge (cpal), median of {calls} calls' medians (each call's) | baresip (alsa module) | ours less the floor | baresip's less the floor |"
    );
    println!("|---|---|---|---|---|");
    for (codec, baresip_codec, pt, rtpmap) in CODECS {
        let mut ours = vec![];
        for _ in 0..calls {
            let sipp = sipp_echo(pt, rtpmap);
            ours.extend(median(&ours_on_devices(&server, sipp.port, codec).await));
            drop(sipp);
        }
        let sipp = sipp_echo(pt, rtpmap);
        let theirs = baresip_on_devices(&server, &kamailio, sipp.port, baresip_codec).await;
        drop(sipp);
        let each: Vec<String> = ours.iter().map(|ms| format!("{ms:.1}")).collect();
        println!(
            "| {codec} | {} ({}) | {} | {} | {} |",
            median(&ours).map_or_else(
                || "no click came back".to_owned(),
                |ms| format!("{ms:.1} ms")
            ),
            each.join(", "),
            summary(&theirs),
            difference(&ours, &floor),
            difference(&theirs, &floor)
        );
    }
}
