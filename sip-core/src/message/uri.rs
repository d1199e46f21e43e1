//! SIP URIs, name-addr values (From, To, Contact) and Via values.

use std::fmt;

use super::ParseError;

/// `sip:user@host:port;params` (RFC 3261 §19.1). A password in the URI is dropped on parsing:
/// it has no business in a softphone's logs.
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
        // No line breaks, NUL or other controls, no spaces: a URI is one token on one line.
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad());
        }
        let (scheme, rest) = text.split_once(':').ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
            return Err(bad());
        }
        // URI headers (`?…`) are not used by a UA; drop them.
        let rest = rest.split('?').next().unwrap_or_default();
        let (userinfo_host, params) = match rest.find(';') {
            Some(at) => (&rest[..at], parse_params(&rest[at + 1..])),
            None => (rest, Vec::new()),
        };
        if scheme == "tel" {
            if userinfo_host.is_empty() {
                return Err(bad());
            }
            return Ok(Self {
                scheme,
                user: Some(userinfo_host.to_owned()),
                host: String::new(),
                port: None,
                params,
            });
        }
        let (user, hostport) = match userinfo_host.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                (
                    if user.is_empty() {
                        None
                    } else {
                        Some(user.to_owned())
                    },
                    hostport,
                )
            }
            None => (None, userinfo_host),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(bad)?;
        if host.is_empty()
            || host
                .chars()
                .any(|c| c.is_whitespace() || c == '<' || c == '>')
        {
            return Err(bad());
        }
        Ok(Self {
            scheme,
            user,
            host: host.to_owned(),
            port,
            params,
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

/// `"Display" <sip:uri>;tag=x` or `sip:uri;tag=x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let text = text.trim();
        if let Some(open) = text.find('<') {
            let close = text[open..]
                .find('>')
                .map(|c| open + c)
                .ok_or_else(|| ParseError::Uri(shorten(text)))?;
            let display = text[..open].trim().trim_matches('"').trim();
            let uri = Uri::parse(&text[open + 1..close])?;
            let rest = text[close + 1..].trim_start();
            let params = rest.strip_prefix(';').map(parse_params).unwrap_or_default();
            let display = if display.is_empty() {
                None
            } else {
                Some(display.to_owned())
            };
            return Ok(Self {
                display,
                uri,
                params,
            });
        }
        // Without angle brackets, parameters after the URI belong to the header (RFC 3261 §20).
        let (uri, params) = match text.find(';') {
            Some(at) => (&text[..at], parse_params(&text[at + 1..])),
            None => (text, Vec::new()),
        };
        Ok(Self {
            display: None,
            uri: Uri::parse(uri)?,
            params,
        })
    }

    pub fn tag(&self) -> Option<&str> {
        param(&self.params, "tag")
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(display) = &self.display {
            write!(f, "\"{}\" ", display.replace('"', ""))?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

/// `SIP/2.0/UDP host:port;branch=z9hG4bK…;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Via(shorten(text));
        let text = text.trim();
        let (protocol, rest) = text.split_once(char::is_whitespace).ok_or_else(bad)?;
        let mut parts = protocol.split('/');
        let (Some(name), Some(version), Some(transport), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if !name.trim().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" {
            return Err(bad());
        }
        let rest = rest.trim();
        let (sent_by, params) = match rest.find(';') {
            Some(at) => (rest[..at].trim(), parse_params(&rest[at + 1..])),
            None => (rest, Vec::new()),
        };
        let (host, port) = split_host_port(sent_by).ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            transport: transport.trim().to_ascii_uppercase(),
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

fn param<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref().unwrap_or(""))
}

fn parse_params(text: &str) -> Vec<(String, Option<String>)> {
    text.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (
                n.trim().to_owned(),
                Some(v.trim().trim_matches('"').to_owned()),
            ),
            None => (p.to_owned(), None),
        })
        .collect()
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &[(String, Option<String>)]) -> fmt::Result {
    for (name, value) in params {
        match value {
            Some(v) => write!(f, ";{name}={v}")?,
            None => write!(f, ";{name}")?,
        }
    }
    Ok(())
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    if text.starts_with('[') {
        let end = text.find(']')?;
        let host = &text[..=end];
        return match &text[end + 1..] {
            "" => Some((host, None)),
            rest => Some((host, Some(rest.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((text, None)),
    }
}

/// Splits a header value at commas that are outside quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(value[start.min(value.len())..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}
