//! DTMF in SIP INFO: `application/dtmf-relay` (`Signal=5` / `Duration=160`, as Cisco, Asterisk
//! and FreeSWITCH send it) and `application/dtmf` (the digit alone). Digits received become
//! [`CallEvent::Dtmf`]; digits sent go one INFO at a time, in order, each after the previous one
//! was answered (or given up), so the far end hears them as they were typed.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Call, CallEvent, CallState, Method, Request};
use crate::registration::Entropy;
use crate::transaction::{ClientTransaction, TransactionEvent};

/// Digits waiting to go, at most; more are refused by [`Call::send_dtmf_info`].
const MAX_QUEUED: usize = 64;
/// The tone length each INFO announces.
const DURATION_MS: u32 = 160;

/// INFO DTMF the call is sending.
#[derive(Debug, Default)]
pub(super) struct InfoDtmf {
    queue: VecDeque<char>,
    pub(super) transaction: Option<ClientTransaction>,
}

impl InfoDtmf {
    pub(super) fn transaction_mut(&mut self) -> Option<&mut ClientTransaction> {
        self.transaction.as_mut()
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.transaction.as_ref()?.poll_timeout()
    }
}

/// The digit an INFO carries, if it is DTMF in one of the two forms.
pub fn digit_of(request: &Request) -> Option<char> {
    let kind = request
        .headers
        .get("Content-Type")?
        .split(';')
        .next()?
        .trim()
        .to_ascii_lowercase();
    let body = std::str::from_utf8(&request.body).ok()?;
    let signal = match kind.as_str() {
        "application/dtmf-relay" => body.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| value.trim())
        })?,
        "application/dtmf" => body.trim(),
        _ => return None,
    };
    match signal {
        "10" => Some('*'),
        "11" => Some('#'),
        s if s.chars().count() == 1 => {
            let c = s.chars().next()?.to_ascii_uppercase();
            (c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')).then_some(c)
        }
        _ => None,
    }
}

impl Call {
    /// Sends `digits` as INFO requests, in order. Only on a call that is up; digits that are
    /// not DTMF are skipped. The number of digits queued.
    pub fn send_dtmf_info(
        &mut self,
        digits: &str,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> usize {
        if self.state != CallState::Established {
            return 0;
        }
        let mut queued = 0;
        for c in digits.chars().map(|c| c.to_ascii_uppercase()) {
            if (c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
                && self.info_dtmf.queue.len() < MAX_QUEUED
            {
                self.info_dtmf.queue.push_back(c);
                queued += 1;
            }
        }
        self.next_info(now, entropy);
        queued
    }

    /// The next digit's INFO, when none is in flight.
    fn next_info(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        if self.info_dtmf.transaction.is_some() || self.state != CallState::Established {
            return;
        }
        let Some(digit) = self.info_dtmf.queue.pop_front() else {
            return;
        };
        let mut request = self.in_dialog_request(Method::Info, entropy);
        request
            .headers
            .push("Content-Type", "application/dtmf-relay");
        request.body = format!("Signal={digit}\r\nDuration={DURATION_MS}\r\n").into_bytes();
        let mut transaction =
            ClientTransaction::start(request, self.party.reliable, self.timers, now);
        self.transmits
            .extend(std::iter::from_fn(|| transaction.poll_transmit()));
        self.info_dtmf.transaction = Some(transaction);
    }

    /// Answers (or timeouts) of our INFO: the next digit goes once one is final.
    pub(super) fn drain_info(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        let events = super::drain(&mut self.info_dtmf.transaction, &mut self.transmits);
        if events
            .iter()
            .any(|e| !matches!(e, TransactionEvent::Provisional(_)))
        {
            // Done with it, though a UDP transaction would linger for Timer K.
            self.info_dtmf.transaction = None;
        }
        if self.state != CallState::Established {
            self.info_dtmf.queue.clear();
        }
        self.next_info(now, entropy);
    }

    /// Their INFO: a DTMF digit is news; every INFO in a live dialog gets 200.
    pub(super) fn on_info(&mut self, request: &Request) {
        if let Some(digit) = digit_of(request) {
            self.events.push_back(CallEvent::Dtmf(digit));
        }
        self.respond(request, 200);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Headers, Uri};

    fn info(kind: &str, body: &str) -> Request {
        let mut headers = Headers::default();
        headers.push("Content-Type", kind);
        Request {
            method: Method::Info,
            uri: Uri::parse("sip:a@b").expect("uri"),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn both_info_forms_and_nothing_else_are_digits() {
        for (kind, body, digit) in [
            (
                "application/dtmf-relay",
                "Signal=5\r\nDuration=160\r\n",
                Some('5'),
            ),
            ("application/dtmf-relay", "signal= 10\r\n", Some('*')),
            ("Application/DTMF-Relay; charset=x", "Signal=11", Some('#')),
            ("application/dtmf", "9", Some('9')),
            ("application/dtmf", " d \r\n", Some('D')),
            ("application/dtmf-relay", "Signal=12", None),
            ("application/dtmf-relay", "Duration=160", None),
            ("application/dtmf", "55", None),
            ("application/dtmf", "E", None),
            ("text/plain", "5", None),
        ] {
            assert_eq!(digit_of(&info(kind, body)), digit, "{kind} {body:?}");
        }
        let mut junk = info("application/dtmf", "5");
        junk.body = vec![0xff, 0xfe];
        assert_eq!(digit_of(&junk), None);
    }
}
