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

/// RFC 3261 §8.2.2.3: a required extension we lack gets 420 with `Unsupported`; a `mailto:`
/// contact before the SIP one still rings.
#[tokio::test]
async fn require_gets_420_and_a_non_sip_contact_beside_a_sip_one_rings() {
    let mut pbx = FakePbx::udp(Options { challenge: false }).await;
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"{}\"\nusername = \"1002\"\npassword = \"pw\"\n",
        pbx.address
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let contact = pbx.registered_contact().await;

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
