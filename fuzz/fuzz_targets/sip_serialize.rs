//! The serializer never lets a value start a line of its own (header injection, review finding
//! 2): whatever text a builder puts in the request URI's user part, a header value or a header
//! name, `try_to_bytes` either refuses it or emits one line per header built; when that message
//! parses (a header name that is not a token does not), it has exactly the headers built.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_core::message::parse_datagram;
use sip_core::{Headers, Message, Method, Request, Uri};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest).into_owned();
    let mut uri = Uri::parse("sip:1002@127.0.0.1").expect("a constant URI parses");
    let mut headers = Headers::new();
    headers.push("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-fuzz");
    headers.push("From", "<sip:1001@127.0.0.1>;tag=a");
    headers.push("To", "<sip:1002@127.0.0.1>");
    headers.push("Call-ID", "fuzz@127.0.0.1");
    headers.push("CSeq", "1 INVITE");
    match selector % 3 {
        0 => uri.user = Some(text.clone()),
        1 => headers.push("X-Fuzz", text.clone()),
        _ => headers.push(&text, "value"),
    }
    let request = Request {
        method: Method::Invite,
        uri,
        headers,
        body: Vec::new(),
    };
    let Ok(bytes) = request.try_to_bytes() else {
        assert!(request.to_bytes().is_empty(), "a refused message emits nothing");
        return;
    };
    // Whatever was emitted is one request with the headers built, each on its own line.
    let lines = bytes.split(|b| *b == b'\n').count();
    // start line + the headers built (a Content-Length among them is replaced by the real one) +
    // Content-Length + the blank line + the empty rest after it.
    let built = request
        .headers
        .iter()
        .filter(|(n, _)| *n != "Content-Length")
        .count();
    let expected = 1 + built + 1 + 2;
    assert_eq!(lines, expected, "{:?}", String::from_utf8_lossy(&bytes));
    if let Ok(Message::Request(back)) = parse_datagram(&bytes) {
        assert_eq!(back.method, request.method);
        let parsed = back.headers.iter().filter(|(n, _)| *n != "Content-Length").count();
        assert_eq!(parsed, built, "exactly the headers built, none from nowhere");
    }
});
