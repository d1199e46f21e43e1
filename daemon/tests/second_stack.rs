//! Call control against a second, independent SIP stack (issue 10): PJSIP phones
//! (`lab::pjsip`) beside baresip, through the lab's Kamailio. PJSIP implements `Replaces`
//! (RFC 3891) both ways, so these prove what baresip 1.0 cannot: an attended transfer whose
//! target swaps our leg for the transferee, and an INVITE with `Replaces` that takes the
//! agent's call.

mod call_lab;
mod common;
mod lab;

use std::time::Duration;

use common::eventually;
use lab::analyse;
use lab::pjsip::Pjsip;
use serde_json::json;

const PJSIP_A_HZ: f64 = 500.0;
const PJSIP_B_HZ: f64 = 700.0;
const WAIT: Duration = Duration::from_secs(20);

fn uri(lab: &call_lab::Lab, user: &str) -> String {
    format!("sip:{user}@127.0.0.1:{}", lab.kamailio.port)
}

/// The strongest of `probes` in what `phone` heard on call `number`, with its share.
fn heard(phone: &Pjsip, number: usize, probes: &[f64]) -> (f64, f64) {
    let (rate, samples) = eventually("the PJSIP recording", WAIT, || {
        phone.recording(number).filter(|(_, s)| s.len() > 8000)
    });
    let report = analyse(rate, &samples, probes);
    report.peaks[0]
}

/// Our attended transfer to a phone that honours `Replaces`: the agent talks with 1004, consults
/// 1005, and connects them. 1004 INVITEs 1005 with our `Replaces`; 1005 swaps our consultation
/// leg for 1004 (it says `replaced`) and hangs that leg up; 1004 reports success. Both calls end
/// on the page, and 1005 hears 1004.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attended_transfer_is_taken_by_its_replaces() {
    let lab = call_lab::lab("PCMU");
    let transferee = Pjsip::start(&lab.kamailio, "1004", PJSIP_A_HZ);
    let target = Pjsip::start(&lab.kamailio, "1005", PJSIP_B_HZ);
    let mut page = lab.page().await;
    let first = page.start_call("1004").await;
    page.event("callAccepted").await;
    let consult = page.start_call("1005").await;
    page.event("callAccepted").await;
    target.expect("confirmed 0", WAIT);

    let (reply, _) = page
        .request(
            "connect_calls",
            json!({"conversationId": first, "withConversationId": consult}),
        )
        .await;
    assert_eq!(reply["result"]["to"], "1005", "{reply}");
    // 1005 hangs up our leg as soon as it takes 1004's call, so that `callEnded` may come
    // before `callTransferred`: every event counts, in the order it comes.
    let (mut transferred, mut causes) = (None, Vec::new());
    while transferred.is_none() || causes.len() < 2 {
        let message = page.next_event().await;
        let payload = message["payload"].clone();
        match message["event"].as_str() {
            Some("callTransferred") => transferred = Some(payload),
            Some("callEnded") => causes.push((
                payload["conversationId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                payload["cause"].as_str().unwrap_or_default().to_owned(),
            )),
            _ => {}
        }
    }
    target.expect("replaced 0 1", WAIT);
    transferee.expect("confirmed 1", WAIT);
    let transferred = transferred.unwrap_or_default();
    assert_eq!(transferred["kind"], "attended", "{transferred}");
    assert_eq!(transferred["result"], "accepted", "{transferred}");
    assert!(
        causes.contains(&(first.clone(), "transferred".into())),
        "{causes:?}"
    );
    assert!(
        causes.iter().any(|(id, _)| *id == consult),
        "the consultation ended too: {causes:?}"
    );

    // 1004 and 1005 talk without us: 1005's new call hears 1004's tone.
    eventually("1005 to record 1004", WAIT, || {
        (target.recorded_bytes(1) > 3 * 32_000).then_some(())
    });
    target.command("hangup");
    target.expect("disconnected 1", WAIT);
    let (hz, share) = heard(&target, 1, &[PJSIP_A_HZ, call_lab::AGENT_HZ, PJSIP_B_HZ]);
    assert_eq!(hz, PJSIP_A_HZ, "1005 hears 1004 ({share})");
}

/// Someone else's attended transfer hands the agent over: 1004 talks with 1005 and with the
/// agent, and joins them (REFER to 1005 with a `Replaces` of its call with the agent). 1005's
/// INVITE with `Replaces` takes the agent's call without ringing: the page keeps its
/// conversation, sees `callTransferred` (`remote`, to 1005), and hears 1005.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_with_replaces_moves_the_agents_call() {
    let lab = call_lab::lab("PCMU");
    let transferor = Pjsip::start(&lab.kamailio, "1004", PJSIP_A_HZ);
    let newcomer = Pjsip::start(&lab.kamailio, "1005", PJSIP_B_HZ);
    let mut page = lab.page().await;
    transferor.command(&format!("dial {}", uri(&lab, "1005")));
    transferor.expect("confirmed 0", WAIT);
    transferor.command(&format!("dial {}", uri(&lab, "1001")));
    let (id, _) = page.incoming_call().await;
    page.request("answer", json!({"conversationId": id})).await;
    page.event("callAccepted").await;
    transferor.expect("confirmed 1", WAIT);

    transferor.command("replace");
    let transferred = page
        .event_after_silence("callTransferred", Duration::from_secs(30))
        .await;
    assert_eq!(
        transferred["payload"],
        json!({"conversationId": id, "to": "1005", "kind": "remote", "result": "accepted"}),
        "{transferred}"
    );
    assert!(
        page.event_within("incomingCall", Duration::from_secs(1))
            .await
            .is_none(),
        "no ringing for a replacing call"
    );
    transferor.expect("disconnected 1", WAIT);
    page.assert_call_listed(&id, "the replacement").await;

    // The agent and 1005 talk.
    let mark = lab.heard_bytes();
    eventually("the agent hears 1005", WAIT, || {
        (lab.heard_bytes() > mark + 3 * 16_000).then_some(())
    });
    page.request("hangup", json!({"conversationId": id})).await;
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["cause"], "local", "{ended}");
    let (rate, samples) = lab::read_wav(&lab.heard_path()).expect("the agent's recording");
    let tail = &samples[samples.len().saturating_sub(2 * rate as usize)..];
    let report = analyse(rate, tail, &[PJSIP_B_HZ, PJSIP_A_HZ, call_lab::FAR_HZ]);
    assert_eq!(
        report.peaks[0].0, PJSIP_B_HZ,
        "the agent hears 1005: {report:?}"
    );
    newcomer.expect("disconnected", WAIT);
    let (hz, _) = heard(&newcomer, 1, &[call_lab::AGENT_HZ, PJSIP_A_HZ, PJSIP_B_HZ]);
    assert_eq!(hz, call_lab::AGENT_HZ, "1005 hears the agent");
}

/// The far end's attended transfer with the agent as the transferee: 1004 REFERs the agent to
/// 1005 with a `Replaces` of its own call with 1005. The daemon's INVITE carries that
/// `Replaces`, 1005 swaps 1004 for the agent, and the page's call goes on with 1005.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refer_with_replaces_hands_the_agent_over() {
    let lab = call_lab::lab("PCMU");
    let transferor = Pjsip::start(&lab.kamailio, "1004", PJSIP_A_HZ);
    let target = Pjsip::start(&lab.kamailio, "1005", PJSIP_B_HZ);
    let mut page = lab.page().await;
    transferor.command(&format!("dial {}", uri(&lab, "1001")));
    let (id, _) = page.incoming_call().await;
    page.request("answer", json!({"conversationId": id})).await;
    page.event("callAccepted").await;
    transferor.expect("confirmed 0", WAIT);
    transferor.command(&format!("dial {}", uri(&lab, "1005")));
    transferor.expect("confirmed 1", WAIT);

    transferor.command("replace");
    target.expect("replaced 0 1", WAIT);
    let transferred = page
        .event_after_silence("callTransferred", Duration::from_secs(30))
        .await;
    assert_eq!(transferred["payload"]["kind"], "remote", "{transferred}");
    assert_eq!(
        transferred["payload"]["result"], "accepted",
        "{transferred}"
    );
    assert_eq!(transferred["payload"]["to"], "1005", "{transferred}");
    transferor.expect("transfer-status 0 200", WAIT);
    page.assert_call_listed(&id, "the transfer").await;

    eventually("1005 to record the agent", WAIT, || {
        (target.recorded_bytes(1) > 3 * 32_000).then_some(())
    });
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    target.expect("disconnected 1", WAIT);
    let (hz, _) = heard(&target, 1, &[call_lab::AGENT_HZ, PJSIP_A_HZ, PJSIP_B_HZ]);
    assert_eq!(hz, call_lab::AGENT_HZ, "1005 hears the agent");
}

/// The conference's held party, on a stack that resumes properly: the agent talks with 1004
/// (PJSIP), calls 1002 (baresip; 1004 is held meanwhile), and conferences both. After its
/// resume 1004 hears the agent and 1002, each at about the level of a two-party call, and not
/// itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_held_party_of_a_conference_hears_both_others() {
    let lab = call_lab::lab("PCMU");
    let phone = Pjsip::start(&lab.kamailio, "1004", PJSIP_A_HZ);
    let mut page = lab.page().await;
    let first = page.start_call("1004").await;
    page.event("callAccepted").await;
    eventually("1004 hears the agent", WAIT, || {
        (phone.recorded_bytes(0) > 2 * 32_000).then_some(())
    });
    let two_party_end = phone.recorded_bytes(0);
    let second = page.start_call("1002").await;
    page.event("callAccepted").await;
    page.request("conference", json!({"conversationIds": [first, second]}))
        .await;
    page.event("conferenceChanged").await;
    // The first second of the mix (legs joining) is left out.
    let joined = phone.recorded_bytes(0);
    eventually("the mix to run a second", WAIT, || {
        (phone.recorded_bytes(0) > joined + 32_000).then_some(())
    });
    let from = phone.recorded_bytes(0);
    eventually("four seconds of conference", WAIT, || {
        (phone.recorded_bytes(0) > from + 4 * 32_000).then_some(())
    });
    let to = phone.recorded_bytes(0);
    for id in [&second, &first] {
        page.request("hangup", json!({"conversationId": id})).await;
        page.event("callEnded").await;
    }
    phone.expect("disconnected 0", WAIT);
    let (rate, samples) = eventually("1004's recording", WAIT, || phone.recording(0));
    let at = |bytes: u64| ((bytes.saturating_sub(44) / 2) as usize).min(samples.len());
    let reference = analyse(rate, &samples[..at(two_party_end)], &[call_lab::AGENT_HZ]).level_dbfs;
    let report = analyse(
        rate,
        &samples[at(from)..at(to)],
        &[call_lab::AGENT_HZ, call_lab::FAR_HZ, PJSIP_A_HZ],
    );
    let share = |hz: f64| {
        report
            .peaks
            .iter()
            .find(|(f, _)| *f == hz)
            .map_or(0.0, |p| p.1)
    };
    for hz in [call_lab::AGENT_HZ, call_lab::FAR_HZ] {
        let level = report.level_dbfs + 10.0 * share(hz).log10();
        assert!(
            (level - reference).abs() <= 6.0,
            "{hz} Hz at {level:.1} dBFS, a two-party call at {reference:.1}: {report:?}"
        );
    }
    assert!(share(PJSIP_A_HZ) < 0.02, "no echo of itself: {report:?}");
}
