//! Is the server still there? An OPTIONS to the registrar every so often (sans-IO): any
//! response means yes; none within [`ANSWER_WITHIN`] means the server is silent — dead, hung, or
//! unreachable — and the line fails over to the next server (issue 17). A keepalive CRLF cannot
//! tell: nothing answers it on UDP, and a hung server's TCP stack still acknowledges it.

use std::time::{Duration, Instant};

use sip_core::call::LocalParty;
use sip_core::message::{Headers, Method, Request, Response, Uri};
use sip_core::registration::Entropy;
use sip_core::transaction::{ClientTransaction, Timers};

/// How long a server has to answer a probe.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Probe {
    transaction: ClientTransaction,
    deadline: Instant,
}

impl Probe {
    /// An OPTIONS to `registrar` from `from` (its AOR, Via and transport).
    pub fn start(
        registrar: &Uri,
        from: &LocalParty,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> Self {
        let mut headers = Headers::new();
        headers.push(
            "Via",
            format!(
                "SIP/2.0/{} {};branch=z9hG4bK{};rport",
                from.transport,
                from.sent_by,
                entropy.token()
            ),
        );
        headers.push("Max-Forwards", "70");
        headers.push("From", format!("<{}>;tag={}", from.aor, entropy.token()));
        headers.push("To", format!("<{registrar}>"));
        headers.push("Call-ID", entropy.token());
        headers.push("CSeq", "1 OPTIONS");
        headers.push("User-Agent", from.user_agent.clone());
        let request = Request {
            method: Method::Options,
            uri: registrar.clone(),
            headers,
            body: Vec::new(),
        };
        Self {
            transaction: ClientTransaction::start(request, from.reliable, Timers::default(), now),
            deadline: now + ANSWER_WITHIN,
        }
    }

    /// True when `response` answers this probe: the server is alive.
    pub fn answered_by(&mut self, response: &Response) -> bool {
        self.transaction.matches(response)
    }

    /// Retransmits (UDP) as the transaction says; true once the server has been silent too long.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        self.transaction.handle_timeout(now);
        now >= self.deadline
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transaction.poll_transmit()
    }

    pub fn poll_timeout(&self) -> Instant {
        self.transaction
            .poll_timeout()
            .map_or(self.deadline, |at| at.min(self.deadline))
    }
}

#[cfg(test)]
mod tests {
    use sip_core::Message;
    use sip_core::message::parse_datagram;

    use super::*;

    struct Counter(u32);
    impl Entropy for Counter {
        fn token(&mut self) -> String {
            self.0 += 1;
            format!("t{}", self.0)
        }
    }

    #[test]
    fn any_answer_means_alive_and_silence_past_the_deadline_means_not() {
        let (registrar, aor) = (
            Uri::parse("sip:127.0.0.1:5060").expect("uri"),
            Uri::parse("sip:1001@127.0.0.1").expect("uri"),
        );
        let from = LocalParty {
            aor: aor.clone(),
            contact: Uri::parse("sip:1001@127.0.0.1:5070").expect("uri"),
            transport: "UDP".into(),
            sent_by: "127.0.0.1:5070".into(),
            reliable: false,
            username: "1001".into(),
            password: String::new(),
            user_agent: "test".into(),
            session_interval: None,
        };
        let now = Instant::now();
        let mut probe = Probe::start(&registrar, &from, now, &mut Counter(0));
        let Ok(Message::Request(options)) =
            parse_datagram(&probe.poll_transmit().expect("an OPTIONS"))
        else {
            panic!("a request")
        };
        assert_eq!(options.method, Method::Options);
        // A 404 is an answer all the same: the server is there.
        assert!(probe.answered_by(&Response::to_request(&options, 404, Some("x"))));
        // Silence: retransmitted on UDP until the deadline, then silent.
        let mut sent = 0;
        let clock = loop {
            let clock = probe.poll_timeout();
            if probe.handle_timeout(clock) {
                break clock;
            }
            sent += std::iter::from_fn(|| probe.poll_transmit()).count();
        };
        assert_eq!(clock, now + ANSWER_WITHIN);
        assert!(sent >= 3, "retransmitted {sent} times");
    }
}
