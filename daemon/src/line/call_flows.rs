//! The line's call flows on a virtual clock (issue 10): the line talks over a simulated network
//! to far ends that are `sip_core` calls, routed by Call-ID — shotgun legs racing (a 200
//! crossing our CANCEL), every leg failing, the far end's REFER followed (and failing), an
//! INVITE with `Replaces` taking a call's place, and our attended transfer.

use std::time::Instant;

use sip_core::call::{
    Call, CallEvent, CallState, EndReason, LocalParty, Referral, TransferOutcome,
};
use sip_core::message::{Message, Method, Uri, parse_datagram};
use sip_core::transaction::Timers;

use super::tests::{line, registered};
use super::{LineEvent, SipEvent, SipLine, TransferKind};
use crate::ids::{ConversationId, OsEntropy};

/// The far ends: phones the line's INVITEs reach, or that call it.
#[derive(Default)]
struct Network {
    phones: Vec<Call>,
    /// Every request the line sent, by method, for the checks.
    sent: Vec<(Method, String)>,
}

fn party(user: &str) -> LocalParty {
    LocalParty {
        aor: Uri::parse(&format!("sip:{user}@127.0.0.1")).expect("aor"),
        contact: Uri::parse(&format!("sip:{user}@127.0.0.1:5070")).expect("contact"),
        transport: "UDP".into(),
        sent_by: "127.0.0.1:5070".into(),
        reliable: false,
        username: user.into(),
        password: String::new(),
        user_agent: "far".into(),
        session_interval: None,
    }
}

impl Network {
    /// Delivers everything both ways until nobody has anything left to say. A new INVITE from
    /// the line rings a new phone (named by its request URI's user).
    fn run(&mut self, line: &mut SipLine, now: Instant, e: &mut OsEntropy) {
        for _ in 0..20 {
            let mut quiet = true;
            while let Some(bytes) = line.poll_transmit() {
                quiet = false;
                let message = parse_datagram(&bytes).expect("the line sends valid SIP");
                if let Message::Request(request) = &message {
                    self.sent
                        .push((request.method.clone(), request.headers.call_id().to_owned()));
                }
                match self.phones.iter_mut().find(|p| p.matches(&message)) {
                    Some(phone) => phone.handle_message(message, now, e),
                    None => {
                        if let Message::Request(invite) = message
                            && invite.method == Method::Invite
                        {
                            let user = invite.uri.user.clone().unwrap_or_default();
                            let phone = Call::incoming(party(&user), invite, Timers::default(), e)
                                .expect("a valid INVITE");
                            self.phones.push(phone);
                        }
                    }
                }
            }
            for phone in &mut self.phones {
                while let Some(bytes) = phone.poll_transmit() {
                    quiet = false;
                    line.handle_message(parse_datagram(&bytes).expect("valid SIP"), now, e);
                }
            }
            if quiet {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    /// The phone of `user`: its newest call still going, else its newest.
    fn phone(&mut self, user: &str) -> &mut Call {
        let of_user = |p: &Call| p.local_uri().user.as_deref() == Some(user);
        let index = self
            .phones
            .iter()
            .rposition(|p| of_user(p) && p.state() != CallState::Ended)
            .or_else(|| self.phones.iter().rposition(of_user))
            .unwrap_or_else(|| panic!("no phone {user}"));
        &mut self.phones[index]
    }

    fn count(&self, method: Method) -> usize {
        self.sent.iter().filter(|(m, _)| *m == method).count()
    }
}

fn events(line: &mut SipLine) -> Vec<SipEvent> {
    std::iter::from_fn(|| line.poll_sip_event()).collect()
}

fn line_events(line: &mut SipLine) -> Vec<LineEvent> {
    events(line)
        .into_iter()
        .filter_map(|event| match event {
            SipEvent::Line(event) => Some(event),
            _ => None,
        })
        .collect()
}

fn uri(user: &str) -> Uri {
    Uri::parse(&format!("sip:{user}@127.0.0.1")).expect("uri")
}

/// The line calls `users` as conversation `c1` (a shotgun when several) and the phones ring.
fn dial(line: &mut SipLine, net: &mut Network, users: &[&str], now: Instant, e: &mut OsEntropy) {
    let targets = users.iter().map(|user| uri(user)).collect();
    line.dial(id("c1"), targets, "v=0 agent".into(), now, e);
    net.run(line, now, e);
}

fn registered_line() -> (SipLine, Instant, OsEntropy) {
    let (mut line, now, mut e) = line(false);
    registered(&mut line, now, &mut e, false);
    (line, now, e)
}

fn id(text: &str) -> ConversationId {
    ConversationId::from(text)
}

/// Shotgun: three legs; 1003 is busy, 1002 and 1004 ring, 1002 answers and wins (one
/// `CallRinging`, `CallAnsweredBy` leg 0, `CallEstablished`), and 1004 is cancelled; the page
/// hears nothing of the losers.
#[test]
fn shotgun_first_answer_wins_and_the_others_are_cancelled() {
    let (mut line, now, mut e) = registered_line();
    let mut net = Network::default();
    dial(&mut line, &mut net, &["1002", "1003", "1004"], now, &mut e);
    assert_eq!(net.count(Method::Invite), 3);
    assert_eq!(
        line_events(&mut line),
        [LineEvent::CallRinging {
            conversation: id("c1")
        }],
        "ringing once for three ringing phones"
    );
    net.phone("1003").reject(486, now);
    net.run(&mut line, now, &mut e);
    assert_eq!(line_events(&mut line), [], "a busy leg is no news");

    net.phone("1002").answer("v=0 1002".into(), now);
    net.run(&mut line, now, &mut e);
    let seen = events(&mut line);
    assert!(
        matches!(&seen[..], [
            SipEvent::MediaReady { remote_sdp, .. },
            SipEvent::Line(LineEvent::CallAnsweredBy { leg: 0, .. }),
            SipEvent::Line(LineEvent::CallEstablished { .. }),
        ] if remote_sdp == "v=0 1002"),
        "{seen:?}"
    );
    assert_eq!(net.count(Method::Cancel), 1, "1004's INVITE is cancelled");
    assert_eq!(
        net.phone("1004").state(),
        CallState::Ended,
        "the CANCEL reached it"
    );

    assert_eq!(line.conversations(), [id("c1")]);
    line.hangup(&id("c1"), now, &mut e);
    net.run(&mut line, now, &mut e);
    assert_eq!(
        line_events(&mut line),
        [LineEvent::CallEnded {
            conversation: id("c1"),
            reason: EndReason::Local
        }]
    );
}

/// The race proper: a leg answers at the moment we cancel it (its 200 was on the wire when our
/// CANCEL left). The line ACKs that 200 and hangs the leg up with a BYE; the call the agent
/// has is the winner, and no second `CallEstablished` comes.
#[test]
fn an_answer_crossing_our_cancel_gets_ack_and_bye() {
    let (mut line, now, mut e) = registered_line();
    let mut net = Network::default();
    dial(&mut line, &mut net, &["1002", "1004"], now, &mut e);
    line_events(&mut line);
    // Both answer before either hears from the line again.
    net.phone("1002").answer("v=0 1002".into(), now);
    net.phone("1004").answer("v=0 1004".into(), now);
    net.run(&mut line, now, &mut e);
    let established = line_events(&mut line)
        .into_iter()
        .filter(|event| matches!(event, LineEvent::CallEstablished { .. }))
        .count();
    assert_eq!(established, 1);
    assert_eq!(net.count(Method::Ack), 2, "both answers are acknowledged");
    assert_eq!(net.count(Method::Bye), 1, "the loser is hung up");
    let loser = net
        .phones
        .iter()
        .find(|p| p.state() == CallState::Ended)
        .expect("one phone was hung up");
    assert_eq!(loser.local_uri().user.as_deref(), Some("1004"));
}

/// No leg answers: 1002 is not found, 1003 busy. One `CallEnded`, with the last failure.
#[test]
fn a_shotgun_nobody_takes_ends_once_with_the_last_failure() {
    let (mut line, now, mut e) = registered_line();
    let mut net = Network::default();
    dial(&mut line, &mut net, &["1002", "1003"], now, &mut e);
    line_events(&mut line);
    net.phone("1002").reject(404, now);
    net.run(&mut line, now, &mut e);
    assert_eq!(line_events(&mut line), []);
    net.phone("1003").reject(486, now);
    net.run(&mut line, now, &mut e);
    let ended = line_events(&mut line);
    assert!(
        matches!(
            &ended[..],
            [LineEvent::CallEnded {
                reason: EndReason::Rejected { status: 486, .. },
                ..
            }]
        ),
        "{ended:?}"
    );
    assert!(line.conversations().is_empty());
}

/// 1002 calls the agent, who answers; returns the network with 1002's phone, the conversation.
fn answered_incoming(
    line: &mut SipLine,
    net: &mut Network,
    now: Instant,
    e: &mut OsEntropy,
) -> ConversationId {
    let caller = Call::outgoing(
        party("1002"),
        uri("1001"),
        "v=0 1002".into(),
        Timers::default(),
        now,
        e,
    );
    net.phones.push(caller);
    net.run(line, now, e);
    let conversation = line_events(line)
        .into_iter()
        .find_map(|event| match event {
            LineEvent::CallIncoming { conversation, .. } => Some(conversation),
            _ => None,
        })
        .expect("the call rings in");
    assert!(line.answer(&conversation, "v=0 agent".into(), now, e));
    net.run(line, now, e);
    let up = events(line);
    assert!(
        up.iter()
            .any(|event| matches!(event, SipEvent::Line(LineEvent::CallEstablished { .. }))),
        "{up:?}"
    );
    conversation
}

/// The far end transfers the agent (REFER to 1003): the line reports `Referred`, calls 1003
/// once media is ready (`Referred-By` on the INVITE), reports 1003's ringing and answer to
/// 1002 in NOTIFYs, then switches the call's media to 1003 and hangs up on 1002 — one
/// conversation throughout, no `CallEnded`.
#[test]
fn a_refer_from_the_far_end_moves_the_call() {
    let (mut line, now, mut e) = registered_line();
    let mut net = Network::default();
    let conversation = answered_incoming(&mut line, &mut net, now, &mut e);
    assert!(net.phone("1002").refer(&uri("1003"), None, now, &mut e));
    net.run(&mut line, now, &mut e);
    let referred = events(&mut line);
    assert!(
        matches!(&referred[..], [SipEvent::Referred { target, .. }] if target.user.as_deref() == Some("1003")),
        "{referred:?}"
    );
    assert!(line.follow_referral(&conversation, "v=0 agent2".into(), now, &mut e));
    net.run(&mut line, now, &mut e);
    assert_eq!(events(&mut line), [], "ringing is the referrer's news");
    net.phone("1003").answer("v=0 1003".into(), now);
    net.run(&mut line, now, &mut e);
    let switched = events(&mut line);
    assert!(
        matches!(&switched[..], [
            SipEvent::MediaSwitched { remote_sdp, .. },
            SipEvent::Line(LineEvent::CallTransferred {
                outcome: TransferOutcome::Accepted,
                kind: TransferKind::Remote { to },
                ..
            }),
        ] if remote_sdp == "v=0 1003" && to == "1003"),
        "{switched:?}"
    );
    // 1002 heard how it went (NOTIFY 100, 180, 200) and was hung up on.
    assert_eq!(net.count(Method::Notify), 3);
    let referrer = net
        .phones
        .iter_mut()
        .find(|p| p.local_uri().user.as_deref() == Some("1002"))
        .expect("1002");
    let seen: Vec<CallEvent> = std::iter::from_fn(|| referrer.poll_event()).collect();
    assert!(
        seen.contains(&CallEvent::Transferred(TransferOutcome::Accepted)),
        "{seen:?}"
    );
    assert_eq!(referrer.state(), CallState::Ended);
    assert_eq!(line.conversations(), std::slice::from_ref(&conversation));
    line.hangup(&conversation, now, &mut e);
    net.run(&mut line, now, &mut e);
    assert!(matches!(
        &line_events(&mut line)[..],
        [LineEvent::CallEnded {
            reason: EndReason::Local,
            ..
        }]
    ));
}

/// The new party is busy: 1002 hears 486 in the final NOTIFY, the page a failed `remote`
/// transfer, and the call with 1002 goes on.
#[test]
fn a_refer_whose_new_call_fails_leaves_the_call() {
    let (mut line, now, mut e) = registered_line();
    let mut net = Network::default();
    let conversation = answered_incoming(&mut line, &mut net, now, &mut e);
    net.phone("1002").refer(&uri("1003"), None, now, &mut e);
    net.run(&mut line, now, &mut e);
    events(&mut line);
    line.follow_referral(&conversation, "v=0 agent2".into(), now, &mut e);
    net.run(&mut line, now, &mut e);
    net.phone("1003").reject(486, now);
    net.run(&mut line, now, &mut e);
    let failed = line_events(&mut line);
    assert!(
        matches!(
            &failed[..],
            [LineEvent::CallTransferred {
                outcome: TransferOutcome::Failed { .. },
                kind: TransferKind::Remote { .. },
                ..
            }]
        ),
        "{failed:?}"
    );
    let referrer = net.phone("1002");
    let seen: Vec<CallEvent> = std::iter::from_fn(|| referrer.poll_event()).collect();
    assert!(
        matches!(seen.last(), Some(CallEvent::Transferred(TransferOutcome::Failed { reason })) if reason.contains("486")),
        "{seen:?}"
    );
    assert_eq!(referrer.state(), CallState::Established, "the call goes on");
}

/// An INVITE whose `Replaces` names the agent's call (someone's attended transfer hands the
/// agent to 1003): no ringing; once answered and ACKed the media switches, the replaced
/// dialog gets a BYE, and the page hears a `remote` transfer to 1003.
#[test]
fn an_invite_with_replaces_takes_the_calls_place() {
    let (mut line, now, mut e) = registered_line();
    let mut net = Network::default();
    let conversation = answered_incoming(&mut line, &mut net, now, &mut e);
    let replaces = net.phone("1002").replaces_for_target().expect("up");
    let referral = Referral {
        target: uri("1001"),
        replaces: Some(replaces),
        referred_by: None,
    };
    let newcomer = Call::outgoing_referred(
        party("1003"),
        uri("1001"),
        Some(&referral),
        "v=0 1003".into(),
        Timers::default(),
        now,
        &mut e,
    );
    net.phones.push(newcomer);
    net.run(&mut line, now, &mut e);
    assert_eq!(
        events(&mut line),
        [SipEvent::Replacing {
            conversation: conversation.clone()
        }],
        "no ringing, no new call"
    );
    assert_eq!(
        line.next_remote_sdp(&conversation).as_deref(),
        Some("v=0 1003")
    );
    assert!(line.answer_next(&conversation, "v=0 agent2".into(), now, &mut e));
    net.run(&mut line, now, &mut e);
    let switched = events(&mut line);
    assert!(
        matches!(&switched[..], [
            SipEvent::MediaSwitched { .. },
            SipEvent::Line(LineEvent::CallTransferred { kind: TransferKind::Remote { to }, outcome: TransferOutcome::Accepted, .. }),
        ] if to == "1003"),
        "{switched:?}"
    );
    assert_eq!(
        net.phone("1002").state(),
        CallState::Ended,
        "the replaced dialog is hung up"
    );
    assert_eq!(line.conversations(), [conversation]);
}

/// 1002 called the agent, who then called 1003 (conversation `c2`); both are up. Returns the
/// first conversation.
fn consulting(
    line: &mut SipLine,
    net: &mut Network,
    now: Instant,
    e: &mut OsEntropy,
) -> ConversationId {
    let first = answered_incoming(line, net, now, e);
    line.dial(id("c2"), vec![uri("1003")], "v=0 agent".into(), now, e);
    net.run(line, now, e);
    net.phone("1003").answer("v=0 1003".into(), now);
    net.run(line, now, e);
    events(line);
    first
}

/// Our attended transfer: the agent has 1002 and 1003 up; `connect_calls` REFERs 1002 to 1003
/// with a `Replaces` naming our call with 1003. 1002 accepts and reports success: both our
/// calls end `Transferred`.
#[test]
fn connect_calls_ends_both_legs_once_the_transferee_reports_success() {
    let (mut line, now, mut e) = registered_line();
    let mut net = Network::default();
    let first = consulting(&mut line, &mut net, now, &mut e);
    assert!(!line.connect_calls(&first, &id("nope"), now, &mut e));
    assert!(line.connect_calls(&first, &id("c2"), now, &mut e));
    net.run(&mut line, now, &mut e);
    let transferee = net.phone("1002");
    let referred: Vec<CallEvent> = std::iter::from_fn(|| transferee.poll_event()).collect();
    let Some(CallEvent::Referred(referral)) = referred.last() else {
        panic!("{referred:?}")
    };
    assert_eq!(referral.target.user.as_deref(), Some("1003"));
    let replaces = referral.replaces.clone().expect("a Replaces");
    let consult = net
        .phones
        .iter()
        .find(|p| p.local_uri().user.as_deref() == Some("1003"))
        .expect("1003");
    assert!(
        consult.is_replaced_by(&sip_core::call::Replaces::parse(&replaces).expect("valid")),
        "{replaces} names our call with 1003 as 1003 sees it"
    );
    net.phone("1002").notify_referral(200, "OK", now, &mut e);
    net.run(&mut line, now, &mut e);
    let seen = line_events(&mut line);
    assert!(
        matches!(&seen[0], LineEvent::CallTransferred { outcome: TransferOutcome::Accepted, kind: TransferKind::Attended { with }, .. } if *with == id("c2")),
        "{seen:?}"
    );
    let mut ended: Vec<(String, EndReason)> = seen
        .iter()
        .filter_map(|event| match event {
            LineEvent::CallEnded {
                conversation,
                reason,
            } => Some((conversation.to_string(), reason.clone())),
            _ => None,
        })
        .collect();
    ended.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (first.to_string(), EndReason::Transferred),
        ("c2".to_owned(), EndReason::Transferred),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(ended, expected);
}

/// Review findings: the referrer hangs up right after its REFER and the referral then cannot
/// be followed — the call ends once (not never); and a far end that keeps transferring is
/// followed three times, then refused.
#[test]
fn a_referral_that_comes_to_nothing_ends_the_call_once_and_loops_are_cut() {
    let (mut line, now, mut e) = registered_line();
    let mut net = Network::default();
    let conversation = answered_incoming(&mut line, &mut net, now, &mut e);
    net.phone("1002").refer(&uri("1003"), None, now, &mut e);
    net.run(&mut line, now, &mut e);
    assert!(matches!(
        &events(&mut line)[..],
        [SipEvent::Referred { .. }]
    ));
    net.phone("1002").hangup(now, &mut e);
    net.run(&mut line, now, &mut e);
    assert_eq!(
        events(&mut line),
        [],
        "the transfer may still take the call on"
    );
    line.referral_failed(&conversation, 503, "no media", now, &mut e);
    net.run(&mut line, now, &mut e);
    let ended = line_events(&mut line);
    assert!(
        matches!(
            &ended[..],
            [LineEvent::CallEnded {
                reason: EndReason::Remote,
                ..
            }]
        ),
        "{ended:?}"
    );
    assert!(line.conversations().is_empty());

    // Transfers in a loop: each fails at the target; the fourth is refused outright.
    let conversation = answered_incoming(&mut line, &mut net, now, &mut e);
    for round in 0..4 {
        net.phone("1002").refer(&uri("1099"), None, now, &mut e);
        net.run(&mut line, now, &mut e);
        let seen = events(&mut line);
        if round < 3 {
            assert!(
                matches!(&seen[..], [SipEvent::Referred { .. }]),
                "{round}: {seen:?}"
            );
            line.follow_referral(&conversation, "v=0 agent2".into(), now, &mut e);
            net.run(&mut line, now, &mut e);
            net.phone("1099").reject(404, now);
            net.run(&mut line, now, &mut e);
            events(&mut line);
        } else {
            assert_eq!(seen, [], "not followed");
            let referrer = net.phone("1002");
            let outcome = std::iter::from_fn(|| referrer.poll_event()).last();
            assert!(
                matches!(&outcome, Some(CallEvent::Transferred(TransferOutcome::Failed { reason })) if reason.contains("403")),
                "{outcome:?}"
            );
        }
    }
}

/// Review finding: an attended transfer the transferee never confirmed (it accepted the
/// REFER and hung up) ends our call with it, but leaves the consultation call up: its party
/// may never have been reached.
#[test]
fn an_unconfirmed_attended_transfer_leaves_the_consultation() {
    let (mut line, now, mut e) = registered_line();
    let mut net = Network::default();
    let first = consulting(&mut line, &mut net, now, &mut e);
    assert!(line.connect_calls(&first, &id("c2"), now, &mut e));
    net.run(&mut line, now, &mut e);
    net.phone("1002").hangup(now, &mut e);
    net.run(&mut line, now, &mut e);
    let seen = line_events(&mut line);
    assert!(
        seen.iter().any(|event| matches!(
            event,
            LineEvent::CallTransferred {
                outcome: TransferOutcome::Accepted,
                ..
            }
        )),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|event| matches!(event, LineEvent::CallEnded { conversation, .. } if *conversation == id("c2"))),
        "{seen:?}"
    );
    assert_eq!(line.conversations(), [id("c2")]);
}
