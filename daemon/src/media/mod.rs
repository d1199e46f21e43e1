//! Call media: RTP and RTCP (RFC 3550) carrying G.711, G.722 or Opus, packet-loss concealment
//! (`plc.rs` for the waveform codecs), RFC 4733 DTMF both ways, an adaptive jitter buffer,
//! SDES-SRTP, and the local conference's mix (`mixer.rs`). Pure packet,
//! codec, buffer and mixing code here; the per-call I/O task is in `session.rs`, the
//! conference's in `conference.rs`.

pub mod codec;
pub mod conference;
pub mod g711;
pub mod g722;
pub mod jitter;
pub mod mixer;
pub mod plc;
pub mod recorder;
pub mod recording;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod source;
pub mod srtp;
