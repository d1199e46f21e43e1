//! A message's head: the start line and the header section (RFC 3261 §7, §25), and the
//! headers every transaction needs, checked once here so code above can rely on them.

use super::lexical::{is_token, shorten};
use super::parse::{MAX_HEADERS, ParseError};
use super::{Headers, Message, Method, NameAddr, Request, Response, Uri, Via};

/// Parses the head (without the blank line) into a message with an empty body, and the
/// Content-Length it declared, if any.
pub fn parse_head(head: &[u8]) -> Result<(Message, Option<usize>), ParseError> {
    let head = std::str::from_utf8(head).map_err(|_| ParseError::Encoding)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().ok_or(ParseError::Empty)?;
    if start.contains(['\r', '\0']) {
        return Err(ParseError::StartLine(shorten(start)));
    }
    let mut headers = Headers::new();
    let mut current: Option<(&str, String)> = None;
    let mut count = 0;
    for line in lines {
        if line.contains(['\r', '\0']) {
            // A bare CR inside the header section: not SIP (RFC 3261 §7.3.1 allows CRLF only);
            // NUL is not text. Neither could be sent on again. This also refuses a NUL escaped
            // in a quoted string (RFC 4475 intmeth's display name): a NUL has no business in a
            // header we might log or echo, whatever the grammar allows.
            return Err(ParseError::Header(shorten(line)));
        }
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header (RFC 3261 §7.3.1): the line break
            // and the whitespace around it become one space.
            let (_, value) = current
                .as_mut()
                .ok_or_else(|| ParseError::Header(shorten(line)))?;
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
            headers.push(name, value);
        }
        // `HCOLON = *( SP / HTAB ) ":" SWS`: whitespace may precede the colon (`Via  :`).
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ParseError::Header(shorten(line)))?;
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(ParseError::Header(shorten(line)));
        }
        count += 1;
        if count > MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        current = Some((name, value.trim().to_owned()));
    }
    if let Some((name, value)) = current {
        headers.push(name, value);
    }
    let content_length = content_length(&headers)?;
    // Framing, not content: serialization derives it from the body.
    headers.remove("Content-Length");
    let message = parse_start(start, headers)?;
    check_required(&message)?;
    Ok((message, content_length))
}

/// `Content-Length = 1*DIGIT`. Two of them (RFC 4475 §3.3.9 mcl01) leave the framing to
/// whoever guesses, so they are refused.
fn content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    once(headers, "Content-Length")?;
    match headers.get("Content-Length") {
        // `parse` alone would take `+5`; a negative length (RFC 4475 ncl) fails either way.
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            v.parse().map(Some).map_err(|_| ParseError::ContentLength)
        }
        Some(_) => Err(ParseError::ContentLength),
        None => Ok(None),
    }
}

/// `SIP/2.0`; the literal is case-insensitive in the ABNF (RFC 3261 §25.1).
fn is_sip_2(version: &str) -> bool {
    version.eq_ignore_ascii_case("SIP/2.0")
}

fn parse_start(line: &str, headers: Headers) -> Result<Message, ParseError> {
    let bad = || ParseError::StartLine(shorten(line));
    // `SIP/2.0 ` compared as bytes: slicing the text there could split a character.
    let status_line = line
        .as_bytes()
        .get(..8)
        .is_some_and(|v| v[..7].eq_ignore_ascii_case(b"SIP/2.0") && v[7] == b' ');
    if status_line {
        // Byte 7 is a space, so byte 8 starts a character.
        let rest = &line[8..];
        // `Status-Code SP Reason-Phrase`; the phrase may be empty (RFC 4475 noreason) and is
        // UTF-8 text (unreason). A peer that drops the SP before an empty phrase is let be.
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        // Exactly three digits: `4294967301` (RFC 4475 bigcode) must not wrap into range.
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
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
    // `Method SP Request-URI SP SIP-Version`: one SP each, none before or after (RFC 4475
    // lwsstart, trws), and no LWS inside the URI (lwsruri).
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    // Any token is a method, case and escapes included: `RE%47IST%45R` is not REGISTER and
    // `invite` is not INVITE (RFC 4475 esc02, intmeth).
    if !is_token(method) || !is_sip_2(version) {
        return Err(bad());
    }
    Ok(Message::Request(Request {
        method: Method::parse(method),
        uri: Uri::parse(uri)?,
        headers,
        body: Vec::new(),
    }))
}

/// The headers every transaction and dialog relies on (RFC 3261 §8.1.1), each once, and every
/// Via value well-formed (RFC 4475 badinv01 hides `;;,;,,` in one).
fn check_required(message: &Message) -> Result<(), ParseError> {
    let headers = message.headers();
    let vias = headers.all("Via");
    if vias.is_empty() {
        return Err(ParseError::MissingHeader("Via"));
    }
    for via in vias {
        Via::parse(via)?;
    }
    for name in ["From", "To"] {
        once(headers, name)?;
        let value = headers.get(name).ok_or(ParseError::MissingHeader(name))?;
        NameAddr::parse(value)?;
    }
    once(headers, "Call-ID")?;
    if message.call_id().trim().is_empty() {
        return Err(ParseError::MissingHeader("Call-ID"));
    }
    once(headers, "CSeq")?;
    let cseq = message.cseq().ok_or(ParseError::MissingHeader("CSeq"))?;
    if let Message::Request(request) = message {
        // ACK and CANCEL carry the INVITE's number with their own method; all must match
        // (RFC 4475 mismatch01, mismatch02).
        if cseq.method != request.method {
            return Err(ParseError::CSeqMismatch {
                cseq: cseq.method.to_string(),
                method: request.method.to_string(),
            });
        }
    }
    Ok(())
}

/// Refuses a second header of a kind that may appear once (RFC 3261 §7.3.1: only
/// comma-separated lists may repeat; RFC 4475 §3.3.8 multi01 repeats Call-ID, CSeq, From, To).
fn once(headers: &Headers, name: &'static str) -> Result<(), ParseError> {
    if headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .count()
        > 1
    {
        return Err(ParseError::DuplicateHeader(name));
    }
    Ok(())
}
