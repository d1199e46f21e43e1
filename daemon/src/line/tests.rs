//! The sans-IO line on a virtual clock: what it does with the registrar's SIP Outbound and GRUU
//! answers (issue 17).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_core::message::{Message, Request, Response, parse_datagram};

use sip_core::flow::Pong;

use super::{LineConfig, SipEvent, SipLine};
use crate::ids::OsEntropy;

const INSTANCE: &str = "urn:uuid:6f1c2b0e-0d3a-4c55-9a41-2f5d7e0b8c11";
const GRUU: &str = "sip:agent@127.0.0.1;gr=urn:uuid:6f1c2b0e-0d3a-4c55-9a41-2f5d7e0b8c11";

pub(super) fn line(reliable: bool) -> (SipLine, Instant, OsEntropy) {
    let server: SocketAddr = "127.0.0.1:5060".parse().expect("address");
    let mut config = LineConfig::demo(server);
    config.sip_instance = Some(INSTANCE.into());
    let local: SocketAddr = "127.0.0.1:40000".parse().expect("address");
    let mut entropy = OsEntropy;
    let token = if reliable { "TCP" } else { "UDP" };
    let mut line = SipLine::new(&config, local, token, reliable, &mut entropy);
    let now = Instant::now();
    line.start(now, &mut entropy);
    (line, now, entropy)
}

fn sent(line: &mut SipLine) -> Request {
    let bytes = line.poll_transmit().expect("something was sent");
    match parse_datagram(&bytes) {
        Ok(Message::Request(request)) => request,
        other => panic!("not a request: {other:?}"),
    }
}

/// The registrar answers like the lab's Kamailio: outbound kept, a Flow-Timer, our GRUU.
pub(super) fn registered(
    line: &mut SipLine,
    now: Instant,
    entropy: &mut OsEntropy,
    outbound: bool,
) {
    let register = sent(line);
    let contact = register
        .headers
        .get("Contact")
        .expect("a contact")
        .to_owned();
    let mut ok = Response::to_request(&register, 200, Some("r1"));
    ok.headers
        .push("Contact", format!("{contact};pub-gruu=\"{GRUU}\""));
    if outbound {
        ok.headers.push("Require", "outbound");
        ok.headers.push("Flow-Timer", "20");
    }
    line.handle_message(Message::Response(ok), now, entropy);
    while line.poll_sip_event().is_some() {}
}

fn next_event(line: &mut SipLine) -> Option<SipEvent> {
    line.poll_sip_event()
}

/// A line whose flow the registrar keeps, with its first ping just sent (at the returned time).
fn pinging(reliable: bool) -> (SipLine, Instant, OsEntropy) {
    let (mut line, start, mut entropy) = line(reliable);
    registered(&mut line, start, &mut entropy, true);
    let at = line.poll_timeout().expect("a ping is due");
    line.handle_timeout(at, &mut entropy);
    assert!(matches!(
        next_event(&mut line),
        Some(SipEvent::FlowPing { .. })
    ));
    (line, at, entropy)
}

#[test]
fn a_kept_flow_is_pinged_and_an_unanswered_ping_fails_it() {
    let (mut line, start, mut entropy) = line(true);
    registered(&mut line, start, &mut entropy, true);
    assert!(line.flow_watched());
    let ping_at = line.poll_timeout().expect("a ping is due");
    assert!(
        ping_at <= start + Duration::from_secs(20),
        "within the Flow-Timer"
    );
    line.handle_timeout(ping_at, &mut entropy);
    assert!(matches!(
        next_event(&mut line),
        Some(SipEvent::FlowPing { .. })
    ));
    // Answered: nothing fails, and the next ping comes a Flow-Timer later.
    line.pong(
        Pong::Stream,
        ping_at + Duration::from_millis(2),
        &mut entropy,
    );
    line.handle_timeout(ping_at + Duration::from_secs(11), &mut entropy);
    assert_eq!(next_event(&mut line), None);
    let second = line.poll_timeout().expect("the next ping");
    assert!(
        second >= ping_at + Duration::from_secs(16),
        "{:?}",
        second - ping_at
    );
    line.handle_timeout(second, &mut entropy);
    assert!(matches!(
        next_event(&mut line),
        Some(SipEvent::FlowPing { .. })
    ));
    // Unanswered for 10 s: the flow failed, once, and pings stop until a new flow is kept.
    line.handle_timeout(second + Duration::from_secs(10), &mut entropy);
    assert_eq!(next_event(&mut line), Some(SipEvent::FlowFailed));
    assert!(!line.flow_watched());
}

#[test]
fn a_registrar_without_outbound_gets_no_flow_pings() {
    let (mut line, start, mut entropy) = line(true);
    registered(&mut line, start, &mut entropy, false);
    assert!(!line.flow_watched());
    line.handle_timeout(start + Duration::from_secs(200), &mut entropy);
    while let Some(event) = next_event(&mut line) {
        assert!(
            !matches!(event, SipEvent::FlowPing { .. } | SipEvent::FlowFailed),
            "{event:?}"
        );
    }
}

/// On a stream the dialog's contact is the GRUU (reachable over whichever flow is current); on
/// UDP our own address, which stays routable when the registrar forgets us.
#[test]
fn calls_on_a_stream_carry_the_gruu_and_on_udp_the_address() {
    for reliable in [true, false] {
        let (mut line, start, mut entropy) = line(reliable);
        registered(&mut line, start, &mut entropy, true);
        let target = sip_core::Uri::parse("sip:1002@127.0.0.1").expect("uri");
        line.dial(
            "c1".into(),
            vec![target],
            "v=0\r\n".into(),
            start,
            &mut entropy,
        );
        let invite = sent(&mut line);
        let contact = invite.headers.get("Contact").expect("a contact");
        if reliable {
            assert_eq!(contact, format!("<{GRUU}>"));
        } else {
            assert!(contact.contains("127.0.0.1:40000"), "{contact}");
        }
    }
}

/// A new connection: the flow is confirmed anew (no pings until the registrar keeps it) while
/// the GRUU, which names the instance, stays the calls' contact.
#[test]
fn a_rebind_waits_for_the_registrar_before_pinging_the_new_flow() {
    let (mut line, start, mut entropy) = line(true);
    registered(&mut line, start, &mut entropy, true);
    let server: SocketAddr = "127.0.0.1:5060".parse().expect("address");
    let mut config = LineConfig::demo(server);
    config.sip_instance = Some(INSTANCE.into());
    let local: SocketAddr = "127.0.0.1:40001".parse().expect("address");
    let later = start + Duration::from_secs(5);
    line.rebind(
        &config,
        local,
        "TCP",
        true,
        &Default::default(),
        later,
        &mut entropy,
    );
    assert!(!line.flow_watched());
    let register = sent(&mut line);
    assert!(
        register
            .headers
            .get("Contact")
            .is_some_and(|c| c.contains("127.0.0.1:40001") && c.contains(INSTANCE)),
        "{register:?}"
    );
    let mut ok = Response::to_request(&register, 200, Some("r2"));
    ok.headers.push(
        "Contact",
        format!(
            "{};pub-gruu=\"{GRUU}\"",
            register.headers.get("Contact").unwrap_or("")
        ),
    );
    ok.headers.push("Require", "outbound");
    line.handle_message(Message::Response(ok), later, &mut entropy);
    assert!(line.flow_watched());
    let target = sip_core::Uri::parse("sip:1002@127.0.0.1").expect("uri");
    line.dial(
        "c1".into(),
        vec![target],
        "v=0\r\n".into(),
        later,
        &mut entropy,
    );
    assert_eq!(
        sent(&mut line).headers.get("Contact"),
        Some(format!("<{GRUU}>").as_str())
    );
}

/// A connection that drops while a ping waits takes its flow along: no `FlowFailed` for a flow
/// already replaced. A move to another server forgets the GRUU it did not issue.
#[test]
fn a_dropped_connection_forgets_its_flow_and_a_new_server_the_gruu() {
    let (mut line, at, mut entropy) = pinging(true);
    line.forget_flow();
    line.handle_timeout(at + Duration::from_secs(30), &mut entropy);
    while let Some(event) = next_event(&mut line) {
        assert_ne!(event, SipEvent::FlowFailed);
    }
    line.forget_gruu();
    let target = sip_core::Uri::parse("sip:1002@127.0.0.1").expect("uri");
    line.dial(
        "c1".into(),
        vec![target],
        "v=0\r\n".into(),
        at,
        &mut entropy,
    );
    let invite = sent(&mut line);
    let contact = invite.headers.get("Contact").expect("a contact");
    assert!(
        contact.contains("127.0.0.1:40000") && !contact.contains("gr="),
        "{contact}"
    );
}

/// An edge that confirms outbound but never answers a ping is not a dead flow: pings stop, the
/// line stays connected, and the next refresh does not start them again.
#[test]
fn an_edge_that_never_answers_keepalives_is_not_pinged_again() {
    let (mut line, at, mut entropy) = pinging(true);
    line.handle_timeout(at + Duration::from_secs(10), &mut entropy);
    assert_eq!(next_event(&mut line), None, "not a failure");
    assert!(!line.flow_watched());
    // The refresh's answer still says outbound.
    let refresh_at = line.poll_timeout().expect("a refresh");
    line.handle_timeout(refresh_at, &mut entropy);
    registered(&mut line, refresh_at, &mut entropy, true);
    assert!(!line.flow_watched());
}
