//! Answering a request we could not parse with `400 Bad Request` (RFC 3261 §8.2, §18.3; RFC 4475
//! asks it of most of its invalid requests), instead of dropping it in silence: a peer that gets
//! no answer retransmits until its timer expires and never learns why.
//!
//! There is no parsed message to answer, so the response is built from the raw header lines:
//! the Via, From, To, Call-ID and CSeq values are copied as they arrived (folded lines joined),
//! which is what the peer needs to match the response to its transaction (RFC 3261 §8.2.6.2).

use super::lexical::is_token;
use super::parse::{MAX_MESSAGE, ParseError, find_head_end, trim_leading_crlf};
use super::{Headers, Message, NameAddr, Response, canonical_name};

/// Reason phrases are cut here: long enough to name the problem.
const MAX_REASON: usize = 96;

/// The bytes of a `400 Bad Request` answering `bytes`, which failed to parse with `error`; or
/// `None` when no answer is due or possible:
///
/// - the bytes are not a request (a status line, or a start line that does not end in
///   `SIP/2.0`: we cannot know how another version frames its messages);
/// - the request is an ACK, which never gets a response (RFC 3261 §17.1.1.3);
/// - the head is not complete (no blank line), or lacks a Via, From, To, Call-ID or CSeq line,
///   or one of those values cannot be sent back as it came (not UTF-8, a bare CR, a NUL).
///
/// The reason phrase names the problem from `error` alone, never the message's text, and is
/// reduced to plain ASCII; the serializer refuses any copied value that could end its line.
pub fn bad_request(bytes: &[u8], error: &ParseError) -> Option<Vec<u8>> {
    let bytes = trim_leading_crlf(&bytes[..bytes.len().min(MAX_MESSAGE)]);
    let (head_end, _) = find_head_end(bytes)?;
    let head = String::from_utf8_lossy(&bytes[..head_end]);
    let mut lines = unfold(&head).into_iter();
    let method = request_method(&lines.next()?)?;
    if method.eq_ignore_ascii_case("ACK") {
        return None;
    }
    let found = Found::collect(lines);
    let (from, to, call_id, cseq) = (found.from?, found.to?, found.call_id?, found.cseq?);
    let top_via = found.vias.first()?;
    // A CSeq naming ACK would make our response answer an ACK.
    let cseq_method = cseq.split_whitespace().nth(1).unwrap_or_default();
    if cseq_method.eq_ignore_ascii_case("ACK") {
        return None;
    }
    let mut headers = Headers::new();
    for via in &found.vias {
        headers.push("Via", via.as_str());
    }
    headers.push("From", from.as_str());
    headers.push("To", with_tag(&to, &call_id, &cseq, top_via));
    headers.push("Call-ID", call_id.as_str());
    headers.push("CSeq", cseq.as_str());
    if headers.iter().any(|(_, v)| v.contains('\u{fffd}')) {
        // A value that was not UTF-8: what we would send is not what came.
        return None;
    }
    let response = Response {
        status: 400,
        reason: reason(error),
        headers,
        body: Vec::new(),
    };
    Message::Response(response).try_to_bytes().ok()
}

/// The header lines with folded continuations joined by one space (RFC 3261 §7.3.1).
fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match lines.last_mut() {
            Some(previous) if line.starts_with([' ', '\t']) => {
                previous.push(' ');
                previous.push_str(line.trim());
            }
            _ => lines.push(line.to_owned()),
        }
    }
    lines
}

/// The method of a request line, if `line` is one: `Method SP … SIP/2.0`. Stray whitespace
/// (RFC 4475 lwsstart, trws) is what made some requests unparsable, so it is allowed here.
fn request_method(line: &str) -> Option<String> {
    if line
        .as_bytes()
        .get(..4)
        .is_some_and(|v| v.eq_ignore_ascii_case(b"SIP/"))
    {
        return None;
    }
    let (method, rest) = line.split_once(' ')?;
    let (_, version) = rest.trim_end().rsplit_once([' ', '\t'])?;
    (is_token(method) && version.eq_ignore_ascii_case("SIP/2.0")).then(|| method.to_owned())
}

/// The header values a response copies; the first of each single one.
#[derive(Default)]
struct Found {
    vias: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
}

impl Found {
    fn collect(lines: impl Iterator<Item = String>) -> Self {
        let mut found = Self::default();
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim().to_owned();
            if value.is_empty() {
                continue;
            }
            match canonical_name(name).as_str() {
                "Via" => found.vias.push(value),
                "From" => _ = found.from.get_or_insert(value),
                "To" => _ = found.to.get_or_insert(value),
                "Call-ID" => _ = found.call_id.get_or_insert(value),
                "CSeq" => _ = found.cseq.get_or_insert(value),
                _ => {}
            }
        }
        found
    }
}

/// The To value with a tag (RFC 3261 §8.2.6.2: a UAS adds one when the request had none).
/// The tag is derived from the request, so a retransmission gets the same response, as a
/// server transaction would resend it; sans-IO code has no randomness of its own here.
fn with_tag(to: &str, call_id: &str, cseq: &str, top_via: &str) -> String {
    let tagged = match NameAddr::parse(to) {
        Ok(address) => address.tag().is_some(),
        // Unparsable (the very problem, perhaps): look for a tag in the text.
        Err(_) => to.to_ascii_lowercase().split(';').skip(1).any(|p| {
            p.trim_start()
                .strip_prefix("tag")
                .is_some_and(|v| v.trim_start().starts_with('='))
        }),
    };
    if tagged {
        return to.to_owned();
    }
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{call_id}\n{cseq}\n{top_via}").as_bytes(),
    );
    let tag: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{to};tag={tag}")
}

/// `Bad Request (the problem)`, in characters that are safe in a reason phrase anywhere.
fn reason(error: &ParseError) -> String {
    sanitize(&format!("Bad Request ({})", error.problem()))
}

/// Keeps letters, digits, spaces and a little punctuation; drops everything else (controls,
/// line breaks, NUL, quotes, non-ASCII); collapses runs of spaces; cuts to [`MAX_REASON`].
fn sanitize(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || " -_.,:;()'/+".contains(*c))
        .collect();
    let mut out = kept
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    out.truncate(MAX_REASON);
    out
}

#[cfg(test)]
mod tests;
