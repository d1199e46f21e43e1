//! The I/O half of the line: owns the transport, the sans-IO [`SipLine`], and each call's media
//! ([`CallMedia`]) with the rest of its I/O, one `CallIo` per conversation (`call_io.rs`). Connects and reconnects with back-off, sends keepalives, and turns bytes,
//! media reports and timers into line events. The phone task polls it in its one loop.

mod call_io;
mod calls;
mod conference;
mod connection;
mod recording;

use std::collections::{HashMap, VecDeque};
use std::future::pending;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sip_core::call::{EndReason, TransferOutcome};
use tokio::sync::mpsc;

use super::call_media::{CallMedia, Unacceptable};
use super::transport::{Inbound, Transport, TransportError};
use super::{LineCommand, LineConfig, LineEvent, MediaSettings, SipEvent, SipLine, TransferKind};
use crate::audio::ringer::Ringer;
use crate::ids::{ConversationId, OsEntropy};
use crate::media::session::{MediaReport, ReportReceiver, ReportSender};
use crate::rate::LineBudget;

const KEEPALIVE_EVERY: Duration = Duration::from_secs(25);
const FIRST_RECONNECT: Duration = Duration::from_secs(1);
const MAX_RECONNECT: Duration = Duration::from_secs(60);
/// Lines about malformed SIP: a peer sending nothing else must not fill the log.
const GARBAGE_LINES_PER_SECOND: u32 = 1;
const GARBAGE_LINES_BURST: u32 = 10;

pub struct LineRuntime {
    config: LineConfig,
    media_settings: MediaSettings,
    transport: Option<Transport>,
    sip: Option<SipLine>,
    entropy: OsEntropy,
    connect_at: Option<Instant>,
    backoff: Duration,
    keepalive_at: Option<Instant>,
    stopping: bool,
    /// Why the line is stopping, for the `registrationChanged` that follows.
    stop_reason: Option<String>,
    /// When the provisioned session ends (`expire_date`).
    expires_at: Option<Instant>,
    /// Each call's media and other I/O (see `call_io.rs`).
    calls: HashMap<ConversationId, call_io::CallIo>,
    /// The ring tone, while any call rings in.
    ringer: Option<Ringer>,
    /// Numbers a far end's REFER may not have the line call (the phone's blacklist).
    blacklist: std::sync::Arc<crate::blacklist::Blacklist>,
    /// Media tasks report DTMF and statistics here.
    reports: (ReportSender, ReportReceiver),
    /// Where media prepared off the loop arrives.
    prepared: (
        mpsc::UnboundedSender<Prepared>,
        mpsc::UnboundedReceiver<Prepared>,
    ),
    events: VecDeque<LineEvent>,
    /// A message whose send failed when the connection dropped, sent again after reconnecting
    /// (once: a message that fails twice is the problem, not the connection).
    unsent: Option<Vec<u8>>,
    /// Which server, probing it, and returning to the preferred one.
    servers: connection::Servers,
    /// Where a failback check's result arrives (see `connection.rs`).
    failback: (
        mpsc::UnboundedSender<connection::Found>,
        mpsc::UnboundedReceiver<connection::Found>,
    ),
    /// Budget for the lines about malformed SIP.
    garbage_log: LineBudget,
    /// Calls mixed in a local conference, when there is one.
    conference: Option<conference::LocalConference>,
    /// Recordings closed here before their writers reported (by id).
    closed_early: HashMap<String, recording::ClosedEarly>,
}

/// A call's media, ready (or not) for the SIP step that waits on it.
pub enum Prepared {
    Offer {
        conversation: ConversationId,
        targets: Vec<sip_core::Uri>,
        headers: Vec<(String, String)>,
        media: Result<CallMedia, String>,
    },
    Answer {
        conversation: ConversationId,
        media: Result<CallMedia, Unacceptable>,
    },
    /// The offer for the call the far end's REFER asked for.
    Referral {
        conversation: ConversationId,
        media: Result<CallMedia, String>,
    },
    /// The answer to an INVITE that replaces the call.
    Replacing {
        conversation: ConversationId,
        media: Result<CallMedia, Unacceptable>,
    },
    /// A WebRTC call's ICE restart gathered: the offer for its re-INVITE.
    IceRestart {
        conversation: ConversationId,
        offer: Result<String, String>,
    },
}

/// What woke the line: the SIP transport, or a call's media task.
pub enum LineInput {
    Sip(Result<Inbound, TransportError>),
    Media(ConversationId, MediaReport),
    Prepared(Box<Prepared>),
    /// A failback check ended: the preferred server's connection, when it answered.
    Failback(connection::Found),
}

impl LineRuntime {
    pub fn new(mut config: LineConfig, media_settings: MediaSettings, now: Instant) -> Self {
        config.session_interval = media_settings.session_interval;
        let expires_at = config.expires_at.map(|at| {
            now + Duration::try_from(at - time::OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO)
        });
        Self {
            config,
            media_settings,
            transport: None,
            sip: None,
            entropy: OsEntropy,
            connect_at: Some(now),
            backoff: FIRST_RECONNECT,
            keepalive_at: None,
            stopping: false,
            stop_reason: None,
            expires_at,
            calls: HashMap::new(),
            ringer: None,
            blacklist: std::sync::Arc::default(),
            reports: mpsc::unbounded_channel(),
            prepared: mpsc::unbounded_channel(),
            events: VecDeque::new(),
            unsent: None,
            servers: connection::Servers::default(),
            failback: mpsc::unbounded_channel(),
            garbage_log: LineBudget::new(GARBAGE_LINES_PER_SECOND, GARBAGE_LINES_BURST, now),
            conference: None,
            closed_early: HashMap::new(),
        }
    }

    /// Waits for the next inbound SIP item or media report.
    pub async fn recv(&mut self) -> LineInput {
        let sip = async {
            match &mut self.transport {
                Some(transport) => transport.recv().await,
                None => pending().await,
            }
        };
        tokio::select! {
            inbound = sip => LineInput::Sip(inbound),
            Some((conversation, report)) = self.reports.1.recv() => LineInput::Media(conversation, report),
            Some(prepared) = self.prepared.1.recv() => LineInput::Prepared(Box::new(prepared)),
            Some(found) = self.failback.1.recv() => LineInput::Failback(found),
        }
    }

    pub fn next_wake(&self) -> Option<Instant> {
        let sip = self.sip.as_ref().and_then(SipLine::poll_timeout);
        let expiry = self.expires_at.filter(|_| !self.stopping);
        [
            sip,
            self.connect_at,
            self.keepalive_at,
            expiry,
            self.servers.probe_at,
            self.servers.failback_at,
            self.servers.network_check_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub async fn on_timer(&mut self, now: Instant) {
        if !self.stopping && self.expires_at.is_some_and(|at| now >= at) {
            tracing::warn!("the provisioned session expired (expire_date); unregistering");
            self.stop_with(now, "expired").await;
            return;
        }
        if self.connect_at.is_some_and(|at| now >= at) {
            self.connect_at = None;
            self.connect(now).await;
        }
        if self.keepalive_at.is_some_and(|at| now >= at) {
            self.keepalive_at = Some(now + KEEPALIVE_EVERY);
            // A flow the registrar keeps has its own pings (RFC 5626), answered and watched.
            let watched = self.sip.as_ref().is_some_and(SipLine::flow_watched);
            if let Some(transport) = &mut self.transport
                && !watched
                && let Err(e) = transport.keepalive().await
            {
                self.lost(&e, now);
            }
        }
        self.on_connection_timers(now);
        if let Some(sip) = &mut self.sip {
            sip.handle_timeout(now, &mut self.entropy);
        }
        self.process(now).await;
    }

    pub async fn on_input(&mut self, input: LineInput, now: Instant) {
        let inbound = match input {
            LineInput::Sip(inbound) => inbound,
            LineInput::Failback(found) => {
                self.on_failback(found, now);
                self.process(now).await;
                return;
            }
            LineInput::Prepared(prepared) => {
                self.on_prepared(*prepared, now).await;
                self.process(now).await;
                return;
            }
            LineInput::Media(conversation, MediaReport::Recorded(done)) => {
                self.recorded(conversation, done);
                return;
            }
            LineInput::Media(conversation, report) => {
                if let MediaReport::Stats(stats) = &report {
                    self.watch_media(&conversation, Duration::from_millis(stats.silent_ms), now);
                    self.process(now).await;
                }
                self.events.push_back(match report {
                    MediaReport::Dtmf(digit) => LineEvent::DtmfReceived {
                        conversation,
                        digit,
                    },
                    MediaReport::Stats(stats) => LineEvent::CallQuality {
                        conversation,
                        stats,
                    },
                    MediaReport::AudioUnavailable(reason) => LineEvent::AudioUnavailable {
                        conversation,
                        reason,
                    },
                    MediaReport::AudioDevices { devices, switched } => {
                        LineEvent::AudioDevicesInUse {
                            conversation,
                            devices,
                            switched,
                        }
                    }
                    // Taken by the arm above.
                    MediaReport::Recorded(_) => return,
                });
                return;
            }
        };
        match inbound {
            Ok(Inbound::Message(message)) => {
                tracing::debug!(message = %summary(&message), "SIP in");
                if let Some(sip) = &mut self.sip {
                    sip.handle_message(message, now, &mut self.entropy);
                }
            }
            Ok(Inbound::Garbage { error, reply }) => self.garbage(&error, reply, now).await,
            Ok(Inbound::Ping | Inbound::Stray) => {}
            Ok(Inbound::Pong(pong)) => {
                if let Some(sip) = &mut self.sip {
                    sip.pong(pong, now, &mut self.entropy);
                }
            }
            Err(e) => self.lost(&e, now),
        }
        self.process(now).await;
    }

    pub async fn command(&mut self, command: LineCommand, now: Instant) {
        match command {
            LineCommand::Dial {
                conversation,
                target,
                headers,
            } => self.dial(conversation, vec![target], headers, now).await,
            LineCommand::DialAll {
                conversation,
                targets,
            } => self.dial(conversation, targets, Vec::new(), now).await,
            LineCommand::Answer { conversation } => self.answer(&conversation, now).await,
            LineCommand::Reject {
                conversation,
                status,
            } => {
                if let Some(sip) = &mut self.sip {
                    sip.reject(&conversation, status, now, &mut self.entropy);
                }
            }
            LineCommand::Hangup { conversation } => {
                let known = self
                    .sip
                    .as_mut()
                    .is_some_and(|sip| sip.hangup(&conversation, now, &mut self.entropy));
                // A call still waiting for its media ends here; the media is dropped on arrival.
                let preparing = self.stop_preparing(&conversation);
                if !known || preparing {
                    self.forget(&conversation).await;
                    self.events.push_back(LineEvent::CallEnded {
                        conversation,
                        reason: EndReason::Local,
                    });
                }
            }
            LineCommand::Transfer {
                conversation,
                target,
            } => {
                let sent = self.sip.as_mut().is_some_and(|sip| {
                    sip.transfer(&conversation, &target, now, &mut self.entropy)
                });
                if !sent {
                    self.events.push_back(LineEvent::CallTransferred {
                        conversation,
                        outcome: TransferOutcome::Failed {
                            reason: "the call cannot be transferred now (not up, or a transfer is already under way)".into(),
                        },
                        kind: TransferKind::Blind,
                    });
                }
            }
            LineCommand::ConnectCalls { conversation, with } => {
                let sent = self.sip.as_mut().is_some_and(|sip| {
                    sip.connect_calls(&conversation, &with, now, &mut self.entropy)
                });
                if !sent {
                    self.events.push_back(LineEvent::CallTransferred {
                        conversation,
                        outcome: TransferOutcome::Failed {
                            reason: "the calls cannot be connected now (one is not up, or a transfer is already under way)".into(),
                        },
                        kind: TransferKind::Attended { with },
                    });
                }
            }
            LineCommand::Mute {
                conversation,
                muted,
            } => {
                if let Some(media) = self.media_mut(&conversation) {
                    media.set_muted(muted);
                }
            }
            LineCommand::Dtmf {
                conversation,
                digits,
            } => {
                use crate::config::DtmfMode;
                let mode = self.media_settings.dtmf;
                let info = match self.media(&conversation) {
                    None => false,
                    Some(_) if mode == DtmfMode::Info => true,
                    Some(media) if mode == DtmfMode::Rfc4733 || media.takes_telephone_events() => {
                        media.send_dtmf(&digits);
                        false
                    }
                    Some(_) => true,
                };
                if info && let Some(sip) = &mut self.sip {
                    sip.send_dtmf_info(&conversation, &digits, now, &mut self.entropy);
                }
            }
            LineCommand::Conference { conversations } => {
                self.set_conference(conversations).await;
            }
            LineCommand::Record { conversation, op } => self.record(conversation, op),
            // The phone's driver replaces or ends the line for these.
            LineCommand::Provision(_) | LineCommand::Logout | LineCommand::CheckAudio { .. } => {}
            LineCommand::Blacklist(list) => self.blacklist = list,
            LineCommand::AudioDevices(devices) => {
                let audio = &mut self.media_settings.audio;
                audio.input = devices.input;
                audio.output = devices.output;
                audio.ringer = devices.ringer;
            }
            LineCommand::Hold { conversation, held } => self.change_hold(&conversation, held, now),
        }
        self.process(now).await;
    }

    /// Starts unregistering and hangs up every call, saying why; see [`Self::stop`].
    pub async fn stop_with(&mut self, now: Instant, reason: &str) {
        self.stop_reason = Some(reason.to_owned());
        self.stop(now).await;
    }

    /// Starts unregistering and hangs up every call; [`Self::is_stopped`] tells when done.
    pub async fn stop(&mut self, now: Instant) {
        self.stopping = true;
        self.close_every_recording("the line stopped (logout, a new provisioning, or shutdown)");
        self.connect_at = None;
        for conversation in self.drain_preparing() {
            self.forget(&conversation).await;
            self.events.push_back(LineEvent::CallEnded {
                conversation,
                reason: EndReason::Local,
            });
        }
        // Every call, including one still ringing in (it has no media yet): reject or hang up.
        if let Some(sip) = &mut self.sip {
            for conversation in sip.conversations() {
                sip.hangup(&conversation, now, &mut self.entropy);
            }
        }
        match &mut self.sip {
            Some(sip) if self.transport.is_some() => sip.stop(now, &mut self.entropy),
            _ => {
                // No connection to say goodbye on: the calls it kept end here.
                self.end_every_call("the line stopped while disconnected");
                self.events.push_back(LineEvent::Unregistered {
                    reason: self.stop_reason.clone(),
                });
            }
        }
        self.process(now).await;
    }

    pub fn is_stopped(&self) -> bool {
        self.stopping && self.sip.is_none()
    }

    pub fn poll_event(&mut self) -> Option<LineEvent> {
        self.events.pop_front()
    }

    /// Sends what the SIP layer queued and acts on what it reported.
    async fn process(&mut self, now: Instant) {
        loop {
            self.flush(now).await;
            let Some(event) = self.sip.as_mut().and_then(SipLine::poll_sip_event) else {
                break;
            };
            match event {
                SipEvent::MediaReady {
                    conversation,
                    remote_sdp,
                } => {
                    let Some(media) = self
                        .calls
                        .get_mut(&conversation)
                        .and_then(|io| io.media.as_mut())
                    else {
                        continue;
                    };
                    if let Err(e) = media
                        .start(
                            &conversation,
                            &remote_sdp,
                            &self.media_settings,
                            self.reports.0.clone(),
                        )
                        .await
                    {
                        tracing::warn!(%conversation, "{e}; the call has no audio");
                    }
                }
                SipEvent::MediaChanged {
                    conversation,
                    remote_sdp,
                } => {
                    let held = self
                        .media_mut(&conversation)
                        .and_then(|media| media.remote_changed(&remote_sdp));
                    if let Some(held) = held {
                        self.events.push_back(LineEvent::CallHold {
                            conversation,
                            held,
                            by_remote: true,
                        });
                    }
                }
                SipEvent::ReofferAnswered {
                    conversation,
                    remote_sdp,
                } => {
                    let Some(media) = self.media_mut(&conversation) else {
                        continue;
                    };
                    if let Some(apply) = media.ice_answer(&remote_sdp) {
                        tokio::spawn(apply);
                    }
                    if let Some(held) = media.reoffer_answered(&remote_sdp) {
                        self.events.push_back(LineEvent::CallHold {
                            conversation: conversation.clone(),
                            held,
                            by_remote: false,
                        });
                    }
                    self.send_waiting(&conversation, now);
                }
                SipEvent::ReofferFailed {
                    conversation,
                    status,
                } => {
                    tracing::warn!(%conversation, status, "the far end refused our re-INVITE; hold unchanged");
                    if let Some(media) = self.media_mut(&conversation) {
                        media.reoffer_failed();
                    }
                    self.send_waiting(&conversation, now);
                }
                SipEvent::Line(LineEvent::CallEnded {
                    conversation,
                    reason,
                }) => {
                    self.forget(&conversation).await;
                    self.conference_call_ended(&conversation).await;
                    self.events.push_back(LineEvent::CallEnded {
                        conversation,
                        reason,
                    });
                }
                // A call the agent holds is not handed to anyone by its far end: its new party
                // would hear the agent talking with someone else.
                SipEvent::Referred { conversation, .. } if self.held_by_agent(&conversation) => {
                    if let Some(sip) = &mut self.sip {
                        let why = "the agent holds the call";
                        sip.referral_failed(&conversation, 403, why, now, &mut self.entropy);
                    }
                }
                // A blacklisted party is never called, whoever asks.
                SipEvent::Referred {
                    conversation,
                    target,
                } if self
                    .blacklist
                    .blocks(target.user.as_deref().unwrap_or(&target.host)) =>
                {
                    tracing::warn!(%conversation, "the far end transfers the call (REFER) to a blacklisted number; refused");
                    if let Some(sip) = &mut self.sip {
                        let why = "the number is on the blacklist";
                        sip.referral_failed(&conversation, 403, why, now, &mut self.entropy);
                    }
                }
                SipEvent::Referred {
                    conversation,
                    target,
                } => {
                    tracing::info!(%conversation, "the far end transfers the call (REFER); calling the new party");
                    tracing::debug!(%conversation, %target, "REFER target");
                    self.prepare_referral(conversation, now).await;
                }
                SipEvent::Replacing { conversation } if self.held_by_agent(&conversation) => {
                    tracing::warn!(%conversation, "an INVITE with Replaces for a call the agent holds; refused");
                    if let Some(sip) = &mut self.sip {
                        sip.reject_next(&conversation, 603, now, &mut self.entropy);
                    }
                }
                SipEvent::Replacing { conversation } => {
                    tracing::info!(%conversation, "a new party takes the call's place (INVITE with Replaces)");
                    self.prepare_replacing(conversation, now).await;
                }
                SipEvent::NextFailed { conversation } => {
                    if let Some(media) = self
                        .calls
                        .get_mut(&conversation)
                        .and_then(|io| io.next_media.take())
                    {
                        media.stop().await;
                    }
                }
                SipEvent::MediaSwitched {
                    conversation,
                    remote_sdp,
                } => {
                    self.switch_media(conversation.clone(), &remote_sdp).await;
                    self.conference_media_replaced(&conversation).await;
                }
                SipEvent::ServerSilent => self.server_silent(now),
                SipEvent::FlowPing { transaction } => {
                    if let Some(transport) = &mut self.transport
                        && let Err(e) = transport.flow_ping(transaction).await
                    {
                        self.lost(&e, now);
                    }
                }
                // A flow already replaced (the connection dropped meanwhile) is nothing to act on.
                SipEvent::FlowFailed if self.transport.is_some() => {
                    self.lost(&TransportError::NoPong, now)
                }
                SipEvent::FlowFailed => {}
                SipEvent::Line(event @ LineEvent::CallIncoming { .. }) => {
                    if let LineEvent::CallIncoming { conversation, .. } = &event {
                        self.io(conversation).ringing = true;
                        if self.ringer.is_none() {
                            self.ringer = Ringer::start(&self.media_settings.audio);
                        }
                    }
                    self.events.push_back(event);
                }
                SipEvent::Line(LineEvent::CallEstablished { conversation }) => {
                    self.stop_ringing(&conversation).await;
                    self.events
                        .push_back(LineEvent::CallEstablished { conversation });
                }
                SipEvent::Line(LineEvent::Unregistered { .. }) if self.stopping => {
                    self.events.push_back(LineEvent::Unregistered {
                        reason: self.stop_reason.clone(),
                    });
                    self.sip = None;
                }
                SipEvent::Line(event) => self.events.push_back(event),
            }
        }
    }

    /// Dead-call detection by media: a call that expects media (up, not held either way) and
    /// has received none for `[media] rtp_timeout` is hung up with the cause `timeout`.
    /// `silent`: how long since the far end's last packet, as the media task measured it.
    fn watch_media(&mut self, conversation: &ConversationId, silent: Duration, now: Instant) {
        let (Some(limit), Some(io)) = (
            self.media_settings.rtp_timeout,
            self.calls.get_mut(conversation),
        ) else {
            return;
        };
        let Some(media) = &io.media else {
            return;
        };
        let expected_since = io.media_seen.get_or_insert(now);
        if !media.expects_media() {
            *expected_since = now;
            return;
        }
        // Silence during a hold that has just ended does not count.
        let silent = silent.min(now.saturating_duration_since(*expected_since));
        if silent >= limit
            && let Some(sip) = &mut self.sip
        {
            tracing::warn!(%conversation, "no media from the far end for {} s; hanging up", silent.as_secs());
            sip.give_up(
                conversation,
                &format!("no media from the far end for {} s", silent.as_secs()),
                now,
                &mut self.entropy,
            );
        }
    }

    /// The agent put the call on hold (or is putting it on hold).
    fn held_by_agent(&self, conversation: &ConversationId) -> bool {
        self.media(conversation).is_some_and(CallMedia::agent_holds)
    }

    /// This call no longer rings; the ring tone stops with the last ringing call.
    async fn stop_ringing(&mut self, conversation: &ConversationId) {
        if let Some(io) = self.calls.get_mut(conversation) {
            io.ringing = false;
        }
        if !self.calls.values().any(|io| io.ringing)
            && let Some(ringer) = self.ringer.take()
        {
            ringer.stop().await;
        }
    }

    /// The call ended: its media stops, and the ring tone with the last ringing call.
    async fn forget(&mut self, conversation: &ConversationId) {
        self.stop_ringing(conversation).await;
        if let Some(io) = self.calls.remove(conversation) {
            io.stop().await;
        }
    }

    fn local_ip(&self) -> Option<IpAddr> {
        self.transport
            .as_ref()
            .and_then(|t| t.local_addr().ok())
            .map(|a| a.ip())
    }

    /// Ends every call the line holds, ringing, up or still gathering candidates; their media
    /// stops with the tasks.
    fn end_every_call(&mut self, reason: &str) {
        let mut calls = self
            .sip
            .take()
            .map(|sip| sip.conversations())
            .unwrap_or_default();
        // Calls still gathering candidates end too (an incoming one is in both lists).
        for conversation in self.drain_preparing() {
            if !calls.contains(&conversation) {
                calls.push(conversation);
            }
        }
        if self.conference.take().is_some() {
            self.events.push_back(LineEvent::ConferenceMixed {
                conversations: Vec::new(),
            });
        }
        // Their media stops with the tasks; dropping the ringer stops it (its task sees the
        // stop channel close).
        self.calls.clear();
        self.ringer = None;
        for conversation in calls {
            self.events.push_back(LineEvent::CallEnded {
                conversation,
                reason: EndReason::Network {
                    reason: reason.to_owned(),
                },
            });
        }
    }

    /// Malformed SIP arrived: log what was wrong (never the message: its lines may carry
    /// credentials and numbers), at debug and within a budget, since a peer controls how much
    /// arrives; and answer a request with the 400 the transport built, on the same transport.
    async fn garbage(
        &mut self,
        error: &sip_core::ParseError,
        reply: Option<Vec<u8>>,
        now: Instant,
    ) {
        if let Some(left_out) = self.garbage_log.allow(now) {
            tracing::debug!(
                problem = %error.problem(),
                answered = reply.is_some(),
                left_out,
                "dropped a malformed SIP message"
            );
        }
        let (Some(reply), Some(transport)) = (reply, &mut self.transport) else {
            return;
        };
        if let Err(e) = transport.send(&reply).await {
            self.lost(&e, now);
        }
    }

    async fn flush(&mut self, now: Instant) {
        let (Some(sip), Some(transport)) = (&mut self.sip, &mut self.transport) else {
            return;
        };
        // What could not be sent before the connection dropped goes first, then the rest.
        let mut retried = self.unsent.take();
        while let Some((bytes, retry)) = retried
            .take()
            .map(|b| (b, true))
            .or_else(|| sip.poll_transmit().map(|b| (b, false)))
        {
            let start_line = bytes.split(|b| *b == b'\r').next().unwrap_or_default();
            tracing::debug!(message = %String::from_utf8_lossy(start_line), "SIP out");
            if let Err(e) = transport.send(&bytes).await {
                if retry {
                    tracing::warn!(message = %String::from_utf8_lossy(start_line), "a SIP message could not be sent on two connections; dropping it");
                } else {
                    self.unsent = Some(bytes);
                }
                self.lost(&e, now);
                return;
            }
        }
    }
}

/// The start line and CSeq only: enough to follow a flow, without credentials or numbers.
fn summary(message: &sip_core::Message) -> String {
    let cseq = message.headers().get("CSeq").unwrap_or_default();
    match message {
        sip_core::Message::Request(r) => format!("{} ({cseq})", r.method),
        sip_core::Message::Response(r) => format!("{} {} ({cseq})", r.status, r.reason),
    }
}
