//! The agent's phone line: account settings turned into a SIP registration, run sans-IO by
//! [`SipLine`] and driven over a [`transport::Transport`] by the phone task.
//!
//! Today the line registers, refreshes, recovers and unregisters. Calls (INVITE dialogs, SDP,
//! RTP media and audio) are the next step; until then call actions say so.

pub mod runtime;
pub mod transport;

use std::net::SocketAddr;
use std::time::Instant;

use sip_core::message::{Message, Response, Uri};
use sip_core::registration::{Entropy, Registration, RegistrationConfig, RegistrationEvent};
use sip_core::transaction::Timers;

use crate::config::{AccountConfig, Transport as Kind};

/// Registration lifetime asked of the registrar.
pub const DEFAULT_EXPIRES: u32 = 600;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LineConfigError {
    #[error("[account] server is empty")]
    NoServer,
    #[error("[account] username is empty")]
    NoUsername,
    #[error("[account] server {0:?} is not host[:port]")]
    BadServer(String),
}

/// Where and how to register, resolved from `[account]`.
#[derive(Debug, Clone)]
pub struct LineConfig {
    pub kind: Kind,
    /// `host` part of the server, used as the SIP domain.
    pub domain: String,
    pub port: u16,
    pub username: String,
    pub password: crate::config::Secret,
}

impl LineConfig {
    pub fn from_account(account: &AccountConfig) -> Result<Self, LineConfigError> {
        let server = account.server.trim();
        if server.is_empty() {
            return Err(LineConfigError::NoServer);
        }
        if account.username.trim().is_empty() {
            return Err(LineConfigError::NoUsername);
        }
        let default_port = match account.transport {
            Kind::Tls | Kind::Wss => 5061,
            _ => 5060,
        };
        let uri = Uri::parse(&format!("sip:{server}")).map_err(|_| LineConfigError::BadServer(server.to_owned()))?;
        if uri.user.is_some() || !uri.params.is_empty() {
            return Err(LineConfigError::BadServer(server.to_owned()));
        }
        Ok(Self {
            kind: account.transport,
            domain: uri.host.clone(),
            port: uri.port.unwrap_or(default_port),
            username: account.username.trim().to_owned(),
            password: account.password.clone(),
        })
    }

    /// The server's socket address. IP literals skip the resolver; names use the system resolver
    /// (A/AAAA; SRV lookup comes with the TLS transport).
    pub async fn resolve(&self) -> std::io::Result<SocketAddr> {
        let host = self.domain.trim_matches(['[', ']']);
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        tokio::net::lookup_host((host, self.port))
            .await?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host} has no address")))
    }
}

/// What the line reports to the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent {
    Registered { extension: String },
    Failed { reason: String },
    Unregistered,
}

/// The sans-IO line: registration now, calls next.
#[derive(Debug)]
pub struct SipLine {
    registration: Registration,
    extension: String,
}

impl SipLine {
    /// Builds the line for a transport bound at `local`.
    pub fn new(config: &LineConfig, local: SocketAddr, transport_token: &str, reliable: bool, entropy: &mut dyn Entropy) -> Self {
        let host = |ip: std::net::IpAddr| match ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let server = if config.domain.contains(':') && !config.domain.starts_with('[') {
            format!("[{}]", config.domain)
        } else {
            config.domain.clone()
        };
        let uri = |text: String| Uri::parse(&text).unwrap_or_else(|_| Uri { scheme: "sip".into(), user: None, host: server.clone(), port: None, params: Vec::new() });
        let sent_by = format!("{}:{}", host(local.ip()), local.port());
        let transport_param = transport_token.to_ascii_lowercase();
        let registration = Registration::new(
            RegistrationConfig {
                registrar: uri(format!("sip:{server}:{}", config.port)),
                aor: uri(format!("sip:{}@{server}", config.username)),
                contact: uri(format!("sip:{}@{sent_by};transport={transport_param}", config.username)),
                username: config.username.clone(),
                password: config.password.expose().to_owned(),
                expires: DEFAULT_EXPIRES,
                transport: transport_token.to_owned(),
                sent_by,
                reliable,
                user_agent: concat!("softphone-bridge/", env!("CARGO_PKG_VERSION")).to_owned(),
                outbound_proxy: None,
            },
            Timers::default(),
            entropy,
        );
        Self { registration, extension: config.username.clone() }
    }

    pub fn start(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        self.registration.register(now, entropy);
    }

    pub fn stop(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        self.registration.unregister(now, entropy);
    }

    pub fn handle_message(&mut self, message: Message, now: Instant, entropy: &mut dyn Entropy) -> Option<Vec<u8>> {
        match message {
            Message::Response(response) if self.registration.matches(&response) => {
                self.registration.handle_response(response, now, entropy);
                None
            }
            Message::Response(_) => None,
            // Requests to the line (OPTIONS pings, INVITEs) get a stateless answer until calls land.
            Message::Request(request) => {
                let status = match request.method {
                    sip_core::Method::Options => 200,
                    sip_core::Method::Ack => return None,
                    _ => 480,
                };
                let mut response = Response::to_request(&request, status, Some("sb"));
                if status == 200 {
                    response.headers.push("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS");
                }
                Some(Message::Response(response).to_bytes())
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        self.registration.handle_timeout(now, entropy);
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.registration.poll_transmit()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.registration.poll_timeout()
    }

    pub fn poll_event(&mut self) -> Option<LineEvent> {
        Some(match self.registration.poll_event()? {
            RegistrationEvent::Registered { .. } => LineEvent::Registered { extension: self.extension.clone() },
            RegistrationEvent::Failed { status, reason, retry_in } => LineEvent::Failed {
                reason: match status {
                    Some(code) => format!("{code} {reason}; retrying in {} s", retry_in.as_secs()),
                    None => format!("{reason}; retrying in {} s", retry_in.as_secs()),
                },
            },
            RegistrationEvent::Unregistered => LineEvent::Unregistered,
        })
    }
}

/// Random tokens from the OS generator.
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn token(&mut self) -> String {
        crate::run::random_hex(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(server: &str) -> AccountConfig {
        AccountConfig { server: server.into(), username: "1001".into(), ..AccountConfig::default() }
    }

    #[test]
    fn server_forms() {
        let c = LineConfig::from_account(&account("127.0.0.1:5070")).expect("valid");
        assert_eq!((c.domain.as_str(), c.port), ("127.0.0.1", 5070));
        let c = LineConfig::from_account(&account("pbx.example.com")).expect("valid");
        assert_eq!((c.domain.as_str(), c.port), ("pbx.example.com", 5060));
        let tls = AccountConfig { transport: Kind::Tls, ..account("pbx.example.com") };
        assert_eq!(LineConfig::from_account(&tls).map(|c| c.port), Ok(5061));
        assert_eq!(LineConfig::from_account(&account("")).err(), Some(LineConfigError::NoServer));
        assert!(matches!(LineConfig::from_account(&account("user@pbx")), Err(LineConfigError::BadServer(_))));
        assert!(matches!(LineConfig::from_account(&account("pbx:port")), Err(LineConfigError::BadServer(_))));
    }
}
