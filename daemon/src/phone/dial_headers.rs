//! What a page may add to the calls it places: a caller ID (`dialFrom` in the contract,
//! `callerid` in uContact's Porthole calls) only from the list IT allows, and a campaign name
//! (`campaign`, or uContact's `outqueue`) in the header IT names. Both are checked here and go
//! out as INVITE headers; nothing a page sends reaches the wire unchecked.

use super::{Phone, PhoneError};
use crate::blacklist::{Number, NumberRange};

/// IT's `[dialling]` settings for caller IDs and campaigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialHeaders {
    /// Caller IDs pages may ask for: a number, or digits ending in `*` for every number that
    /// starts with them. Empty: pages may not choose one.
    pub caller_ids: Vec<String>,
    /// The header that carries the chosen caller ID.
    pub caller_id_header: String,
    /// The header that carries the campaign.
    pub campaign_header: String,
}

impl Default for DialHeaders {
    fn default() -> Self {
        Self {
            caller_ids: Vec::new(),
            caller_id_header: "P-Preferred-Identity".into(),
            campaign_header: "X-Campaign".into(),
        }
    }
}

/// The longest campaign name taken.
const MAX_CAMPAIGN_CHARS: usize = 64;

impl Phone {
    /// The headers for a call asking for `caller_id` and `campaign` (`field` names the caller ID
    /// parameter in errors), or why they are refused.
    pub(super) fn dial_headers(
        &self,
        caller_id: Option<&str>,
        field: &str,
        campaign: Option<&str>,
    ) -> Result<Vec<(String, String)>, PhoneError> {
        let mut headers = Vec::new();
        if let Some(requested) = caller_id.filter(|c| !c.trim().is_empty()) {
            let number = Number::parse(requested)
                .map_err(|e| PhoneError::InvalidParams(format!("`{field}`: {e}")))?;
            if self.dial_headers.caller_ids.is_empty() {
                return Err(PhoneError::InvalidParams(format!(
                    "`{field}`: IT has not allowed pages to choose the caller ID ([dialling] caller_ids); call without it"
                )));
            }
            if !self
                .dial_headers
                .caller_ids
                .iter()
                .any(|allowed| matches(allowed, &number))
            {
                return Err(PhoneError::InvalidParams(format!(
                    "`{field}`: {} is not a caller ID IT allows ([dialling] caller_ids)",
                    number.text()
                )));
            }
            let domain = self.line_domain.as_deref().unwrap_or("invalid");
            headers.push((
                self.dial_headers.caller_id_header.clone(),
                format!("<sip:{}@{domain}>", number.text()),
            ));
        }
        if let Some(campaign) = campaign.map(str::trim).filter(|c| !c.is_empty()) {
            let fits = campaign.chars().count() <= MAX_CAMPAIGN_CHARS
                && campaign
                    .chars()
                    .all(|c| c.is_alphanumeric() || " -_.:/>@#+()".contains(c));
            if !fits {
                return Err(PhoneError::InvalidParams(format!(
                    "`campaign` is 1 to {MAX_CAMPAIGN_CHARS} letters, digits, spaces or -_.:/>@#+()"
                )));
            }
            headers.push((
                self.dial_headers.campaign_header.clone(),
                campaign.to_owned(),
            ));
        }
        Ok(headers)
    }
}

/// Whether IT's entry (`+15550100`, or `+1555*` for a range) allows `number`.
fn matches(allowed: &str, number: &Number) -> bool {
    NumberRange::parse(allowed).is_ok_and(|range| range.contains(number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_id_entries_are_numbers_or_prefixes() {
        let n = |t: &str| Number::parse(t).expect("number");
        assert!(matches("+1 555 0100", &n("+15550100")));
        assert!(
            !matches("+15550100", &n("15550100")),
            "international is not national"
        );
        assert!(matches("+1555*", &n("+1 555 0199")));
        assert!(!matches("+1555*", &n("+1666 0199")));
        assert!(!matches("garbage*", &n("+1555 0199")));
    }
}
