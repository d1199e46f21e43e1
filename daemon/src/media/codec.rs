//! The audio codecs we negotiate, with their per-call state, and packet-loss concealment.

use super::plc::Plc;
use super::{g711, g722};

/// The negotiated audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
    /// Wideband: 16 kHz audio on an 8 kHz RTP clock (`G722/8000`, RFC 3551).
    G722,
    /// 48 kHz, sent mono (SDP still says `opus/48000/2`, RFC 7587).
    Opus,
}

impl AudioCodec {
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(Self::Pcmu),
            "PCMA" => Some(Self::Pcma),
            "G722" => Some(Self::G722),
            "OPUS" => Some(Self::Opus),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
            Self::G722 => "G722",
            Self::Opus => "opus",
        }
    }
    /// The RTP clock: what timestamps and jitter count in.
    pub fn clock_rate(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma | Self::G722 => 8000,
            Self::Opus => 48000,
        }
    }
    /// The audio's own sample rate: what the devices, the mixer and recordings run at.
    pub fn sample_rate(self) -> u32 {
        match self {
            Self::G722 => 16000,
            other => other.clock_rate(),
        }
    }
    /// Audio samples in one 20 ms frame.
    pub fn samples_per_frame(self) -> usize {
        self.sample_rate() as usize / 50
    }
    /// RTP timestamp ticks in one 20 ms frame.
    pub fn ticks_per_frame(self) -> u32 {
        self.clock_rate() / 50
    }
}

/// A codec with whatever state it keeps between frames.
pub enum CodecState {
    G711 {
        codec: AudioCodec,
        /// What was played, for concealing a lost frame.
        plc: Box<Plc>,
    },
    G722 {
        encoder: Box<g722::Encoder>,
        decoder: Box<g722::Decoder>,
        plc: Box<Plc>,
    },
    Opus {
        encoder: Box<opus2::Encoder>,
        decoder: Box<opus2::Decoder>,
    },
}

impl CodecState {
    pub fn new(codec: AudioCodec) -> Result<Self, String> {
        match codec {
            AudioCodec::Opus => {
                let mut encoder =
                    opus2::Encoder::new(48000, opus2::Channels::Mono, opus2::Application::Voip)
                        .map_err(|e| e.to_string())?;
                // Speech at a telephony-friendly rate; in-band FEC lets the far end rebuild a lost frame.
                let _ = encoder.set_bitrate(opus2::Bitrate::Bits(32_000));
                let _ = encoder.set_inband_fec(true);
                let _ = encoder.set_packet_loss_perc(5);
                let decoder =
                    opus2::Decoder::new(48000, opus2::Channels::Mono).map_err(|e| e.to_string())?;
                Ok(Self::Opus {
                    encoder: Box::new(encoder),
                    decoder: Box::new(decoder),
                })
            }
            AudioCodec::G722 => Ok(Self::G722 {
                encoder: Box::default(),
                decoder: Box::default(),
                plc: Box::new(Plc::new(16_000)),
            }),
            codec => Ok(Self::G711 {
                codec,
                plc: Box::new(Plc::new(8_000)),
            }),
        }
    }

    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        out.clear();
        match self {
            Self::G711 {
                codec: AudioCodec::Pcma,
                ..
            } => out.extend(pcm.iter().map(|s| g711::alaw_encode(*s))),
            Self::G711 { .. } => out.extend(pcm.iter().map(|s| g711::ulaw_encode(*s))),
            Self::G722 { encoder, .. } => encoder.encode(pcm, out),
            Self::Opus { encoder, .. } => {
                out.resize(1500, 0);
                match encoder.encode(pcm, out) {
                    Ok(n) => out.truncate(n),
                    Err(e) => {
                        tracing::debug!("opus encode: {e}");
                        out.clear();
                    }
                }
            }
        }
    }

    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        out.clear();
        match self {
            Self::G711 { codec, plc } => {
                match codec {
                    AudioCodec::Pcma => out.extend(payload.iter().map(|b| g711::alaw_decode(*b))),
                    _ => out.extend(payload.iter().map(|b| g711::ulaw_decode(*b))),
                }
                plc.good(out);
            }
            Self::G722 { decoder, plc, .. } => {
                decoder.decode(payload, out);
                plc.good(out);
            }
            Self::Opus { decoder, .. } => {
                // Up to 120 ms per packet at 48 kHz.
                out.resize(5760, 0);
                match decoder.decode(payload, out, false) {
                    Ok(n) => out.truncate(n),
                    Err(e) => {
                        tracing::debug!("opus decode: {e}");
                        out.clear();
                    }
                }
            }
        }
    }

    /// One frame (`samples` long) in place of a lost packet. `next` is the following packet when
    /// it is already here: Opus rebuilds the lost frame from its in-band FEC.
    pub fn conceal(&mut self, samples: usize, next: Option<&[u8]>, out: &mut Vec<i16>) {
        out.clear();
        match self {
            Self::G711 { plc, .. } | Self::G722 { plc, .. } => plc.conceal(samples, out),
            Self::Opus { decoder, .. } => {
                out.resize(samples, 0);
                let result = match next {
                    Some(next) => decoder.decode(next, out, true),
                    None => decoder.decode(&[], out, false),
                };
                match result {
                    Ok(n) => out.truncate(n),
                    Err(e) => {
                        tracing::debug!("opus concealment: {e}");
                        out.fill(0);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(samples: usize, rate: f32) -> Vec<i16> {
        (0..samples)
            .map(|i| ((i as f32 * 2.0 * std::f32::consts::PI * 440.0 / rate).sin() * 8000.0) as i16)
            .collect()
    }

    fn energy(samples: &[i16]) -> f64 {
        samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len().max(1) as f64
    }

    #[test]
    fn g722_counts_an_8_khz_clock_for_16_khz_audio() {
        let g722 = AudioCodec::from_name("g722").expect("known");
        assert_eq!((g722.clock_rate(), g722.sample_rate()), (8000, 16000));
        assert_eq!(
            (g722.ticks_per_frame(), g722.samples_per_frame()),
            (160, 320)
        );
        let opus = AudioCodec::Opus;
        assert_eq!(
            (opus.ticks_per_frame(), opus.samples_per_frame()),
            (960, 960)
        );
    }

    /// The pitch-synchronous concealment itself is tested in `plc.rs`; here, that G.711 uses it.
    #[test]
    fn g711_concealment_continues_then_fades_to_silence() {
        let mut state = CodecState::new(AudioCodec::Pcmu).expect("pcmu");
        let (mut encoded, mut decoded) = (Vec::new(), Vec::new());
        let signal = tone(160 * 4, 8000.0);
        for frame in signal.chunks(160) {
            state.encode(frame, &mut encoded);
            state.decode(&encoded, &mut decoded);
        }
        let good = energy(&decoded);
        let mut levels = Vec::new();
        for _ in 0..4 {
            state.conceal(160, None, &mut decoded);
            assert_eq!(decoded.len(), 160);
            levels.push(energy(&decoded));
        }
        assert!(
            levels[0] > good / 2.0,
            "the first concealed frame keeps the voice's level: {levels:?} vs {good}"
        );
        assert!(levels[1] < levels[0] && levels[2] < levels[1], "{levels:?}");
        assert_eq!(levels[3], 0.0, "then silence");
    }

    #[test]
    fn opus_conceals_and_recovers_from_fec() {
        let mut sender = CodecState::new(AudioCodec::Opus).expect("opus");
        let mut receiver = CodecState::new(AudioCodec::Opus).expect("opus");
        let signal = tone(960 * 10, 48000.0);
        let (mut encoded, mut decoded) = (Vec::new(), Vec::new());
        let packets: Vec<Vec<u8>> = signal
            .chunks(960)
            .map(|frame| {
                sender.encode(frame, &mut encoded);
                encoded.clone()
            })
            .collect();
        for packet in &packets[..5] {
            receiver.decode(packet, &mut decoded);
        }
        // Packet 5 is lost; 6 is here: FEC gives a frame with the tone's energy.
        receiver.conceal(960, Some(&packets[6]), &mut decoded);
        assert_eq!(decoded.len(), 960);
        assert!(
            energy(&decoded) > 1_000_000.0,
            "fec frame energy {}",
            energy(&decoded)
        );
        receiver.decode(&packets[6], &mut decoded);
        // Both 7 and 8 lost: plain PLC still produces a frame.
        receiver.conceal(960, None, &mut decoded);
        assert_eq!(decoded.len(), 960);
    }
}
