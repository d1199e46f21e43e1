//! Turning bytes into [`Message`]s: whole datagrams (UDP) and framed streams (TCP, TLS).
//! Every failure is a [`ParseError`] naming what was wrong; no input panics (see the fuzz target
//! and the mutation test).

use super::{Headers, Message, Method, NameAddr, Request, Response, Uri, Via};

/// Larger messages are refused: a softphone never needs them and they cost memory.
pub const MAX_MESSAGE: usize = 65_535;
const MAX_HEADERS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("message head is not UTF-8")]
    Encoding,
    #[error("no blank line ends the header section")]
    Unterminated,
    #[error("bad start line: {0:?}")]
    StartLine(String),
    #[error("bad header line: {0:?}")]
    Header(String),
    #[error("too many header lines")]
    TooManyHeaders,
    #[error("missing or invalid {0} header")]
    MissingHeader(&'static str),
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMismatch { cseq: String, method: String },
    #[error("bad Content-Length")]
    ContentLength,
    #[error("body shorter than Content-Length")]
    TruncatedBody,
    #[error("bad URI: {0:?}")]
    Uri(String),
    #[error("bad Via: {0:?}")]
    Via(String),
}

/// What a stream yields: a message, or a RFC 5626 keepalive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Message(Message),
    /// A double CRLF ping; answer with a single CRLF.
    Ping,
    /// A single CRLF pong.
    Pong,
}

/// Parses one UDP datagram. A missing Content-Length means the rest of the datagram is the body.
pub fn parse_datagram(bytes: &[u8]) -> Result<Message, ParseError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    let trimmed = trim_leading_crlf(bytes);
    if trimmed.is_empty() {
        return Err(ParseError::Empty);
    }
    let head_end = find_head_end(trimmed).ok_or(ParseError::Unterminated)?;
    let (head, body_start) = (&trimmed[..head_end.0], head_end.1);
    let (mut message, content_length) = parse_head(head)?;
    let rest = &trimmed[body_start..];
    let body = match content_length {
        Some(len) if len > rest.len() => return Err(ParseError::TruncatedBody),
        Some(len) => &rest[..len],
        None => rest,
    };
    set_body(&mut message, body.to_vec());
    Ok(message)
}

/// Parses the next frame from a stream buffer. `Ok(None)` means "need more bytes"; otherwise
/// returns the frame and how many bytes it used. On a stream, Content-Length is required.
pub fn parse_stream(buffer: &[u8]) -> Result<Option<(Parsed, usize)>, ParseError> {
    if buffer.starts_with(b"\r\n\r\n") {
        return Ok(Some((Parsed::Ping, 4)));
    }
    if buffer.starts_with(b"\r\n") {
        if buffer.len() < 4 && b"\r\n\r\n".starts_with(buffer) {
            // Could be the start of a ping; a lone pong is at least recognisable once more arrives.
            if buffer.len() == 2 {
                return Ok(Some((Parsed::Pong, 2)));
            }
            return Ok(None);
        }
        return Ok(Some((Parsed::Pong, 2)));
    }
    let Some((head_len, body_start)) = find_head_end(buffer) else {
        if buffer.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    let (mut message, content_length) = parse_head(&buffer[..head_len])?;
    let length = content_length.ok_or(ParseError::MissingHeader("Content-Length"))?;
    let end = body_start
        .checked_add(length)
        .ok_or(ParseError::ContentLength)?;
    if end > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    if buffer.len() < end {
        return Ok(None);
    }
    set_body(&mut message, buffer[body_start..end].to_vec());
    Ok(Some((Parsed::Message(message), end)))
}

fn trim_leading_crlf(mut bytes: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

/// (end of head, start of body): after CRLFCRLF, or LFLF from lenient peers.
fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, at + 4));
    let lf = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|at| (at, at + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn set_body(message: &mut Message, body: Vec<u8>) {
    match message {
        Message::Request(r) => r.body = body,
        Message::Response(r) => r.body = body,
    }
}

fn parse_head(head: &[u8]) -> Result<(Message, Option<usize>), ParseError> {
    let head = std::str::from_utf8(head).map_err(|_| ParseError::Encoding)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().ok_or(ParseError::Empty)?;
    if start.contains(['\r', '\0']) {
        return Err(ParseError::StartLine(start.chars().take(80).collect()));
    }
    let mut headers = Headers::new();
    let mut current: Option<(String, String)> = None;
    let mut count = 0;
    for line in lines {
        if line.contains(['\r', '\0']) {
            // A bare CR inside the header section: not SIP (RFC 3261 §7.3.1 allows CRLF only);
            // NUL is not text. Neither could be sent on again.
            return Err(ParseError::Header(line.chars().take(80).collect()));
        }
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header (RFC 3261 §7.3.1).
            let (_, value) = current
                .as_mut()
                .ok_or_else(|| ParseError::Header(line.chars().take(80).collect()))?;
            let more = line.trim();
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(more);
            }
            continue;
        }
        if let Some((name, value)) = current.take() {
            headers.push(&name, value);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ParseError::Header(line.chars().take(80).collect()))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c))
        {
            return Err(ParseError::Header(line.chars().take(80).collect()));
        }
        count += 1;
        if count > MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        current = Some((name.to_owned(), value.trim().to_owned()));
    }
    if let Some((name, value)) = current {
        headers.push(&name, value);
    }
    let content_length = match headers.get("Content-Length") {
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|_| ParseError::ContentLength)?,
        ),
        None => None,
    };
    // Framing, not content: serialization derives it from the body.
    headers.remove("Content-Length");
    let message = parse_start(start, headers)?;
    check_required(&message)?;
    Ok((message, content_length))
}

fn parse_start(line: &str, headers: Headers) -> Result<Message, ParseError> {
    let bad = || ParseError::StartLine(line.chars().take(80).collect());
    if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let status: u16 = code.parse().map_err(|_| bad())?;
        if !(100..=699).contains(&status) {
            return Err(bad());
        }
        return Ok(Message::Response(Response {
            status,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        }));
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some("SIP/2.0"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(bad());
    }
    Ok(Message::Request(Request {
        method: Method::parse(method),
        uri: Uri::parse(uri)?,
        headers,
        body: Vec::new(),
    }))
}

/// The headers every transaction and dialog relies on (RFC 3261 §8.1.1).
fn check_required(message: &Message) -> Result<(), ParseError> {
    let headers = message.headers();
    let via = headers.all("Via");
    let top = via.first().ok_or(ParseError::MissingHeader("Via"))?;
    Via::parse(top)?;
    for name in ["From", "To"] {
        let value = headers
            .get(name)
            .ok_or(ParseError::MissingHeader(if name == "From" {
                "From"
            } else {
                "To"
            }))?;
        NameAddr::parse(value)?;
    }
    if message.call_id().trim().is_empty() {
        return Err(ParseError::MissingHeader("Call-ID"));
    }
    let cseq = message.cseq().ok_or(ParseError::MissingHeader("CSeq"))?;
    if let Message::Request(request) = message {
        // ACK and CANCEL carry the INVITE's number with their own method; all must match.
        if cseq.method != request.method {
            return Err(ParseError::CSeqMismatch {
                cseq: cseq.method.to_string(),
                method: request.method.to_string(),
            });
        }
    }
    Ok(())
}
