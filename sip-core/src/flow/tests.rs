use std::time::{Duration, Instant};

use std::net::SocketAddr;

use super::stun::{binding_request, binding_response, is_stun};
use super::{FlowAction, FlowKeepalive, PONG_WITHIN, Pong, PongOutcome};
use crate::registration::Entropy;

struct Counter(u32);

impl Entropy for Counter {
    fn token(&mut self) -> String {
        self.0 += 1;
        format!("t{}", self.0)
    }
}

fn ping(action: Option<FlowAction>) -> [u8; 12] {
    match action {
        Some(FlowAction::Ping { transaction }) => transaction,
        other => panic!("expected a ping, got {other:?}"),
    }
}

#[test]
fn a_stream_pings_within_80_to_100_percent_of_the_flow_timer_and_fails_10_s_after_an_unanswered_ping()
 {
    let start = Instant::now();
    let mut entropy = Counter(0);
    let mut flow = FlowKeepalive::new(true, Some(20), start, &mut entropy);
    let first = flow.poll_timeout() - start;
    assert!(
        (Duration::from_secs(16)..=Duration::from_secs(20)).contains(&first),
        "first ping after {first:?}"
    );
    assert_eq!(
        flow.handle_timeout(start + first - Duration::from_millis(1), &mut entropy),
        None
    );
    let at = start + first;
    ping(flow.handle_timeout(at, &mut entropy));
    assert!(flow.is_waiting());
    // Answered: the next ping is one interval after the pong.
    assert_eq!(
        flow.on_pong(Pong::Stream, at + Duration::from_millis(3), &mut entropy),
        PongOutcome::Answered
    );
    assert!(!flow.is_waiting());
    let next = flow.poll_timeout() - (at + Duration::from_millis(3));
    assert!(
        (Duration::from_secs(16)..=Duration::from_secs(20)).contains(&next),
        "{next:?}"
    );
    // Unanswered after an answered one: nothing more is sent, and the flow fails exactly 10 s
    // after the ping.
    let at = flow.poll_timeout();
    ping(flow.handle_timeout(at, &mut entropy));
    assert_eq!(flow.poll_timeout(), at + PONG_WITHIN);
    assert_eq!(
        flow.handle_timeout(at + Duration::from_secs(9), &mut entropy),
        None
    );
    assert_eq!(
        flow.handle_timeout(at + PONG_WITHIN, &mut entropy),
        Some(FlowAction::Failed)
    );
    assert!(!flow.is_waiting());
}

#[test]
fn without_a_flow_timer_the_rfc_intervals_apply() {
    let start = Instant::now();
    let mut entropy = Counter(0);
    for seed in 0..50 {
        entropy.0 = seed * 7;
        let stream = FlowKeepalive::new(true, None, start, &mut entropy).poll_timeout() - start;
        assert!(
            (Duration::from_secs(95)..=Duration::from_secs(120)).contains(&stream),
            "{stream:?}"
        );
        let udp = FlowKeepalive::new(false, Some(0), start, &mut entropy).poll_timeout() - start;
        assert!(
            (Duration::from_secs(24)..=Duration::from_secs(29)).contains(&udp),
            "{udp:?}"
        );
    }
}

#[test]
fn udp_retransmits_the_stun_ping_like_rfc_5389_and_fails_after_39_5_s() {
    let start = Instant::now();
    let mut entropy = Counter(0);
    let mut flow = FlowKeepalive::new(false, Some(25), start, &mut entropy);
    let at = flow.poll_timeout();
    let answered = ping(flow.handle_timeout(at, &mut entropy));
    let pong = Pong::Stun {
        transaction: answered,
        mapped: None,
    };
    assert_eq!(flow.on_pong(pong, at, &mut entropy), PongOutcome::Answered);
    let first = flow.poll_timeout();
    let id = ping(flow.handle_timeout(first, &mut entropy));
    let mut sent_at = vec![Duration::ZERO];
    loop {
        let at = flow.poll_timeout();
        match flow.handle_timeout(at, &mut entropy) {
            Some(FlowAction::Ping { transaction }) => {
                assert_eq!(transaction, id, "a retransmission keeps its transaction id");
                sent_at.push(at - first);
            }
            Some(FlowAction::Failed) => {
                assert_eq!(at - first, Duration::from_millis(39_500));
                break;
            }
            other => panic!("{other:?} at {:?}", at - first),
        }
    }
    let millis: Vec<u128> = sent_at.iter().map(Duration::as_millis).collect();
    assert_eq!(millis, [0, 500, 1500, 3500, 7500, 15_500, 31_500]);
}

#[test]
fn only_the_answer_to_our_ping_is_a_pong() {
    let start = Instant::now();
    let mut entropy = Counter(0);
    let mut flow = FlowKeepalive::new(false, Some(25), start, &mut entropy);
    let stun = |transaction| Pong::Stun {
        transaction,
        mapped: None,
    };
    // A pong with nothing in flight changes nothing.
    assert_eq!(
        flow.on_pong(stun([9; 12]), start, &mut entropy),
        PongOutcome::Ignored
    );
    let at = flow.poll_timeout();
    let id = ping(flow.handle_timeout(at, &mut entropy));
    let mut other = id;
    other[0] ^= 1;
    assert_eq!(
        flow.on_pong(stun(other), at, &mut entropy),
        PongOutcome::Ignored
    );
    assert_eq!(
        flow.on_pong(Pong::Stream, at, &mut entropy),
        PongOutcome::Ignored,
        "a CRLF is no pong on UDP"
    );
    assert!(
        flow.is_waiting(),
        "a response to another transaction is not our pong"
    );
    assert_eq!(
        flow.on_pong(stun(id), at + Duration::from_millis(1), &mut entropy),
        PongOutcome::Answered
    );
    assert!(!flow.is_waiting());
    // Each ping has its own transaction id.
    let next = ping(flow.handle_timeout(flow.poll_timeout(), &mut entropy));
    assert_ne!(next, id);
}

#[test]
fn stun_binding_messages() {
    let id = *b"0123456789ab";
    let request = binding_request(id);
    assert_eq!(
        &request[..8],
        &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42]
    );
    assert_eq!(&request[8..], &id);
    assert!(is_stun(&request));
    assert_eq!(
        binding_response(&request),
        None,
        "a request is not a response"
    );
    // A success response with XOR-MAPPED-ADDRESS 192.0.2.1:32853 (RFC 5769 §2.2's sample
    // address), after an unknown attribute with padding.
    let mut response = request.to_vec();
    response[..4].copy_from_slice(&[0x01, 0x01, 0x00, 0x14]);
    response.extend_from_slice(&[0x80, 0x22, 0x00, 0x03, b'a', b'b', b'c', 0]);
    response.extend_from_slice(&[
        0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xA1, 0x47, 0xE1, 0x12, 0xA6, 0x43,
    ]);
    let mapped: SocketAddr = "192.0.2.1:32853".parse().expect("address");
    assert_eq!(binding_response(&response), Some((id, true, Some(mapped))));
    // IPv6 (RFC 5769 §2.3): 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
    let v6_id = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];
    let mut v6 = binding_request(v6_id).to_vec();
    v6[..4].copy_from_slice(&[0x01, 0x01, 0x00, 0x18]);
    v6.extend_from_slice(&[
        0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1,
        0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    ]);
    let mapped6: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .expect("address");
    assert_eq!(binding_response(&v6), Some((v6_id, true, Some(mapped6))));
    // An error response is recognized as one; a length that does not fit, a truncated
    // attribute, and SIP are not responses at all.
    let mut error = request.to_vec();
    error[..2].copy_from_slice(&[0x01, 0x11]);
    assert_eq!(binding_response(&error), Some((id, false, None)));
    assert_eq!(binding_response(&response[..28]), None);
    let mut truncated = request.to_vec();
    truncated[..4].copy_from_slice(&[0x01, 0x01, 0x00, 0x04]);
    truncated.extend_from_slice(&[0x00, 0x20, 0x00, 0x08]);
    assert_eq!(binding_response(&truncated), Some((id, true, None)));
    assert!(!is_stun(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\n"
    ));
    assert!(!is_stun(b"\r\n\r\n"));
    assert_eq!(binding_response(&[]), None);
}

/// A first ping nobody answers means the edge does not do keepalives (not a dead flow); once
/// the flow has answered, silence is death.
#[test]
fn a_flow_that_never_answered_is_unanswered_not_failed() {
    let start = Instant::now();
    let mut entropy = Counter(0);
    let mut flow = FlowKeepalive::new(true, Some(20), start, &mut entropy);
    let at = flow.poll_timeout();
    ping(flow.handle_timeout(at, &mut entropy));
    assert_eq!(
        flow.handle_timeout(at + PONG_WITHIN, &mut entropy),
        Some(FlowAction::Unanswered)
    );
}

/// Whatever the registrar's Flow-Timer, we ping at least as often as the RFC's intervals and
/// at most every 5 s.
#[test]
fn the_flow_timer_is_bounded() {
    let start = Instant::now();
    let mut entropy = Counter(0);
    for (reliable, timer, low, high) in [
        (true, u32::MAX, 96, 120),
        (false, 120, 23, 29),
        (true, 1, 4, 5),
        (false, 3, 4, 5),
    ] {
        let first =
            FlowKeepalive::new(reliable, Some(timer), start, &mut entropy).poll_timeout() - start;
        assert!(
            (Duration::from_secs(low)..=Duration::from_secs(high)).contains(&first),
            "Flow-Timer {timer}: first ping after {first:?}"
        );
    }
}

/// RFC 5626 §4.4.2: a STUN answer naming another address for us (a NAT rebinding) or a STUN
/// error means the flow failed.
#[test]
fn a_changed_mapped_address_or_a_stun_error_fails_the_flow() {
    let start = Instant::now();
    let mut entropy = Counter(0);
    let first: SocketAddr = "192.0.2.1:5060".parse().expect("address");
    let rebound: SocketAddr = "192.0.2.1:6060".parse().expect("address");
    let mut flow = FlowKeepalive::new(false, Some(25), start, &mut entropy);
    let mut at = start;
    for (mapped, outcome) in [
        (Some(first), PongOutcome::Answered),
        (None, PongOutcome::Answered),
        (Some(first), PongOutcome::Answered),
        (Some(rebound), PongOutcome::Failed),
    ] {
        at = flow.poll_timeout();
        let transaction = ping(flow.handle_timeout(at, &mut entropy));
        let pong = Pong::Stun {
            transaction,
            mapped,
        };
        assert_eq!(flow.on_pong(pong, at, &mut entropy), outcome, "{mapped:?}");
    }
    assert!(!flow.is_waiting());
    let mut flow = FlowKeepalive::new(false, Some(25), at, &mut entropy);
    let transaction = ping(flow.handle_timeout(flow.poll_timeout(), &mut entropy));
    assert_eq!(
        flow.on_pong(Pong::StunError { transaction }, at, &mut entropy),
        PongOutcome::Failed
    );
}

/// After a suspend the overdue retransmission goes out once, timed from the wake-up, not as a
/// burst of every one missed.
#[test]
fn a_retransmission_after_a_suspend_is_timed_from_the_wake_up() {
    let start = Instant::now();
    let mut entropy = Counter(0);
    let mut flow = FlowKeepalive::new(false, Some(25), start, &mut entropy);
    let at = flow.poll_timeout();
    ping(flow.handle_timeout(at, &mut entropy));
    let woke = at + Duration::from_secs(30);
    ping(flow.handle_timeout(woke, &mut entropy));
    assert_eq!(flow.poll_timeout(), woke + Duration::from_secs(1));
    assert_eq!(flow.handle_timeout(woke, &mut entropy), None);
}
