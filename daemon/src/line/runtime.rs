//! The I/O half of the line: owns the transport and the sans-IO [`SipLine`], connects and
//! reconnects with back-off, sends keepalives, and turns bytes and timers into line events.
//! The phone task owns one of these and polls it in its single loop.

use std::collections::VecDeque;
use std::future::pending;
use std::time::{Duration, Instant};

use super::transport::{Inbound, Transport, TransportError};
use super::{LineConfig, LineEvent, OsEntropy, SipLine};

const KEEPALIVE_EVERY: Duration = Duration::from_secs(25);
const FIRST_RECONNECT: Duration = Duration::from_secs(1);
const MAX_RECONNECT: Duration = Duration::from_secs(60);

pub struct LineRuntime {
    config: LineConfig,
    transport: Option<Transport>,
    sip: Option<SipLine>,
    entropy: OsEntropy,
    connect_at: Option<Instant>,
    backoff: Duration,
    keepalive_at: Option<Instant>,
    stopping: bool,
    events: VecDeque<LineEvent>,
}

impl LineRuntime {
    pub fn new(config: LineConfig, now: Instant) -> Self {
        Self {
            config,
            transport: None,
            sip: None,
            entropy: OsEntropy,
            connect_at: Some(now),
            backoff: FIRST_RECONNECT,
            keepalive_at: None,
            stopping: false,
            events: VecDeque::new(),
        }
    }

    /// Waits for the next inbound item; never resolves while there is no transport.
    pub async fn recv(&mut self) -> Result<Inbound, TransportError> {
        match &mut self.transport {
            Some(transport) => transport.recv().await,
            None => pending().await,
        }
    }

    pub fn next_wake(&self) -> Option<Instant> {
        let sip = self.sip.as_ref().and_then(SipLine::poll_timeout);
        [sip, self.connect_at, self.keepalive_at].into_iter().flatten().min()
    }

    pub async fn on_timer(&mut self, now: Instant) {
        if self.connect_at.is_some_and(|at| now >= at) {
            self.connect_at = None;
            self.connect(now).await;
        }
        if self.keepalive_at.is_some_and(|at| now >= at) {
            self.keepalive_at = Some(now + KEEPALIVE_EVERY);
            if let Some(transport) = &mut self.transport
                && let Err(e) = transport.keepalive().await
            {
                self.lost(&e, now);
            }
        }
        if let Some(sip) = &mut self.sip {
            sip.handle_timeout(now, &mut self.entropy);
        }
        self.flush(now).await;
    }

    pub async fn on_inbound(&mut self, inbound: Result<Inbound, TransportError>, now: Instant) {
        match inbound {
            Ok(Inbound::Message(message)) => {
                let reply = self.sip.as_mut().and_then(|sip| sip.handle_message(message, now, &mut self.entropy));
                if let (Some(reply), Some(transport)) = (reply, &mut self.transport)
                    && let Err(e) = transport.send(&reply).await
                {
                    self.lost(&e, now);
                }
            }
            Ok(Inbound::Garbage(e)) => tracing::warn!("dropped a malformed SIP message: {e}"),
            Ok(Inbound::KeepAlive) => {}
            Err(e) => self.lost(&e, now),
        }
        self.flush(now).await;
    }

    /// Starts unregistering; [`Self::is_stopped`] tells when done.
    pub async fn stop(&mut self, now: Instant) {
        self.stopping = true;
        self.connect_at = None;
        match &mut self.sip {
            Some(sip) if self.transport.is_some() => sip.stop(now, &mut self.entropy),
            _ => self.sip = None,
        }
        self.flush(now).await;
    }

    pub fn is_stopped(&self) -> bool {
        self.stopping && self.sip.is_none()
    }

    pub fn poll_event(&mut self) -> Option<LineEvent> {
        if let Some(sip) = &mut self.sip {
            while let Some(event) = sip.poll_event() {
                if event == LineEvent::Unregistered && self.stopping {
                    self.events.push_back(event);
                    self.sip = None;
                    break;
                }
                self.events.push_back(event);
            }
        }
        self.events.pop_front()
    }

    async fn connect(&mut self, now: Instant) {
        let connected = async {
            let peer = self.config.resolve().await.map_err(TransportError::Io)?;
            Transport::connect(self.config.kind, peer).await
        }
        .await;
        match connected {
            Ok(transport) => {
                let local = match transport.local_addr() {
                    Ok(local) => local,
                    Err(e) => return self.lost(&TransportError::Io(e), now),
                };
                tracing::info!(transport = transport.token(), %local, "SIP transport connected");
                let mut sip = SipLine::new(&self.config, local, transport.token(), transport.is_reliable(), &mut self.entropy);
                sip.start(now, &mut self.entropy);
                self.sip = Some(sip);
                self.transport = Some(transport);
                self.keepalive_at = Some(now + KEEPALIVE_EVERY);
                self.backoff = FIRST_RECONNECT;
            }
            Err(e) => self.lost(&e, now),
        }
    }

    /// The transport failed: report, forget the connection, and try again after a back-off.
    fn lost(&mut self, error: &TransportError, now: Instant) {
        tracing::warn!("SIP transport: {error}");
        self.transport = None;
        self.sip = None;
        self.keepalive_at = None;
        if self.stopping {
            return;
        }
        self.events.push_back(LineEvent::Failed { reason: format!("{error}; reconnecting in {} s", self.backoff.as_secs()) });
        self.connect_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_RECONNECT);
    }

    async fn flush(&mut self, now: Instant) {
        let (Some(sip), Some(transport)) = (&mut self.sip, &mut self.transport) else { return };
        while let Some(bytes) = sip.poll_transmit() {
            if let Err(e) = transport.send(&bytes).await {
                self.lost(&e, now);
                return;
            }
        }
    }
}
