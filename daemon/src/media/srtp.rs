//! SDES-SRTP (RFC 4568 keys in SDP, RFC 3711 protection) over the webrtc-rs SRTP contexts, with
//! ring as the crypto provider (the one the rest of the daemon uses).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;
use sip_core::sdp::Crypto;

/// The suites we offer and accept, in preference order.
pub const SUITES: [&str; 2] = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"];
const KEY_AND_SALT: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum SrtpError {
    #[error("none of the offered SRTP suites is supported (we support {})", SUITES.join(", "))]
    NoSuite,
    #[error("the a=crypto key is not 30 bytes of base64")]
    BadKey,
    #[error("SRTP: {0}")]
    Crypto(String),
}

fn profile(suite: &str) -> Option<ProtectionProfile> {
    match suite {
        "AES_CM_128_HMAC_SHA1_80" => Some(ProtectionProfile::Aes128CmHmacSha1_80),
        "AES_CM_128_HMAC_SHA1_32" => Some(ProtectionProfile::Aes128CmHmacSha1_32),
        _ => None,
    }
}

/// Our half of an SDES exchange: a fresh master key for `suite`, as the `a=crypto` line to send.
pub fn local_crypto(tag: u32, suite: &str) -> Result<(Crypto, [u8; KEY_AND_SALT]), SrtpError> {
    let mut key = [0u8; KEY_AND_SALT];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| SrtpError::Crypto("no randomness".into()))?;
    let crypto = Crypto {
        tag,
        suite: suite.to_owned(),
        key_params: format!("inline:{}", STANDARD.encode(key)),
    };
    Ok((crypto, key))
}

/// Our offer: one line per suite, each with its own key (RFC 4568 §6.1).
pub fn offer() -> Result<Vec<(Crypto, [u8; KEY_AND_SALT])>, SrtpError> {
    SUITES
        .iter()
        .zip(1..)
        .map(|(suite, tag)| local_crypto(tag, suite))
        .collect()
}

/// Both directions of one call's SRTP.
pub struct SrtpSession {
    outbound: Context,
    inbound: Context,
}

impl SrtpSession {
    /// `ours` keys what we send; `theirs` (their a=crypto line) keys what we receive.
    pub fn new(suite: &str, ours: &[u8; KEY_AND_SALT], theirs: &Crypto) -> Result<Self, SrtpError> {
        let profile = profile(suite).ok_or(SrtpError::NoSuite)?;
        let their_key = theirs
            .inline_key()
            .and_then(|k| STANDARD.decode(k).ok())
            .filter(|k| k.len() == KEY_AND_SALT)
            .ok_or(SrtpError::BadKey)?;
        let provider =
            rtc_crypto::default_provider().map_err(|e| SrtpError::Crypto(e.to_string()))?;
        let context = |key: &[u8]| {
            Context::new(
                &key[..16],
                &key[16..],
                profile,
                None,
                None,
                provider.crypto(),
            )
            .map_err(|e| SrtpError::Crypto(e.to_string()))
        };
        Ok(Self {
            outbound: context(ours)?,
            inbound: context(&their_key)?,
        })
    }

    pub fn protect_rtp(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        self.outbound
            .encrypt_rtp(packet)
            .map(|b| b.to_vec())
            .inspect_err(|e| tracing::debug!("SRTP protect: {e}"))
            .ok()
    }

    /// None for a packet that fails authentication (forged, or keyed differently).
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        self.inbound
            .decrypt_rtp(packet)
            .map(|b| b.to_vec())
            .inspect_err(|e| tracing::debug!("SRTP unprotect: {e}"))
            .ok()
    }

    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        self.outbound
            .encrypt_rtcp(packet)
            .map(|b| b.to_vec())
            .inspect_err(|e| tracing::debug!("SRTCP protect: {e}"))
            .ok()
    }

    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        self.inbound
            .decrypt_rtcp(packet)
            .map(|b| b.to_vec())
            .inspect_err(|e| tracing::debug!("SRTCP unprotect: {e}"))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::RtpPacket;

    #[test]
    fn two_ends_keyed_by_sdes_talk_and_tampering_is_caught() {
        let (alice_line, alice_key) = local_crypto(1, SUITES[0]).expect("key");
        let (bob_line, bob_key) = local_crypto(1, SUITES[0]).expect("key");
        assert!(
            alice_line.key_params.starts_with("inline:")
                && alice_line.inline_key().is_some_and(|k| k.len() == 40)
        );
        let mut alice = SrtpSession::new(SUITES[0], &alice_key, &bob_line).expect("alice");
        let mut bob = SrtpSession::new(SUITES[0], &bob_key, &alice_line).expect("bob");
        let mut plain = Vec::new();
        RtpPacket {
            marker: false,
            payload_type: 0,
            sequence: 1,
            timestamp: 160,
            ssrc: 9,
            payload: &[0x55; 160],
        }
        .write(&mut plain);
        let protected = alice.protect_rtp(&plain).expect("protect");
        assert_eq!(protected.len(), plain.len() + 10, "80-bit tag");
        assert_ne!(&protected[12..172], &plain[12..], "payload is encrypted");
        assert_eq!(bob.unprotect_rtp(&protected).as_deref(), Some(&plain[..]));
        let mut tampered = alice.protect_rtp(&plain).expect("protect");
        tampered[20] ^= 1;
        assert_eq!(bob.unprotect_rtp(&tampered), None);

        let mut rtcp = Vec::new();
        crate::media::rtcp::compound(9, 1 << 32, None, None, "a", &mut rtcp);
        let protected = alice.protect_rtcp(&rtcp).expect("protect rtcp");
        assert_eq!(bob.unprotect_rtcp(&protected).as_deref(), Some(&rtcp[..]));
    }

    #[test]
    fn bad_keys_and_suites_are_errors() {
        let (_, key) = local_crypto(1, SUITES[0]).expect("key");
        let short = Crypto {
            tag: 1,
            suite: SUITES[0].into(),
            key_params: "inline:AAAA".into(),
        };
        assert!(matches!(
            SrtpSession::new(SUITES[0], &key, &short),
            Err(SrtpError::BadKey)
        ));
        assert!(matches!(
            SrtpSession::new("F8_128_HMAC_SHA1_80", &key, &short),
            Err(SrtpError::NoSuite)
        ));
        assert_eq!(offer().expect("offer").len(), 2);
    }
}
