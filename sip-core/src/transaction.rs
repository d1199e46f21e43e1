//! Client transactions (RFC 3261 §17.1, with RFC 6026's Accepted state for INVITE).
//!
//! A [`ClientTransaction`] sends one request and follows it to a final response, retransmitting
//! on unreliable transports and timing out. It is sans-IO: feed it responses and timeouts with the
//! current `Instant`, drain [`ClientTransaction::poll_transmit`] and
//! [`ClientTransaction::poll_event`], and call back at [`ClientTransaction::poll_timeout`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::message::{Headers, Method, Request, Response};

/// RFC 3261 timer values (§17.1.1.1): T1 is the RTT estimate, T2 the cap on non-INVITE
/// retransmission intervals, T4 how long the network holds a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// What the transaction reports to its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionEvent {
    Provisional(Response),
    /// A final response. For INVITE a 2xx may be reported again when the server retransmits it
    /// (the dialog must ACK each one).
    Final(Response),
    /// No final response in 64·T1 (Timer B or F).
    Timeout,
    /// The transport could not send.
    TransportError,
}

/// States, named for what the transaction waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Sent; waiting for any response (RFC "Calling"/"Trying").
    AwaitingResponse,
    /// A provisional response arrived; waiting for the final one.
    Proceeding,
    /// A final response arrived; absorbing retransmissions of it (Timer D or K).
    Completed,
    /// INVITE got a 2xx; passing retransmitted 2xx up until Timer M.
    Accepted,
    Terminated,
}

#[derive(Debug)]
pub struct ClientTransaction {
    request: Request,
    wire: Vec<u8>,
    reliable: bool,
    timers: Timers,
    state: State,
    /// Timer A (INVITE) or E (non-INVITE): next retransmission and the interval after it.
    retransmit: Option<(Instant, Duration)>,
    /// Timer B or F: give up.
    give_up: Option<Instant>,
    /// Timer D, K or M: leave Completed/Accepted.
    linger: Option<Instant>,
    /// ACK for a non-2xx final response to INVITE, resent for each retransmission of it.
    ack: Option<Vec<u8>>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<TransactionEvent>,
}

impl ClientTransaction {
    /// Starts the transaction: the request is queued for sending at once. The request must carry
    /// a top Via with a `z9hG4bK` branch (the transaction's identity).
    /// A request the serializer refuses (a CR, LF or NUL in it) is never sent: the transaction
    /// ends at once with [`TransactionEvent::TransportError`].
    pub fn start(request: Request, reliable: bool, timers: Timers, now: Instant) -> Self {
        let wire = request.to_bytes();
        let give_up = Some(now + 64 * timers.t1);
        let retransmit = (!reliable).then_some((now + timers.t1, timers.t1));
        let mut transaction = Self {
            request,
            wire,
            reliable,
            timers,
            state: State::AwaitingResponse,
            retransmit,
            give_up,
            linger: None,
            ack: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        if transaction.wire.is_empty() {
            transaction.state = State::Terminated;
            transaction.retransmit = None;
            transaction.give_up = None;
            transaction
                .events
                .push_back(TransactionEvent::TransportError);
            return transaction;
        }
        transaction.transmits.push_back(transaction.wire.clone());
        transaction
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    fn is_invite(&self) -> bool {
        self.request.method == Method::Invite
    }

    /// The branch parameter of our top Via.
    pub fn branch(&self) -> Option<String> {
        self.request
            .headers
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
    }

    /// RFC 3261 §17.1.3: same top-Via branch and the same CSeq method.
    pub fn matches(&self, response: &Response) -> bool {
        let branch = response
            .headers
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned));
        let method = response.headers.cseq().map(|c| c.method);
        branch.is_some() && branch == self.branch() && method.as_ref() == Some(&self.request.method)
    }

    pub fn handle_response(&mut self, response: Response, now: Instant) {
        let status = response.status;
        match (self.state, status) {
            (State::AwaitingResponse | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                if self.is_invite() {
                    // Timer A stops once the INVITE is known to have arrived, and so does
                    // Timer B (§17.1.1.2): a callee may ring for minutes; the final response
                    // or a CANCEL ends the wait.
                    self.retransmit = None;
                    self.give_up = None;
                } else if let Some((at, _)) = self.retransmit {
                    self.retransmit = Some((at, self.timers.t2));
                }
                self.events
                    .push_back(TransactionEvent::Provisional(response));
            }
            (State::AwaitingResponse | State::Proceeding, 200..=299) if self.is_invite() => {
                self.state = State::Accepted;
                self.stop_timers();
                self.linger = Some(now + 64 * self.timers.t1);
                self.events.push_back(TransactionEvent::Final(response));
            }
            (State::AwaitingResponse | State::Proceeding, 200..=699) => {
                self.state = State::Completed;
                self.stop_timers();
                if self.is_invite() {
                    let ack = ack_for(&self.request, &response).to_bytes();
                    self.transmits.push_back(ack.clone());
                    self.ack = Some(ack);
                    self.linger = Some(
                        now + if self.reliable {
                            Duration::ZERO
                        } else {
                            Duration::from_secs(32)
                        },
                    );
                } else {
                    self.linger = Some(
                        now + if self.reliable {
                            Duration::ZERO
                        } else {
                            self.timers.t4
                        },
                    );
                }
                self.events.push_back(TransactionEvent::Final(response));
            }
            (State::Accepted, 200..=299) => {
                self.events.push_back(TransactionEvent::Final(response))
            }
            (State::Completed, 300..=699) => {
                if let Some(ack) = &self.ack {
                    self.transmits.push_back(ack.clone());
                }
            }
            // Anything else is a retransmission or out of order: absorbed.
            _ => {}
        }
        if self.linger == Some(now) {
            self.handle_timeout(now);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Terminated {
            return;
        }
        if self.give_up.is_some_and(|at| now >= at) {
            self.terminate();
            self.events.push_back(TransactionEvent::Timeout);
            return;
        }
        if self.linger.is_some_and(|at| now >= at) {
            self.terminate();
            return;
        }
        if let Some((at, interval)) = self.retransmit
            && now >= at
        {
            self.transmits.push_back(self.wire.clone());
            let next = if self.is_invite() {
                interval * 2
            } else {
                (interval * 2).min(self.timers.t2)
            };
            self.retransmit = Some((now + next, next));
        }
    }

    pub fn handle_transport_error(&mut self) {
        if self.state != State::Terminated {
            self.terminate();
            self.events.push_back(TransactionEvent::TransportError);
        }
    }

    /// The next bytes to send; a message the serializer refused (empty) is skipped.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        while let Some(bytes) = self.transmits.pop_front() {
            if !bytes.is_empty() {
                return Some(bytes);
            }
        }
        None
    }

    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next; `None` once terminated.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.retransmit.map(|(at, _)| at), self.give_up, self.linger]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    fn stop_timers(&mut self) {
        self.retransmit = None;
        self.give_up = None;
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.stop_timers();
        self.linger = None;
    }
}

/// The ACK for a non-2xx final response (§17.1.1.3): To from the response (with its tag), the
/// rest as [`same_transaction`].
fn ack_for(invite: &Request, response: &Response) -> Request {
    same_transaction(invite, Method::Ack, response.headers.get("To"))
}

/// A request that belongs to `invite`'s transaction — the ACK for a non-2xx answer (§17.1.1.3),
/// a CANCEL (§9.1): `method` with the INVITE's Request-URI, top Via (same branch), From, To (or
/// `to`), Call-ID and CSeq number, and its Route set.
pub(crate) fn same_transaction(invite: &Request, method: Method, to: Option<&str>) -> Request {
    let mut headers = Headers::new();
    if let Some(via) = invite.headers.all("Via").first() {
        headers.push("Via", *via);
    }
    headers.push("Max-Forwards", "70");
    if let Some(from) = invite.headers.get("From") {
        headers.push("From", from);
    }
    if let Some(to) = to.or_else(|| invite.headers.get("To")) {
        headers.push("To", to);
    }
    if let Some(call_id) = invite.headers.get("Call-ID") {
        headers.push("Call-ID", call_id);
    }
    let seq = invite.headers.cseq().map_or(1, |c| c.seq);
    headers.push("CSeq", format!("{seq} {method}"));
    for route in invite.headers.all("Route") {
        headers.push("Route", route);
    }
    Request {
        method,
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
