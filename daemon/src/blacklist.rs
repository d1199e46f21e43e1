//! Numbers never dialled (uContact's blacklist, seed `003_…`): IT's machine-wide list, which the
//! agent cannot shorten, and the agent's own, which pages change. Below the phone and the line:
//! the phone checks every number it is asked to dial or transfer to, the line every party a far
//! end's REFER would have it call.
//!
//! Numbers are compared by their digits: spaces, dashes, dots and parentheses are ignored, and a
//! leading `+` or `00` (the international prefix) is dropped, so `+1 555-123-4567`,
//! `0015551234567` and `15551234567` are one entry. A list holds what was added, in that form.
//!
//! A dialled number is blocked when its digits are a listed number's, or when one ends with the
//! other (less a national trunk `0`) and the shorter has at least [`MIN_SUFFIX_DIGITS`] digits:
//! the same party dialled with
//! an outside-line `9`, a trunk `0`, a country code, or a feature code such as `*67` is still the
//! same party. For a do-not-call list, blocking too much is the safe side.

use std::collections::BTreeSet;

/// The most numbers the agent's list holds.
pub const MAX_AGENT_NUMBERS: usize = 10_000;
/// The fewest digits two numbers must share at their end to be taken for the same party.
pub const MIN_SUFFIX_DIGITS: usize = 7;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("the number is empty")]
    Empty,
    #[error(
        "{0} is not a phone number: only digits, a leading + and spaces, dashes, dots or parentheses"
    )]
    NotANumber(String),
    #[error("{0} has {1} digits; a phone number has 3 to 20")]
    Length(String, usize),
}

/// A number as the blacklist keeps it: `+` and the digits when it was international.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Number {
    /// The digits without an international prefix: what comparisons use.
    key: String,
    international: bool,
}

impl Number {
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        let compact: String = text
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        if compact.is_empty() {
            return Err(NumberError::Empty);
        }
        let (international, digits) = match compact.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => match compact.strip_prefix("00") {
                Some(rest) => (true, rest),
                None => (false, compact.as_str()),
            },
        };
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(NumberError::NotANumber(shown(text)));
        }
        if !(3..=20).contains(&digits.len()) {
            return Err(NumberError::Length(shown(text), digits.len()));
        }
        Ok(Self {
            key: digits.to_owned(),
            international,
        })
    }

    /// As shown in lists: `+15551234567` or `5551234`.
    pub fn text(&self) -> String {
        if self.international {
            format!("+{}", self.key)
        } else {
            self.key.clone()
        }
    }
}

/// The digits a server will dial for a user part: user parameters (`;phone-context=…`) dropped,
/// `%XX` escapes decoded (`%35` is `5`), then every digit in order (`*67`, `#`, `+`, separators
/// are not part of the party). `None` for a name (`echo`, `alice`) or fewer than 3 digits.
fn dialled_digits(user: &str) -> Option<String> {
    let user = percent_decoded(user.split(';').next().unwrap_or_default());
    if user.chars().any(char::is_alphabetic) {
        return None;
    }
    let digits: String = user.chars().filter(char::is_ascii_digit).collect();
    let digits = digits
        .strip_prefix("00")
        .filter(|_| user.trim_start().starts_with("00"))
        .map_or(digits.clone(), str::to_owned);
    (digits.len() >= 3).then_some(digits)
}

/// `text` with `%XX` escapes decoded (a bad escape is kept as it is).
pub fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A number, or a range of them (`+1555*`: every number starting so), as IT writes caller IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRange {
    /// The number, or the range's leading digits, as [`Number::text`] shows them.
    text: String,
    range: bool,
}

impl NumberRange {
    pub fn parse(entry: &str) -> Result<Self, NumberError> {
        let entry = entry.trim();
        match entry.strip_suffix('*') {
            // The leading digits are checked as a number's would be, less its minimum length.
            Some(prefix) => {
                let number = Number::parse(&format!("{prefix}000"))
                    .map_err(|_| NumberError::NotANumber(shown(entry)))?;
                let text = number.text();
                Ok(Self {
                    text: text[..text.len() - 3].to_owned(),
                    range: true,
                })
            }
            None => Ok(Self {
                text: Number::parse(entry)?.text(),
                range: false,
            }),
        }
    }

    /// Whether `number` is this one, or in this range. International and national forms differ.
    pub fn contains(&self, number: &Number) -> bool {
        let text = number.text();
        if self.range {
            text.starts_with(&self.text)
        } else {
            text == self.text
        }
    }
}

fn shown(text: &str) -> String {
    format!("{:?}", text.chars().take(40).collect::<String>())
}

/// IT's list and the agent's, keyed by digits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blacklist {
    machine: BTreeSet<String>,
    /// The agent's entries in the form they were added, by key.
    agent: std::collections::BTreeMap<String, Number>,
}

impl Blacklist {
    /// IT's numbers (already checked by the config) and the agent's, from the store; entries
    /// that no longer parse are skipped.
    pub fn new<'a>(
        machine: impl IntoIterator<Item = &'a str>,
        agent: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut list = Self {
            machine: machine
                .into_iter()
                .filter_map(|n| Number::parse(n).ok())
                .map(|n| n.key)
                .collect(),
            ..Self::default()
        };
        for number in agent.into_iter().filter_map(|n| Number::parse(n).ok()) {
            list.agent.insert(number.key.clone(), number);
        }
        list
    }

    /// Whether a dialled user part (`+15551234567`, `5551234`) is listed. Anything that is not a
    /// phone number (a name such as `echo`) never is.
    pub fn blocks(&self, user: &str) -> bool {
        let Some(digits) = dialled_digits(user) else {
            return false;
        };
        if self.machine.contains(&digits) || self.agent.contains_key(&digits) {
            return true;
        }
        let same_party = |key: &String| {
            let (short, long) = if key.len() <= digits.len() {
                (key.as_str(), digits.as_str())
            } else {
                (digits.as_str(), key.as_str())
            };
            // A national number's trunk `0` is not dialled after a country code.
            let core = short.strip_prefix('0').unwrap_or(short);
            core.len() >= MIN_SUFFIX_DIGITS && long.ends_with(core)
        };
        self.machine.iter().chain(self.agent.keys()).any(same_party)
    }

    /// Whether IT's list has it.
    pub fn machine_has(&self, number: &Number) -> bool {
        self.machine.contains(&number.key)
    }

    pub fn agent_has(&self, number: &Number) -> bool {
        self.agent.contains_key(&number.key)
    }

    /// Adds to the agent's list; false when it was there already.
    pub fn add(&mut self, number: Number) -> bool {
        if self.agent.contains_key(&number.key) {
            return false;
        }
        self.agent.insert(number.key.clone(), number);
        true
    }

    /// Removes from the agent's list; false when it was not there.
    pub fn remove(&mut self, number: &Number) -> bool {
        self.agent.remove(&number.key).is_some()
    }

    /// The agent's numbers, as added.
    pub fn agent_numbers(&self) -> Vec<String> {
        self.agent.values().map(Number::text).collect()
    }

    pub fn agent_len(&self) -> usize {
        self.agent.len()
    }

    pub fn machine_len(&self) -> usize {
        self.machine.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_compared_by_their_digits() {
        let list = Blacklist::new(["+44 20 7946 0958"], ["(555) 123-4567", "0015550001111"]);
        for listed in [
            "+442079460958",
            "00442079460958",
            "442079460958",
            "5551234567",
            "+5551234567",
            "+1 555 000 1111",
        ] {
            assert!(list.blocks(listed), "{listed}");
        }
        assert!(list.blocks("%35%355-123-4567"), "escaped digits are digits");
        for dressed in [
            "*675551234567",
            "5551234567#",
            "%2A5551234567",
            "5551234567;phone-context=example.com",
            "95551234567",
            "0015551234567",
            "02079460958",
            "0442079460958",
        ] {
            assert!(list.blocks(dressed), "{dressed}");
        }
        for free in [
            "5551234568",
            "echo",
            "1002x",
            "",
            "%",
            "%3",
            "2345678",
            "12",
        ] {
            assert!(!list.blocks(free), "{free}");
        }
        assert_eq!(list.agent_numbers(), ["+15550001111", "5551234567"]);
    }

    #[test]
    fn bad_numbers_are_named() {
        assert_eq!(Number::parse("  "), Err(NumberError::Empty));
        assert!(matches!(
            Number::parse("555-CALL-NOW"),
            Err(NumberError::NotANumber(_))
        ));
        assert!(matches!(
            Number::parse("12"),
            Err(NumberError::Length(_, 2))
        ));
        assert!(matches!(
            Number::parse(&"9".repeat(21)),
            Err(NumberError::Length(_, 21))
        ));
        assert!(matches!(
            Number::parse("+1\r\nX-Evil: 1"),
            Err(NumberError::NotANumber(_))
        ));
    }

    #[test]
    fn the_agent_cannot_shorten_its_list() {
        let mut list = Blacklist::new(["5550001"], []);
        let it = Number::parse("555-0001").expect("number");
        assert!(list.machine_has(&it));
        assert!(!list.remove(&it), "not the agent's to remove");
        assert!(list.blocks("5550001"));
        assert!(list.add(Number::parse("5550002").expect("number")));
        assert!(
            !list.add(Number::parse("555 0002").expect("number")),
            "once"
        );
        assert_eq!(list.agent_len(), 1);
    }
}
