//! One call's media as a task: every 20 ms a frame from the audio source goes out as RTP (G.711 or
//! Opus);
//! received RTP is decoded into the audio sink in sequence order. Symmetric RTP (RFC 4961):
//! once the far end sends, we send back to where its packets come from.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::g711;
use super::rtp::{RtpPacket, dtmf_code, telephone_event};
use crate::audio::{AudioSink, AudioSource};

const FRAME: Duration = Duration::from_millis(20);
/// Longest gap filled with silence when packets go missing (1 s at 20 ms frames).
const MAX_FILL_FRAMES: u16 = 50;

/// The negotiated audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
    /// 48 kHz, sent mono (SDP still says `opus/48000/2`, RFC 7587).
    Opus,
}

impl AudioCodec {
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(Self::Pcmu),
            "PCMA" => Some(Self::Pcma),
            "OPUS" => Some(Self::Opus),
            _ => None,
        }
    }
    pub fn clock_rate(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma => 8000,
            Self::Opus => 48000,
        }
    }
    /// Samples in one 20 ms frame.
    fn samples_per_frame(self) -> usize {
        self.clock_rate() as usize / 50
    }
}

/// A codec with whatever state it keeps between frames.
enum CodecState {
    G711(AudioCodec),
    Opus { encoder: Box<opus2::Encoder>, decoder: Box<opus2::Decoder> },
}

impl CodecState {
    fn new(codec: AudioCodec) -> Result<Self, String> {
        match codec {
            AudioCodec::Opus => {
                let mut encoder = opus2::Encoder::new(48000, opus2::Channels::Mono, opus2::Application::Voip).map_err(|e| e.to_string())?;
                // Speech at a telephony-friendly rate; in-band FEC helps over lossy links.
                let _ = encoder.set_bitrate(opus2::Bitrate::Bits(32_000));
                let _ = encoder.set_inband_fec(true);
                let decoder = opus2::Decoder::new(48000, opus2::Channels::Mono).map_err(|e| e.to_string())?;
                Ok(Self::Opus { encoder: Box::new(encoder), decoder: Box::new(decoder) })
            }
            g711 => Ok(Self::G711(g711)),
        }
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        out.clear();
        match self {
            Self::G711(AudioCodec::Pcma) => out.extend(pcm.iter().map(|s| g711::alaw_encode(*s))),
            Self::G711(_) => out.extend(pcm.iter().map(|s| g711::ulaw_encode(*s))),
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

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        out.clear();
        match self {
            Self::G711(AudioCodec::Pcma) => out.extend(payload.iter().map(|b| g711::alaw_decode(*b))),
            Self::G711(_) => out.extend(payload.iter().map(|b| g711::ulaw_decode(*b))),
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
}

pub struct MediaParams {
    pub socket: UdpSocket,
    pub remote: SocketAddr,
    pub codec: AudioCodec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
}

/// A running media task; stop it to close the recording.
pub struct MediaSession {
    stop: Option<oneshot::Sender<()>>,
    muted: watch::Sender<bool>,
    dtmf: mpsc::UnboundedSender<char>,
    task: JoinHandle<()>,
}

impl MediaSession {
    pub fn start(params: MediaParams, source: Box<dyn AudioSource>, sink: Box<dyn AudioSink>) -> Self {
        let (stop, stopped) = oneshot::channel();
        let (muted, muted_rx) = watch::channel(false);
        let (dtmf, dtmf_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(params, source, sink, stopped, muted_rx, dtmf_rx));
        Self { stop: Some(stop), muted, dtmf, task }
    }

    pub fn set_muted(&self, muted: bool) {
        let _ = self.muted.send(muted);
    }

    pub fn send_dtmf(&self, digits: &str) {
        for digit in digits.chars() {
            let _ = self.dtmf.send(digit);
        }
    }

    /// Stops sending and finishes the recording.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

async fn run(
    params: MediaParams,
    mut source: Box<dyn AudioSource>,
    mut sink: Box<dyn AudioSink>,
    mut stopped: oneshot::Receiver<()>,
    muted: watch::Receiver<bool>,
    mut dtmf: mpsc::UnboundedReceiver<char>,
) {
    let MediaParams { socket, mut remote, codec, payload_type, telephone_event: event_pt } = params;
    let mut state = match CodecState::new(codec) {
        Ok(state) => state,
        Err(e) => {
            tracing::warn!("cannot start the {codec:?} codec: {e}; the call has no audio");
            sink.finish();
            return;
        }
    };
    let ssrc = u32::from_str_radix(&crate::run::random_hex(4), 16).unwrap_or(0x5350_4252);
    let mut sequence: u16 = u16::from_str_radix(&crate::run::random_hex(2), 16).unwrap_or(1);
    let mut timestamp: u32 = 0;
    let mut first = true;
    let mut latched = false;
    let mut pcm = vec![0i16; codec.samples_per_frame()];
    let (mut encoded, mut decoded, mut packet_bytes) = (Vec::new(), Vec::new(), Vec::with_capacity(200));
    let mut expected_seq: Option<u16> = None;
    let mut buffer = vec![0u8; 2048];
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A digit in progress: (event code, frames sent so far).
    let mut digit: Option<(u8, u16)> = None;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {
                if digit.is_none() && let Ok(next) = dtmf.try_recv() {
                    match event_pt {
                        Some(_) => digit = dtmf_code(next).map(|code| (code, 0)),
                        None => tracing::warn!("DTMF {next:?} not sent: the far end did not offer telephone-event"),
                    }
                }
                if let (Some(pt), Some((code, frames))) = (event_pt, digit.as_mut()) {
                    // 100 ms tone; the end packet is sent three times (RFC 4733 §2.5.1.4).
                    *frames += 1;
                    let duration = *frames * codec.samples_per_frame() as u16;
                    let end = *frames >= 5;
                    let payload = telephone_event(*code, end, 10, duration);
                    for _ in 0..if end { 3 } else { 1 } {
                        let packet = RtpPacket { marker: *frames == 1, payload_type: pt, sequence, timestamp, ssrc, payload: &payload };
                        packet.write(&mut packet_bytes);
                        sequence = sequence.wrapping_add(1);
                        let _ = socket.send_to(&packet_bytes, remote).await;
                    }
                    if end {
                        timestamp = timestamp.wrapping_add(duration.into());
                        digit = None;
                    }
                    continue;
                }
                source.read(&mut pcm);
                if *muted.borrow() {
                    pcm.fill(0);
                }
                state.encode(&pcm, &mut encoded);
                let packet = RtpPacket { marker: first, payload_type, sequence, timestamp, ssrc, payload: &encoded };
                packet.write(&mut packet_bytes);
                first = false;
                sequence = sequence.wrapping_add(1);
                timestamp = timestamp.wrapping_add(codec.samples_per_frame() as u32);
                if let Err(e) = socket.send_to(&packet_bytes, remote).await {
                    tracing::debug!("RTP send to {remote}: {e}");
                }
            }
            received = socket.recv_from(&mut buffer) => {
                let Ok((n, from)) = received else { continue };
                let Ok(packet) = RtpPacket::parse(&buffer[..n]) else { continue };
                if packet.payload_type != payload_type {
                    continue;
                }
                if !latched && from != remote {
                    tracing::debug!(%from, "symmetric RTP: sending to where the far end sends from");
                    remote = from;
                }
                latched = true;
                if let Some(expected) = expected_seq {
                    let ahead = packet.sequence.wrapping_sub(expected);
                    if ahead > u16::MAX / 2 {
                        continue; // late or duplicate
                    }
                    // Lost packets become silence, so the recording keeps its timing.
                    for _ in 0..ahead.min(MAX_FILL_FRAMES) {
                        sink.write(&vec![0; codec.samples_per_frame()]);
                    }
                }
                expected_seq = Some(packet.sequence.wrapping_add(1));
                state.decode(packet.payload, &mut decoded);
                sink.write(&decoded);
            }
        }
    }
    sink.finish();
}
