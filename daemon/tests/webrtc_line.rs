//! The WebRTC line against real parts, each test in its own network namespace with only `lo`:
//! Kamailio with its WebSocket modules (wss), coturn as TURN relay, and as the far end a JsSIP
//! phone in headless Chromium with a fake microphone playing a tone. The daemon is provisioned
//! with the seed platform's parameters only. Each side's tone must arrive at the other: the
//! browser measures ours with WebAudio, the daemon records theirs.

mod call_lab;
mod common;
mod lab;

use call_lab::{AGENT_HZ, FAR_HZ};
use common::{CRM, Daemon, eventually};
use lab::webrtc::{BrowserPhone, Coturn, in_loopback_namespace};
use lab::{Kamailio, analyse, read_wav, write_tone};
use serde_json::json;
use std::time::Duration;

struct WebRtcLab {
    kamailio: Kamailio,
    coturn: Coturn,
    phone: BrowserPhone,
    daemon: Daemon,
    dir: tempfile::TempDir,
}

/// The seed's parameters, as IT would put them in the config file.
fn lab(extra_account: &str) -> WebRtcLab {
    let kamailio = Kamailio::start_with_ws("MD5");
    let coturn = Coturn::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let far_tone = dir.path().join("far.wav");
    write_tone(&far_tone, 48000, FAR_HZ, 0.5, 60.0);
    let phone = BrowserPhone::start(kamailio.ws_ports.expect("ws").1, "1002", &far_tone);
    let agent_tone = dir.path().join("agent.wav");
    write_tone(&agent_tone, 48000, AGENT_HZ, 0.5, 10.0);
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(8);
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"wss://127.0.0.1:{wss}\"\nusername = \"1001\"\npassword = \"secret1001\"\n\
         auth_key = \"k-7f3a\"\ncustomer_id = 77\nuser_id = 1001\nturn_port = {turn}\nexpire_date = \"{expires}\"\n\
         ca_file = \"{ca}\"\n{extra_account}\n\
         [log]\nlevel = \"debug\"\n[audio]\nbackend = \"file\"\ninput_file = \"{input}\"\noutput_file = \"{output}\"\n",
        wss = kamailio.ws_ports.expect("ws").1,
        turn = coturn.port,
        expires = expires.format(&time::format_description::well_known::Rfc3339).expect("date"),
        ca = kamailio.ca_file().display(),
        input = agent_tone.display(),
        output = dir.path().join("heard.wav").display(),
    ));
    WebRtcLab { kamailio, coturn, phone, daemon, dir }
}

impl WebRtcLab {
    /// The browser hears the agent's tone, and the agent's recording holds the browser's.
    fn assert_tones_both_ways(&mut self) {
        let measured = self.phone.measure(&[AGENT_HZ, FAR_HZ]);
        let peak = measured["peakHz"].as_f64().unwrap_or(0.0);
        assert!((peak - AGENT_HZ).abs() < 15.0, "the browser hears the agent's tone: {measured}");
        let level = measured["levelDb"].as_f64().unwrap_or(-200.0);
        assert!(level > -20.0 && level < -3.0, "at about the sent level (-9 dBFS): {measured}");
        let heard = self.dir.path().join("heard.wav");
        let (rate, samples) = read_wav(&heard).expect("the agent's recording");
        let agent = analyse(rate, &samples, &[FAR_HZ, AGENT_HZ, 1500.0]);
        assert_eq!(agent.peaks[0].0, FAR_HZ, "the agent hears the browser's tone: {agent:?}");
        assert!(agent.peaks[0].1 > 0.8, "and little else: {agent:?}");
        assert!(agent.level_dbfs > -20.0 && agent.level_dbfs < -3.0, "{agent:?}");
    }

    fn wait_for_audio(&self, seconds: f64) {
        let heard = self.dir.path().join("heard.wav");
        let bytes = (seconds * 48000.0 * 2.0) as u64 + 44;
        eventually("audio from the browser", Duration::from_secs(20), || (std::fs::metadata(&heard).map(|m| m.len()).unwrap_or(0) >= bytes).then_some(()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_call_to_a_browser_phone_and_back() {
    if !in_loopback_namespace("webrtc_call_to_a_browser_phone_and_back") {
        return;
    }
    let mut lab = lab("");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    assert_eq!(state["result"]["state"]["line"]["extension"], "1001", "{state}");
    assert_eq!(lab.kamailio.contacts("1001").len(), 1, "Kamailio's location table has the agent");

    // The agent calls the browser phone.
    let (reply, _) = page.request("start_call", json!({"dialTo": "1002"})).await;
    let id = reply["result"]["conversationId"].as_str().expect("conversationId").to_owned();
    lab.phone.wait("incoming");
    lab.phone.send(json!({"cmd": "answer"}));
    page.event("callAccepted").await;
    lab.phone.wait("confirmed");
    lab.wait_for_audio(3.0);
    lab.assert_tones_both_ways();
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    lab.phone.wait("ended");

    // The browser phone calls the agent.
    lab.phone.send(json!({"cmd": "call", "target": "sip:1001@127.0.0.1"}));
    let incoming = page.event("incomingCall").await;
    assert_eq!(incoming["payload"]["callerANI"], "1002");
    let id = incoming["payload"]["conversationId"].as_str().expect("id").to_owned();
    page.request("answer", json!({"conversationId": id})).await;
    page.event("callAccepted").await;
    lab.phone.wait("confirmed");
    // The recording starts again with the new call.
    tokio::time::sleep(Duration::from_millis(500)).await;
    lab.wait_for_audio(3.0);
    lab.assert_tones_both_ways();
    lab.phone.send(json!({"cmd": "hangup"}));
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["callType"], "inbound");
}

impl Drop for WebRtcLab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- daemon log ---\n{}", self.daemon.log());
            eprintln!("--- coturn log (tail) ---\n{}", self.coturn.log().lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_call_with_relay_forced_goes_through_coturn() {
    if !in_loopback_namespace("webrtc_call_with_relay_forced_goes_through_coturn") {
        return;
    }
    let mut lab = lab("force_relay = true");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let (reply, _) = page.request("start_call", json!({"dialTo": "1002"})).await;
    let id = reply["result"]["conversationId"].as_str().expect("conversationId").to_owned();
    lab.phone.wait("incoming");
    lab.phone.send(json!({"cmd": "answer"}));
    page.event("callAccepted").await;
    lab.wait_for_audio(3.0);
    lab.assert_tones_both_ways();
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    // coturn reports each allocation's traffic since its last report, now and then and when it
    // closes: the agent's (username 1001) must have carried the call (~50 packets a second each way,
    // over the seconds of audio both sides checked).
    let count = |line: &str, key: &str| line.split(", ").find_map(|f| f.trim().strip_prefix(key)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let (received, sent) = eventually("coturn's usage reports for the agent's relayed call", Duration::from_secs(20), || {
        let log = lab.coturn.log();
        let reports: Vec<&str> = log.lines().filter(|l| l.contains(": usage: realm=<lab>, username=<1001>")).collect();
        let received: u64 = reports.iter().map(|l| count(l, "rp=")).sum();
        let sent: u64 = reports.iter().map(|l| count(l, "sp=")).sum();
        (received > 100 && sent > 100).then_some((received, sent))
    });
    eprintln!("relayed through coturn: {received} packets from the agent, {sent} to the agent");
}
