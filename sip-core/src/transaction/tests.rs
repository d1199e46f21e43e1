//! Every timer of both client transaction kinds, on a virtual clock.

use std::time::{Duration, Instant};

use super::*;
use crate::message::{Message, Uri, parse_datagram};

fn request(method: &str) -> Request {
    let text = format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n\
         Call-ID: call-1\r\nCSeq: 7 {method}\r\nRoute: <sip:127.0.0.1:5060;lr>\r\nContent-Length: 0\r\n\r\n"
    );
    match parse_datagram(text.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("test request: {other:?}"),
    }
}

fn response(to: &Request, status: u16) -> Response {
    Response::to_request(to, status, Some("b2"))
}

/// Runs the transaction's timers up to `until`, returning when each transmission happened.
fn run(t: &mut ClientTransaction, start: Instant, until: Instant) -> Vec<Duration> {
    let mut sent = Vec::new();
    while t.poll_transmit().is_some() {
        sent.push(Duration::ZERO);
    }
    while let Some(at) = t.poll_timeout() {
        if at > until {
            break;
        }
        t.handle_timeout(at);
        while t.poll_transmit().is_some() {
            sent.push(at - start);
        }
    }
    sent
}

fn ms(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|&m| Duration::from_millis(m)).collect()
}

#[test]
fn non_invite_over_udp_retransmits_with_backoff_capped_at_t2_then_times_out() {
    let start = Instant::now();
    let mut t = ClientTransaction::start(request("REGISTER"), false, Timers::default(), start);
    let sent = run(&mut t, start, start + Duration::from_secs(40));
    // Timer E: 0.5, 1, 2, 4, 4, … seconds apart; Timer F at 64·T1 = 32 s.
    assert_eq!(
        sent,
        ms(&[
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ])
    );
    assert_eq!(t.poll_event(), Some(TransactionEvent::Timeout));
    assert!(t.is_terminated());
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn non_invite_over_tcp_never_retransmits() {
    let start = Instant::now();
    let mut t = ClientTransaction::start(request("OPTIONS"), true, Timers::default(), start);
    assert_eq!(
        run(&mut t, start, start + Duration::from_secs(40)),
        ms(&[0])
    );
    assert_eq!(t.poll_event(), Some(TransactionEvent::Timeout));
}

#[test]
fn non_invite_provisional_slows_to_t2_then_final_completes_and_absorbs_retransmissions() {
    let start = Instant::now();
    let req = request("REGISTER");
    let mut t = ClientTransaction::start(req.clone(), false, Timers::default(), start);
    assert!(t.poll_transmit().is_some());
    t.handle_response(response(&req, 100), start + Duration::from_millis(100));
    assert!(matches!(t.poll_event(), Some(TransactionEvent::Provisional(r)) if r.status == 100));
    assert_eq!(t.state(), State::Proceeding);
    // The pending Timer E at 0.5 s still fires; after it the interval is T2.
    assert_eq!(
        run(&mut t, start, start + Duration::from_millis(4600)),
        ms(&[500, 4500])
    );
    let done = start + Duration::from_secs(5);
    t.handle_response(response(&req, 200), done);
    assert!(matches!(t.poll_event(), Some(TransactionEvent::Final(r)) if r.status == 200));
    assert_eq!(t.state(), State::Completed);
    t.handle_response(response(&req, 200), done + Duration::from_secs(1));
    assert_eq!(
        t.poll_event(),
        None,
        "retransmitted final response absorbed"
    );
    assert_eq!(
        t.poll_timeout(),
        Some(done + Duration::from_secs(5)),
        "Timer K = T4"
    );
    t.handle_timeout(done + Duration::from_secs(5));
    assert!(t.is_terminated());
}

#[test]
fn invite_over_udp_doubles_without_cap_and_stops_on_provisional() {
    let start = Instant::now();
    let req = request("INVITE");
    let mut t = ClientTransaction::start(req.clone(), false, Timers::default(), start);
    // Timer A: 0.5, 1, 2, 4 s apart.
    assert_eq!(
        run(&mut t, start, start + Duration::from_millis(7600)),
        ms(&[0, 500, 1500, 3500, 7500])
    );
    t.handle_response(response(&req, 180), start + Duration::from_secs(8));
    assert!(matches!(t.poll_event(), Some(TransactionEvent::Provisional(r)) if r.status == 180));
    assert_eq!(
        run(&mut t, start, start + Duration::from_secs(31)),
        Vec::<Duration>::new(),
        "no retransmission after 1xx"
    );
}

#[test]
fn invite_timer_b_times_out() {
    let start = Instant::now();
    let mut t = ClientTransaction::start(request("INVITE"), true, Timers::default(), start);
    run(&mut t, start, start + Duration::from_secs(33));
    assert_eq!(t.poll_event(), Some(TransactionEvent::Timeout));
}

#[test]
fn invite_error_response_is_acked_again_for_each_retransmission() {
    let start = Instant::now();
    let req = request("INVITE");
    let mut t = ClientTransaction::start(req.clone(), false, Timers::default(), start);
    t.poll_transmit();
    let busy = response(&req, 486);
    t.handle_response(busy.clone(), start + Duration::from_millis(200));
    assert!(matches!(t.poll_event(), Some(TransactionEvent::Final(r)) if r.status == 486));
    let ack = t.poll_transmit().expect("ACK sent");
    let Ok(Message::Request(ack)) = parse_datagram(&ack) else {
        panic!("ACK parses")
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, Uri::parse("sip:bob@127.0.0.1").expect("uri"));
    let ack_message = Message::Request(ack.clone());
    assert_eq!(
        ack_message.cseq().map(|c| (c.seq, c.method)),
        Some((7, Method::Ack))
    );
    assert_eq!(
        ack_message
            .to()
            .and_then(|t| t.tag().map(str::to_owned))
            .as_deref(),
        Some("b2"),
        "To tag from the response"
    );
    assert_eq!(
        ack_message
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .as_deref(),
        Some("z9hG4bKabc"),
        "same branch as the INVITE"
    );
    assert_eq!(ack.headers.get("Route"), Some("<sip:127.0.0.1:5060;lr>"));
    t.handle_response(busy, start + Duration::from_secs(1));
    assert!(
        t.poll_transmit().is_some(),
        "retransmitted 486 gets the ACK again"
    );
    assert_eq!(t.poll_event(), None);
    assert_eq!(
        t.poll_timeout(),
        Some(start + Duration::from_millis(32_200)),
        "Timer D = 32 s on UDP"
    );
}

#[test]
fn invite_2xx_is_accepted_and_retransmissions_reach_the_dialog() {
    let start = Instant::now();
    let req = request("INVITE");
    let mut t = ClientTransaction::start(req.clone(), true, Timers::default(), start);
    t.poll_transmit();
    t.handle_response(response(&req, 200), start);
    assert!(matches!(t.poll_event(), Some(TransactionEvent::Final(r)) if r.status == 200));
    assert_eq!(
        t.poll_transmit(),
        None,
        "the dialog, not the transaction, ACKs a 2xx"
    );
    assert_eq!(t.state(), State::Accepted);
    t.handle_response(response(&req, 200), start + Duration::from_secs(1));
    assert!(
        matches!(t.poll_event(), Some(TransactionEvent::Final(_))),
        "re-ACK needed"
    );
    t.handle_timeout(start + Duration::from_secs(32));
    assert!(t.is_terminated(), "Timer M");
}

#[test]
fn responses_match_by_branch_and_method_and_transport_errors_end_it() {
    let start = Instant::now();
    let req = request("REGISTER");
    let mut t = ClientTransaction::start(req.clone(), false, Timers::default(), start);
    assert!(t.matches(&response(&req, 200)));
    let mut other = response(&req, 200);
    other
        .headers
        .set("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKother");
    assert!(!t.matches(&other));
    let mut wrong_method = response(&req, 200);
    wrong_method.headers.set("CSeq", "7 INVITE");
    assert!(!t.matches(&wrong_method));
    t.handle_transport_error();
    assert_eq!(t.poll_event(), Some(TransactionEvent::TransportError));
    assert!(t.is_terminated());
}

/// RFC 3261 §17.1.1.2: once a provisional response arrived, an INVITE waits for its final
/// response as long as it takes (a callee ringing for a minute): Timer B no longer runs.
#[test]
fn a_ringing_invite_waits_past_timer_b() {
    let start = Instant::now();
    let invite = request("INVITE");
    let mut t = ClientTransaction::start(invite.clone(), false, Timers::default(), start);
    while t.poll_transmit().is_some() {}
    t.handle_response(response(&invite, 180), start + Duration::from_millis(100));
    assert!(matches!(
        t.poll_event(),
        Some(TransactionEvent::Provisional(_))
    ));
    assert_eq!(t.poll_timeout(), None, "nothing left to time");
    let late = start + Duration::from_secs(90);
    t.handle_timeout(late);
    assert_eq!(t.poll_event(), None);
    t.handle_response(response(&invite, 200), late);
    assert!(matches!(t.poll_event(), Some(TransactionEvent::Final(r)) if r.status == 200));
}
