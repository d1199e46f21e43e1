//! Which addresses a call's RTP and RTCP are taken from. Pure, so it is tested without sockets.
//!
//! Taking the first packet from anywhere as the far end ("RTP bleed") lets any host that guesses
//! the port hijack the call's audio or play its own to the agent. Only the address the SDP
//! negotiated is trusted, or — for a far end behind NAT, whose ports are rewritten — the same IP
//! from another port, latched once. Everything else is dropped and counted.

use std::net::SocketAddr;

#[derive(Debug, Clone)]
pub struct SourceFilter {
    negotiated: SocketAddr,
    latched: Option<SocketAddr>,
    dropped: u64,
}

impl SourceFilter {
    pub fn new(negotiated: SocketAddr) -> Self {
        Self {
            negotiated,
            latched: None,
            dropped: 0,
        }
    }

    /// Whether a packet from `from` may be the far end's; counts it when not. Before the far end
    /// has sent, that is the negotiated address or another port on its host; after, only the
    /// address [`Self::confirm`] latched.
    pub fn admits(&mut self, from: SocketAddr) -> bool {
        let admitted = match self.latched {
            Some(latched) => from == latched,
            // A far end that announced no address (0.0.0.0) is latched to whoever sends first,
            // as there is nothing better to compare with.
            None => from.ip() == self.negotiated.ip() || self.negotiated.ip().is_unspecified(),
        };
        if !admitted {
            self.dropped += 1;
        }
        admitted
    }

    /// A valid packet (it decrypted and carried an agreed payload type) came from `from`: the
    /// first one latches our replies to that address (symmetric RTP, RFC 4961).
    pub fn confirm(&mut self, from: SocketAddr) {
        if self.latched.is_none() {
            if from != self.negotiated {
                tracing::debug!(%from, "symmetric RTP: sending to where the far end sends from");
            }
            self.latched = Some(from);
        }
    }

    /// A filter for a moved far end that keeps counting from `dropped`.
    pub fn with_dropped(mut self, dropped: u64) -> Self {
        self.dropped = dropped;
        self
    }

    /// Where to send: the latched address once the far end has sent, else the negotiated one.
    pub fn target(&self) -> SocketAddr {
        self.latched.unwrap_or(self.negotiated)
    }

    /// Packets refused because they came from elsewhere.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    /// Security review, finding 3: the first packet from any address became the send target,
    /// and packets from any address were played to the agent.
    #[test]
    fn only_the_negotiated_host_is_heard_and_latched() {
        let mut filter = SourceFilter::new(addr("127.0.0.1:4000"));
        assert!(
            !filter.admits(addr("127.0.0.2:4000")),
            "another host is refused"
        );
        assert_eq!(
            filter.target(),
            addr("127.0.0.1:4000"),
            "and does not steer our audio"
        );
        assert!(filter.admits(addr("127.0.0.1:4000")));
        filter.confirm(addr("127.0.0.1:4000"));
        assert!(
            !filter.admits(addr("127.0.0.1:4999")),
            "after latching, other ports are refused"
        );
        assert!(!filter.admits(addr("127.0.0.3:4000")));
        assert_eq!(filter.dropped(), 3);
        assert_eq!(filter.target(), addr("127.0.0.1:4000"));
    }

    #[test]
    fn a_nat_rewritten_port_on_the_same_host_latches_once_it_proves_valid() {
        let mut filter = SourceFilter::new(addr("127.0.0.1:4000"));
        assert!(filter.admits(addr("127.0.0.1:31000")));
        assert_eq!(
            filter.target(),
            addr("127.0.0.1:4000"),
            "not latched before it proved valid"
        );
        filter.confirm(addr("127.0.0.1:31000"));
        assert_eq!(filter.target(), addr("127.0.0.1:31000"));
        assert!(filter.admits(addr("127.0.0.1:31000")));
        assert!(
            !filter.admits(addr("127.0.0.1:4000")),
            "latched: one source"
        );
        assert_eq!(filter.dropped(), 1);
    }

    #[test]
    fn an_unspecified_address_latches_to_the_first_valid_sender() {
        let mut filter = SourceFilter::new(addr("0.0.0.0:4000"));
        assert!(filter.admits(addr("127.0.0.9:5000")));
        filter.confirm(addr("127.0.0.9:5000"));
        assert!(!filter.admits(addr("127.0.0.1:5000")));
    }
}
