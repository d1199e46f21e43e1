//! Which incoming calls the phone answers by itself, declines, or gives up on (issue 12), against
//! real peers: sipp playing a dialler behind the registrar (bridged-call marks, with and without
//! them, and a marked INVITE from elsewhere), baresip calling in through Kamailio (do-not-disturb
//! and the ring timeout).

mod call_lab;
mod common;
mod lab;

use std::time::{Duration, Instant};

use common::{CRM, Daemon};
use lab::sipp::Sipp;
use serde_json::{Value, json};

/// A daemon registered with sipp as its server, with `account` added to `[account]`.
fn daemon(sipp: &Sipp, account: &str) -> Daemon {
    Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n{account}\n[log]\nlevel = \"debug\"\n",
        sipp.port
    ))
}

/// The local port of the daemon's UDP flow to `server_port` on loopback (from /proc/net/udp).
fn flow_port(server_port: u16) -> u16 {
    let remote = format!("0100007F:{server_port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .expect("/proc/net/udp")
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(2) == Some(&remote.as_str()))
                .then(|| fields[1].rsplit(':').next())
                .flatten()
                .and_then(|port| u16::from_str_radix(port, 16).ok())
        })
        .expect("the daemon's flow to sipp")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_server_marks_as_bridged_is_answered_after_the_delay_it_asks() {
    let mut sipp = Sipp::start(
        "sipp-bridged.xml",
        1,
        &[
            ("@PAUSE@", "300".into()),
            (
                "@MARK@",
                "\nCall-Info: <sip:[local_ip]>;answer-after=1".into(),
            ),
        ],
    );
    let daemon = daemon(&sipp, "auto_answer = \"bridged\"");
    let mut page = daemon.connect(CRM).await;
    let incoming = page.event("incomingCall").await;
    let rang = Instant::now();
    let id = incoming["payload"]["conversationId"].clone();
    let accepted = page.event("callAccepted").await;
    let waited = rang.elapsed();
    assert_eq!(accepted["payload"]["conversationId"], id);
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "answered after answer-after=1: {waited:?}"
    );
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["cause"], "remote", "{ended}");
    sipp.finished();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_mark_it_rings_and_a_marked_invite_from_elsewhere_never_arrives() {
    let mut sipp = Sipp::start(
        "sipp-unanswered.xml",
        1,
        &[
            ("@PAUSE@", "2000".into()),
            ("@MARK@", String::new()),
            ("@STATUS@", "480".into()),
        ],
    );
    let daemon = daemon(&sipp, "auto_answer = \"bridged\"\nring_timeout = 2");
    let mut page = daemon.connect(CRM).await;
    page.registered().await;

    // Someone else on the machine (or the network) sends the line a marked INVITE directly.
    let port = flow_port(sipp.port);
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let me = stranger.local_addr().expect("addr");
    let invite = format!(
        "INVITE sip:1001@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKstranger\r\n\
         From: <sip:intruder@{me}>;tag=x\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: stranger\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:intruder@{me}>\r\nMax-Forwards: 70\r\nCall-Info: <sip:{me}>;answer-after=0\r\n\
         Answer-Mode: Auto\r\nContent-Length: 0\r\n\r\n"
    );
    stranger
        .send_to(invite.as_bytes(), ("127.0.0.1", port))
        .await
        .expect("send");
    // What proves it never arrived: the history below holds only the server's call, which
    // sipp sends after its pause, well after this one.

    // The server's own call without a mark rings, and gives up after ring_timeout.
    let incoming = page.event("incomingCall").await;
    let id = incoming["payload"]["conversationId"].clone();
    let rang = Instant::now();
    let rejected = page.event("callRejected").await;
    let waited = rang.elapsed();
    let payload = &rejected["payload"];
    assert_eq!(payload["conversationId"], id);
    assert_eq!(
        (payload["reason"].clone(), payload["cause"].clone()),
        (json!("passive"), json!("no_answer")),
        "{rejected}"
    );
    assert!(
        waited >= Duration::from_millis(1800) && waited < Duration::from_secs(4),
        "ring_timeout = 2: {waited:?}"
    );
    let (history, _) = page.request("get_history", json!({"limit": 5})).await;
    let calls = history["result"]["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(calls.len(), 1, "only the server's call: {history}");
    assert_eq!(calls[0]["cause"], "no_answer");
    sipp.finished();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_not_disturb_and_not_ready_against_baresip_calling_in() {
    let lab = call_lab::lab_with_account("PCMU", "auto_answer = \"always\"");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;

    // Busy takes no calls: declined with 486, the page told why.
    page.request("update_presence", json!({"softphoneId": "busy"}))
        .await;
    let (id, _) = lab.call_the_agent(&mut page).await;
    let rejected = page.event("callRejected").await;
    assert_eq!(rejected["payload"]["conversationId"], id.as_str());
    assert_eq!(rejected["payload"]["cause"], "dnd", "{rejected}");
    assert_eq!(rejected["payload"]["reason"], "passive");
    common::eventually("baresip told 486", Duration::from_secs(5), || {
        lab.baresip.log().contains("486 Busy Here").then_some(())
    });

    // On break the agent is not ready: the call that would be answered by itself is declined
    // with 480 so the dialler can route it elsewhere.
    page.request("update_presence", json!({"softphoneId": "break"}))
        .await;
    let (id, _) = lab.call_the_agent(&mut page).await;
    let rejected = page.event("callRejected").await;
    assert_eq!(rejected["payload"]["conversationId"], id.as_str());
    assert_eq!(rejected["payload"]["cause"], "not_ready", "{rejected}");
    common::eventually("baresip told 480", Duration::from_secs(5), || {
        lab.baresip
            .log()
            .contains("480 Temporarily Unavailable")
            .then_some(())
    });

    // Available: answered by itself, as IT chose.
    let (reply, _) = page
        .request("update_presence", json!({"softphoneId": "available"}))
        .await;
    assert_eq!(
        reply["result"],
        json!({"softphoneId": "available", "name": "Available", "acceptCalls": true, "ready": true})
    );
    let (id, _) = lab.call_the_agent(&mut page).await;
    let accepted: Value = page.event("callAccepted").await;
    assert_eq!(accepted["payload"]["conversationId"], id.as_str());
    lab.baresip.command("hangup", "");
    page.event("callEnded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_call_from_baresip_gives_up_at_the_ring_timeout() {
    let lab = call_lab::lab_with_account("PCMU", "ring_timeout = 2");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let (id, _) = lab.call_the_agent(&mut page).await;
    let rang = Instant::now();
    let rejected = page.event("callRejected").await;
    let waited = rang.elapsed();
    assert_eq!(rejected["payload"]["conversationId"], id.as_str());
    assert_eq!(rejected["payload"]["cause"], "no_answer", "{rejected}");
    assert_eq!(rejected["payload"]["reason"], "passive");
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5),
        "ring_timeout = 2: {waited:?}"
    );
    common::eventually("baresip told 480", Duration::from_secs(5), || {
        lab.baresip
            .log()
            .contains("480 Temporarily Unavailable")
            .then_some(())
    });
}
