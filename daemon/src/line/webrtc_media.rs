//! One call's media on a WebRTC line (the seed platform's agents): a peer connection (ICE with
//! host, server-reflexive and TURN relay candidates, DTLS-SRTP, rtcp-mux, BUNDLE) carries the RTP
//! that our own media task encodes and decodes, so a call is a call whatever its line. SIP does
//! not trickle: the offer or answer goes out once candidate gathering is complete.

use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::shared::marshal::{Marshal, Unmarshal};
use sip_core::sdp::{Codec, Direction, SessionDescription};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCIceServer, RTCIceTransportPolicy,
    RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};

use super::MediaSettings;
use super::TurnServer;
use crate::ids::ConversationId;
use crate::media::codec::AudioCodec;
use crate::media::session::{MediaParams, MediaSession, ReportSender, Wire};

/// How long candidate gathering (a TURN allocation included) may take before we send what we have.
const GATHERING: Duration = Duration::from_secs(5);
/// RTP packets queued towards or from the peer connection: a second of audio each way.
const QUEUE: usize = 50;

/// What WebRTC media needs from the line.
#[derive(Debug, Clone)]
pub struct WebRtcSettings {
    pub turn: Option<TurnServer>,
    pub force_relay: bool,
    /// Offer loopback candidates (a server on 127.0.0.1: the lab, or a PBX on this machine).
    pub loopback: bool,
}

pub struct WebRtcMedia {
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    local_sdp: String,
    inbound: Option<mpsc::Receiver<Vec<u8>>>,
    events: Arc<Events>,
    gathered: watch::Receiver<bool>,
    /// Our ICE-restart offer is out: their answer goes to the peer connection.
    restarting: bool,
}

/// An ICE restart of one call's peer connection, run off the phone loop (gathering takes
/// time): new credentials and candidates from the machine's addresses as they are now.
pub struct IceRestart {
    pc: Arc<dyn PeerConnection>,
    events: Arc<Events>,
    gathered: watch::Receiver<bool>,
}

impl IceRestart {
    /// Our new offer, candidates gathered (or the wait over).
    pub async fn run(mut self) -> Result<String, String> {
        let _ = self.events.gathered.send(false);
        self.pc
            .restart_ice()
            .await
            .map_err(|e| format!("ICE restart: {e}"))?;
        offer_gathered(&self.pc, &mut self.gathered).await
    }
}

struct Events {
    gathered: watch::Sender<bool>,
    inbound: mpsc::Sender<Vec<u8>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::info!(%state, "WebRTC connection");
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let inbound = self.inbound.clone();
        tracing::info!("WebRTC remote track");
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(packet) => {
                        if let Ok(bytes) = packet.marshal() {
                            // Full: the media task is behind; it conceals the gap.
                            let _ = inbound.try_send(bytes.to_vec());
                        }
                    }
                    TrackRemoteEvent::OnEnded => break,
                    TrackRemoteEvent::OnOpen(_) => tracing::debug!("WebRTC remote track open"),
                    _ => {}
                }
            }
        });
    }
}

/// A new offer set as `pc`'s local description, returned once candidates are gathered (a new
/// call's, or an ICE restart's).
async fn offer_gathered(
    pc: &Arc<dyn PeerConnection>,
    gathered: &mut watch::Receiver<bool>,
) -> Result<String, String> {
    let offer = pc
        .create_offer(None)
        .await
        .map_err(|e| format!("WebRTC offer: {e}"))?;
    pc.set_local_description(offer)
        .await
        .map_err(|e| format!("WebRTC offer: {e}"))?;
    gathered_sdp(pc, gathered).await
}

/// `pc`'s description once candidates are gathered (or the wait is over).
async fn gathered_sdp(
    pc: &Arc<dyn PeerConnection>,
    gathered: &mut watch::Receiver<bool>,
) -> Result<String, String> {
    tracing::debug!("WebRTC gathering candidates");
    if tokio::time::timeout(GATHERING, gathered.wait_for(|done| *done))
        .await
        .is_err()
    {
        tracing::warn!(
            "ICE gathering took over {} s; offering the candidates we have",
            GATHERING.as_secs()
        );
    }
    let description = pc
        .local_description()
        .await
        .ok_or("WebRTC: no local description")?;
    Ok(description.sdp)
}

impl WebRtcMedia {
    /// A peer connection with our offer (outgoing call).
    pub async fn for_offer(
        settings: &MediaSettings,
        webrtc: &WebRtcSettings,
    ) -> Result<Self, String> {
        let mut media = Self::build(settings, webrtc).await?;
        tracing::debug!("WebRTC peer connection built");
        media.local_sdp = offer_gathered(&media.pc, &mut media.gathered).await?;
        Ok(media)
    }

    /// A peer connection answering their offer (incoming call).
    pub async fn for_answer(
        settings: &MediaSettings,
        webrtc: &WebRtcSettings,
        offer: &str,
    ) -> Result<Self, String> {
        let mut media = Self::build(settings, webrtc).await?;
        let offer = RTCSessionDescription::offer(offer.to_owned())
            .map_err(|e| format!("their offer: {e}"))?;
        media
            .pc
            .set_remote_description(offer)
            .await
            .map_err(|e| format!("their offer: {e}"))?;
        let answer = media
            .pc
            .create_answer(None)
            .await
            .map_err(|e| format!("WebRTC answer: {e}"))?;
        media
            .pc
            .set_local_description(answer)
            .await
            .map_err(|e| format!("WebRTC answer: {e}"))?;
        media.local_sdp = media.gathered_sdp().await?;
        Ok(media)
    }

    async fn build(settings: &MediaSettings, webrtc: &WebRtcSettings) -> Result<Self, String> {
        // mDNS needs a multicast-capable interface: on loopback (the lab, or a PBX on this
        // machine) there is none and the peer connection would not build.
        if webrtc.loopback {
            return Self::build_with(settings, webrtc, MulticastDnsMode::Disabled).await;
        }
        // Nor where multicast has no route (a VPN that takes every route, a machine with no
        // default route): resolving the far end's `.local` candidates is a nicety, a call is
        // not, so build without it rather than fail the call.
        match Self::build_with(settings, webrtc, MulticastDnsMode::QueryOnly).await {
            Err(e) => {
                tracing::info!("WebRTC with mDNS: {e}; without it");
                Self::build_with(settings, webrtc, MulticastDnsMode::Disabled).await
            }
            built => built,
        }
    }

    async fn build_with(
        settings: &MediaSettings,
        webrtc: &WebRtcSettings,
        mdns: MulticastDnsMode,
    ) -> Result<Self, String> {
        let mut engine = MediaEngine::default();
        let mut preferences = Vec::new();
        let mut register = |engine: &mut MediaEngine, codec: &Codec, mime: &str| {
            let parameters = RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: mime.to_owned(),
                    clock_rate: codec.clock_rate,
                    channels: if codec.name.eq_ignore_ascii_case("opus") {
                        2
                    } else {
                        0
                    },
                    sdp_fmtp_line: codec.fmtp.clone().unwrap_or_default(),
                    rtcp_feedback: vec![],
                },
                payload_type: codec.payload_type,
            };
            preferences.push(parameters.clone());
            engine
                .register_codec(parameters, RtpCodecKind::Audio)
                .map_err(|e| format!("codec {}: {e}", codec.name))
        };
        // Our preference order, then RFC 4733 events. Only the 8 kHz ones: this engine offers the
        // first telephone-event it knows for every one registered.
        for codec in &settings.codecs {
            register(&mut engine, codec, &format!("audio/{}", codec.name))?;
        }
        register(
            &mut engine,
            &Codec::telephone_event(),
            "audio/telephone-event",
        )?;

        let mut configuration = RTCConfigurationBuilder::new();
        if let Some(turn) = &webrtc.turn {
            configuration = configuration.with_ice_servers(vec![RTCIceServer {
                urls: vec![turn.url.clone()],
                username: turn.username.clone(),
                credential: turn.credential.expose().to_owned(),
            }]);
        }
        if webrtc.force_relay {
            configuration = configuration.with_ice_transport_policy(RTCIceTransportPolicy::Relay);
        }
        // An ICE restart (the machine's address changed) binds new sockets and gathers anew,
        // rather than offering candidates for addresses that are gone.
        let mut setting_engine = SettingEngineBuilder::new()
            .with_include_loopback_candidate(webrtc.loopback)
            .with_multicast_dns_mode(mdns)
            .with_discard_local_candidates_during_ice_restart(true);
        if webrtc.force_relay {
            // ICE waits 2 s for a better pair before it accepts a relayed one; relay-only has none.
            setting_engine = setting_engine.with_relay_acceptance_min_wait(Some(Duration::ZERO));
        }
        let setting_engine = setting_engine.build();
        let (gathered, _) = watch::channel(false);
        let (inbound_tx, inbound) = mpsc::channel(QUEUE);
        let events = Arc::new(Events {
            gathered,
            inbound: inbound_tx,
        });
        let bind = if webrtc.loopback {
            "127.0.0.1:0"
        } else {
            "0.0.0.0:0"
        };
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration.build())
            .with_media_engine(engine)
            .with_setting_engine(setting_engine)
            .with_handler(events.clone())
            .with_udp_addrs(vec![bind])
            .build()
            .await
            .map_err(|e| format!("WebRTC: {e}"))?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let first = settings.codecs.first().cloned().unwrap_or_else(Codec::pcmu);
        let ssrc = u32::from_str_radix(&crate::ids::random_hex(4), 16).unwrap_or(0x5350_4252);
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "softphone-bridge".into(),
            "audio".into(),
            "audio".into(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: RTCRtpCodec {
                    mime_type: format!("audio/{}", first.name),
                    clock_rate: first.clock_rate,
                    channels: if first.name.eq_ignore_ascii_case("opus") {
                        2
                    } else {
                        0
                    },
                    sdp_fmtp_line: first.fmtp.clone().unwrap_or_default(),
                    rtcp_feedback: vec![],
                },
                ..Default::default()
            }],
        )));
        pc.add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| format!("WebRTC track: {e}"))?;
        // A track offers only its own codec unless told otherwise: offer all of ours, and DTMF.
        for transceiver in pc.get_transceivers().await {
            transceiver
                .set_codec_preferences(preferences.clone())
                .await
                .map_err(|e| format!("WebRTC codecs: {e}"))?;
        }
        let gathered = events.gathered.subscribe();
        Ok(Self {
            pc,
            track,
            ssrc,
            local_sdp: String::new(),
            inbound: Some(inbound),
            events,
            gathered,
            restarting: false,
        })
    }

    /// Our description once candidates are gathered (or the wait is over).
    async fn gathered_sdp(&mut self) -> Result<String, String> {
        gathered_sdp(&self.pc, &mut self.gathered).await
    }

    /// What an ICE restart needs, to run it off the loop (see [`IceRestart::run`]).
    pub fn ice_restart(&self) -> IceRestart {
        IceRestart {
            pc: self.pc.clone(),
            events: self.events.clone(),
            gathered: self.gathered.clone(),
        }
    }

    /// The restart's offer went out: it is our description now, and the far end's answer is
    /// for the peer connection ([`Self::restart_answered`]).
    pub fn restarted(&mut self, offer: String) {
        self.local_sdp = offer;
        self.restarting = true;
    }

    /// Their answer to an ICE restart, to apply to the peer connection (None when no restart
    /// was waiting for one).
    pub fn restart_answered(
        &mut self,
        remote_sdp: &str,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        if !std::mem::take(&mut self.restarting) {
            return None;
        }
        let (pc, sdp) = (self.pc.clone(), remote_sdp.to_owned());
        Some(async move {
            let applied = match RTCSessionDescription::answer(sdp) {
                Ok(answer) => pc
                    .set_remote_description(answer)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match applied {
                Ok(()) => tracing::info!("ICE restarted with the far end's answer"),
                Err(e) => tracing::warn!("their answer to our ICE restart: {e}"),
            }
        })
    }

    /// The far end refused the restart: the connection stays on its old candidates.
    pub fn restart_refused(&mut self) {
        self.restarting = false;
    }

    pub fn sdp(&self) -> &str {
        &self.local_sdp
    }

    /// Starts media: `remote_sdp` is their answer (set on the peer connection now) or the offer
    /// we answered (set already).
    pub async fn start(
        &mut self,
        conversation: &ConversationId,
        remote_sdp: &str,
        we_offered: bool,
        settings: &MediaSettings,
        reports: ReportSender,
    ) -> Result<MediaSession, String> {
        if we_offered {
            let answer = RTCSessionDescription::answer(remote_sdp.to_owned())
                .map_err(|e| format!("their answer: {e}"))?;
            self.pc
                .set_remote_description(answer)
                .await
                .map_err(|e| format!("their answer: {e}"))?;
        }
        // The answer decides: its first codec we support, and its telephone-event.
        let answer = if we_offered {
            remote_sdp
        } else {
            self.local_sdp.as_str()
        };
        let answer =
            SessionDescription::parse(answer).map_err(|e| format!("unusable SDP answer ({e})"))?;
        let (codec, chosen) = answer
            .audio
            .codecs
            .iter()
            .find_map(|c| AudioCodec::from_name(&c.name).map(|a| (a, c.clone())))
            .ok_or("no common audio codec")?;
        // Only what the answer agreed to may be sent on this peer connection.
        let telephone_event = answer.audio.telephone_event;
        let inbound = self.inbound.take().ok_or("media already started")?;
        let (out, mut outgoing) = mpsc::channel::<Vec<u8>>(QUEUE);
        let (track, ssrc) = (self.track.clone(), self.ssrc);
        // Our media task writes plain RTP; the peer connection protects and sends it.
        tokio::spawn(async move {
            while let Some(bytes) = outgoing.recv().await {
                let Ok(mut packet) = rtp::Packet::unmarshal(&mut &bytes[..]) else {
                    continue;
                };
                packet.header.ssrc = ssrc;
                if let Err(e) = track.write_rtp(packet).await {
                    tracing::trace!("WebRTC RTP not sent: {e}");
                }
            }
        });
        let (source, sink) = settings.open_call_audio(conversation, codec, &reports)?;
        tracing::info!(%conversation, codec = %chosen.name, "WebRTC media started");
        let params = MediaParams {
            wire: Wire::Packets { out, inbound },
            codec,
            payload_type: chosen.payload_type,
            telephone_event,
            cname: format!(
                "{}@softphone-bridge",
                &conversation.as_str()[..conversation.as_str().len().min(8)]
            ),
            conversation: conversation.to_owned(),
        };
        Ok(MediaSession::start(params, source, sink, reports))
    }

    /// Our current description with another direction (hold, resume, or answering theirs).
    pub fn redirected(&mut self, direction: Direction) -> String {
        if let Some(edited) = sip_core::sdp::with_direction(&self.local_sdp, direction) {
            self.local_sdp = edited;
        }
        self.local_sdp.clone()
    }

    pub async fn stop(self) {
        if let Err(e) = self.pc.close().await {
            tracing::debug!("WebRTC close: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our offer with these settings, gathered on loopback.
    async fn offer(turn: Option<TurnServer>, force_relay: bool) -> String {
        let settings = MediaSettings::from_config(&Default::default(), &Default::default());
        let webrtc = WebRtcSettings {
            turn,
            force_relay,
            loopback: true,
        };
        let media = tokio::time::timeout(
            Duration::from_secs(10),
            WebRtcMedia::for_offer(&settings, &webrtc),
        )
        .await
        .expect("in time")
        .expect("an offer");
        media.sdp().to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_offer_on_loopback_has_every_codec_dtmf_and_host_candidates() {
        let sdp = offer(None, false).await;
        // Our preference order (opus, G722, PCMU, PCMA), then telephone-event.
        assert!(
            sdp.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111 9 0 8 101"),
            "{sdp}"
        );
        assert!(sdp.contains("a=rtpmap:101 telephone-event/8000"), "{sdp}");
        for line in [
            "a=group:BUNDLE",
            "a=rtcp-mux",
            "a=setup:actpass",
            "a=fingerprint:sha-256",
            "a=sendrecv",
        ] {
            assert!(sdp.contains(line), "{line} missing: {sdp}");
        }
        assert!(
            sdp.contains("127.0.0.1") && sdp.contains("typ host"),
            "{sdp}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relay_only_offers_no_host_candidate_even_when_the_turn_server_is_down() {
        let turn = TurnServer {
            url: "turn:127.0.0.1:9?transport=udp".into(),
            username: "u".into(),
            credential: crate::config::Secret::new("p"),
        };
        let sdp = offer(Some(turn), true).await;
        assert!(sdp.starts_with("v=0") && !sdp.contains("typ host"), "{sdp}");
    }
}
