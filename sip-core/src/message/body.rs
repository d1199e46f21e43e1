//! What a request's body holds for a call: its SDP, alone or as one part of a MIME multipart
//! body (RFC 5621: an INVITE may carry SDP beside, say, ISUP or location parts).

/// The body's type: what we take, and why we refuse the rest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// RFC 3261 §21.4.13: answered 415 with `Accept: application/sdp`.
    #[error("unsupported body type {0:?}")]
    Unsupported(String),
    #[error("a multipart body with no SDP part")]
    NoSdpPart,
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
}

/// Multipart bodies nest (`multipart/alternative` inside `multipart/mixed`); deeper is refused.
const MAX_DEPTH: usize = 4;

/// The SDP in a body of type `content_type` (None for an empty body). An absent Content-Type
/// with a body is taken as SDP, as lenient peers send it.
pub fn sdp_of<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<Option<&'a [u8]>, BodyError> {
    if body.is_empty() {
        return Ok(None);
    }
    let Some(content_type) = content_type else {
        return Ok(Some(body));
    };
    find_sdp(content_type, body, 0).map(Some)
}

fn find_sdp<'a>(content_type: &str, body: &'a [u8], depth: usize) -> Result<&'a [u8], BodyError> {
    let (media_type, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    let media_type = media_type.trim().to_ascii_lowercase();
    if media_type == "application/sdp" {
        return Ok(body);
    }
    if !media_type.starts_with("multipart/") {
        return Err(BodyError::Unsupported(media_type));
    }
    if depth >= MAX_DEPTH {
        return Err(BodyError::Malformed("multipart nested too deeply"));
    }
    let boundary = parameter(params, "boundary").ok_or(BodyError::Malformed("no boundary"))?;
    // RFC 2046 §5.1.1: 1 to 70 characters.
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(BodyError::Malformed("bad boundary"));
    }
    let mut found_any = false;
    for part in parts(body, boundary.as_bytes())? {
        found_any = true;
        let (headers, content) = split_part(part)?;
        let header = |wanted: &str| {
            headers
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case(wanted))
                .map(|(_, value)| value.trim())
        };
        // RFC 2045 §5.2: a part without Content-Type is text/plain.
        let part_type = header("Content-Type").unwrap_or("text/plain");
        // RFC 3261 §20.11 / RFC 5621 §9: the session is the `session` disposition (the default
        // for SDP); an `early-session` part (RFC 3959) is not the offer for the call.
        let disposition = header("Content-Disposition").unwrap_or("");
        let (kind, params) = disposition.split_once(';').unwrap_or((disposition, ""));
        let kind = kind.trim();
        if kind.eq_ignore_ascii_case("early-session") {
            continue;
        }
        match find_sdp(part_type, content, depth + 1) {
            Ok(sdp) => return Ok(sdp),
            // A part we cannot handle that the sender marked required refuses the whole body
            // (RFC 5621 §5).
            Err(BodyError::Unsupported(what))
                if parameter(params, "handling")
                    .is_some_and(|h| h.eq_ignore_ascii_case("required")) =>
            {
                return Err(BodyError::Unsupported(what));
            }
            Err(BodyError::Unsupported(_) | BodyError::NoSdpPart) => continue,
            Err(malformed) => return Err(malformed),
        }
    }
    if !found_any {
        return Err(BodyError::Malformed("no parts"));
    }
    Err(BodyError::NoSdpPart)
}

/// A `name=value` parameter of a header value, unquoted; names are case-insensitive.
fn parameter<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|param| {
        let (n, v) = param.split_once('=')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The parts between `--boundary` delimiter lines, up to the `--boundary--` close (RFC 2046
/// §5.1.1). The CRLF before each delimiter belongs to the delimiter, not to the part.
fn parts<'a>(body: &'a [u8], boundary: &[u8]) -> Result<Vec<&'a [u8]>, BodyError> {
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let mut starts = Vec::new();
    let mut at = 0;
    while let Some(found) = find(&body[at..], &delimiter) {
        let position = at + found;
        // A delimiter starts the body or follows a line break.
        if position == 0 || body[..position].ends_with(b"\n") {
            starts.push(position);
            // The close delimiter ends the parts: what follows is epilogue, whatever it says.
            if body[position + delimiter.len()..].starts_with(b"--") {
                break;
            }
        }
        at = position + delimiter.len();
    }
    let mut parts = Vec::new();
    for window in starts.windows(2) {
        let (start, next) = (window[0], window[1]);
        let after = &body[start + delimiter.len()..next];
        if after.starts_with(b"--") {
            break;
        }
        // Skip the rest of the delimiter line (transport padding), keep what follows.
        let Some(line_end) = after.iter().position(|b| *b == b'\n') else {
            return Err(BodyError::Malformed("a delimiter line without an end"));
        };
        let mut content = &after[line_end + 1..];
        content = content.strip_suffix(b"\n").unwrap_or(content);
        content = content.strip_suffix(b"\r").unwrap_or(content);
        parts.push(content);
    }
    let closed = starts
        .last()
        .is_some_and(|last| body[last + delimiter.len()..].starts_with(b"--"));
    if !closed {
        return Err(BodyError::Malformed("no closing delimiter"));
    }
    Ok(parts)
}

/// A part's header section (as text) and its content, split at the first blank line. A part
/// may have no headers at all: it then starts with the blank line.
fn split_part(part: &[u8]) -> Result<(&str, &[u8]), BodyError> {
    let (head, content) = if let Some(rest) = part.strip_prefix(b"\r\n") {
        (&part[..0], rest)
    } else if let Some(rest) = part.strip_prefix(b"\n") {
        (&part[..0], rest)
    } else if let Some(at) = find(part, b"\r\n\r\n") {
        (&part[..at], &part[at + 4..])
    } else if let Some(at) = find(part, b"\n\n") {
        (&part[..at], &part[at + 2..])
    } else {
        return Err(BodyError::Malformed(
            "a part without a blank line after its headers",
        ));
    };
    let head =
        std::str::from_utf8(head).map_err(|_| BodyError::Malformed("part headers are not text"))?;
    Ok((head, content))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";

    fn mixed(boundary: &str, parts: &[(&str, &str)]) -> String {
        let mut body = String::new();
        for (content_type, content) in parts {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Type: {content_type}\r\n\r\n{content}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        body
    }

    #[test]
    fn sdp_alone_or_without_a_type_is_the_sdp() {
        assert_eq!(
            sdp_of(Some("application/sdp"), SDP.as_bytes()),
            Ok(Some(SDP.as_bytes()))
        );
        assert_eq!(
            sdp_of(Some("Application/SDP ; charset=x"), SDP.as_bytes()),
            Ok(Some(SDP.as_bytes()))
        );
        assert_eq!(sdp_of(None, SDP.as_bytes()), Ok(Some(SDP.as_bytes())));
        assert_eq!(sdp_of(Some("application/sdp"), b""), Ok(None));
        assert_eq!(
            sdp_of(Some("text/plain"), b"hello"),
            Err(BodyError::Unsupported("text/plain".into()))
        );
    }

    #[test]
    fn rfc5621_the_sdp_part_of_a_multipart_body_is_found() {
        // RFC 4475 §3.1.1.11 (mpart01) carries SDP beside a binary part; here a plain one.
        let body = mixed(
            "unique-boundary-1",
            &[
                ("application/isup", "\u{1}\u{2}binary"),
                ("application/sdp", SDP),
            ],
        );
        let found = sdp_of(
            Some("multipart/mixed;boundary=unique-boundary-1"),
            body.as_bytes(),
        );
        assert_eq!(
            found,
            Ok(Some(SDP.as_bytes())),
            "the part's content, without the delimiter's CRLF"
        );
        // Quoted boundary, nested alternative, part without headers before it.
        let inner = mixed("in", &[("text/plain", "no"), ("application/sdp", SDP)]);
        let outer = format!(
            "preamble\r\n--out\r\n\r\nheaderless text\r\n--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n{inner}\r\n--out--\r\nepilogue"
        );
        assert_eq!(
            sdp_of(Some("multipart/mixed; boundary=\"out\""), outer.as_bytes()),
            Ok(Some(SDP.as_bytes()))
        );
    }

    #[test]
    fn multipart_without_sdp_or_malformed_is_refused() {
        let body = mixed("b", &[("text/plain", "hello")]);
        assert_eq!(
            sdp_of(Some("multipart/mixed;boundary=b"), body.as_bytes()),
            Err(BodyError::NoSdpPart)
        );
        assert_eq!(
            sdp_of(Some("multipart/mixed"), body.as_bytes()),
            Err(BodyError::Malformed("no boundary"))
        );
        let unclosed = body.replace("--b--", "--b");
        assert!(matches!(
            sdp_of(Some("multipart/mixed;boundary=b"), unclosed.as_bytes()),
            Err(BodyError::Malformed(_))
        ));
        // Nesting beyond the limit.
        let mut nested = SDP.to_owned();
        let mut content_type = "application/sdp".to_owned();
        for level in 0..6 {
            let boundary = format!("b{level}");
            nested = mixed(&boundary, &[(&content_type, &nested)]);
            content_type = format!("multipart/mixed;boundary={boundary}");
        }
        assert_eq!(
            sdp_of(Some(&content_type), nested.as_bytes()),
            Err(BodyError::Malformed("multipart nested too deeply"))
        );
    }

    #[test]
    fn dispositions_and_epilogue() {
        let early = format!(
            "--b\r\nContent-Type: application/sdp\r\nContent-Disposition: early-session\r\n\r\nv=0 early\r\n\
             --b\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--b--\r\n--b looks like a delimiter\r\n"
        );
        assert_eq!(
            sdp_of(Some("multipart/mixed;boundary=b"), early.as_bytes()),
            Ok(Some(SDP.as_bytes())),
            "the session part, not the early one; the epilogue ignored"
        );
        let required = format!(
            "--b\r\nContent-Type: application/x-unknown\r\nContent-Disposition: render;handling=required\r\n\r\nx\r\n\
             --b\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--b--\r\n"
        );
        assert_eq!(
            sdp_of(Some("multipart/mixed;boundary=b"), required.as_bytes()),
            Err(BodyError::Unsupported("application/x-unknown".into()))
        );
    }
}
