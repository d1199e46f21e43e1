//! SIP and tel URIs (RFC 3261 §19.1, RFC 3966).

use std::fmt;

use super::ParseError;
use super::lexical::{param, shorten, split_host_port, uri_params, write_params};

/// `sip:user@host:port;params` (RFC 3261 §19.1). A password in the URI is dropped on parsing:
/// it has no business in a softphone's logs. So are URI headers (`?…`): a UA has no use for
/// them, and RFC 4475 §3.1.2.11 forbids acting on them in a Request-URI.
///
/// The user part and parameters are kept as written: escapes stay escaped (`%00` never becomes
/// a NUL, `sips%3Auser%40example.com` stays one user), so printing the URI gives back the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
}

impl Uri {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Uri(shorten(text));
        let text = text.trim();
        // One token on one line: no whitespace or controls (RFC 4475 lwsruri), and none of the
        // characters that delimit a URI in a header (`<>`, RFC 4475 ltgtruri; quotes).
        if text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | '"'))
        {
            return Err(bad());
        }
        let (scheme, rest) = text.split_once(':').ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
            return Err(bad());
        }
        if scheme == "tel" {
            let rest = rest.split('?').next().unwrap_or_default();
            let (number, params) = split_at_semicolon(rest);
            if number.is_empty() {
                return Err(bad());
            }
            return Ok(Self {
                scheme,
                user: Some(number.to_owned()),
                host: String::new(),
                port: None,
                params: params
                    .map_or(Some(Vec::new()), uri_params)
                    .ok_or_else(bad)?,
            });
        }
        // `@` appears nowhere else in a SIP URI (user, password, host, parameters and headers
        // all exclude it unescaped), so the first one ends the userinfo. The user part may hold
        // `;`, `?`, `/` and `,` (RFC 4475 intmeth, semiuri): splitting at those first would
        // take part of the user for parameters.
        let (userinfo, after) = match rest.split_once('@') {
            Some((userinfo, after)) => (Some(userinfo), after),
            None => (None, rest),
        };
        let user = match userinfo {
            // A user has no `:`; what follows one is the password.
            Some(userinfo) => match userinfo.split(':').next() {
                Some(user) if !user.is_empty() => Some(user.to_owned()),
                _ => return Err(bad()),
            },
            None => None,
        };
        let after = after.split('?').next().unwrap_or_default();
        let (hostport, params) = split_at_semicolon(after);
        let (host, port) = split_host_port(hostport).ok_or_else(bad)?;
        Ok(Self {
            scheme,
            user,
            host: host.to_owned(),
            port,
            params: params
                .map_or(Some(Vec::new()), uri_params)
                .ok_or_else(bad)?,
        })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }

    /// `host:port`, or `host` with no port.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// What precedes the first `;` and what follows it, if there is one (`sip:host;` has an empty
/// parameter, which is malformed, where `sip:host` has none).
fn split_at_semicolon(text: &str) -> (&str, Option<&str>) {
    match text.split_once(';') {
        Some((before, after)) => (before, Some(after)),
        None => (text, None),
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if self.scheme != "tel" {
                f.write_str("@")?;
            }
        }
        f.write_str(&self.host_port())?;
        write_params(f, &self.params)
    }
}
