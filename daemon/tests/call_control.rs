//! Contact-center call control (issue 10), end to end: the real binary's line to Kamailio, baresip
//! as the far ends, tones checked.

mod call_lab;
mod common;
mod lab;

use std::time::Duration;

use common::eventually;
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
    let mut page = lab.page().await;
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
    let mut page = lab.page().await;
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
    let mut page = lab.page().await;
    let first = lab.answered_call(&mut page).await;

    second.command(
        "dial",
        &format!("sip:1001@{}:{}", lab.kamailio.address, lab.kamailio.port),
    );
    let (other, _) = page.incoming_call().await;
    page.request("answer", json!({"conversationId": other}))
        .await;
    let held = held_and_accepted(&mut page).await;
    assert_eq!(
        held["payload"],
        json!({"conversationId": first, "held": true, "by": "agent"}),
        "{held}"
    );
    let (state, calls) = two_calls(&mut page).await;
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

/// `get_state`, and its calls: two of them.
async fn two_calls(page: &mut common::Client) -> (serde_json::Value, Vec<serde_json::Value>) {
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    let calls = state["result"]["state"]["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(calls.len(), 2, "{state}");
    (state, calls)
}

/// An event's name and a check of its payload.
type Wanted<'a> = (&'a str, &'a dyn Fn(&serde_json::Value) -> bool);

/// The first event each of `wanted` names whose payload passes its check, in whichever order
/// they come (in `wanted`'s order) — when each is a round trip to a different peer, waiting for
/// one would drop another that came first. A slow ACK on a loaded machine (the whole suite at
/// once) has taken more than 5 s, so 20 s in all.
async fn events_in_any_order(
    page: &mut common::Client,
    wanted: &[Wanted<'_>],
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut found: Vec<Option<serde_json::Value>> = vec![None; wanted.len()];
    while found.iter().any(Option::is_none) {
        let within = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(message) = page.next_event_within(within).await else {
            let names: Vec<&str> = wanted.iter().map(|(name, _)| *name).collect();
            panic!("within 20 s, of {names:?}: {found:?}");
        };
        let slot = wanted.iter().zip(&mut found).find(|((name, check), slot)| {
            slot.is_none() && message["event"] == *name && check(&message["payload"])
        });
        if let Some((_, slot)) = slot {
            *slot = Some(message);
        }
    }
    found.into_iter().flatten().collect()
}

/// The `callHoldChanged` (the first call held) and the `callAccepted` (the second answered or
/// accepted) that a second call brings: the `callHoldChanged`.
async fn held_and_accepted(page: &mut common::Client) -> serde_json::Value {
    let any = |_: &serde_json::Value| true;
    let mut both =
        events_in_any_order(page, &[("callHoldChanged", &any), ("callAccepted", &any)]).await;
    both.swap_remove(0)
}

/// Waits until `phone` has recorded `seconds` of 8 kHz audio (the files grow while it talks).
fn wait_recorded(phone: &Baresip, seconds: f64) {
    let bytes = (seconds * 8000.0 * 2.0) as u64;
    eventually("the far end's recording", Duration::from_secs(20), || {
        (phone.recorded_bytes() >= bytes).then_some(())
    });
}

/// Shotgun dial to five numbers: 1003 rings and is answered by hand after a moment, 1004 and
/// 1006 ring and are never answered, 1005 is busy, 1099 is not registered (Kamailio: 404). The
/// page sees one `outboundCallInitiated` with every number, then `callAccepted` naming 1003;
/// the two still ringing are cancelled (their phones log the CANCEL), and the
/// winner's tone is heard both ways. Bad requests first: they dial nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shotgun_dial_takes_the_first_to_answer_and_cancels_the_rest() {
    let lab = call_lab::lab("PCMU");
    let ringing =
        |user: &str, hz: f64| Baresip::start_with(&lab.kamailio, user, hz, "PCMU", "manual");
    let (winner, slow, busy, other) = (
        ringing("1003", TARGET_HZ),
        ringing("1004", 500.0),
        ringing("1005", 520.0),
        ringing("1006", 540.0),
    );
    let mut page = lab.page().await;

    for (params, code) in [
        (json!({"dialTo": []}), "invalid_params"),
        (
            json!({"dialTo": ["1", "2", "3", "4", "5", "6"]}),
            "invalid_params",
        ),
        (json!({"dialTo": ["1003", "1003"]}), "invalid_params"),
        (json!({"dialTo": ["1003", "12\r\nX: y"]}), "invalid_number"),
        (json!({"dialTo": "1003"}), "invalid_params"),
    ] {
        let (reply, _) = page.request("shotgun_call", params.clone()).await;
        assert_eq!(reply["error"]["code"], code, "{params}: {reply}");
    }
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    assert_eq!(
        state["result"]["state"]["calls"],
        json!([]),
        "nothing dialled"
    );

    let numbers = ["1003", "1004", "1005", "1006", "1099"];
    let (reply, _) = page
        .request("shotgun_call", json!({"dialTo": numbers}))
        .await;
    let id = reply["result"]["conversationId"]
        .as_str()
        .unwrap_or_else(|| panic!("{reply}"))
        .to_owned();
    let initiated = page.event("outboundCallInitiated").await;
    assert_eq!(initiated["payload"]["dialledToAll"], json!(numbers));
    assert_eq!(
        initiated["payload"]["dialledTo"],
        "1003, 1004, 1005, 1006, 1099"
    );
    page.event("callRinging").await;
    for phone in [&winner, &slow, &busy, &other] {
        eventually("every phone rings", Duration::from_secs(10), || {
            phone.log().contains("Incoming call").then_some(())
        });
    }
    busy.command("hangup", "");
    winner.command("accept", "");
    let accepted = page.event("callAccepted").await;
    assert_eq!(accepted["payload"]["conversationId"], id.as_str());
    assert_eq!(accepted["payload"]["dialledTo"], "1003", "{accepted}");
    assert_eq!(accepted["payload"]["callerANI"], "1003", "{accepted}");
    // libre reports a CANCEL of a call ringing in as the session reset by its peer (a BYE
    // could not reach a call that was never answered).
    for phone in [&slow, &other] {
        eventually(
            "the losing legs to be cancelled",
            Duration::from_secs(10),
            || {
                phone
                    .log()
                    .contains("session closed: Connection reset by peer")
                    .then_some(())
            },
        );
    }
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    let calls = &state["result"]["state"]["calls"];
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "{state}");
    assert_eq!(calls[0]["remote"], "1003", "{state}");

    // The winner's tone, heard by the agent, and the agent's by the winner.
    wait_recorded(&winner, 2.0);
    eventually("the agent hears 1003", Duration::from_secs(20), || {
        (lab.heard_bytes() > 3 * 16000).then_some(())
    });
    page.request("hangup", json!({"conversationId": id})).await;
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["cause"], "local", "{ended}");
    let (rate, heard) = lab::read_wav(&lab.heard_path()).expect("the agent's recording");
    let report = analyse(rate, &heard, &[TARGET_HZ, 500.0, 520.0, 540.0, FAR_HZ]);
    assert_eq!(
        report.peaks[0].0, TARGET_HZ,
        "the agent hears 1003: {report:?}"
    );
    assert!(report.peaks[0].1 > 0.8, "{report:?}");
    let (rate, far) = eventually("1003's recording", Duration::from_secs(10), || {
        winner.recording().filter(|(_, s)| s.len() > 8000)
    });
    let report = analyse(rate, &far, &[call_lab::AGENT_HZ, TARGET_HZ]);
    assert_eq!(report.peaks[0].0, call_lab::AGENT_HZ, "{report:?}");
}

/// Attended transfer: the agent talks with 1002, consults 1003 on a second call (1002 is held
/// meanwhile), then connects them. 1002 gets our REFER naming 1003 with a `Replaces` of our
/// call with 1003, calls 1003, and reports the answer: `callTransferred` (`attended`,
/// `withConversationId`), both our calls end, and 1003 hears 1002's tone. Bad requests first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_calls_joins_the_caller_with_the_consulted_party() {
    let lab = call_lab::lab("PCMU");
    let target = Baresip::start(&lab.kamailio, "1003", TARGET_HZ, "PCMU");
    let mut page = lab.page().await;
    let first = lab.answered_call(&mut page).await;
    let consult = page.start_call("1003").await;
    let held = held_and_accepted(&mut page).await;
    assert_eq!(held["payload"]["conversationId"], first.as_str(), "{held}");
    wait_recorded(&target, 1.0);

    for (params, code) in [
        (
            json!({"conversationId": first, "withConversationId": first}),
            "invalid_params",
        ),
        (
            json!({"conversationId": first, "withConversationId": "nope"}),
            "unknown_call",
        ),
        (json!({"conversationId": first}), "invalid_params"),
    ] {
        let (reply, _) = page.request("connect_calls", params.clone()).await;
        assert_eq!(reply["error"]["code"], code, "{params}: {reply}");
    }

    let (reply, _) = page
        .request(
            "connect_calls",
            json!({"conversationId": first, "withConversationId": consult}),
        )
        .await;
    assert_eq!(reply["result"]["to"], "1003", "{reply}");
    let transferred = page
        .event_after_silence("callTransferred", Duration::from_secs(40))
        .await;
    assert_eq!(
        transferred["payload"],
        json!({"conversationId": first, "to": "1003", "kind": "attended",
               "result": "accepted", "withConversationId": consult}),
        "{transferred}"
    );
    let mut ended = Vec::new();
    for _ in 0..2 {
        let end = page.event("callEnded").await;
        ended.push((
            end["payload"]["conversationId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            end["payload"]["cause"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ));
    }
    ended.sort();
    let mut expected = vec![
        (first.clone(), "transferred".to_owned()),
        (consult.clone(), "transferred".to_owned()),
    ];
    expected.sort();
    // The consultation ends `transferred` (we hung it up) or `remote` (1003 did, as a phone
    // that understood the `Replaces` would).
    for ((id, cause), (want_id, _)) in ended.iter().zip(&expected) {
        assert_eq!(id, want_id, "{ended:?}");
        assert!(
            cause == "transferred" || (id == &consult && cause == "remote"),
            "{ended:?}"
        );
    }
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    assert_eq!(state["result"]["state"]["calls"], json!([]), "{state}");

    // 1002 and 1003 talk: 1003's newest recording holds 1002's tone.
    let before = target.recorded_bytes();
    eventually("1003 to record 1002", Duration::from_secs(20), || {
        (target.recorded_bytes() >= before + 2 * 16000).then_some(())
    });
    target.command("hangup", "");
    let (rate, heard) = eventually("1003's recording of 1002", Duration::from_secs(10), || {
        target
            .newest_recording()
            .filter(|(_, samples)| samples.len() > 8000)
    });
    let report = analyse(rate, &heard, &[FAR_HZ, call_lab::AGENT_HZ, TARGET_HZ]);
    assert_eq!(report.peaks[0].0, FAR_HZ, "1003 hears 1002: {report:?}");
}

/// Being transferred: 1002, in a call with the agent, transfers the agent to 1003 (its REFER).
/// The daemon calls 1003 by itself; the page keeps its `conversationId`, sees
/// `callTransferred` (`remote`, to 1003, accepted) and no `callEnded`, and the agent now hears
/// 1003 while 1003 hears the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_by_the_far_end_moves_the_call_to_the_new_party() {
    let lab = call_lab::lab("PCMU");
    let target = Baresip::start(&lab.kamailio, "1003", TARGET_HZ, "PCMU");
    let mut page = lab.page().await;
    let id = lab.answered_call(&mut page).await;

    lab.baresip.command(
        "transfer",
        &format!("sip:1003@{}:{}", lab.kamailio.address, lab.kamailio.port),
    );
    let transferred = page
        .event_after_silence("callTransferred", Duration::from_secs(30))
        .await;
    assert_eq!(
        transferred["payload"],
        json!({"conversationId": id, "to": "1003", "kind": "remote", "result": "accepted"}),
        "{transferred}"
    );
    assert!(
        page.event_within("callEnded", Duration::from_secs(2))
            .await
            .is_none(),
        "the call goes on"
    );
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    let calls = &state["result"]["state"]["calls"];
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "{state}");
    assert_eq!(calls[0]["conversationId"], id.as_str(), "{state}");
    assert_eq!(calls[0]["remote"], "1003", "{state}");

    // The agent's recording restarted with the new party's media: it holds 1003's tone.
    wait_recorded(&target, 2.0);
    eventually("the agent hears 1003", Duration::from_secs(20), || {
        lab::read_wav(&lab.heard_path())
            .filter(|(rate, samples)| samples.len() > 2 * *rate as usize)
            .map(|_| ())
    });
    page.request("hangup", json!({"conversationId": id})).await;
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["cause"], "local", "{ended}");
    let (rate, heard) = lab::read_wav(&lab.heard_path()).expect("the agent's recording");
    let tail = &heard[heard.len().saturating_sub(2 * rate as usize)..];
    let report = analyse(rate, tail, &[TARGET_HZ, FAR_HZ, call_lab::AGENT_HZ]);
    assert_eq!(
        report.peaks[0].0, TARGET_HZ,
        "the agent hears 1003: {report:?}"
    );
    let (rate, far) = eventually("1003's recording", Duration::from_secs(10), || {
        target.recording().filter(|(_, s)| s.len() > 8000)
    });
    let report = analyse(rate, &far, &[call_lab::AGENT_HZ, FAR_HZ, TARGET_HZ]);
    assert_eq!(
        report.peaks[0].0,
        call_lab::AGENT_HZ,
        "1003 hears the agent: {report:?}"
    );
}

/// A local conference of the agent (1000 Hz), 1002 (PCMU, 441 Hz) and 1003 (Opus, 660 Hz):
/// each far end hears the other two at about the level of a two-party call, and not its own
/// echo; the agent hears both. `split` takes 1003 out (held) and, one call being left, ends the
/// conference. Bad requests first: they change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conference_mixes_every_party_and_split_takes_one_out() {
    let lab = call_lab::lab_with("PCMU", "", "codecs = [\"pcmu\", \"opus\"]");
    let target = Baresip::start(&lab.kamailio, "1003", TARGET_HZ, "opus/48000/2");
    let mut page = lab.page().await;
    let first = lab.answered_call(&mut page).await;
    // 1002's level when it hears only the agent: the two-party reference.
    let two_party = {
        let (rate, samples) = eventually("1002's recording", Duration::from_secs(10), || {
            lab.baresip.recording().filter(|(_, s)| s.len() > 16000)
        });
        analyse(rate, &samples, &[call_lab::AGENT_HZ]).level_dbfs
    };
    let second = page.start_call("1003").await;
    page.event("callAccepted").await;

    for (ids, code) in [
        (json!([first, first]), "invalid_params"),
        (json!([first]), "invalid_params"),
        (json!([first, "no-such-call"]), "unknown_call"),
    ] {
        let (reply, _) = page
            .request("conference", json!({"conversationIds": ids}))
            .await;
        assert_eq!(reply["error"]["code"], code, "{ids}: {reply}");
    }
    let (reply, _) = page
        .request("split", json!({"conversationId": first}))
        .await;
    assert_eq!(
        reply["error"]["code"], "invalid_params",
        "no conference yet: {reply}"
    );

    let (reply, _) = page
        .request("conference", json!({"conversationIds": [first, second]}))
        .await;
    let conference = reply["result"]["conferenceId"]
        .as_str()
        .unwrap_or_else(|| panic!("{reply}"))
        .to_owned();
    // The mix, and 1002 taking the re-INVITE that takes it off hold: either may come first
    // (a loaded machine answers the re-INVITE after the mix is made).
    let any = |_: &serde_json::Value| true;
    let resumed = |payload: &serde_json::Value| {
        *payload == json!({"conversationId": first, "held": false, "by": "agent"})
    };
    let events = events_in_any_order(
        &mut page,
        &[("conferenceChanged", &any), ("callHoldChanged", &resumed)],
    )
    .await;
    let changed = &events[0];
    assert_eq!(
        changed["payload"],
        json!({"conferenceId": conference, "conversationIds": [first, second]}),
        "{changed}"
    );
    let (state, calls) = two_calls(&mut page).await;
    for call in calls {
        assert_eq!(call["conferenceId"], conference.as_str(), "{state}");
        assert_eq!(call["state"], "active", "1002 came off hold: {state}");
    }

    // Four seconds of conference, as 1003 recorded it. 1002's recording cannot tell: it was
    // held for the consultation, and baresip 1.0 never records again after a hold (its
    // `audio_decoder_set` flushes the receive filters on a non-sendrecv offer, and
    // `aufilt_setup` does not rebuild them while the send filters exist) — PJSIP's test
    // covers the held party (`second_stack.rs`).
    let marks = |phone: &Baresip| phone.recorded_bytes();
    // The first second of the mix (legs joining) is left out.
    wait_recorded_more(&target, marks(&target), 192_000.0);
    let from_1003 = marks(&target);
    wait_recorded_more(&target, from_1003, 4.0 * 192_000.0);
    let to_1003 = marks(&target);
    let agent_heard = lab::read_wav(&lab.heard_path()).expect("the agent's recording");

    let (reply, _) = page
        .request("split", json!({"conversationId": second}))
        .await;
    assert_eq!(
        reply["result"]["conversationId"],
        second.as_str(),
        "{reply}"
    );
    let ended = page.event("conferenceChanged").await;
    assert_eq!(
        ended["payload"],
        json!({"conferenceId": conference, "conversationIds": []}),
        "one call left: no conference: {ended}"
    );
    let held = page.event("callHoldChanged").await;
    assert_eq!(
        held["payload"],
        json!({"conversationId": second, "held": true, "by": "agent"}),
        "{held}"
    );
    for id in [&second, &first] {
        page.request("hangup", json!({"conversationId": id})).await;
        page.event("callEnded").await;
    }

    // Each far end heard the other two, at about a two-party call's level, and not itself.
    let slice = |phone: &Baresip, from: u64, to: u64, channels: u64| {
        let (rate, samples) = eventually("a closed recording", Duration::from_secs(10), || {
            phone.newest_recording().filter(|(_, s)| !s.is_empty())
        });
        let sample =
            |bytes: u64| ((bytes.saturating_sub(44) / (2 * channels)) as usize).min(samples.len());
        (rate, samples[sample(from)..sample(to)].to_vec())
    };
    let check = |who: &str, rate: u32, samples: &[i16], hear: [f64; 2], own: f64| {
        let report = analyse(rate, samples, &[hear[0], hear[1], own]);
        let power = |hz: f64| {
            report
                .peaks
                .iter()
                .find(|(f, _)| *f == hz)
                .map_or(0.0, |(_, p)| *p)
        };
        for hz in hear {
            let level = report.level_dbfs + 10.0 * power(hz).log10();
            assert!(
                (level - two_party).abs() <= 6.0,
                "{who} hears {hz} Hz at {level:.1} dBFS, a two-party call at {two_party:.1}: {report:?}"
            );
        }
        assert!(power(own) < 0.02, "{who} does not hear itself: {report:?}");
    };
    let (rate, heard) = slice(&target, from_1003, to_1003, 2);
    check(
        "1003",
        rate,
        &heard,
        [call_lab::AGENT_HZ, FAR_HZ],
        TARGET_HZ,
    );
    let (rate, samples) = agent_heard;
    check(
        "the agent",
        rate,
        &samples,
        [FAR_HZ, TARGET_HZ],
        call_lab::AGENT_HZ,
    );
}

/// Waits until `phone` has recorded `bytes` more than `from`.
fn wait_recorded_more(phone: &Baresip, from: u64, bytes: f64) {
    eventually(
        &format!("the far end's recording to grow from {from} bytes by {bytes}"),
        Duration::from_secs(20),
        || (phone.recorded_bytes() >= from + bytes as u64).then_some(()),
    );
}

/// A call the agent holds is not handed over by its far end: 1002, on hold, transfers the
/// agent to 1003. The daemon refuses (its NOTIFY says 403), 1003 never rings, and the page
/// hears of no transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_is_not_transferred_by_its_far_end() {
    let lab = call_lab::lab("PCMU");
    let target = Baresip::start_with(&lab.kamailio, "1003", TARGET_HZ, "PCMU", "manual");
    let mut page = lab.page().await;
    let id = lab.answered_call(&mut page).await;
    page.request("hold", json!({"conversationId": id})).await;
    page.event("callHoldChanged").await;

    lab.baresip.command(
        "transfer",
        &format!("sip:1003@{}:{}", lab.kamailio.address, lab.kamailio.port),
    );
    eventually("1002 to hear the refusal", Duration::from_secs(10), || {
        lab.baresip.log().contains("403").then_some(())
    });
    // baresip 1.0 drops a call whose transfer failed (`ua.c`: CALL_EVENT_TRANSFER_FAILED frees
    // it): if the call ended, it was 1002's doing, not a transfer; otherwise it is still held.
    match page.event_within("callEnded", Duration::from_secs(3)).await {
        Some(ended) => assert_eq!(ended["payload"]["cause"], "remote", "{ended}"),
        None => {
            let (state, _) = page.request("get_state", serde_json::Value::Null).await;
            assert_eq!(
                state["result"]["state"]["calls"][0]["state"], "held",
                "{state}"
            );
            page.request("hangup", json!({"conversationId": id})).await;
            page.event("callEnded").await;
        }
    }
    // The refusal was decided when the REFER came, before 1002 heard it: no INVITE went out.
    assert!(!target.log().contains("Incoming call"), "1003 never rang");
}

/// The blacklist holds for a transfer of the far end's doing too: their REFER to a listed
/// number is refused with 403 and nobody is called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_end_transfer_to_a_blacklisted_number_is_refused() {
    let lab = call_lab::lab("PCMU");
    let target = Baresip::start(&lab.kamailio, "1003", TARGET_HZ, "PCMU");
    let mut page = lab.page().await;
    let (added, _) = page
        .request("blacklist_add", json!({"number": "1003"}))
        .await;
    assert_eq!(added["ok"], true, "{added}");
    let id = lab.answered_call(&mut page).await;

    lab.baresip.command(
        "transfer",
        &format!("sip:1003@{}:{}", lab.kamailio.address, lab.kamailio.port),
    );
    eventually("baresip told 403", Duration::from_secs(10), || {
        lab.baresip.log().contains("403 Forbidden").then_some(())
    });
    // baresip hangs up itself after a failed transfer ("transfer failure: 403"): the call
    // ends by its BYE, not by ours.
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["cause"], "remote", "{ended}");
    assert!(
        !target.log().to_lowercase().contains("incoming call"),
        "nobody called 1003:\n{}",
        target.log()
    );
    assert!(
        lab.daemon.log().contains("blacklisted number; refused"),
        "the log says why"
    );
    assert_eq!(ended["payload"]["conversationId"], id.as_str());
}
