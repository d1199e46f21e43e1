//! Scripted flows with sipp playing the PBX: an incoming call with the contract's SIP headers,
//! malformed and oversized messages in the middle of it (the call must survive), a hold
//! re-INVITE, and BYE; a 401 challenge whose answer sipp verifies, a retransmitted INVITE and a
//! REGISTER flood during a call; a 407 on our INVITE.

mod common;
mod lab;

use common::{CRM, Client, Daemon, eventually};
use lab::sipp::Sipp;
use serde_json::json;
use std::time::Duration;

/// A daemon registered with `sipp`, its page, and the call sipp places, answered by the page.
async fn answered_call(sipp: &Sipp) -> (Daemon, Client, String) {
    let daemon = daemon(sipp);
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let (id, _) = page.incoming_call().await;
    page.request("answer", json!({"conversationId": id})).await;
    page.event("callAccepted").await;
    (daemon, page, id)
}

/// A daemon registered with `sipp` as its server.
fn daemon(sipp: &Sipp) -> Daemon {
    Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n[log]\nlevel = \"debug\"\n",
        sipp.port
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbx_call_survives_garbage_and_carries_the_contract_headers() {
    // A ~60 KB header value in a malformed message: rejected by the parser, never fatal.
    let mut sipp = Sipp::start("sipp-pbx.xml", 1, &[("@JUNK@", "x".repeat(60_000))]);
    let daemon = daemon(&sipp);
    let mut page = daemon.connect(CRM).await;
    let incoming = page.event("incomingCall").await;
    let payload = &incoming["payload"];
    assert_eq!(
        payload["callerANI"], "+15557654321",
        "P-Asserted-Identity wins over From"
    );
    assert_eq!(payload["partnerId"], "215fd887-39be-4935-981f-2670d6afeaa7");
    assert_eq!(payload["language"], "es_MX");
    let id = payload["conversationId"].as_str().expect("id").to_owned();
    page.request("answer", json!({"conversationId": id})).await;
    let accepted = page.event("callAccepted").await;
    assert_eq!(accepted["payload"]["ivrExitPath"], "billing");
    // The garbage and the re-INVITE come next; the call ends only with sipp's BYE.
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["conversationId"], id.as_str());
    assert!(
        daemon.log().contains("dropped a malformed SIP message"),
        "the junk was seen and dropped"
    );
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    assert_eq!(
        state["result"]["state"]["line"]["state"], "registered",
        "the line is intact"
    );
    sipp.finished();
}

/// The agent holds and at once resumes, and the far end is slow to answer the hold: the resume
/// is not lost behind the hold's re-INVITE in flight (RFC 3261 allows one at a time) but goes
/// out once it is answered — sipp checks it offers `a=sendrecv` — and the call ends up active:
/// held, then resumed, in that order. (A conference taking a call whose hold is unanswered is
/// the same race; `phone::tests::a_conference_resumes_a_call_whose_hold_is_unanswered`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_asked_while_the_hold_is_unanswered_is_sent_once_it_is() {
    let mut sipp = Sipp::start("sipp-slow-hold.xml", 1, &[("@SLOW@", "2000".into())]);
    let (daemon, mut page, id) = answered_call(&sipp).await;
    let (hold, _) = page.request("hold", json!({"conversationId": id})).await;
    assert_eq!(hold["ok"], true, "{hold}");
    let (resume, _) = page.request("unhold", json!({"conversationId": id})).await;
    assert_eq!(resume["ok"], true, "{resume}");
    for held in [true, false] {
        let changed = page.event("callHoldChanged").await;
        assert_eq!(
            changed["payload"],
            json!({"conversationId": id, "held": held, "by": "agent"}),
            "{}",
            daemon.log()
        );
    }
    let (state, _) = page.request("get_state", json!({})).await;
    assert_eq!(
        state["result"]["state"]["calls"][0]["state"], "active",
        "{state}"
    );
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    sipp.finished();
}

/// A far end that answers a hold's re-INVITE with 100 and never more (`sipp-stuck-hold.xml`)
/// would keep every later hold or resume of the call waiting behind it, since one INVITE may
/// be in progress at a time: 32 s (64·T1) on, the line CANCELs it, sipp answers 487, the hold
/// is refused (the call stays active) — and the agent's next hold goes out and is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_the_far_end_never_answers_is_cancelled_and_the_next_goes() {
    let mut sipp = Sipp::start("sipp-stuck-hold.xml", 1, &[]);
    let (daemon, mut page, id) = answered_call(&sipp).await;
    let (hold, _) = page.request("hold", json!({"conversationId": id})).await;
    assert_eq!(hold["ok"], true, "{hold}");
    eventually(
        "the hold cancelled and refused",
        Duration::from_secs(45),
        || {
            daemon
                .log()
                .contains("the far end refused our re-INVITE")
                .then_some(())
        },
    );
    let (state, _) = page.request("get_state", json!({})).await;
    assert_eq!(
        state["result"]["state"]["calls"][0]["state"], "active",
        "{state}"
    );
    let (again, _) = page.request("hold", json!({"conversationId": id})).await;
    assert_eq!(again["ok"], true, "{again}");
    let changed = page.event("callHoldChanged").await;
    assert_eq!(
        changed["payload"],
        json!({"conversationId": id, "held": true, "by": "agent"}),
        "{}",
        daemon.log()
    );
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    sipp.finished();
}

/// 401 then 200 (sipp verifies our digest), an INVITE retransmitted (one call, 180 again), and
/// 2000 REGISTERs of fresh Call-IDs during the call: each gets 405, the call and the API stay
/// up, an in-dialog OPTIONS is still answered, and sipp's BYE ends the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmitted_invite_and_a_register_flood_leave_the_call_intact() {
    let mut sipp = Sipp::start("sipp-flood.xml", 1, &[("@FLOOD@", "2000".into())]);
    let mut daemon = daemon(&sipp);
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let (id, _) = page.incoming_call().await;
    // sipp resends its INVITE whenever it sees our (identical) 180 again, so they ping-pong
    // until the page answers: several 180s, still one call. Answered before the copy came, the
    // copy would get the 200 instead.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while daemon.log().matches("SIP out SIP/2.0 180").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "each copy got 180:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    page.request("answer", json!({"conversationId": id})).await;
    page.event("callAccepted").await;
    // Through the flood the API answers and the call is listed; the next call event is its end.
    page.assert_call_listed(&id, "the flood").await;
    // sipp floods (a few seconds: it paces its sends), asks OPTIONS, and hangs up.
    sipp.finished();
    loop {
        let message = page.next_event().await;
        assert_ne!(
            message["event"], "incomingCall",
            "a retransmission is not a second call: {message}"
        );
        if message["event"] == "callEnded" {
            assert_eq!(message["payload"]["conversationId"], id.as_str());
            break;
        }
    }
    let log = daemon.log();
    assert!(
        log.matches("SIP in INVITE").count() >= 2,
        "the INVITE arrived twice"
    );
    let floods = log.matches("SIP in REGISTER").count();
    assert!(
        floods >= 1900,
        "the flood reached the line ({floods} logged)"
    );
    assert!(daemon.is_running(), "the daemon survived");
}

/// Our INVITE gets 407; the second carries Proxy-Authorization that sipp verifies; the call
/// is answered, then we hang up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_407_on_our_invite_is_answered_with_credentials() {
    let mut sipp = Sipp::start("sipp-proxy-auth.xml", 2, &[]);
    let daemon = daemon(&sipp);
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let id = page.start_call("1002").await;
    let accepted = page.event("callAccepted").await;
    assert_eq!(accepted["payload"]["conversationId"], id.as_str());
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    sipp.finished();
    assert!(daemon.log().contains("SIP in 407"));
}

/// uContact's Porthole call with `callerid` and `outqueue`: the server sees the caller ID IT
/// allows in P-Preferred-Identity and the campaign in X-Campaign (sipp checks both); one IT does
/// not allow never reaches the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_sees_the_caller_id_and_campaign_it_allowed() {
    let mut sipp = Sipp::start("sipp-caller-id.xml", 2, &[]);
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n\
         [dialling]\ncaller_ids = [\"+1666*\"]\n[log]\nlevel = \"debug\"\n",
        sipp.port
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let (reply, _) = page
        .request(
            "call",
            json!({"destination": "1002", "callerid": "+15550100", "outqueue": "Sale->"}),
        )
        .await;
    assert_eq!(reply["error"]["code"], "invalid_params", "{reply}");
    let (reply, _) = page
        .request(
            "call",
            json!({"destination": "1002", "callerid": "+1 666 000 1234", "outqueue": "Sale->", "agent": "agent7", "tech": "SIP", "context": "from-internal", "phone": "1001"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["cause"], "busy", "{ended}");
    sipp.finished();
}

/// DTMF in SIP INFO both ways with a PBX that offers no telephone-event: the agent's digits go
/// as INFO in order (sipp checks 1, 2, #), and the PBX's INFOs (dtmf-relay and application/dtmf)
/// reach the page as `dtmfReceived`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_goes_and_comes_in_sip_info_when_the_far_end_has_no_telephone_event() {
    let mut sipp = Sipp::start("sipp-info-dtmf.xml", 2, &[]);
    let daemon = daemon(&sipp);
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let id = page.start_call("1002").await;
    page.event("callAccepted").await;
    let (reply, _) = page
        .request("dtmf", json!({"conversationId": id, "digits": "12#"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let first = page.event("dtmfReceived").await;
    let second = page.event("dtmfReceived").await;
    assert_eq!(
        (
            first["payload"]["digit"].clone(),
            second["payload"]["digit"].clone()
        ),
        (json!("5"), json!("9"))
    );
    page.event("callEnded").await;
    sipp.finished();
}
