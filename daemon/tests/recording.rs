//! Call recordings (issue 11, seeds `002_…` recording and `003_…` recordings), end to end: the
//! real binary's line to Kamailio, baresip as the far end, each side playing a known tone. The
//! recording is decoded by an independent decoder (`opusdec`, opus-tools) and each channel is
//! checked for its tone: the agent on the left, the far end on the right.

mod call_lab;
mod common;
mod lab;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use call_lab::{AGENT_HZ, FAR_HZ};
use common::{Client, eventually};
use lab::analyse;
use serde_json::{Value, json};

/// Waits until the agent has heard `seconds` more of the call (the heard file is the clock).
fn wait_heard(lab: &call_lab::Lab, seconds: f64) {
    let target = lab.heard_bytes() + (seconds * f64::from(lab.rate) * 2.0) as u64;
    eventually("the call to go on", Duration::from_secs(20), || {
        (lab.heard_bytes() >= target).then_some(())
    });
}

/// The two channels of a recording, decoded by opusdec at 48 kHz.
fn decode(file: &Path) -> (Vec<i16>, Vec<i16>) {
    let wav = file.with_extension("wav");
    let out = Command::new("opusdec")
        .args(["--quiet", "--rate", "48000"])
        .arg(file)
        .arg(&wav)
        .output()
        .expect("opusdec (opus-tools) is installed by ./dev setup");
    assert!(
        out.status.success(),
        "opusdec refused the recording: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&wav).expect("decoded");
    // A canonical 44-byte header from opusdec: 2 channels, 16 bits.
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 2, "stereo");
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk")
        + 8;
    let samples: Vec<i16> = bytes[data..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

async fn recording_event(page: &mut Client, state: &str) -> Value {
    loop {
        let event = page.event("recordingChanged").await;
        if event["payload"]["state"] == state {
            return event["payload"].clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_holds_the_agent_left_the_far_end_right_and_leaves_the_pause_out() {
    let lab = call_lab::lab("PCMU");
    let mut page = lab.page().await;
    let id = lab.answered_call(&mut page).await;

    let (reply, _) = page
        .request("pause_recording", json!({"conversationId": id}))
        .await;
    assert_eq!(
        reply["error"]["code"], "unknown_call",
        "not recorded yet: {reply}"
    );
    let (reply, _) = page
        .request("start_recording", json!({"conversationId": id}))
        .await;
    let recording = reply["result"]["recordingId"]
        .as_str()
        .unwrap_or_else(|| panic!("{reply}"))
        .to_owned();
    let started = recording_event(&mut page, "recording").await;
    assert_eq!(started["recordingId"], recording.as_str());
    let file = started["file"].as_str().expect("file").to_owned();
    assert!(file.ends_with(".opus") && !file.contains('/'), "{file}");
    let (reply, _) = page
        .request("start_recording", json!({"conversationId": id}))
        .await;
    assert_eq!(reply["error"]["code"], "call_in_progress", "{reply}");
    let (state, _) = page.request("get_state", Value::Null).await;
    assert_eq!(
        state["result"]["state"]["calls"][0]["recording"],
        "recording"
    );

    wait_heard(&lab, 2.0);
    page.request("pause_recording", json!({"conversationId": id}))
        .await;
    recording_event(&mut page, "paused").await;
    wait_heard(&lab, 2.0);
    page.request("resume_recording", json!({"conversationId": id}))
        .await;
    recording_event(&mut page, "recording").await;
    wait_heard(&lab, 2.0);
    page.request("stop_recording", json!({"conversationId": id}))
        .await;
    let stopped = recording_event(&mut page, "stopped").await;
    let seconds = stopped["duration"].as_f64().expect("duration");
    // About 4 s recorded of about 6 s: the pause is not in the file.
    assert!((3.0..5.5).contains(&seconds), "{stopped}");
    assert!(stopped.get("reason").is_none(), "{stopped}");

    let path = lab.daemon.data_dir().join("recordings").join(&file);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
    }
    let (left, right) = decode(&path);
    let decoded = left.len() as f64 / 48000.0;
    assert!(
        (seconds - decoded).abs() < 0.2,
        "{decoded} s decoded of {seconds}"
    );
    let agent = analyse(48000, &left, &[AGENT_HZ, FAR_HZ, 1500.0]);
    assert_eq!(agent.peaks[0].0, AGENT_HZ, "left is the agent: {agent:?}");
    assert!(
        agent.peaks[0].1 > 0.8 && agent.level_dbfs > -25.0,
        "{agent:?}"
    );
    let far = analyse(48000, &right, &[FAR_HZ, AGENT_HZ, 1500.0]);
    assert_eq!(far.peaks[0].0, FAR_HZ, "right is the far end: {far:?}");
    assert!(far.peaks[0].1 > 0.8 && far.level_dbfs > -35.0, "{far:?}");

    // Listed, tagged, and named in the call's history.
    let (reply, _) = page
        .request("list_recordings", json!({"conversationId": id}))
        .await;
    let listed = &reply["result"]["recordings"][0];
    assert_eq!(listed["id"], recording.as_str(), "{reply}");
    assert_eq!(listed["state"], "stopped");
    assert_eq!(listed["file"], file.as_str());
    for (params, code) in [
        (
            json!({"id": recording, "tags": vec!["x"; 21]}),
            "invalid_params",
        ),
        (
            json!({"id": recording, "tags": ["bad\ntag"]}),
            "invalid_params",
        ),
        (
            json!({"id": recording, "tags": ["gnp.exe\u{202E}"]}),
            "invalid_params",
        ),
        (json!({"id": "nope", "tags": ["a"]}), "invalid_params"),
    ] {
        let (reply, _) = page.request("tag_recording", params.clone()).await;
        assert_eq!(reply["error"]["code"], code, "{params}: {reply}");
    }
    let (reply, _) = page
        .request(
            "tag_recording",
            json!({"id": recording, "tags": ["complaint", " escalated ", "complaint"]}),
        )
        .await;
    assert_eq!(
        reply["result"]["tags"],
        json!(["complaint", "escalated"]),
        "{reply}"
    );
    let tagged = page.event("recordingTagged").await;
    assert_eq!(tagged["payload"]["tags"], json!(["complaint", "escalated"]));
    assert_eq!(tagged["payload"]["recordingId"], recording.as_str());
    let (reply, _) = page.request("list_recordings", Value::Null).await;
    assert_eq!(
        reply["result"]["recordings"][0]["tags"],
        json!(["complaint", "escalated"])
    );
    let (reply, _) = page.request("get_history", json!({"limit": 1})).await;
    assert_eq!(reply["result"]["calls"][0]["recording"], recording.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_recording_starts_at_the_answer_and_ends_with_the_call() {
    let lab = call_lab::lab_with_account("PCMU", "[recording]\nauto = true\n");
    let mut page = lab.page().await;
    let (id, _) = lab.call_the_agent(&mut page).await;
    page.request("answer", json!({"conversationId": id})).await;
    let accepted = page.event("callAccepted").await;
    assert_eq!(
        accepted["payload"]["recordingStatus"], "ON",
        "true to what happens: {accepted}"
    );
    let started = recording_event(&mut page, "recording").await;
    let file = started["file"].as_str().expect("file").to_owned();
    lab.wait_for_audio();
    wait_heard(&lab, 1.0);
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    let stopped = recording_event(&mut page, "stopped").await;
    assert!(
        stopped["duration"].as_f64().expect("duration") > 2.0,
        "{stopped}"
    );
    let (left, right) = decode(&lab.daemon.data_dir().join("recordings").join(&file));
    assert_eq!(
        analyse(48000, &left, &[AGENT_HZ, FAR_HZ]).peaks[0].0,
        AGENT_HZ
    );
    assert_eq!(
        analyse(48000, &right, &[FAR_HZ, AGENT_HZ]).peaks[0].0,
        FAR_HZ
    );
}
