//! What a call's media is set up with: the audio devices, our codecs in preference order, the
//! SRTP policy, session timers and the no-media timeout. A leaf below the runtime and the media
//! paths (`call_media`, `webrtc_media`) that all read it.

use std::time::Duration;

use sip_core::sdp::Codec;

use crate::config::{AudioConfig, SrtpPolicy};
use crate::media::codec::AudioCodec;

/// A call's microphone and speaker ends.
pub type CallEnds = (
    Box<dyn crate::audio::AudioSource>,
    Box<dyn crate::audio::AudioSink>,
);

/// Media settings for calls.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub audio: AudioConfig,
    /// Our codecs in preference order (`[media] codecs`, those this build supports).
    pub codecs: Vec<Codec>,
    pub srtp: SrtpPolicy,
    /// Session-timer interval in seconds (RFC 4028); None: off.
    pub session_interval: Option<u32>,
    /// A call with no media from the far end for this long (not on hold) is hung up.
    pub rtp_timeout: Option<Duration>,
    /// `[media] dtmf`: how digits are sent.
    pub dtmf: crate::config::DtmfMode,
    /// Where call recordings go (`DATA_DIR/recordings`); None: recording is not available.
    pub recordings: Option<std::path::PathBuf>,
    /// The longest a recording runs before it stops by itself (`[recording] max_minutes`).
    pub recording_max_seconds: u64,
}

impl MediaSettings {
    /// The agent's devices for one call's media at the codec's rate. Without a working device
    /// the call gets silence and says so (`MediaReport::AudioUnavailable`), rather than failing.
    pub fn open_call_audio(
        &self,
        conversation: &crate::ids::ConversationId,
        codec: AudioCodec,
        reports: &crate::media::session::ReportSender,
    ) -> Result<CallEnds, String> {
        let crate::audio::CallAudio {
            source,
            sink,
            unavailable,
        } = crate::audio::open_for_call(
            &self.audio,
            codec.sample_rate(),
            Some(in_use_report(conversation.clone(), reports.clone())),
        )
        .map_err(|e| format!("audio: {e}"))?;
        if let Some(reason) = unavailable {
            let _ = reports.send((
                conversation.clone(),
                crate::media::session::MediaReport::AudioUnavailable(reason),
            ));
        }
        Ok((source, sink))
    }

    pub fn from_config(audio: &AudioConfig, media: &crate::config::MediaConfig) -> Self {
        let names = &media.codecs;
        let codecs: Vec<Codec> = names
            .iter()
            .filter_map(|name| match Codec::by_name(name) {
                Some(codec) if AudioCodec::from_name(&codec.name).is_some() => Some(codec),
                Some(_) => {
                    tracing::warn!(
                        "codec {name:?} is not supported by this build yet; skipping it"
                    );
                    None
                }
                None => {
                    tracing::warn!("unknown codec {name:?} in [media] codecs; skipping it");
                    None
                }
            })
            .collect();
        let codecs = if codecs.is_empty() {
            vec![Codec::pcmu(), Codec::pcma()]
        } else {
            codecs
        };
        Self {
            audio: audio.clone(),
            codecs,
            srtp: media.srtp,
            session_interval: (media.session_timer > 0)
                .then_some(media.session_timer.max(sip_core::call::MIN_SE)),
            rtp_timeout: (media.rtp_timeout > 0)
                .then(|| Duration::from_secs(u64::from(media.rtp_timeout))),
            dtmf: media.dtmf,
            // The daemon sets these from its data folder and `[recording]`.
            recordings: None,
            recording_max_seconds: 4 * 3600,
        }
    }
}

/// Reports a call's devices to the line as they open and switch.
fn in_use_report(
    conversation: crate::ids::ConversationId,
    reports: crate::media::session::ReportSender,
) -> crate::audio::InUseReport {
    Box::new(move |devices, switched| {
        let _ = reports.send((
            conversation.clone(),
            crate::media::session::MediaReport::AudioDevices { devices, switched },
        ));
    })
}
