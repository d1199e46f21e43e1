//! What pages may dial: IT's `[dialling] patterns`, and, for a call of a partner IT lists in
//! `[[dialling.partner]]` (the call's own `partnerId`, else the page's `partner_config`), that
//! partner's patterns as well — a partner narrows, never widens. A pattern is the number or name
//! as dialled (`+18883973342`, `1002`, `echo`; separators and `%XX` escapes already resolved),
//! with `?` for any one character and `*` for any run of them. While any pattern applies, a SIP
//! URI must name the line's own server: a pattern on the user part says nothing about another
//! host. No patterns: anything the dialling policy takes.

use std::collections::HashMap;

use super::{Phone, PhoneError};

/// IT's dialling patterns, overall and per partner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialRules {
    pub patterns: Vec<String>,
    /// By `partnerId`.
    pub partners: HashMap<String, Vec<String>>,
}

impl Phone {
    /// Refuses `target` (shown as `shown`, about to be dialled or transferred to for
    /// `partner_id`) when the patterns that apply do not allow it.
    pub(super) fn check_dial_rules(
        &self,
        target: &sip_core::Uri,
        shown: &str,
        partner_id: Option<&str>,
    ) -> Result<(), PhoneError> {
        let partner_id = partner_id.or(self.partner_config.as_ref().map(|c| c.partner_id.as_str()));
        let partner = partner_id.and_then(|id| {
            self.dial_rules
                .partners
                .get(id)
                .map(|patterns| (patterns, format!("partner {}", super::shorten(id))))
        });
        let lists = std::iter::once((&self.dial_rules.patterns, "this phone".to_owned()))
            .chain(partner)
            .filter(|(patterns, _)| !patterns.is_empty());
        // The line's domain may carry a port (`127.0.0.1:5080`): its host is what counts.
        let domain = self.line_domain.as_deref().unwrap_or_default();
        let domain = sip_core::Uri::parse(&format!("sip:{domain}"))
            .map(|u| u.host)
            .unwrap_or_else(|_| domain.to_owned());
        let dialled = crate::blacklist::percent_decoded(shown);
        for (patterns, whose) in lists {
            if !target.host.eq_ignore_ascii_case(&domain) {
                return Err(PhoneError::InvalidNumber(format!(
                    "{} is on another server than the line's; IT's dialling rules for {whose} allow only numbers ([dialling] patterns)",
                    super::shorten(shown)
                )));
            }
            if !patterns.iter().any(|p| glob(p, &dialled)) {
                return Err(PhoneError::InvalidNumber(format!(
                    "{} is not a number IT's dialling rules allow for {whose} ([dialling] patterns)",
                    super::shorten(shown)
                )));
            }
        }
        Ok(())
    }
}

/// `?` is one character, `*` any run of them; the rest compares without regard to ASCII case.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it has taken.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn patterns_take_one_or_any_characters() {
        for (pattern, text, expected) in [
            ("+1??????????", "+18883973342", true),
            ("+1??????????", "+1888397334", false),
            ("+44*", "+442079460958", true),
            ("+44*", "+15550100", false),
            ("1???", "1002", true),
            ("1???", "10020", false),
            ("ECHO", "echo", true),
            ("*", "anything", true),
            ("*0100", "+15550100", true),
            ("+1*0?00", "+15550100", true),
            ("", "", true),
            ("", "1", false),
            ("*#", "*67#", true),
        ] {
            assert_eq!(glob(pattern, text), expected, "{pattern} {text}");
        }
        // A long hostile pattern costs linear-ish time, not exponential.
        let long = "*a".repeat(500);
        assert!(!glob(&long, &"b".repeat(1_000)));
    }
}
