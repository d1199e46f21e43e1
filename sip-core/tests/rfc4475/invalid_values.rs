//! RFC 4475 §3.1.2.11–§3.1.2.19, invalid values, and three §3.3 messages that are syntax too:
//! URI headers, dates, addresses, versions, methods, status codes, missing and repeated headers.
//! Each is refused, or parses and is detectably invalid, as the table in `main.rs` records; a
//! refused request is answered with 400 when a response can be built.

use sip_core::message::{NameAddr, ParseError, bad_request, parse_datagram};

use super::{SDP_192_0_2_1, answers, expand, refused, request, sdp, valid};

/// 3.1.2.11: escaped headers in the Request-URI. Accepted, the headers dropped: the RFC allows
/// ignoring them, and they must never become headers.
#[test]
fn escruri_escaped_headers_in_the_request_uri() {
    let text = r#"
INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=341518
Max-Forwards: 7
Contact: <sip:caller@host39923.example.net>
Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5
CSeq: 149209342 INVITE
Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw
Content-Type: application/sdp
Content-Length: 150
"#
    .to_owned()
        + SDP_192_0_2_1;
    let message = valid(&expand(&text));
    assert_eq!(request(&message).uri.to_string(), "sip:user@example.com");
    assert_eq!(message.headers().get("Route"), None);
}

/// 3.1.2.12: a Date in EST. Accepted: a UA does not read Date.
#[test]
fn baddate_invalid_time_zone_in_date_header_field() {
    let text = r#"
INVITE sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=2234923
Max-Forwards: 70
Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234
CSeq: 1392934 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
Date: Fri, 01 Jan 2010 16:00:00 EST
Contact: <sip:caller@host5.example.net>
Content-Type: application/sdp
Content-Length: 150
"#
    .to_owned()
        + &sdp("192.0.2.5");
    let message = valid(&expand(&text));
    assert_eq!(
        message.headers().get("Date"),
        Some("Fri, 01 Jan 2010 16:00:00 EST")
    );
}

/// 3.1.2.13: a Contact URI with a `?` outside `<>`. The message parses (Contact is read on
/// demand); reading that Contact fails.
#[test]
fn regbadct_name_addr_uri_not_enclosed_in_angle_brackets() {
    let text = r#"
REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=998332
Max-Forwards: 70
Call-ID: regbadct.k345asrl3fdbv@10.0.0.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw
Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E
l: 0

"#;
    let message = valid(&expand(text));
    let contact = message.headers().get("Contact").expect("Contact");
    assert!(matches!(
        NameAddr::parse(contact),
        Err(ParseError::Address(_))
    ));
}

/// 3.1.2.14 (badaspec, spaces inside `< >`) and 3.1.2.15 (baddn, `Bell, Alexander` unquoted):
/// name-addr values the RFC lets an element refuse with 400, which we do.
#[test]
fn malformed_addresses_are_refused_and_answered() {
    let badaspec = r#"
OPTIONS sip:user@example.org SIP/2.0
Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234
Max-Forwards: 70
From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423
To: "Watson, Thomas" < sip:t.watson@example.org >
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0

"#;
    let reply = refused(&expand(badaspec), |e| matches!(e, ParseError::Address(_)));
    answers(
        reply,
        "badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3",
        "3923239 OPTIONS",
        "SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234",
    );
    let baddn = r#"
OPTIONS sip:t.watson@example.org SIP/2.0
Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards:      70
From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43
To:      Watson, Thomas <sip:t.watson@example.org>
Call-ID: baddn.31415@c.example.com
Accept: application/sdp
CSeq:    3923239 OPTIONS
l: 0

"#;
    let reply = refused(&expand(baddn), |e| matches!(e, ParseError::Address(_)));
    answers(
        reply,
        "baddn.31415@c.example.com",
        "3923239 OPTIONS",
        "SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw",
    );
}

/// 3.1.2.16: SIP/7.0. Refused, and not answered: we cannot know how that version frames its
/// messages (the RFC suggests 505).
#[test]
fn badvers_unknown_protocol_version() {
    let text = r#"
OPTIONS sip:t.watson@example.org SIP/7.0
Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw
Max-Forwards:     70
From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe
To:      T. Watson <sip:t.watson@example.org>
Call-ID: badvers.31417@c.example.com
CSeq:    1 OPTIONS
l: 0

"#;
    let reply = refused(&expand(text), |e| matches!(e, ParseError::StartLine(_)));
    assert_eq!(reply, None);
}

/// 3.1.2.17 (mismatch01) and 3.1.2.18 (mismatch02): the CSeq method differs from the request
/// method, known or not.
#[test]
fn cseq_method_mismatches_are_refused_and_answered() {
    let mismatch01 = r#"
OPTIONS sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch01.dj0234sxdfl3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
l: 0

"#;
    let reply = refused(
        &expand(mismatch01),
        |e| matches!(e, ParseError::CSeqMismatch { cseq, method } if cseq == "INVITE" && method == "OPTIONS"),
    );
    answers(
        reply,
        "mismatch01.dj0234sxdfl3",
        "8 INVITE",
        "SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw",
    );
    let mismatch02 = r#"
NEWMETHOD sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch02.dj0234sxdfl3
CSeq: 8 INVITE
Contact: <sip:caller@host.example.net>
Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw
Content-Type: application/sdp
l: 138

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.1
c=IN IP4 192.0.2.1
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"#;
    let reply = refused(
        &expand(mismatch02),
        |e| matches!(e, ParseError::CSeqMismatch { method, .. } if method == "NEWMETHOD"),
    );
    answers(
        reply,
        "mismatch02.dj0234sxdfl3",
        "8 INVITE",
        "SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw",
    );
}

/// 3.1.2.19: status 4294967301, which must not wrap into range; a response, never answered.
#[test]
fn bigcode_overlarge_response_code() {
    let text = r#"
SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

"#;
    let reply = refused(&expand(text), |e| matches!(e, ParseError::StartLine(_)));
    assert_eq!(reply, None);
}

/// 3.3.1: no From, To or Call-ID. Refused; a response could not carry them, so none is sent.
#[test]
fn insuf_missing_required_header_fields() {
    let text = r#"
INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: 152
"#
    .to_owned()
        + &sdp("192.0.2.95");
    let reply = refused(&expand(&text), |e| *e == ParseError::MissingHeader("From"));
    assert_eq!(reply, None);
}

/// 3.3.8 (multi01: two each of Call-ID, CSeq, From, To) and 3.3.9 (mcl01: two
/// Content-Lengths): headers that may appear once, twice. Which one counts would be a guess.
#[test]
fn repeated_single_headers_are_refused_and_answered() {
    let multi01 = r#"
INVITE sip:user@company.com SIP/2.0
Contact: <sip:caller@host25.example.net>
Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw
Max-Forwards: 70
CSeq: 5 INVITE
Call-ID: multi01.98asdh@192.0.2.1
CSeq: 59 INVITE
Call-ID: multi01.98asdh@192.0.2.2
From: sip:caller@example.com;tag=3413415
To: sip:user@example.com
To: sip:other@example.net
From: sip:caller@example.net;tag=2923420123
Content-Type: application/sdp
l: 154
Contact: <sip:caller@host36.example.net>
Max-Forwards: 5
"#
    .to_owned()
        + &sdp("192.0.2.25");
    let reply = refused(&expand(&multi01), |e| {
        *e == ParseError::DuplicateHeader("From")
    });
    answers(
        reply,
        "multi01.98asdh@192.0.2.1",
        "5 INVITE",
        "SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw",
    );
    let mcl01 = r#"
OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423
To: sip:user@example.com
From: sip:other@example.net;tag=3923942
Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf
CSeq: 15932 OPTIONS
Content-Length: 13
Max-Forwards: 60
Content-Length: 5
Content-Type: text/plain

There's no way to know how many octets are supposed to be here.
"#;
    let bytes = expand(mcl01);
    let reply = refused(&bytes, |e| {
        *e == ParseError::DuplicateHeader("Content-Length")
    });
    answers(
        reply,
        "mcl01.fhn2323orihawfdoa3o4r52o3irsdf",
        "15932 OPTIONS",
        "SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423",
    );
    assert!(bad_request(&bytes, &ParseError::Empty).is_some());
    assert!(parse_datagram(&bytes).is_err());
}
