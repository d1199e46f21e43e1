//! Calls with audio against real peers: Kamailio as proxy, baresip as the far-end phone. Each
//! side plays its own tone; each side's recording must contain the other's tone (frequency and
//! level), for PCMU and PCMA, in both directions.

mod call_lab;
mod common;
mod lab;

use std::time::Duration;

use call_lab::{AGENT_HZ, FAR_HZ, HEARD_SECONDS, Lab, lab};
use common::{CRM, Daemon, eventually};
use lab::{Baresip, Kamailio, write_tone};
use serde_json::json;

async fn outbound(codec: &str) {
    let lab = lab(codec);
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let (reply, events) = page
        .request(
            "start_call",
            json!({"dialTo": "1002", "partnerId": "215fd887"}),
        )
        .await;
    let id = reply["result"]["conversationId"]
        .as_str()
        .expect("conversationId")
        .to_owned();
    assert_eq!(events[0]["event"], "outboundCallInitiated");
    assert_eq!(events[0]["payload"]["dialledTo"], "1002");
    let accepted = page.event("callAccepted").await;
    assert_eq!(accepted["payload"]["conversationId"], id.as_str());
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    assert_eq!(state["result"]["state"]["calls"][0]["state"], "active");
    lab.wait_for_audio();
    page.request("hangup", json!({"conversationId": id})).await;
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["callType"], "outbound");
    assert!(
        ended["payload"]["duration"].as_u64().unwrap_or(0) >= HEARD_SECONDS as u64 - 1,
        "{ended}"
    );
    lab.assert_tones_both_ways();
    assert!(
        lab.kamailio.contacts("1001").len() == 1,
        "still registered after the call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_pcmu_call_carries_audio_both_ways() {
    outbound("PCMU").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_pcma_call_carries_audio_both_ways() {
    outbound("PCMA").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_opus_call_carries_audio_both_ways() {
    outbound("opus/48000/2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_call_is_answered_from_the_page_and_the_far_end_hangs_up() {
    let lab = lab("PCMU");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let (id, incoming) = lab.call_the_agent(&mut page).await;
    assert_eq!(incoming["callerANI"], "1002");
    assert_eq!(incoming["language"], "en_US");
    let (reply, _) = page.request("answer", json!({"conversationId": id})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let accepted = page.event("callAccepted").await;
    assert_eq!(accepted["payload"]["callerANI"], "1002");
    lab.wait_for_audio();
    lab.baresip.command("hangup", "");
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["callType"], "inbound");
    assert_eq!(ended["payload"]["conversationId"], id.as_str());
    lab.assert_tones_both_ways();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_call_rejected_from_the_page() {
    let lab = lab("PCMU");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let (id, _) = lab.call_the_agent(&mut page).await;
    page.request("reject", json!({"conversationId": id})).await;
    let rejected = page.event("callRejected").await;
    assert_eq!(rejected["payload"]["reason"], "active");
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    assert_eq!(state["result"]["state"]["calls"], json!([]));
}

/// TLS to the proxy (certificate checked against `ca_file`), then a call to a baresip phone on
/// UDP with audio both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_and_calls_over_tls() {
    let kamailio = Kamailio::start_with_tls("MD5");
    let baresip = Baresip::start(&kamailio, "1002", FAR_HZ, "PCMU");
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("agent.wav");
    write_tone(&tone, 8000, AGENT_HZ, 0.5, 10.0);
    let heard = dir.path().join("heard.wav");
    let tls_port = kamailio.tls_port.expect("tls port");
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{tls_port}\"\ntransport = \"tls\"\nusername = \"1001\"\npassword = \"secret1001\"\nca_file = \"{}\"\n\
         [audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
        kamailio.ca_file().display(),
        tone.display(),
        heard.display()
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let contacts = kamailio.contacts("1001");
    assert!(
        contacts.iter().any(|c| c.ends_with(";transport=tls")),
        "{contacts:?}"
    );
    let lab = Lab {
        kamailio,
        baresip,
        daemon,
        dir,
        rate: 8000,
    };
    let id = page.start_call("1002").await;
    page.event("callAccepted").await;
    lab.wait_for_audio();
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    lab.assert_tones_both_ways();
}

/// A server certificate the line does not trust is refused, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_an_untrusted_server_is_refused() {
    let kamailio = Kamailio::start_with_tls("MD5");
    let other_ca = tempfile::NamedTempFile::new().expect("file");
    let stranger = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    std::fs::write(other_ca.path(), stranger.cert.pem()).expect("write");
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"tls\"\nusername = \"1001\"\npassword = \"secret1001\"\nca_file = \"{}\"\n",
        kamailio.tls_port.expect("tls"),
        other_ca.path().display()
    ));
    let mut page = daemon.connect(CRM).await;
    let failed = page.registration_failure().await;
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("TLS") && reason.to_lowercase().contains("certificate"),
        "{reason}"
    );
    assert!(kamailio.contacts("1001").is_empty());
}

/// The far end refuses our call (baresip answers `hangup` on a ringing call with 486), and we
/// cancel another before it is answered (CANCEL, 487). Both end unanswered: `callEnded`, duration 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_end_rejects_and_we_cancel_before_answer() {
    let kamailio = Kamailio::start("MD5");
    let baresip = Baresip::start_with(&kamailio, "1002", FAR_HZ, "PCMU", "manual");
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n[log]\nlevel = \"debug\"\n",
        kamailio.port
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;

    let (reply, _) = page.request("start_call", json!({"dialTo": "1002"})).await;
    let first = reply["result"]["conversationId"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        page.event("callRinging").await["payload"]["conversationId"],
        first.as_str()
    );
    // baresip's `hangup` applies to its current call; under load it has been seen to arrive
    // before baresip took the ringing call as current, and do nothing. Ask again then.
    let mut ended = None;
    for _ in 0..3 {
        baresip.command("hangup", "");
        ended = page.event_within("callEnded", Duration::from_secs(5)).await;
        if ended.is_some() {
            break;
        }
    }
    let ended = ended.expect("callEnded after baresip refused the call");
    // Why, as a CRM needs it: busy, and the SIP answer that said so.
    assert_eq!(ended["payload"]["cause"], "busy", "{ended}");
    assert_eq!(ended["payload"]["sipStatus"], 486, "{ended}");
    assert_eq!(
        (
            ended["payload"]["conversationId"].as_str(),
            ended["payload"]["duration"].as_u64()
        ),
        (Some(first.as_str()), Some(0))
    );
    eventually("the 486 in the log", Duration::from_secs(5), || {
        daemon.log().contains("SIP in 486").then_some(())
    });

    let (reply, _) = page.request("start_call", json!({"dialTo": "1002"})).await;
    let second = reply["result"]["conversationId"]
        .as_str()
        .expect("id")
        .to_owned();
    page.event("callRinging").await;
    page.request("hangup", json!({"conversationId": second}))
        .await;
    let ended = page.event("callEnded").await;
    assert_eq!(
        (
            ended["payload"]["conversationId"].as_str(),
            ended["payload"]["duration"].as_u64()
        ),
        (Some(second.as_str()), Some(0))
    );
    let log = daemon.log();
    assert!(
        log.contains("SIP out CANCEL") && log.contains("SIP in 487"),
        "CANCEL answered with 487:\n{log}"
    );
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    assert_eq!(state["result"]["state"]["calls"], json!([]));
}

/// Regression: the line used its media table as its list of calls, so a call still ringing in
/// (no media yet) was neither rejected on shutdown nor reported ended when the connection to
/// the proxy dropped — it stayed in every page's snapshot. Now every call the line holds ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ringing_call_ends_when_the_proxy_connection_drops() {
    let kamailio = Kamailio::start("MD5");
    let baresip = Baresip::start(&kamailio, "1002", FAR_HZ, "PCMU");
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"tcp\"\nusername = \"1001\"\npassword = \"secret1001\"\n",
        kamailio.port
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    baresip.command("dial", &format!("sip:1001@127.0.0.1:{}", kamailio.port));
    let id = page.event("incomingCall").await["payload"]["conversationId"]
        .as_str()
        .expect("id")
        .to_owned();
    drop(kamailio);
    let rejected = page.event("callRejected").await;
    assert_eq!(
        (
            rejected["payload"]["conversationId"].as_str(),
            rejected["payload"]["reason"].as_str()
        ),
        (Some(id.as_str()), Some("passive"))
    );
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    assert_eq!(state["result"]["state"]["calls"], json!([]));
}
