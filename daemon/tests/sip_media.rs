//! Media features against baresip through Kamailio: SDES-SRTP both ways, RTCP call quality,
//! RFC 4733 DTMF both ways, hold and resume (ours and the far end's).

mod call_lab;
mod common;
mod lab;

use std::time::Duration;

use call_lab::{AGENT_HZ, FAR_HZ, lab, lab_with};
use common::{CRM, Client, eventually};
use lab::{analyse, read_wav};
use serde_json::{Value, json};

/// A daemon registered as 1001 to `kamailio`, offering only `codec`, with the file backend:
/// `tone` as its microphone, what it hears recorded to `heard`, and `audio` more `[audio]` keys.
fn file_daemon(
    kamailio: &lab::Kamailio,
    codec: &str,
    tone: &std::path::Path,
    heard: &std::path::Path,
    audio: &str,
) -> common::Daemon {
    common::Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n\
         [media]\ncodecs = [\"{codec}\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n{audio}",
        kamailio.port,
        tone.display(),
        heard.display()
    ))
}

async fn call_state(page: &mut Client) -> Value {
    let (state, _) = page.request("get_state", Value::Null).await;
    state["result"]["state"]["calls"][0].clone()
}

/// Polls the snapshot until `quality` has a round trip (the far end answered one of our SRs).
async fn quality_with_round_trip(page: &mut Client) -> Value {
    for _ in 0..60 {
        let call = call_state(page).await;
        if call["quality"]["roundTripMs"].is_number() {
            return call["quality"].clone();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no RTCP round trip after 15 s: {}", call_state(page).await);
}

/// `[media] srtp = "required"`: we offer RTP/SAVP; baresip (`srtp-mand`) accepts; the tones
/// cross encrypted, and RTCP (SRTCP) reports come back with a round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtp_call_carries_audio_both_ways_and_rtcp_reports_quality() {
    let lab = lab_with("PCMU", ";mediaenc=srtp-mand", "srtp = \"required\"");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let id = page.start_call("1002").await;
    page.event("callAccepted").await;
    lab.wait_for_audio();
    let quality = quality_with_round_trip(&mut page).await;
    assert_eq!(
        (quality["codec"].as_str(), quality["srtp"].as_bool()),
        (Some("PCMU"), Some(true)),
        "{quality}"
    );
    assert!(
        quality["packetsReceived"].as_u64().unwrap_or(0) > 100,
        "{quality}"
    );
    assert_eq!(
        quality["packetsLost"], 0,
        "loopback loses nothing: {quality}"
    );
    assert_eq!(
        quality["remotePacketsLost"], 0,
        "baresip's report about our stream: {quality}"
    );
    let rtt = quality["roundTripMs"].as_f64().unwrap_or(f64::MAX);
    assert!(
        (0.0..50.0).contains(&rtt),
        "round trip on loopback: {quality}"
    );
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    lab.assert_tones_both_ways();
    assert!(
        lab.daemon.log().contains("srtp=true"),
        "media started with SRTP"
    );
}

/// baresip calls us offering RTP/SAVP; the default policy (`optional`) answers with SRTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srtp_offer_is_answered_with_srtp() {
    let lab = lab_with("PCMA", ";mediaenc=srtp-mand", "");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let (id, _) = lab.call_the_agent(&mut page).await;
    page.request("answer", json!({"conversationId": id})).await;
    page.event("callAccepted").await;
    lab.wait_for_audio();
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    lab.assert_tones_both_ways();
    assert!(
        lab.daemon.log().contains("srtp=true"),
        "media started with SRTP"
    );
}

/// An incoming call rings the ringer (here the file backend's `ringer_file`) until answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_call_rings_until_answered() {
    let lab = lab("PCMU");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let (id, _) = lab.call_the_agent(&mut page).await;
    let ringer = lab.dir.path().join("ringer.wav");
    // Let it ring for a second and a half (the file grows 8000 samples a second).
    eventually("the ringer to ring", Duration::from_secs(10), || {
        (std::fs::metadata(&ringer).map(|m| m.len()).unwrap_or(0) > 24_000).then_some(())
    });
    page.request("answer", json!({"conversationId": id})).await;
    page.event("callAccepted").await;
    let (rate, ring) = eventually("the ringer to stop", Duration::from_secs(5), || {
        read_wav(&ringer).filter(|(_, s)| !s.is_empty())
    });
    let report = analyse(rate, &ring, &[440.0, 480.0, 1000.0]);
    assert!(
        report.peaks[0].1 + report.peaks[1].1 > 0.9,
        "440 + 480 Hz ring: {report:?}"
    );
    assert!(report.peaks[2].1 < 0.05, "{report:?}");
    let len = ring.len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        read_wav(&ringer).map(|(_, s)| s.len()),
        Some(len),
        "no more ringing once answered"
    );
}

/// `[account] auto_answer`: a call is answered without the page, which still sees it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_answer_takes_calls_without_the_page() {
    let lab = call_lab::lab_with_account("PCMU", "auto_answer = true");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let (id, _) = lab.call_the_agent(&mut page).await;
    let accepted = page.event("callAccepted").await;
    assert_eq!(accepted["payload"]["conversationId"], id.as_str());
    lab.wait_for_audio();
    lab.baresip.command("hangup", "");
    page.event("callEnded").await;
    lab.assert_tones_both_ways();
}

/// With `srtp = "off"`, an RTP/SAVP offer is refused with 488 rather than answered in the clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srtp_offer_is_refused_when_srtp_is_off() {
    let lab = lab_with("PCMU", ";mediaenc=srtp-mand", "srtp = \"off\"");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let (id, _) = lab.call_the_agent(&mut page).await;
    page.request("answer", json!({"conversationId": id})).await;
    let rejected = page.event("callRejected").await;
    assert_eq!(rejected["payload"]["conversationId"], id.as_str());
    assert!(
        lab.daemon.log().contains("requires SRTP"),
        "the log says why"
    );
}

/// DTMF both ways (RFC 4733), our hold and resume (re-INVITE sendonly/sendrecv, confirmed by
/// baresip), then baresip's hold and resume of us.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_both_ways_and_hold_both_ways() {
    let lab = lab("PCMU");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let id = page.start_call("1002").await;
    page.event("callAccepted").await;
    lab.wait_for_audio();

    lab.baresip.command("sndcode", "7");
    let dtmf = page.event("dtmfReceived").await;
    assert_eq!(
        (
            dtmf["payload"]["conversationId"].as_str(),
            dtmf["payload"]["digit"].as_str()
        ),
        (Some(id.as_str()), Some("7"))
    );
    page.request("dtmf", json!({"digits": "5#"})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(lab.baresip.log().contains("received event: '5' (end=1)")
        && lab.baresip.log().contains("received event: '#' (end=1)"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "baresip did not log our DTMF:\n{}",
            lab.baresip.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (reply, _) = page.request("hold", json!({"conversationId": id})).await;
    assert_eq!(reply["result"]["held"], true, "{reply}");
    let held = page.event("callHoldChanged").await;
    assert_eq!(
        (
            held["payload"]["held"].as_bool(),
            held["payload"]["by"].as_str()
        ),
        (Some(true), Some("agent"))
    );
    assert_eq!(call_state(&mut page).await["state"], "held");
    let held_for = Duration::from_secs(2);
    tokio::time::sleep(held_for).await;
    page.request("unhold", json!({})).await;
    let resumed = page.event("callHoldChanged").await;
    assert_eq!(resumed["payload"]["held"], false);
    assert_eq!(call_state(&mut page).await["state"], "active");

    lab.baresip.command("hold", "");
    let remote = page.event("callHoldChanged").await;
    assert_eq!(
        (
            remote["payload"]["held"].as_bool(),
            remote["payload"]["by"].as_str()
        ),
        (Some(true), Some("remote"))
    );
    assert_eq!(call_state(&mut page).await["remoteHold"], true);
    lab.baresip.command("resume", "");
    let remote = page.event("callHoldChanged").await;
    assert_eq!(
        (
            remote["payload"]["held"].as_bool(),
            remote["payload"]["by"].as_str()
        ),
        (Some(false), Some("remote"))
    );
    // Audio flows again after both holds: a second of tone reaches the agent.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;

    let (rate, heard) = read_wav(&lab.heard_path()).expect("the agent's recording");
    let tail = &heard[heard.len().saturating_sub(rate as usize)..];
    let report = analyse(rate, tail, &[FAR_HZ, AGENT_HZ, 1500.0]);
    assert_eq!(
        report.peaks[0].0, FAR_HZ,
        "the far end's tone after resume: {report:?}"
    );
    // While we held, we sent nothing: baresip decoded about `held_for` less audio than the agent heard.
    let (far_rate, far) = eventually("baresip's recording", Duration::from_secs(10), || {
        lab.baresip.recording()
    });
    let (agent_s, far_s) = (
        heard.len() as f64 / f64::from(rate),
        far.len() as f64 / f64::from(far_rate),
    );
    assert!(
        far_s < agent_s - 1.0,
        "agent heard {agent_s:.1} s, baresip {far_s:.1} s: our hold stopped our audio"
    );
}

/// G.722 with baresip (whose g722 module is SpanDSP's): wideband both ways, proven with tones
/// above 4 kHz, which no narrowband codec carries — 5 kHz from the agent, 6 kHz from the far end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g722_carries_wideband_tones_both_ways_with_baresip() {
    const AGENT_WIDE_HZ: f64 = 5000.0;
    const FAR_WIDE_HZ: f64 = 6000.0;
    let kamailio = lab::Kamailio::start("MD5");
    let baresip = lab::Baresip::start(&kamailio, "1002", FAR_WIDE_HZ, "G722");
    let dir = tempfile::tempdir().expect("tempdir");
    let (tone, heard) = (dir.path().join("agent.wav"), dir.path().join("heard.wav"));
    lab::write_tone(&tone, 48000, AGENT_WIDE_HZ, 0.5, 10.0);
    let daemon = file_daemon(&kamailio, "g722", &tone, &heard, "");
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let id = page.start_call("1002").await;
    page.event("callAccepted").await;
    eventually("4 s of the far end", Duration::from_secs(20), || {
        (std::fs::metadata(&heard).map_or(0, |m| m.len()) > 4 * 16000 * 2 + 44).then_some(())
    });
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;

    let (rate, samples) = read_wav(&heard).expect("the agent's recording");
    assert_eq!(rate, 16000, "the call's audio runs at G.722's 16 kHz");
    let ours = analyse(
        rate,
        &samples,
        &[FAR_WIDE_HZ, AGENT_WIDE_HZ, 1000.0, 3000.0],
    );
    assert_eq!(
        ours.peaks[0].0, FAR_WIDE_HZ,
        "the agent hears 6 kHz: {ours:?}"
    );
    assert!(ours.peaks[0].1 > 0.8, "{ours:?}");
    assert!(
        ours.level_dbfs > -15.0 && ours.level_dbfs < -3.0,
        "{ours:?}"
    );

    let (rate, far) = eventually("baresip's recording", Duration::from_secs(10), || {
        baresip.recording().filter(|(_, s)| !s.is_empty())
    });
    let theirs = analyse(rate, &far, &[AGENT_WIDE_HZ, FAR_WIDE_HZ, 1000.0, 3000.0]);
    assert_eq!(
        theirs.peaks[0].0, AGENT_WIDE_HZ,
        "baresip hears 5 kHz: {theirs:?}"
    );
    assert!(theirs.peaks[0].1 > 0.8, "{theirs:?}");
    assert!(
        theirs.level_dbfs > -15.0 && theirs.level_dbfs < -3.0,
        "{theirs:?}"
    );
}

/// Echo cancellation in a call, with the file backend as a speakerphone (`file_echo_db`):
/// baresip's 700 Hz comes back into the agent's microphone 10 dB down, beside the agent's own
/// 1.5 kHz. Without the canceller baresip hears its own tone back; with it, at least 20 dB
/// less (after the first seconds), while the agent's tone still reaches baresip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_canceller_removes_the_far_end_fed_back_into_the_microphone() {
    const FAR: f64 = 700.0;
    const AGENT: f64 = 1500.0;
    let kamailio = lab::Kamailio::start("MD5");
    let baresip = lab::Baresip::start(&kamailio, "1002", FAR, "PCMU");
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("agent.wav");
    lab::write_tone(&tone, 8000, AGENT, 0.1, 20.0);
    // (the far end's tone, the agent's) in dBFS as baresip heard them, without and with.
    let mut heard_by_baresip = Vec::new();
    for canceller in ["off", "on"] {
        let heard = dir.path().join(format!("heard-{canceller}.wav"));
        let daemon = file_daemon(
            &kamailio,
            "pcmu",
            &tone,
            &heard,
            &format!(
                "file_echo_db = -10.0\necho_cancellation = \"{canceller}\"\nnoise_suppression = \"off\"\ngain_control = \"off\"\n"
            ),
        );
        let mut page = daemon.connect(CRM).await;
        page.registered().await;
        let id = page.start_call("1002").await;
        page.event("callAccepted").await;
        eventually("8 s of the far end", Duration::from_secs(30), || {
            (std::fs::metadata(&heard).map_or(0, |m| m.len()) > 8 * 8000 * 2 + 44).then_some(())
        });
        page.request("hangup", json!({"conversationId": id})).await;
        page.event("callEnded").await;
        let calls = heard_by_baresip.len() + 1;
        let (rate, samples) = eventually("baresip's recording", Duration::from_secs(10), || {
            let this_call = baresip.recording_count() >= calls;
            baresip
                .newest_recording()
                .filter(|(rate, s)| this_call && s.len() > 6 * *rate as usize)
        });
        // The last 5 s (the canceller has had 3 s to converge); `analyse` skips a fifth at each end.
        let tail = &samples[samples.len() - 5 * rate as usize..];
        let report = analyse(rate, tail, &[FAR, AGENT]);
        let level = |hz: f64| {
            let share = report.peaks.iter().find(|p| p.0 == hz).map_or(0.0, |p| p.1);
            report.level_dbfs + 10.0 * share.max(1e-12).log10()
        };
        heard_by_baresip.push((level(FAR), level(AGENT)));
    }
    eprintln!(
        "baresip heard (its own tone, the agent's) in dBFS, without and with the canceller: {heard_by_baresip:.1?}"
    );
    let [(echo_off, agent_off), (echo_on, agent_on)] = heard_by_baresip[..] else {
        unreachable!("two calls");
    };
    assert!(
        echo_off > -30.0,
        "without the canceller baresip hears its own tone back: {heard_by_baresip:?}"
    );
    assert!(
        echo_off - echo_on >= 20.0,
        "the canceller takes at least 20 dB off the echo: {heard_by_baresip:?}"
    );
    assert!(
        (agent_off - agent_on).abs() < 3.0,
        "the agent's own voice passes: {heard_by_baresip:?}"
    );
}
