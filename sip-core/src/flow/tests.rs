use std::time::{Duration, Instant};

use super::stun::{binding_request, binding_success, is_stun};
use super::{FlowAction, FlowKeepalive, PONG_WITHIN};
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
    assert!(flow.on_pong(None, at + Duration::from_millis(3), &mut entropy));
    assert!(!flow.is_waiting());
    let next = flow.poll_timeout() - (at + Duration::from_millis(3));
    assert!(
        (Duration::from_secs(16)..=Duration::from_secs(20)).contains(&next),
        "{next:?}"
    );
    // Unanswered: nothing more is sent, and the flow fails exactly 10 s after the ping.
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
            None => panic!("woken for nothing at {:?}", at - first),
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
    // A pong with nothing in flight changes nothing.
    assert!(!flow.on_pong(Some([9; 12]), start, &mut entropy));
    let at = flow.poll_timeout();
    let id = ping(flow.handle_timeout(at, &mut entropy));
    let mut other = id;
    other[0] ^= 1;
    assert!(!flow.on_pong(Some(other), at, &mut entropy));
    assert!(
        flow.is_waiting(),
        "a response to another transaction is not our pong"
    );
    assert!(flow.on_pong(Some(id), at + Duration::from_millis(1), &mut entropy));
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
        binding_success(&request),
        None,
        "a request is not a response"
    );
    // A success response with an XOR-MAPPED-ADDRESS (12 bytes of attribute).
    let mut response = request.to_vec();
    response[..4].copy_from_slice(&[0x01, 0x01, 0x00, 0x0C]);
    response.extend_from_slice(&[
        0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xA1, 0x47, 0x5E, 0x12, 0xA4, 0x43,
    ]);
    assert_eq!(binding_success(&response), Some(id));
    // A length that does not fit, an error response, and SIP are not.
    assert_eq!(binding_success(&response[..28]), None);
    let mut error = response.clone();
    error[..2].copy_from_slice(&[0x01, 0x11]);
    assert_eq!(binding_success(&error), None);
    assert!(!is_stun(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\n"
    ));
    assert!(!is_stun(b"\r\n\r\n"));
    assert_eq!(binding_success(&[]), None);
}
