//! Via values (RFC 3261 §20.42).

use std::fmt;

use super::ParseError;
use super::lexical::{header_params, is_token, param, shorten, split_host_port, write_params};

/// `SIP/2.0/UDP host:port;branch=z9hG4bK…;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Upper case: `UDP`, `TCP`, `TLS`, `WS`, `SCTP`, or any other token (RFC 4475 transports).
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    /// Values as written (see the `lexical` module).
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// One via-parm: `sent-protocol LWS sent-by *(SEMI via-params)`, where the sent-protocol's
    /// slashes may carry LWS on both sides (`SIP  /   2.0 /UDP`, RFC 4475 wsinv).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Via(shorten(text));
        let mut parts = text.splitn(3, '/');
        let (Some(name), Some(version), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if !name.trim().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" {
            return Err(bad());
        }
        let rest = rest.trim_start();
        let (transport, rest) = rest.split_at(rest.find(char::is_whitespace).ok_or_else(bad)?);
        if !is_token(transport) {
            return Err(bad());
        }
        let rest = rest.trim_start();
        let (sent_by, params) = match rest.find(';') {
            Some(at) => (&rest[..at], header_params(&rest[at..]).ok_or_else(bad)?),
            None => (rest, Vec::new()),
        };
        let (host, port) = split_host_port(sent_by.trim_end()).ok_or_else(bad)?;
        Ok(Self {
            transport: transport.to_ascii_uppercase(),
            host: host.to_owned(),
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        param(&self.params, "branch")
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.params
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write_params(f, &self.params)
    }
}
