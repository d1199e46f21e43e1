//! Where and how the line registers, resolved from `[account]` (or a provisioned account): server
//! forms (`host[:port]`, `wss://host[:port][/path]`), transport, media kind, TURN, expiry.

use std::net::SocketAddr;

use sip_core::message::Uri;

use super::resolve;
use super::transport::tls::{CertFingerprint, FingerprintError};
use crate::config::{AccountConfig, Transport as Kind};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LineConfigError {
    #[error("[account] server is empty")]
    NoServer,
    #[error("[account] username is empty")]
    NoUsername,
    #[error("[account] server {0:?} is not host[:port]")]
    BadServer(String),
    #[error("[account] dns_server {0:?} is not ip:port")]
    BadDnsServer(String),
    #[error(
        "[account] expire_date {0:?} is not a date and time (2026-12-31T18:00:00Z or 2026-12-31 18:00:00)"
    )]
    BadExpireDate(String),
    #[error(
        "[account] tls_fingerprint {text:?}: {reason}; write it as \"sha256:\" and the 64 hex digits `openssl x509 -noout -fingerprint -sha256` prints"
    )]
    BadTlsFingerprint {
        text: String,
        reason: FingerprintError,
    },
    #[error("[account] server {server:?} says {scheme} but transport is {transport:?}")]
    SchemeMismatch {
        server: String,
        scheme: String,
        transport: Kind,
    },
}

/// Where and how to register, resolved from `[account]`.
#[derive(Debug, Clone)]
pub struct LineConfig {
    pub kind: Kind,
    /// `host` part of the server, used as the SIP domain.
    pub domain: String,
    pub port: u16,
    /// The port was given: no SRV lookup (RFC 3263 §4.2).
    pub explicit_port: bool,
    /// A DNS server to ask instead of the system's (SRV, A, AAAA).
    pub dns_server: Option<SocketAddr>,
    pub username: String,
    pub password: crate::config::Secret,
    /// CA bundle for TLS instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// The server's certificate, pinned: when set, the only one TLS and WSS accept.
    pub tls_pin: Option<CertFingerprint>,
    /// The HTTP path of the SIP WebSocket (`ws`, `wss`): `/` unless `server` is a URL with one.
    pub ws_path: String,
    /// Media for calls: WebRTC (ICE, DTLS-SRTP) or plain RTP/SDES.
    pub media: MediaKind,
    /// TURN relay for WebRTC media (the seed's `server` + `turn_port`, with the line's credentials).
    pub turn: Option<TurnServer>,
    /// Send WebRTC media only through the TURN relay.
    pub force_relay: bool,
    /// The provisioned `expire_date`: the session ends then.
    pub expires_at: Option<time::OffsetDateTime>,
    /// Session timers for calls (seconds), from `[media] session_timer`; None: off.
    pub session_interval: Option<u32>,
    /// `[account] backup_servers`: (host, port, port given), tried after `domain`, in order.
    pub backups: Vec<(String, u16, bool)>,
    /// This installation's `+sip.instance` (`urn:uuid:…`, kept in the data folder), which makes
    /// the line a SIP Outbound client (RFC 5626); None: a plain registration.
    pub sip_instance: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Rtp,
    WebRtc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TurnServer {
    /// `turn:host:port?transport=udp`
    pub url: String,
    pub username: String,
    pub credential: crate::config::Secret,
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
        // The seed's webphone takes `server` as a WebSocket URL; so do we (`wss://host[:port][/path]`).
        let (kind, server, ws_path) = match server.split_once("://") {
            Some((scheme, rest)) => {
                let kind = match scheme.to_ascii_lowercase().as_str() {
                    "ws" => Kind::Ws,
                    "wss" => Kind::Wss,
                    _ => return Err(LineConfigError::BadServer(server.to_owned())),
                };
                if account.transport != kind && account.transport != Kind::Udp {
                    return Err(LineConfigError::SchemeMismatch {
                        server: server.to_owned(),
                        scheme: scheme.to_owned(),
                        transport: account.transport,
                    });
                }
                let (host, path) = rest
                    .split_once('/')
                    .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
                (kind, host, path)
            }
            None => (account.transport, server, "/".to_owned()),
        };
        let default_port = match kind {
            Kind::Tls => 5061,
            Kind::Ws => 80,
            Kind::Wss => 443,
            _ => 5060,
        };
        let uri = Uri::parse(&format!("sip:{server}"))
            .map_err(|_| LineConfigError::BadServer(server.to_owned()))?;
        if uri.user.is_some() || !uri.params.is_empty() {
            return Err(LineConfigError::BadServer(server.to_owned()));
        }
        let dns_server = match account.dns_server.as_deref().map(str::trim) {
            Some(text) => Some(
                text.parse::<SocketAddr>()
                    .map_err(|_| LineConfigError::BadDnsServer(text.to_owned()))?,
            ),
            None => None,
        };
        let media = match account.media {
            crate::config::AccountMedia::Rtp => MediaKind::Rtp,
            crate::config::AccountMedia::Webrtc => MediaKind::WebRtc,
            crate::config::AccountMedia::Auto if matches!(kind, Kind::Ws | Kind::Wss) => {
                MediaKind::WebRtc
            }
            crate::config::AccountMedia::Auto => MediaKind::Rtp,
        };
        let expires_at = match account.expire_date.as_deref() {
            Some(text) => Some(
                crate::config::provision::parse_date(text)
                    .map_err(|_| LineConfigError::BadExpireDate(text.to_owned()))?,
            ),
            None => None,
        };
        let tls_pin = match account.tls_fingerprint.as_deref() {
            Some(text) => Some(CertFingerprint::parse(text).map_err(|reason| {
                LineConfigError::BadTlsFingerprint {
                    text: text.to_owned(),
                    reason,
                }
            })?),
            None => None,
        };
        let mut backups = Vec::new();
        for backup in &account.backup_servers {
            let backup = backup.trim();
            let uri = Uri::parse(&format!("sip:{backup}"))
                .map_err(|_| LineConfigError::BadServer(backup.to_owned()))?;
            if uri.user.is_some() || !uri.params.is_empty() || backup.contains("://") {
                return Err(LineConfigError::BadServer(backup.to_owned()));
            }
            backups.push((
                uri.host,
                uri.port.unwrap_or(default_port),
                uri.port.is_some(),
            ));
        }
        let username = account.username.trim().to_owned();
        let turn = account.turn_port.map(|port| TurnServer {
            url: format!("turn:{}:{port}?transport=udp", uri.host),
            username: username.clone(),
            credential: account.password.clone(),
        });
        Ok(Self {
            kind,
            domain: uri.host.clone(),
            port: uri.port.unwrap_or(default_port),
            // WebSocket servers have no SRV records of their own (RFC 7118 §6).
            explicit_port: uri.port.is_some() || matches!(kind, Kind::Ws | Kind::Wss),
            dns_server,
            username,
            password: account.password.clone(),
            ca_file: account.ca_file.clone(),
            tls_pin,
            ws_path,
            media,
            turn,
            force_relay: account.force_relay,
            expires_at,
            session_interval: Some(1800),
            backups,
            sip_instance: None,
        })
    }

    /// The domain of the numbers the agent dials (`sip:1002@domain`): the server's host, with
    /// its port when one was configured for SIP (a WebSocket's port is not a SIP port). The
    /// port matters when someone else dials the URI, as a transferee dials `Refer-To`.
    pub fn dial_domain(&self) -> String {
        let host = if self.domain.contains(':') && !self.domain.starts_with('[') {
            format!("[{}]", self.domain)
        } else {
            self.domain.clone()
        };
        // With the transport, so whoever dials it reaches that port the same way we do.
        match self.kind {
            _ if !self.explicit_port => host,
            Kind::Udp => format!("{host}:{}", self.port),
            Kind::Tcp => format!("{host}:{};transport=tcp", self.port),
            Kind::Tls => format!("{host}:{};transport=tls", self.port),
            Kind::Ws | Kind::Wss => host,
        }
    }

    /// The built-in demo line's service (see `crate::demo`).
    pub fn demo(address: SocketAddr) -> Self {
        Self {
            kind: Kind::Udp,
            domain: address.ip().to_string(),
            port: address.port(),
            explicit_port: true,
            dns_server: None,
            username: crate::demo::AGENT.into(),
            password: crate::config::Secret::default(),
            ca_file: None,
            tls_pin: None,
            ws_path: "/".into(),
            media: MediaKind::Rtp,
            turn: None,
            force_relay: false,
            session_interval: None,
            expires_at: None,
            backups: Vec::new(),
            sip_instance: None,
        }
    }

    /// Every address to try, best first (see [`resolve`]): the server's, then each backup's.
    /// An error only when none has any.
    pub async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        let mut addresses = Vec::new();
        let mut first_error = None;
        let backups = self.backups.iter().map(|(host, port, explicit)| Self {
            domain: host.clone(),
            port: *port,
            explicit_port: *explicit || matches!(self.kind, Kind::Ws | Kind::Wss),
            ..self.clone()
        });
        for server in std::iter::once(self.clone()).chain(backups) {
            match resolve::server_addresses(&server).await {
                Ok(found) => {
                    for address in found {
                        if !addresses.contains(&address) {
                            addresses.push(address);
                        }
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (addresses.is_empty(), first_error) {
            (true, Some(e)) => Err(e),
            _ => Ok(addresses),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(server: &str) -> AccountConfig {
        AccountConfig {
            server: server.into(),
            username: "1001".into(),
            ..AccountConfig::default()
        }
    }

    /// Numbers are dialled at the server's host, with the SIP port when one was given (a
    /// transferee dials our `Refer-To` itself), never a WebSocket's port.
    #[test]
    fn the_dial_domain_carries_a_given_sip_port() {
        let dial = |server: &str| {
            LineConfig::from_account(&account(server))
                .map(|c| c.dial_domain())
                .expect("valid")
        };
        assert_eq!(dial("pbx.example.com"), "pbx.example.com");
        assert_eq!(dial("127.0.0.1:5070"), "127.0.0.1:5070");
        assert_eq!(dial("[::1]:5070"), "[::1]:5070");
        assert_eq!(dial("wss://pbx.example.com:8443/ws"), "pbx.example.com");
        let tls = AccountConfig {
            transport: Kind::Tls,
            ..account("pbx.example.com:5061")
        };
        assert_eq!(
            LineConfig::from_account(&tls).map(|c| c.dial_domain()),
            Ok("pbx.example.com:5061;transport=tls".to_owned())
        );
    }

    #[test]
    fn server_forms() {
        let c = LineConfig::from_account(&account("127.0.0.1:5070")).expect("valid");
        assert_eq!((c.domain.as_str(), c.port), ("127.0.0.1", 5070));
        let c = LineConfig::from_account(&account("pbx.example.com")).expect("valid");
        assert_eq!((c.domain.as_str(), c.port), ("pbx.example.com", 5060));
        let tls = AccountConfig {
            transport: Kind::Tls,
            ..account("pbx.example.com")
        };
        assert_eq!(LineConfig::from_account(&tls).map(|c| c.port), Ok(5061));
        assert_eq!(
            LineConfig::from_account(&account("")).err(),
            Some(LineConfigError::NoServer)
        );
        assert!(matches!(
            LineConfig::from_account(&account("user@pbx")),
            Err(LineConfigError::BadServer(_))
        ));
        assert!(matches!(
            LineConfig::from_account(&account("pbx:port")),
            Err(LineConfigError::BadServer(_))
        ));
    }

    #[test]
    fn websocket_server_forms() {
        let c =
            LineConfig::from_account(&account("wss://webrtc.example.com:7443/ws")).expect("valid");
        assert_eq!(
            (c.kind, c.domain.as_str(), c.port, c.ws_path.as_str()),
            (Kind::Wss, "webrtc.example.com", 7443, "/ws")
        );
        assert_eq!(c.media, MediaKind::WebRtc);
        assert!(c.explicit_port, "no SRV lookup for WebSocket servers");
        let c = LineConfig::from_account(&account("ws://10.0.0.5")).expect("valid");
        assert_eq!((c.kind, c.port, c.ws_path.as_str()), (Kind::Ws, 80, "/"));
        let turn = AccountConfig {
            turn_port: Some(3478),
            ..account("wss://webrtc.example.com")
        };
        let c = LineConfig::from_account(&turn).expect("valid");
        assert_eq!(
            (c.port, c.turn.map(|t| t.url)),
            (
                443,
                Some("turn:webrtc.example.com:3478?transport=udp".to_owned())
            )
        );
        let mismatch = AccountConfig {
            transport: Kind::Tcp,
            ..account("wss://webrtc.example.com")
        };
        assert!(matches!(
            LineConfig::from_account(&mismatch),
            Err(LineConfigError::SchemeMismatch { .. })
        ));
        assert!(matches!(
            LineConfig::from_account(&account("ftp://pbx")),
            Err(LineConfigError::BadServer(_))
        ));
        let expiring = AccountConfig {
            expire_date: Some("someday".into()),
            ..account("wss://webrtc.example.com")
        };
        assert!(matches!(
            LineConfig::from_account(&expiring),
            Err(LineConfigError::BadExpireDate(_))
        ));
    }

    #[test]
    fn tls_fingerprint_is_parsed_or_refused_naming_the_key() {
        let pin = "sha256:21:D1:1D:85:AF:3C:F5:24:1D:03:3C:F1:E8:31:15:61:02:9A:71:3B:6C:77:13:01:9D:BF:9C:5B:49:5D:89:C1";
        let pinned = AccountConfig {
            transport: Kind::Tls,
            tls_fingerprint: Some(pin.into()),
            ..account("pbx.example.com")
        };
        let c = LineConfig::from_account(&pinned).expect("valid");
        assert_eq!(c.tls_pin.map(|p| p.to_string()), Some(pin.to_owned()));
        assert_eq!(
            LineConfig::from_account(&account("pbx.example.com")).map(|c| c.tls_pin),
            Ok(None)
        );
        let bad = AccountConfig {
            tls_fingerprint: Some("sha256:21:D1".into()),
            ..pinned
        };
        let error = LineConfig::from_account(&bad).expect_err("too short");
        assert!(
            matches!(error, LineConfigError::BadTlsFingerprint { .. })
                && error.to_string().contains("[account] tls_fingerprint"),
            "{error}"
        );
    }
}
