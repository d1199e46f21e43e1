//! The parser against RFC 4475, "SIP Torture Test Messages": every §3.1.1 message must parse
//! (asserting the fields it exercises, not just success), and every §3.1.2 message must be
//! refused, or parse and be detectably invalid where the RFC allows an element to be liberal.
//! Requests refused at parse are answered with `400 Bad Request` when [`bad_request`] can build
//! one. The messages are written as the RFC writes them (its §2 conventions, expanded by
//! [`expand`]).
//!
//! # Decisions for the invalid messages
//!
//! | RFC 4475 | message | decision | answer |
//! |---|---|---|---|
//! | 3.1.2.1 | badinv01: `;;,;,,` after a Via, `;;;;` after a Contact | refused: `Via` | 400 |
//! | 3.1.2.2 | clerr: Content-Length 9999 over UDP | refused: `TruncatedBody` | 400 |
//! | 3.1.2.3 | ncl: Content-Length -999 | refused: `ContentLength` | 400 |
//! | 3.1.2.4 | scalar02: CSeq past 32 bits, Max-Forwards 300, huge Expires | refused: `MissingHeader("CSeq")` (Max-Forwards and Expires are not read at parse) | 400 |
//! | 3.1.2.5 | scalarlg: a response with a CSeq past 32 bits | refused: `MissingHeader("CSeq")` | none (a response) |
//! | 3.1.2.6 | quotbal: unterminated quote in To | refused: `Address` | 400 |
//! | 3.1.2.7 | ltgtruri: `<>` around the Request-URI | refused: `Uri` | 400 |
//! | 3.1.2.8 | lwsruri: `; lr` inside the Request-URI | refused: `StartLine` | 400 |
//! | 3.1.2.9 | lwsstart: two SPs between start-line elements | refused: `StartLine` | 400 |
//! | 3.1.2.10 | trws: SPs after `SIP/2.0` | refused: `StartLine` | 400 |
//! | 3.1.2.11 | escruri: `?Route=…` in the Request-URI | parsed, the URI headers dropped (the RFC allows ignoring them; they are never acted on) | — |
//! | 3.1.2.12 | baddate: Date in EST | parsed: a UA does not read Date (the RFC allows ignoring it) | — |
//! | 3.1.2.13 | regbadct: Contact with `?` not in `<>` | parsed (Contact is read on demand; a UA is no registrar); detectable: `NameAddr::parse` gives `Address` | — |
//! | 3.1.2.14 | badaspec: `< sip:… >` in To | refused: `Address` | 400 |
//! | 3.1.2.15 | baddn: `Bell, Alexander` unquoted in From and To | refused: `Address` | 400 |
//! | 3.1.2.16 | badvers: `SIP/7.0` | refused: `StartLine` | none: not SIP/2.0, framing unknown (the RFC suggests 505) |
//! | 3.1.2.17 | mismatch01: OPTIONS with `CSeq: 8 INVITE` | refused: `CSeqMismatch` | 400 |
//! | 3.1.2.18 | mismatch02: NEWMETHOD with `CSeq: 8 INVITE` | refused: `CSeqMismatch` | 400 (the RFC prefers 501, allows 400) |
//! | 3.1.2.19 | bigcode: status 4294967301 | refused: `StartLine` | none (a response) |
//! | 3.3.1 | insuf: no From, To, Call-ID, Max-Forwards | refused: `MissingHeader("From")` | none: a response needs From, To and Call-ID |
//! | 3.3.8 | multi01: two each of Call-ID, CSeq, From, To | refused: `DuplicateHeader("From")` | 400 |
//! | 3.3.9 | mcl01: two Content-Lengths | refused: `DuplicateHeader("Content-Length")` | 400 |
//!
//! # Left out or changed
//!
//! - 3.1.1.2 intmeth escapes a NUL in To's display name (`\` then %x00). The parser refuses any
//!   NUL in the head, escaped or not: a NUL has no business in a value we may log or echo. The
//!   message is asserted refused, and a copy with that one byte changed to %x01 is asserted to
//!   parse with everything else the RFC exercises.
//! - 3.1.1.11 mpart01 carries a binary S/MIME part that the RFC gives as a hex dump; here that
//!   part is 256 bytes of every value (NUL, CR, LF, invalid UTF-8 included) and the
//!   Content-Length is computed. What it tests, a binary body behind a text head, is kept.
//! - The rest of §3.2–§3.4 is about transactions and applications, not syntax.

mod invalid_lines;
mod invalid_values;
mod valid_shape;
mod valid_text;

use sip_core::message::{Message, ParseError, bad_request, parse_datagram};
use sip_core::{Request, Response, Via};

/// Expands RFC 4475's conventions (§2) into the bytes on the wire: `<allOneLine>` joins its lines
/// into one, `<repeat count=N>text</repeat>` repeats text, `<hex>…</hex>` is bytes, and every
/// line ends in CRLF. The first line break (after the opening quote) is dropped.
pub fn expand(text: &str) -> Vec<u8> {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let mut joined = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("<allOneLine>\n") {
        joined.push_str(&rest[..at]);
        let inner = &rest[at + "<allOneLine>\n".len()..];
        let end = inner.find("</allOneLine>\n").expect("closed allOneLine");
        joined.push_str(&inner[..end].replace('\n', ""));
        joined.push('\n');
        rest = &inner[end + "</allOneLine>\n".len()..];
    }
    joined.push_str(rest);
    let mut repeated = String::new();
    let mut rest = joined.as_str();
    while let Some(at) = rest.find("<repeat count=") {
        repeated.push_str(&rest[..at]);
        let inner = &rest[at + "<repeat count=".len()..];
        let (count, inner) = inner.split_once('>').expect("repeat count");
        let (piece, after) = inner.split_once("</repeat>").expect("closed repeat");
        repeated.push_str(&piece.repeat(count.parse().expect("a number")));
        rest = after;
    }
    repeated.push_str(rest);
    let text = repeated.replace('\n', "\r\n");
    let mut bytes = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("<hex>") {
        bytes.extend_from_slice(&rest.as_bytes()[..at]);
        let (hex, after) = rest[at + "<hex>".len()..]
            .split_once("</hex>")
            .expect("closed hex");
        bytes.extend(
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits")),
        );
        rest = after;
    }
    bytes.extend_from_slice(rest.as_bytes());
    bytes
}

/// The SDP of the RFC's invalid INVITEs, with their own address in place of 192.0.2.1.
pub fn sdp(address: &str) -> String {
    SDP_192_0_2_1.replace("192.0.2.1\n", &format!("{address}\n"))
}

/// Parses a datagram that must be valid, and checks that it serializes and parses back to
/// the same message (what the daemon would log or resend is what arrived).
pub fn valid(bytes: &[u8]) -> Message {
    let message =
        parse_datagram(bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)));
    let again = parse_datagram(&message.to_bytes()).expect("serialized form parses");
    assert_eq!(again, message, "round trip");
    message
}

/// Which refusal a test expects.
pub type Expected = fn(&ParseError) -> bool;

/// Parses a datagram that must be refused with `expected`, and returns the 400 built for it.
pub fn refused(bytes: &[u8], expected: Expected) -> Option<Vec<u8>> {
    let error = parse_datagram(bytes).expect_err("refused");
    assert!(expected(&error), "unexpected error {error:?}");
    bad_request(bytes, &error)
}

/// Checks that `reply` is a 400 answering `bytes`: same Call-ID, CSeq and top Via.
pub fn answers(reply: Option<Vec<u8>>, call_id: &str, cseq: &str, top_via: &str) {
    let reply = reply.expect("a 400 Bad Request");
    let text = String::from_utf8(reply).expect("UTF-8");
    assert!(text.starts_with("SIP/2.0 400 Bad Request ("), "{text}");
    let header = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("Call-ID"), call_id);
    assert_eq!(header("CSeq"), cseq);
    assert_eq!(header("Via"), top_via);
    assert!(header("To").contains("tag="), "{text}");
}

/// The SDP body most of the RFC's INVITEs carry, with the addresses of §3.1.1.3 (150 octets).
pub const SDP_192_0_2_1: &str = "
v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
";

pub fn request(message: &Message) -> &Request {
    match message {
        Message::Request(request) => request,
        Message::Response(_) => panic!("a request"),
    }
}

pub fn response(message: &Message) -> &Response {
    match message {
        Message::Response(response) => response,
        Message::Request(_) => panic!("a response"),
    }
}

/// (transport, host, branch) of every Via value, in order.
pub fn vias(message: &Message) -> Vec<(String, String, Option<String>)> {
    message
        .headers()
        .all("Via")
        .into_iter()
        .map(|v| {
            let via = Via::parse(v).expect("every Via parses");
            let branch = via.branch().map(str::to_owned);
            (via.transport, via.host, branch)
        })
        .collect()
}

pub fn via(transport: &str, host: &str, branch: Option<&str>) -> (String, String, Option<String>) {
    (transport.into(), host.into(), branch.map(str::to_owned))
}

#[test]
fn expand_follows_the_rfc_conventions() {
    assert_eq!(
        expand(
            "\nA<repeat count=3>ab</repeat>\n<allOneLine>\nx\ny\n</allOneLine>\n<hex>00FF</hex>"
        ),
        b"Aababab\r\nxy\r\n\x00\xff"
    );
}
