use super::*;
use crate::message::{Method, parse_datagram};

const INVITE: &str = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/TCP\r\n proxy.example.com;branch=z9hG4bKproxy\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@127.0.0.1>\r\n\
From: \"Alice, A.\" <sip:alice@127.0.0.1>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33\r\n\
CSeq: 314159 INVITE\r\n\
Content-Length: 0\r\n\r\n";

/// Parses `text`, expecting a failure, and returns the answer built for it.
fn answer(text: &str) -> Option<Vec<u8>> {
    let error = parse_datagram(text.as_bytes()).expect_err("malformed");
    bad_request(text.as_bytes(), &error)
}

#[test]
fn a_request_with_a_bad_header_gets_400_with_its_dialog_headers() {
    assert!(
        parse_datagram(INVITE.as_bytes()).is_ok(),
        "the base is valid"
    );
    let text = INVITE.replace("Max-Forwards: 70", "Max Forwards 70");
    let reply = answer(&text).expect("a 400");
    let Ok(Message::Response(response)) = parse_datagram(&reply) else {
        panic!("the 400 parses: {}", String::from_utf8_lossy(&reply))
    };
    assert_eq!(response.status, 400);
    assert_eq!(response.reason, "Bad Request (malformed header line)");
    let headers = &response.headers;
    assert_eq!(
        headers.all("Via"),
        [
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK776asdhds;rport",
            "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKproxy",
        ],
        "every Via in order, the folded one joined"
    );
    assert_eq!(headers.call_id(), "a84b4c76e66710@pc33");
    let cseq = headers.cseq().expect("CSeq");
    assert_eq!((cseq.seq, cseq.method), (314159, Method::Invite));
    assert_eq!(
        headers.get("From"),
        Some("\"Alice, A.\" <sip:alice@127.0.0.1>;tag=1928301774")
    );
    let to = headers.to().expect("To");
    assert_eq!(to.uri.user.as_deref(), Some("bob"));
    let tag = to.tag().expect("a To tag is added").to_owned();
    assert_eq!(tag.len(), 16);
    assert!(response.body.is_empty());
    assert_eq!(
        answer(&text),
        Some(reply),
        "a retransmission gets the same answer"
    );
}

#[test]
fn a_tagged_to_is_copied_unchanged() {
    let text = INVITE
        .replace(
            "To: Bob <sip:bob@127.0.0.1>",
            "To: Bob <sip:bob@127.0.0.1> ; tag = x1",
        )
        .replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE");
    let reply = answer(&text).expect("a 400");
    let response = parse_datagram(&reply).expect("parses");
    assert_eq!(
        response.headers().get("To"),
        Some("Bob <sip:bob@127.0.0.1> ; tag = x1")
    );
    assert!(
        String::from_utf8_lossy(&reply).starts_with(
            "SIP/2.0 400 Bad Request (CSeq method differs from the request method)\r\n"
        )
    );
}

#[test]
fn responses_acks_and_incomplete_requests_get_no_answer() {
    let bad_header = |text: &str| text.replace("Max-Forwards: 70", "Max Forwards 70");
    let response =
        bad_header(&INVITE.replace("INVITE sip:bob@127.0.0.1:5060 SIP/2.0", "SIP/2.0 200 OK"));
    assert_eq!(answer(&response), None, "never a response to a response");
    let ack = bad_header(
        &INVITE
            .replace("INVITE sip:", "ACK sip:")
            .replace("314159 INVITE", "314159 ACK"),
    );
    assert_eq!(
        answer(&ack),
        None,
        "ACK gets no response (RFC 3261 §17.1.1.3)"
    );
    let ack_cseq = INVITE.replace("314159 INVITE", "314159 ACK");
    assert_eq!(
        answer(&ack_cseq),
        None,
        "nor does a request claiming to be one"
    );
    let other_version = bad_header(&INVITE.replace("5060 SIP/2.0", "5060 SIP/7.0"));
    assert_eq!(
        answer(&other_version),
        None,
        "not SIP/2.0: its framing is unknown"
    );
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        let without: String = bad_header(INVITE)
            .split_inclusive("\r\n")
            .filter(|line| !line.starts_with(&format!("{name}:")) && !line.starts_with(' '))
            .collect();
        assert_eq!(answer(&without), None, "no {name}");
    }
    let unterminated = bad_header(INVITE).replace("\r\n\r\n", "\r\n");
    assert_eq!(
        answer(&unterminated),
        None,
        "no blank line: lines may be cut"
    );
    let not_utf8 = bad_header(INVITE)
        .replace("pc33", "pc\u{fffd}33")
        .replace('\u{fffd}', "\u{0}");
    let mut bytes = not_utf8.into_bytes();
    let at = bytes.iter().position(|b| *b == 0).expect("marker");
    bytes[at] = 0xff;
    let error = parse_datagram(&bytes).expect_err("malformed");
    assert_eq!(
        bad_request(&bytes, &error),
        None,
        "a Call-ID that is not UTF-8"
    );
}

/// Nothing the peer wrote can end a line of ours: a bare CR or a NUL in a copied value makes
/// the serializer refuse, and the reason phrase never carries the peer's text.
#[test]
fn hostile_text_is_never_echoed_raw() {
    for hostile in ["a84b\rInjected: 1", "a84b\0Injected: 1"] {
        let text = INVITE.replace("a84b4c76e66710@pc33", hostile);
        assert_eq!(answer(&text), None, "{hostile:?}");
    }
    let error = ParseError::Header("x\r\nVia: SIP/2.0/UDP evil\0".into());
    let reply = bad_request(
        INVITE
            .replace("Max-Forwards: 70", "Max Forwards 70")
            .as_bytes(),
        &error,
    )
    .expect("a 400");
    let text = String::from_utf8(reply).expect("UTF-8");
    assert!(!text.contains("evil"), "{text}");
    assert_eq!(text.matches("\r\n").count(), text.lines().count(), "{text}");
    let long = format!(
        "Bad\r\nVia: x\0 \"quoted\" \u{7f}ünïcode {}",
        "word ".repeat(40)
    );
    let clean = sanitize(&long);
    assert!(clean.len() <= MAX_REASON);
    assert!(
        clean.chars().all(|c| c.is_ascii_graphic() || c == ' '),
        "{clean:?}"
    );
    assert!(
        clean.starts_with("BadVia: x quoted ncode word"),
        "{clean:?}"
    );
}
