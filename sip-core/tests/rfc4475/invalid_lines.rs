//! RFC 4475 §3.1.2.1–§3.1.2.10, invalid messages whose fault is in their framing or their lines:
//! separators, lengths, numbers, quotes, request lines. Each is refused with the error that names
//! it, as the table in `main.rs` records, and a refused request is answered with 400.

use sip_core::message::{NameAddr, ParseError};

use super::{Expected, answers, expand, refused, sdp};

/// 3.1.2.1: `;;,;,,` after a Via, `;;;;` after a Contact.
#[test]
fn badinv01_extraneous_header_field_separators() {
    let text = r#"
INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: "Joe" <sip:joe@example.org>;;;;
Content-Length: 152
Content-Type: application/sdp
"#
    .to_owned()
        + &sdp("192.0.2.15");
    let reply = refused(&expand(&text), |e| matches!(e, ParseError::Via(_)));
    answers(
        reply,
        "badinv01.0ha0isndaksdjasdf3234nas",
        "8 INVITE",
        "SIP/2.0/UDP 192.0.2.15;;,;,,",
    );
    assert!(NameAddr::parse(r#""Joe" <sip:joe@example.org>;;;;"#).is_err());
}

/// 3.1.2.2: Content-Length 9999 with a 152-octet body, over UDP.
#[test]
fn clerr_content_length_larger_than_message() {
    let text = r#"
INVITE sip:user@example.com SIP/2.0
Max-Forwards: 80
To: sip:j.user@example.com
From: sip:caller@example.net;tag=93942939o2
Contact: <sip:caller@hungry.example.net>
Call-ID: clerr.0ha0isndaksdjweiafasdk3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523
Content-Type: application/sdp
Content-Length: 9999
"#
    .to_owned()
        + &sdp("192.0.2.155");
    let reply = refused(&expand(&text), |e| *e == ParseError::TruncatedBody);
    answers(
        reply,
        "clerr.0ha0isndaksdjweiafasdk3",
        "8 INVITE",
        "SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523",
    );
}

/// 3.1.2.3: Content-Length -999.
#[test]
fn ncl_negative_content_length() {
    let text = r#"
INVITE sip:user@example.com SIP/2.0
Max-Forwards: 254
To: sip:j.user@example.com
From: sip:caller@example.net;tag=32394234
Call-ID: ncl.0ha0isndaksdj2193423r542w35
CSeq: 0 INVITE
Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw
Contact: <sip:caller@example53.example.net>
Content-Type: application/sdp
Content-Length: -999
"#
    .to_owned()
        + &sdp("192.0.2.53");
    let bytes = expand(&text);
    let reply = refused(&bytes, |e| *e == ParseError::ContentLength);
    answers(
        reply,
        "ncl.0ha0isndaksdj2193423r542w35",
        "0 INVITE",
        "SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw",
    );
    // On a stream the framing is lost: the same error, never a guess.
    assert_eq!(
        sip_core::message::parse_stream(&bytes),
        Err(ParseError::ContentLength)
    );
}

/// 3.1.2.4: a CSeq number past 32 bits (and Max-Forwards 300, an Expires of 10^100, which a
/// UA does not read at parse).
#[test]
fn scalar02_request_scalar_fields_with_overlarge_values() {
    let text = r#"
REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=239232jh3
CSeq: 36893488147419103232 REGISTER
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
Max-Forwards: 300
Expires: 1<repeat count=100>0</repeat>
Contact: <sip:user@host129.example.com>
  ;expires=280297596632815
Content-Length: 0

"#;
    let reply = refused(&expand(text), |e| *e == ParseError::MissingHeader("CSeq"));
    answers(
        reply,
        "scalar02.23o0pd9vanlq3wnrlnewofjas9ui32",
        "36893488147419103232 REGISTER",
        "SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3",
    );
}

/// 3.1.2.5: a response with a CSeq past 32 bits; responses are dropped, never answered.
#[test]
fn scalarlg_response_scalar_fields_with_overlarge_values() {
    let text = r#"
SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
Retry-After: 949302838503028349304023988
Warning: 1812 overture "In Progress"
Content-Length: 0

"#;
    let reply = refused(&expand(text), |e| *e == ParseError::MissingHeader("CSeq"));
    assert_eq!(reply, None);
}

/// 3.1.2.6: an unterminated quote in To's display name.
#[test]
fn quotbal_unterminated_quoted_string_in_display_name() {
    let text = r#"
INVITE sip:user@example.com SIP/2.0
To: "Mr. J. User <sip:j.user@example.com>
From: sip:caller@example.net;tag=93334
Max-Forwards: 10
Call-ID: quotbal.aksdj
Contact: <sip:caller@host59.example.net>
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234
Content-Type: application/sdp
Content-Length: 152
"#
    .to_owned()
        + &sdp("192.0.2.15");
    let reply = refused(&expand(&text), |e| matches!(e, ParseError::Address(_)));
    answers(
        reply,
        "quotbal.aksdj",
        "8 INVITE",
        "SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234",
    );
}

/// The start of the invalid INVITEs of §3.1.2.7–§3.1.2.10 after their request line.
const CALL_HEAD: &str = "To: sip:user@example.com
From: sip:caller@example.net;tag=39291
Max-Forwards: 23
Call-ID: startline.1@192.0.2.5
CSeq: 1 INVITE
Via: SIP/2.0/UDP 192.0.2.5
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 159
";

/// 3.1.2.7 (ltgtruri), 3.1.2.8 (lwsruri), 3.1.2.9 (lwsstart), 3.1.2.10 (trws; the trailing
/// SPs written as hex): request lines the RFC wants answered with 400. The headers are
/// ltgtruri's for all four (the RFC varies only what these tests do not look at).
#[test]
fn malformed_request_lines_are_refused_and_answered() {
    let cases: [(&str, Expected); 4] = [
        ("INVITE <sip:user@example.com> SIP/2.0", |e| {
            matches!(e, ParseError::Uri(_))
        }),
        ("INVITE sip:user@example.com; lr SIP/2.0", |e| {
            matches!(e, ParseError::StartLine(_))
        }),
        ("INVITE  sip:user@example.com  SIP/2.0", |e| {
            matches!(e, ParseError::StartLine(_))
        }),
        (
            "OPTIONS sip:remote-target@example.com SIP/2.0<hex>2020</hex>",
            |e| matches!(e, ParseError::StartLine(_)),
        ),
    ];
    for (line, expected) in cases {
        let body = sdp("192.0.2.5").replace("t=0 0", "t=3149328700 0");
        let cseq = format!("1 {}", line.split(' ').next().unwrap_or_default());
        let head = CALL_HEAD.replace("1 INVITE", &cseq);
        let text = format!("\n{line}\n{head}{body}");
        let reply = refused(&expand(&text), expected);
        answers(
            reply,
            "startline.1@192.0.2.5",
            &cseq,
            "SIP/2.0/UDP 192.0.2.5",
        );
    }
}
