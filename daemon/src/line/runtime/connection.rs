//! The line's connection to its server, and which server (issue 17). It connects to the first
//! address that answers — the configured server's (SRV priority and weight order), then each
//! backup's — and moves on when the connection drops or the server goes silent (a probe or a
//! REGISTER unanswered). While on a backup it checks the preferred server now and then and
//! returns to it once it answers, never in the middle of a call. Calls that are up survive
//! every move: the `SipLine` is rebound to the new connection.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sip_core::Message;

use super::{FIRST_RECONNECT, KEEPALIVE_EVERY, LineRuntime, MAX_RECONNECT};
use crate::ids::{ConversationId, OsEntropy};
use crate::line::LineEvent;
use crate::line::probe::{ANSWER_WITHIN, Probe};
use crate::line::transport::{Inbound, Target, Transport, TransportError};
use crate::line::{LineConfig, SipLine};

/// How often the server is asked whether it is there (OPTIONS), on a line that can move or
/// reconnect.
pub(super) const PROBE_EVERY: Duration = Duration::from_secs(30);
/// How often the line checks that the machine's address it uses is still the one to use.
const NETWORK_CHECK_EVERY: Duration = Duration::from_secs(2);

/// The first probe after a connect comes sooner: a server that takes packets and never
/// answers is found in seconds, not at the REGISTER's Timer F (32 s).
const FIRST_PROBE_AFTER: Duration = Duration::from_secs(3);
/// How often a line on a backup server checks whether the preferred one answers again.
pub(super) const FAILBACK_EVERY: Duration = Duration::from_secs(30);

/// A failback check's result: the preferred server's connection and address, when it answered.
pub(super) type Found = Option<(Transport, SocketAddr)>;

/// Which server the line uses, and what it will try next.
#[derive(Debug, Default)]
pub(super) struct Servers {
    /// Addresses at the last connect, best first.
    count: usize,
    /// The index (in that list) of the one the line is connected to.
    current: Option<usize>,
    /// Where the next connect starts.
    next: usize,
    pub(super) probe_at: Option<Instant>,
    pub(super) failback_at: Option<Instant>,
    pub(super) network_check_at: Option<Instant>,
    /// The server address of the current connection.
    peer: Option<SocketAddr>,
    /// The machine's address the last connection left from.
    local: Option<IpAddr>,
    /// A failback check is running.
    checking: bool,
}

impl LineRuntime {
    pub(super) async fn connect(&mut self, now: Instant) {
        let peers = match self.config.resolve().await {
            Ok(peers) if !peers.is_empty() => peers,
            Ok(_) => {
                return self.lost(
                    &TransportError::Io(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no server address",
                    )),
                    now,
                );
            }
            Err(e) => return self.lost(&TransportError::Io(e), now),
        };
        let start = self.servers.next % peers.len();
        let order = (start..peers.len()).chain(0..start);
        let mut last = None;
        for index in order {
            match Transport::connect(self.config.kind, target(&self.config, peers[index])).await {
                Ok(transport) => {
                    self.servers.count = peers.len();
                    return self.adopt(transport, index, peers[index], now);
                }
                Err(e) => {
                    tracing::info!(peer = %peers[index], "{e}; trying the next address");
                    last = Some(e);
                }
            }
        }
        let error = last.unwrap_or(TransportError::Closed);
        self.servers.next = 0;
        self.lost(&error, now);
    }

    /// Takes `transport` (connected to address `index`) as the line's connection.
    fn adopt(&mut self, transport: Transport, index: usize, peer: SocketAddr, now: Instant) {
        let local = match transport.local_addr() {
            Ok(local) => local,
            Err(e) => return self.lost(&TransportError::Io(e), now),
        };
        tracing::info!(transport = transport.token(), %local, server = index, "SIP transport connected");
        match &mut self.sip {
            // A reconnect or a move: the line and its calls carry on from the new address,
            // their RTP too when the machine's address changed.
            Some(sip) => {
                // Another server: the GRUU was the old one's (the last connection's server, or
                // the one before the drop).
                if self.servers.peer.is_some_and(|old| old != peer) {
                    sip.forget_gruu();
                }
                let moved: std::collections::HashMap<ConversationId, String> = self
                    .calls
                    .iter_mut()
                    .filter_map(|(conversation, io)| {
                        io.media
                            .as_mut()?
                            .moved_to(local.ip())
                            .map(|sdp| (conversation.clone(), sdp))
                    })
                    .collect();
                sip.rebind(
                    &self.config,
                    local,
                    transport.token(),
                    transport.is_reliable(),
                    &moved,
                    now,
                    &mut self.entropy,
                );
            }
            None => {
                let mut sip = SipLine::new(
                    &self.config,
                    local,
                    transport.token(),
                    transport.is_reliable(),
                    &mut self.entropy,
                );
                sip.start(now, &mut self.entropy);
                self.sip = Some(sip);
            }
        }
        // Probing helps where there is somewhere to go: another server, or a new connection.
        let worth_probing = self.servers.count > 1 || transport.is_reliable();
        self.transport = Some(transport);
        self.keepalive_at = Some(now + KEEPALIVE_EVERY);
        self.backoff = FIRST_RECONNECT;
        self.servers.current = Some(index);
        self.servers.next = index;
        self.servers.probe_at = worth_probing.then_some(now + FIRST_PROBE_AFTER);
        self.servers.failback_at = (index > 0).then_some(now + FAILBACK_EVERY);
        self.servers.peer = Some(peer);
        // However the move was found (the address check, a silent server, a dropped
        // connection), WebRTC calls follow it by restarting ICE.
        if self.servers.local.is_some_and(|old| old != local.ip()) {
            self.restart_ice();
        }
        self.servers.local = Some(local.ip());
        self.servers.network_check_at = Some(now + NETWORK_CHECK_EVERY);
    }

    /// The machine's address changed (a dock, a VPN, a Wi-Fi roam): the one our connection
    /// uses is gone, or the route to the server now leaves from another. Returns (old, new).
    fn network_changed(&self) -> Option<(IpAddr, IpAddr)> {
        let local = self.transport.as_ref()?.local_addr().ok()?.ip();
        let peer = self.servers.peer?;
        let unspecified = match peer {
            SocketAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        // No packet is sent: connecting a UDP socket only asks the kernel for the route.
        let route = std::net::UdpSocket::bind((unspecified, 0))
            .and_then(|probe| {
                probe.connect(peer)?;
                probe.local_addr()
            })
            .ok()
            .map(|a| a.ip());
        match route {
            Some(now) if now != local => Some((local, now)),
            _ if std::net::UdpSocket::bind((local, 0)).is_err() => Some((local, local)),
            _ => None,
        }
    }

    /// Reconnects at once from the machine's new address; calls that are up stay and move
    /// with the line (their RTP announced at the new address by the target refresh).
    fn follow_network(&mut self, old: IpAddr, new: IpAddr, now: Instant) {
        tracing::warn!(%old, %new, "the network changed; reconnecting from the new address");
        self.drop_connection(now);
        self.end_unanswered("the network changed before the call was up");
        self.events.push_back(LineEvent::Failed {
            reason: "the network changed; reconnecting".into(),
        });
        self.backoff = FIRST_RECONNECT;
        self.connect_at = Some(now);
    }

    /// The transport failed: report, forget the connection, and try again after a back-off,
    /// from the next server on (the same one when there is only one). Calls that are up are
    /// kept (issue 17): their media does not need the connection to the proxy, and the line
    /// takes them over to the new connection once it is back (see `SipLine::rebind`); what
    /// they send meanwhile waits in the line's queue. Calls not yet up end. Only a line that
    /// is stopping ends every call here, since it will not reconnect.
    pub(super) fn lost(&mut self, error: &TransportError, now: Instant) {
        tracing::warn!("SIP transport: {error}");
        if let Some(current) = self.drop_connection(now) {
            self.servers.next = current + 1;
        }
        if self.stopping {
            self.end_every_call(&format!("the line dropped: {error}"));
            return;
        }
        self.end_unanswered(&format!("the line dropped before the call was up: {error}"));
        self.events.push_back(LineEvent::Failed {
            reason: format!("{error}; reconnecting in {} s", self.backoff.as_secs()),
        });
        self.connect_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_RECONNECT);
    }

    /// Forgets the connection and everything timed on it; returns the index of the server it
    /// was to. On a stream, what was in flight on it is gone with it (`SipLine::connection_lost`).
    fn drop_connection(&mut self, now: Instant) -> Option<usize> {
        if let Some(sip) = &mut self.sip {
            sip.forget_flow();
            if self.transport.as_ref().is_some_and(Transport::is_reliable) {
                sip.connection_lost(now, &mut self.entropy);
            }
        }
        self.transport = None;
        self.keepalive_at = None;
        self.servers.probe_at = None;
        self.servers.failback_at = None;
        self.servers.network_check_at = None;
        self.servers.current.take()
    }

    /// The server did not answer a probe or a REGISTER: move to the next address at once (or,
    /// with only one, open a new connection to it when the transport has connections).
    pub(super) fn server_silent(&mut self, now: Instant) {
        let Some(current) = self.servers.current else {
            return;
        };
        let reliable = self.transport.as_ref().is_some_and(Transport::is_reliable);
        if self.servers.count < 2 && !reliable {
            // Nowhere to go: the registration retries on its own schedule.
            return;
        }
        tracing::warn!(
            server = current,
            "the SIP server does not answer; moving on"
        );
        self.drop_connection(now);
        self.servers.next = current + 1;
        self.end_unanswered("the SIP server stopped answering before the call was up");
        self.events.push_back(LineEvent::Failed {
            reason: "the SIP server does not answer; trying the next one".into(),
        });
        self.connect_at = Some(now);
    }

    /// Time to ask the server whether it is there, or to see whether the preferred server is
    /// back.
    pub(super) fn on_connection_timers(&mut self, now: Instant) {
        if self.servers.probe_at.is_some_and(|at| now >= at) {
            self.servers.probe_at = Some(now + PROBE_EVERY);
            if let Some(sip) = &mut self.sip {
                sip.probe(now, &mut self.entropy);
            }
        }
        if self.servers.network_check_at.is_some_and(|at| now >= at) {
            self.servers.network_check_at = Some(now + NETWORK_CHECK_EVERY);
            if let Some((old, new)) = self.network_changed() {
                return self.follow_network(old, new, now);
            }
        }
        if self.servers.failback_at.is_some_and(|at| now >= at) {
            self.servers.failback_at = Some(now + FAILBACK_EVERY);
            let busy = self.any_preparing()
                || self
                    .sip
                    .as_ref()
                    .is_some_and(|s| !s.conversations().is_empty());
            if !busy && !self.servers.checking {
                self.servers.checking = true;
                let (config, done) = (self.config.clone(), self.failback.0.clone());
                tokio::spawn(async move {
                    let found = preferred_if_answering(&config).await;
                    let _ = done.send(found);
                });
            }
        }
    }

    /// The failback check's result: the preferred server's connection when it answered.
    pub(super) fn on_failback(&mut self, found: Found, now: Instant) {
        self.servers.checking = false;
        let Some((transport, peer)) = found else {
            return;
        };
        let busy = self.any_preparing()
            || self
                .sip
                .as_ref()
                .is_some_and(|s| !s.conversations().is_empty());
        if busy || self.stopping || self.servers.current == Some(0) {
            // A call started meanwhile (never move in the middle of one), or we are there.
            return;
        }
        tracing::info!("the preferred SIP server answers again; returning to it");
        self.adopt(transport, 0, peer, now);
    }

    /// Ends the calls that are not up yet: they cannot complete without the transactions the
    /// server lost with the connection.
    fn end_unanswered(&mut self, reason: &str) {
        let dropped = self
            .sip
            .as_mut()
            .map(SipLine::drop_unanswered)
            .unwrap_or_default();
        // Their message waiting to be sent again goes too.
        if let Some(bytes) = &self.unsent
            && sip_core::message::parse_datagram(bytes)
                .is_ok_and(|m| dropped.iter().any(|(_, id)| id == m.call_id()))
        {
            self.unsent = None;
        }
        let mut unanswered: Vec<ConversationId> = dropped.into_iter().map(|(c, _)| c).collect();
        for conversation in self.drain_preparing() {
            if !unanswered.contains(&conversation) {
                unanswered.push(conversation);
            }
        }
        for conversation in unanswered {
            if let Some(io) = self.calls.remove(&conversation) {
                // A WebRTC peer connection closes (ICE, TURN allocation) only when stopped.
                tokio::spawn(io.stop());
            }
            self.events.push_back(LineEvent::CallEnded {
                conversation,
                reason: sip_core::call::EndReason::Network {
                    reason: reason.to_owned(),
                },
            });
        }
        if !self.calls.values().any(|io| io.ringing) {
            // Dropping the ringer stops it.
            self.ringer = None;
        }
    }
}

fn target(config: &LineConfig, peer: SocketAddr) -> Target<'_> {
    Target {
        peer,
        server_name: &config.domain,
        ws_path: &config.ws_path,
        ca_file: config.ca_file.as_deref(),
        tls_pin: config.tls_pin,
    }
}

/// A connection to the preferred server when it answers an OPTIONS within [`ANSWER_WITHIN`].
async fn preferred_if_answering(config: &LineConfig) -> Found {
    let peer = *config.resolve().await.ok()?.first()?;
    let mut transport = Transport::connect(config.kind, target(config, peer))
        .await
        .ok()?;
    let local = transport.local_addr().ok()?;
    // Who the line would be on this connection: the OPTIONS says so in its Via and From.
    let from = crate::line::party(config, local, transport.token(), transport.is_reliable());
    let mut probe = Probe::start(
        &crate::line::registrar(config),
        &from,
        Instant::now(),
        &mut OsEntropy,
    );
    while let Some(bytes) = probe.poll_transmit() {
        transport.send(&bytes).await.ok()?;
    }
    let answered = async {
        loop {
            match transport.recv().await {
                Ok(Inbound::Message(Message::Response(response)))
                    if probe.answered_by(&response) =>
                {
                    return;
                }
                Ok(_) => {}
                Err(_) => std::future::pending::<()>().await,
            }
        }
    };
    tokio::time::timeout(ANSWER_WITHIN, answered).await.ok()?;
    Some((transport, peer))
}
