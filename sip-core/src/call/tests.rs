//! Two sans-IO calls talking to each other over a simulated UDP network on a virtual clock.

use std::time::{Duration, Instant};

use super::*;
use crate::message::parse_datagram;

struct Counter(u32);
impl Entropy for Counter {
    fn token(&mut self) -> String {
        self.0 += 1;
        format!("t{}", self.0)
    }
}

fn party(user: &str, port: u16) -> LocalParty {
    LocalParty {
        aor: Uri::parse(&format!("sip:{user}@127.0.0.1")).expect("aor"),
        contact: Uri::parse(&format!("sip:{user}@127.0.0.1:{port}")).expect("contact"),
        transport: "UDP".into(),
        sent_by: format!("127.0.0.1:{port}"),
        reliable: false,
        username: user.into(),
        password: format!("secret{user}"),
        user_agent: "test".into(),
        session_interval: None,
    }
}

fn drain(call: &mut Call) -> Vec<Message> {
    std::iter::from_fn(|| call.poll_transmit())
        .map(|b| parse_datagram(&b).expect("we send valid SIP"))
        .collect()
}

fn events(call: &mut Call) -> Vec<CallEvent> {
    std::iter::from_fn(|| call.poll_event()).collect()
}

fn statuses(messages: &[Message]) -> Vec<u16> {
    messages
        .iter()
        .filter_map(|m| {
            if let Message::Response(r) = m {
                Some(r.status)
            } else {
                None
            }
        })
        .collect()
}

/// Alice calls Bob; returns both with Bob ringing.
fn ringing(e: &mut Counter, now: Instant) -> (Call, Call) {
    let target = Uri::parse("sip:1002@127.0.0.1:5062").expect("target");
    let mut alice = Call::outgoing(
        party("1001", 5061),
        target,
        "v=0 alice".into(),
        Timers::default(),
        now,
        e,
    );
    let invite = drain(&mut alice).remove(0);
    let Message::Request(invite) = invite else {
        panic!("INVITE")
    };
    assert_eq!(invite.method, Method::Invite);
    let mut bob =
        Call::incoming(party("1002", 5062), invite, Timers::default(), e).expect("valid INVITE");
    assert_eq!(bob.remote_sdp(), Some("v=0 alice"));
    let provisional = drain(&mut bob);
    assert_eq!(statuses(&provisional), [100, 180]);
    for message in provisional {
        alice.handle_message(message, now, e);
    }
    assert_eq!(events(&mut alice), [CallEvent::Ringing]);
    assert_eq!(alice.state(), CallState::Ringing);
    (alice, bob)
}

#[test]
fn answered_call_then_caller_hangs_up() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, mut bob) = ringing(&mut e, now);
    bob.answer("v=0 bob".into(), now);
    let ok = drain(&mut bob);
    assert_eq!(statuses(&ok), [200]);
    for m in ok {
        alice.handle_message(m, now, &mut e);
    }
    assert_eq!(
        events(&mut alice),
        [CallEvent::Established {
            remote_sdp: "v=0 bob".into()
        }]
    );
    let ack = drain(&mut alice);
    assert!(
        matches!(&ack[..], [Message::Request(r)] if r.method == Method::Ack && r.uri.port == Some(5062)),
        "ACK to Bob's Contact"
    );
    for m in ack {
        bob.handle_message(m, now, &mut e);
    }
    assert_eq!(
        events(&mut bob),
        [CallEvent::Established {
            remote_sdp: "v=0 alice".into()
        }]
    );
    assert_eq!(
        bob.poll_timeout(),
        None,
        "no more 200 retransmissions once ACKed"
    );

    alice.hangup(now, &mut e);
    let bye = drain(&mut alice);
    let Message::Request(b) = &bye[0] else {
        panic!("BYE")
    };
    assert_eq!(b.method, Method::Bye);
    assert_eq!(Message::Request(b.clone()).cseq().map(|c| c.seq), Some(2));
    for m in bye {
        bob.handle_message(m, now, &mut e);
    }
    assert_eq!(events(&mut bob), [CallEvent::Ended(EndReason::Remote)]);
    for m in drain(&mut bob) {
        alice.handle_message(m, now, &mut e);
    }
    assert_eq!(events(&mut alice), [CallEvent::Ended(EndReason::Local)]);
}

#[test]
fn lost_ack_is_recovered_by_retransmitting_the_200() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, mut bob) = ringing(&mut e, now);
    bob.answer("v=0 bob".into(), now);
    for m in drain(&mut bob) {
        alice.handle_message(m, now, &mut e);
    }
    drop(drain(&mut alice)); // the ACK is lost
    assert_eq!(
        bob.poll_timeout(),
        Some(now + Duration::from_millis(500)),
        "Timer G = T1"
    );
    bob.handle_timeout(now + Duration::from_millis(500), &mut e);
    let again = drain(&mut bob);
    assert_eq!(statuses(&again), [200]);
    for m in again {
        alice.handle_message(m, now + Duration::from_millis(500), &mut e);
    }
    let ack = drain(&mut alice);
    assert_eq!(ack.len(), 1, "Alice re-ACKs the retransmitted 200");
    assert_eq!(
        events(&mut alice).len(),
        1,
        "but reports the call only once"
    );
    for m in ack {
        bob.handle_message(m, now + Duration::from_millis(500), &mut e);
    }
    assert!(matches!(
        events(&mut bob)[..],
        [CallEvent::Established { .. }]
    ));
}

#[test]
fn no_ack_at_all_ends_the_call_after_timer_h() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (_alice, mut bob) = ringing(&mut e, now);
    bob.answer("v=0 bob".into(), now);
    let mut sent_200 = 0;
    while let Some(at) = bob.poll_timeout() {
        sent_200 += statuses(&drain(&mut bob))
            .iter()
            .filter(|s| **s == 200)
            .count();
        if at > now + Duration::from_secs(40) {
            break;
        }
        bob.handle_timeout(at, &mut e);
        if bob.state() == CallState::Ended {
            break;
        }
    }
    assert_eq!(
        events(&mut bob),
        [CallEvent::Ended(EndReason::Failed {
            reason: "no ACK for our answer".into()
        })]
    );
    assert!(
        sent_200 >= 9,
        "retransmitted with backoff capped at T2: {sent_200}"
    );
    assert!(
        drain(&mut bob)
            .iter()
            .any(|m| matches!(m, Message::Request(r) if r.method == Method::Bye))
    );
}

#[test]
fn busy_callee_rejects() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, mut bob) = ringing(&mut e, now);
    bob.reject(486, now);
    assert_eq!(events(&mut bob), [CallEvent::Ended(EndReason::Declined)]);
    for m in drain(&mut bob) {
        alice.handle_message(m, now, &mut e);
    }
    assert_eq!(
        events(&mut alice),
        [CallEvent::Ended(EndReason::Rejected {
            status: 486,
            reason: "Busy Here".into()
        })]
    );
    let ack = drain(&mut alice);
    assert!(
        matches!(&ack[..], [Message::Request(r)] if r.method == Method::Ack),
        "the transaction ACKs the 486"
    );
    for m in ack {
        bob.handle_message(m, now, &mut e);
    }
    assert_eq!(bob.poll_transmit(), None);
}

#[test]
fn caller_cancels_before_answer() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, mut bob) = ringing(&mut e, now);
    alice.hangup(now, &mut e);
    let cancel = drain(&mut alice);
    assert!(matches!(&cancel[..], [Message::Request(r)] if r.method == Method::Cancel));
    for m in cancel {
        bob.handle_message(m, now, &mut e);
    }
    assert_eq!(events(&mut bob), [CallEvent::Ended(EndReason::Cancelled)]);
    let answers = drain(&mut bob);
    assert_eq!(
        statuses(&answers),
        [200, 487],
        "200 for the CANCEL, 487 for the INVITE"
    );
    for m in answers {
        alice.handle_message(m, now, &mut e);
    }
    assert_eq!(events(&mut alice), [CallEvent::Ended(EndReason::Local)]);
}

#[test]
fn proxy_challenge_is_answered_once() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let target = Uri::parse("sip:1002@127.0.0.1:5060").expect("target");
    let mut alice = Call::outgoing(
        party("1001", 5061),
        target,
        "v=0".into(),
        Timers::default(),
        now,
        &mut e,
    );
    let Message::Request(invite) = drain(&mut alice).remove(0) else {
        panic!()
    };
    let mut challenge = Response::to_request(&invite, 407, Some("proxy"));
    challenge.headers.push(
        "Proxy-Authenticate",
        r#"Digest realm="127.0.0.1", nonce="n", qop="auth", algorithm=SHA-256"#,
    );
    alice.handle_message(Message::Response(challenge.clone()), now, &mut e);
    let sent = drain(&mut alice);
    assert!(
        matches!(&sent[0], Message::Request(r) if r.method == Method::Ack),
        "the 407 is ACKed"
    );
    let Message::Request(second) = &sent[1] else {
        panic!("second INVITE")
    };
    assert!(
        second
            .headers
            .get("Proxy-Authorization")
            .is_some_and(|a| a.contains("algorithm=SHA-256"))
    );
    assert_eq!(
        Message::Request(second.clone()).cseq().map(|c| c.seq),
        Some(2)
    );
    let mut again = Response::to_request(second, 407, Some("proxy"));
    again.headers.push(
        "Proxy-Authenticate",
        r#"Digest realm="127.0.0.1", nonce="n2""#,
    );
    alice.handle_message(Message::Response(again), now, &mut e);
    assert_eq!(
        events(&mut alice),
        [CallEvent::Ended(EndReason::Rejected {
            status: 407,
            reason: "Proxy Authentication Required".into()
        })]
    );
}

#[test]
fn retransmitted_bye_gets_the_same_answer_and_reinvite_gets_our_sdp() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, mut bob) = ringing(&mut e, now);
    bob.answer("v=0 bob".into(), now);
    for m in drain(&mut bob) {
        alice.handle_message(m, now, &mut e);
    }
    for m in drain(&mut alice) {
        bob.handle_message(m, now, &mut e);
    }
    events(&mut alice);
    events(&mut bob);
    // A re-INVITE from Alice (e.g. hold) is answered with Bob's SDP.
    let mut reinvite = alice.in_dialog_request(Method::Invite, &mut e);
    reinvite.body = b"v=0 alice on hold".to_vec();
    bob.handle_message(Message::Request(reinvite), now, &mut e);
    assert_eq!(
        events(&mut bob),
        [CallEvent::RemoteSdpChanged {
            remote_sdp: "v=0 alice on hold".into()
        }]
    );
    let answer = drain(&mut bob);
    assert!(
        matches!(&answer[..], [Message::Response(r)] if r.status == 200 && r.body == b"v=0 bob")
    );
    let bye = alice.in_dialog_request(Method::Bye, &mut e);
    bob.handle_message(Message::Request(bye.clone()), now, &mut e);
    let first = drain(&mut bob);
    bob.handle_message(Message::Request(bye), now, &mut e);
    assert_eq!(drain(&mut bob), first, "same 200 for the retransmitted BYE");
    assert_eq!(events(&mut bob), [CallEvent::Ended(EndReason::Remote)]);
}

#[test]
fn hold_and_resume_by_reoffer_with_mirrored_directions() {
    use crate::sdp::{Codec, Direction, SessionDescription};
    let (mut now, mut e) = (Instant::now(), Counter(0));
    let sdp = |port, direction| {
        let mut s = SessionDescription::offer(1, "127.0.0.1", port, &[Codec::pcmu()]);
        s.audio.direction = direction;
        s.to_string()
    };
    let target = Uri::parse("sip:1002@127.0.0.1:5062").expect("target");
    let mut alice = Call::outgoing(
        party("1001", 5061),
        target,
        sdp(4000, Direction::SendRecv),
        Timers::default(),
        now,
        &mut e,
    );
    let Message::Request(invite) = drain(&mut alice).remove(0) else {
        panic!("INVITE")
    };
    let mut bob =
        Call::incoming(party("1002", 5062), invite, Timers::default(), &mut e).expect("incoming");
    drain(&mut bob);
    bob.answer(sdp(5000, Direction::SendRecv), now);
    for m in drain(&mut bob) {
        alice.handle_message(m, now, &mut e);
    }
    for m in drain(&mut alice) {
        bob.handle_message(m, now, &mut e);
    }
    events(&mut alice);
    events(&mut bob);
    // Right after setup (the INVITE transaction would linger 32 s in Timer M): hold works.
    now += Duration::from_millis(500);
    assert!(alice.reoffer(sdp(4000, Direction::SendOnly), now, &mut e));
    assert!(
        !alice.reoffer(sdp(4000, Direction::SendRecv), now, &mut e),
        "one re-INVITE at a time"
    );
    let reinvite = drain(&mut alice);
    assert!(
        matches!(&reinvite[..], [Message::Request(r)] if r.method == Method::Invite && r.headers.cseq().map(|c| c.seq) == Some(2))
    );
    for m in reinvite {
        bob.handle_message(m, now, &mut e);
    }
    assert!(matches!(
        &events(&mut bob)[..],
        [CallEvent::RemoteSdpChanged { .. }]
    ));
    let ok = drain(&mut bob);
    let Message::Response(ok_response) = &ok[0] else {
        panic!("200")
    };
    let answer =
        SessionDescription::parse(&String::from_utf8_lossy(&ok_response.body)).expect("sdp");
    assert_eq!(
        answer.audio.direction,
        Direction::RecvOnly,
        "held: Bob only receives"
    );
    assert_eq!(answer.version, 2, "a changed answer bumps the version");
    for m in ok.clone() {
        alice.handle_message(m, now, &mut e);
    }
    assert!(
        matches!(&events(&mut alice)[..], [CallEvent::ReofferAnswered { remote_sdp }] if remote_sdp.contains("a=recvonly"))
    );
    let ack = drain(&mut alice);
    assert!(
        matches!(&ack[..], [Message::Request(r)] if r.method == Method::Ack && r.headers.cseq().map(|c| c.seq) == Some(2))
    );
    // Bob's 200 retransmitted: the same ACK again, no new event.
    for m in ok {
        alice.handle_message(m, now, &mut e);
    }
    assert_eq!(drain(&mut alice), ack);
    assert!(events(&mut alice).is_empty());
    for m in ack {
        bob.handle_message(m, now, &mut e);
    }
    // Resume; Bob refuses this one (488): the call goes on.
    assert!(alice.reoffer(sdp(4000, Direction::SendRecv), now, &mut e));
    let Message::Request(resume) = drain(&mut alice).remove(0) else {
        panic!("INVITE")
    };
    let refusal = Response::to_request(&resume, 488, Some("bobtag"));
    alice.handle_message(Message::Response(refusal), now, &mut e);
    assert_eq!(
        events(&mut alice),
        [CallEvent::ReofferFailed { status: 488 }]
    );
    assert_eq!(alice.state(), CallState::Established);
    assert!(
        matches!(&drain(&mut alice)[..], [Message::Request(r)] if r.method == Method::Ack),
        "non-2xx is ACKed by the transaction"
    );
}

/// An INVITE as a proxy would deliver it, with `extra` header lines.
fn invite_with(extra: &str) -> Request {
    let text = format!(
        "INVITE sip:1002@127.0.0.1:5062 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-conf\r\n\
         From: <sip:1001@127.0.0.1>;tag=a\r\n\
         To: <sip:1002@127.0.0.1>\r\n\
         Call-ID: conformance@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n"
    );
    match parse_datagram(text.as_bytes()) {
        Ok(Message::Request(request)) => request,
        other => panic!("a valid INVITE: {other:?}"),
    }
}

/// Issue 18, RFC 3261 §8.2.2.3: a `Require` naming an extension we lack gets 420 with
/// `Unsupported` naming it (it was answered as if the extension were there).
#[test]
fn a_required_extension_we_lack_gets_420_naming_it() {
    let mut e = Counter(0);
    let invite = invite_with("Contact: <sip:1001@127.0.0.1:5061>\r\nRequire: 100rel, foo\r\n");
    let Err(refusal) = Call::incoming(party("1002", 5062), invite, Timers::default(), &mut e)
    else {
        panic!("refused");
    };
    let Ok(Message::Response(response)) = parse_datagram(&refusal) else {
        panic!("a response")
    };
    assert_eq!(response.status, 420);
    assert_eq!(response.headers.get("Unsupported"), Some("100rel, foo"));
}

/// Issue 18: a `mailto:` (or `tel:`) contact beside a SIP one is no reason to refuse the call.
#[test]
fn a_non_sip_contact_beside_a_sip_one_is_fine() {
    let mut e = Counter(0);
    let invite = invite_with(
        "Contact: <mailto:agent@example.com>\r\nContact: <tel:+15551234>\r\nContact: <sip:1001@127.0.0.1:5061>\r\n",
    );
    let call = Call::incoming(party("1002", 5062), invite, Timers::default(), &mut e);
    assert!(
        call.as_ref()
            .is_ok_and(|c| c.dialog.remote_target.scheme == "sip"),
        "accepted, with the SIP contact as its target"
    );
    let only_tel = invite_with("Contact: <tel:+15551234>\r\n");
    assert!(
        Call::incoming(party("1002", 5062), only_tel, Timers::default(), &mut e).is_err(),
        "no SIP contact at all is still a 400"
    );
}

/// The status of a refusal `Call::incoming` returned.
fn refusal_status(invite: Request) -> (u16, Response) {
    let mut e = Counter(0);
    let Err(refusal) = Call::incoming(party("1002", 5062), invite, Timers::default(), &mut e)
    else {
        panic!("refused");
    };
    match parse_datagram(&refusal) {
        Ok(Message::Response(response)) => (response.status, response),
        other => panic!("a response: {other:?}"),
    }
}

fn with_body(content_type: &str, body: &str) -> Request {
    let mut invite = invite_with(&format!(
        "Contact: <sip:1001@127.0.0.1:5061>\r\nContent-Type: {content_type}\r\n"
    ));
    invite.body = body.as_bytes().to_vec();
    invite
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";

/// Issue 18, RFC 5621: the SDP part of a multipart INVITE is the offer; a body with no SDP we
/// can find is 415 with `Accept: application/sdp`.
#[test]
fn a_multipart_invite_offers_its_sdp_part_and_other_bodies_get_415() {
    let mut e = Counter(0);
    let body = format!(
        "--b1\r\nContent-Type: application/pidf+xml\r\n\r\n<presence/>\r\n--b1\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--b1--\r\n"
    );
    let call = Call::incoming(
        party("1002", 5062),
        with_body("multipart/mixed;boundary=b1", &body),
        Timers::default(),
        &mut e,
    )
    .expect("rings");
    assert_eq!(call.remote_sdp(), Some(SDP));
    for (content_type, body) in [
        (
            "multipart/mixed;boundary=b1",
            body.replace("application/sdp", "text/plain"),
        ),
        ("text/plain", "hello".to_owned()),
        ("multipart/mixed", body.clone()),
    ] {
        let (status, response) = refusal_status(with_body(content_type, &body));
        assert_eq!(status, 415, "{content_type}");
        assert_eq!(
            response.headers.get("Accept"),
            Some("application/sdp, multipart/mixed")
        );
        assert_eq!(response.reason, "Unsupported Media Type");
    }
}

/// Issue 18, RFC 3891 §3: two Replaces headers, or one naming no tags, are 400.
#[test]
fn two_replaces_headers_are_a_bad_request() {
    let contact = "Contact: <sip:1001@127.0.0.1:5061>\r\n";
    let replaces = "Replaces: abc@host;to-tag=1;from-tag=2\r\n";
    assert_eq!(
        refusal_status(invite_with(&format!("{contact}{replaces}{replaces}"))).0,
        400
    );
    assert_eq!(
        refusal_status(invite_with(&format!(
            "{contact}Replaces: abc@host;to-tag=1\r\n"
        )))
        .0,
        400
    );
    let mut e = Counter(0);
    let call = Call::incoming(
        party("1002", 5062),
        invite_with(&format!("{contact}{replaces}")),
        Timers::default(),
        &mut e,
    )
    .expect("one Replaces is for the line to judge");
    let ours = call.dialog.local.tag().unwrap_or_default().to_owned();
    let names_it = Replaces {
        call_id: "conformance@127.0.0.1".into(),
        to_tag: ours,
        from_tag: "a".into(),
        early_only: false,
    };
    assert!(call.is_replaced_by(&names_it));
    assert!(!call.is_replaced_by(&Replaces {
        from_tag: "other".into(),
        ..names_it
    }));
}

/// Issue 17: a call told of a new local address sends a target refresh (re-INVITE with our SDP
/// and the new Contact) from the new Via; a call not yet up only takes the new address.
#[test]
fn rebind_sends_a_target_refresh_from_the_new_address() {
    let now = Instant::now();
    let mut e = Counter(0);
    let (mut alice, mut bob) = ringing(&mut e, now);
    assert!(
        !alice.rebind(party("1001", 5061), None, now, &mut e),
        "not up yet"
    );
    bob.answer("v=0 bob".into(), now);
    for message in drain(&mut bob) {
        alice.handle_message(message, now, &mut e);
    }
    for message in drain(&mut alice) {
        bob.handle_message(message, now, &mut e);
    }
    assert_eq!(alice.state(), CallState::Established);
    events(&mut alice);
    let mut moved = party("1001", 6061);
    moved.transport = "TCP".into();
    moved.reliable = true;
    assert!(alice.rebind(moved, None, now, &mut e));
    let sent = drain(&mut alice);
    let [Message::Request(refresh)] = &sent[..] else {
        panic!("one re-INVITE: {sent:?}");
    };
    assert_eq!(refresh.method, Method::Invite);
    assert!(
        refresh
            .headers
            .get("Contact")
            .is_some_and(|c| c.contains(":6061")),
        "{refresh:?}"
    );
    assert!(
        refresh
            .headers
            .get("Via")
            .is_some_and(|v| v.starts_with("SIP/2.0/TCP 127.0.0.1:6061")),
        "{refresh:?}"
    );
    assert_eq!(refresh.body, b"v=0 alice");
    // Bob answers it with his SDP; the call goes on with nothing to report but the answer.
    bob.handle_message(Message::Request(refresh.clone()), now, &mut e);
    for message in drain(&mut bob) {
        alice.handle_message(message, now, &mut e);
    }
    assert_eq!(alice.state(), CallState::Established);
    assert!(matches!(
        &events(&mut alice)[..],
        [CallEvent::ReofferAnswered { .. }]
    ));
}

fn timed_party(user: &str, port: u16, interval: Option<u32>) -> LocalParty {
    LocalParty {
        session_interval: interval,
        ..party(user, port)
    }
}

/// Alice (session timers at `alice_timer`) calls Bob (`bob_timer`); both up at `now`.
fn established_with_timers(
    e: &mut Counter,
    now: Instant,
    alice_timer: Option<u32>,
    bob_timer: Option<u32>,
) -> (Call, Call) {
    let target = Uri::parse("sip:1002@127.0.0.1:5062").expect("target");
    let mut alice = Call::outgoing(
        timed_party("1001", 5061, alice_timer),
        target,
        "v=0 alice".into(),
        Timers::default(),
        now,
        e,
    );
    let Message::Request(invite) = drain(&mut alice).remove(0) else {
        panic!("INVITE")
    };
    let mut bob = Call::incoming(
        timed_party("1002", 5062, bob_timer),
        invite,
        Timers::default(),
        e,
    )
    .expect("valid INVITE");
    bob.answer("v=0 bob".into(), now);
    for message in drain(&mut bob) {
        alice.handle_message(message, now, e);
    }
    for message in drain(&mut alice) {
        bob.handle_message(message, now, e);
    }
    assert_eq!(
        (alice.state(), bob.state()),
        (CallState::Established, CallState::Established)
    );
    events(&mut alice);
    events(&mut bob);
    (alice, bob)
}

/// Issue 17, RFC 4028: with both sides doing timers, the caller is asked to refresh
/// (`refresher=uac`, `Require: timer`), refreshes at half the interval, and the callee's timer
/// restarts with each refresh; when the refreshes stop, the callee ends the call with `Timeout`
/// and a BYE at the interval less 32 s.
#[test]
fn session_timer_refreshes_and_expires() {
    let now = Instant::now();
    let mut e = Counter(0);
    let (mut alice, mut bob) = established_with_timers(&mut e, now, Some(120), Some(1800));
    // Bob's 200 chose Alice as refresher at her 120 s.
    assert_eq!(
        alice
            .session_timer
            .as_ref()
            .map(|t| (t.interval, t.we_refresh)),
        Some((120, true))
    );
    assert_eq!(
        bob.session_timer
            .as_ref()
            .map(|t| (t.interval, t.we_refresh)),
        Some((120, false))
    );
    // At 60 s Alice refreshes; Bob answers with the interval and Alice as refresher.
    let at = alice.poll_timeout().expect("a refresh is due");
    assert_eq!(at, now + Duration::from_secs(60));
    alice.handle_timeout(at, &mut e);
    let sent = drain(&mut alice);
    let [Message::Request(refresh)] = &sent[..] else {
        panic!("one re-INVITE: {sent:?}")
    };
    assert_eq!(
        refresh.headers.get("Session-Expires"),
        Some("120;refresher=uac")
    );
    bob.handle_message(Message::Request(refresh.clone()), at, &mut e);
    let answer = drain(&mut bob);
    let [Message::Response(ok)] = &answer[..] else {
        panic!("{answer:?}")
    };
    assert_eq!(ok.headers.get("Session-Expires"), Some("120;refresher=uac"));
    for message in answer {
        alice.handle_message(message, at, &mut e);
    }
    for ack in drain(&mut alice) {
        bob.handle_message(ack, at, &mut e);
    }
    assert_eq!(bob.poll_timeout(), Some(at + Duration::from_secs(88)));
    // Alice vanishes: her next refresh never arrives. Bob gives up at 88 s after the last one.
    let expiry = at + Duration::from_secs(88);
    bob.handle_timeout(expiry - Duration::from_millis(1), &mut e);
    assert_eq!(bob.state(), CallState::Established);
    bob.handle_timeout(expiry, &mut e);
    assert_eq!(
        events(&mut bob),
        [CallEvent::Ended(EndReason::Timeout {
            reason: "the session timer expired".into()
        })]
    );
    assert!(
        matches!(&drain(&mut bob)[..], [Message::Request(r)] if r.method == Method::Bye),
        "a BYE in case Alice still hears"
    );
}

/// Issue 17: a callee without session timers leaves us refreshing at our interval; a refresh
/// nobody answers (the far end vanished) ends the call with `Timeout` after Timer B.
#[test]
fn a_refresh_nobody_answers_ends_the_call() {
    let now = Instant::now();
    let mut e = Counter(0);
    let (mut alice, _bob) = established_with_timers(&mut e, now, Some(90), None);
    assert_eq!(
        alice
            .session_timer
            .as_ref()
            .map(|t| (t.interval, t.we_refresh)),
        Some((90, true))
    );
    let mut clock = alice.poll_timeout().expect("refresh due");
    assert_eq!(clock, now + Duration::from_secs(45));
    let mut ended = None;
    for _ in 0..64 {
        alice.handle_timeout(clock, &mut e);
        drain(&mut alice);
        if let Some(CallEvent::Ended(reason)) = events(&mut alice).pop() {
            ended = Some((reason, clock));
            break;
        }
        clock = alice.poll_timeout().expect("retransmits until Timer B");
    }
    let (reason, at) = ended.expect("the call ended");
    assert_eq!(
        reason,
        EndReason::Timeout {
            reason: "no answer to our re-INVITE".into()
        }
    );
    assert_eq!(
        at,
        now + Duration::from_secs(45) + 64 * Timers::default().t1
    );
}

/// RFC 4028 §8.1: an interval below 90 s is refused with 422 naming our minimum; with timers
/// off it is simply ignored, and `Require: timer` is then a 420.
#[test]
fn too_short_an_interval_gets_422() {
    let mut e = Counter(0);
    let invite = invite_with("Contact: <sip:1001@127.0.0.1:5061>\r\nSession-Expires: 60\r\n");
    let Err(refusal) = Call::incoming(
        timed_party("1002", 5062, Some(1800)),
        invite.clone(),
        Timers::default(),
        &mut e,
    ) else {
        panic!("refused")
    };
    let Ok(Message::Response(response)) = parse_datagram(&refusal) else {
        panic!("a response")
    };
    assert_eq!(response.status, 422);
    assert_eq!(response.headers.get("Min-SE"), Some("90"));
    assert!(Call::incoming(party("1002", 5062), invite, Timers::default(), &mut e).is_ok());
    let require = invite_with("Contact: <sip:1001@127.0.0.1:5061>\r\nRequire: timer\r\n");
    assert_eq!(refusal_status(require.clone()).0, 420);
    assert!(
        Call::incoming(
            timed_party("1002", 5062, Some(1800)),
            require,
            Timers::default(),
            &mut e
        )
        .is_ok()
    );
}

/// Review finding: a re-INVITE in flight when the stream dropped must not time out into a
/// hang-up. It is given up (the hold it carried reverts), the call goes on, and the rebind sends
/// the target refresh; a BYE in flight is sent again.
#[test]
fn a_reinvite_lost_with_the_connection_does_not_end_the_call() {
    let now = Instant::now();
    let mut e = Counter(0);
    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    assert!(alice.reoffer("v=0 held".into(), now, &mut e));
    drain(&mut alice);
    alice.connection_lost();
    assert_eq!(
        events(&mut alice),
        [CallEvent::ReofferFailed { status: 503 }]
    );
    // Long after Timer B the call is still up.
    alice.handle_timeout(now + Duration::from_secs(60), &mut e);
    assert_eq!(alice.state(), CallState::Established);
    assert!(events(&mut alice).is_empty());
    let later = now + Duration::from_secs(61);
    assert!(
        alice.rebind(party("1001", 6061), None, later, &mut e),
        "target refresh"
    );
    // A BYE lost the same way goes again on rebind.
    alice.hangup(later, &mut e);
    drain(&mut alice);
    alice.connection_lost();
    alice.rebind(party("1001", 6062), None, later, &mut e);
    let again = drain(&mut alice);
    assert!(
        again
            .iter()
            .any(|m| matches!(m, Message::Request(r) if r.method == Method::Bye)),
        "{again:?}"
    );
}

/// Review finding, RFC 4028 §9: a caller that names itself refresher but does not support
/// timers cannot refresh; we do, and our 200 carries no `Require: timer`.
#[test]
fn a_caller_without_timer_support_is_never_the_refresher() {
    let terms = Terms::for_offer(
        &invite_with("Session-Expires: 600;refresher=uac\r\n").headers,
        1800,
    );
    assert!(terms.we_refresh);
    assert!(!terms.require);
    assert_eq!(terms.header, "600;refresher=uas");
    // Their Min-SE raises our interval.
    let terms = Terms::for_offer(
        &invite_with("Supported: timer\r\nMin-SE: 1200\r\n").headers,
        1000,
    );
    assert_eq!((terms.interval, terms.we_refresh), (1200, false));
}

/// Review finding: a refresh of ours refused (491, 500) is tried again after a pause, and the
/// session ends when none succeeded before it ran out.
#[test]
fn a_refused_refresh_is_retried_until_the_session_runs_out() {
    let now = Instant::now();
    let mut e = Counter(0);
    let (mut alice, _bob) = established_with_timers(&mut e, now, Some(90), None);
    let mut clock = now + Duration::from_secs(45);
    let mut refreshes = 0;
    let ended = loop {
        alice.handle_timeout(clock, &mut e);
        for message in drain(&mut alice) {
            if let Message::Request(r) = &message
                && r.method == Method::Invite
            {
                refreshes += 1;
                let mut refused = Response::to_request(r, 500, Some("b"));
                refused.headers.push("Retry-After", "1");
                alice.handle_message(Message::Response(refused), clock, &mut e);
            }
        }
        if let Some(CallEvent::Ended(reason)) = events(&mut alice).pop() {
            break (reason, clock);
        }
        clock = alice.poll_timeout().expect("something is due");
        assert!(clock < now + Duration::from_secs(200), "ended by then");
    };
    assert_eq!(
        ended.0,
        EndReason::Timeout {
            reason: "the session timer expired".into()
        }
    );
    assert!(
        ended.1 >= now + Duration::from_secs(90),
        "not before the session ran out"
    );
    assert!(
        (4..=6).contains(&refreshes),
        "tried every 10 s: {refreshes}"
    );
}

/// Review finding, RFC 3264 §8: a re-offer that adds a stream (video) gets an answer with as
/// many `m=` lines, the new one refused in place, and a new origin version.
#[test]
fn a_reoffer_adding_video_is_answered_with_it_refused() {
    let now = Instant::now();
    let mut e = Counter(0);
    let (mut alice, mut bob) = ringing(&mut e, now);
    let ours = "v=0\r\no=- 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 5004 RTP/AVP 0\r\na=sendrecv\r\n";
    bob.answer(ours.into(), now);
    for message in drain(&mut bob) {
        alice.handle_message(message, now, &mut e);
    }
    for message in drain(&mut alice) {
        bob.handle_message(message, now, &mut e);
    }
    let theirs = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 6004 RTP/AVP 0\r\na=sendrecv\r\nm=video 6006 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
    assert!(alice.reoffer(theirs.into(), now, &mut e));
    for message in drain(&mut alice) {
        bob.handle_message(message, now, &mut e);
    }
    let answer = drain(&mut bob);
    let Some(Message::Response(ok)) = answer.first() else {
        panic!("{answer:?}")
    };
    let body = String::from_utf8_lossy(&ok.body);
    let m: Vec<&str> = body.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        m,
        ["m=audio 5004 RTP/AVP 0", "m=video 0 RTP/AVP 96"],
        "{body}"
    );
    assert!(body.contains("o=- 7 2 IN IP4"), "version bumped: {body}");
}

/// Review finding: an outgoing call given up with its connection leaves a CANCEL for the same
/// INVITE (same branch), to stop the callee's ringing; an incoming one has nothing to cancel.
#[test]
fn an_abandoned_ringing_call_cancels_its_invite() {
    let now = Instant::now();
    let mut e = Counter(0);
    let (alice, bob) = ringing(&mut e, now);
    let cancel = alice.abandon().expect("a CANCEL");
    let Ok(Message::Request(cancel)) = parse_datagram(&cancel) else {
        panic!("a request")
    };
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(
        cancel
            .headers
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned)),
        alice
            .invite
            .headers
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
    );
    assert_eq!(bob.abandon(), None);
}

/// Alice's REFER of an established call to Carol, as sent.
fn refer_sent(alice: &mut Call, e: &mut Counter, now: Instant) -> Request {
    let carol = Uri::parse("sip:1003@127.0.0.1").expect("uri");
    assert!(alice.refer(&carol, None, now, e));
    let Message::Request(refer) = drain(alice).remove(0) else {
        panic!("REFER")
    };
    assert_eq!(refer.method, Method::Refer);
    assert_eq!(refer.headers.get("Refer-To"), Some("<sip:1003@127.0.0.1>"));
    assert_eq!(
        refer.headers.get("Referred-By"),
        Some("<sip:1001@127.0.0.1>")
    );
    refer
}

/// The far end's NOTIFY in the REFER's dialog, reporting `frag` (RFC 3515 §2.4.5).
fn notify_for(refer: &Request, seq: u32, frag: &str, state: &str) -> Message {
    let mut headers = Headers::new();
    headers.push(
        "Via",
        "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKn".to_string() + &seq.to_string(),
    );
    headers.push(
        "From",
        refer.headers.get("To").unwrap_or_default().to_owned(),
    );
    headers.push(
        "To",
        refer.headers.get("From").unwrap_or_default().to_owned(),
    );
    headers.push("Call-ID", refer.headers.call_id().to_owned());
    headers.push("CSeq", format!("{seq} NOTIFY"));
    headers.push("Event", "refer");
    headers.push("Subscription-State", state);
    headers.push("Content-Type", "message/sipfrag;version=2.0");
    Message::Request(Request {
        method: Method::Notify,
        uri: Uri::parse("sip:1001@127.0.0.1:5061").expect("uri"),
        headers,
        body: frag.as_bytes().to_vec(),
    })
}

/// RFC 5589 §6: 202, NOTIFY 100 (progress), NOTIFY 200 (the target answered): each NOTIFY
/// gets 200, the transfer is accepted, and Alice hangs up with a BYE, ending `Transferred`.
#[test]
fn a_blind_transfer_ends_the_call_once_the_target_answers() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    let refer = refer_sent(&mut alice, &mut e, now);
    assert!(
        !alice.refer(&Uri::parse("sip:9@x").expect("uri"), None, now, &mut e),
        "one at a time"
    );
    let accepted = Response::to_request(&refer, 202, Some("bobtag"));
    alice.handle_message(Message::Response(accepted), now, &mut e);
    assert_eq!(events(&mut alice), []);
    alice.handle_message(
        notify_for(&refer, 100, "SIP/2.0 100 Trying\r\n", "active;expires=60"),
        now,
        &mut e,
    );
    assert_eq!(statuses(&drain(&mut alice)), [200]);
    assert_eq!(events(&mut alice), [], "progress only");
    alice.handle_message(
        notify_for(
            &refer,
            101,
            "SIP/2.0 200 OK\r\n",
            "terminated;reason=noresource",
        ),
        now,
        &mut e,
    );
    let sent = drain(&mut alice);
    assert_eq!(statuses(&sent), [200]);
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::Request(r) if r.method == Method::Bye)),
        "{sent:?}"
    );
    assert_eq!(
        events(&mut alice),
        [
            CallEvent::Transferred(TransferOutcome::Accepted),
            CallEvent::Ended(EndReason::Transferred)
        ]
    );
}

/// A refused REFER, or a target that does not take the call, leaves the call as it was; a
/// later transfer can be tried.
#[test]
fn a_failed_transfer_leaves_the_call_up() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    let refer = refer_sent(&mut alice, &mut e, now);
    let refused = Response::to_request(&refer, 603, Some("bobtag"));
    alice.handle_message(Message::Response(refused), now, &mut e);
    assert!(matches!(
        &events(&mut alice)[..],
        [CallEvent::Transferred(TransferOutcome::Failed { reason })] if reason.contains("603")
    ));
    assert_eq!(alice.state(), CallState::Established);

    let refer = refer_sent(&mut alice, &mut e, now);
    alice.handle_message(
        Message::Response(Response::to_request(&refer, 202, Some("bobtag"))),
        now,
        &mut e,
    );
    alice.handle_message(
        notify_for(&refer, 200, "SIP/2.0 486 Busy Here", "terminated"),
        now,
        &mut e,
    );
    assert_eq!(statuses(&drain(&mut alice)), [200]);
    assert!(matches!(
        &events(&mut alice)[..],
        [CallEvent::Transferred(TransferOutcome::Failed { reason })] if reason.contains("486 Busy Here")
    ));
    assert_eq!(alice.state(), CallState::Established);
}

/// A far end that accepts the REFER and never notifies: after `NOTIFY_WITHIN` the transfer is
/// taken as done. One that never answers the REFER fails it (Timer F), the call staying up.
#[test]
fn notify_never_arriving_and_refer_never_answered() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    let refer = refer_sent(&mut alice, &mut e, now);
    let accepted = Response::to_request(&refer, 202, Some("bobtag"));
    alice.handle_message(Message::Response(accepted), now, &mut e);
    // The REFER transaction's own timer (Timer K) comes first; nothing happens then.
    let mut due = alice.poll_timeout().expect("a timer");
    while due < now + NOTIFY_WITHIN {
        alice.handle_timeout(due, &mut e);
        assert_eq!(events(&mut alice), []);
        due = alice.poll_timeout().expect("the NOTIFY deadline");
    }
    assert_eq!(due, now + NOTIFY_WITHIN);
    alice.handle_timeout(due, &mut e);
    assert_eq!(
        events(&mut alice),
        [
            CallEvent::Transferred(TransferOutcome::Accepted),
            CallEvent::Ended(EndReason::Transferred)
        ]
    );

    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    refer_sent(&mut alice, &mut e, now);
    let mut at;
    let outcome = loop {
        at = alice.poll_timeout().expect("REFER retransmissions");
        assert!(at < now + Duration::from_secs(40), "Timer F fires by 32 s");
        alice.handle_timeout(at, &mut e);
        drain(&mut alice);
        if let Some(event) = events(&mut alice).pop() {
            break event;
        }
    };
    assert!(
        matches!(&outcome, CallEvent::Transferred(TransferOutcome::Failed { reason }) if reason.contains("did not answer")),
        "{outcome:?}"
    );
    assert_eq!(alice.state(), CallState::Established);
    assert!(
        at >= now + Duration::from_secs(32),
        "Timer F: {:?}",
        at - now
    );
}

/// Once a NOTIFY reported progress there is no fallback to success: a target that rings on
/// until the subscription's `expires` is a failed transfer, and so is a `terminated` NOTIFY
/// without a final status. Later NOTIFYs of a settled subscription still get 200.
#[test]
fn progress_then_silence_or_an_empty_end_is_a_failed_transfer() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    let refer = refer_sent(&mut alice, &mut e, now);
    let accepted = Response::to_request(&refer, 202, Some("bobtag"));
    alice.handle_message(Message::Response(accepted), now, &mut e);
    let ringing = notify_for(&refer, 100, "SIP/2.0 180 Ringing", "active;expires=45");
    alice.handle_message(ringing, now, &mut e);
    drain(&mut alice);
    let mut at;
    let outcome = loop {
        at = alice.poll_timeout().expect("the outcome deadline");
        alice.handle_timeout(at, &mut e);
        drain(&mut alice);
        if let Some(event) = events(&mut alice).pop() {
            break event;
        }
    };
    assert_eq!(
        at,
        now + Duration::from_secs(45),
        "the subscription's expires"
    );
    assert!(
        matches!(
            outcome,
            CallEvent::Transferred(TransferOutcome::Failed { .. })
        ),
        "{outcome:?}"
    );
    assert_eq!(alice.state(), CallState::Established);

    let refer = refer_sent(&mut alice, &mut e, at);
    let accepted = Response::to_request(&refer, 202, Some("bobtag"));
    alice.handle_message(Message::Response(accepted), at, &mut e);
    alice.handle_message(
        notify_for(&refer, 200, "", "terminated;reason=timeout"),
        at,
        &mut e,
    );
    assert_eq!(statuses(&drain(&mut alice)), [200]);
    assert!(matches!(
        &events(&mut alice)[..],
        [CallEvent::Transferred(TransferOutcome::Failed { reason })] if reason.contains("without an outcome")
    ));
    let late = notify_for(&refer, 201, "SIP/2.0 408 Request Timeout", "terminated");
    alice.handle_message(late, at, &mut e);
    assert_eq!(statuses(&drain(&mut alice)), [200]);
    assert_eq!(events(&mut alice), []);
    assert_eq!(alice.state(), CallState::Established);
}

/// The far end hanging up during a transfer settles it: after its 202 that is how some
/// transferees finish (accepted), before it the transfer failed. Either way pages hear.
#[test]
fn a_hang_up_during_a_transfer_settles_it() {
    for accepted in [true, false] {
        let (now, mut e) = (Instant::now(), Counter(0));
        let (mut alice, mut bob) = established_with_timers(&mut e, now, None, None);
        let refer = refer_sent(&mut alice, &mut e, now);
        if accepted {
            let ok = Response::to_request(&refer, 202, Some("bobtag"));
            alice.handle_message(Message::Response(ok), now, &mut e);
        }
        bob.hangup(now, &mut e);
        for message in drain(&mut bob) {
            alice.handle_message(message, now, &mut e);
        }
        let outcome = events(&mut alice);
        assert_eq!(outcome.len(), 2, "{outcome:?}");
        assert_eq!(
            matches!(
                outcome[0],
                CallEvent::Transferred(TransferOutcome::Accepted)
            ),
            accepted,
            "{outcome:?}"
        );
        assert_eq!(outcome[1], CallEvent::Ended(EndReason::Remote));
    }
}

/// A re-INVITE (a hold) answered after a transfer ended the call gets its ACK and nothing
/// more: the call stays ended. A REFER is not sent while a re-INVITE is in flight.
#[test]
fn a_late_reinvite_answer_after_a_transfer_is_acked_only() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    let refer = refer_sent(&mut alice, &mut e, now);
    assert!(alice.reoffer("v=0 held".into(), now, &mut e));
    let Message::Request(reinvite) = drain(&mut alice).remove(0) else {
        panic!("re-INVITE")
    };
    let accepted = Response::to_request(&refer, 202, Some("bobtag"));
    alice.handle_message(Message::Response(accepted), now, &mut e);
    alice.handle_message(
        notify_for(&refer, 100, "SIP/2.0 200 OK", "terminated"),
        now,
        &mut e,
    );
    drain(&mut alice);
    events(&mut alice);
    assert_eq!(alice.state(), CallState::Ended);
    let mut ok = Response::to_request(&reinvite, 200, Some("bobtag"));
    ok.body = b"v=0 bob".to_vec();
    alice.handle_message(Message::Response(ok), now, &mut e);
    let sent = drain(&mut alice);
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::Request(r) if r.method == Method::Ack)),
        "{sent:?}"
    );
    assert_eq!(events(&mut alice), []);
    assert_eq!(alice.state(), CallState::Ended);

    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    assert!(alice.reoffer("v=0 held".into(), now, &mut e));
    let carol = Uri::parse("sip:1003@127.0.0.1").expect("uri");
    assert!(!alice.refer(&carol, None, now, &mut e));
}

/// A NOTIFY where no transfer of ours ever was gets 481 (RFC 6665); one for an event package
/// we never subscribed to gets 489. Neither changes anything.
#[test]
fn a_stray_notify_gets_481_and_another_package_489() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    // A REFER-shaped request gives the dialog's identifiers; the NOTIFY below is made up.
    assert!(alice.reoffer("v=0".into(), now, &mut e));
    let Message::Request(reinvite) = drain(&mut alice).remove(0) else {
        panic!("re-INVITE")
    };
    alice.handle_message(
        notify_for(&reinvite, 300, "SIP/2.0 200 OK", "terminated"),
        now,
        &mut e,
    );
    assert_eq!(statuses(&drain(&mut alice)), [481]);
    let Message::Request(mut presence) = notify_for(&reinvite, 301, "", "active") else {
        panic!("NOTIFY")
    };
    presence.headers.set("Event", "presence");
    alice.handle_message(Message::Request(presence), now, &mut e);
    assert_eq!(statuses(&drain(&mut alice)), [489]);
    assert_eq!(events(&mut alice), []);
    assert_eq!(alice.state(), CallState::Established);
}

/// Issue 10, both sides of a transfer with our own stack: Alice REFERs Bob to Carol with a
/// `Replaces` (attended); Bob accepts (202, NOTIFY 100), reports the referral with the
/// `Replaces` unescaped, and his final NOTIFY 200 completes Alice's transfer (she hangs up).
#[test]
fn a_refer_is_followed_and_its_outcome_notified() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, mut bob) = established_with_timers(&mut e, now, None, None);
    let carol = Uri::parse("sip:1003@127.0.0.1").expect("uri");
    let replaces = "abc@host;to-tag=c1;from-tag=a1";
    assert!(alice.refer(&carol, Some(replaces), now, &mut e));
    let refer = drain(&mut alice);
    let Message::Request(request) = &refer[0] else {
        panic!("REFER")
    };
    assert_eq!(
        request.headers.get("Refer-To"),
        Some("<sip:1003@127.0.0.1?Replaces=abc%40host%3Bto-tag%3Dc1%3Bfrom-tag%3Da1>")
    );
    for m in refer {
        bob.handle_message(m, now, &mut e);
    }
    assert_eq!(
        events(&mut bob),
        [CallEvent::Referred(Referral {
            target: carol.clone(),
            replaces: Some(replaces.into()),
            referred_by: Some("<sip:1001@127.0.0.1>".into()),
        })]
    );
    let out = drain(&mut bob);
    assert_eq!(statuses(&out), [202]);
    let notify = out
        .iter()
        .find_map(|m| match m {
            Message::Request(r) if r.method == Method::Notify => Some(r.clone()),
            _ => None,
        })
        .expect("NOTIFY 100 at once");
    assert_eq!(notify.headers.get("Event"), Some("refer;id=2"));
    assert_eq!(
        String::from_utf8_lossy(&notify.body),
        "SIP/2.0 100 Trying\r\n"
    );
    for m in out {
        alice.handle_message(m, now, &mut e);
    }
    assert_eq!(events(&mut alice), []);
    assert!(!alice.refer(&carol, None, now, &mut e), "hers is under way");
    for m in drain(&mut alice) {
        bob.handle_message(m, now, &mut e);
    }

    // Progress, then the outcome (a second REFER meanwhile: `one_referral_at_a_time`).
    bob.notify_referral(180, "Ringing", now, &mut e);
    bob.notify_referral(200, "OK", now, &mut e);
    bob.notify_referral(200, "OK again", now, &mut e);
    // The 180 is in flight; the 200 waits for it (one NOTIFY at a time), and the third, after
    // the final one, is dropped.
    let first = drain(&mut bob);
    assert_eq!(first.len(), 1, "{first:?}");
    for m in first {
        alice.handle_message(m, now, &mut e);
    }
    for m in drain(&mut alice) {
        bob.handle_message(m, now, &mut e);
    }
    let last = drain(&mut bob);
    assert_eq!(
        last.len(),
        1,
        "the report after the final one is dropped: {last:?}"
    );
    let Some(Message::Request(final_notify)) = last.first() else {
        panic!("{last:?}")
    };
    assert_eq!(
        final_notify.headers.get("Subscription-State"),
        Some("terminated;reason=noresource")
    );
    for m in last {
        alice.handle_message(m, now, &mut e);
    }
    assert_eq!(
        events(&mut alice),
        [
            CallEvent::Transferred(TransferOutcome::Accepted),
            CallEvent::Ended(EndReason::Transferred)
        ]
    );
}

/// Bad REFERs change nothing: no `Refer-To`, two of them, a `tel:` target, a malformed
/// `Replaces` (400); a REFER before the call is up (403); one while ours runs (491).
#[test]
fn bad_refers_are_refused() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, mut bob) = established_with_timers(&mut e, now, None, None);
    let refer = refer_sent(&mut alice, &mut e, now);
    let with = |refer_to: &[&str], seq: u32| {
        let mut request = refer.clone();
        request.headers = Headers::new();
        for (name, value) in refer.headers.iter() {
            if name != "Refer-To" && name != "CSeq" {
                request.headers.push(name, value);
            }
        }
        request.headers.push("CSeq", format!("{seq} REFER"));
        for value in refer_to {
            request.headers.push("Refer-To", *value);
        }
        Message::Request(request)
    };
    let cases: [(&[&str], u16); 5] = [
        (&[], 400),
        (&["<sip:a@b>", "<sip:c@d>"], 400),
        (&["<tel:+15551234>"], 400),
        (&["<sip:a@b?Replaces=x%3Bto-tag%3D1>"], 400),
        (
            &["<sip:a@b?Replaces=x%0D%0AX:%20y%3Bto-tag%3D1%3Bfrom-tag%3D2>"],
            400,
        ),
    ];
    for (seq, (refer_to, status)) in (10..).zip(cases) {
        bob.handle_message(with(refer_to, seq), now, &mut e);
        assert_eq!(statuses(&drain(&mut bob)), [status], "{refer_to:?}");
        assert_eq!(events(&mut bob), [], "{refer_to:?}");
    }
    assert_eq!(bob.state(), CallState::Established);
    // Bob's own transfer runs: Alice's REFER to him meanwhile is 491.
    bob.refer(&Uri::parse("sip:1003@x").expect("uri"), None, now, &mut e);
    drain(&mut bob);
    bob.handle_message(with(&["<sip:a@b>"], 20), now, &mut e);
    assert_eq!(statuses(&drain(&mut bob)), [491]);

    let (_caller, mut ringing_bob) = ringing(&mut e, now);
    let mut early = refer.clone();
    early.headers = Headers::new();
    for (name, value) in refer.headers.iter() {
        if name != "Call-ID" {
            early.headers.push(name, value);
        }
    }
    early
        .headers
        .push("Call-ID", ringing_bob.call_id().to_owned());
    ringing_bob.handle_message(Message::Request(early), now, &mut e);
    assert_eq!(
        statuses(&drain(&mut ringing_bob)),
        [403],
        "not before the call is up"
    );
}

/// The call a referral asks for carries its `Replaces` and `Referred-By`; the consultation
/// call's `replaces_for_target` names its dialog as its far end sees it.
#[test]
fn a_referred_invite_carries_replaces_and_referred_by() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (alice, bob) = established_with_timers(&mut e, now, None, None);
    let from_alice = alice.replaces_for_target().expect("up");
    let named = Replaces::parse(&from_alice).expect("valid");
    assert!(bob.is_replaced_by(&named), "{from_alice}");
    let referral = Referral {
        target: Uri::parse("sip:1003@127.0.0.1").expect("uri"),
        replaces: Some(from_alice.clone()),
        referred_by: Some("<sip:1001@127.0.0.1>".into()),
    };
    let mut carol = Call::outgoing_referred(
        party("1002", 5062),
        referral.target.clone(),
        Some(&referral),
        "v=0".into(),
        Timers::default(),
        now,
        &mut e,
    );
    let Message::Request(invite) = drain(&mut carol).remove(0) else {
        panic!("INVITE")
    };
    assert_eq!(invite.headers.get("Replaces"), Some(from_alice.as_str()));
    assert_eq!(
        invite.headers.get("Referred-By"),
        Some("<sip:1001@127.0.0.1>")
    );
}

/// Delivers `from`'s output to `to` and returns it.
fn drain_keep(from: &mut Call, to: &mut Call, now: Instant, e: &mut Counter) -> Vec<Message> {
    let sent = drain(from);
    for m in sent.clone() {
        to.handle_message(m, now, e);
    }
    sent
}

/// Glare (RFC 3261 §14.1): Alice (who placed the call) and Bob re-INVITE at the same moment
/// (both hold). Each refuses the other's with 491 and neither reports a failure; Bob, who does
/// not own the Call-ID, tries again within 2 s and is answered; Alice waits 2.1–4 s, tries
/// again and is answered too. Both holds go through, nothing ends.
#[test]
fn glare_is_resolved_by_waiting_and_offering_again() {
    let (start, mut e) = (Instant::now(), Counter(0));
    let (mut alice, mut bob) = established_with_timers(&mut e, start, None, None);
    assert!(alice.reoffer("v=0 alice held".into(), start, &mut e));
    assert!(bob.reoffer("v=0 bob held".into(), start, &mut e));
    let (from_alice, from_bob) = (drain(&mut alice), drain(&mut bob));
    for m in from_alice {
        bob.handle_message(m, start, &mut e);
    }
    for m in from_bob {
        alice.handle_message(m, start, &mut e);
    }
    // Each answers the other's offer 491 (one offer at a time).
    let (to_bob, to_alice) = (drain(&mut alice), drain(&mut bob));
    assert_eq!(statuses(&to_bob), [491]);
    assert_eq!(statuses(&to_alice), [491]);
    for m in to_bob {
        bob.handle_message(m, start, &mut e);
    }
    for m in to_alice {
        alice.handle_message(m, start, &mut e);
    }
    assert_eq!(events(&mut alice), [], "a glare is no failure");
    assert_eq!(events(&mut bob), []);
    // The 491s are ACKed.
    for m in drain(&mut alice).into_iter().chain(drain(&mut bob)) {
        assert!(
            matches!(&m, Message::Request(r) if r.method == Method::Ack),
            "{m:?}"
        );
    }

    let bob_again = bob.poll_timeout().expect("Bob tries again");
    let alice_again = alice.poll_timeout().expect("Alice tries again");
    assert!(
        bob_again < start + Duration::from_secs(2),
        "{:?}",
        bob_again - start
    );
    assert!(
        alice_again >= start + Duration::from_millis(2100)
            && alice_again <= start + Duration::from_secs(4),
        "{:?}",
        alice_again - start
    );
    // Bob first: Alice answers, Bob has his answer.
    bob.handle_timeout(bob_again, &mut e);
    for m in drain(&mut bob) {
        alice.handle_message(m, bob_again, &mut e);
    }
    assert!(matches!(
        &events(&mut alice)[..],
        [CallEvent::RemoteSdpChanged { .. }]
    ));
    for m in drain(&mut alice) {
        bob.handle_message(m, bob_again, &mut e);
    }
    assert!(matches!(
        &events(&mut bob)[..],
        [CallEvent::ReofferAnswered { .. }]
    ));
    for m in drain(&mut bob) {
        alice.handle_message(m, bob_again, &mut e);
    }
    // Then Alice. (Her description already reached Bob in her answer to his offer, so his
    // side sees no change; hers is answered.)
    alice.handle_timeout(alice_again, &mut e);
    let again = drain(&mut alice);
    assert!(
        matches!(&again[..], [Message::Request(r)] if r.method == Method::Invite),
        "{again:?}"
    );
    for m in again {
        bob.handle_message(m, alice_again, &mut e);
    }
    assert_eq!(
        statuses(&drain_keep(&mut bob, &mut alice, alice_again, &mut e)),
        [200]
    );
    assert!(matches!(
        &events(&mut alice)[..],
        [CallEvent::ReofferAnswered { .. }]
    ));
    assert_eq!(
        (alice.state(), bob.state()),
        (CallState::Established, CallState::Established)
    );
}

/// A far end that answers every re-INVITE with 491 is not re-offered forever: after three
/// waits the offer is reported refused.
#[test]
fn a_far_end_that_always_answers_491_is_given_up_on() {
    let (mut now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    assert!(alice.reoffer("v=0 held".into(), now, &mut e));
    for round in 0..=3 {
        let invite = drain(&mut alice)
            .into_iter()
            .find_map(|m| match m {
                Message::Request(r) if r.method == Method::Invite => Some(r),
                _ => None,
            })
            .expect("a re-INVITE");
        let refusal = Response::to_request(&invite, 491, Some("bobtag"));
        alice.handle_message(Message::Response(refusal), now, &mut e);
        let seen = events(&mut alice);
        if round < 3 {
            assert_eq!(seen, [], "round {round}");
            now = alice.poll_timeout().expect("tries again");
            alice.handle_timeout(now, &mut e);
        } else {
            assert_eq!(seen, [CallEvent::ReofferFailed { status: 491 }]);
        }
    }
}

/// A call is debug-printable (the line's state is); its password never shows.
#[test]
fn debug_output_leaves_the_password_out() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (alice, _bob) = established_with_timers(&mut e, now, None, None);
    let printed = format!("{alice:?}");
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(!printed.contains("secret1001"), "{printed}");
}

/// A second REFER while the first one's transfer runs is refused with 491; after the final
/// NOTIFY, one more report is dropped (the subscription has ended).
#[test]
fn one_referral_at_a_time() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, mut bob) = established_with_timers(&mut e, now, None, None);
    let refer = refer_sent(&mut alice, &mut e, now);
    bob.handle_message(Message::Request(refer.clone()), now, &mut e);
    assert!(matches!(&events(&mut bob)[..], [CallEvent::Referred(_)]));
    // The 202 and the NOTIFY 100 reach Alice, whose 200 to the NOTIFY reaches Bob.
    drain_keep(&mut bob, &mut alice, now, &mut e);
    drain_keep(&mut alice, &mut bob, now, &mut e);
    let mut again = refer.clone();
    again.headers = Headers::new();
    for (name, value) in refer.headers.iter() {
        if name != "CSeq" {
            again.headers.push(name, value);
        }
    }
    again.headers.push("CSeq", "40 REFER");
    bob.handle_message(Message::Request(again), now, &mut e);
    assert_eq!(statuses(&drain(&mut bob)), [491]);
    assert_eq!(events(&mut bob), []);

    bob.notify_referral(200, "OK", now, &mut e);
    let last = drain(&mut bob);
    assert!(
        matches!(&last[..], [Message::Request(r)] if r.method == Method::Notify
            && r.body == b"SIP/2.0 200 OK\r\n"),
        "{last:?}"
    );
    bob.notify_referral(200, "OK again", now, &mut e);
    assert_eq!(drain(&mut bob), [], "nothing after the final NOTIFY");
}

/// Our re-INVITE answered 100 and then never: by RFC 3261 it may stay in progress for good, and
/// every later one (a resume after a hold, a refresh) with it. 64·T1 after it went it is
/// cancelled; their 487 refuses it as any refusal is (ACKed), and the next may go at once —
/// with our SDP as before the refused offer (a refresh must not offer the refused hold).
#[test]
fn a_reinvite_left_at_a_provisional_answer_is_cancelled() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    let (reinvite, cancel, due) = reinvite_cancelled(&mut alice, &mut e, now);
    alice.handle_message(
        Message::Response(Response::to_request(&cancel, 200, None)),
        due,
        &mut e,
    );
    alice.handle_message(
        Message::Response(Response::to_request(&reinvite, 487, None)),
        due,
        &mut e,
    );
    let sent = drain(&mut alice);
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::Request(r) if r.method == Method::Ack)),
        "{sent:?}"
    );
    assert_eq!(
        events(&mut alice),
        [CallEvent::ReofferFailed { status: 487 }]
    );
    assert_eq!(alice.state(), CallState::Established);
    assert!(alice.rebind(party("1001", 6061), None, due, &mut e));
    assert_eq!(offered(&mut alice), "v=0 alice");
}

/// The body of the one re-INVITE `alice` sends now.
fn offered(alice: &mut Call) -> String {
    let sent = drain(alice);
    let offers: Vec<String> = sent
        .iter()
        .filter_map(|m| match m {
            Message::Request(r) if r.method == Method::Invite => {
                Some(String::from_utf8_lossy(&r.body).into_owned())
            }
            _ => None,
        })
        .collect();
    let [offer] = offers.as_slice() else {
        panic!("one re-INVITE: {sent:?}")
    };
    offer.clone()
}

/// The same far end ignoring the CANCEL as well: 64·T1 after it the re-INVITE is given up (RFC
/// 3261 §9.1) and reported refused; the call stays up. Its 200 coming after all is ACKed, and
/// our SDP from before it offered again so the far end is back where we are.
#[test]
fn a_reinvite_unanswered_even_after_its_cancel_is_given_up() {
    let (now, mut e) = (Instant::now(), Counter(0));
    let (mut alice, _bob) = established_with_timers(&mut e, now, None, None);
    let (reinvite, _, due) = reinvite_cancelled(&mut alice, &mut e, now);
    let mut at = due;
    let give_up = due + 64 * Timers::default().t1;
    while let Some(next) = alice.poll_timeout().filter(|next| *next <= give_up) {
        at = next.max(at);
        alice.handle_timeout(at, &mut e);
        drain(&mut alice);
        if at == give_up {
            break;
        }
    }
    assert_eq!(at, give_up);
    assert_eq!(
        events(&mut alice),
        [CallEvent::ReofferFailed { status: 408 }]
    );
    assert_eq!(alice.state(), CallState::Established);
    assert!(alice.can_reoffer());
    let mut late = Response::to_request(&reinvite, 200, None);
    late.body = b"v=0 bob held".to_vec();
    alice.handle_message(Message::Response(late), at, &mut e);
    let sent = drain(&mut alice);
    assert!(
        sent.iter().any(
            |m| matches!(m, Message::Request(r) if r.method == Method::Ack
            && r.headers.cseq().map(|c| c.seq) == reinvite.headers.cseq().map(|c| c.seq))
        ),
        "{sent:?}"
    );
    let again: Vec<&Request> = sent
        .iter()
        .filter_map(|m| match m {
            Message::Request(r) if r.method == Method::Invite => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(again.len(), 1, "{sent:?}");
    assert_eq!(again[0].body, b"v=0 alice");
}

/// Alice's re-INVITE gets 100 and nothing more; returns it, the CANCEL she sends for it, and
/// when (64·T1 after it went: nothing before, past Timer B's time too).
fn reinvite_cancelled(
    alice: &mut Call,
    e: &mut Counter,
    now: Instant,
) -> (Request, Request, Instant) {
    assert!(alice.reoffer("v=0 held".into(), now, e));
    let Message::Request(reinvite) = drain(alice).remove(0) else {
        panic!("re-INVITE")
    };
    alice.handle_message(
        Message::Response(Response::to_request(&reinvite, 100, None)),
        now,
        e,
    );
    let due = now + 64 * Timers::default().t1;
    alice.handle_timeout(due - Duration::from_millis(1), e);
    assert!(drain(alice).is_empty());
    assert!(!alice.can_reoffer(), "one INVITE at a time");
    assert_eq!(alice.poll_timeout(), Some(due));
    alice.handle_timeout(due, e);
    let sent = drain(alice);
    let [Message::Request(cancel)] = sent.as_slice() else {
        panic!("a CANCEL: {sent:?}")
    };
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.uri, reinvite.uri);
    for name in ["Via", "From", "To", "Call-ID", "Route"] {
        assert_eq!(
            cancel.headers.get(name),
            reinvite.headers.get(name),
            "{name}"
        );
    }
    assert_eq!(
        cancel.headers.cseq().map(|c| c.seq),
        reinvite.headers.cseq().map(|c| c.seq)
    );
    assert!(events(alice).is_empty());
    assert_eq!(alice.state(), CallState::Established);
    (reinvite, cancel.clone(), due)
}
