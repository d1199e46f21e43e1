//! The agent's phone line: account settings turned into a SIP registration, run sans-IO by
//! [`SipLine`] and driven over a [`transport::Transport`] by the phone task.
//!
//! The line registers, refreshes and unregisters, and holds every call's dialog (`sip_core`'s
//! `Call`). Its connection can drop, move to a backup server or to a new local address without
//! ending the calls that are up: [`SipLine::rebind`] takes them over to the new connection.
//! When the registrar keeps the flow (RFC 5626) the line pings it and reports its failure; on
//! streams, calls carry the registrar's GRUU as their contact. Each call is one `LineCall`
//! (`line_call.rs`) keyed by [`ConversationId`], whatever dialogs stand behind it: a shotgun's
//! legs, the new party of a transfer of the far end's doing, dialogs winding down. Media, the
//! transport and timers live in [`runtime`] (a call's I/O in one `CallIo`, the local conference
//! in `runtime/conference.rs`); the liveness probe in `probe.rs`; what call media is set up with
//! in `media_settings.rs`.

mod call_media;
mod config;
mod events;
mod line_call;
mod media_settings;
mod probe;
mod resolve;
pub mod runtime;
pub mod transport;

pub use config::{LineConfig, LineConfigError, MediaKind, TurnServer};
pub use events::{LineCommand, LineEvent, RecordOp, RecordingState, SipEvent, TransferKind};
pub use media_settings::MediaSettings;
mod webrtc_media;

use std::net::SocketAddr;
use std::time::Instant;

use sip_core::call::{Call, CallState, LocalParty, ReplacesHeader, TransferOutcome};
use sip_core::flow::{FlowAction, FlowKeepalive, Pong, PongOutcome};
use sip_core::message::{Message, Method, Request, Response, Uri};
use sip_core::registration::{Entropy, Registration, RegistrationConfig, RegistrationEvent};
use sip_core::transaction::Timers;

use crate::ids::ConversationId;

/// Registration lifetime asked of the registrar.
pub const DEFAULT_EXPIRES: u32 = 600;

const ALLOWED_METHODS: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY, REFER";

/// The most numbers one shotgun dial rings at once (seed `002_…`).
pub const MAX_SHOTGUN: usize = 5;

/// The most calls one local conference mixes with the agent.
pub const MAX_CONFERENCE: usize = 4;

/// The sans-IO line: the registration and every call, routed by Call-ID.
#[derive(Debug)]
pub struct SipLine {
    registration: Registration,
    extension: String,
    party: LocalParty,
    /// Every call, one per conversation.
    calls: Vec<line_call::LineCall>,
    /// The registrar's URI, probed with OPTIONS.
    registrar: Uri,
    /// Where the numbers the agent dials live (`LineConfig::dial_domain`).
    dial_domain: String,
    probe: Option<probe::Probe>,
    /// Keepalives of the flow the registrar confirmed as outbound (RFC 5626).
    flow: Option<FlowKeepalive>,
    /// This connection's edge never answered a keepalive: do not ping it again.
    flow_unanswered: bool,
    /// Our public GRUU from the registrar (RFC 5627): the contact our dialogs carry on a stream
    /// (see [`Self::dialog_party`]).
    gruu: Option<Uri>,
    events: std::collections::VecDeque<SipEvent>,
    transmits: std::collections::VecDeque<Vec<u8>>,
}

impl SipLine {
    /// Builds the line for a transport bound at `local`.
    pub fn new(
        config: &LineConfig,
        local: SocketAddr,
        transport_token: &str,
        reliable: bool,
        entropy: &mut dyn Entropy,
    ) -> Self {
        let party = party(config, local, transport_token, reliable);
        let registrar = registrar(config);
        let registration = Registration::new(
            RegistrationConfig {
                registrar: registrar.clone(),
                aor: party.aor.clone(),
                contact: party.contact.clone(),
                username: config.username.clone(),
                password: config.password.expose().to_owned(),
                expires: DEFAULT_EXPIRES,
                transport: transport_token.to_owned(),
                sent_by: party.sent_by.clone(),
                reliable,
                user_agent: party.user_agent.clone(),
                outbound_proxy: None,
                instance: config.sip_instance.clone(),
            },
            Timers::default(),
            entropy,
        );
        Self {
            registration,
            extension: config.username.clone(),
            party,
            calls: Vec::new(),
            registrar,
            dial_domain: config.dial_domain(),
            probe: None,
            flow: None,
            flow_unanswered: false,
            gruu: None,
            events: Default::default(),
            transmits: Default::default(),
        }
    }

    /// The transport was replaced by a new connection bound at `local` (issue 17: calls outlive
    /// the flow). The line registers again from the new address, removing the old contact,
    /// and every established call sends a target refresh so the far end reaches us on the new
    /// connection. Calls, their dialogs and their media are untouched.
    /// `moved`: calls whose media address moved with the machine's, and their new SDP.
    #[allow(clippy::too_many_arguments)]
    pub fn rebind(
        &mut self,
        config: &LineConfig,
        local: SocketAddr,
        transport_token: &str,
        reliable: bool,
        moved: &std::collections::HashMap<ConversationId, String>,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        self.party = party(config, local, transport_token, reliable);
        self.probe = None;
        // A new flow: pinged once the registrar confirms it. The GRUU stays ours (it names the
        // instance, not the flow), so calls keep their contact; see `forget_gruu` for a move to
        // another server.
        self.forget_flow();
        self.registration.rebind(
            self.party.contact.clone(),
            transport_token,
            &self.party.sent_by,
            reliable,
        );
        self.registration.register(now, entropy);
        let party = self.dialog_party();
        for call in &mut self.calls {
            let conversation = call.conversation.clone();
            let sdp = moved.get(&conversation).cloned();
            for dialog in call.dialogs_mut() {
                if dialog.rebind(party.clone(), sdp.clone(), now, entropy) {
                    tracing::info!(%conversation, "target refresh sent from the new address");
                }
            }
        }
        self.collect(now, entropy);
    }

    /// Calls `targets` with one offer: one number, or a shotgun's several at once (each its
    /// own INVITE; the first to answer is the call).
    pub fn dial(
        &mut self,
        conversation: ConversationId,
        targets: Vec<Uri>,
        offer: String,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        self.dial_with(conversation, targets, Vec::new(), offer, now, entropy);
    }

    /// As [`SipLine::dial`], every INVITE carrying `headers` too.
    pub fn dial_with(
        &mut self,
        conversation: ConversationId,
        targets: Vec<Uri>,
        headers: Vec<(String, String)>,
        offer: String,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        let party = self.dialog_party();
        let legs = targets
            .into_iter()
            .map(|target| {
                Call::outgoing_with(
                    party.clone(),
                    target,
                    headers.clone(),
                    offer.clone(),
                    Timers::default(),
                    now,
                    entropy,
                )
            })
            .collect();
        self.calls
            .push(line_call::LineCall::dialling(conversation, legs));
        self.collect(now, entropy);
    }

    pub fn answer(
        &mut self,
        conversation: &ConversationId,
        sdp: String,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        self.with_current(conversation, now, entropy, |current| {
            current.answer(sdp, now)
        })
    }

    pub fn reject(
        &mut self,
        conversation: &ConversationId,
        status: u16,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        self.with_current(conversation, now, entropy, |current| {
            current.reject(status, now)
        })
    }

    /// [`Self::with_line_call`] on the dialog the agent talks on; false when there is none.
    fn with_current(
        &mut self,
        conversation: &ConversationId,
        now: Instant,
        entropy: &mut dyn Entropy,
        act: impl FnOnce(&mut Call),
    ) -> bool {
        self.with_line_call(conversation, now, entropy, |call, _| {
            call.current().map(act).is_some()
        })
        .unwrap_or(false)
    }

    pub fn hangup(
        &mut self,
        conversation: &ConversationId,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        self.with_line_call(conversation, now, entropy, |call, entropy| {
            call.hangup(now, entropy)
        })
        .is_some()
    }

    /// Ends a call whose far end is taken for gone (see `Call::give_up`).
    pub fn give_up(
        &mut self,
        conversation: &ConversationId,
        reason: &str,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        self.with_line_call(conversation, now, entropy, |call, entropy| {
            if let Some(current) = call.current() {
                current.give_up(reason, now, entropy);
            }
        });
    }

    /// Sends `digits` to the far end in SIP INFO requests (when RFC 4733 is not to be had).
    pub fn send_dtmf_info(
        &mut self,
        conversation: &ConversationId,
        digits: &str,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        self.with_line_call(conversation, now, entropy, |call, entropy| {
            if let Some(current) = call.current() {
                current.send_dtmf_info(digits, now, entropy);
            }
        });
    }

    /// Asks the far end to call `target` instead (REFER); false when the call cannot be
    /// transferred now (not up, or a transfer already under way).
    pub fn transfer(
        &mut self,
        conversation: &ConversationId,
        target: &Uri,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        self.with_line_call(conversation, now, entropy, |call, entropy| {
            call.current()
                .is_some_and(|current| current.refer(target, None, now, entropy))
        })
        .unwrap_or(false)
    }

    /// Attended transfer: asks the far end of `conversation` to call the far end of `with` in
    /// its place (REFER with `Replaces` naming our call with them). False when either call is
    /// not up or a transfer of `conversation` is under way.
    pub fn connect_calls(
        &mut self,
        conversation: &ConversationId,
        with: &ConversationId,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        let Some((target, replaces)) = self
            .calls
            .iter()
            .find(|c| c.conversation == *with)
            .and_then(line_call::LineCall::current_ref)
            .and_then(|call| {
                Some((
                    self.routable(call.remote_uri()),
                    call.replaces_for_target()?,
                ))
            })
        else {
            return false;
        };
        // The consultation party's own URI becomes the transferee's request: a user part that
        // could carry URI headers or end the `<…>` (a caller's From says what it likes) is not
        // passed on.
        if target.user.as_deref().is_some_and(|user| {
            user.chars()
                .any(|c| "?&<>\"\\ ".contains(c) || c.is_control())
        }) {
            return false;
        }
        let with = with.clone();
        self.with_line_call(conversation, now, entropy, |call, entropy| {
            let sent = call
                .current()
                .is_some_and(|current| current.refer(&target, Some(&replaces), now, entropy));
            if sent {
                call.consulting = Some(with);
            }
            sent
        })
        .unwrap_or(false)
    }

    /// `uri` as someone else can dial it: a party on our server (`user@server-host`, as a
    /// phone's answer or From names it, often without the port) gets the server's port and
    /// transport, as the numbers the agent dials do.
    fn routable(&self, uri: &Uri) -> Uri {
        let on_our_server = uri.port.is_none()
            && uri.host.eq_ignore_ascii_case(&self.registrar.host)
            && uri.params.is_empty();
        match &uri.user {
            Some(user) if on_our_server => {
                Uri::parse(&format!("{}:{user}@{}", uri.scheme, self.dial_domain))
                    .unwrap_or_else(|_| uri.clone())
            }
            _ => uri.clone(),
        }
    }

    /// The media for their REFER's call is ready: place it with `offer`.
    pub fn follow_referral(
        &mut self,
        conversation: &ConversationId,
        offer: String,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        let party = self.dialog_party();
        self.with_line_call(conversation, now, entropy, |call, entropy| {
            call.follow_referral(party, offer, now, entropy)
        })
        .unwrap_or(false)
    }

    /// Their REFER is not followed (no media for it, or the agent holds the call): the
    /// referrer hears `status`.
    pub fn referral_failed(
        &mut self,
        conversation: &ConversationId,
        status: u16,
        why: &str,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        let phrase = match status {
            403 => "Forbidden",
            _ => "Service Unavailable",
        };
        self.with_line_call(conversation, now, entropy, |call, entropy| {
            call.referral_failed(status, phrase, why, now, entropy)
        });
    }

    /// The offer of an INVITE replacing `conversation`.
    pub fn next_remote_sdp(&self, conversation: &ConversationId) -> Option<String> {
        self.calls
            .iter()
            .find(|c| c.conversation == *conversation)
            .and_then(|c| c.next_remote_sdp().map(str::to_owned))
    }

    /// Answers the INVITE replacing `conversation` with `sdp`.
    pub fn answer_next(
        &mut self,
        conversation: &ConversationId,
        sdp: String,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        self.with_line_call(conversation, now, entropy, |call, _| {
            call.answer_next(sdp, now)
        })
        .unwrap_or(false)
    }

    /// Refuses the INVITE replacing `conversation` (its offer is unusable).
    pub fn reject_next(
        &mut self,
        conversation: &ConversationId,
        status: u16,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        self.with_line_call(conversation, now, entropy, |call, _| {
            call.reject_next(status, now)
        });
    }

    /// Whether the call could take a re-INVITE now ([`Call::can_reoffer`]).
    pub fn can_reoffer(&self, conversation: &ConversationId) -> bool {
        self.calls
            .iter()
            .find(|c| c.conversation == *conversation)
            .and_then(|c| c.current_ref())
            .is_some_and(|call| call.can_reoffer())
    }

    /// Sends a re-INVITE with `sdp`; false when the call cannot take one now.
    pub fn reoffer(
        &mut self,
        conversation: &ConversationId,
        sdp: String,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        self.with_line_call(conversation, now, entropy, |call, entropy| {
            call.current()
                .is_some_and(|current| current.reoffer(sdp, now, entropy))
        })
        .unwrap_or(false)
    }

    /// Runs `act` on the call named `conversation` and collects what it did; None when the line
    /// has no such call.
    fn with_line_call<T>(
        &mut self,
        conversation: &ConversationId,
        now: Instant,
        entropy: &mut dyn Entropy,
        act: impl FnOnce(&mut line_call::LineCall, &mut dyn Entropy) -> T,
    ) -> Option<T> {
        let call = self
            .calls
            .iter_mut()
            .find(|c| c.conversation == *conversation)?;
        let result = act(call, entropy);
        self.collect(now, entropy);
        Some(result)
    }

    /// The stream connection dropped: calls give up what was in flight on it (see
    /// `Call::connection_lost`).
    pub fn connection_lost(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        for call in &mut self.calls {
            for dialog in call.dialogs_mut() {
                dialog.connection_lost();
            }
        }
        self.collect(now, entropy);
    }

    /// Forgets the calls that are not up yet (ringing either way) and returns them
    /// (conversation, Call-ID): when the
    /// connection they were set up over drops, the proxy forgets their transactions, so the
    /// answer, a CANCEL or the ring's end could never arrive. Calls that are up stay.
    pub fn drop_unanswered(&mut self) -> Vec<(ConversationId, String)> {
        let mut dropped = Vec::new();
        let mut call_ids = Vec::new();
        let mut cancels = Vec::new();
        self.calls.retain(|call| {
            if !call.is_unanswered() {
                return true;
            }
            for dialog in call.dialogs() {
                if dialog.state() != CallState::Ended {
                    call_ids.push(dialog.call_id().to_owned());
                    cancels.extend(dialog.abandon());
                }
            }
            let first = call.dialogs().next().map(|d| d.call_id().to_owned());
            dropped.push((call.conversation.clone(), first.unwrap_or_default()));
            false
        });
        // What they queued (an INVITE, a 180) must not go out on the new connection: a callee
        // would ring for a call nobody holds.
        self.transmits.retain(|bytes| {
            sip_core::message::parse_datagram(bytes).map_or(true, |message| {
                !call_ids.iter().any(|id| id == message.call_id())
            })
        });
        // A ringing call of ours is cancelled on the new connection (see `Call::abandon`).
        self.transmits.extend(cancels);
        dropped
    }

    /// Every call the line holds, ringing or up (not those that ended and only linger to
    /// finish their retransmissions).
    pub fn conversations(&self) -> Vec<ConversationId> {
        self.calls
            .iter()
            .filter(|call| !call.is_over())
            .map(|call| call.conversation.clone())
            .collect()
    }

    /// Their SDP offer for an incoming call.
    pub fn remote_sdp(&self, conversation: &ConversationId) -> Option<String> {
        self.calls
            .iter()
            .find(|c| c.conversation == *conversation)
            .and_then(line_call::LineCall::current_ref)
            .and_then(|call| call.remote_sdp().map(str::to_owned))
    }

    pub fn poll_sip_event(&mut self) -> Option<SipEvent> {
        while let Some(event) = self.registration.poll_event() {
            // A REGISTER nobody answered is as telling as a probe nobody answered.
            if matches!(event, RegistrationEvent::Failed { status: None, .. }) {
                self.events.push_back(SipEvent::ServerSilent);
            }
            let event = self.line_event(event);
            self.events.push_back(SipEvent::Line(event));
        }
        self.events.pop_front()
    }

    /// Moves the calls' output into the line's queues and forgets finished calls.
    fn collect(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        let before = self.events.len();
        for call in &mut self.calls {
            call.collect(&mut self.transmits, &mut self.events, now, entropy);
        }
        // An attended transfer that succeeded: the consultation call's party now talks to the
        // transferee, so our leg with them ends too (their phone usually hangs it up first,
        // having been told by the `Replaces`; one that did not is hung up here).
        let joined: Vec<(ConversationId, ConversationId)> = self
            .events
            .range(before..)
            .filter_map(|event| match event {
                SipEvent::Line(LineEvent::CallTransferred {
                    conversation,
                    outcome: TransferOutcome::Accepted,
                    kind: TransferKind::Attended { with },
                }) => Some((conversation.clone(), with.clone())),
                _ => None,
            })
            .collect();
        // Only on the transferee's word (a NOTIFY's 2xx): a transfer taken as done from its
        // silence or its hang-up must not drop the party it never reached.
        let joined: Vec<ConversationId> = joined
            .into_iter()
            .filter(|(conversation, _)| {
                self.calls
                    .iter()
                    .find(|c| c.conversation == *conversation)
                    .and_then(line_call::LineCall::current_ref)
                    .is_some_and(Call::transfer_confirmed)
            })
            .map(|(_, with)| with)
            .collect();
        for with in joined {
            if let Some(call) = self.calls.iter_mut().find(|c| c.conversation == with) {
                if let Some(current) = call.current() {
                    current.hang_up_transferred(now, entropy);
                }
                call.collect(&mut self.transmits, &mut self.events, now, entropy);
            }
        }
        self.calls.retain(|call| !call.is_finished());
        // An ended call lingers until its transactions are over (Timer M: 32 s), ~4 KB each, so
        // a run of short calls leaves a long vector behind; it is given back once they are gone.
        if self.calls.capacity() > 4 * self.calls.len().max(2) {
            self.calls.shrink_to_fit();
        }
    }

    pub fn start(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        self.registration.register(now, entropy);
    }

    pub fn stop(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        self.flow = None;
        self.registration.unregister(now, entropy);
    }

    /// Who we are in dialogs: the line's party, with our GRUU as the contact on a stream.
    /// A stream's own contact (our ephemeral port) is reachable only through the connection
    /// that dies with the flow, while the GRUU reaches whichever flow is current, and the line
    /// registers again the moment a stream is replaced. On UDP our address is directly routable
    /// and stays so across a registrar's restart, when a GRUU would be unknown to it until our
    /// next refresh.
    fn dialog_party(&self) -> LocalParty {
        let mut party = self.party.clone();
        if let Some(gruu) = self.gruu.as_ref().filter(|_| party.reliable) {
            party.contact = gruu.clone();
        }
        party
    }

    /// After a REGISTER's answer: keep the flow alive while the registrar confirms outbound,
    /// and take the GRUU it gave.
    fn follow_binding(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        let binding = self.registration.binding().clone();
        if !binding.outbound {
            self.flow = None;
        } else if self.flow.is_none() && !self.flow_unanswered {
            tracing::info!(
                flow_timer = ?binding.flow_timer,
                "the registrar keeps our flow (RFC 5626 outbound); pinging it"
            );
            self.flow = Some(FlowKeepalive::new(
                self.party.reliable,
                binding.flow_timer,
                now,
                entropy,
            ));
        }
        self.gruu = binding.gruu;
    }

    /// The connection is gone: its flow with it (a new one is pinged once the registrar keeps
    /// it).
    pub fn forget_flow(&mut self) {
        self.flow = None;
        self.flow_unanswered = false;
    }

    /// The line moves to another server: it did not issue our GRUU and cannot route it, so
    /// calls refresh with our own contact until it gives us one.
    pub fn forget_gruu(&mut self) {
        self.gruu = None;
    }

    /// Whether the flow is watched by RFC 5626 pings (the runtime's plain keepalive is moot).
    pub fn flow_watched(&self) -> bool {
        self.flow.is_some()
    }

    /// A pong arrived: a CRLF on a stream, a WebSocket pong, or a STUN Binding response.
    pub fn pong(&mut self, pong: Pong, now: Instant, entropy: &mut dyn Entropy) {
        let Some(flow) = &mut self.flow else {
            return;
        };
        match flow.on_pong(pong, now, entropy) {
            PongOutcome::Answered => tracing::debug!("the flow answered our keepalive"),
            PongOutcome::Failed => {
                tracing::warn!("the server says our flow changed or failed (STUN); replacing it");
                self.flow = None;
                self.events.push_back(SipEvent::FlowFailed);
            }
            PongOutcome::Ignored => {}
        }
    }

    /// Sends an OPTIONS to the registrar, unless one is still waiting for its answer.
    pub fn probe(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        if self.probe.is_some() {
            return;
        }
        let mut probe = probe::Probe::start(&self.registrar, &self.party, now, entropy);
        while let Some(bytes) = probe.poll_transmit() {
            self.transmits.push_back(bytes);
        }
        self.probe = Some(probe);
    }

    pub fn handle_message(&mut self, message: Message, now: Instant, entropy: &mut dyn Entropy) {
        if let (Message::Response(response), Some(probe)) = (&message, &mut self.probe)
            && probe.answered_by(response)
        {
            // Any answer will do: the server is alive.
            self.probe = None;
            return;
        }
        if let Message::Response(response) = &message
            && self.registration.matches(response)
        {
            if let Message::Response(response) = message {
                self.registration.handle_response(response, now, entropy);
                self.follow_binding(now, entropy);
            }
            return;
        }
        let unrouted = match self
            .calls
            .iter_mut()
            .flat_map(line_call::LineCall::dialogs_mut)
            .find(|dialog| dialog.matches(&message))
        {
            Some(dialog) => {
                dialog.handle_message(message, now, entropy);
                None
            }
            None => Some(message),
        };
        let Some(message) = unrouted else {
            self.collect(now, entropy);
            return;
        };
        let Message::Request(request) = message else {
            return;
        };
        match request.method {
            Method::Invite if request.headers.to().is_some_and(|to| to.tag().is_none()) => {
                self.incoming(request, now, entropy);
            }
            Method::Options => {
                let mut response = Response::to_request(&request, 200, Some(&entropy.token()));
                response.headers.push("Allow", ALLOWED_METHODS);
                self.transmits
                    .push_back(Message::Response(response).to_bytes());
            }
            Method::Ack => {}
            // An in-dialog request for a call we do not know (RFC 3261 §12.2.2).
            _ if request.headers.to().is_some_and(|to| to.tag().is_some()) => {
                self.transmits.push_back(
                    Message::Response(Response::to_request(&request, 481, Some(&entropy.token())))
                        .to_bytes(),
                );
            }
            // A phone is no registrar (REGISTER), nor does it take other new requests: 405 with
            // what we do allow (§8.2.1).
            _ => {
                let mut response = Response::to_request(&request, 405, Some(&entropy.token()));
                response.headers.push("Allow", ALLOWED_METHODS);
                self.transmits
                    .push_back(Message::Response(response).to_bytes());
            }
        }
    }

    fn incoming(&mut self, invite: Request, now: Instant, entropy: &mut dyn Entropy) {
        // RFC 3891 §3: a Replaces naming no dialog of ours, or an early dialog someone else
        // started (a call ringing in), is 481; `early-only` for a call already up is 486; a
        // call that has ended is 603 — never a new call ringing as if nothing were named. One
        // naming a call that is up takes its place (an attended transfer's target is us): it
        // is answered without ringing, and the old dialog ends once it is up. One naming a
        // call of ours still ringing out rings as a new call.
        let mut replacing = None;
        if let ReplacesHeader::One(replaces) = ReplacesHeader::of(&invite) {
            let named = self.calls.iter().enumerate().find_map(|(index, call)| {
                call.dialogs()
                    .find(|dialog| dialog.is_replaced_by(&replaces))
                    .map(|dialog| (index, dialog.state()))
            });
            let refusal = match named {
                None | Some((_, CallState::Offered)) => Some(481),
                Some((_, CallState::Established | CallState::AwaitingAck))
                    if replaces.early_only =>
                {
                    Some(486)
                }
                Some((_, CallState::Ended | CallState::Ending)) => Some(603),
                Some((index, CallState::Established | CallState::AwaitingAck)) => {
                    replacing = Some(index);
                    None
                }
                Some(_) => None,
            };
            if let Some(status) = refusal {
                let refusal = Response::to_request(&invite, status, Some(&entropy.token()));
                self.transmits
                    .push_back(Message::Response(refusal).to_bytes());
                return;
            }
        }
        let message = Message::Request(invite.clone());
        let caller = caller_id(&message);
        if let Some(index) = replacing {
            match Call::incoming(self.dialog_party(), invite, Timers::default(), entropy) {
                Ok(mut call) => {
                    let line_call = &mut self.calls[index];
                    if line_call.is_being_transferred() || line_call.has_transfer_of_ours() {
                        // One transfer of a call at a time.
                        call.reject(486, now);
                        self.transmits
                            .extend(std::iter::from_fn(|| call.poll_transmit()));
                    } else {
                        line_call.replaced_by(call, caller);
                        self.events.push_back(SipEvent::Replacing {
                            conversation: line_call.conversation.clone(),
                        });
                    }
                    self.collect(now, entropy);
                }
                Err(response) => self.transmits.push_back(response),
            }
            return;
        }
        let headers: Vec<(String, String)> = invite
            .headers
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        match Call::incoming(self.dialog_party(), invite, Timers::default(), entropy) {
            Ok(call) => {
                let conversation = ConversationId::new(entropy);
                self.events
                    .push_back(SipEvent::Line(LineEvent::CallIncoming {
                        conversation: conversation.clone(),
                        caller,
                        headers,
                    }));
                self.calls
                    .push(line_call::LineCall::incoming(conversation, call));
                self.collect(now, entropy);
            }
            Err(response) => self.transmits.push_back(response),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        if let Some(probe) = &mut self.probe {
            let silent = probe.handle_timeout(now);
            while let Some(bytes) = probe.poll_transmit() {
                self.transmits.push_back(bytes);
            }
            if silent {
                self.probe = None;
                self.events.push_back(SipEvent::ServerSilent);
            }
        }
        if let Some(flow) = &mut self.flow
            && now >= flow.poll_timeout()
        {
            match flow.handle_timeout(now, entropy) {
                Some(FlowAction::Ping { transaction }) => {
                    self.events.push_back(SipEvent::FlowPing { transaction });
                }
                Some(FlowAction::Failed) => {
                    self.flow = None;
                    self.events.push_back(SipEvent::FlowFailed);
                }
                Some(FlowAction::Unanswered) => {
                    tracing::warn!(
                        "the registrar keeps our flow but its edge does not answer keepalives; keeping the connection alive without them"
                    );
                    self.flow = None;
                    self.flow_unanswered = true;
                }
                None => {}
            }
        }
        self.registration.handle_timeout(now, entropy);
        for call in &mut self.calls {
            for dialog in call.dialogs_mut() {
                dialog.handle_timeout(now, entropy);
            }
        }
        self.collect(now, entropy);
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.registration
            .poll_transmit()
            .or_else(|| self.transmits.pop_front())
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self
            .calls
            .iter()
            .flat_map(line_call::LineCall::dialogs)
            .filter_map(Call::poll_timeout);
        calls
            .chain(self.registration.poll_timeout())
            .chain(self.probe.as_ref().map(probe::Probe::poll_timeout))
            .chain(self.flow.as_ref().map(FlowKeepalive::poll_timeout))
            .min()
    }

    fn line_event(&self, event: RegistrationEvent) -> LineEvent {
        match event {
            RegistrationEvent::Registered { .. } => LineEvent::Registered {
                extension: self.extension.clone(),
            },
            RegistrationEvent::Failed {
                status,
                reason,
                retry_in,
            } => LineEvent::Failed {
                reason: match status {
                    Some(code) => format!("{code} {reason}; retrying in {} s", retry_in.as_secs()),
                    None => format!("{reason}; retrying in {} s", retry_in.as_secs()),
                },
            },
            RegistrationEvent::Unregistered => LineEvent::Unregistered { reason: None },
        }
    }
}

/// The registrar's host as written in URIs (an IPv6 literal in brackets).
fn server(config: &LineConfig) -> String {
    if config.domain.contains(':') && !config.domain.starts_with('[') {
        format!("[{}]", config.domain)
    } else {
        config.domain.clone()
    }
}

/// The registrar's URI, `sip:host:port`: where REGISTER and the liveness probe go.
fn registrar(config: &LineConfig) -> Uri {
    server_uri(config, format!("sip:{}:{}", server(config), config.port))
}

/// `text` as a URI, or the bare server URI when the account's values make it unparsable.
fn server_uri(config: &LineConfig, text: String) -> Uri {
    Uri::parse(&text).unwrap_or_else(|_| Uri {
        scheme: "sip".into(),
        user: None,
        host: server(config),
        port: None,
        params: Vec::new(),
    })
}

/// Who we are on a transport bound at `local`: AOR, contact, Via sent-by.
fn party(
    config: &LineConfig,
    local: SocketAddr,
    transport_token: &str,
    reliable: bool,
) -> LocalParty {
    let host = match local.ip() {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let sent_by = format!("{host}:{}", local.port());
    let transport_param = transport_token.to_ascii_lowercase();
    LocalParty {
        aor: server_uri(
            config,
            format!("sip:{}@{}", config.username, server(config)),
        ),
        contact: server_uri(
            config,
            format!(
                "sip:{}@{sent_by};transport={transport_param}",
                config.username
            ),
        ),
        transport: transport_token.to_owned(),
        sent_by,
        reliable,
        username: config.username.clone(),
        password: config.password.expose().to_owned(),
        user_agent: concat!("softphone-bridge/", env!("CARGO_PKG_VERSION")).to_owned(),
        session_interval: config.session_interval,
    }
}

/// The caller's number: P-Asserted-Identity's user part if present (the network vouches for it),
/// else From's user part, else its display name.
fn caller_id(invite: &Message) -> String {
    let asserted = invite
        .headers()
        .get("P-Asserted-Identity")
        .and_then(|v| sip_core::NameAddr::parse(v).ok());
    let from = invite.from();
    asserted
        .and_then(|a| a.uri.user)
        .or_else(|| from.as_ref().and_then(|f| f.uri.user.clone()))
        .or_else(|| from.and_then(|f| f.display))
        .unwrap_or_else(|| "anonymous".into())
}

#[cfg(test)]
mod call_flows;
#[cfg(test)]
mod tests;
