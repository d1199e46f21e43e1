//! Flow keepalives of SIP Outbound (RFC 5626 §4.4): while the registrar confirms outbound
//! (`Require: outbound` in its 2xx), the UA pings its flow — CRLFCRLF on a stream, answered by a
//! CRLF pong (§4.4.1); a STUN Binding request on UDP, answered by a Binding response (§4.4.2).
//! A ping left unanswered means the flow failed: the UA makes a new one at once and registers
//! over it, instead of learning of the loss from the next call that never arrives.
//!
//! Sans-IO like the rest: [`FlowKeepalive`] says when to ping and when the flow has failed; the
//! driver writes the bytes ([`stun::binding_request`] on UDP) and reports pongs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::registration::Entropy;

/// §4.4.1: a pong not received within 10 s of the ping means the flow failed.
pub const PONG_WITHIN: Duration = Duration::from_secs(10);
/// §4.4.1's recommended interval when the registrar names no `Flow-Timer`: 95–120 s on a
/// stream; on UDP 24–29 s (NAT bindings expire sooner).
const STREAM_INTERVAL: (u64, u64) = (95, 120);
const DATAGRAM_INTERVAL: (u64, u64) = (24, 29);
/// STUN over UDP retransmits from 500 ms, doubling (RFC 5389 §7.2.1), seven sends in all; the
/// flow failed when the last has had 16 × RTO without an answer (39.5 s after the first).
const STUN_RTO: Duration = Duration::from_millis(500);
const STUN_SENDS: u32 = 7;
const STUN_LAST_WAIT: u32 = 16;

/// The shortest interval we ping at, whatever the registrar asks: a `Flow-Timer` of 1 must not
/// turn the line into a ping flood.
const MIN_INTERVAL: u64 = 5;

/// What the driver does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowAction {
    /// Send a ping: CRLFCRLF (or a WebSocket ping) on a stream, on UDP a STUN Binding request
    /// with this transaction id (the same id for its retransmissions).
    Ping { transaction: [u8; 12] },
    /// The flow is gone (a ping this flow used to answer went unanswered, a STUN error, or our
    /// address as the server sees it changed: a NAT rebinding, §4.4.2). Replace the connection
    /// and register again.
    Failed,
    /// The very first ping went unanswered: the registrar said outbound but its edge does not
    /// answer keepalives. Not a dead flow: stop pinging it and keep it alive otherwise.
    Unanswered,
}

/// A keepalive's answer, as the driver read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pong {
    /// A CRLF (or WebSocket pong) on a stream.
    Stream,
    /// A STUN Binding success response: its transaction and XOR-MAPPED-ADDRESS.
    Stun {
        transaction: [u8; 12],
        mapped: Option<SocketAddr>,
    },
    /// A STUN Binding error response.
    StunError { transaction: [u8; 12] },
}

/// What a pong meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PongOutcome {
    /// It answered the ping in flight.
    Answered,
    /// Not for us (no ping in flight, another transaction, a stream pong on UDP).
    Ignored,
    /// It says the flow failed (see [`FlowAction::Failed`]).
    Failed,
}

#[derive(Debug, Clone)]
pub struct FlowKeepalive {
    reliable: bool,
    /// Pings go out at a random point in 80–100 % of this (§4.4.1), so a proxy's many flows do
    /// not ping in step.
    interval: (Duration, Duration),
    next_ping: Instant,
    /// The ping in flight: its transaction id, sends so far, when to retransmit (UDP) and when
    /// the flow counts as failed.
    waiting: Option<Waiting>,
    /// The flow has answered a ping: from then on silence means it failed.
    answered: bool,
    /// Our address as the server first saw it (UDP: the STUN XOR-MAPPED-ADDRESS).
    mapped: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    transaction: [u8; 12],
    sends: u32,
    retransmit_at: Option<Instant>,
    fail_at: Instant,
}

impl FlowKeepalive {
    /// `flow_timer`: the registrar's `Flow-Timer` (seconds), if it sent one. We ping at least
    /// as often as the RFC's recommended intervals, even if it asks for less, and at most every
    /// 5 s, even if it asks for more.
    pub fn new(
        reliable: bool,
        flow_timer: Option<u32>,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> Self {
        let (low, high) = if reliable {
            STREAM_INTERVAL
        } else {
            DATAGRAM_INTERVAL
        };
        let interval = match flow_timer.filter(|&t| t > 0) {
            Some(seconds) => {
                let full = Duration::from_secs(u64::from(seconds).clamp(MIN_INTERVAL, high));
                (full.mul_f64(0.8), full)
            }
            None => (Duration::from_secs(low), Duration::from_secs(high)),
        };
        let mut keepalive = Self {
            reliable,
            interval,
            next_ping: now,
            waiting: None,
            answered: false,
            mapped: None,
        };
        keepalive.next_ping = now + keepalive.pick_interval(entropy);
        keepalive
    }

    /// The time the next ping goes out, or the flow counts as failed.
    pub fn poll_timeout(&self) -> Instant {
        match &self.waiting {
            Some(waiting) => waiting
                .retransmit_at
                .map_or(waiting.fail_at, |at| at.min(waiting.fail_at)),
            None => self.next_ping,
        }
    }

    pub fn handle_timeout(
        &mut self,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> Option<FlowAction> {
        if let Some(waiting) = &mut self.waiting {
            if now >= waiting.fail_at {
                self.waiting = None;
                return Some(if self.answered {
                    FlowAction::Failed
                } else {
                    FlowAction::Unanswered
                });
            }
            if waiting.retransmit_at.is_some_and(|at| now >= at) {
                waiting.sends += 1;
                // From now, not from when it was due: after a suspend, one retransmission, not
                // a burst of the ones missed.
                if waiting.sends < STUN_SENDS {
                    waiting.retransmit_at = Some(now + STUN_RTO * 2u32.pow(waiting.sends - 1));
                } else {
                    waiting.retransmit_at = None;
                    waiting.fail_at = now + STUN_RTO * STUN_LAST_WAIT;
                }
                return Some(FlowAction::Ping {
                    transaction: waiting.transaction,
                });
            }
            return None;
        }
        if now < self.next_ping {
            return None;
        }
        let transaction = transaction_id(entropy);
        self.waiting = Some(if self.reliable {
            Waiting {
                transaction,
                sends: 1,
                retransmit_at: None,
                fail_at: now + PONG_WITHIN,
            }
        } else {
            Waiting {
                transaction,
                sends: 1,
                retransmit_at: Some(now + STUN_RTO),
                // Replaced by the real deadline once the last retransmission is out.
                fail_at: now + Duration::from_secs(3600),
            }
        });
        Some(FlowAction::Ping { transaction })
    }

    /// A pong arrived. On UDP only a STUN answer to the ping in flight counts; on a stream
    /// only a CRLF or WebSocket pong.
    pub fn on_pong(&mut self, pong: Pong, now: Instant, entropy: &mut dyn Entropy) -> PongOutcome {
        let Some(waiting) = &self.waiting else {
            return PongOutcome::Ignored;
        };
        let ours = |id: [u8; 12]| !self.reliable && id == waiting.transaction;
        match pong {
            Pong::Stream if self.reliable => {}
            Pong::Stun {
                transaction,
                mapped,
            } if ours(transaction) => {
                if let (Some(first), Some(now_seen)) = (self.mapped, mapped)
                    && first != now_seen
                {
                    self.waiting = None;
                    return PongOutcome::Failed;
                }
                self.mapped = self.mapped.or(mapped);
            }
            Pong::StunError { transaction } if ours(transaction) => {
                self.waiting = None;
                return PongOutcome::Failed;
            }
            _ => return PongOutcome::Ignored,
        }
        self.waiting = None;
        self.answered = true;
        self.next_ping = now + self.pick_interval(entropy);
        PongOutcome::Answered
    }

    /// Whether a ping is waiting for its pong.
    pub fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    fn pick_interval(&self, entropy: &mut dyn Entropy) -> Duration {
        let (low, high) = self.interval;
        let fraction = f64::from(hash(entropy.token().as_bytes()) % 1001) / 1000.0;
        low + (high - low).mul_f64(fraction)
    }
}

fn transaction_id(entropy: &mut dyn Entropy) -> [u8; 12] {
    let mut id = [0u8; 12];
    let first = hash(entropy.token().as_bytes()).to_be_bytes();
    let second = hash(entropy.token().as_bytes()).to_be_bytes();
    let third = hash(entropy.token().as_bytes()).to_be_bytes();
    id[..4].copy_from_slice(&first);
    id[4..8].copy_from_slice(&second);
    id[8..].copy_from_slice(&third);
    id
}

/// FNV-1a: spreads a random token's text over 32 bits.
fn hash(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The STUN a flow keepalive needs (RFC 5389): a Binding request with no attributes, and
/// reading the Binding response to it (success or error, and the XOR-MAPPED-ADDRESS).
pub mod stun {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    const BINDING_REQUEST: u16 = 0x0001;
    const BINDING_SUCCESS: u16 = 0x0101;
    const BINDING_ERROR: u16 = 0x0111;
    const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    const MAGIC_COOKIE: u32 = 0x2112_A442;
    const HEADER: usize = 20;

    pub fn binding_request(transaction: [u8; 12]) -> [u8; HEADER] {
        let mut message = [0u8; HEADER];
        message[..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
        // Length 0: no attributes.
        message[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        message[8..].copy_from_slice(&transaction);
        message
    }

    /// Whether a datagram is STUN at all (RFC 5389 §6: two zero bits, then the cookie); SIP
    /// never starts that way, so a driver can tell the two apart on one socket (§5.2 of 5626).
    pub fn is_stun(datagram: &[u8]) -> bool {
        datagram.len() >= HEADER
            && datagram[0] & 0xC0 == 0
            && datagram[4..8] == MAGIC_COOKIE.to_be_bytes()
    }

    /// A Binding response whose length field fits the datagram: its transaction id, whether
    /// it is a success, and (a success's) XOR-MAPPED-ADDRESS when it has a readable one.
    pub fn binding_response(datagram: &[u8]) -> Option<([u8; 12], bool, Option<SocketAddr>)> {
        if !is_stun(datagram) {
            return None;
        }
        let kind = u16::from_be_bytes([datagram[0], datagram[1]]);
        let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
        if HEADER + length != datagram.len() || length % 4 != 0 {
            return None;
        }
        let mut transaction = [0u8; 12];
        transaction.copy_from_slice(&datagram[8..HEADER]);
        match kind {
            BINDING_SUCCESS => Some((transaction, true, mapped_address(datagram))),
            BINDING_ERROR => Some((transaction, false, None)),
            _ => None,
        }
    }

    /// The XOR-MAPPED-ADDRESS attribute (RFC 5389 §15.2), walking attributes padded to 4.
    fn mapped_address(datagram: &[u8]) -> Option<SocketAddr> {
        let mut at = HEADER;
        while at + 4 <= datagram.len() {
            let kind = u16::from_be_bytes([datagram[at], datagram[at + 1]]);
            let length = usize::from(u16::from_be_bytes([datagram[at + 2], datagram[at + 3]]));
            let value = datagram.get(at + 4..at + 4 + length)?;
            if kind == XOR_MAPPED_ADDRESS {
                let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ 0x2112;
                let cookie = MAGIC_COOKIE.to_be_bytes();
                let ip = match (value.get(1)?, value.len()) {
                    (1, 8) => {
                        let mut octets = [0u8; 4];
                        for (i, octet) in octets.iter_mut().enumerate() {
                            *octet = value[4 + i] ^ cookie[i];
                        }
                        IpAddr::V4(Ipv4Addr::from(octets))
                    }
                    (2, 20) => {
                        let mut key = [0u8; 16];
                        key[..4].copy_from_slice(&cookie);
                        key[4..].copy_from_slice(&datagram[8..HEADER]);
                        let mut octets = [0u8; 16];
                        for (i, octet) in octets.iter_mut().enumerate() {
                            *octet = value[4 + i] ^ key[i];
                        }
                        IpAddr::V6(Ipv6Addr::from(octets))
                    }
                    _ => return None,
                };
                return Some(SocketAddr::new(ip, port));
            }
            at += 4 + length.div_ceil(4) * 4;
        }
        None
    }
}

#[cfg(test)]
mod tests;
