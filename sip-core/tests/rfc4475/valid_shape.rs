//! RFC 4475 §3.1.1.7–§3.1.1.13, valid messages of unusual shape: long values, two requests in
//! one datagram, a `;` in a user part, many Vias and transports, a binary body, unusual and
//! empty reason phrases.

use sip_core::message::{MAX_MESSAGE, Method, NameAddr};

use super::{SDP_192_0_2_1, expand, request, response, valid, via, vias};

/// 3.1.1.7: long display names, parameters, tags, Call-ID, header names and 34 Via values in
/// every case and spacing of `Via`, `v`, `V`.
#[test]
fn longreq_long_values_in_header_fields() {
    let mut text = String::from(
        r#"
INVITE sip:user@example.com SIP/2.0
<allOneLine>
To: "I have a user name of <repeat count=10>extreme</repeat> proportion"
<sip:user@example.com:6000;unknownparam1=very<repeat count=20>long</repeat>value;
longparam<repeat count=25>name</repeat>=shortvalue;
very<repeat count=25>long</repeat>ParameterNameWithNoValue>
</allOneLine>
<allOneLine>
F: sip:<repeat count=5>amazinglylongcallername</repeat>@example.net
;tag=12<repeat count=50>982</repeat>424
;unknownheaderparam<repeat count=20>name</repeat>=
unknowheaderparam<repeat count=15>value</repeat>
;unknownValueless<repeat count=10>paramname</repeat>
</allOneLine>
Call-ID: longreq.one<repeat count=20>really</repeat>longcallid
CSeq: 3882340 INVITE
<allOneLine>
Unknown-<repeat count=20>Long</repeat>-Name:
 unknown-<repeat count=20>long</repeat>-value;
 unknown-<repeat count=20>long</repeat>-parameter-name =
 unknown-<repeat count=20>long</repeat>-parameter-value
</allOneLine>
Via: SIP/2.0/TCP sip33.example.com
v: SIP/2.0/TCP sip32.example.com
V: SIP/2.0/TCP sip31.example.com
Via: SIP/2.0/TCP sip30.example.com
ViA: SIP/2.0/TCP sip29.example.com
VIa: SIP/2.0/TCP sip28.example.com
VIA: SIP/2.0/TCP sip27.example.com
via: SIP/2.0/TCP sip26.example.com
viA: SIP/2.0/TCP sip25.example.com
vIa: SIP/2.0/TCP sip24.example.com
vIA: SIP/2.0/TCP sip23.example.com
V :  SIP/2.0/TCP sip22.example.com
v :  SIP/2.0/TCP sip21.example.com
V  : SIP/2.0/TCP sip20.example.com
v  : SIP/2.0/TCP sip19.example.com
Via : SIP/2.0/TCP sip18.example.com
Via  : SIP/2.0/TCP sip17.example.com
"#,
    );
    for n in (1..=16).rev() {
        text.push_str(&format!("Via: SIP/2.0/TCP sip{n}.example.com\n"));
    }
    text.push_str(
        r#"<allOneLine>
Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;
branch=very<repeat count=50>long</repeat>branchvalue
</allOneLine>
Max-Forwards: 70
<allOneLine>
Contact: <sip:<repeat count=5>amazinglylongcallername</repeat>@host5
.example.net>
</allOneLine>
Content-Type: application/sdp
l: 150
"#,
    );
    text.push_str(SDP_192_0_2_1);
    let bytes = expand(&text);
    assert!(
        bytes.len() > 3_000 && bytes.len() < MAX_MESSAGE,
        "{}",
        bytes.len()
    );
    let message = valid(&bytes);
    assert_eq!(request(&message).method, Method::Invite);
    let to = message.to().expect("To");
    assert_eq!(
        to.display,
        Some(format!(
            "I have a user name of {} proportion",
            "extreme".repeat(10)
        ))
    );
    assert_eq!(to.uri.port, Some(6000));
    assert_eq!(
        to.uri.params,
        [
            (
                "unknownparam1".to_owned(),
                Some(format!("very{}value", "long".repeat(20)))
            ),
            (
                format!("longparam{}", "name".repeat(25)),
                Some("shortvalue".into())
            ),
            (
                format!("very{}ParameterNameWithNoValue", "long".repeat(25)),
                None
            ),
        ]
    );
    let from = message.from().expect("From");
    let caller = "amazinglylongcallername".repeat(5);
    assert_eq!(from.uri.user.as_deref(), Some(caller.as_str()));
    assert_eq!(
        from.tag(),
        Some(format!("12{}424", "982".repeat(50)).as_str())
    );
    assert_eq!(
        from.param(&format!("unknownheaderparam{}", "name".repeat(20))),
        Some(format!("unknowheaderparam{}", "value".repeat(15)).as_str())
    );
    assert_eq!(
        message.call_id(),
        format!("longreq.one{}longcallid", "really".repeat(20))
    );
    assert_eq!(message.cseq().map(|c| c.seq), Some(3882340));
    let name = format!("Unknown-{}-Name", "Long".repeat(20));
    let long = "long".repeat(20);
    assert_eq!(
        message.headers().get(&name),
        Some(
            format!(
                "unknown-{long}-value; unknown-{long}-parameter-name = unknown-{long}-parameter-value"
            )
            .as_str()
        )
    );
    let vias = vias(&message);
    assert_eq!(vias.len(), 34);
    assert_eq!(vias[0], via("TCP", "sip33.example.com", None));
    assert_eq!(vias[16], via("TCP", "sip17.example.com", None));
    let branch = format!("very{}branchvalue", "long".repeat(50));
    assert_eq!(vias[33], via("TCP", "host.example.com", Some(&branch)));
    let contact =
        NameAddr::parse(message.headers().get("Contact").expect("Contact")).expect("valid");
    assert_eq!(contact.uri.user, Some(caller));
    assert_eq!(message.body().len(), 150);
}

/// 3.1.1.8: a REGISTER and an INVITE in one UDP datagram: Content-Length ends the first, and
/// the octets after it are ignored.
#[test]
fn dblreq_extra_trailing_octets_in_a_udp_datagram() {
    let text = r#"
REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0


INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: 150

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.15
s=-
c=IN IP4 192.0.2.15
t=0 0
m=audio 49217 RTP/AVP 0 12
m =video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"#;
    let message = valid(&expand(text));
    assert_eq!(request(&message).method, Method::Register);
    assert_eq!(message.call_id(), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
    assert_eq!(message.cseq().map(|c| c.method), Some(Method::Register));
    assert_eq!(
        vias(&message),
        [via("UDP", "192.0.2.125", Some("z9hG4bKkdjuw23492"))]
    );
    assert!(message.body().is_empty(), "the INVITE is not a body");
    assert_eq!(message.headers().all("Via").len(), 1);
}

/// 3.1.1.9: a `;` parameter inside the user part, with an escaped `@`.
#[test]
fn semiuri_semicolon_separated_parameters_in_the_user_part() {
    let text = r#"
OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0

"#;
    let message = valid(&expand(text));
    let options = request(&message);
    assert_eq!(options.method, Method::Options);
    assert_eq!(
        (options.uri.user.as_deref(), options.uri.host.as_str()),
        (Some("user;par=u%40example.net"), "example.com")
    );
    assert!(options.uri.params.is_empty(), "no URI parameters");
    assert_eq!(message.headers().all("Accept").len(), 6);
    assert_eq!(message.call_id(), "semiuri.0ha0isndaksdj");
    assert_eq!(
        vias(&message),
        [via("UDP", "192.0.2.1", Some("z9hG4bKkdjuw"))]
    );
}

/// 3.1.1.10: SCTP, TLS and an unknown transport in Via.
#[test]
fn transports_varied_and_unknown_transport_types() {
    let text = r#"
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0

"#;
    let message = valid(&expand(text));
    assert_eq!(request(&message).method, Method::Options);
    assert_eq!(
        vias(&message),
        [
            via("UDP", "t1.example.com", Some("z9hG4bKkdjuw")),
            via("SCTP", "t2.example.com", Some("z9hG4bKklasjdhf")),
            via("TLS", "t3.example.com", Some("z9hG4bK2980unddj")),
            via("UNKNOWN", "t4.example.com", Some("z9hG4bKasd0f3en")),
            via("TCP", "t5.example.com", Some("z9hG4bK0a9idfnee")),
        ]
    );
    assert_eq!(message.call_id(), "transports.kijh4akdnaqjkwendsasfdj");
}

/// 3.1.1.11: a multipart body with a binary part (see the module docs for the part itself).
#[test]
fn mpart01_multipart_mime_message_with_a_binary_part() {
    let binary: Vec<u8> = (0..=255).collect();
    let mut body = expand(
        r#"
--7a9cbec02ceef655
Content-Type: text/plain
Content-Transfer-Encoding: binary

Hello
--7a9cbec02ceef655
Content-Type: application/octet-stream
Content-Transfer-Encoding: binary

"#,
    );
    body.extend_from_slice(&binary);
    body.extend_from_slice(b"\r\n--7a9cbec02ceef655--\r\n");
    let head = format!(
        r#"
MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..
CSeq: 1 MESSAGE
Content-Transfer-Encoding: binary
Content-Type: multipart/mixed;boundary=7a9cbec02ceef655
Date: Sat, 15 Oct 2005 04:44:56 GMT
User-Agent: SIPimp.org/0.2.5 (curses)
Content-Length: {}

"#,
        body.len()
    );
    let mut bytes = expand(&head);
    bytes.extend_from_slice(&body);
    let message = valid(&bytes);
    assert_eq!(request(&message).method, Method::Message);
    let top = message.top_via().expect("Via");
    assert_eq!(
        (top.transport.as_str(), top.host.as_str(), top.port),
        ("UDP", "127.0.0.1", Some(5070))
    );
    assert_eq!(
        top.branch(),
        Some("z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-")
    );
    assert!(top.has_param("rport"));
    assert_eq!(
        message.call_id(),
        "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA.."
    );
    assert_eq!(message.body(), body, "binary octets kept as they came");
}

/// 3.1.1.12: a reason phrase of UTF-8 text and punctuation.
#[test]
fn unreason_unusual_reason_phrase() {
    let text = format!(
        "{}{}",
        r#"
SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 154
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>
"#,
        SDP_192_0_2_1.replace("192.0.2.1\n", "192.0.2.198\n")
    );
    let message = valid(&expand(&text));
    let ok = response(&message);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.reason, "= 2**3 * 5**2 но сто девяносто девять - простое");
    assert_eq!(
        vias(&message),
        [via("UDP", "192.0.2.198", Some("z9hG4bK1324923"))]
    );
    assert_eq!(
        message.cseq().map(|c| (c.seq, c.method)),
        Some((35, Method::Invite))
    );
    assert_eq!(
        message
            .to()
            .and_then(|t| t.tag().map(str::to_owned))
            .as_deref(),
        Some("2229")
    );
    assert_eq!(message.body().len(), 154);
}

/// 3.1.1.13: an empty reason phrase after the status code's SP (written as `<hex>20</hex>` so
/// no editor strips it).
#[test]
fn noreason_empty_reason_phrase() {
    let text = r#"
SIP/2.0 100<hex>20</hex>
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

"#;
    let bytes = expand(text);
    assert!(bytes.starts_with(b"SIP/2.0 100 \r\n"));
    let message = valid(&bytes);
    let trying = response(&message);
    assert_eq!((trying.status, trying.reason.as_str()), (100, ""));
    assert_eq!(message.call_id(), "noreason.asndj203insdf99223ndf");
    assert_eq!(
        vias(&message),
        [via("UDP", "192.0.2.105", Some("z9hG4bK2398ndaoe"))]
    );
}
