//! Sans-IO SIP (RFC 3261): message parsing (RFC 4475's torture tests pass) and serialization,
//! the 400 for requests it refuses, the SDP of multipart bodies (RFC 5621), digest
//! authentication (RFC 8760), client transactions with their timers, a registration state
//! machine with SIP Outbound and GRUU (RFC 5626, 5627) and its flow keepalives, INVITE dialogs with session timers (RFC 4028), Replaces (RFC 3891), transfers both ways (REFER, RFC 3515: blind and attended of ours, the far end's followed) and glare resolution (and a re-INVITE left at a provisional answer cancelled), SDP offer/answer
//! (RFC 3264, SDES RFC 4568), and DNS messages for RFC 3263.
//!
//! # The run-loop contract
//!
//! Nothing here reads a clock or touches a socket. A state machine (a transaction, a
//! registration) takes inputs — `handle_message(msg, now)`, `handle_timeout(now)`, commands — and
//! the driver drains its outputs with `poll_transmit()` (bytes to send), `poll_event()` (what
//! happened) and `poll_timeout()` (when to call `handle_timeout` next), repeating until all are
//! empty. `now` is whatever `Instant` the driver passes: the real clock in the daemon, a virtual
//! one in tests, so every timer is tested without sleeping.

#![forbid(unsafe_code)]

pub mod auth;
pub mod call;
pub mod dns;
pub mod flow;
pub mod message;
pub mod registration;
pub mod sdp;
pub mod transaction;

pub use message::{
    Headers, Message, Method, NameAddr, ParseError, Request, Response, SerializeError, Uri, Via,
};
