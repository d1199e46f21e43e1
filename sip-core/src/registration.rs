//! The REGISTER client (RFC 3261 §10): registers a contact, answers digest challenges, refreshes
//! before expiry, backs off after failures and unregisters on request. Sans-IO like the rest:
//! drive it with `handle_*` and `now`, drain `poll_*`.
//!
//! With an instance id it registers as a SIP Outbound client (RFC 5626 §4.2): `+sip.instance`
//! and `reg-id=1` on the contact, `Supported: outbound, gruu`. A registrar that agrees says so
//! (`Require: outbound`, maybe a `Flow-Timer`) and replaces the binding of the same instance on
//! each new flow, so a reconnect never leaves a dead contact behind; one that offers GRUUs
//! (RFC 5627) gives a `pub-gruu`, a contact it routes to whichever flow is current. What it
//! said is [`Registration::binding`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::auth::{Challenge, DigestRequest};
use crate::message::{Headers, Method, NameAddr, Request, Response, Uri, split_list};
use crate::transaction::{ClientTransaction, Timers, TransactionEvent};

/// Random tokens for Call-ID, tags, branches and cnonces. The daemon uses the OS generator;
/// tests use a counter so every message is predictable.
pub trait Entropy {
    fn token(&mut self) -> String;
}

/// Its `Debug` leaves the password out (see `call::LocalParty`).
#[derive(Clone)]
pub struct RegistrationConfig {
    /// Request-URI of REGISTER, e.g. `sip:127.0.0.1:5060`.
    pub registrar: Uri,
    /// The address of record, e.g. `sip:1001@127.0.0.1` (From and To).
    pub aor: Uri,
    /// Where we take calls, e.g. `sip:1001@127.0.0.1:5070;transport=udp`.
    pub contact: Uri,
    pub username: String,
    pub password: String,
    /// Seconds asked for.
    pub expires: u32,
    /// Via transport token: `UDP`, `TCP`, `TLS`, `WS`, `WSS`.
    pub transport: String,
    /// Via sent-by, `host:port`.
    pub sent_by: String,
    /// Stream transports do not retransmit.
    pub reliable: bool,
    pub user_agent: String,
    /// Sent as a `Route` (loose routing) when set.
    pub outbound_proxy: Option<Uri>,
    /// This installation's `+sip.instance` (`urn:uuid:…`), the same across restarts; None: a
    /// plain RFC 3261 registration.
    pub instance: Option<String>,
}

impl std::fmt::Debug for RegistrationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationConfig")
            .field("registrar", &self.registrar)
            .field("aor", &self.aor)
            .field("contact", &self.contact)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("expires", &self.expires)
            .field("transport", &self.transport)
            .field("sent_by", &self.sent_by)
            .field("reliable", &self.reliable)
            .field("user_agent", &self.user_agent)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("instance", &self.instance)
            .finish()
    }
}

/// What the registrar's last 2xx said about our binding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    /// `Require: outbound`: the registrar keeps our flow; keep it alive and watch it.
    pub outbound: bool,
    /// `Flow-Timer`: the registrar wants a keepalive at least this often (seconds).
    pub flow_timer: Option<u32>,
    /// Our public GRUU: the contact to put in dialogs, routed to our current flow.
    pub gruu: Option<Uri>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationEvent {
    Registered {
        expires: u32,
    },
    /// `status` is `None` for a timeout or transport error; the registration retries after `retry_in`.
    Failed {
        status: Option<u16>,
        reason: String,
        retry_in: Duration,
    },
    Unregistered,
}

/// Old contacts a REGISTER removes at most (see [`Registration::rebind`]).
const MAX_STALE_CONTACTS: usize = 4;

/// First retry after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// A server that comes back is tried again within a minute (what agents expect of a desk phone).
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Registered,
    Unregistered,
}

#[derive(Debug)]
pub struct Registration {
    config: RegistrationConfig,
    timers: Timers,
    goal: Goal,
    call_id: String,
    from_tag: String,
    cseq: u32,
    transaction: Option<ClientTransaction>,
    /// The challenge to answer preemptively, whether it was a proxy's, and uses of its nonce.
    challenge: Option<(Challenge, bool, u32)>,
    /// Set after answering a challenge, so a second rejection of the same nonce is a failure.
    answered: bool,
    expires: u32,
    /// When to send the next REGISTER (refresh or retry).
    next_attempt: Option<Instant>,
    backoff: Duration,
    /// Contacts of connections that are gone, removed (`expires=0`) by the next REGISTER so
    /// the registrar stops forking calls to them.
    stale_contacts: Vec<Uri>,
    binding: Binding,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<RegistrationEvent>,
}

impl Registration {
    pub fn new(config: RegistrationConfig, timers: Timers, entropy: &mut dyn Entropy) -> Self {
        Self {
            expires: config.expires,
            config,
            timers,
            goal: Goal::Unregistered,
            call_id: entropy.token(),
            from_tag: entropy.token(),
            cseq: 0,
            transaction: None,
            challenge: None,
            answered: false,
            next_attempt: None,
            backoff: FIRST_BACKOFF,
            stale_contacts: Vec::new(),
            binding: Binding::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn register(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        self.goal = Goal::Registered;
        self.expires = self.config.expires;
        self.send(now, entropy);
    }

    /// The connection to the registrar was replaced (a reconnect, a new local address): the
    /// next REGISTER carries the new contact and Via, and removes the old contact. Whatever
    /// was in flight on the old connection is forgotten; call [`Self::register`] to send.
    pub fn rebind(&mut self, contact: Uri, transport: &str, sent_by: &str, reliable: bool) {
        // An outbound registrar replaces our instance's binding by itself (RFC 5626 §6).
        let replaced_by_registrar = self.binding.outbound;
        if contact != self.config.contact
            && !replaced_by_registrar
            && !self.stale_contacts.contains(&self.config.contact)
        {
            self.stale_contacts.push(self.config.contact.clone());
        }
        // Never remove the contact we register (a port the OS handed out again), and name only
        // the last few: older ones have expired or were removed already.
        self.stale_contacts.retain(|stale| *stale != contact);
        let excess = self.stale_contacts.len().saturating_sub(MAX_STALE_CONTACTS);
        self.stale_contacts.drain(..excess);
        self.config.contact = contact;
        self.config.transport = transport.to_owned();
        self.config.sent_by = sent_by.to_owned();
        self.config.reliable = reliable;
        self.transaction = None;
        self.transmits.clear();
        self.next_attempt = None;
        self.backoff = FIRST_BACKOFF;
        // The new flow is not outbound-confirmed until the registrar says so again.
        self.binding.outbound = false;
    }

    /// What the registrar's last 2xx said (outbound, flow timer, GRUU).
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// Sends REGISTER with `Expires: 0`; `Unregistered` follows when the registrar agrees.
    pub fn unregister(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        self.goal = Goal::Unregistered;
        // Nothing to keep alive while leaving (a challenge to the unregister must not start
        // pinging again).
        self.binding.outbound = false;
        self.next_attempt = None;
        self.send(now, entropy);
    }

    /// True when `response` belongs to this registration's current REGISTER.
    pub fn matches(&self, response: &Response) -> bool {
        self.transaction
            .as_ref()
            .is_some_and(|t| t.matches(response))
    }

    pub fn handle_response(&mut self, response: Response, now: Instant, entropy: &mut dyn Entropy) {
        if let Some(t) = &mut self.transaction {
            t.handle_response(response, now);
        }
        self.drain_transaction(now, entropy);
    }

    pub fn handle_timeout(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        if let Some(t) = &mut self.transaction {
            t.handle_timeout(now);
        }
        self.drain_transaction(now, entropy);
        if self.next_attempt.is_some_and(|at| now >= at) && self.transaction.is_none() {
            self.next_attempt = None;
            self.send(now, entropy);
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

    pub fn poll_event(&mut self) -> Option<RegistrationEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let transaction = self
            .transaction
            .as_ref()
            .and_then(ClientTransaction::poll_timeout);
        [transaction, self.next_attempt].into_iter().flatten().min()
    }

    fn send(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        self.cseq += 1;
        let request = self.build_request(entropy);
        let mut transaction =
            ClientTransaction::start(request, self.config.reliable, self.timers, now);
        while let Some(bytes) = transaction.poll_transmit() {
            self.transmits.push_back(bytes);
        }
        self.transaction = Some(transaction);
    }

    fn build_request(&mut self, entropy: &mut dyn Entropy) -> Request {
        let config = &self.config;
        let expires = if self.goal == Goal::Unregistered {
            0
        } else {
            self.expires
        };
        let mut headers = Headers::new();
        headers.push(
            "Via",
            format!(
                "SIP/2.0/{} {};branch=z9hG4bK{};rport",
                config.transport,
                config.sent_by,
                entropy.token()
            ),
        );
        headers.push("Max-Forwards", "70");
        if let Some(proxy) = &config.outbound_proxy {
            headers.push("Route", format!("<{proxy};lr>"));
        }
        headers.push("From", format!("<{}>;tag={}", config.aor, self.from_tag));
        headers.push("To", format!("<{}>", config.aor));
        headers.push("Call-ID", self.call_id.clone());
        headers.push("CSeq", format!("{} REGISTER", self.cseq));
        match &config.instance {
            Some(instance) => headers.push(
                "Contact",
                format!(
                    "<{}>;expires={expires};+sip.instance=\"<{instance}>\";reg-id=1",
                    config.contact
                ),
            ),
            None => headers.push("Contact", format!("<{}>;expires={expires}", config.contact)),
        }
        for stale in &self.stale_contacts {
            headers.push("Contact", format!("<{stale}>;expires=0"));
        }
        headers.push("Expires", expires.to_string());
        headers.push("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE");
        if config.instance.is_some() {
            headers.push("Supported", "path, outbound, gruu");
        }
        headers.push("User-Agent", config.user_agent.clone());
        if let Some((challenge, proxy, uses)) = &mut self.challenge {
            *uses += 1;
            let uri = config.registrar.to_string();
            let digest = DigestRequest {
                username: &config.username,
                password: &config.password,
                method: "REGISTER",
                uri: &uri,
                body: b"",
            };
            let value = challenge.answer(&digest, &entropy.token(), *uses);
            headers.push(
                if *proxy {
                    "Proxy-Authorization"
                } else {
                    "Authorization"
                },
                value,
            );
        }
        Request {
            method: Method::Register,
            uri: config.registrar.clone(),
            headers,
            body: Vec::new(),
        }
    }

    fn drain_transaction(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        let Some(transaction) = &mut self.transaction else {
            return;
        };
        let mut outcome = None;
        while let Some(bytes) = transaction.poll_transmit() {
            self.transmits.push_back(bytes);
        }
        while let Some(event) = transaction.poll_event() {
            match event {
                TransactionEvent::Provisional(_) => {}
                other => outcome = Some(other),
            }
        }
        if transaction.is_terminated() || outcome.is_some() {
            self.transaction = None;
        }
        match outcome {
            Some(TransactionEvent::Final(response)) => self.on_final(response, now, entropy),
            Some(TransactionEvent::Timeout) => {
                self.fail(None, "no response from the registrar", now)
            }
            Some(TransactionEvent::TransportError) => self.fail(None, "transport error", now),
            _ => {}
        }
    }

    fn on_final(&mut self, response: Response, now: Instant, entropy: &mut dyn Entropy) {
        match response.status {
            200..=299 => {
                self.answered = false;
                self.backoff = FIRST_BACKOFF;
                self.stale_contacts.clear();
                if self.goal == Goal::Unregistered {
                    self.binding = Binding::default();
                    self.events.push_back(RegistrationEvent::Unregistered);
                    return;
                }
                self.binding = self.binding_in(&response);
                let granted = self.granted_expires(&response).unwrap_or(self.expires);
                if granted == 0 {
                    self.fail(Some(response.status), "the registrar granted no time", now);
                    return;
                }
                self.events
                    .push_back(RegistrationEvent::Registered { expires: granted });
                self.next_attempt = Some(now + refresh_after(granted));
            }
            401 | 407 => {
                let proxy = response.status == 407;
                let header = if proxy {
                    "Proxy-Authenticate"
                } else {
                    "WWW-Authenticate"
                };
                let challenge = match Challenge::pick(
                    response
                        .headers
                        .iter()
                        .filter(|(n, _)| *n == header)
                        .map(|(_, v)| v),
                ) {
                    Ok(challenge) => challenge,
                    Err(e) => {
                        return self.fail(
                            Some(response.status),
                            &format!("cannot answer the challenge: {e}"),
                            now,
                        );
                    }
                };
                // A second rejection of answered credentials is final, unless the nonce was stale.
                if self.answered && !challenge.stale {
                    self.answered = false;
                    self.challenge = None;
                    return self.fail(Some(response.status), "credentials rejected", now);
                }
                self.answered = true;
                self.challenge = Some((challenge, proxy, 0));
                self.send(now, entropy);
            }
            423 => {
                let min = response
                    .headers
                    .get("Min-Expires")
                    .and_then(|v| v.trim().parse::<u32>().ok());
                match min {
                    Some(min) if min > self.expires => {
                        self.expires = min;
                        self.send(now, entropy);
                    }
                    _ => self.fail(
                        Some(423),
                        "interval too brief and no usable Min-Expires",
                        now,
                    ),
                }
            }
            status => {
                let reason = if response.reason.is_empty() {
                    format!("status {status}")
                } else {
                    response.reason.clone()
                };
                self.fail(Some(status), &reason, now);
            }
        }
    }

    /// Our contact in a 2xx: the one with our instance and reg-id (RFC 5626 §6 lets the
    /// registrar rewrite the URI), else the one with our URI.
    fn our_contact(&self, response: &Response) -> Option<NameAddr> {
        let ours = self.config.contact.to_string();
        let instance = self.config.instance.as_ref().map(|i| format!("<{i}>"));
        let contacts: Vec<NameAddr> = response
            .headers
            .all("Contact")
            .into_iter()
            .flat_map(split_list)
            .filter_map(|c| NameAddr::parse(c).ok())
            .collect();
        // Our URI first: a registrar without outbound may still list an earlier run's contact
        // with the same instance. One with outbound may rewrite the URI (§6), so then by instance.
        if let Some(index) = contacts.iter().position(|c| c.uri.to_string() == ours) {
            return contacts.into_iter().nth(index);
        }
        let outbound = response
            .headers
            .all("Require")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("outbound"));
        let by_instance = instance.filter(|_| outbound).and_then(|instance| {
            contacts.iter().position(|c| {
                c.param("+sip.instance")
                    .is_some_and(|i| i.eq_ignore_ascii_case(&instance))
                    && c.param("reg-id") == Some("1")
            })
        });
        contacts.into_iter().nth(by_instance?)
    }

    fn binding_in(&self, response: &Response) -> Binding {
        if self.config.instance.is_none() {
            return Binding::default();
        }
        let has_tag = |header: &str, tag: &str| {
            response
                .headers
                .all(header)
                .iter()
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(tag))
        };
        let gruu = self
            .our_contact(response)
            .and_then(|c| c.param("pub-gruu").and_then(|g| Uri::parse(g).ok()))
            .filter(|g| {
                g.scheme.eq_ignore_ascii_case("sip") || g.scheme.eq_ignore_ascii_case("sips")
            });
        Binding {
            outbound: has_tag("Require", "outbound"),
            flow_timer: response
                .headers
                .get("Flow-Timer")
                .and_then(|t| t.trim().parse().ok()),
            gruu,
        }
    }

    /// Our contact's `expires` parameter in the 200, else its `Expires` header.
    fn granted_expires(&self, response: &Response) -> Option<u32> {
        self.our_contact(response)
            .and_then(|c| c.param("expires").and_then(|e| e.parse().ok()))
            .or_else(|| {
                response
                    .headers
                    .get("Expires")
                    .and_then(|e| e.trim().parse().ok())
            })
    }

    fn fail(&mut self, status: Option<u16>, reason: &str, now: Instant) {
        if self.goal == Goal::Unregistered {
            // Nothing to retry: report and stop.
            self.events.push_back(RegistrationEvent::Failed {
                status,
                reason: reason.to_owned(),
                retry_in: Duration::ZERO,
            });
            return;
        }
        let retry_in = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.next_attempt = Some(now + retry_in);
        self.events.push_back(RegistrationEvent::Failed {
            status,
            reason: reason.to_owned(),
            retry_in,
        });
    }
}

/// Refresh well before expiry: at 85 % of the granted time, but at least 5 s ahead of it.
fn refresh_after(expires: u32) -> Duration {
    let expires = Duration::from_secs(u64::from(expires));
    let early = expires.mul_f64(0.85);
    early
        .min(expires.saturating_sub(Duration::from_secs(5)))
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests;
