//! One call's media on a SIP line: plain RTP (its RTP/RTCP ports, SDES keys) or WebRTC (a peer
//! connection), the SDP we offer or answer (codecs, direction for hold), and the media task once
//! both sides agree. Hold, mute and DTMF work the same for both.

use std::net::{IpAddr, SocketAddr};

use sip_core::sdp::{Audio, Crypto, Direction, SdpError, SessionDescription};
use tokio::net::UdpSocket;

use super::MediaSettings;
use super::webrtc_media::{WebRtcMedia, WebRtcSettings};
use crate::config::SrtpPolicy;
use crate::ids::ConversationId;
use crate::media::codec::AudioCodec;
use crate::media::session::{Flow, MediaParams, MediaSession, ReportSender, Wire};
use crate::media::srtp::{self, SrtpSession};

type Key = [u8; 30];

/// Why we cannot answer an offer: the SIP status to send and why.
#[derive(Debug)]
pub struct Unacceptable {
    pub status: u16,
    pub reason: String,
}

/// How the call's RTP travels. One per call, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Path {
    Rtp {
        sockets: Option<(UdpSocket, UdpSocket)>,
        /// Our SDES keys: every one we offered, or the one we answered with.
        keys: Vec<(Crypto, Key)>,
        local: SessionDescription,
    },
    WebRtc(Box<WebRtcMedia>),
}

pub struct CallMedia {
    path: Path,
    /// We sent the offer (their SDP at start is an answer).
    we_offered: bool,
    session: Option<MediaSession>,
    muted: bool,
    /// We put the call on hold.
    pub held: bool,
    /// The far end put the call on hold.
    pub remote_hold: bool,
    remote_direction: Direction,
    /// The hold state our outstanding re-INVITE asks for.
    requested_hold: Option<bool>,
    /// A hold change asked while a re-INVITE of the call was in flight (a hold not yet
    /// answered, a refresh, an ICE restart): the latest asked, sent when that one ends. A hold
    /// waiting stops our media at once, as a hold sent does.
    waiting_hold: Option<bool>,
    /// The far end takes RFC 4733 telephone-events (a browser always does).
    telephone_event: bool,
}

impl CallMedia {
    /// Ports and our offer for an outgoing call.
    pub async fn for_offer(ip: IpAddr, settings: &MediaSettings) -> Result<Self, String> {
        let (rtp, rtcp) = bind_pair(ip).await?;
        let port = rtp.local_addr().map_err(|e| e.to_string())?.port();
        let mut local =
            SessionDescription::offer(session_id(), &ip.to_string(), port, &settings.codecs);
        let keys = match settings.srtp {
            SrtpPolicy::Off => Vec::new(),
            policy => {
                // Best-effort SRTP offers the keys in plain RTP/AVP (as baresip's `srtp` mode
                // does); `required` offers RTP/SAVP, which a plain-RTP PBX refuses.
                if policy == SrtpPolicy::Required {
                    local.audio.protocol = "RTP/SAVP".into();
                }
                srtp::offer().map_err(|e| e.to_string())?
            }
        };
        local.audio.crypto = keys.iter().map(|(crypto, _)| crypto.clone()).collect();
        let mut media = Self::new(Path::Rtp {
            sockets: Some((rtp, rtcp)),
            keys,
            local,
        });
        media.we_offered = true;
        Ok(media)
    }

    /// A WebRTC peer connection and our offer for an outgoing call.
    pub async fn for_webrtc_offer(
        settings: &MediaSettings,
        webrtc: &WebRtcSettings,
    ) -> Result<Self, String> {
        let mut media = Self::new(Path::WebRtc(Box::new(
            WebRtcMedia::for_offer(settings, webrtc).await?,
        )));
        media.we_offered = true;
        Ok(media)
    }

    /// A WebRTC peer connection answering an incoming call's offer.
    pub async fn for_webrtc_answer(
        settings: &MediaSettings,
        webrtc: &WebRtcSettings,
        offer: &str,
    ) -> Result<Self, Unacceptable> {
        let direction = SessionDescription::parse(offer)
            .map(|o| o.audio.direction)
            .unwrap_or(Direction::SendRecv);
        let webrtc = WebRtcMedia::for_answer(settings, webrtc, offer)
            .await
            .map_err(|reason| not_acceptable(&reason))?;
        let mut media = Self::new(Path::WebRtc(Box::new(webrtc)));
        media.remote_direction = direction;
        media.remote_hold = is_hold(direction);
        Ok(media)
    }

    /// Ports and our answer for an incoming call's offer.
    pub async fn for_answer(
        ip: IpAddr,
        settings: &MediaSettings,
        offer: &SessionDescription,
    ) -> Result<Self, Unacceptable> {
        let (index, use_srtp) = pick_stream(settings, offer)?;
        let mut offer = offer.clone();
        offer.choose(index);
        let offer = &offer;
        let (rtp, rtcp) = bind_pair(ip).await.map_err(|reason| Unacceptable {
            status: 500,
            reason,
        })?;
        let port = rtp
            .local_addr()
            .map_err(|e| Unacceptable {
                status: 500,
                reason: e.to_string(),
            })?
            .port();
        let (mut local, _) = SessionDescription::answer(
            offer,
            session_id(),
            &ip.to_string(),
            port,
            &settings.codecs,
        )
        .map_err(|e| not_acceptable(&e.to_string()))?;
        let mut keys = Vec::new();
        if let Some(theirs) = use_srtp {
            let (crypto, key) =
                srtp::local_crypto(theirs.tag, &theirs.suite).map_err(|e| Unacceptable {
                    status: 500,
                    reason: e.to_string(),
                })?;
            local.audio.crypto = vec![crypto.clone()];
            keys.push((crypto, key));
        }
        let mut media = Self::new(Path::Rtp {
            sockets: Some((rtp, rtcp)),
            keys,
            local,
        });
        media.remote_direction = offer.audio.direction;
        media.remote_hold = is_remote_hold(offer);
        Ok(media)
    }

    /// Their description reduced to this call's stream (see [`remote_stream`]).
    fn remote(&self, remote_sdp: &str) -> Result<SessionDescription, SdpError> {
        match &self.path {
            Path::Rtp { local, .. } => remote_stream(local, remote_sdp),
            Path::WebRtc(_) => SessionDescription::parse(remote_sdp),
        }
    }

    fn new(path: Path) -> Self {
        Self {
            path,
            we_offered: false,
            session: None,
            muted: false,
            held: false,
            remote_hold: false,
            remote_direction: Direction::SendRecv,
            requested_hold: None,
            waiting_hold: None,
            telephone_event: false,
        }
    }

    pub fn sdp(&self) -> String {
        match &self.path {
            Path::Rtp { local, .. } => local.to_string(),
            Path::WebRtc(webrtc) => webrtc.sdp().to_owned(),
        }
    }

    /// A new offer putting the call on hold (`sendonly`) or taking it off (`sendrecv`).
    /// Holding stops our media at once, before the far end agrees: the agent's voice must not
    /// reach a caller they put on hold, even if the far end is slow or refuses.
    pub fn hold_offer(&mut self, held: bool) -> String {
        self.set_direction(held);
        self.requested_hold = Some(held);
        self.apply_flow();
        self.sdp()
    }

    fn set_direction(&mut self, held: bool) {
        let direction = if held {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        match &mut self.path {
            Path::Rtp { local, .. } => {
                local.audio.direction = direction;
                local.version += 1;
            }
            // The same ICE and DTLS parameters with another direction: no renegotiation of
            // the transport, which the browser at the far end would take as an ICE restart.
            Path::WebRtc(webrtc) => drop(webrtc.redirected(direction)),
        }
    }

    /// Their answer to our re-INVITE arrived: the hold it asked for takes effect.
    /// Any answer may move their media (a B2BUA answering a refresh with a new port): on plain
    /// RTP it is followed whatever the re-INVITE was for.
    pub fn reoffer_answered(&mut self, remote_sdp: &str) -> Option<bool> {
        if let Ok(remote) = self.remote(remote_sdp) {
            self.follow(&remote);
        }
        let held = self.requested_hold.take()?;
        self.held = held;
        if let Ok(remote) = self.remote(remote_sdp) {
            self.remote_direction = remote.audio.direction;
        }
        self.apply_flow();
        Some(held)
    }

    /// They refused it (or it could not be sent): our SDP goes back to what it was.
    pub fn reoffer_failed(&mut self) {
        if let Path::WebRtc(webrtc) = &mut self.path {
            webrtc.restart_refused();
        }
        self.hold_not_sent();
    }

    /// A hold change could not be sent (another re-INVITE, say an ICE restart, is in flight):
    /// its direction goes back, and nothing else — the re-INVITE in flight is not ours to undo.
    pub fn hold_not_sent(&mut self) {
        if self.requested_hold.take().is_some() {
            self.set_direction(self.held);
            self.apply_flow();
        }
    }

    /// Their re-INVITE changed their media; returns the new remote-hold state when it changed.
    /// On plain RTP a new address or port is where packets are taken from and sent to now.
    pub fn remote_changed(&mut self, remote_sdp: &str) -> Option<bool> {
        let remote = self.remote(remote_sdp).ok()?;
        self.follow(&remote);
        self.remote_direction = remote.audio.direction;
        self.apply_flow();
        let hold = is_remote_hold(&remote);
        (hold != self.remote_hold).then(|| {
            self.remote_hold = hold;
            hold
        })
    }

    /// On plain RTP, their media address and port as `remote` gives them.
    fn follow(&self, remote: &SessionDescription) {
        if let (Path::Rtp { local, .. }, Some(session)) = (&self.path, &self.session) {
            let mux = remote.audio.rtcp_mux && local.audio.rtcp_mux;
            if let Some((rtp, rtcp)) = remote_addresses(remote, mux) {
                session.set_remote(rtp, rtcp);
            }
        }
    }

    fn flow(&self) -> Flow {
        if self.agent_holds() {
            return Flow {
                send: false,
                receive: false,
            };
        }
        match self.remote_direction {
            Direction::SendRecv => Flow::BOTH,
            // They only send: we listen. They only receive: we only send.
            Direction::SendOnly => Flow {
                send: false,
                receive: true,
            },
            Direction::RecvOnly => Flow {
                send: true,
                receive: false,
            },
            Direction::Inactive => Flow {
                send: false,
                receive: false,
            },
        }
    }

    fn apply_flow(&self) {
        if let Some(session) = &self.session {
            session.set_flow(self.flow());
        }
    }

    /// The machine's address changed to `ip`: on plain RTP our description now names it (the
    /// sockets listen on every address already), with a new version. Returns the SDP for the
    /// re-INVITE that tells the far end; None when nothing changes (WebRTC moves by ICE).
    pub fn moved_to(&mut self, ip: IpAddr) -> Option<String> {
        let Path::Rtp { local, .. } = &mut self.path else {
            return None;
        };
        let address = ip.to_string();
        if local.audio.address == address {
            return None;
        }
        local.audio.address = address.clone();
        local.origin_address = address;
        local.version += 1;
        Some(local.to_string())
    }

    /// On WebRTC, what an ICE restart needs (the machine's address changed); None on RTP,
    /// which moves by [`Self::moved_to`].
    pub fn ice_restart(&self) -> Option<super::webrtc_media::IceRestart> {
        match &self.path {
            Path::WebRtc(webrtc) => Some(webrtc.ice_restart()),
            Path::Rtp { .. } => None,
        }
    }

    /// The ICE restart's gathered description as our offer: with the call's direction (a hold
    /// kept).
    pub fn ice_offer(&self, gathered: &str) -> String {
        let direction = if self.held {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        sip_core::sdp::with_direction(gathered, direction).unwrap_or_else(|| gathered.to_owned())
    }

    /// The ICE restart's offer went out: it is our description now, and the answer to it is
    /// for the peer connection ([`Self::ice_answer`]).
    pub fn ice_restart_sent(&mut self, offer: String) {
        if let Path::WebRtc(webrtc) = &mut self.path {
            webrtc.restarted(offer);
        }
    }

    /// Their answer to our re-INVITE, when it answers an ICE restart: the work that applies it
    /// to the peer connection.
    pub fn ice_answer(
        &mut self,
        remote_sdp: &str,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        match &mut self.path {
            Path::WebRtc(webrtc) => webrtc.restart_answered(remote_sdp),
            Path::Rtp { .. } => None,
        }
    }

    /// Media should be arriving: it runs, nobody holds, and they send to us.
    pub fn expects_media(&self) -> bool {
        self.session.is_some() && !self.remote_hold && self.flow() == Flow::BOTH
    }

    /// Hands every frame of the call to a recording (`None`: stop).
    pub fn record(&self, tap: Option<crate::media::recording::Tap>) {
        if let Some(session) = &self.session {
            session.record(tap);
        }
    }

    /// The sample rate of the call's audio, once media runs.
    pub fn rate(&self) -> Option<u32> {
        self.session.as_ref().map(MediaSession::rate)
    }

    /// Gives the running media new audio ends (a conference's leg, or the devices again);
    /// returns the old ones. None when media does not run.
    pub async fn swap_audio(
        &self,
        audio: crate::audio::CallAudio,
    ) -> Option<crate::audio::CallAudio> {
        self.session.as_ref()?.swap_audio(audio).await
    }

    /// A hold or resume of ours waits for the far end's answer.
    pub fn hold_in_flight(&self) -> bool {
        self.requested_hold.is_some()
    }

    /// Keeps `held` to be asked once the re-INVITE in flight ends (the latest wins).
    pub fn wait_to_hold(&mut self, held: bool) {
        self.waiting_hold = Some(held);
        self.apply_flow();
    }

    /// The hold change waiting, taken to be asked now (the asking applies the flow).
    pub fn take_waiting_hold(&mut self) -> Option<bool> {
        self.waiting_hold.take()
    }

    /// Nothing waits any more: the call is as asked.
    pub fn clear_waiting_hold(&mut self) {
        if self.waiting_hold.take().is_some() {
            self.apply_flow();
        }
    }

    /// The agent holds the call, or asked to and waits for the far end's answer (or for a
    /// re-INVITE in flight to end before the hold can be asked).
    pub fn agent_holds(&self) -> bool {
        self.held || self.requested_hold == Some(true) || self.waiting_hold == Some(true)
    }

    pub fn is_muted(&self) -> bool {
        self.muted
    }

    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
        if let Some(session) = &self.session {
            session.set_muted(muted);
        }
    }

    /// Whether digits can go in the media (RFC 4733): the far end offered telephone-event.
    pub fn takes_telephone_events(&self) -> bool {
        self.telephone_event
    }

    pub fn send_dtmf(&self, digits: &str) {
        if let Some(session) = &self.session {
            session.send_dtmf(digits);
        }
    }

    /// Starts media once the SDP exchange is complete. Returns why not, when it cannot.
    pub async fn start(
        &mut self,
        conversation: &ConversationId,
        remote_sdp: &str,
        settings: &MediaSettings,
        reports: ReportSender,
    ) -> Result<(), String> {
        if self.session.is_some() {
            return Ok(());
        }
        let session = match &mut self.path {
            Path::WebRtc(webrtc) => {
                webrtc
                    .start(conversation, remote_sdp, self.we_offered, settings, reports)
                    .await?
            }
            Path::Rtp { .. } => self.start_rtp(conversation, remote_sdp, settings, reports)?,
        };
        if let Ok(remote) = self.remote(remote_sdp) {
            self.remote_direction = remote.audio.direction;
            self.telephone_event =
                matches!(self.path, Path::WebRtc(_)) || remote.audio.telephone_event.is_some();
        }
        session.set_muted(self.muted);
        session.set_flow(self.flow());
        self.session = Some(session);
        Ok(())
    }

    fn start_rtp(
        &mut self,
        conversation: &ConversationId,
        remote_sdp: &str,
        settings: &MediaSettings,
        reports: ReportSender,
    ) -> Result<MediaSession, String> {
        let Path::Rtp {
            sockets,
            keys,
            local,
        } = &mut self.path
        else {
            return Err("not an RTP call".into());
        };
        let Some((rtp, rtcp)) = sockets.take() else {
            return Err("media already started".into());
        };
        let remote =
            remote_stream(local, remote_sdp).map_err(|e| format!("unusable remote SDP ({e})"))?;
        // Their answer lists the chosen codec first; for their offer we answered with our first
        // preference they had, found the same way.
        let chosen = settings.codecs.iter().find_map(|ours| {
            remote.audio.codecs.iter().find(|theirs| {
                theirs.name.eq_ignore_ascii_case(&ours.name) && theirs.clock_rate == ours.clock_rate
            })
        });
        let (codec, chosen) = chosen
            .and_then(|c| AudioCodec::from_name(&c.name).map(|a| (a, c.clone())))
            .ok_or("no common audio codec in the remote SDP")?;
        let mux = remote.audio.rtcp_mux && local.audio.rtcp_mux;
        let (rtp_remote, rtcp_remote) = remote_addresses(&remote, mux).ok_or_else(|| {
            format!(
                "remote media address {:?} is not an IP address",
                remote.audio.address
            )
        })?;
        let srtp = srtp_for(keys, &remote, settings.srtp)?;
        let (source, sink) = settings.open_call_audio(conversation, codec, &reports)?;
        tracing::info!(%conversation, codec = %chosen.name, remote = %rtp_remote, srtp = srtp.is_some(), "media started");
        let params = MediaParams {
            wire: Wire::Udp {
                socket: rtp,
                rtcp_socket: (!mux).then_some(rtcp),
                remote: rtp_remote,
                remote_rtcp: rtcp_remote,
                srtp,
            },
            codec,
            payload_type: chosen.payload_type,
            telephone_event: remote.audio.telephone_event,
            cname: format!(
                "{}@softphone-bridge",
                &conversation.as_str()[..conversation.as_str().len().min(8)]
            ),
            conversation: conversation.to_owned(),
        };
        Ok(MediaSession::start(params, source, sink, reports))
    }

    pub async fn stop(self) {
        if let Some(session) = self.session {
            session.stop().await;
        }
        if let Path::WebRtc(webrtc) = self.path {
            webrtc.stop().await;
        }
    }
}

fn srtp_for(
    keys: &[(Crypto, Key)],
    remote: &SessionDescription,
    policy: SrtpPolicy,
) -> Result<Option<SrtpSession>, String> {
    // Their line whose tag matches one of our keys: for an answer, the one they chose; for
    // their offer, the one we answered.
    let pair = remote.audio.crypto.iter().find_map(|theirs| {
        keys.iter()
            .find(|(ours, _)| ours.tag == theirs.tag && ours.suite == theirs.suite)
            .map(|(_, key)| (theirs, key))
    });
    match pair {
        Some((theirs, key)) => SrtpSession::new(&theirs.suite, key, theirs)
            .map(Some)
            .map_err(|e| e.to_string()),
        None if policy == SrtpPolicy::Required => {
            Err("the far end did not agree to SRTP and [media] srtp = \"required\"".into())
        }
        None => Ok(None),
    }
}

/// Held by them: a direction that sends us nothing, or the old `c=0.0.0.0` form of hold (RFC
/// 2543, still sent by some PBXes) — either way no media is to be expected.
fn is_remote_hold(remote: &SessionDescription) -> bool {
    is_hold(remote.audio.direction) || remote.audio.address == "0.0.0.0"
}

fn is_hold(direction: Direction) -> bool {
    matches!(direction, Direction::SendOnly | Direction::Inactive)
}

/// Their description reduced to the stream paired with ours: streams pair by position (RFC
/// 3264 §6), so when we answered their second audio stream, their later descriptions are read
/// at that position too. A position they no longer offer leaves their first usable stream.
fn remote_stream(
    local: &SessionDescription,
    remote_sdp: &str,
) -> Result<SessionDescription, SdpError> {
    let mut remote = SessionDescription::parse(remote_sdp)?;
    remote.choose(local.audio_index);
    Ok(remote)
}

/// The audio stream to answer and the SRTP key offer to take, by `[media] srtp` and our codecs.
/// With SRTP allowed, a stream with a key we support comes first: an `RTP/SAVP` stream offered
/// beside an `RTP/AVP` one is taken and the plain one refused. An `RTP/AVP` stream carrying
/// `a=crypto` (a common PBX habit, "best-effort SRTP") is answered with SRTP whenever SRTP is
/// allowed, and so satisfies `srtp = "required"`: the media is encrypted either way.
fn pick_stream(
    settings: &MediaSettings,
    offer: &SessionDescription,
) -> Result<(usize, Option<Crypto>), Unacceptable> {
    let supported = |audio: &Audio| {
        audio
            .crypto
            .iter()
            .find(|c| srtp::SUITES.contains(&c.suite.as_str()))
            .cloned()
    };
    let mut streams: Vec<(usize, &Audio)> = offer.audio_streams().collect();
    streams.sort_by_key(|(index, _)| *index);
    if settings.srtp != SrtpPolicy::Off {
        // Stable: among equals, the offerer's order stands.
        streams.sort_by_key(|(_, audio)| supported(audio).is_none());
    }
    let mut first_refusal = None;
    for (index, audio) in streams {
        let secure_profile = audio.protocol.contains("SAVP");
        let key = match (settings.srtp, supported(audio)) {
            (SrtpPolicy::Off, _) if secure_profile => {
                Err("the offer requires SRTP and [media] srtp = \"off\"")
            }
            (SrtpPolicy::Off, _) => Ok(None),
            (_, Some(theirs)) => Ok(Some(theirs)),
            (_, None) if secure_profile => Err("none of the offered SRTP suites is supported"),
            (SrtpPolicy::Required, None) => {
                Err("the offer has no SRTP and [media] srtp = \"required\"")
            }
            (SrtpPolicy::Optional, None) => Ok(None),
        };
        let usable = key.map_err(not_acceptable).and_then(|key| {
            audio
                .common_codec(&settings.codecs)
                .map(|_| key)
                .map_err(|e| not_acceptable(&e.to_string()))
        });
        match usable {
            Ok(key) => return Ok((index, key)),
            Err(refusal) => {
                first_refusal.get_or_insert(refusal);
            }
        }
    }
    Err(first_refusal.unwrap_or_else(|| not_acceptable("no audio stream in the offer")))
}

fn not_acceptable(reason: &str) -> Unacceptable {
    Unacceptable {
        status: 488,
        reason: reason.to_owned(),
    }
}

/// An even RTP port and the odd RTCP port above it (RFC 3550 §11), on every address of `ip`'s
/// family: when the machine's address changes mid-call (a dock, a VPN, a Wi-Fi roam) the same
/// sockets go on receiving at the new one, which a re-INVITE announces (see
/// [`CallMedia::moved_to`]). Who may send to them is the source filter's business.
async fn bind_pair(ip: IpAddr) -> Result<(UdpSocket, UdpSocket), String> {
    let ip = match ip {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    };
    let mut last_error = String::from("no free even port");
    for _ in 0..32 {
        let rtp = UdpSocket::bind((ip, 0))
            .await
            .map_err(|e| format!("no RTP port: {e}"))?;
        let port = rtp.local_addr().map_err(|e| e.to_string())?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        match UdpSocket::bind((ip, port + 1)).await {
            Ok(rtcp) => return Ok((rtp, rtcp)),
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(format!("no RTP/RTCP port pair: {last_error}"))
}

fn session_id() -> u64 {
    u64::from_str_radix(&crate::ids::random_hex(6), 16).unwrap_or(1)
}

/// Where the far end's RTP and RTCP are, from its SDP; `None` when the address is not an IP.
fn remote_addresses(remote: &SessionDescription, mux: bool) -> Option<(SocketAddr, SocketAddr)> {
    let address: std::net::IpAddr = remote.audio.address.trim_matches(['[', ']']).parse().ok()?;
    let rtp = SocketAddr::new(address, remote.audio.port);
    let rtcp = if mux {
        rtp
    } else {
        SocketAddr::new(address, remote.audio.port.saturating_add(1))
    };
    Some((rtp, rtcp))
}

#[cfg(test)]
mod tests {
    use sip_core::sdp::Codec;

    use super::*;

    const SESSION: &str =
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n";
    const KEY: &str =
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";

    fn pick(srtp: SrtpPolicy, streams: &str) -> Result<(usize, bool), String> {
        let settings = MediaSettings {
            audio: Default::default(),
            codecs: vec![Codec::pcmu()],
            srtp,
            session_interval: None,
            rtp_timeout: None,
            recordings: None,
            recording_max_seconds: 60,
            dtmf: Default::default(),
        };
        let offer = SessionDescription::parse(&format!("{SESSION}{streams}")).expect("parses");
        pick_stream(&settings, &offer)
            .map(|(index, key)| (index, key.is_some()))
            .map_err(|refusal| format!("{} {}", refusal.status, refusal.reason))
    }

    /// Issue 18 (SDES): which offered stream each `[media] srtp` policy takes.
    #[test]
    fn srtp_policy_picks_the_stream() {
        let plain = "m=audio 5004 RTP/AVP 0\r\n";
        let savp = format!("m=audio 5006 RTP/SAVP 0\r\n{KEY}");
        let avp_with_key = format!("m=audio 5008 RTP/AVP 0\r\n{KEY}");
        let both = format!("{plain}{savp}");
        // optional: the secure one of two, wherever it is; a plain one alone.
        assert_eq!(pick(SrtpPolicy::Optional, &both), Ok((1, true)));
        assert_eq!(pick(SrtpPolicy::Optional, plain), Ok((0, false)));
        // off: the plain one; SAVP alone is refused.
        assert_eq!(pick(SrtpPolicy::Off, &both), Ok((0, false)));
        assert!(pick(SrtpPolicy::Off, &savp).is_err_and(|e| e.starts_with("488")));
        // required: SAVP, or RTP/AVP carrying keys (answered with SRTP: the PBX habit);
        // plain alone is refused.
        assert_eq!(pick(SrtpPolicy::Required, &both), Ok((1, true)));
        assert_eq!(pick(SrtpPolicy::Required, &avp_with_key), Ok((0, true)));
        assert!(pick(SrtpPolicy::Required, plain).is_err_and(|e| e.contains("required")));
        // A stream with no codec of ours is passed over for one that has one.
        let opus_then_pcmu =
            "m=audio 5004 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\nm=audio 5006 RTP/AVP 0\r\n";
        assert_eq!(pick(SrtpPolicy::Off, opus_then_pcmu), Ok((1, false)));
        // An unknown suite on SAVP is no key at all.
        let unknown_suite = savp.replace("AES_CM_128_HMAC_SHA1_80", "F8_128_HMAC_SHA1_80");
        assert!(pick(SrtpPolicy::Optional, &unknown_suite).is_err_and(|e| e.contains("suites")));
    }
}
