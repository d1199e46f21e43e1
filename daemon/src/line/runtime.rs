//! The I/O half of the line: owns the transport, the sans-IO [`SipLine`], and each call's RTP
//! socket and media task. Connects and reconnects with back-off, sends keepalives, negotiates
//! SDP, and turns bytes and timers into line events. The phone task polls it in its one loop.

use std::collections::{HashMap, VecDeque};
use std::future::pending;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sip_core::call::EndReason;
use sip_core::sdp::{Codec, SessionDescription};
use tokio::net::UdpSocket;

use super::transport::{Inbound, Transport, TransportError};
use super::{LineCommand, LineConfig, LineEvent, OsEntropy, SipEvent, SipLine};
use crate::audio;
use crate::config::AudioConfig;
use crate::media::session::{AudioCodec, MediaParams, MediaSession};

const KEEPALIVE_EVERY: Duration = Duration::from_secs(25);
const FIRST_RECONNECT: Duration = Duration::from_secs(1);
const MAX_RECONNECT: Duration = Duration::from_secs(60);

/// Media settings for calls.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub audio: AudioConfig,
    /// Our codecs in preference order (`[media] codecs`, those this build supports).
    pub codecs: Vec<Codec>,
}

impl MediaSettings {
    pub fn from_config(audio: &AudioConfig, names: &[String]) -> Self {
        let codecs: Vec<Codec> = names
            .iter()
            .filter_map(|name| match Codec::by_name(name) {
                Some(codec) if AudioCodec::from_name(&codec.name).is_some() => Some(codec),
                Some(_) => {
                    tracing::warn!("codec {name:?} is not supported by this build yet; skipping it");
                    None
                }
                None => {
                    tracing::warn!("unknown codec {name:?} in [media] codecs; skipping it");
                    None
                }
            })
            .collect();
        let codecs = if codecs.is_empty() { vec![Codec::pcmu(), Codec::pcma()] } else { codecs };
        Self { audio: audio.clone(), codecs }
    }
}

/// One call's media: its RTP socket until media starts, then the running session.
#[derive(Default)]
struct CallMedia {
    socket: Option<UdpSocket>,
    session: Option<MediaSession>,
    muted: bool,
}

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
    media: HashMap<String, CallMedia>,
    events: VecDeque<LineEvent>,
}

impl LineRuntime {
    pub fn new(config: LineConfig, media_settings: MediaSettings, now: Instant) -> Self {
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
            media: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// Waits for the next inbound item; never resolves while there is no transport.
    pub async fn recv(&mut self) -> Result<Inbound, TransportError> {
        match &mut self.transport {
            Some(transport) => transport.recv().await,
            None => pending().await,
        }
    }

    pub fn next_wake(&self) -> Option<Instant> {
        let sip = self.sip.as_ref().and_then(SipLine::poll_timeout);
        [sip, self.connect_at, self.keepalive_at].into_iter().flatten().min()
    }

    pub async fn on_timer(&mut self, now: Instant) {
        if self.connect_at.is_some_and(|at| now >= at) {
            self.connect_at = None;
            self.connect(now).await;
        }
        if self.keepalive_at.is_some_and(|at| now >= at) {
            self.keepalive_at = Some(now + KEEPALIVE_EVERY);
            if let Some(transport) = &mut self.transport
                && let Err(e) = transport.keepalive().await
            {
                self.lost(&e, now);
            }
        }
        if let Some(sip) = &mut self.sip {
            sip.handle_timeout(now, &mut self.entropy);
        }
        self.process(now).await;
    }

    pub async fn on_inbound(&mut self, inbound: Result<Inbound, TransportError>, now: Instant) {
        match inbound {
            Ok(Inbound::Message(message)) => {
                tracing::debug!(message = %summary(&message), "SIP in");
                if let Some(sip) = &mut self.sip {
                    sip.handle_message(message, now, &mut self.entropy);
                }
            }
            Ok(Inbound::Garbage(e)) => tracing::warn!("dropped a malformed SIP message: {e}"),
            Ok(Inbound::KeepAlive) => {}
            Err(e) => self.lost(&e, now),
        }
        self.process(now).await;
    }

    pub async fn command(&mut self, command: LineCommand, now: Instant) {
        match command {
            LineCommand::Dial { conversation, target } => self.dial(conversation, target, now).await,
            LineCommand::Answer { conversation } => self.answer(&conversation, now).await,
            LineCommand::Reject { conversation, status } => {
                if let Some(sip) = &mut self.sip {
                    sip.reject(&conversation, status, now);
                }
            }
            LineCommand::Hangup { conversation } => {
                let known = self.sip.as_mut().is_some_and(|sip| sip.hangup(&conversation, now, &mut self.entropy));
                if !known {
                    self.events.push_back(LineEvent::CallEnded { conversation, reason: EndReason::Local });
                }
            }
            LineCommand::Mute { conversation, muted } => {
                if let Some(media) = self.media.get_mut(&conversation) {
                    media.muted = muted;
                    if let Some(session) = &media.session {
                        session.set_muted(muted);
                    }
                }
            }
            LineCommand::Dtmf { conversation, digits } => {
                if let Some(session) = self.media.get(&conversation).and_then(|m| m.session.as_ref()) {
                    session.send_dtmf(&digits);
                }
            }
        }
        self.process(now).await;
    }

    async fn dial(&mut self, conversation: String, target: sip_core::Uri, now: Instant) {
        let Some(ip) = self.local_ip() else {
            let reason = EndReason::Failed { reason: "the line is not connected".into() };
            self.events.push_back(LineEvent::CallEnded { conversation, reason });
            return;
        };
        let socket = match UdpSocket::bind((ip, 0)).await {
            Ok(socket) => socket,
            Err(e) => {
                let reason = EndReason::Failed { reason: format!("no RTP port: {e}") };
                self.events.push_back(LineEvent::CallEnded { conversation, reason });
                return;
            }
        };
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let offer = SessionDescription::offer(session_id(), &ip.to_string(), port, &self.media_settings.codecs);
        self.media.insert(conversation.clone(), CallMedia { socket: Some(socket), ..CallMedia::default() });
        if let Some(sip) = &mut self.sip {
            sip.dial(conversation, target, offer.to_string(), now, &mut self.entropy);
        }
    }

    async fn answer(&mut self, conversation: &str, now: Instant) {
        let (Some(ip), Some(sip)) = (self.local_ip(), &mut self.sip) else { return };
        let offer = sip.remote_sdp(conversation).and_then(|text| SessionDescription::parse(&text).ok());
        let Some(offer) = offer else {
            // No usable offer (offerless INVITE is not supported yet): refuse honestly.
            sip.reject(conversation, 488, now);
            return;
        };
        let socket = match UdpSocket::bind((ip, 0)).await {
            Ok(socket) => socket,
            Err(e) => {
                tracing::warn!("no RTP port for an incoming call: {e}");
                sip.reject(conversation, 500, now);
                return;
            }
        };
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        match SessionDescription::answer(&offer, session_id(), &ip.to_string(), port, &self.media_settings.codecs) {
            Ok((answer, _)) => {
                self.media.insert(conversation.to_owned(), CallMedia { socket: Some(socket), ..CallMedia::default() });
                sip.answer(conversation, answer.to_string(), now);
            }
            Err(e) => {
                tracing::warn!("cannot answer: {e}");
                sip.reject(conversation, 488, now);
            }
        }
    }

    /// Starts unregistering and hangs up every call; [`Self::is_stopped`] tells when done.
    pub async fn stop(&mut self, now: Instant) {
        self.stopping = true;
        self.connect_at = None;
        // Every call, including one still ringing in (it has no media yet): reject or hang up.
        if let Some(sip) = &mut self.sip {
            for conversation in sip.conversations() {
                sip.hangup(&conversation, now, &mut self.entropy);
            }
        }
        match &mut self.sip {
            Some(sip) if self.transport.is_some() => sip.stop(now, &mut self.entropy),
            _ => self.sip = None,
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
            let Some(event) = self.sip.as_mut().and_then(SipLine::poll_sip_event) else { break };
            match event {
                SipEvent::MediaReady { conversation, remote_sdp } => self.start_media(&conversation, &remote_sdp),
                SipEvent::MediaChanged { conversation, .. } => {
                    tracing::info!(%conversation, "the far end changed its media; keeping the current stream");
                }
                SipEvent::Line(LineEvent::CallEnded { conversation, reason }) => {
                    if let Some(media) = self.media.remove(&conversation)
                        && let Some(session) = media.session
                    {
                        session.stop().await;
                    }
                    self.events.push_back(LineEvent::CallEnded { conversation, reason });
                }
                SipEvent::Line(LineEvent::Unregistered) if self.stopping => {
                    self.events.push_back(LineEvent::Unregistered);
                    self.sip = None;
                }
                SipEvent::Line(event) => self.events.push_back(event),
            }
        }
    }

    fn start_media(&mut self, conversation: &str, remote_sdp: &str) {
        let Some(media) = self.media.get_mut(conversation) else { return };
        let Some(socket) = media.socket.take() else { return };
        let remote = match SessionDescription::parse(remote_sdp) {
            Ok(sdp) => sdp,
            Err(e) => return tracing::warn!(%conversation, "unusable remote SDP ({e}); the call has no audio"),
        };
        // Their answer lists the chosen codec first; for their offer we answered with our first
        // preference they had, found the same way.
        let chosen = self.media_settings.codecs.iter().find_map(|ours| {
            remote.audio.codecs.iter().find(|theirs| theirs.name.eq_ignore_ascii_case(&ours.name) && theirs.clock_rate == ours.clock_rate)
        });
        let Some((codec, chosen)) = chosen.and_then(|c| AudioCodec::from_name(&c.name).map(|a| (a, c.clone()))) else {
            return tracing::warn!(%conversation, "no common audio codec in the remote SDP; the call has no audio");
        };
        let Ok(address) = remote.audio.address.trim_matches(['[', ']']).parse::<IpAddr>() else {
            return tracing::warn!(%conversation, "remote media address {:?} is not an IP address", remote.audio.address);
        };
        let audio::CallAudio { source, sink } = match audio::open_for_call(&self.media_settings.audio, codec.clock_rate()) {
            Ok(audio) => audio,
            Err(e) => return tracing::warn!(%conversation, "audio: {e}; the call has no audio"),
        };
        let params = MediaParams {
            socket,
            remote: SocketAddr::new(address, remote.audio.port),
            codec,
            payload_type: chosen.payload_type,
            telephone_event: remote.audio.telephone_event,
        };
        tracing::info!(%conversation, codec = %chosen.name, remote = %params.remote, "media started");
        let session = MediaSession::start(params, source, sink);
        session.set_muted(media.muted);
        media.session = Some(session);
    }

    fn local_ip(&self) -> Option<IpAddr> {
        self.transport.as_ref().and_then(|t| t.local_addr().ok()).map(|a| a.ip())
    }

    async fn connect(&mut self, now: Instant) {
        let connected = async {
            let peer = self.config.resolve().await.map_err(TransportError::Io)?;
            Transport::connect(self.config.kind, peer, &self.config.domain, self.config.ca_file.as_deref()).await
        }
        .await;
        match connected {
            Ok(transport) => {
                let local = match transport.local_addr() {
                    Ok(local) => local,
                    Err(e) => return self.lost(&TransportError::Io(e), now),
                };
                tracing::info!(transport = transport.token(), %local, "SIP transport connected");
                let mut sip = SipLine::new(&self.config, local, transport.token(), transport.is_reliable(), &mut self.entropy);
                sip.start(now, &mut self.entropy);
                self.sip = Some(sip);
                self.transport = Some(transport);
                self.keepalive_at = Some(now + KEEPALIVE_EVERY);
                self.backoff = FIRST_RECONNECT;
            }
            Err(e) => self.lost(&e, now),
        }
    }

    /// The transport failed: report, forget the connection, and try again after a back-off.
    fn lost(&mut self, error: &TransportError, now: Instant) {
        tracing::warn!("SIP transport: {error}");
        self.transport = None;
        self.keepalive_at = None;
        // Every call the line held ends with it, ringing or up; their media stops with the task.
        let calls = self.sip.take().map(|sip| sip.conversations()).unwrap_or_default();
        self.media.clear();
        for conversation in calls {
            let reason = EndReason::Failed { reason: format!("the line dropped: {error}") };
            self.events.push_back(LineEvent::CallEnded { conversation, reason });
        }
        if self.stopping {
            return;
        }
        self.events.push_back(LineEvent::Failed { reason: format!("{error}; reconnecting in {} s", self.backoff.as_secs()) });
        self.connect_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_RECONNECT);
    }

    async fn flush(&mut self, now: Instant) {
        let (Some(sip), Some(transport)) = (&mut self.sip, &mut self.transport) else { return };
        while let Some(bytes) = sip.poll_transmit() {
            let start_line = bytes.split(|b| *b == b'\r').next().unwrap_or_default();
            tracing::debug!(message = %String::from_utf8_lossy(start_line), "SIP out");
            if let Err(e) = transport.send(&bytes).await {
                self.lost(&e, now);
                return;
            }
        }
    }
}

fn session_id() -> u64 {
    u64::from_str_radix(&crate::run::random_hex(6), 16).unwrap_or(1)
}

/// The start line and CSeq only: enough to follow a flow, without credentials or numbers.
fn summary(message: &sip_core::Message) -> String {
    let cseq = message.headers().get("CSeq").unwrap_or_default();
    match message {
        sip_core::Message::Request(r) => format!("{} ({cseq})", r.method),
        sip_core::Message::Response(r) => format!("{} {} ({cseq})", r.status, r.reason),
    }
}
