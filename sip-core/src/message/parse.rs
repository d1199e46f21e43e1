//! Turning bytes into [`Message`]s: whole datagrams (UDP) and framed streams (TCP, TLS).
//! Every failure is a [`ParseError`] naming what was wrong; no input panics (see the fuzz target
//! and the mutation test).

use super::Message;
use super::head::parse_head;

/// Larger messages are refused: a softphone never needs them and they cost memory.
pub const MAX_MESSAGE: usize = 65_535;
/// More header lines are refused; a real message has a few dozen.
pub const MAX_HEADERS: usize = 256;

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
    #[error("more than one {0} header")]
    DuplicateHeader(&'static str),
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
    #[error("bad address: {0:?}")]
    Address(String),
}

impl ParseError {
    /// What was wrong, without any of the message's text: fit for a reason phrase sent back to
    /// the peer and for logs (the message's own lines may carry credentials or numbers).
    pub fn problem(&self) -> String {
        match self {
            Self::Empty => "empty message".into(),
            Self::TooLarge => "message too large".into(),
            Self::Encoding => "message head is not UTF-8".into(),
            Self::Unterminated => "no blank line after the headers".into(),
            Self::StartLine(_) => "malformed start line".into(),
            Self::Header(_) => "malformed header line".into(),
            Self::TooManyHeaders => "too many header lines".into(),
            Self::MissingHeader(name) => format!("missing or invalid {name} header"),
            Self::DuplicateHeader(name) => format!("more than one {name} header"),
            Self::CSeqMismatch { .. } => "CSeq method differs from the request method".into(),
            Self::ContentLength => "malformed Content-Length".into(),
            Self::TruncatedBody => "body shorter than Content-Length".into(),
            Self::Uri(_) => "malformed URI".into(),
            Self::Via(_) => "malformed Via header".into(),
            Self::Address(_) => "malformed address".into(),
        }
    }
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

pub(super) fn trim_leading_crlf(mut bytes: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

/// (end of head, start of body): after CRLFCRLF, or LFLF from lenient peers.
pub(super) fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
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
