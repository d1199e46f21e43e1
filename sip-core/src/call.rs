//! One call: an INVITE dialog (RFC 3261 §12–15) in either direction, sans-IO.
//!
//! Outgoing: [`Call::outgoing`] sends the INVITE, answers a 401/407 challenge once, reports
//! ringing, ACKs the 2xx (re-ACKing retransmissions), or reports the failure; [`Call::hangup`]
//! cancels an unanswered call or sends BYE. Incoming: [`Call::incoming`] answers 100 and 180;
//! [`Call::answer`] sends 200 with our SDP and retransmits it until the ACK (Timers G/H);
//! [`Call::reject`] sends 486/603. Either side's BYE ends it. Their re-INVITE gets our SDP with
//! the direction mirrored; [`Call::reoffer`] sends ours (hold and resume), and sends it again
//! after a glare (their re-INVITE crossing ours: 491 both ways; RFC 3261 §14.1). [`Call::refer`]
//! transfers an established call (RFC 3515; `call/transfer.rs`), blind or attended (a `Replaces`
//! in `Refer-To`): the far end's NOTIFYs decide the outcome, and a transferred call ends with a
//! BYE. Their REFER is accepted and reported ([`CallEvent::Referred`], `call/referred.rs`); the
//! line places the new call ([`Call::outgoing_referred`]) and reports its progress back with
//! [`Call::notify_referral`].
//!
//! Refused up front: a `Require` we lack (420), a body without SDP (415), a session interval
//! below ours (422), bad `Replaces` (400). Session timers (`session_timer.rs`) refresh or expire
//! the call; [`Call::rebind`] moves it to a new connection (target refresh) and
//! [`Call::connection_lost`] gives up what was in flight on a dropped one.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::auth::{Challenge, DigestRequest};
use crate::message::{
    BodyError, Headers, Message, Method, NameAddr, Request, Response, Uri, sdp_of,
};
use crate::registration::Entropy;
use crate::sdp::SessionDescription;
use crate::transaction::{self, ClientTransaction, Timers, TransactionEvent};

/// SIP extensions (option tags) this UA always implements, for `Require` (RFC 3261 §8.2.2.3);
/// `timer` too while session timers are on. `replaces`: an INVITE that takes a call's place
/// (RFC 3891; PJSIP requires it when it follows an attended transfer's REFER).
pub const SUPPORTED: [&str; 1] = ["replaces"];
/// Who we are on this line. Its `Debug` leaves the password out: calls and the line that hold
/// it are debug-printable, and a secret must not reach a log line by that road.
#[derive(Clone)]
pub struct LocalParty {
    pub aor: Uri,
    pub contact: Uri,
    /// Via transport token and sent-by.
    pub transport: String,
    pub sent_by: String,
    pub reliable: bool,
    pub username: String,
    pub password: String,
    pub user_agent: String,
    /// Session timers (RFC 4028): the interval we ask for and accept, in seconds; None: off.
    pub session_interval: Option<u32>,
}

impl std::fmt::Debug for LocalParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalParty")
            .field("aor", &self.aor)
            .field("contact", &self.contact)
            .field("transport", &self.transport)
            .field("sent_by", &self.sent_by)
            .field("reliable", &self.reliable)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("user_agent", &self.user_agent)
            .field("session_interval", &self.session_interval)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// We hung up (or cancelled).
    Local,
    /// They hung up.
    Remote,
    /// The callee refused: 486 busy, 603 decline, 404, …
    Rejected { status: u16, reason: String },
    /// We declined an incoming call.
    Declined,
    /// The caller gave up before we answered.
    Cancelled,
    /// No answer, no ACK, or a transport failure.
    Failed { reason: String },
    /// We handed the call to another party (a blind transfer the far end carried out).
    Transferred,
    /// The connection to the server was lost (or never there) before the call could go on.
    Network { reason: String },
    /// The far end vanished: the session timer ran out, a refresh found no dialog (408/481), or
    /// no media arrived for too long.
    Timeout { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// 180/183 from the callee.
    Ringing,
    /// A DTMF digit in their INFO (`0`–`9`, `*`, `#`, `A`–`D`).
    Dtmf(char),
    /// The call is up; `remote_sdp` is their offer (incoming) or answer (outgoing).
    Established {
        remote_sdp: String,
    },
    /// A re-INVITE changed their media description.
    RemoteSdpChanged {
        remote_sdp: String,
    },
    /// The far end accepted our re-INVITE (hold, resume) with this answer.
    ReofferAnswered {
        remote_sdp: String,
    },
    /// The far end refused our re-INVITE; the call goes on as it was.
    ReofferFailed {
        status: u16,
    },
    /// A transfer we asked for ([`Call::refer`]) ended; when accepted, `Ended(Transferred)`
    /// follows.
    Transferred(TransferOutcome),
    /// The far end asks us to call someone else (their REFER, accepted with 202): the line
    /// places that call and reports its progress with [`Call::notify_referral`].
    Referred(Referral),
    Ended(EndReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Outgoing, no response yet.
    Calling,
    /// Outgoing, the callee rings.
    Ringing,
    /// Incoming, waiting for the agent to answer or reject.
    Offered,
    /// Incoming, 200 sent, waiting for the ACK.
    AwaitingAck,
    Established,
    /// BYE or CANCEL sent, waiting for it to complete.
    Ending,
    Ended,
}

/// Dialog identifiers and routing (§12).
#[derive(Debug, Clone)]
struct Dialog {
    local: NameAddr,
    remote: NameAddr,
    remote_target: Uri,
    route_set: Vec<String>,
    local_seq: u32,
}

#[derive(Debug)]
pub struct Call {
    party: LocalParty,
    timers: Timers,
    state: CallState,
    call_id: String,
    dialog: Dialog,
    local_sdp: String,
    remote_sdp: Option<String>,
    /// The INVITE we sent (outgoing) or received (incoming).
    invite: Request,
    invite_transaction: Option<ClientTransaction>,
    other_transaction: Option<ClientTransaction>,
    authenticated: bool,
    /// Credentials to put on the next INVITE after a challenge.
    pending_credentials: Option<(&'static str, String)>,
    /// Our final response to their INVITE, retransmitted on UDP until the ACK (Timer G).
    final_response: Option<(Vec<u8>, Instant, Duration)>,
    /// Timer H: give up waiting for the ACK.
    ack_deadline: Option<Instant>,
    /// Our ACK for their 2xx (with its CSeq number), resent for each retransmitted 2xx.
    ack: Option<(u32, Vec<u8>)>,
    /// Responses we sent per (CSeq, method), for retransmitted requests.
    answered: Vec<(u32, Method, Vec<u8>)>,
    /// Refreshes (or expects refreshes) once the call is up, when session timers are on.
    session_timer: Option<SessionTimer>,
    /// A blind transfer we asked for, until it ends.
    transfer: Option<transfer::Transfer>,
    /// A transfer's outcome is known; its subscription's later NOTIFYs still get 200.
    refer_subscribed: bool,
    /// That outcome was a NOTIFY's 2xx (see [`Call::transfer_confirmed`]).
    transfer_confirmed: bool,
    /// Their REFER's implicit subscription: the NOTIFYs we owe them.
    referral: Option<referred::Subscription>,
    /// DTMF digits we send in INFO requests, one at a time.
    info_dtmf: info_dtmf::InfoDtmf,
    /// Headers our INVITE carries besides the usual (a referred call's `Replaces`,
    /// `Referred-By`; the caller's own, such as a caller ID or a campaign).
    invite_extra: Vec<(String, String)>,
    /// The line's connection dropped and it has not been rebound yet.
    disconnected: bool,
    /// Our last refused re-INVITE, kept while it ACKs retransmitted refusals (Timer D).
    refused_invite: Option<ClientTransaction>,
    /// Our re-INVITE met theirs (glare, 491): it goes again at this time (RFC 3261 §14.1).
    reoffer_again_at: Option<Instant>,
    /// What happens to our re-INVITE if it is still unanswered then (see [`Unanswered`]).
    reinvite_unanswered: Option<Unanswered>,
    /// A re-INVITE of ours given up unanswered, kept in case its answer comes after all (a 2xx
    /// is ACKed, and our SDP offered again so the far end is back where we are).
    abandoned_invite: Option<ClientTransaction>,
    /// Our SDP before the re-INVITE in progress (or waiting out a glare): it stands again if
    /// that is refused, so a later refresh does not offer a refused hold after all.
    offer_before: Option<String>,
    /// Glares in a row for the current offer: after [`MAX_GLARES`] it is reported refused.
    glares: u32,
    /// We placed the call: we own its Call-ID, which decides how long glare waits.
    we_called: bool,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<CallEvent>,
}

impl Call {
    /// Starts an outgoing call to `target` with our SDP offer.
    pub fn outgoing(
        party: LocalParty,
        target: Uri,
        offer: String,
        timers: Timers,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> Self {
        Self::outgoing_with(party, target, Vec::new(), offer, timers, now, entropy)
    }

    /// Starts the outgoing call a far end's REFER asked for: its INVITE carries the referral's
    /// `Replaces` and `Referred-By` (RFC 3891 §5, RFC 3892).
    pub fn outgoing_referred(
        party: LocalParty,
        target: Uri,
        referral: Option<&Referral>,
        offer: String,
        timers: Timers,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> Self {
        let extra = referral
            .into_iter()
            .flat_map(|r| [("Replaces", &r.replaces), ("Referred-By", &r.referred_by)])
            .filter_map(|(name, value)| Some((name.to_owned(), value.clone()?)))
            .collect();
        Self::outgoing_with(party, target, extra, offer, timers, now, entropy)
    }

    /// As [`Call::outgoing`], the INVITE also carrying `extra` headers (a caller ID, a campaign,
    /// a referral's). A header whose name is not a token or whose value holds a control
    /// character is left out: it could end the header and start another.
    pub fn outgoing_with(
        party: LocalParty,
        target: Uri,
        extra: Vec<(String, String)>,
        offer: String,
        timers: Timers,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> Self {
        let local = NameAddr {
            display: None,
            uri: party.aor.clone(),
            params: vec![("tag".into(), Some(entropy.token()))],
        };
        let remote = NameAddr {
            display: None,
            uri: target.clone(),
            params: Vec::new(),
        };
        let dialog = Dialog {
            local,
            remote,
            remote_target: target,
            route_set: Vec::new(),
            local_seq: 0,
        };
        let mut call = Self::new(
            party,
            timers,
            entropy.token(),
            dialog,
            offer,
            Request::placeholder(),
            CallState::Calling,
        );
        call.invite_extra = extra
            .into_iter()
            .filter(|(name, value)| {
                crate::message::is_token(name) && !value.chars().any(char::is_control)
            })
            .collect();
        call.send_invite(now, entropy);
        call
    }

    /// Takes an incoming INVITE: answers 100 Trying and 180 Ringing. Refuses it (the bytes to
    /// send) with 420 when it requires an extension we lack, 400 when it has no usable From, To or
    /// SIP Contact.
    pub fn incoming(
        party: LocalParty,
        invite: Request,
        timers: Timers,
        entropy: &mut dyn Entropy,
    ) -> Result<Self, Vec<u8>> {
        // RFC 3261 §8.2.2.3: an extension the caller requires and we lack is refused with 420,
        // naming it, rather than ignored (the caller would rely on it).
        let required: Vec<&str> = invite
            .headers
            .all("Require")
            .into_iter()
            .map(str::trim)
            .filter(|tag| {
                let timer = party.session_interval.is_some() && tag.eq_ignore_ascii_case("timer");
                !tag.is_empty() && !timer && !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(tag))
            })
            .collect();
        if !required.is_empty() {
            let mut refusal = Response::to_request(&invite, 420, None);
            refusal.headers.push("Unsupported", required.join(", "));
            return Err(refusal.to_bytes());
        }
        // RFC 3891 §3: more than one Replaces cannot say which dialog is meant. Whether one
        // names a dialog of ours is for the line, which knows them all.
        if ReplacesHeader::of(&invite) == ReplacesHeader::Invalid {
            return Err(Response::to_request(&invite, 400, None).to_bytes());
        }
        // RFC 4028 §8.1: an interval below our minimum is refused, naming the minimum.
        if party.session_interval.is_some()
            && session_timer::requested(&invite.headers).is_some_and(|(s, _)| s < MIN_SE)
        {
            let mut refusal = Response::to_request(&invite, 422, None);
            refusal.headers.push("Min-SE", MIN_SE.to_string());
            return Err(refusal.to_bytes());
        }
        let remote_sdp = match sdp_body(&invite.headers, &invite.body) {
            Ok(sdp) => sdp,
            Err(_) => return Err(unsupported_media(&invite, None)),
        };
        // The first SIP contact: a `tel:` or `mailto:` contact beside it is no reason to refuse.
        let contact = invite
            .headers
            .all("Contact")
            .into_iter()
            .filter_map(|c| NameAddr::parse(c).ok())
            .find(|c| matches!(c.uri.scheme.as_str(), "sip" | "sips"));
        let (Some(from), Some(to), Some(contact)) =
            (invite.headers.from(), invite.headers.to(), contact)
        else {
            return Err(Response::to_request(&invite, 400, None).to_bytes());
        };
        let remote_target = contact.uri;
        let mut local = to;
        local.params.retain(|(n, _)| n != "tag");
        local.params.push(("tag".into(), Some(entropy.token())));
        let dialog = Dialog {
            local,
            remote: from,
            remote_target,
            route_set: invite
                .headers
                .all("Record-Route")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            local_seq: 0,
        };
        let call_id = invite.headers.call_id().to_owned();
        let mut call = Self::new(
            party,
            timers,
            call_id,
            dialog,
            String::new(),
            invite,
            CallState::Offered,
        );
        call.remote_sdp = remote_sdp;
        call.respond_to_invite(100, None);
        call.respond_to_invite(180, None);
        Ok(call)
    }

    fn new(
        party: LocalParty,
        timers: Timers,
        call_id: String,
        dialog: Dialog,
        local_sdp: String,
        invite: Request,
        state: CallState,
    ) -> Self {
        Self {
            party,
            timers,
            state,
            call_id,
            dialog,
            local_sdp,
            remote_sdp: None,
            invite,
            invite_transaction: None,
            other_transaction: None,
            authenticated: false,
            pending_credentials: None,
            final_response: None,
            ack_deadline: None,
            ack: None,
            answered: Vec::new(),
            session_timer: None,
            transfer: None,
            refer_subscribed: false,
            transfer_confirmed: false,
            referral: None,
            info_dtmf: info_dtmf::InfoDtmf::default(),
            invite_extra: Vec::new(),
            disconnected: false,
            refused_invite: None,
            reoffer_again_at: None,
            reinvite_unanswered: None,
            abandoned_invite: None,
            offer_before: None,
            glares: 0,
            we_called: state == CallState::Calling,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn state(&self) -> CallState {
        self.state
    }

    /// Their offer (incoming) or answer (outgoing), once known.
    pub fn remote_sdp(&self) -> Option<&str> {
        self.remote_sdp.as_deref()
    }

    /// Answers an incoming call with our SDP.
    pub fn answer(&mut self, sdp: String, now: Instant) {
        if self.state != CallState::Offered {
            return;
        }
        self.local_sdp = sdp;
        if let Some(ours) = self.party.session_interval {
            let terms = Terms::for_offer(&self.invite.headers, ours);
            self.session_timer = Some(SessionTimer::answering(&terms, now));
        }
        self.respond_to_invite(200, Some(now));
        self.state = CallState::AwaitingAck;
        self.ack_deadline = Some(now + 64 * self.timers.t1);
    }

    /// Declines an incoming call (486 Busy Here or 603 Decline).
    pub fn reject(&mut self, status: u16, now: Instant) {
        if self.state != CallState::Offered {
            return;
        }
        self.respond_to_invite(status, Some(now));
        self.ack_deadline = Some(now + 64 * self.timers.t1);
        self.end(EndReason::Declined);
    }

    /// Whether [`Self::reoffer`] would send now: the call is established, no INVITE of ours is in
    /// progress (RFC 3261 §14.1: one at a time), and the line's connection is not down (what
    /// waits goes after the target refresh that [`Self::rebind`] sends).
    pub fn can_reoffer(&self) -> bool {
        self.state == CallState::Established
            && self.invite_transaction.is_none()
            && !self.disconnected
    }

    /// Sends a re-INVITE with a new offer (hold, resume). False when it cannot now
    /// ([`Self::can_reoffer`]).
    pub fn reoffer(&mut self, sdp: String, now: Instant, entropy: &mut dyn Entropy) -> bool {
        if !self.can_reoffer() {
            return false;
        }
        // A newer offer replaces one waiting out a glare (and starts its own count).
        if self.reoffer_again_at.take().is_none() {
            self.glares = 0;
        }
        let before = std::mem::replace(&mut self.local_sdp, sdp);
        self.offer_before.get_or_insert(before);
        let mut request = self.in_dialog_request(Method::Invite, entropy);
        request
            .headers
            .push("Contact", format!("<{}>", self.party.contact));
        // Every re-INVITE of ours refreshes the session (RFC 4028 §7.4).
        if let Some(timer) = &self.session_timer {
            request.headers.push("Supported", "timer");
            request
                .headers
                .push("Session-Expires", timer.header(timer.we_refresh));
        }
        request.headers.push("Content-Type", "application/sdp");
        request.body = self.local_sdp.clone().into_bytes();
        self.invite_transaction = Some(ClientTransaction::start(
            request,
            self.party.reliable,
            self.timers,
            now,
        ));
        self.reinvite_unanswered = Some(Unanswered::CancelAt(now + 64 * self.timers.t1));
        self.drain_transactions(now, entropy);
        true
    }

    /// The line reconnected with a new local address (contact, Via, and `sdp` when our media
    /// address moved too): requests from now on use it, and an established call sends a target
    /// refresh — a re-INVITE with our current SDP and
    /// the new Contact (RFC 5626 §4.5) — so the far end's requests (their BYE) reach us over
    /// the new connection. Returns whether the refresh went out; an INVITE still in progress
    /// (or a call not yet up) carries the new Contact with its next request instead.
    pub fn rebind(
        &mut self,
        party: LocalParty,
        sdp: Option<String>,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        self.party = party;
        // Our media moved with the machine's address: the refresh carries the new description.
        if let Some(sdp) = sdp {
            self.local_sdp = sdp;
        }
        if std::mem::take(&mut self.disconnected) {
            // What went out on the dead connection never arrived: a BYE goes again, and so
            // does our 200 while its ACK is awaited.
            if let Some(bye) = self
                .other_transaction
                .as_ref()
                .filter(|t| t.request().method == Method::Bye)
                .map(|t| t.request().clone())
            {
                self.start_other(bye, now);
            }
            if self.state == CallState::AwaitingAck {
                self.respond_to_invite(200, Some(now));
                self.ack_deadline = Some(now + 64 * self.timers.t1);
            }
            if let Some(timer) = &mut self.session_timer {
                timer.resumed(now);
            }
        }
        if self.state != CallState::Established || self.invite_transaction.is_some() {
            return false;
        }
        let sdp = self.local_sdp.clone();
        self.reoffer(sdp, now, entropy)
    }

    /// The call is given up because the connection it was set up over dropped before it was
    /// answered. For an outgoing call, the CANCEL to send once a connection is back: a proxy
    /// that still holds the INVITE (the connection dropped, the proxy did not restart) stops
    /// the callee's ringing instead of letting them answer nobody.
    pub fn abandon(&self) -> Option<Vec<u8>> {
        matches!(self.state, CallState::Calling | CallState::Ringing)
            .then(|| Message::Request(self.cancel_for_invite()).to_bytes())
    }

    /// The line's stream connection dropped. A re-INVITE of ours in flight on it can never be
    /// answered: it is given up (reported refused, so a hold request reverts; the call goes on)
    /// rather than timing out into a hang-up, and the target refresh on [`Self::rebind`]
    /// replaces it. Session timers wait for the line to return.
    pub fn connection_lost(&mut self) {
        self.disconnected = true;
        self.reinvite_unanswered = None;
        if self.state == CallState::Established && self.invite_transaction.take().is_some() {
            self.restore_offer();
            self.events
                .push_back(CallEvent::ReofferFailed { status: 503 });
        }
    }

    /// Hangs up: CANCEL while an outgoing call rings, BYE once established.
    pub fn hangup(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        match self.state {
            CallState::Calling | CallState::Ringing => {
                let cancel = self.cancel_for_invite();
                self.start_other(cancel, now);
                self.state = CallState::Ending;
            }
            CallState::Offered => self.reject(486, now),
            CallState::AwaitingAck | CallState::Established => {
                let bye = self.in_dialog_request(Method::Bye, entropy);
                self.start_other(bye, now);
                self.state = CallState::Ending;
            }
            CallState::Ending | CallState::Ended => {}
        }
    }

    /// True when `replaces` names this call's dialog (RFC 3891 §3: their from-tag is the
    /// remote tag, their to-tag ours).
    pub fn is_replaced_by(&self, replaces: &Replaces) -> bool {
        self.call_id == replaces.call_id
            && self.dialog.local.tag() == Some(replaces.to_tag.as_str())
            && self.dialog.remote.tag() == Some(replaces.from_tag.as_str())
    }

    /// True when `message` belongs to this call.
    pub fn matches(&self, message: &Message) -> bool {
        message.call_id() == self.call_id
    }

    pub fn handle_message(&mut self, message: Message, now: Instant, entropy: &mut dyn Entropy) {
        match message {
            Message::Response(response) => self.handle_response(response, now, entropy),
            Message::Request(request) => self.handle_request(request, now, entropy),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        for transaction in self.transactions_mut() {
            transaction.handle_timeout(now);
        }
        if let Some((bytes, at, interval)) = &mut self.final_response
            && now >= *at
        {
            self.transmits.push_back(bytes.clone());
            *interval = (*interval * 2).min(self.timers.t2);
            *at = now + *interval;
        }
        if self.state == CallState::Established
            && let Some(timer) = &mut self.session_timer
            && now >= timer.due()
        {
            match timer.what_is_due(now) {
                // Without a connection nothing can pass either way; the line resumes us.
                _ if self.disconnected => timer.postpone(now),
                Due::Refresh if self.invite_transaction.is_none() => {
                    // Counted from its answer; retried after a pause if none makes it count.
                    timer.sent(now);
                    let sdp = self.local_sdp.clone();
                    self.reoffer(sdp, now, entropy);
                }
                Due::Refresh => timer.postpone(now),
                Due::Expired => self.gone("the session timer expired", now, entropy),
            }
        }
        self.check_unanswered_reinvite(now);
        if self.reoffer_again_at.is_some_and(|at| now >= at) {
            // `reoffer` clears the wait and keeps the glare count for this offer.
            let sdp = self.local_sdp.clone();
            if !self.reoffer(sdp, now, entropy) {
                self.reoffer_again_at = None;
                self.restore_offer();
            }
        }
        if self.ack_deadline.is_some_and(|at| now >= at) {
            self.ack_deadline = None;
            self.final_response = None;
            if self.state == CallState::AwaitingAck {
                // No ACK for our 200 (Timer H): the dialog is dead; say so and hang up (§13.3.1.4).
                let bye = self.in_dialog_request(Method::Bye, entropy);
                self.start_other(bye, now);
                self.end(EndReason::Failed {
                    reason: "no ACK for our answer".into(),
                });
            }
        }
        self.drain_transactions(now, entropy);
    }

    /// The next bytes to send; a message the serializer refused (empty) is skipped.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        while let Some(bytes) = self.transmits.pop_front() {
            if !bytes.is_empty() {
                return Some(bytes);
            }
        }
        None
    }

    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let transactions = [
            &self.invite_transaction,
            &self.other_transaction,
            &self.refused_invite,
            &self.abandoned_invite,
        ]
        .into_iter()
        .flatten()
        .filter_map(ClientTransaction::poll_timeout);
        let retransmit = self
            .final_response
            .as_ref()
            .filter(|_| !self.party.reliable)
            .map(|(_, at, _)| *at);
        let session = self
            .session_timer
            .as_ref()
            .filter(|_| self.state == CallState::Established)
            .map(SessionTimer::due);
        let unanswered = self.reinvite_unanswered.map(Unanswered::at);
        let transfer = self
            .transfer
            .as_ref()
            .and_then(transfer::Transfer::poll_timeout);
        let referral = self
            .referral
            .as_ref()
            .and_then(referred::Subscription::poll_timeout);
        let info = self.info_dtmf.poll_timeout();
        transactions
            .chain(retransmit)
            .chain(
                self.reoffer_again_at
                    .filter(|_| self.state == CallState::Established),
            )
            .chain(self.ack_deadline)
            .chain(session)
            .chain(unanswered.filter(|_| self.state == CallState::Established))
            .chain(transfer)
            .chain(referral)
            .chain(info)
            .min()
    }

    /// Ended and nothing left to send or wait for: the owner may drop it.
    pub fn is_finished(&self) -> bool {
        self.state == CallState::Ended && self.poll_timeout().is_none() && self.transmits.is_empty()
    }

    // ---------------------------------------------------------------- outgoing

    fn send_invite(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        self.dialog.local_seq += 1;
        let mut headers = self.dialog_headers(Method::Invite, self.dialog.local_seq, entropy);
        headers.push("Contact", format!("<{}>", self.party.contact));
        headers.push(
            "Allow",
            "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY, REFER",
        );
        headers.push("User-Agent", self.party.user_agent.clone());
        for (name, value) in &self.invite_extra {
            headers.push(name, value.clone());
        }
        if let Some(interval) = self.party.session_interval {
            headers.push("Supported", "timer");
            headers.push("Session-Expires", interval.to_string());
            headers.push("Min-SE", MIN_SE.to_string());
        }
        headers.push("Content-Type", "application/sdp");
        let mut request = Request {
            method: Method::Invite,
            uri: self.dialog.remote_target.clone(),
            headers,
            body: self.local_sdp.clone().into_bytes(),
        };
        if let Some(credentials) = self.pending_credentials.take() {
            request.headers.push(credentials.0, credentials.1);
        }
        self.invite = request.clone();
        self.invite_transaction = Some(ClientTransaction::start(
            request,
            self.party.reliable,
            self.timers,
            now,
        ));
        self.drain_transactions(now, entropy);
    }

    fn handle_response(&mut self, response: Response, now: Instant, entropy: &mut dyn Entropy) {
        let cseq = response.headers.cseq();
        let is_invite = cseq.as_ref().is_some_and(|c| c.method == Method::Invite);
        if is_invite
            && (200..300).contains(&response.status)
            && let Some((seq, ack)) = &self.ack
            && cseq.as_ref().is_some_and(|c| c.seq == *seq)
        {
            // A retransmitted 2xx: the ACK was lost.
            self.transmits.push_back(ack.clone());
            return;
        }
        for transaction in self.transactions_mut() {
            if transaction.matches(&response) {
                transaction.handle_response(response, now);
                break;
            }
        }
        self.drain_transactions(now, entropy);
    }

    fn drain_transactions(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        let invite_events = drain(&mut self.invite_transaction, &mut self.transmits);
        let other_is_bye = self
            .other_transaction
            .as_ref()
            .is_some_and(|t| t.request().method == Method::Bye);
        let other_events = drain(&mut self.other_transaction, &mut self.transmits);
        // A refused re-INVITE lingers only to ACK their retransmitted refusals.
        drain(&mut self.refused_invite, &mut self.transmits);
        let abandoned_events = drain(&mut self.abandoned_invite, &mut self.transmits);
        for event in abandoned_events {
            self.on_abandoned_event(event, now, entropy);
        }
        for event in invite_events {
            self.on_invite_event(event, now, entropy);
        }
        self.drain_transfer(now, entropy);
        self.drain_referral(now);
        self.drain_info(now, entropy);
        for event in other_events {
            // A BYE's outcome, whatever it is, ends the call for us. A CANCEL's does not: the
            // INVITE's 487 (or a late 2xx, then BYE) does.
            if other_is_bye
                && matches!(
                    event,
                    TransactionEvent::Final(_)
                        | TransactionEvent::Timeout
                        | TransactionEvent::TransportError
                )
            {
                self.end(EndReason::Local);
            }
        }
    }

    fn on_invite_event(
        &mut self,
        event: TransactionEvent,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        if self.state == CallState::Established {
            return self.on_reinvite_event(event, now, entropy);
        }
        // Our re-INVITE answered after the call ended (a transfer completed while it was in
        // flight): its 2xx still gets an ACK, and nothing else happens; the call stays ended.
        if self.state == CallState::Ended
            && let TransactionEvent::Final(response) = &event
            && let Some(cseq) = response.headers.cseq()
            && cseq.seq != self.invite_cseq()
        {
            if response.status < 300 {
                let ack = self.ack_for(cseq.seq, entropy);
                self.transmits.push_back(ack);
            }
            return;
        }
        match event {
            TransactionEvent::Provisional(response) if matches!(response.status, 180 | 183) => {
                if self.state == CallState::Calling {
                    self.state = CallState::Ringing;
                    self.events.push_back(CallEvent::Ringing);
                }
            }
            TransactionEvent::Provisional(_) => {}
            TransactionEvent::Final(response) if response.status < 300 => {
                self.on_answered(response, now, entropy)
            }
            TransactionEvent::Final(response)
                if matches!(response.status, 401 | 407)
                    && !self.authenticated
                    && self.state != CallState::Ending =>
            {
                self.authenticated = true;
                let proxy = response.status == 407;
                let header = if proxy {
                    "Proxy-Authenticate"
                } else {
                    "WWW-Authenticate"
                };
                match Challenge::pick(
                    response
                        .headers
                        .iter()
                        .filter(|(n, _)| *n == header)
                        .map(|(_, v)| v),
                ) {
                    Ok(challenge) => {
                        let uri = self.dialog.remote_target.to_string();
                        let digest = DigestRequest {
                            username: &self.party.username,
                            password: &self.party.password,
                            method: "INVITE",
                            uri: &uri,
                            body: b"",
                        };
                        let value = challenge.answer(&digest, &entropy.token(), 1);
                        self.pending_credentials = Some((
                            if proxy {
                                "Proxy-Authorization"
                            } else {
                                "Authorization"
                            },
                            value,
                        ));
                        self.invite_transaction = None;
                        self.send_invite(now, entropy);
                    }
                    Err(e) => self.end(EndReason::Failed {
                        reason: format!("cannot answer the challenge: {e}"),
                    }),
                }
            }
            TransactionEvent::Final(response) => {
                if self.state == CallState::Ending && response.status == 487 {
                    self.end(EndReason::Local);
                } else {
                    self.end(EndReason::Rejected {
                        status: response.status,
                        reason: response.reason,
                    });
                }
            }
            TransactionEvent::Timeout => self.end(EndReason::Failed {
                reason: "no answer from the network".into(),
            }),
            TransactionEvent::TransportError => self.end(EndReason::Failed {
                reason: "transport error".into(),
            }),
        }
    }

    /// Our re-INVITE got a provisional response and then nothing for 64·T1 (our choice: RFC
    /// 3261 sets no limit once a 1xx came): a far end that never answers it would keep every
    /// later one of ours (a hold, a resume, a refresh) waiting for good, since only one may be in
    /// progress (§14.1). It is cancelled (§9.1); their 487 refuses it as any refusal would. If
    /// even that brings no final answer in 64·T1 more, it is given up (§9.1) and reported
    /// refused — the call goes on with our SDP as before it; a 2xx that still comes is ACKed
    /// and that SDP offered again ([`Self::on_abandoned_event`]).
    fn check_unanswered_reinvite(&mut self, now: Instant) {
        let Some(due) = self.reinvite_unanswered.filter(|u| now >= u.at()) else {
            return;
        };
        self.reinvite_unanswered = None;
        let Some(reinvite) = self
            .invite_transaction
            .as_ref()
            .filter(|_| self.state == CallState::Established)
        else {
            return;
        };
        let proceeding = reinvite.state() == transaction::State::Proceeding;
        match due {
            // The CANCEL of an earlier re-INVITE still holds the slot: a moment later.
            Unanswered::CancelAt(_) if proceeding && self.other_transaction.is_some() => {
                self.reinvite_unanswered = Some(Unanswered::CancelAt(now + self.timers.t1));
            }
            Unanswered::CancelAt(_) if proceeding => {
                let cancel = cancel_for(reinvite.request());
                self.start_other(cancel, now);
                self.reinvite_unanswered = Some(Unanswered::GiveUpAt(now + 64 * self.timers.t1));
            }
            // Without a provisional response Timer B ends it (and the call, §12.2.1.2).
            Unanswered::CancelAt(_) => {}
            Unanswered::GiveUpAt(_) => {
                self.abandoned_invite = self.invite_transaction.take();
                self.restore_offer();
                self.events
                    .push_back(CallEvent::ReofferFailed { status: 408 });
            }
        }
    }

    /// Our SDP goes back to what it was before a re-INVITE that did not succeed.
    fn restore_offer(&mut self) {
        if let Some(before) = self.offer_before.take() {
            self.local_sdp = before;
        }
    }

    /// A re-INVITE we gave up was answered after all: a 2xx is ACKed (else the far end resends
    /// it and then ends the call, §13.3.1.4), and since the far end now holds to the offer we
    /// gave up, our SDP goes again to bring it back.
    fn on_abandoned_event(
        &mut self,
        event: TransactionEvent,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        let TransactionEvent::Final(response) = event else {
            return;
        };
        if !(200..300).contains(&response.status) || self.state != CallState::Established {
            return;
        }
        self.ack_answer(&response, entropy);
        // Not now (a newer re-INVITE of ours is in progress, or the connection is down): that
        // one, or the refresh after the reconnect, carries this SDP anyway.
        let sdp = self.local_sdp.clone();
        let _sent = self.reoffer(sdp, now, entropy);
    }

    /// ACKs a 2xx to an INVITE of ours (the first or a re-INVITE), keeping the ACK for its
    /// retransmissions: a new in-dialog request carrying the INVITE's CSeq number (§13.2.2.4).
    fn ack_answer(&mut self, response: &Response, entropy: &mut dyn Entropy) {
        let seq = response
            .headers
            .cseq()
            .map_or(self.dialog.local_seq, |c| c.seq);
        let ack = self.ack_for(seq, entropy);
        self.transmits.push_back(ack.clone());
        self.ack = Some((seq, ack));
    }

    /// The outcome of our re-INVITE in an established call.
    fn on_reinvite_event(
        &mut self,
        event: TransactionEvent,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        if !matches!(event, TransactionEvent::Provisional(_)) {
            self.reinvite_unanswered = None;
        }
        // Answered, refused on a glare (offered again later), or refused.
        match &event {
            TransactionEvent::Final(response) if response.status < 300 => self.offer_before = None,
            TransactionEvent::Final(response)
                if response.status == 491 && self.glares < MAX_GLARES => {}
            TransactionEvent::Provisional(_) => {}
            _ => self.restore_offer(),
        }
        match event {
            TransactionEvent::Provisional(_) => {}
            TransactionEvent::Final(response) if response.status < 300 => {
                if let Some(timer) = &mut self.session_timer {
                    timer.refreshed(now);
                }
                self.ack_answer(&response, entropy);
                self.invite_transaction = None;
                let sdp = answer_sdp(&response);
                self.remote_sdp = Some(sdp.clone());
                self.events
                    .push_back(CallEvent::ReofferAnswered { remote_sdp: sdp });
            }
            // RFC 3261 §12.2.1.2: 481 or 408 to a request in the dialog means the far end is
            // gone; the dialog ends.
            TransactionEvent::Final(response) if matches!(response.status, 408 | 481) => {
                self.invite_transaction = None;
                self.gone(
                    &format!("the far end answered our re-INVITE {}", response.status),
                    now,
                    entropy,
                );
            }
            // Glare: our re-INVITE crossed theirs and each side refused the other's (491). Ours
            // goes again after a random wait, longer for the Call-ID's owner (RFC 3261 §14.1:
            // 2.1–4 s for it, up to 2 s for the other), so the two do not cross again.
            TransactionEvent::Final(response)
                if response.status == 491 && self.glares < MAX_GLARES =>
            {
                self.glares += 1;
                self.refused_invite = self.invite_transaction.take();
                let spread = token_number(&entropy.token());
                let wait_ms = if self.we_called {
                    2100 + spread % 1900
                } else {
                    spread % 2000
                };
                self.reoffer_again_at = Some(now + Duration::from_millis(wait_ms));
            }
            TransactionEvent::Final(response) => {
                // Refused: the next INVITE may go at once (§14.1 forbids only one in progress).
                self.refused_invite = self.invite_transaction.take();
                self.events.push_back(CallEvent::ReofferFailed {
                    status: response.status,
                });
            }
            TransactionEvent::Timeout => {
                self.invite_transaction = None;
                self.gone("no answer to our re-INVITE", now, entropy);
            }
            TransactionEvent::TransportError => self
                .events
                .push_back(CallEvent::ReofferFailed { status: 408 }),
        }
    }

    /// Their re-INVITE or UPDATE refreshed the session: the timer restarts, and our answer
    /// names the interval and who refreshes (they, as this request's UAC, or we).
    fn refreshed_by_them(&mut self, request: &Request, response: &mut Response, now: Instant) {
        if let Some(timer) = &mut self.session_timer {
            timer.refreshed(now);
            response
                .headers
                .push("Session-Expires", timer.header(!timer.we_refresh));
            if !timer.we_refresh && session_timer::supports_timer(&request.headers) {
                response.headers.push("Require", "timer");
            }
        }
    }

    /// Every client transaction the call has running: its INVITE (or re-INVITE), its other
    /// request (BYE, CANCEL), and a refused re-INVITE lingering to ACK retransmissions.
    fn transactions_mut(&mut self) -> impl Iterator<Item = &mut ClientTransaction> {
        let transfer = self
            .transfer
            .as_mut()
            .and_then(transfer::Transfer::transaction_mut);
        let referral = self
            .referral
            .as_mut()
            .and_then(referred::Subscription::transaction_mut);
        let info = self.info_dtmf.transaction_mut();
        [
            &mut self.invite_transaction,
            &mut self.other_transaction,
            &mut self.refused_invite,
            &mut self.abandoned_invite,
        ]
        .into_iter()
        .flatten()
        .chain(transfer)
        .chain(referral)
        .chain(info)
    }

    /// The far end is taken for gone (no media for too long, a refresh unanswered): a BYE in
    /// case it still hears, and the call ends at once with `Timeout`.
    pub fn give_up(&mut self, reason: &str, now: Instant, entropy: &mut dyn Entropy) {
        self.gone(reason, now, entropy);
    }

    /// The far end vanished: say goodbye in case it hears, and end with `Timeout`.
    fn gone(&mut self, reason: &str, now: Instant, entropy: &mut dyn Entropy) {
        if self.state == CallState::Ended {
            return;
        }
        let bye = self.in_dialog_request(Method::Bye, entropy);
        self.start_other(bye, now);
        self.session_timer = None;
        self.end(EndReason::Timeout {
            reason: reason.to_owned(),
        });
    }

    fn ack_for(&self, seq: u32, entropy: &mut dyn Entropy) -> Vec<u8> {
        let headers = self.dialog_headers(Method::Ack, seq, entropy);
        Request {
            method: Method::Ack,
            uri: self.dialog.remote_target.clone(),
            headers,
            body: Vec::new(),
        }
        .to_bytes()
    }

    fn on_answered(&mut self, response: Response, now: Instant, entropy: &mut dyn Entropy) {
        if let Some(to) = response.headers.to() {
            self.dialog.remote = to;
        }
        if let Some(contact) = response
            .headers
            .get("Contact")
            .and_then(|c| NameAddr::parse(c).ok())
        {
            self.dialog.remote_target = contact.uri;
        }
        // The UAC's route set is the Record-Route list reversed (§12.1.2).
        self.dialog.route_set = response
            .headers
            .all("Record-Route")
            .into_iter()
            .rev()
            .map(str::to_owned)
            .collect();
        self.ack_answer(&response, entropy);
        // 2xx retransmissions are answered from `ack` above; the transaction would only block a
        // re-INVITE for 32 s (Timer M).
        self.invite_transaction = None;
        if self.state == CallState::Ending {
            // Answered while we were cancelling: hang up properly.
            let bye = self.in_dialog_request(Method::Bye, entropy);
            self.start_other(bye, now);
            return;
        }
        self.state = CallState::Established;
        if let Some(ours) = self.party.session_interval {
            self.session_timer = Some(SessionTimer::for_answer(&response.headers, ours, now));
        }
        let sdp = answer_sdp(&response);
        self.remote_sdp = Some(sdp.clone());
        self.events
            .push_back(CallEvent::Established { remote_sdp: sdp });
    }

    fn cancel_for_invite(&self) -> Request {
        cancel_for(&self.invite)
    }

    // ---------------------------------------------------------------- incoming

    fn handle_request(&mut self, request: Request, now: Instant, entropy: &mut dyn Entropy) {
        let Some(cseq) = request.headers.cseq() else {
            return;
        };
        // A retransmitted request gets the same answer again.
        if let Some((_, _, bytes)) = self.answered.iter().find(|(seq, method, _)| {
            *seq == cseq.seq && *method == request.method && request.method != Method::Invite
        }) {
            self.transmits.push_back(bytes.clone());
            return;
        }
        match request.method {
            Method::Invite
                if self.state == CallState::Offered && cseq.seq == self.invite_cseq() =>
            {
                // Retransmitted initial INVITE: repeat 180.
                self.respond_to_invite(180, None);
            }
            Method::Invite
                if matches!(self.state, CallState::AwaitingAck)
                    && cseq.seq == self.invite_cseq() =>
            {
                if let Some((bytes, _, _)) = &self.final_response {
                    self.transmits.push_back(bytes.clone());
                }
            }
            Method::Invite => self.handle_reinvite(request, now),
            Method::Ack => {
                self.final_response = None;
                self.ack_deadline = None;
                if self.state == CallState::AwaitingAck {
                    self.state = CallState::Established;
                    let sdp = self.remote_sdp.clone().unwrap_or_default();
                    self.events
                        .push_back(CallEvent::Established { remote_sdp: sdp });
                }
            }
            Method::Bye => {
                self.respond(&request, 200);
                if self.state != CallState::Ended {
                    self.end(EndReason::Remote);
                }
            }
            Method::Cancel => {
                self.respond(&request, 200);
                if self.state == CallState::Offered {
                    self.respond_to_invite(487, Some(now));
                    self.ack_deadline = Some(now + 64 * self.timers.t1);
                    self.end(EndReason::Cancelled);
                }
            }
            // An UPDATE refreshes the session like a re-INVITE (RFC 4028 §7.4); we take it
            // without SDP (no offer in it is used).
            // An offer in an UPDATE we do not take (RFC 3311 §5.2: 488).
            Method::Update if self.state == CallState::Established && !request.body.is_empty() => {
                self.respond(&request, 488)
            }
            Method::Update if self.state == CallState::Established => {
                let mut response = self.dialog_response(&request, 200);
                self.refreshed_by_them(&request, &mut response, now);
                self.transmits.push_back(response.to_bytes());
            }
            Method::Notify if self.state != CallState::Ended => {
                self.on_notify(&request, now, entropy)
            }
            Method::Refer => self.on_refer(&request, now, entropy),
            Method::Info if self.state != CallState::Ended => self.on_info(&request),
            Method::Options | Method::Update if self.state != CallState::Ended => {
                self.respond(&request, 200)
            }
            _ => self.respond(&request, 405),
        }
    }

    fn handle_reinvite(&mut self, request: Request, now: Instant) {
        // One offer at a time (RFC 3261 §14.2): theirs crossing ours waits.
        if self.state != CallState::Established || self.invite_transaction.is_some() {
            self.respond(&request, 491);
            return;
        }
        let sdp = match sdp_body(&request.headers, &request.body) {
            Ok(sdp) => sdp,
            Err(_) => {
                let refusal = unsupported_media(&request, self.dialog.local.tag());
                self.transmits.push_back(refusal);
                return;
            }
        };
        if let Some(sdp) = sdp
            && self.remote_sdp.as_deref() != Some(sdp.as_str())
        {
            // Our answer keeps our address, port and codec and mirrors their direction
            // (sendonly from them, i.e. we are held, is answered recvonly; RFC 3264 §8.4).
            // Edited as text, so what we do not model (ICE, DTLS) stays as it was.
            if let (Ok(mut theirs), Ok(ours)) = (
                SessionDescription::parse(&sdp),
                SessionDescription::parse(&self.local_sdp),
            ) {
                // Streams pair by position (RFC 3264 §6).
                theirs.choose(ours.audio_index);
                let direction = theirs.audio.direction.answer();
                if ours.audio.direction != direction
                    && let Some(edited) = crate::sdp::with_direction(&self.local_sdp, direction)
                {
                    self.local_sdp = edited;
                }
                // Streams they added (video, say) are answered refused, in place (§8).
                let ours_count = ours.other_streams.len() + 1;
                let added: Vec<_> = theirs
                    .other_streams
                    .iter()
                    .filter(|(index, _)| *index >= ours_count)
                    .map(|(_, line)| line.clone())
                    .collect();
                if !added.is_empty()
                    && let Some(edited) = crate::sdp::with_refused_streams(&self.local_sdp, &added)
                {
                    self.local_sdp = edited;
                }
            }
            self.remote_sdp = Some(sdp.clone());
            self.events
                .push_back(CallEvent::RemoteSdpChanged { remote_sdp: sdp });
        }
        let mut response = self.dialog_response(&request, 200);
        self.refreshed_by_them(&request, &mut response, now);
        response.headers.push("Content-Type", "application/sdp");
        response.body = self.local_sdp.clone().into_bytes();
        let bytes = response.to_bytes();
        self.transmits.push_back(bytes.clone());
        if !self.party.reliable {
            self.final_response = Some((bytes, now + self.timers.t1, self.timers.t1));
        }
        self.ack_deadline = Some(now + 64 * self.timers.t1);
    }

    fn invite_cseq(&self) -> u32 {
        self.invite.headers.cseq().map_or(0, |c| c.seq)
    }

    /// Responds to the INVITE that created an incoming call; `now` arms retransmission of finals.
    fn respond_to_invite(&mut self, status: u16, now: Option<Instant>) {
        let invite = self.invite.clone();
        let mut response = self.dialog_response(&invite, status);
        if status == 200 {
            if let Some(ours) = self.party.session_interval {
                // The same terms `answer` took, worded for the response.
                let terms = Terms::for_offer(&invite.headers, ours);
                response.headers.push("Session-Expires", terms.header);
                if terms.require {
                    response.headers.push("Require", "timer");
                }
            }
            response.headers.push("Content-Type", "application/sdp");
            response.body = self.local_sdp.clone().into_bytes();
        }
        let bytes = response.to_bytes();
        self.transmits.push_back(bytes.clone());
        if let Some(now) = now
            && status >= 200
            && !self.party.reliable
        {
            self.final_response = Some((bytes, now + self.timers.t1, self.timers.t1));
        }
    }

    /// A response carrying our dialog identity (To tag, Contact, Record-Route).
    fn dialog_response(&self, request: &Request, status: u16) -> Response {
        let mut response = Response::to_request(request, status, self.dialog.local.tag());
        if status > 100 && status < 300 {
            for rr in request.headers.all("Record-Route") {
                response.headers.push("Record-Route", rr);
            }
            response
                .headers
                .push("Contact", format!("<{}>", self.party.contact));
        }
        response
    }

    fn respond(&mut self, request: &Request, status: u16) {
        let bytes = Response::to_request(request, status, self.dialog.local.tag()).to_bytes();
        self.send_answer(request, bytes);
    }

    /// Sends our answer to `request`, kept to answer its retransmissions the same way.
    fn send_answer(&mut self, request: &Request, bytes: Vec<u8>) {
        if let Some(cseq) = request.headers.cseq() {
            self.answered
                .push((cseq.seq, request.method.clone(), bytes.clone()));
            if self.answered.len() > 16 {
                self.answered.remove(0);
            }
        }
        self.transmits.push_back(bytes);
    }

    // ---------------------------------------------------------------- shared

    /// Via (new branch), Max-Forwards, the route set, From, To, Call-ID and CSeq of a request
    /// in this dialog.
    fn dialog_headers(&self, method: Method, seq: u32, entropy: &mut dyn Entropy) -> Headers {
        let mut headers = Headers::new();
        headers.push(
            "Via",
            format!(
                "SIP/2.0/{} {};branch=z9hG4bK{};rport",
                self.party.transport,
                self.party.sent_by,
                entropy.token()
            ),
        );
        headers.push("Max-Forwards", "70");
        for route in &self.dialog.route_set {
            headers.push("Route", route.clone());
        }
        headers.push("From", self.dialog.local.to_string());
        headers.push("To", self.dialog.remote.to_string());
        headers.push("Call-ID", self.call_id.clone());
        headers.push("CSeq", format!("{seq} {method}"));
        headers
    }

    fn in_dialog_request(&mut self, method: Method, entropy: &mut dyn Entropy) -> Request {
        self.dialog.local_seq += 1;
        let headers = self.dialog_headers(method.clone(), self.dialog.local_seq, entropy);
        Request {
            method,
            uri: self.dialog.remote_target.clone(),
            headers,
            body: Vec::new(),
        }
    }

    fn start_other(&mut self, request: Request, now: Instant) {
        let mut transaction =
            ClientTransaction::start(request, self.party.reliable, self.timers, now);
        while let Some(bytes) = transaction.poll_transmit() {
            self.transmits.push_back(bytes);
        }
        self.other_transaction = Some(transaction);
    }

    fn end(&mut self, reason: EndReason) {
        if reason != EndReason::Transferred {
            self.settle_transfer_on_end();
        }
        if self.state != CallState::Ended {
            self.state = CallState::Ended;
            self.events.push_back(CallEvent::Ended(reason));
        }
    }
}

/// The CANCEL for an INVITE of ours, the first or a re-INVITE (§9.1).
fn cancel_for(invite: &Request) -> Request {
    transaction::same_transaction(invite, Method::Cancel, None)
}

/// The next step for a re-INVITE of ours still without a final answer.
#[derive(Debug, Clone, Copy)]
enum Unanswered {
    /// CANCEL it then, if it has had a provisional response (64·T1 after it went).
    CancelAt(Instant),
    /// Give it up then (64·T1 after the CANCEL).
    GiveUpAt(Instant),
}

impl Unanswered {
    fn at(self) -> Instant {
        match self {
            Self::CancelAt(at) | Self::GiveUpAt(at) => at,
        }
    }
}

/// Moves a transaction's output into the call's queue and returns its events; forgets it once
/// terminated.
fn drain(
    slot: &mut Option<ClientTransaction>,
    transmits: &mut VecDeque<Vec<u8>>,
) -> Vec<TransactionEvent> {
    let Some(transaction) = slot else {
        return Vec::new();
    };
    transmits.extend(std::iter::from_fn(|| transaction.poll_transmit()));
    let events = std::iter::from_fn(|| transaction.poll_event()).collect();
    if transaction.is_terminated() {
        *slot = None;
    }
    events
}

impl Request {
    /// An empty request standing in until the real INVITE is built.
    fn placeholder() -> Self {
        Request {
            method: Method::Invite,
            uri: Uri {
                scheme: "sip".into(),
                user: None,
                host: "invalid".into(),
                port: None,
                params: Vec::new(),
            },
            headers: Headers::new(),
            body: Vec::new(),
        }
    }
}

/// How often one offer of ours is sent again after a glare before it counts as refused (a far
/// end that always answers 491 must not keep us re-offering).
const MAX_GLARES: u32 = 3;

/// A number from an entropy token, for random waits.
fn token_number(token: &str) -> u64 {
    token
        .bytes()
        .fold(0u64, |n, b| n.wrapping_mul(131).wrapping_add(u64::from(b)))
}

/// The SDP in a request's or response's body (alone, or a part of a multipart body).
fn sdp_body(headers: &Headers, body: &[u8]) -> Result<Option<String>, BodyError> {
    Ok(sdp_of(headers.get("Content-Type"), body)?
        .map(|sdp| String::from_utf8_lossy(sdp).into_owned()))
}

/// Their answer's SDP; a body we cannot read is passed on whole, for the media layer to refuse.
fn answer_sdp(response: &Response) -> String {
    match sdp_body(&response.headers, &response.body) {
        Ok(Some(sdp)) => sdp,
        _ => String::from_utf8_lossy(&response.body).into_owned(),
    }
}

/// 415 Unsupported Media Type, naming what we take (RFC 3261 §21.4.13).
fn unsupported_media(request: &Request, to_tag: Option<&str>) -> Vec<u8> {
    let mut refusal = Response::to_request(request, 415, to_tag);
    refusal
        .headers
        .push("Accept", "application/sdp, multipart/mixed");
    refusal.to_bytes()
}

mod info_dtmf;
mod referred;
mod replaces;
mod session_timer;
mod transfer;

pub use referred::Referral;
pub use transfer::{NOTIFY_WITHIN, TransferOutcome, clean_reason};

pub use replaces::{Replaces, ReplacesHeader};
pub use session_timer::{Due, MIN_SE, SessionTimer, Terms};

#[cfg(test)]
mod tests;
