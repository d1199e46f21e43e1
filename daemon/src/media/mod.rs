//! Call media: RTP (RFC 3550) carrying G.711 audio, RFC 4733 DTMF. Pure packet and codec code
//! here; the per-call I/O task is in `session.rs`.

pub mod g711;
pub mod rtp;
pub mod session;
