//! One call's media as a task. Every 20 ms: a frame from the audio source goes out as RTP, and one
//! frame from the jitter buffer (or its concealment) goes to the audio sink. RTCP reports go out
//! every few seconds and the far end's come back as call statistics; received DTMF is reported.
//! Symmetric RTP (RFC 4961): once the far end sends, we send back to where its packets come from.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::codec::{AudioCodec, CodecState};
use super::jitter::{JitterBuffer, Playout};
use super::rtcp::{self, Reception, SenderInfo};
use super::rtp::{DtmfReceiver, RtpPacket, dtmf_code, telephone_event};
use super::source::SourceFilter;
use super::srtp::SrtpSession;
use crate::audio::check::{dbfs, energy_of};
use crate::audio::{AudioSink, AudioSource, CallAudio};
use crate::ids::ConversationId;

const FRAME: Duration = Duration::from_millis(20);
const FIRST_REPORT: Duration = Duration::from_secs(1);
/// Packets read before a playout tick at most (a 20 ms frame is one packet; a burst after a
/// hiccup a few).
const WAITING_PACKETS: usize = 16;
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// Quiet frames in a row that make a pause between words, where a frame can be cut unheard —
/// shorter quiet runs are inside words (a stop consonant's closure), where a cut is heard.
const PAUSE_FRAMES: u32 = 3;

pub struct MediaParams {
    pub wire: Wire,
    pub codec: AudioCodec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    pub cname: String,
    /// Names the call in reports.
    pub conversation: ConversationId,
}

/// How RTP leaves and arrives. One per call, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Wire {
    /// Our own sockets: RTP, RTCP reports and SDES-SRTP are ours to do.
    Udp {
        socket: UdpSocket,
        /// A separate RTCP socket (RTP port + 1), or None when RTCP is muxed on the RTP port.
        rtcp_socket: Option<UdpSocket>,
        remote: SocketAddr,
        remote_rtcp: SocketAddr,
        srtp: Option<SrtpSession>,
    },
    /// Plain RTP packets handed to and taken from a WebRTC peer connection, which does ICE,
    /// DTLS-SRTP and RTCP itself.
    Packets {
        out: mpsc::Sender<Vec<u8>>,
        inbound: mpsc::Receiver<Vec<u8>>,
    },
}

/// Where a media task sends its reports: (conversation, report).
pub type ReportSender = mpsc::UnboundedSender<(ConversationId, MediaReport)>;
pub type ReportReceiver = mpsc::UnboundedReceiver<(ConversationId, MediaReport)>;

/// Which ways audio flows: both, one (hold), or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub send: bool,
    pub receive: bool,
}

impl Flow {
    pub const BOTH: Self = Self {
        send: true,
        receive: true,
    };
}

/// Call quality as RTCP sees it, both ways.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaStats {
    pub codec: &'static str,
    pub srtp: bool,
    pub packets_sent: u32,
    pub packets_received: u32,
    pub packets_lost: i64,
    pub jitter_ms: f64,
    pub concealed_frames: u64,
    pub late_packets: u64,
    pub jitter_buffer_ms: u32,
    /// From the far end's reports about what we send.
    pub remote_packets_lost: Option<i32>,
    pub remote_jitter_ms: Option<f64>,
    pub round_trip_ms: Option<f64>,
    /// RTP and RTCP packets dropped because they came from an address the call did not
    /// negotiate (a stray or hostile sender).
    pub foreign_packets_dropped: u64,
    /// Milliseconds since the far end's last media packet (or since media started), for
    /// dead-call detection; not on the wire.
    pub silent_ms: u64,
}

/// What the media task tells the line.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaReport {
    Dtmf(char),
    Stats(MediaStats),
    /// A recording's file was closed.
    Recorded(super::recording::Finished),
    /// The call started without a working audio device (why); it carries silence.
    AudioUnavailable(String),
    /// The devices the call's audio runs on: when they open, and (`switched`) when they change.
    AudioDevices {
        devices: crate::protocol::DevicesInUse,
        switched: bool,
    },
}

/// A running media task; stop it to close the recording.
pub struct MediaSession {
    stop: Option<oneshot::Sender<()>>,
    muted: watch::Sender<bool>,
    /// A re-INVITE moved the far end's RTP and RTCP addresses.
    remote: watch::Sender<Option<(SocketAddr, SocketAddr)>>,
    flow: watch::Sender<Flow>,
    dtmf: mpsc::UnboundedSender<char>,
    /// New audio ends for the task (joining or leaving a conference), and where the old go.
    audio: mpsc::UnboundedSender<(CallAudio, oneshot::Sender<CallAudio>)>,
    /// The codec's sample rate: what the audio ends run at.
    rate: u32,
    /// Where each frame also goes while the call is recorded.
    recording: watch::Sender<Option<super::recording::Tap>>,
    task: JoinHandle<()>,
}

struct Controls {
    stopped: oneshot::Receiver<()>,
    muted: watch::Receiver<bool>,
    remote: watch::Receiver<Option<(SocketAddr, SocketAddr)>>,
    flow: watch::Receiver<Flow>,
    dtmf: mpsc::UnboundedReceiver<char>,
    audio: mpsc::UnboundedReceiver<(CallAudio, oneshot::Sender<CallAudio>)>,
    recording: watch::Receiver<Option<super::recording::Tap>>,
    reports: ReportSender,
}

impl MediaSession {
    pub fn start(
        params: MediaParams,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
        reports: ReportSender,
    ) -> Self {
        let (stop, stopped) = oneshot::channel();
        let (muted, muted_rx) = watch::channel(false);
        let (remote, remote_rx) = watch::channel(None);
        let (flow, flow_rx) = watch::channel(Flow::BOTH);
        let (dtmf, dtmf_rx) = mpsc::unbounded_channel();
        let (audio, audio_rx) = mpsc::unbounded_channel();
        let (recording, recording_rx) = watch::channel(None);
        let controls = Controls {
            recording: recording_rx,
            stopped,
            muted: muted_rx,
            remote: remote_rx,
            flow: flow_rx,
            dtmf: dtmf_rx,
            audio: audio_rx,
            reports,
        };
        let rate = params.codec.sample_rate();
        let task = tokio::spawn(run(params, source, sink, controls));
        Self {
            stop: Some(stop),
            muted,
            remote,
            flow,
            dtmf,
            audio,
            rate,
            recording,
            task,
        }
    }

    /// Starts (`Some`) or stops (`None`) handing each frame to a recording.
    pub fn record(&self, tap: Option<super::recording::Tap>) {
        let _ = self.recording.send(tap);
    }

    /// The sample rate its audio ends run at.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Gives the task new audio ends from the next frame on; the old ones come back (unless
    /// the task has ended).
    pub async fn swap_audio(&self, audio: CallAudio) -> Option<CallAudio> {
        let (back, old) = oneshot::channel();
        self.audio.send((audio, back)).ok()?;
        old.await.ok()
    }

    pub fn set_muted(&self, muted: bool) {
        let _ = self.muted.send(muted);
    }

    /// The far end's media moved (a re-INVITE): take packets from, and send to, there now.
    pub fn set_remote(&self, rtp: SocketAddr, rtcp: SocketAddr) {
        self.remote.send_if_modified(|now| {
            let changed = *now != Some((rtp, rtcp));
            *now = Some((rtp, rtcp));
            changed
        });
    }

    pub fn set_flow(&self, flow: Flow) {
        let _ = self.flow.send(flow);
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

/// The sending half's counters and identity.
struct Sender {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    packets: u32,
    octets: u32,
    first: bool,
}

async fn run(
    params: MediaParams,
    mut source: Box<dyn AudioSource>,
    mut sink: Box<dyn AudioSink>,
    mut controls: Controls,
) {
    let MediaParams {
        wire,
        codec,
        payload_type,
        telephone_event: event_pt,
        cname,
        conversation,
    } = params;
    let (
        socket,
        rtcp_socket,
        mut rtp_source,
        mut rtcp_source,
        mut srtp,
        packets_out,
        mut packets_in,
    ) = match wire {
        Wire::Udp {
            socket,
            rtcp_socket,
            remote,
            remote_rtcp,
            srtp,
        } => (
            Some(socket),
            rtcp_socket,
            Some(SourceFilter::new(remote)),
            Some(SourceFilter::new(remote_rtcp)),
            srtp,
            None,
            None,
        ),
        Wire::Packets { out, inbound } => (None, None, None, None, None, Some(out), Some(inbound)),
    };
    let out = Out {
        socket: socket.as_ref(),
        packets: packets_out.as_ref(),
    };
    // A closed channel only means the line is gone; the call ends with it.
    let report = |r: MediaReport| drop(controls.reports.send((conversation.clone(), r)));
    let mut state = match CodecState::new(codec) {
        Ok(state) => state,
        Err(e) => {
            tracing::warn!("cannot start the {codec:?} codec: {e}; the call has no audio");
            sink.finish();
            return;
        }
    };
    let frame_samples = codec.samples_per_frame();
    // RTP timestamps count the codec's clock, which is not its sample rate for G.722.
    let ticks = codec.ticks_per_frame();
    let silence = vec![0i16; frame_samples];
    let mut sender = Sender {
        ssrc: u32::from_str_radix(&crate::ids::random_hex(4), 16).unwrap_or(0x5350_4252),
        sequence: u16::from_str_radix(&crate::ids::random_hex(2), 16).unwrap_or(1),
        timestamp: 0,
        packets: 0,
        octets: 0,
        first: true,
    };
    let mut receiving = Receiving {
        started: Instant::now(),
        last_heard: Instant::now(),
        rate_per_ms: f64::from(codec.clock_rate()) / 1000.0,
        payload_type,
        event_pt,
        dtmf: DtmfReceiver::default(),
    };
    let mut jitter = match codec {
        AudioCodec::Opus => JitterBuffer::new(20).with_fec(),
        _ => JitterBuffer::new(20),
    };
    let mut reception = Reception::default();
    let mut stats = MediaStats {
        codec: codec.name(),
        srtp: srtp.is_some() || packets_out.is_some(),
        ..MediaStats::default()
    };
    let mut pcm = vec![0i16; frame_samples];
    let (mut encoded, mut decoded, mut packet_bytes) =
        (Vec::new(), Vec::new(), Vec::with_capacity(256));
    let (mut buffer, mut rtcp_buffer) = (vec![0u8; 2048], vec![0u8; 2048]);
    let mut tick = tokio::time::interval(FRAME);
    // Burst: a late tick is caught up, so playout and sending keep 50 frames a second on average
    // (Delay would lose a frame per hiccup, and the jitter buffer would have to drop one).
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // One timer for the reports, reset when it fires: a `sleep_until` made in the loop would be
    // put into and taken out of the runtime's timer wheel at every packet and tick.
    let next_report = tokio::time::sleep(FIRST_REPORT);
    tokio::pin!(next_report);
    // A digit in progress: (event code, frames sent so far).
    let mut digit: Option<(u8, u16)> = None;
    // Quiet frames played in a row (a pause in the far end's speech once `PAUSE_FRAMES`).
    let mut quiet_frames = 0u32;
    // A datagram on the RTP socket: checked, decrypted, into the jitter buffer. `continue`s the
    // enclosing loop when it is not ours or not RTP.
    macro_rules! on_datagram {
        ($n:expr, $from:expr) => {{
            let (n, from) = ($n, $from);
            // Checked before anything is decrypted or played (RTP bleed, injection).
            if !rtp_source.as_mut().is_some_and(|s| s.admits(from)) {
                continue;
            }
            let bytes = &buffer[..n];
            if rtcp::is_rtcp(bytes) {
                // Muxed RTCP does not latch: only valid RTP does, below.
                on_rtcp(bytes, &mut srtp, &mut reception, &mut stats, sender.ssrc);
                continue;
            }
            let plain;
            let bytes = match &mut srtp {
                Some(srtp) => match srtp.unprotect_rtp(bytes) {
                    Some(p) => {
                        plain = p;
                        &plain[..]
                    }
                    None => continue,
                },
                None => bytes,
            };
            if !receiving.on_rtp(bytes, &mut jitter, &mut reception, &report) {
                continue;
            }
            if let Some(source) = rtp_source.as_mut() {
                source.confirm(from);
            }
        }};
    }
    loop {
        tokio::select! {
            _ = &mut controls.stopped => break,
            Some((audio, back)) = controls.audio.recv() => {
                let old = CallAudio {
                    source: std::mem::replace(&mut source, audio.source),
                    sink: std::mem::replace(&mut sink, audio.sink),
                    unavailable: None,
                };
                let _ = back.send(old);
            }
            Ok(()) = controls.remote.changed() => {
                let moved = *controls.remote.borrow_and_update();
                if let (Some((rtp, rtcp)), Some(_)) = (moved, rtp_source.as_ref()) {
                    let dropped = dropped(&rtp_source, &rtcp_source);
                    rtp_source = Some(SourceFilter::new(rtp).with_dropped(dropped));
                    rtcp_source = Some(SourceFilter::new(rtcp));
                }
            }
            () = &mut next_report => {
                let at = next_report.deadline() + REPORT_EVERY;
                next_report.as_mut().reset(at);
                let now_ntp = rtcp::ntp_time(SystemTime::now());
                let sent = (sender.packets > 0).then_some(SenderInfo { rtp_timestamp: sender.timestamp, packets: sender.packets, octets: sender.octets });
                rtcp::compound(sender.ssrc, now_ntp, sent, reception.report_block(now_ntp), &cname, &mut packet_bytes);
                let bytes = match &mut srtp {
                    Some(srtp) => srtp.protect_rtcp(&packet_bytes),
                    None => Some(packet_bytes.clone()),
                };
                // Over WebRTC the peer connection sends its own reports.
                // RTCP on its own port goes where the far end's RTCP comes from; muxed, with RTP.
                let remote_rtcp = if rtcp_socket.is_some() { rtcp_source.as_ref() } else { rtp_source.as_ref() }.map(SourceFilter::target);
                if let (Some(bytes), Some(socket), Some(to)) = (bytes, rtcp_socket.as_ref().or(socket.as_ref()), remote_rtcp) {
                    let _ = socket.send_to(&bytes, to).await;
                }
                fill_stats(&mut stats, &sender, &reception, &jitter, codec);
                stats.foreign_packets_dropped = dropped(&rtp_source, &rtcp_source);
                stats.silent_ms = receiving.last_heard.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
                report(MediaReport::Stats(stats.clone()));
            }
            at = tick.tick() => {
                // What has already arrived plays in this tick: the select may have taken the
                // tick before a packet waiting on the socket, and the jitter buffer would
                // conceal a frame that is here (then play it late: a frame inserted). Bounded,
                // so a flood cannot hold up playout and sending.
                for _ in 0..WAITING_PACKETS {
                    let Some(Ok((n, from))) = socket.as_ref().map(|s| s.try_recv_from(&mut buffer)) else { break };
                    on_datagram!(n, from);
                }
                if let Some(inbound) = packets_in.as_mut() {
                    for _ in 0..WAITING_PACKETS {
                        let Ok(packet) = inbound.try_recv() else { break };
                        receiving.on_rtp(&packet, &mut jitter, &mut reception, &report);
                    }
                }
                let flow = *controls.flow.borrow();
                // Playout first: one frame to the sink per tick, whatever the network did.
                // The tick's scheduled time, not when it ran: a late run must not count as phase.
                let now_ms = at.into_std().saturating_duration_since(receiving.started).as_secs_f64() * 1000.0;
                match (flow.receive, jitter.pop_at(now_ms)) {
                    (true, Playout::Frame(payload)) => {
                        state.decode(&payload, &mut decoded);
                        // A pause in the far end's speech: where delay no longer needed is cut
                        // (`jitter.rs`), the next frame playing in this one's slot.
                        quiet_frames = if quiet(&decoded) { quiet_frames + 1 } else { 0 };
                        if quiet_frames >= PAUSE_FRAMES && let Some(next) = jitter.trim() {
                            state.decode(&next, &mut decoded);
                            quiet_frames = 0;
                        }
                        if decoded.is_empty() {
                            // Undecodable: its slot is concealed, so the timeline keeps its length.
                            state.conceal(frame_samples, None, &mut decoded);
                        }
                    }
                    // Not a frame of the far end's: no pause counted through it.
                    (true, Playout::Lost { next }) => {
                        quiet_frames = 0;
                        state.conceal(frame_samples, next.as_deref(), &mut decoded);
                    }
                    _ => {
                        quiet_frames = 0;
                        decoded.clear();
                        decoded.resize(frame_samples, 0);
                    }
                }
                sink.write(&decoded);
                // The agent's side of a frame the microphone is not read for (hold, a DTMF
                // tone) is silence in the recording.
                let record = |agent: &[i16]| {
                    if let Some(tap) = controls.recording.borrow().as_ref() {
                        tap.frame(agent, &decoded);
                    }
                };
                if !flow.send {
                    record(&silence);
                    // RFC 3550 §5.1: the timestamp keeps counting sampling instants through a
                    // hold, and the first packet after it marks a new talkspurt; a receiver
                    // whose jitter buffer follows timestamps would otherwise take what we send
                    // after a resume for audio from the past.
                    sender.timestamp = sender.timestamp.wrapping_add(ticks);
                    sender.first = true;
                    continue;
                }
                if digit.is_none() && let Ok(next) = controls.dtmf.try_recv() {
                    match event_pt {
                        Some(_) => digit = dtmf_code(next).map(|code| (code, 0)),
                        None => tracing::warn!("DTMF {next:?} not sent: the far end did not offer telephone-event"),
                    }
                }
                if let (Some(pt), Some((code, frames))) = (event_pt, digit.as_mut()) {
                    // 100 ms tone; the end packet is sent three times (RFC 4733 §2.5.1.4).
                    *frames += 1;
                    let duration = *frames * ticks as u16;
                    let end = *frames >= 5;
                    let payload = telephone_event(*code, end, 10, duration);
                    record(&silence);
                    for _ in 0..if end { 3 } else { 1 } {
                        send_rtp(&out, rtp_source.as_ref().map(SourceFilter::target), &mut srtp, &mut sender, pt, *frames == 1, &payload, &mut packet_bytes).await;
                    }
                    if end {
                        sender.timestamp = sender.timestamp.wrapping_add(duration.into());
                        digit = None;
                    }
                    continue;
                }
                source.read(&mut pcm);
                if *controls.muted.borrow() {
                    pcm.fill(0);
                }
                record(&pcm);
                state.encode(&pcm, &mut encoded);
                let marker = sender.first;
                sender.first = false;
                send_rtp(&out, rtp_source.as_ref().map(SourceFilter::target), &mut srtp, &mut sender, payload_type, marker, &encoded, &mut packet_bytes).await;
                sender.timestamp = sender.timestamp.wrapping_add(ticks);
            }
            received = recv_udp(socket.as_ref(), &mut buffer) => {
                let Ok((n, from)) = received else { continue };
                on_datagram!(n, from);
            }
            Some(packet) = recv_packet(packets_in.as_mut()) => {
                receiving.on_rtp(&packet, &mut jitter, &mut reception, &report);
            }
            received = recv_udp(rtcp_socket.as_ref(), &mut rtcp_buffer) => {
                if let Ok((n, from)) = received
                    && let Some(source) = rtcp_source.as_mut()
                    && source.admits(from)
                    && on_rtcp(&rtcp_buffer[..n], &mut srtp, &mut reception, &mut stats, sender.ssrc)
                {
                    // Latched only once a report decrypted and parsed.
                    source.confirm(from);
                    // Their reports say they are alive even while they send no audio.
                    receiving.last_heard = Instant::now();
                }
            }
        }
    }
    fill_stats(&mut stats, &sender, &reception, &jitter, codec);
    stats.foreign_packets_dropped = dropped(&rtp_source, &rtcp_source);
    report(MediaReport::Stats(stats));
    sink.finish();
}

/// Below −40 dBFS RMS: a pause in speech, where 20 ms can go unheard.
fn quiet(samples: &[i16]) -> bool {
    !samples.is_empty() && dbfs(energy_of(samples), samples.len()) < -40.0
}

fn dropped(rtp: &Option<SourceFilter>, rtcp: &Option<SourceFilter>) -> u64 {
    [rtp, rtcp]
        .into_iter()
        .flatten()
        .map(SourceFilter::dropped)
        .sum()
}

/// What a received RTP packet is checked against, and the state it feeds.
struct Receiving {
    started: Instant,
    /// When the far end's last media packet (audio or DTMF) arrived.
    last_heard: Instant,
    rate_per_ms: f64,
    payload_type: u8,
    event_pt: Option<u8>,
    dtmf: DtmfReceiver,
}

impl Receiving {
    /// Takes one plain RTP packet: audio to the jitter buffer, telephone-events to DTMF. False
    /// when it is neither (unparsable, or a payload type we did not agree on).
    fn on_rtp(
        &mut self,
        bytes: &[u8],
        jitter: &mut JitterBuffer,
        reception: &mut Reception,
        report: &impl Fn(MediaReport),
    ) -> bool {
        let Ok(packet) = RtpPacket::parse(bytes) else {
            return false;
        };
        // Any RTP from the far end says it is alive: comfort noise and DTX included.
        self.last_heard = Instant::now();
        if Some(packet.payload_type) == self.event_pt {
            if let Some(digit) = self.dtmf.on_packet(packet.timestamp, packet.payload) {
                tracing::info!("DTMF received");
                report(MediaReport::Dtmf(digit));
            }
            return true;
        }
        if packet.payload_type != self.payload_type {
            return false;
        }
        let arrival_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        reception.on_packet(
            packet.ssrc,
            packet.sequence,
            packet.timestamp,
            (arrival_ms * self.rate_per_ms) as u32,
        );
        jitter.push(
            packet.sequence,
            f64::from(packet.timestamp) / self.rate_per_ms,
            arrival_ms,
            packet.payload,
        );
        true
    }
}

/// Where sent RTP goes: our socket, or the peer connection.
struct Out<'a> {
    socket: Option<&'a UdpSocket>,
    packets: Option<&'a mpsc::Sender<Vec<u8>>>,
}

#[allow(clippy::too_many_arguments)]
async fn send_rtp(
    out_to: &Out<'_>,
    remote: Option<SocketAddr>,
    srtp: &mut Option<SrtpSession>,
    sender: &mut Sender,
    payload_type: u8,
    marker: bool,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    RtpPacket {
        marker,
        payload_type,
        sequence: sender.sequence,
        timestamp: sender.timestamp,
        ssrc: sender.ssrc,
        payload,
    }
    .write(out);
    sender.sequence = sender.sequence.wrapping_add(1);
    sender.packets = sender.packets.wrapping_add(1);
    sender.octets = sender.octets.wrapping_add(payload.len() as u32);
    let protected;
    let bytes = match srtp {
        Some(srtp) => match srtp.protect_rtp(out) {
            Some(p) => {
                protected = p;
                &protected[..]
            }
            None => return,
        },
        None => &out[..],
    };
    match (out_to.socket, remote, out_to.packets) {
        (Some(socket), Some(remote), _) => {
            if let Err(e) = socket.send_to(bytes, remote).await {
                tracing::debug!("RTP send to {remote}: {e}");
            }
        }
        // A full queue means the peer connection is stalled: drop the frame rather than the clock.
        (_, _, Some(packets)) => drop(packets.try_send(bytes.to_vec())),
        _ => {}
    }
}

/// Takes one RTCP compound packet; false when it does not decrypt or carries no report.
fn on_rtcp(
    bytes: &[u8],
    srtp: &mut Option<SrtpSession>,
    reception: &mut Reception,
    stats: &mut MediaStats,
    our_ssrc: u32,
) -> bool {
    let plain;
    let bytes = match srtp {
        Some(srtp) => match srtp.unprotect_rtcp(bytes) {
            Some(p) => {
                plain = p;
                &plain[..]
            }
            None => return false,
        },
        None => bytes,
    };
    let now_ntp = rtcp::ntp_time(SystemTime::now());
    let received = rtcp::parse(bytes, our_ssrc);
    if let Some((_, ntp)) = received.sender_report {
        reception.on_sender_report(ntp, now_ntp);
    }
    if let Some(block) = received.about_us {
        stats.remote_packets_lost = Some(block.cumulative_lost);
        stats.remote_jitter_ms =
            Some(f64::from(block.jitter) * 1000.0 / f64::from(stats_rate(stats.codec)));
        if let Some(rtt) = block.round_trip(now_ntp) {
            stats.round_trip_ms = Some(rtt * 1000.0);
        }
    }
    received.sender_report.is_some() || received.about_us.is_some() || received.bye
}

fn stats_rate(codec: &str) -> u32 {
    AudioCodec::from_name(codec).map_or(8000, AudioCodec::clock_rate)
}

fn fill_stats(
    stats: &mut MediaStats,
    sender: &Sender,
    reception: &Reception,
    jitter: &JitterBuffer,
    codec: AudioCodec,
) {
    let buffer = jitter.stats();
    stats.packets_sent = sender.packets;
    stats.packets_received = reception.received();
    stats.packets_lost = reception.lost().max(0);
    stats.jitter_ms = f64::from(reception.jitter()) * 1000.0 / f64::from(codec.clock_rate());
    stats.concealed_frames = buffer.concealed;
    stats.late_packets = buffer.late;
    stats.jitter_buffer_ms = buffer.target_frames as u32 * 20;
}

/// From the socket when there is one (RTP, or RTCP on its own port); never otherwise.
async fn recv_udp(
    socket: Option<&UdpSocket>,
    buffer: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buffer).await,
        None => std::future::pending().await,
    }
}

async fn recv_packet(inbound: Option<&mut mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match inbound {
        Some(inbound) => inbound.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::quiet;

    #[test]
    fn quiet_is_below_minus_40_dbfs() {
        assert!(quiet(&[0; 160]));
        assert!(quiet(&[300; 160]), "−40.8 dBFS");
        assert!(!quiet(&[340; 160]), "−39.7 dBFS");
        let speech: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { 3000 } else { -3000 })
            .collect();
        assert!(!quiet(&speech));
        assert!(!quiet(&[]), "nothing decoded is not a pause");
    }
}
