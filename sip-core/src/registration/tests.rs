//! REGISTER flows on a virtual clock with predictable tokens.

use std::time::{Duration, Instant};

use super::*;
use crate::auth::Challenge;
use crate::message::Message;

struct Counter(u32);
impl Entropy for Counter {
    fn token(&mut self) -> String {
        self.0 += 1;
        format!("t{}", self.0)
    }
}

fn config() -> RegistrationConfig {
    RegistrationConfig {
        registrar: Uri::parse("sip:127.0.0.1:5060").expect("uri"),
        aor: Uri::parse("sip:1001@127.0.0.1").expect("uri"),
        contact: Uri::parse("sip:1001@127.0.0.1:5070;transport=udp").expect("uri"),
        username: "1001".into(),
        password: "secret1001".into(),
        expires: 60,
        transport: "UDP".into(),
        sent_by: "127.0.0.1:5070".into(),
        reliable: false,
        user_agent: "softphone-bridge test".into(),
        outbound_proxy: None,
        instance: None,
    }
}

fn parse_request(bytes: &[u8]) -> Option<Request> {
    match crate::message::parse_datagram(bytes) {
        Ok(Message::Request(r)) => Some(r),
        _ => None,
    }
}

fn sent(reg: &mut Registration) -> Request {
    let bytes = reg.poll_transmit().expect("a REGISTER was sent");
    parse_request(&bytes).expect("parses")
}

/// A registration that has just sent its first REGISTER.
fn registering() -> (Instant, Counter, Registration, Request) {
    let (start, mut e) = (Instant::now(), Counter(0));
    let mut reg = Registration::new(config(), Timers::default(), &mut e);
    reg.register(start, &mut e);
    let first = sent(&mut reg);
    (start, e, reg, first)
}

fn reply(request: &Request, status: u16, extra: &[(&str, &str)]) -> Response {
    let mut response = Response::to_request(request, status, Some("reg"));
    for (name, value) in extra {
        response.headers.push(name, *value);
    }
    response
}

const CHALLENGE: &str = r#"Digest realm="127.0.0.1", nonce="n1", algorithm=SHA-256, qop="auth""#;

#[test]
fn challenge_then_register_then_refresh_with_the_same_nonce() {
    let (start, mut e, mut reg, first) = registering();
    assert!(first.headers.get("Authorization").is_none());
    assert_eq!(
        first.headers.get("Contact"),
        Some("<sip:1001@127.0.0.1:5070;transport=udp>;expires=60")
    );

    reg.handle_response(
        reply(&first, 401, &[("WWW-Authenticate", CHALLENGE)]),
        start,
        &mut e,
    );
    let second = sent(&mut reg);
    let m = |r: &Request| Message::Request(r.clone());
    assert_eq!(
        m(&second).call_id(),
        m(&first).call_id(),
        "same Call-ID across the registration"
    );
    assert_eq!(m(&second).cseq().map(|c| c.seq), Some(2));
    assert_ne!(
        m(&second)
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned)),
        m(&first)
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
    );
    let auth = second.headers.get("Authorization").expect("answered");
    // Recompute the expected answer independently of the registration's own bookkeeping.
    let cnonce = auth
        .split("cnonce=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("cnonce");
    let expected = Challenge::parse(CHALLENGE).expect("challenge").answer(
        &crate::auth::DigestRequest {
            username: "1001",
            password: "secret1001",
            method: "REGISTER",
            uri: "sip:127.0.0.1:5060",
            body: b"",
        },
        cnonce,
        1,
    );
    assert_eq!(auth, expected);
    assert!(!auth.contains("secret1001"));

    reg.handle_response(
        reply(
            &second,
            200,
            &[(
                "Contact",
                "<sip:1001@127.0.0.1:5070;transport=udp>;expires=40",
            )],
        ),
        start,
        &mut e,
    );
    assert_eq!(
        reg.poll_event(),
        Some(RegistrationEvent::Registered { expires: 40 }),
        "the registrar's grant wins"
    );
    assert_eq!(
        reg.poll_timeout(),
        Some(start + Duration::from_secs(34)),
        "refresh at 85 %"
    );

    reg.handle_timeout(start + Duration::from_secs(34), &mut e);
    let refresh = sent(&mut reg);
    let auth = refresh.headers.get("Authorization").expect("preemptive");
    assert!(auth.contains("nc=00000002"), "{auth}");
}

#[test]
fn rejected_credentials_fail_and_retry_with_backoff() {
    let (start, mut e, mut reg, first) = registering();
    reg.handle_response(
        reply(&first, 401, &[("WWW-Authenticate", CHALLENGE)]),
        start,
        &mut e,
    );
    let second = sent(&mut reg);
    reg.handle_response(
        reply(&second, 401, &[("WWW-Authenticate", CHALLENGE)]),
        start,
        &mut e,
    );
    assert_eq!(reg.poll_transmit(), None, "no loop of wrong answers");
    assert_eq!(
        reg.poll_event(),
        Some(RegistrationEvent::Failed {
            status: Some(401),
            reason: "credentials rejected".into(),
            retry_in: Duration::from_secs(5)
        })
    );
    reg.handle_timeout(start + Duration::from_secs(5), &mut e);
    let retry = sent(&mut reg);
    assert!(
        retry.headers.get("Authorization").is_none(),
        "starts over without the rejected answer"
    );
}

#[test]
fn stale_nonce_is_retried_silently() {
    let (start, mut e, mut reg, first) = registering();
    reg.handle_response(
        reply(&first, 401, &[("WWW-Authenticate", CHALLENGE)]),
        start,
        &mut e,
    );
    let second = sent(&mut reg);
    let stale =
        r#"Digest realm="127.0.0.1", nonce="n2", algorithm=SHA-256, qop="auth", stale=true"#;
    reg.handle_response(
        reply(&second, 401, &[("WWW-Authenticate", stale)]),
        start,
        &mut e,
    );
    let third = sent(&mut reg);
    assert!(
        third
            .headers
            .get("Authorization")
            .is_some_and(|a| a.contains("nonce=\"n2\"") && a.contains("nc=00000001"))
    );
    assert_eq!(reg.poll_event(), None);
}

#[test]
fn proxy_challenge_uses_proxy_authorization() {
    let (start, mut e, mut reg, first) = registering();
    reg.handle_response(
        reply(
            &first,
            407,
            &[("Proxy-Authenticate", r#"Digest realm="p", nonce="x""#)],
        ),
        start,
        &mut e,
    );
    let second = sent(&mut reg);
    assert!(
        second
            .headers
            .get("Proxy-Authorization")
            .is_some_and(|a| a.contains("algorithm=MD5"))
    );
    assert!(second.headers.get("Authorization").is_none());
}

#[test]
fn interval_too_brief_raises_expires() {
    let (start, mut e, mut reg, first) = registering();
    reg.handle_response(reply(&first, 423, &[("Min-Expires", "120")]), start, &mut e);
    let second = sent(&mut reg);
    assert_eq!(second.headers.get("Expires"), Some("120"));
    reg.handle_response(reply(&second, 200, &[("Expires", "120")]), start, &mut e);
    assert_eq!(
        reg.poll_event(),
        Some(RegistrationEvent::Registered { expires: 120 })
    );
}

#[test]
fn no_answer_times_out_after_64_t1_then_retries() {
    let (start, mut e) = (Instant::now(), Counter(0));
    let mut reg = Registration::new(config(), Timers::default(), &mut e);
    reg.register(start, &mut e);
    let mut sends = 0;
    while reg.poll_transmit().is_some() {
        sends += 1;
    }
    while let Some(at) = reg.poll_timeout() {
        reg.handle_timeout(at, &mut e);
        if let Some(event) = reg.poll_event() {
            assert_eq!(
                event,
                RegistrationEvent::Failed {
                    status: None,
                    reason: "no response from the registrar".into(),
                    retry_in: Duration::from_secs(5)
                }
            );
            assert_eq!(at, start + Duration::from_secs(32));
            break;
        }
        while reg.poll_transmit().is_some() {
            sends += 1;
        }
    }
    assert_eq!(sends, 11, "the REGISTER was retransmitted over UDP");
    assert_eq!(reg.poll_timeout(), Some(start + Duration::from_secs(37)));
}

#[test]
fn unregister_sends_expires_zero() {
    let (start, mut e, mut reg, first) = registering();
    reg.handle_response(reply(&first, 200, &[("Expires", "60")]), start, &mut e);
    reg.poll_event();
    reg.unregister(start + Duration::from_secs(1), &mut e);
    let bye = sent(&mut reg);
    assert_eq!(bye.headers.get("Expires"), Some("0"));
    assert!(
        bye.headers
            .get("Contact")
            .is_some_and(|c| c.ends_with(";expires=0"))
    );
    reg.handle_response(
        reply(&bye, 200, &[]),
        start + Duration::from_secs(1),
        &mut e,
    );
    assert_eq!(reg.poll_event(), Some(RegistrationEvent::Unregistered));
    assert_eq!(reg.poll_timeout(), None, "no refresh after unregistering");
}

/// Security review, finding 14: a registrar that is down is retried with exponential back-off
/// that stops at one minute (it was five), so a PBX that comes back is used again soon.
#[test]
fn a_silent_registrar_is_retried_doubling_up_to_a_minute() {
    let (start, mut e) = (Instant::now(), Counter(0));
    let mut reg = Registration::new(config(), Timers::default(), &mut e);
    reg.register(start, &mut e);
    let mut waits = Vec::new();
    let mut now = start;
    while waits.len() < 6 {
        while reg.poll_transmit().is_some() {}
        let Some(at) = reg.poll_timeout() else {
            panic!("the registration keeps a timer")
        };
        now = at.max(now);
        reg.handle_timeout(now, &mut e);
        while let Some(event) = reg.poll_event() {
            if let RegistrationEvent::Failed { retry_in, .. } = event {
                waits.push(retry_in.as_secs());
            }
        }
    }
    assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
}

/// Issue 17: after a reconnect the REGISTER carries the new contact and Via and removes the
/// old contact (`expires=0`), on the same Call-ID; once accepted, the old one is not named
/// again.
#[test]
fn rebind_registers_the_new_contact_and_removes_the_old() {
    let (start, mut e, mut reg, first) = registering();
    reg.handle_response(reply(&first, 200, &[]), start, &mut e);
    assert!(matches!(
        reg.poll_event(),
        Some(RegistrationEvent::Registered { .. })
    ));
    let new_contact = Uri::parse("sip:1001@127.0.0.1:6000;transport=tcp").expect("uri");
    reg.rebind(new_contact.clone(), "TCP", "127.0.0.1:6000", true);
    let later = start + Duration::from_secs(3);
    reg.register(later, &mut e);
    let again = sent(&mut reg);
    assert_eq!(again.headers.call_id(), first.headers.call_id());
    assert!(
        again
            .headers
            .get("Via")
            .is_some_and(|v| v.starts_with("SIP/2.0/TCP 127.0.0.1:6000;"))
    );
    let contacts = again.headers.all("Contact");
    assert_eq!(
        contacts,
        [
            "<sip:1001@127.0.0.1:6000;transport=tcp>;expires=60",
            "<sip:1001@127.0.0.1:5070;transport=udp>;expires=0"
        ]
    );
    reg.handle_response(reply(&again, 200, &[]), later, &mut e);
    assert!(matches!(
        reg.poll_event(),
        Some(RegistrationEvent::Registered { .. })
    ));
    // The refresh names only the new contact, and nothing is retransmitted on a stream.
    let refresh_at = reg.poll_timeout().expect("a refresh is scheduled");
    reg.handle_timeout(refresh_at, &mut e);
    let refresh = sent(&mut reg);
    assert_eq!(
        refresh.headers.all("Contact"),
        ["<sip:1001@127.0.0.1:6000;transport=tcp>;expires=60"]
    );
    assert_eq!(refresh.headers.call_id(), first.headers.call_id());
}

/// Reconnecting again and again (a server that accepts and drops) names at most four old
/// contacts, and never the one being registered.
#[test]
fn stale_contacts_are_bounded_and_never_the_current_one() {
    let (start, mut e, mut reg, _) = registering();
    for port in 6000..6010 {
        let contact = Uri::parse(&format!("sip:1001@127.0.0.1:{port};transport=tcp")).expect("uri");
        reg.rebind(contact, "TCP", &format!("127.0.0.1:{port}"), true);
    }
    // The OS hands out 6005 again.
    let reused = Uri::parse("sip:1001@127.0.0.1:6005;transport=tcp").expect("uri");
    reg.rebind(reused, "TCP", "127.0.0.1:6005", true);
    reg.register(start, &mut e);
    let request = sent(&mut reg);
    let contacts = request.headers.all("Contact");
    assert_eq!(contacts.len(), 5, "{contacts:?}");
    assert_eq!(
        contacts[0],
        "<sip:1001@127.0.0.1:6005;transport=tcp>;expires=60"
    );
    assert!(
        contacts[1..]
            .iter()
            .all(|c| c.ends_with(";expires=0") && !c.contains(":6005;")),
        "{contacts:?}"
    );
}

const INSTANCE: &str = "urn:uuid:00000000-0000-4000-8000-000000000001";

fn outbound_config() -> RegistrationConfig {
    RegistrationConfig {
        instance: Some(INSTANCE.into()),
        ..config()
    }
}

/// RFC 5626 §4.2.1 and RFC 5627 §4.1: the instance and reg-id on the contact, `outbound` and
/// `gruu` supported; the registrar's answer (Kamailio's shape: one Contact header listing
/// another device's binding first, then ours with its GRUUs) read into the binding.
#[test]
fn an_outbound_registration_names_its_instance_and_reads_flow_timer_and_gruu() {
    let (start, mut e) = (Instant::now(), Counter(0));
    let mut reg = Registration::new(outbound_config(), Timers::default(), &mut e);
    reg.register(start, &mut e);
    let first = sent(&mut reg);
    assert_eq!(
        first.headers.all("Contact"),
        [format!(
            "<sip:1001@127.0.0.1:5070;transport=udp>;expires=60;+sip.instance=\"<{INSTANCE}>\";reg-id=1"
        )]
    );
    assert_eq!(first.headers.get("Supported"), Some("path, outbound, gruu"));
    assert_eq!(
        reg.binding(),
        &Binding::default(),
        "nothing is known before the answer"
    );
    let contacts = format!(
        "<sip:1001@127.0.0.1:5999>;expires=50;+sip.instance=\"<urn:uuid:other>\";reg-id=1, \
         <sip:1001@127.0.0.1:5070;transport=udp>;expires=57;+sip.instance=\"<{INSTANCE}>\";reg-id=1;\
         pub-gruu=\"sip:1001@127.0.0.1;gr={INSTANCE}\";temp-gruu=\"sip:tgruu.1@127.0.0.1;gr\""
    );
    reg.handle_response(
        reply(
            &first,
            200,
            &[
                ("Contact", &contacts),
                ("Require", "outbound"),
                ("Flow-Timer", "25"),
            ],
        ),
        start,
        &mut e,
    );
    assert_eq!(
        reg.poll_event(),
        Some(RegistrationEvent::Registered { expires: 57 })
    );
    let binding = reg.binding().clone();
    assert!(binding.outbound);
    assert_eq!(binding.flow_timer, Some(25));
    assert_eq!(
        binding.gruu.map(|g| g.to_string()),
        Some(format!("sip:1001@127.0.0.1;gr={INSTANCE}"))
    );
}

/// A registrar without outbound ignores the instance: no `Require`, no GRUU, and a new flow
/// must remove the old contact itself. One that agreed replaces the binding by instance, so the
/// new REGISTER names only the new contact.
#[test]
fn stale_contacts_are_removed_only_where_the_registrar_does_not_replace_the_binding() {
    for outbound in [false, true] {
        let (start, mut e) = (Instant::now(), Counter(0));
        let mut reg = Registration::new(outbound_config(), Timers::default(), &mut e);
        reg.register(start, &mut e);
        let first = sent(&mut reg);
        let require: &[(&str, &str)] = if outbound {
            &[("Require", "outbound")]
        } else {
            &[]
        };
        reg.handle_response(reply(&first, 200, require), start, &mut e);
        assert_eq!(reg.binding().outbound, outbound);
        assert_eq!(reg.binding().gruu, None);
        let new_contact = Uri::parse("sip:1001@127.0.0.1:6000;transport=tcp").expect("uri");
        reg.rebind(new_contact, "TCP", "127.0.0.1:6000", true);
        assert!(!reg.binding().outbound, "a new flow is confirmed anew");
        reg.register(start + Duration::from_secs(1), &mut e);
        let again = sent(&mut reg);
        let contacts = again.headers.all("Contact");
        assert_eq!(contacts.len(), if outbound { 1 } else { 2 }, "{contacts:?}");
        assert!(
            contacts[0]
                .starts_with("<sip:1001@127.0.0.1:6000;transport=tcp>;expires=60;+sip.instance=")
        );
    }
}

/// Without an instance, a registrar's `Require: outbound` or GRUU is not ours to act on.
#[test]
fn a_plain_registration_has_no_binding_extensions() {
    let (start, mut e, mut reg, first) = registering();
    assert_eq!(first.headers.get("Supported"), None);
    reg.handle_response(
        reply(
            &first,
            200,
            &[("Require", "outbound"), ("Flow-Timer", "25")],
        ),
        start,
        &mut e,
    );
    assert_eq!(reg.binding(), &Binding::default());
}

/// A registrar without outbound may still list a contact of an earlier run with our instance
/// (the id survives restarts) before ours: what it granted us is read from our own URI.
#[test]
fn our_contact_is_found_by_uri_before_instance() {
    let (start, mut e) = (Instant::now(), Counter(0));
    let mut reg = Registration::new(outbound_config(), Timers::default(), &mut e);
    reg.register(start, &mut e);
    let first = sent(&mut reg);
    let contacts = format!(
        "<sip:1001@127.0.0.1:5999;transport=udp>;expires=5;+sip.instance=\"<{INSTANCE}>\";reg-id=1, \
         <sip:1001@127.0.0.1:5070;transport=udp>;expires=55;+sip.instance=\"<{INSTANCE}>\";reg-id=1"
    );
    reg.handle_response(reply(&first, 200, &[("Contact", &contacts)]), start, &mut e);
    assert_eq!(
        reg.poll_event(),
        Some(RegistrationEvent::Registered { expires: 55 })
    );
    // With outbound the registrar may rewrite our URI: then our instance finds us.
    reg.register(start, &mut e);
    let again = sent(&mut reg);
    let rewritten = format!(
        "<sip:1001@192.0.2.9:40000;transport=udp>;expires=44;+sip.instance=\"<{INSTANCE}>\";reg-id=1"
    );
    reg.handle_response(
        reply(
            &again,
            200,
            &[("Contact", &rewritten), ("Require", "outbound")],
        ),
        start,
        &mut e,
    );
    assert_eq!(
        reg.poll_event(),
        Some(RegistrationEvent::Registered { expires: 44 })
    );
}
