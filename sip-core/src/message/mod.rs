//! SIP messages: a request or response, its headers in order, and its body.
//!
//! Headers are kept as written (name canonicalized, compact forms expanded) and parsed on demand
//! by typed accessors (`call_id`, `cseq`, `top_via`, `from`, `to`, …). Parsing a message checks the
//! headers every transaction needs, so code above can rely on them.

mod address;
mod bad_request;
mod body;
mod head;
mod lexical;
mod parse;
mod uri;
mod via;

pub use address::NameAddr;
pub use bad_request::bad_request;
pub use body::{BodyError, sdp_of};
pub use lexical::{is_token, split_list};
pub use parse::{MAX_HEADERS, MAX_MESSAGE, ParseError, Parsed, parse_datagram, parse_stream};
pub use uri::Uri;
pub use via::Via;

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Other(String),
}

impl Method {
    pub fn parse(token: &str) -> Self {
        match token {
            "INVITE" => Self::Invite,
            "ACK" => Self::Ack,
            "BYE" => Self::Bye,
            "CANCEL" => Self::Cancel,
            "REGISTER" => Self::Register,
            "OPTIONS" => Self::Options,
            "INFO" => Self::Info,
            "UPDATE" => Self::Update,
            "PRACK" => Self::Prack,
            "SUBSCRIBE" => Self::Subscribe,
            "NOTIFY" => Self::Notify,
            "REFER" => Self::Refer,
            "MESSAGE" => Self::Message,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Register => "REGISTER",
            Self::Options => "OPTIONS",
            Self::Info => "INFO",
            Self::Update => "UPDATE",
            Self::Prack => "PRACK",
            Self::Subscribe => "SUBSCRIBE",
            Self::Notify => "NOTIFY",
            Self::Refer => "REFER",
            Self::Message => "MESSAGE",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header fields in order. Names are stored canonically (`Call-ID`, not `i` or `call-id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends a header; the name is canonicalized.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((canonical_name(name), value.into()));
    }

    /// The first value of a header. Names compare without regard to case (RFC 3261 §7.3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = canonical_name(name);
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma-separated lists split, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        let name = canonical_name(name);
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
            .flat_map(|(_, v)| split_list(v))
            .collect()
    }

    /// Replaces every value of a header with one.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let canonical = canonical_name(name);
        match self
            .0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&canonical))
        {
            Some(at) => {
                self.0[at].1 = value.into();
                let mut index = 0;
                self.0.retain(|(n, _)| {
                    index += 1;
                    index - 1 == at || !n.eq_ignore_ascii_case(&canonical)
                });
            }
            None => self.0.push((canonical, value.into())),
        }
    }

    pub fn remove(&mut self, name: &str) {
        let name = canonical_name(name);
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Expands compact forms and fixes the case of well-known names; other names keep their case.
pub fn canonical_name(name: &str) -> String {
    let known = [
        ("i", "Call-ID"),
        ("call-id", "Call-ID"),
        ("m", "Contact"),
        ("contact", "Contact"),
        ("e", "Content-Encoding"),
        ("content-encoding", "Content-Encoding"),
        ("l", "Content-Length"),
        ("content-length", "Content-Length"),
        ("c", "Content-Type"),
        ("content-type", "Content-Type"),
        ("f", "From"),
        ("from", "From"),
        ("s", "Subject"),
        ("subject", "Subject"),
        ("k", "Supported"),
        ("supported", "Supported"),
        ("t", "To"),
        ("to", "To"),
        ("v", "Via"),
        ("via", "Via"),
        ("cseq", "CSeq"),
        ("max-forwards", "Max-Forwards"),
        ("expires", "Expires"),
        ("www-authenticate", "WWW-Authenticate"),
        ("proxy-authenticate", "Proxy-Authenticate"),
        ("authorization", "Authorization"),
        ("proxy-authorization", "Proxy-Authorization"),
        ("record-route", "Record-Route"),
        ("route", "Route"),
        ("user-agent", "User-Agent"),
        ("allow", "Allow"),
        ("p-asserted-identity", "P-Asserted-Identity"),
        ("min-expires", "Min-Expires"),
        ("x", "Session-Expires"),
        ("session-expires", "Session-Expires"),
        ("min-se", "Min-SE"),
        ("require", "Require"),
        ("replaces", "Replaces"),
    ];
    let lower = name.trim().to_ascii_lowercase();
    known
        .iter()
        .find(|(k, _)| *k == lower)
        .map_or_else(|| name.trim().to_owned(), |(_, v)| (*v).to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// `CSeq: 42 INVITE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl Headers {
    pub fn call_id(&self) -> &str {
        self.get("Call-ID").unwrap_or_default()
    }

    /// Present and valid in every parsed message (checked by the parser): `1*DIGIT LWS Method`.
    /// A number past 32 bits (RFC 4475 scalar02) or a method that is no token is no CSeq.
    pub fn cseq(&self) -> Option<CSeq> {
        let value = self.get("CSeq")?;
        let (seq, method) = value.trim().split_once([' ', '\t'])?;
        let method = method.trim_start();
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) || !lexical::is_token(method)
        {
            return None;
        }
        Some(CSeq {
            seq: seq.parse().ok()?,
            method: Method::parse(method),
        })
    }

    pub fn top_via(&self) -> Option<Via> {
        Via::parse(self.all("Via").first()?).ok()
    }

    pub fn from(&self) -> Option<NameAddr> {
        NameAddr::parse(self.get("From")?).ok()
    }

    pub fn to(&self) -> Option<NameAddr> {
        NameAddr::parse(self.get("To")?).ok()
    }
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Self::Request(r) => &r.headers,
            Self::Response(r) => &r.headers,
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            Self::Request(r) => &r.body,
            Self::Response(r) => &r.body,
        }
    }

    pub fn call_id(&self) -> &str {
        self.headers().call_id()
    }

    pub fn cseq(&self) -> Option<CSeq> {
        self.headers().cseq()
    }

    pub fn top_via(&self) -> Option<Via> {
        self.headers().top_via()
    }

    pub fn from(&self) -> Option<NameAddr> {
        self.headers().from()
    }

    pub fn to(&self) -> Option<NameAddr> {
        self.headers().to()
    }

    /// Serializes with a correct `Content-Length`; nothing (an empty buffer, which no driver
    /// sends) when a part would carry CR, LF or NUL. See [`Self::try_to_bytes`].
    pub fn to_bytes(&self) -> Vec<u8> {
        self.try_to_bytes().unwrap_or_default()
    }

    /// Serializes, refusing a start line or header that would carry CR, LF or NUL: such a value
    /// would end its line early and let whoever chose it write headers or a whole request of
    /// their own (header injection). The parser never produces one; this guards the builders.
    pub fn try_to_bytes(&self) -> Result<Vec<u8>, SerializeError> {
        match self {
            Self::Request(r) => r.try_to_bytes(),
            Self::Response(r) => r.try_to_bytes(),
        }
    }
}

/// Why a message was not serialized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerializeError {
    #[error("the start line would contain a CR, LF or NUL")]
    StartLine,
    #[error("the {0} header would contain a CR, LF or NUL")]
    Header(String),
}

/// CR, LF and NUL end or cut a line on the wire.
fn breaks_line(text: &str) -> bool {
    text.contains(['\r', '\n', '\0'])
}

impl Request {
    /// Serializes with a correct `Content-Length`; empty when refused (see
    /// [`Message::try_to_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.try_to_bytes().unwrap_or_default()
    }

    pub fn try_to_bytes(&self) -> Result<Vec<u8>, SerializeError> {
        serialize(
            &format!("{} {} SIP/2.0", self.method, self.uri),
            &self.headers,
            &self.body,
        )
    }
}

impl Response {
    /// Serializes with a correct `Content-Length`; empty when refused (see
    /// [`Message::try_to_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.try_to_bytes().unwrap_or_default()
    }

    pub fn try_to_bytes(&self) -> Result<Vec<u8>, SerializeError> {
        serialize(
            &format!("SIP/2.0 {} {}", self.status, self.reason),
            &self.headers,
            &self.body,
        )
    }
}

fn serialize(start_line: &str, headers: &Headers, body: &[u8]) -> Result<Vec<u8>, SerializeError> {
    if breaks_line(start_line) {
        return Err(SerializeError::StartLine);
    }
    let mut out = format!("{start_line}\r\n");
    for (name, value) in headers.iter() {
        if breaks_line(name) || breaks_line(value) || name.contains(':') {
            return Err(SerializeError::Header(
                name.chars().filter(|c| !c.is_control()).take(40).collect(),
            ));
        }
        if name != "Content-Length" {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Ok(bytes)
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Self::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Self::Response(r)
    }
}

/// The standard reason phrase for a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Unknown",
    }
}

impl Response {
    /// A response to `request` (RFC 3261 §8.2.6): copies Via, From, To, Call-ID and CSeq; adds a
    /// To tag when given and the request had none.
    pub fn to_request(request: &Request, status: u16, to_tag: Option<&str>) -> Self {
        let mut headers = Headers::new();
        for via in request.headers.all("Via") {
            headers.push("Via", via);
        }
        if let Some(from) = request.headers.get("From") {
            headers.push("From", from);
        }
        if let Some(to) = request.headers.get("To") {
            let needs_tag =
                to_tag.is_some() && !NameAddr::parse(to).is_ok_and(|n| n.tag().is_some());
            match to_tag {
                Some(tag) if needs_tag => headers.push("To", format!("{to};tag={tag}")),
                _ => headers.push("To", to),
            }
        }
        for name in ["Call-ID", "CSeq"] {
            if let Some(value) = request.headers.get(name) {
                headers.push(name, value);
            }
        }
        Self {
            status,
            reason: reason_phrase(status).to_owned(),
            headers,
            body: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
