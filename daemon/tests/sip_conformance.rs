//! SIP conformance (issue 18), end to end: requests a proxy would deliver, sent to the real
//! binary by a plain UDP peer on loopback, and the daemon's answers checked on the wire.

mod common;
mod fake_pbx;

use std::time::Duration;

use common::{CRM, Daemon};
use fake_pbx::{FakePbx, Options};

/// A plain-RTP offer (PCMU) from the fake far end.
const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";

/// The daemon's line registered with a fake UDP PBX; `extra`: more config after the account's
/// lines. Returns the PBX, the daemon (kept alive by the caller), a page, and the phone's
/// Contact.
async fn phone_on_fake_pbx(extra: &str) -> (FakePbx, Daemon, common::Client, String) {
    let mut pbx = FakePbx::udp(Options { challenge: false }).await;
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"{}\"\nusername = \"1002\"\npassword = \"pw\"\n{extra}",
        pbx.address
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let contact = pbx.registered_contact().await;
    (pbx, daemon, page, contact)
}

/// RFC 3261 §8.2.2.3: a required extension we lack gets 420 with `Unsupported`; a `mailto:`
/// contact before the SIP one still rings.
#[tokio::test]
async fn require_gets_420_and_a_non_sip_contact_beside_a_sip_one_rings() {
    let (mut pbx, _daemon, mut page, contact) = phone_on_fake_pbx("").await;

    pbx.invite_with(&contact, "UDP", OFFER, "Require: 100rel\r\n", "require-1");
    let refusal = pbx
        .next_matching("SIP/2.0 4", Duration::from_secs(5))
        .await
        .expect("a final refusal");
    assert!(refusal.starts_with("SIP/2.0 420"), "{refusal}");
    assert_eq!(
        fake_pbx::header(&refusal, "Unsupported").as_deref(),
        Some("100rel")
    );

    pbx.invite_with(
        &contact,
        "UDP",
        OFFER,
        "Contact: <mailto:agent@example.com>\r\n",
        "mailto-1",
    );
    assert!(
        pbx.next_matching("SIP/2.0 180", Duration::from_secs(5))
            .await
            .is_some(),
        "the call rings"
    );
    page.incoming_call().await;
}

/// The final response to our INVITE `call_id` (other traffic skipped), within 10 s.
async fn final_response(pbx: &mut FakePbx, call_id: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(response) = pbx.next_matching("SIP/2.0 ", left).await else {
            panic!("no final response to {call_id}");
        };
        let ours = fake_pbx::header(&response, "Call-ID")
            .is_some_and(|id| id == format!("{call_id}@127.0.0.1"));
        let invite = fake_pbx::header(&response, "CSeq").is_some_and(|c| c.ends_with("INVITE"));
        let status = response.get(8..11).unwrap_or("");
        if ours && invite && !status.starts_with('1') {
            return response;
        }
    }
}

/// (Call-ID, Content-Type, extra headers, body, expected status, expected `m=` line prefixes).
type Case<'a> = (&'a str, String, &'a str, String, &'a str, Vec<&'a str>);

fn m_lines(response: &str) -> Vec<&str> {
    response.lines().filter(|l| l.starts_with("m=")).collect()
}

/// Issue 18, end to end with auto-answer: each offer gets the answer the RFCs call for —
/// every stream answered in place (refused ones with port 0), the secure stream chosen of two,
/// session-level sendonly mirrored, unusable offers and Replaces for no dialog refused, the SDP
/// part of a multipart body taken.
#[tokio::test]
async fn offers_are_answered_by_the_rfc_rules() {
    let (mut pbx, _daemon, mut page, contact) =
        phone_on_fake_pbx("auto_answer = true\n[media]\nsrtp = \"optional\"\n").await;
    let session = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n";
    let key =
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
    let sdp = "application/sdp";
    let multipart = "multipart/mixed;boundary=issue18";
    let cases: Vec<Case> = vec![
        (
            "video",
            sdp.into(),
            "",
            format!(
                "{session}m=audio 40000 RTP/AVP 0\r\nm=video 40002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
            ),
            "200",
            vec!["m=audio ", "m=video 0 RTP/AVP 96"],
        ),
        (
            "secure-second",
            sdp.into(),
            "",
            format!("{session}m=audio 40000 RTP/AVP 0\r\nm=audio 40002 RTP/SAVP 0\r\n{key}"),
            "200",
            vec!["m=audio 0 RTP/AVP 0", "m=audio "],
        ),
        (
            "unknown-network",
            sdp.into(),
            "",
            session.replace("c=IN", "c=XIN") + "m=audio 40000 RTP/AVP 0\r\n",
            "488",
            vec![],
        ),
        (
            "replaces-nothing",
            sdp.into(),
            "Replaces: nothing@127.0.0.1;to-tag=x;from-tag=y\r\n",
            OFFER.into(),
            "481",
            vec![],
        ),
        (
            "multipart",
            multipart.into(),
            "",
            format!(
                "--issue18\r\nContent-Type: application/isup\r\n\r\nbinary\r\n--issue18\r\nContent-Type: application/sdp\r\n\r\n{OFFER}\r\n--issue18--\r\n"
            ),
            "200",
            vec!["m=audio "],
        ),
        (
            "multipart-no-sdp",
            multipart.into(),
            "",
            "--issue18\r\nContent-Type: text/plain\r\n\r\nhello\r\n--issue18--\r\n".into(),
            "415",
            vec![],
        ),
    ];
    for (call_id, content_type, extra, body, status, m) in cases {
        pbx.invite_body(&contact, "UDP", &content_type, &body, extra, call_id);
        let response = final_response(&mut pbx, call_id).await;
        assert_eq!(response.get(8..11), Some(status), "{call_id}: {response}");
        let lines = m_lines(&response);
        assert_eq!(lines.len(), m.len(), "{call_id}: {response}");
        for (line, expected) in lines.iter().zip(&m) {
            assert!(
                line.starts_with(expected),
                "{call_id}: {line} is not {expected}…\n{response}"
            );
        }
        match call_id {
            "secure-second" => assert!(
                response.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"),
                "{response}"
            ),
            "multipart-no-sdp" => assert_eq!(
                fake_pbx::header(&response, "Accept").as_deref(),
                Some("application/sdp, multipart/mixed")
            ),
            _ => {}
        }
        if status == "200" {
            pbx.in_dialog("ACK", &response, &contact, call_id);
            pbx.in_dialog("BYE", &response, &contact, call_id);
            page.event("callEnded").await;
        }
    }
    // Session-level sendonly is mirrored (the far end holds from the start).
    pbx.invite_with(
        &contact,
        "UDP",
        &format!("{session}a=sendonly\r\nm=audio 40000 RTP/AVP 0\r\n"),
        "",
        "session-hold",
    );
    let response = final_response(&mut pbx, "session-hold").await;
    assert!(
        response.starts_with("SIP/2.0 200") && response.contains("a=recvonly\r\n"),
        "{response}"
    );
}

/// Issue 18, RFC 3261 §8.2 / RFC 4475: a request with LWS around the Via's slashes and an
/// unusual display name still rings; one we cannot parse gets 400 with its dialog headers, not
/// silence; and the daemon goes on answering.
#[tokio::test]
async fn tortuous_requests_ring_and_unparsable_ones_get_400() {
    let (mut pbx, _daemon, mut page, contact) = phone_on_fake_pbx("").await;
    let target = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_owned();
    let (ip, port) = (pbx.address.ip(), pbx.address.port());
    let tortuous = format!(
        "INVITE {target} SIP/2.0\r\n\
         Via  : SIP  /   2.0\r\n /UDP\r\n    {ip}:{port};branch=z9hG4bK-tortuous\r\n\
         Max-Forwards: 0068\r\n\
         To :\r\n <{target}>\r\n\
         from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
         Call-ID: tortuous@127.0.0.1\r\n\
         cseq: 0009\r\n  INVITE\r\n\
         Contact: <sip:jdrosen@{ip}:{port}>\r\n\
         NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n\
         UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{OFFER}",
        OFFER.len()
    );
    pbx.send(tortuous);
    let ringing = pbx
        .next_matching("SIP/2.0 180", Duration::from_secs(5))
        .await
        .expect("the tortuous INVITE rings");
    assert_eq!(
        fake_pbx::header(&ringing, "Call-ID").as_deref(),
        Some("tortuous@127.0.0.1")
    );
    page.incoming_call().await;

    // An unterminated quote in From (RFC 4475 §3.1.2.6): 400, same Call-ID and CSeq.
    let broken = format!(
        "OPTIONS {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK-quotbal\r\n\
         Max-Forwards: 70\r\n\
         From: \"Mr. J. User <sip:j.user@example.com>;tag=93334\r\n\
         To: <{target}>\r\n\
         Call-ID: quotbal@127.0.0.1\r\n\
         CSeq: 8 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    pbx.send(broken);
    let refusal = pbx
        .next_matching("SIP/2.0 400", Duration::from_secs(5))
        .await
        .expect("a 400, not silence");
    assert_eq!(
        fake_pbx::header(&refusal, "Call-ID").as_deref(),
        Some("quotbal@127.0.0.1")
    );
    assert_eq!(
        fake_pbx::header(&refusal, "CSeq").as_deref(),
        Some("8 OPTIONS")
    );
    // Still answering: a good OPTIONS gets 200.
    pbx.send(format!(
        "OPTIONS {target} SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK-after\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{ip}>;tag=p\r\nTo: <{target}>\r\n\
         Call-ID: after@127.0.0.1\r\nCSeq: 9 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(
        pbx.next_matching("SIP/2.0 200", Duration::from_secs(5))
            .await
            .is_some()
    );
}
