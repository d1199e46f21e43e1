//! Contact-center call control (issue 10), end to end: the real binary's line to Kamailio, baresip
//! as the far ends, tones checked.

mod call_lab;
mod common;
mod lab;

use std::time::Duration;

use common::{CRM, eventually};
use lab::{Baresip, analyse};
use serde_json::json;

use call_lab::FAR_HZ;

/// The transfer target's tone.
const TARGET_HZ: f64 = 660.0;

/// Blind transfer: the agent, in a call with 1002 (baresip), transfers it to 1003 (another
/// baresip that answers by itself). 1002 gets our REFER, calls 1003, and reports the answer;
/// the page sees `callTransferred` accepted and `callEnded` with cause `transferred`, and 1003
/// hears 1002's tone: the two are talking without us.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_transfer_hands_the_caller_to_the_target() {
    let lab = call_lab::lab("PCMU");
    let target = Baresip::start(&lab.kamailio, "1003", TARGET_HZ, "PCMU");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let id = lab.answered_call(&mut page).await;

    // Bad input first: it changes nothing.
    let (reply, _) = page
        .request(
            "transfer",
            json!({"to": "sip:1003@127.0.0.1\r\nX: y", "conversationId": id}),
        )
        .await;
    assert_eq!(reply["error"]["code"], "invalid_number", "{reply}");
    let (reply, _) = page
        .request(
            "transfer",
            json!({"to": "1003", "conversationId": "no-such-call"}),
        )
        .await;
    assert_eq!(reply["error"]["code"], "unknown_call", "{reply}");

    let (reply, _) = page
        .request("transfer", json!({"to": "1003", "conversationId": id}))
        .await;
    assert_eq!(reply["result"]["to"], "1003", "{reply}");
    let transferred = page
        .event_after_silence("callTransferred", Duration::from_secs(40))
        .await;
    assert_eq!(
        transferred["payload"],
        json!({"conversationId": id, "to": "1003", "kind": "blind", "result": "accepted"}),
        "{transferred}"
    );
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["cause"], "transferred", "{ended}");

    // 1002 and 1003 talk: once 1003 has recorded two seconds, end their call and read it.
    wait_recorded(&target, 2.0);
    target.command("hangup", "");
    let (rate, heard) = eventually("1003's recording", Duration::from_secs(10), || {
        target
            .recording()
            .filter(|(_, samples)| samples.len() > 8000)
    });
    let report = analyse(rate, &heard, &[FAR_HZ, TARGET_HZ, 1000.0]);
    assert_eq!(report.peaks[0].0, FAR_HZ, "1003 hears 1002: {report:?}");
    assert!(report.peaks[0].1 > 0.8, "{report:?}");
}

/// A transfer to someone who cannot take the call (1099 is not registered: Kamailio answers
/// the transferee's INVITE 404) fails and leaves the call as it was: tones both ways after it,
/// and the agent's own hang-up ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_blind_transfer_leaves_the_call_up() {
    let lab = call_lab::lab("PCMU");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let id = lab.answered_call(&mut page).await;
    page.request("transfer", json!({"to": "1099", "conversationId": id}))
        .await;
    let transferred = page
        .event_after_silence("callTransferred", Duration::from_secs(40))
        .await;
    assert_eq!(transferred["payload"]["result"], "failed", "{transferred}");
    let reason = transferred["payload"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("404"), "{transferred}");
    page.assert_call_listed(&id, "the failed transfer").await;
    lab.hang_up_after(&mut page, &id, lab.heard_bytes(), "the failed transfer")
        .await;
}

/// Several calls, one conversation at a time: the agent talks with 1002 when 1003 calls;
/// answering 1003 puts 1002 on hold (its phone agrees: `callHoldChanged` by `agent`), taking
/// 1002 off hold puts 1003 on hold (a switch), and the snapshot lists both calls throughout.
/// 1003 hears the agent's tone while it is the one the agent talks with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_a_second_call_holds_the_first_and_unhold_switches() {
    let lab = call_lab::lab("PCMU");
    let second = Baresip::start_with(&lab.kamailio, "1003", TARGET_HZ, "PCMU", "auto");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let first = lab.answered_call(&mut page).await;

    second.command(
        "dial",
        &format!("sip:1001@{}:{}", lab.kamailio.address, lab.kamailio.port),
    );
    let (other, _) = page.incoming_call().await;
    page.request("answer", json!({"conversationId": other}))
        .await;
    let held = page.event("callHoldChanged").await;
    assert_eq!(
        held["payload"],
        json!({"conversationId": first, "held": true, "by": "agent"}),
        "{held}"
    );
    page.event("callAccepted").await;
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    let calls = state["result"]["state"]["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(calls.len(), 2, "{state}");
    let held_call = calls
        .iter()
        .find(|c| c["conversationId"] == first.as_str())
        .expect("the first call");
    assert_eq!(held_call["state"], "held", "{state}");
    wait_recorded(&second, 2.0);

    // Switch back to 1002: 1003 goes on hold first.
    page.request("unhold", json!({"conversationId": first}))
        .await;
    let mut changes = Vec::new();
    for _ in 0..2 {
        let change = page.event("callHoldChanged").await;
        changes.push((
            change["payload"]["conversationId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            change["payload"]["held"].as_bool(),
        ));
    }
    changes.sort();
    let mut expected = vec![(first.clone(), Some(false)), (other.clone(), Some(true))];
    expected.sort();
    assert_eq!(changes, expected);

    // 1003 ends its call: its recording holds the agent's tone from the time it was answered.
    second.command("hangup", "");
    page.event("callEnded").await;
    let (rate, heard) = eventually("1003's recording", Duration::from_secs(10), || {
        second
            .recording()
            .filter(|(_, samples)| samples.len() > 8000)
    });
    let report = analyse(rate, &heard, &[call_lab::AGENT_HZ, TARGET_HZ, FAR_HZ]);
    assert_eq!(
        report.peaks[0].0,
        call_lab::AGENT_HZ,
        "1003 heard the agent: {report:?}"
    );
    page.request("hangup", json!({"conversationId": first}))
        .await;
    page.event("callEnded").await;
}

/// Waits until `phone` has recorded `seconds` of 8 kHz audio (the files grow while it talks).
fn wait_recorded(phone: &Baresip, seconds: f64) {
    let bytes = (seconds * 8000.0 * 2.0) as u64;
    eventually("the far end's recording", Duration::from_secs(20), || {
        (phone.recorded_bytes() >= bytes).then_some(())
    });
}
