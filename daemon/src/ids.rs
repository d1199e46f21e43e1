//! Ids from the OS random generator: tokens for SIP (tags, branches, Call-IDs), a call's
//! [`ConversationId`], the daemon instance, and this installation's SIP instance UUID. They live
//! here, below everything that makes ids, so no module reaches up into `run` or across into
//! `line` for them.

use std::fmt;

use serde::{Deserialize, Serialize};
use sip_core::registration::Entropy;

/// Random hex string from the OS generator, `bytes` long before encoding.
pub fn random_hex(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; bytes];
    // The OS generator failing is not recoverable in any useful way; fall back to time+pid so
    // the id is at least unique per start.
    if ring::rand::SystemRandom::new().fill(&mut buf).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        return format!("{nanos:x}{:x}", std::process::id());
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Random tokens from the OS generator (what `sip-core` asks of its driver).
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn token(&mut self) -> String {
        random_hex(8)
    }
}

/// A random UUID in its 8-4-4-4-12 form, version 4 and the RFC 4122 variant.
pub fn uuid_v4(entropy: &mut dyn Entropy) -> String {
    let hex: String = (0..4)
        .map(|_| entropy.token())
        .collect::<String>()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    // Tokens from a failing generator can be short; pad so every slice exists.
    let hex = format!("{hex:0<32}");
    let variant = (u8::from_str_radix(&hex[16..17], 16).unwrap_or(0) & 0x3) | 0x8;
    format!(
        "{}-{}-4{}-{variant:x}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// One call, as pages know it (the contract's `conversationId`, shaped like its GUIDs). Made
/// by the line for every call, never taken from a page: a page only names ids it was given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(String);

impl ConversationId {
    pub fn new(entropy: &mut dyn Entropy) -> Self {
        Self(uuid_v4(entropy))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id this daemon made earlier, read back from its own store (never a page's text).
    pub fn from_store(id: String) -> Self {
        Self(id)
    }
}

/// Names the local conference while it lasts (a UUID v4, made by the phone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceId(String);

impl ConferenceId {
    pub fn new(entropy: &mut dyn Entropy) -> Self {
        Self(uuid_v4(entropy))
    }
}

impl fmt::Display for ConferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for ConversationId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ConversationId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for ConversationId {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

/// Tests name their calls `"c1"`. The daemon never makes an id from a page's text: a page's id
/// is only compared with the ones the line made (or the store kept).
#[cfg(test)]
impl From<&str> for ConversationId {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl PartialEq<&str> for ConversationId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::{ConversationId, OsEntropy, uuid_v4};
    use sip_core::registration::Entropy;

    struct Short;

    impl Entropy for Short {
        fn token(&mut self) -> String {
            "7".into()
        }
    }

    #[test]
    fn uuids_have_the_v4_shape_even_from_short_tokens() {
        for uuid in [uuid_v4(&mut OsEntropy), uuid_v4(&mut Short)] {
            let groups: Vec<&str> = uuid.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{uuid}"
            );
            assert!(groups[2].starts_with('4'), "{uuid}");
            assert!("89ab".contains(&groups[3][..1]), "{uuid}");
        }
        assert_ne!(uuid_v4(&mut OsEntropy), uuid_v4(&mut OsEntropy));
    }

    #[test]
    fn a_conversation_id_is_its_text_on_the_wire() {
        let id = ConversationId::new(&mut OsEntropy);
        let json = serde_json::to_string(&id).expect("serializes");
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(ConversationId::from(id.as_str()), id);
        assert!(id == id.as_str());
    }
}
