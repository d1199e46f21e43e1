//! The line survives the network (issue 17), end to end: the real binary's line to Kamailio,
//! baresip as the far end, tones checked after the event.

mod call_lab;
mod common;
mod dnsmasq;
mod lab;

use std::time::{Duration, Instant};

use common::{CRM, eventually};
use lab::{analyse, ip, read_wav};
use serde_json::json;

use call_lab::{AGENT_HZ, FAR_HZ};

/// Kamailio restarted mid-call: every connection to it drops and it forgets the registration.
/// The call stays up, the tone flows both ways afterwards, the line registers again, and the
/// agent's hang-up reaches the far end.
async fn a_call_survives_a_proxy_restart_over(transport: &str) {
    let mut lab = call_lab::lab_over("PCMU", transport);
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let id = lab.answered_call(&mut page).await;

    let restarted = Instant::now();
    lab.kamailio.restart();
    // Over a stream the line sees the connection drop and registers again at once; over UDP
    // nothing drops (the registration is refreshed on its schedule).
    if transport != "udp" {
        page.registration("registered").await;
        assert_eq!(
            lab.kamailio.wait_contacts("1001").len(),
            1,
            "{transport}: one binding"
        );
        eprintln!(
            "{transport}: registered again {:?} after the restart began",
            restarted.elapsed()
        );
    }
    let (state, _) = page.request("get_state", serde_json::Value::Null).await;
    let calls = &state["result"]["state"]["calls"];
    assert_eq!(
        calls.as_array().map(Vec::len),
        Some(1),
        "{transport}: the call outlived the connection: {state}"
    );
    assert_eq!(calls[0]["conversationId"], id.as_str(), "{state}");

    lab.hang_up_after(
        &mut page,
        &id,
        lab.heard_bytes(),
        &format!("the {transport} restart"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_call_survives_a_proxy_restart() {
    a_call_survives_a_proxy_restart_over("tcp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_call_survives_a_proxy_restart() {
    a_call_survives_a_proxy_restart_over("tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_call_survives_a_proxy_restart() {
    a_call_survives_a_proxy_restart_over("udp").await;
}

/// The far end killed with SIGKILL mid-call: no BYE ever comes. With `[media] rtp_timeout = 6`
/// the call ends with the cause `timeout` once no media has arrived for 6 s (the media task
/// measures the silence and reports every 5 s, so within 6–11 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_far_end_is_hung_up_by_the_media_timeout() {
    let mut lab = call_lab::lab_with("PCMU", "", "rtp_timeout = 6");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let id = lab.answered_call(&mut page).await;
    let killed = Instant::now();
    lab.baresip.kill();
    let ended = page
        .event_after_silence("callEnded", Duration::from_secs(20))
        .await;
    let took = killed.elapsed();
    assert_eq!(ended["payload"]["conversationId"], id.as_str(), "{ended}");
    assert_eq!(ended["payload"]["cause"], "timeout", "{ended}");
    assert!(
        // Bounded by the limit plus one report period; the margin is for a loaded CI machine.
        took >= Duration::from_secs(6) && took < Duration::from_secs(16),
        "ended {took:?} after the far end vanished"
    );
    eprintln!("the vanished far end's call ended {took:?} after SIGKILL");
    assert!(
        lab.daemon.log().contains("no media from the far end"),
        "the log says why"
    );
}

/// Failover mid-call (explicit server list): the agent's line is on Kamailio A over TCP with B
/// as `backup_servers`; A stops mid-call. The line moves to B and registers there within
/// seconds, and the call goes on: the far end's tone keeps arriving (the media never needed A).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_line_fails_over_mid_call_and_the_call_goes_on() {
    let backup = lab::Kamailio::start("MD5");
    let primary = lab::Kamailio::start("MD5");
    let server = format!(
        "server = \"127.0.0.1:{}\"\ntransport = \"tcp\"\nbackup_servers = [\"127.0.0.1:{}\"]\n",
        primary.port, backup.port
    );
    let mut lab = call_lab::lab_on_server(primary, &server, "PCMU");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    assert_eq!(
        lab.kamailio.contacts("1001").len(),
        1,
        "on the primary first"
    );
    let id = lab.answered_call(&mut page).await;

    let stopped = Instant::now();
    lab.kamailio.stop();
    page.registration("registered").await;
    let moved = stopped.elapsed();
    assert_eq!(
        backup.wait_contacts("1001").len(),
        1,
        "registered on the backup"
    );
    eprintln!("tcp: on the backup server {moved:?} after the primary stopped");
    page.assert_call_listed(&id, "the primary").await;
    let after = lab.heard_bytes();
    eventually(
        "the far end's audio after the failover",
        Duration::from_secs(20),
        || (lab.heard_bytes() >= after + 4 * 8000 * 2).then_some(()),
    );
}

/// Failover by SRV priority with no call: `_sip._udp.pbx.lab` names A (priority 10) and B (20);
/// A does not answer, so over UDP only the unanswered REGISTER tells — the line moves to B.
/// When A answers again, the line returns to it (no call is up), checked every 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_line_fails_over_by_srv_and_returns_to_the_preferred_server() {
    let mut primary = lab::Kamailio::start("MD5");
    let backup = lab::Kamailio::start("MD5");
    primary.stop();
    let dns = dnsmasq::Dnsmasq::start(&[
        format!(
            "--srv-host=_sip._udp.pbx.lab,a.pbx.lab,{},10,50",
            primary.port
        ),
        format!(
            "--srv-host=_sip._udp.pbx.lab,b.pbx.lab,{},20,50",
            backup.port
        ),
        "--host-record=a.pbx.lab,127.0.0.1".to_owned(),
        "--host-record=b.pbx.lab,127.0.0.1".to_owned(),
    ]);
    let started = Instant::now();
    let daemon = common::Daemon::start(&format!(
        "[account]\nserver = \"pbx.lab\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\ndns_server = \"127.0.0.1:{}\"\n",
        dns.port
    ));
    let mut page = daemon.connect(CRM).await;
    eventually(
        "registration on the backup",
        Duration::from_secs(60),
        || (!backup.contacts("1001").is_empty()).then_some(()),
    );
    eprintln!("udp: on the backup {:?} after start", started.elapsed());
    page.registered().await;

    primary.start_again();
    let back = Instant::now();
    eventually(
        "registration on the preferred server again",
        Duration::from_secs(60),
        || (!primary.contacts("1001").is_empty()).then_some(()),
    );
    eprintln!(
        "udp: back on the preferred server {:?} after it returned",
        back.elapsed()
    );
}

/// SIP Outbound against Kamailio's outbound registrar (RFC 5626): the line registers with its
/// install's `+sip.instance` and `reg-id`, the registrar keeps the flow and names a Flow-Timer
/// (20 s in the lab), and the line's keepalives are answered — STUN on UDP (Kamailio's stun
/// module), CRLF on TCP — at least once within that time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registrar_keeps_our_flows_and_answers_their_keepalives() {
    let kamailio = lab::Kamailio::start("MD5");
    let line = |user: &str, transport: &str| {
        common::Daemon::start(&format!(
            "[log]\nlevel = \"debug\"\n[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"{transport}\"\nusername = \"{user}\"\npassword = \"secret{user}\"\n",
            kamailio.port
        ))
    };
    let (udp, tcp) = (line("1001", "udp"), line("1002", "tcp"));
    let started = Instant::now();
    for (daemon, user) in [(&udp, "1001"), (&tcp, "1002")] {
        let mut page = daemon.connect(CRM).await;
        page.registered().await;
        let instance = std::fs::read_to_string(daemon.dir().join("sip-instance"))
            .expect("the install's SIP instance id is kept");
        let dump = kamailio.rpc("ul.dump");
        let ours = dump
            .split("AoR: ")
            .find(|record| record.starts_with(user))
            .unwrap_or_default();
        assert!(
            ours.contains(&format!("<{instance}>")) && ours.contains("Reg-Id: 1"),
            "{user}: Kamailio keeps the binding by instance and reg-id:\n{ours}"
        );
    }
    for (daemon, name) in [(&udp, "udp (STUN)"), (&tcp, "tcp (CRLF)")] {
        eventually(
            &format!("{name}: a keepalive answered"),
            Duration::from_secs(40),
            || {
                daemon
                    .log()
                    .contains("the flow answered our keepalive")
                    .then_some(())
            },
        );
        eprintln!(
            "{name}: first keepalive answered {:?} after start",
            started.elapsed()
        );
    }
}

/// A server that stops answering on a connection that stays open (hung, or a middlebox that
/// drops the flow silently): the flow's keepalive, answered before, goes unanswered for 10 s;
/// the line gives up the flow at once and makes a new one when the server answers again. With
/// a Flow-Timer of 8 s the first keepalive is answered by 8 s; the OPTIONS probe is answered at
/// 3 s and not due again until 33 s, so only the keepalive can find the silence by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_whose_keepalive_goes_unanswered_is_replaced() {
    let kamailio = lab::Kamailio::start_with_flow_timer("MD5", 8);
    let daemon = common::Daemon::start(&format!(
        "[log]\nlevel = \"debug\"\n[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"tcp\"\nusername = \"1001\"\npassword = \"secret1001\"\n",
        kamailio.port
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    eventually(
        "the first keepalive answered",
        Duration::from_secs(15),
        || {
            let log = daemon.log();
            (log.contains("SIP in 200 OK (1 OPTIONS)")
                && log.contains("the flow answered our keepalive"))
            .then_some(())
        },
    );
    let paused = Instant::now();
    kamailio.pause();
    let failed = loop {
        let event = page
            .event_after_silence("registrationChanged", Duration::from_secs(40))
            .await;
        if event["payload"]["state"] == "failed" {
            break event;
        }
    };
    let took = paused.elapsed();
    kamailio.resume();
    let reason = failed["payload"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("keepalive"),
        "found by the keepalive: {failed}"
    );
    eprintln!("tcp: a silent flow given up {took:?} after the server froze");
    assert!(
        took < Duration::from_secs(25),
        "within Flow-Timer + 10 s (and some slack): {took:?}"
    );
    page.registration("registered").await;
}

/// A server that takes packets and never answers (hung, or a firewall that drops): nothing
/// errors, only silence tells. The line's first OPTIONS probe (3 s after connecting) goes
/// unanswered for 5 s and it moves to the backup, well before the REGISTER's Timer F (32 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_left_for_the_backup() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let backup = lab::Kamailio::start("MD5");
    let started = Instant::now();
    let daemon = common::Daemon::start(&format!(
        "[account]\nserver = \"{}\"\ntransport = \"udp\"\nbackup_servers = [\"127.0.0.1:{}\"]\nusername = \"1001\"\npassword = \"secret1001\"\n",
        silent.local_addr().expect("address"),
        backup.port
    ));
    let _page = daemon.connect(CRM).await;
    eventually(
        "registration on the backup",
        Duration::from_secs(60),
        || (!backup.contacts("1001").is_empty()).then_some(()),
    );
    let took = started.elapsed();
    eprintln!("udp: left the silent server for the backup {took:?} after start");
    assert!(
        took < Duration::from_secs(20),
        "found by the probe, not Timer F: {took:?}"
    );
}

/// Daemon ↔ daemon over Kamailio (the agent on TCP, the far end another daemon on UDP that
/// answers on its own): Kamailio restarts mid-call; the call stays up on both, each hears the
/// other's tone afterwards, and the agent's hang-up ends the far end's call too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_to_daemon_call_survives_a_proxy_restart() {
    let mut kamailio = lab::Kamailio::start("MD5");
    let dir = tempfile::tempdir().expect("tempdir");
    let audio = |name: &str, hz: f64| {
        let tone = dir.path().join(format!("{name}-tone.wav"));
        lab::write_tone(&tone, 48000, hz, 0.5, 10.0);
        format!(
            "[log]\nlevel = \"debug\"\n[media]\ncodecs = [\"pcmu\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
            tone.display(),
            dir.path().join(format!("{name}-heard.wav")).display()
        )
    };
    let far = common::Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1002\"\npassword = \"secret1002\"\nauto_answer = true\n{}",
        kamailio.port,
        audio("far", FAR_HZ)
    ));
    let agent = common::Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"tcp\"\nusername = \"1001\"\npassword = \"secret1001\"\n{}",
        kamailio.port,
        audio("agent", AGENT_HZ)
    ));
    let mut far_page = far.connect(CRM).await;
    far_page.registered().await;
    let mut page = agent.connect(CRM).await;
    page.registered().await;
    let id = page.start_call("1002").await;
    page.event("callAccepted").await;
    far_page.event("callAccepted").await;
    let size = |name: &str| {
        std::fs::metadata(dir.path().join(format!("{name}-heard.wav")))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    eventually("audio both ways", Duration::from_secs(20), || {
        (size("agent") > 2 * 8000 * 2 && size("far") > 2 * 8000 * 2).then_some(())
    });

    kamailio.restart();
    page.registration("registered").await;
    let (agent_after, far_after) = (size("agent"), size("far"));
    eventually(
        "audio both ways after the restart",
        Duration::from_secs(20),
        || {
            (size("agent") >= agent_after + 3 * 8000 * 2 && size("far") >= far_after + 3 * 8000 * 2)
                .then_some(())
        },
    );
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    let ended = far_page
        .event_after_silence("callEnded", Duration::from_secs(10))
        .await;
    assert_eq!(ended["payload"]["cause"], "remote", "{ended}");
    for (name, after, hz) in [("agent", agent_after, FAR_HZ), ("far", far_after, AGENT_HZ)] {
        let (rate, samples) =
            read_wav(&dir.path().join(format!("{name}-heard.wav"))).expect("a recording");
        let from = (after.saturating_sub(44) / 2) as usize;
        let report = analyse(rate, &samples[from.min(samples.len())..], &[hz, 1500.0]);
        assert_eq!(
            report.peaks[0].0, hz,
            "{name} after the restart: {report:?}"
        );
        assert!(report.peaks[0].1 > 0.8, "{name}: {report:?}");
    }
}

/// The machine's address changes mid-call (a dock, a VPN, a Wi-Fi roam), in a network namespace
/// of the test's own: the line reaches Kamailio at 10.9.0.1 from 10.9.0.2, then 10.9.0.3 appears,
/// the route to the server moves to it and 10.9.0.2 is removed. The line notices, registers
/// again from 10.9.0.3 (the old contact removed), and the call follows: a re-INVITE announces
/// our media at the new address, the tones keep flowing both ways, and the hang-up reaches the
/// far end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_follows_the_machine_to_a_new_address() {
    if !lab::webrtc::in_loopback_namespace("a_call_follows_the_machine_to_a_new_address") {
        return;
    }
    ip("addr add 10.9.0.1/32 dev lo");
    ip("addr add 10.9.0.2/32 dev lo");
    ip("route replace local 10.9.0.1 dev lo table local src 10.9.0.2");
    // baresip sends from an unbound socket: from 127.0.0.1, as its SDP says, not from the
    // address it sends to (which the kernel picks for a local destination by default).
    ip("route replace local 10.9.0.2 dev lo table local src 127.0.0.1");
    let kamailio = lab::Kamailio::start_at("10.9.0.1", "MD5");
    let server = format!(
        "server = \"10.9.0.1:{}\"\ntransport = \"tcp\"\n",
        kamailio.port
    );
    let lab = call_lab::lab_on_server(kamailio, &server, "PCMU");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let before = lab.kamailio.wait_contacts("1001");
    assert!(before.iter().all(|c| c.contains("10.9.0.2")), "{before:?}");
    let id = lab.answered_call(&mut page).await;

    let moved = Instant::now();
    ip("addr add 10.9.0.3/32 dev lo");
    ip("route replace local 10.9.0.3 dev lo table local src 127.0.0.1");
    ip("route replace local 10.9.0.1 dev lo table local src 10.9.0.3");
    ip("addr del 10.9.0.2/32 dev lo");
    page.registration("failed").await;
    page.registration("registered").await;
    eprintln!(
        "registered again from the new address {:?} after the move",
        moved.elapsed()
    );
    followed_to(&lab, &mut page, &id, "10.9.0.3", "the move").await;
}

/// A network flap (a laptop's cable or Wi-Fi drops and comes back on another network): the
/// agent reaches the PBX — Kamailio and baresip in a network namespace of their own — over a
/// veth pair. Mid-call the agent's end goes down for 5 s and comes back up with a new address.
/// The line registers again from it within seconds of the link returning (the old binding
/// replaced), the call follows (a re-INVITE announces our media at the new address), the tones
/// flow both ways again, and the hang-up reaches the far end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_survives_a_link_flap_to_a_new_address() {
    if !lab::webrtc::in_loopback_namespace("a_call_survives_a_link_flap_to_a_new_address") {
        return;
    }
    let pbx = lab::Netns::linked_pbx();
    let kamailio = lab::Kamailio::start_in(&pbx, lab::PBX_ADDRESS, "MD5");
    let server = format!(
        "server = \"{}:{}\"\ntransport = \"tcp\"\n",
        lab::PBX_ADDRESS,
        kamailio.port
    );
    let lab = call_lab::lab_on_server(kamailio, &server, "PCMU");
    let mut page = lab.daemon.connect(CRM).await;
    page.registered().await;
    let before = lab.kamailio.wait_contacts("1001");
    assert!(
        before.iter().all(|c| c.contains(lab::AGENT_BEFORE)),
        "{before:?}"
    );
    let id = lab.answered_call(&mut page).await;

    let returned = lab::flap_agent_link(Duration::from_secs(5)).await;
    page.registration("registered").await;
    let took = returned.elapsed();
    eprintln!("registered again {took:?} after the link returned");
    assert!(took < Duration::from_secs(10), "within seconds: {took:?}");
    followed_to(&lab, &mut page, &id, lab::AGENT_AFTER, "the flap").await;
}

/// After `event` moved the agent to `address`: Kamailio holds one contact, from there; the call
/// is still listed and carries on (tones both ways after the event), and our hang-up ends it at
/// the far end.
async fn followed_to(
    lab: &call_lab::Lab,
    page: &mut common::Client,
    id: &str,
    address: &str,
    event: &str,
) {
    let after = eventually("only the new contact", Duration::from_secs(10), || {
        let contacts = lab.kamailio.contacts("1001");
        (contacts.iter().all(|c| c.contains(address)) && !contacts.is_empty()).then_some(contacts)
    });
    assert_eq!(after.len(), 1, "{after:?}");
    page.assert_call_listed(id, event).await;
    lab.hang_up_after(page, id, lab.heard_bytes(), event).await;
}
