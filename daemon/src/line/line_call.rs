//! One conversation on the line, whatever the dialogs behind it: a call is one [`LineCall`],
//! keyed by its [`ConversationId`], though it may be several SIP dialogs over its life.
//!
//! - A dial rings one number, or up to five at once (shotgun): each is a *dialling* leg; the
//!   first to answer becomes the call, the others are cancelled (or hung up, if they answer
//!   too late) without a word to the phone, and when every leg fails the call ends with the
//!   last failure.
//! - A transfer of the far end's doing gives the call a *next* dialog: the one their REFER asks
//!   for (we dial it and report its progress back in NOTIFYs), or an INVITE whose `Replaces`
//!   names the call (we answer it). Once it is up it becomes the call and the old dialog is
//!   hung up; the page keeps one conversation that now talks to someone else.
//! - Dialogs that lost or were replaced stay as *leaving* until they have nothing left to send
//!   or retransmit.

use std::collections::VecDeque;
use std::time::Instant;

use sip_core::call::{
    Call, CallEvent, CallState, EndReason, Referral, TransferOutcome, clean_reason,
};
use sip_core::registration::Entropy;

use super::events::{LineEvent, SipEvent, TransferKind};
use crate::ids::ConversationId;

/// How many of the far end's transfers one call follows: each places a call through the
/// agent's account, so a far end must not be able to make it dial in a loop.
const MAX_REFERRALS: u32 = 3;

/// What a dialog next in line for the call came from.
#[derive(Debug)]
enum NextKind {
    /// Their REFER: we dialled the target, and owe the referrer NOTIFYs.
    Referred,
    /// An INVITE with `Replaces` naming the call: we answer it.
    Replacing,
}

#[derive(Debug)]
struct Next {
    call: Call,
    kind: NextKind,
    /// Who the call goes to, as the page sees it.
    party: String,
}

#[derive(Debug)]
pub(super) struct LineCall {
    pub conversation: ConversationId,
    /// The dialog the agent talks on: an incoming call from the start, an outgoing one once a
    /// leg answered.
    current: Option<Call>,
    /// Outgoing legs still waiting for an answer, by their place in the dial: one, or a
    /// shotgun's up to five.
    dialling: Vec<(usize, Call)>,
    /// How many legs the dial had (more than one: the answering leg is reported).
    legs: usize,
    /// A referral the line is preparing media for (their REFER came; the INVITE has not gone).
    referral: Option<Referral>,
    next: Option<Next>,
    leaving: Vec<Call>,
    /// The callee rings (reported once, whichever leg).
    rang: bool,
    /// The last dialling leg's failure: the call's end when no leg answers.
    last_failure: Option<EndReason>,
    /// An attended transfer of ours joins this call's party to the other conversation's.
    pub consulting: Option<ConversationId>,
    /// The far end's transfers this call followed (see [`MAX_REFERRALS`]).
    referrals: u32,
    /// The old dialog ended while a transfer of theirs was under way: the call's end, should
    /// the transfer not take it on.
    quiet_end: Option<EndReason>,
    /// `CallEnded` went to the phone: never twice.
    ended: bool,
}

impl LineCall {
    pub fn incoming(conversation: ConversationId, call: Call) -> Self {
        Self::new(conversation, Some(call), Vec::new())
    }

    pub fn dialling(conversation: ConversationId, legs: Vec<Call>) -> Self {
        Self::new(conversation, None, legs)
    }

    fn new(conversation: ConversationId, current: Option<Call>, dialling: Vec<Call>) -> Self {
        Self {
            conversation,
            current,
            legs: dialling.len(),
            dialling: dialling.into_iter().enumerate().collect(),
            referral: None,
            next: None,
            leaving: Vec::new(),
            rang: false,
            last_failure: None,
            consulting: None,
            referrals: 0,
            quiet_end: None,
            ended: false,
        }
    }

    /// Reports the call's end, once.
    fn report_end(&mut self, events: &mut VecDeque<SipEvent>, reason: EndReason) {
        if !std::mem::replace(&mut self.ended, true) {
            events.push_back(SipEvent::Line(LineEvent::CallEnded {
                conversation: self.conversation.clone(),
                reason,
            }));
        }
    }

    /// A dialog of the call is being transferred by us, or consults for one: another party
    /// must not take its place meanwhile.
    pub fn has_transfer_of_ours(&self) -> bool {
        self.consulting.is_some() || self.current.as_ref().is_some_and(Call::is_transferring)
    }

    /// The dialog the agent talks on, once there is one.
    pub fn current(&mut self) -> Option<&mut Call> {
        self.current.as_mut()
    }

    pub fn current_ref(&self) -> Option<&Call> {
        self.current.as_ref()
    }

    /// Every dialog, for routing, timers and moves to a new connection.
    pub fn dialogs_mut(&mut self) -> impl Iterator<Item = &mut Call> {
        self.current
            .iter_mut()
            .chain(self.dialling.iter_mut().map(|(_, call)| call))
            .chain(self.next.iter_mut().map(|next| &mut next.call))
            .chain(self.leaving.iter_mut())
    }

    pub fn dialogs(&self) -> impl Iterator<Item = &Call> {
        self.current
            .iter()
            .chain(self.dialling.iter().map(|(_, call)| call))
            .chain(self.next.iter().map(|next| &next.call))
            .chain(self.leaving.iter())
    }

    /// Hangs up: the call, every leg still dialling, and a transfer's next dialog.
    pub fn hangup(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        for call in self
            .current
            .iter_mut()
            .chain(self.dialling.iter_mut().map(|(_, call)| call))
            .chain(self.next.iter_mut().map(|next| &mut next.call))
        {
            call.hangup(now, entropy);
        }
        self.referral = None;
    }

    /// Not answered yet (ringing either way, or a shotgun's legs).
    pub fn is_unanswered(&self) -> bool {
        match &self.current {
            Some(call) => matches!(
                call.state(),
                CallState::Offered | CallState::Calling | CallState::Ringing
            ),
            None => !self.dialling.is_empty(),
        }
    }

    /// The call has ended for the agent (its dialogs may still linger to finish retransmits).
    pub fn is_over(&self) -> bool {
        self.current
            .as_ref()
            .is_none_or(|call| call.state() == CallState::Ended)
            && self.dialling.is_empty()
            && self.next.is_none()
            && self.referral.is_none()
    }

    /// Nothing left: no dialog to talk on or waiting to, and nothing to send or retransmit.
    pub fn is_finished(&self) -> bool {
        self.dialogs().all(Call::is_finished) && self.referral.is_none()
    }

    // ------------------------------------------------------------ transfers of their doing

    /// Places the call their REFER asked for, with our `offer`.
    pub fn follow_referral(
        &mut self,
        party: sip_core::call::LocalParty,
        offer: String,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        let Some(referral) = self.referral.take() else {
            return false;
        };
        let shown = clean_reason(&referral.target.user.clone().unwrap_or_default());
        let call = Call::outgoing_referred(
            party,
            referral.target.clone(),
            Some(&referral),
            offer,
            sip_core::transaction::Timers::default(),
            now,
            entropy,
        );
        self.next = Some(Next {
            call,
            kind: NextKind::Referred,
            party: shown,
        });
        true
    }

    /// Their referral is not followed (no media, or the agent holds the call): the referrer
    /// hears `status`, the call goes on (or, if its old dialog ended meanwhile, ends).
    pub fn referral_failed(
        &mut self,
        status: u16,
        phrase: &str,
        why: &str,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        if self.referral.take().is_none() {
            return;
        }
        if let Some(current) = &mut self.current {
            current.notify_referral(status, phrase, now, entropy);
        }
        tracing::warn!(conversation = %self.conversation, "{why}; the far end's transfer is not followed");
    }

    /// A transfer of the far end's doing is under way (one at a time).
    pub fn is_being_transferred(&self) -> bool {
        self.next.is_some() || self.referral.is_some()
    }

    /// An INVITE whose `Replaces` names this call: it waits for the line's answer
    /// ([`Self::answer_next`]). Only when [`Self::is_being_transferred`] is false.
    pub fn replaced_by(&mut self, call: Call, party: String) {
        self.next = Some(Next {
            call,
            kind: NextKind::Replacing,
            party: clean_reason(&party),
        });
    }

    /// The replacing INVITE's offer.
    pub fn next_remote_sdp(&self) -> Option<&str> {
        self.next.as_ref().and_then(|next| next.call.remote_sdp())
    }

    pub fn answer_next(&mut self, sdp: String, now: Instant) -> bool {
        match &mut self.next {
            Some(next) if next.call.state() == CallState::Offered => {
                next.call.answer(sdp, now);
                true
            }
            _ => false,
        }
    }

    pub fn reject_next(&mut self, status: u16, now: Instant) {
        if let Some(next) = &mut self.next {
            next.call.reject(status, now);
        }
    }

    // ------------------------------------------------------------ output

    /// Moves every dialog's output into the line's queues, turning dialog events into the
    /// call's.
    pub fn collect(
        &mut self,
        transmits: &mut VecDeque<Vec<u8>>,
        events: &mut VecDeque<SipEvent>,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        // Several rounds: acting on one dialog's event (a NOTIFY, a BYE) gives another output.
        for _ in 0..4 {
            let mut busy = false;
            busy |= self.collect_dialling(events, now, entropy);
            busy |= self.collect_next(events, now, entropy);
            busy |= self.collect_current(events, now, entropy);
            for call in self.dialogs_mut() {
                while let Some(bytes) = call.poll_transmit() {
                    transmits.push_back(bytes);
                }
            }
            // Leaving dialogs end without a word.
            for call in &mut self.leaving {
                while call.poll_event().is_some() {}
            }
            self.leaving.retain(|call| !call.is_finished());
            if !busy {
                break;
            }
        }
        // The old dialog ended during a transfer of theirs that then came to nothing.
        if self.is_over()
            && let Some(reason) = self.quiet_end.take()
        {
            self.report_end(events, reason);
        }
    }

    fn collect_current(
        &mut self,
        events: &mut VecDeque<SipEvent>,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        let Some(current) = &mut self.current else {
            return false;
        };
        let conversation = &self.conversation;
        let mut any = false;
        let mut gone = false;
        let mut ended = None;
        while let Some(event) = current.poll_event() {
            any = true;
            let conversation = conversation.clone();
            match event {
                CallEvent::Ringing => {
                    events.push_back(SipEvent::Line(LineEvent::CallRinging { conversation }))
                }
                CallEvent::Dtmf(digit) => {
                    events.push_back(SipEvent::Line(LineEvent::DtmfReceived {
                        conversation,
                        digit,
                    }))
                }
                CallEvent::Established { remote_sdp } => {
                    events.push_back(SipEvent::MediaReady {
                        conversation: conversation.clone(),
                        remote_sdp,
                    });
                    events.push_back(SipEvent::Line(LineEvent::CallEstablished { conversation }));
                }
                CallEvent::RemoteSdpChanged { remote_sdp } => {
                    events.push_back(SipEvent::MediaChanged {
                        conversation,
                        remote_sdp,
                    })
                }
                CallEvent::ReofferAnswered { remote_sdp } => {
                    events.push_back(SipEvent::ReofferAnswered {
                        conversation,
                        remote_sdp,
                    })
                }
                CallEvent::ReofferFailed { status } => events.push_back(SipEvent::ReofferFailed {
                    conversation,
                    status,
                }),
                CallEvent::Transferred(outcome) => {
                    let kind = match self.consulting.take() {
                        Some(with) => TransferKind::Attended { with },
                        None => TransferKind::Blind,
                    };
                    events.push_back(SipEvent::Line(LineEvent::CallTransferred {
                        conversation,
                        outcome,
                        kind,
                    }));
                }
                CallEvent::Referred(referral) => {
                    if self.next.is_some() || self.referral.is_some() {
                        // Their REFER crossed a replacing INVITE: one transfer at a time.
                        current.notify_referral(503, "Service Unavailable", now, entropy);
                        continue;
                    }
                    if self.referrals >= MAX_REFERRALS {
                        tracing::warn!(conversation = %self.conversation, "the far end asked for another transfer of this call; refused");
                        current.notify_referral(403, "Forbidden", now, entropy);
                        continue;
                    }
                    self.referrals += 1;
                    events.push_back(SipEvent::Referred {
                        conversation,
                        target: referral.target.clone(),
                    });
                    self.referral = Some(referral);
                }
                // The old dialog of a transfer under way ends quietly: the next one carries on
                // (or, should it fail, ends the call).
                CallEvent::Ended(reason) if self.next.is_some() || self.referral.is_some() => {
                    gone = true;
                    self.quiet_end = Some(reason);
                }
                CallEvent::Ended(reason) => ended = Some(reason),
            }
        }
        if let Some(reason) = ended {
            self.report_end(events, reason);
        }
        if gone && let Some(old) = self.current.take() {
            self.leaving.push(old);
        }
        any
    }

    fn collect_dialling(
        &mut self,
        events: &mut VecDeque<SipEvent>,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        if self.dialling.is_empty() {
            return false;
        }
        let mut any = false;
        let legs = std::mem::take(&mut self.dialling);
        let mut waiting = Vec::new();
        for (leg, mut call) in legs {
            let news = settle(&mut call);
            any |= news.any;
            if news.rang && !self.rang {
                self.rang = true;
                events.push_back(SipEvent::Line(LineEvent::CallRinging {
                    conversation: self.conversation.clone(),
                }));
            }
            match news.outcome {
                Some(Ok(_)) if self.current.is_some() => {
                    // Answered after another leg won: hang up (the caller of a shotgun talks to
                    // one party).
                    call.hangup(now, entropy);
                    self.leaving.push(call);
                }
                Some(Ok(remote_sdp)) => {
                    let conversation = self.conversation.clone();
                    events.push_back(SipEvent::MediaReady {
                        conversation: conversation.clone(),
                        remote_sdp,
                    });
                    if self.legs > 1 {
                        events.push_back(SipEvent::Line(LineEvent::CallAnsweredBy {
                            conversation: conversation.clone(),
                            leg,
                        }));
                    }
                    events.push_back(SipEvent::Line(LineEvent::CallEstablished { conversation }));
                    self.current = Some(call);
                }
                Some(Err(reason)) => {
                    self.last_failure = Some(reason);
                    self.leaving.push(call);
                }
                None => waiting.push((leg, call)),
            }
        }
        if self.current.is_some() {
            for (_, mut call) in waiting {
                call.hangup(now, entropy);
                self.leaving.push(call);
            }
        } else if waiting.is_empty() {
            let reason = self.last_failure.take().unwrap_or(EndReason::Local);
            self.report_end(events, reason);
        } else {
            self.dialling = waiting;
        }
        any
    }

    fn collect_next(
        &mut self,
        events: &mut VecDeque<SipEvent>,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        let Some(next) = &mut self.next else {
            return false;
        };
        let News { any, rang, outcome } = settle(&mut next.call);
        if let (true, Some(current), NextKind::Referred) = (rang, &mut self.current, &next.kind) {
            current.notify_referral(180, "Ringing", now, entropy);
        }
        let Some(outcome) = outcome else {
            return any;
        };
        // `next` was there above: taken now that it is settled either way.
        let Some(next) = self.next.take() else {
            return any;
        };
        let conversation = self.conversation.clone();
        match outcome {
            Ok(remote_sdp) => {
                if let Some(mut old) = self.current.take() {
                    if matches!(next.kind, NextKind::Referred) {
                        old.notify_referral(200, "OK", now, entropy);
                    }
                    // RFC 5589 §6, §7: the old dialog ends once the new one is up.
                    old.hangup(now, entropy);
                    while old.poll_event().is_some() {}
                    self.leaving.push(old);
                }
                self.current = Some(next.call);
                self.quiet_end = None;
                events.push_back(SipEvent::MediaSwitched {
                    conversation: conversation.clone(),
                    remote_sdp,
                });
                events.push_back(SipEvent::Line(LineEvent::CallTransferred {
                    conversation,
                    outcome: TransferOutcome::Accepted,
                    kind: TransferKind::Remote { to: next.party },
                }));
            }
            Err(reason) => {
                let (status, text) = match &reason {
                    EndReason::Rejected { status, reason } => (*status, reason.clone()),
                    _ => (503, "Service Unavailable".to_owned()),
                };
                self.leaving.push(next.call);
                // The media prepared for it goes.
                events.push_back(SipEvent::NextFailed {
                    conversation: conversation.clone(),
                });
                let still_up = self.current.as_ref().is_some_and(|call| {
                    matches!(
                        call.state(),
                        CallState::Established | CallState::AwaitingAck
                    )
                });
                if let Some(current) = &mut self.current
                    && matches!(next.kind, NextKind::Referred)
                {
                    current.notify_referral(status, &text, now, entropy);
                }
                if matches!(next.kind, NextKind::Referred) {
                    events.push_back(SipEvent::Line(LineEvent::CallTransferred {
                        conversation: conversation.clone(),
                        outcome: TransferOutcome::Failed {
                            reason: format!("the new party did not take the call: {status} {text}"),
                        },
                        kind: TransferKind::Remote { to: next.party },
                    }));
                }
                if !still_up {
                    // The old dialog ended meanwhile: nothing is left of the call.
                    if let Some(old) = self.current.take() {
                        self.leaving.push(old);
                    }
                    self.quiet_end = None;
                    self.report_end(events, reason);
                }
            }
        }
        true
    }
}

/// What a dialog that is not yet the call had to say.
struct News {
    /// It said anything at all.
    any: bool,
    /// Its callee rings.
    rang: bool,
    /// Up (their SDP) or over (why), when it came to that.
    outcome: Option<Result<String, EndReason>>,
}

/// Reads a dialog's events up to its answer or its end (what follows waits for the next round).
fn settle(call: &mut Call) -> News {
    let mut news = News {
        any: false,
        rang: false,
        outcome: None,
    };
    while let Some(event) = call.poll_event() {
        news.any = true;
        match event {
            CallEvent::Ringing => news.rang = true,
            CallEvent::Established { remote_sdp } => {
                news.outcome = Some(Ok(remote_sdp));
                break;
            }
            CallEvent::Ended(reason) => {
                news.outcome = Some(Err(reason));
                break;
            }
            _ => {}
        }
    }
    news
}
