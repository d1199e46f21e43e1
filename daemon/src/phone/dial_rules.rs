//! What the dialpad may dial: IT's `[dialling] patterns`, or the patterns of the partner whose
//! configuration the page set (`partner_config`, `[[dialling.partner]]`). A pattern is the
//! number or name as dialled (`+18883973342`, `1002`, `echo`; separators are already gone), with
//! `?` for any one character and `*` for any run of them. No patterns: anything the dialling
//! policy takes.

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
    /// Refuses `shown` (the number or name about to be dialled or transferred to) when the
    /// patterns that apply do not allow it.
    pub(super) fn check_dial_rules(&self, shown: &str) -> Result<(), PhoneError> {
        let partner = self.partner_config.as_ref().and_then(|config| {
            self.dial_rules
                .partners
                .get(&config.partner_id)
                .map(|patterns| (config.partner_id.as_str(), patterns))
        });
        let (patterns, whose) = match partner {
            Some((id, patterns)) => (patterns, format!("partner {}", super::shorten(id))),
            None => (&self.dial_rules.patterns, "this phone".to_owned()),
        };
        if patterns.is_empty() || patterns.iter().any(|p| glob(p, shown)) {
            return Ok(());
        }
        Err(PhoneError::InvalidNumber(format!(
            "{} is not a number IT's dialling rules allow for {whose} ([dialling] patterns)",
            super::shorten(shown)
        )))
    }
}

/// `?` is one character, `*` any run of them; the rest compares without regard to ASCII case.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it has taken.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
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
        ] {
            assert_eq!(glob(pattern, text), expected, "{pattern} {text}");
        }
        // A long hostile pattern costs linear-ish time, not exponential.
        let long = "*a".repeat(500);
        assert!(!glob(&long, &"b".repeat(1_000)));
    }
}
