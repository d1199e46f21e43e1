//! name-addr and addr-spec values: From, To, Contact, P-Asserted-Identity (RFC 3261 §20.10,
//! §25.1).

use std::fmt;

use super::ParseError;
use super::Uri;
use super::lexical::{header_params, param, quote, quoted_len, shorten, unquote, write_params};

/// `"Display" <sip:uri>;tag=x`, `Display <sip:uri>`, or `sip:uri;tag=x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, quoted-pairs resolved (`"J Rosenberg \\\""` is `J Rosenberg \"`).
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters, values as written (see the `lexical` module).
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Address(shorten(text));
        let text = text.trim();
        let (display, rest) = if text.starts_with('"') {
            // An unterminated quote (RFC 4475 quotbal) is refused, not guessed at.
            let len = quoted_len(text).ok_or_else(bad)?;
            let rest = text[len..].trim_start();
            if !rest.starts_with('<') {
                return Err(bad());
            }
            (Some(unquote(&text[..len])), rest)
        } else if let Some(open) = text.find('<') {
            // No LWS is needed before `<` (RFC 4475 lwsdisp).
            let display = text[..open].trim();
            if !unquoted_display(display) {
                return Err(bad());
            }
            (Some(display.to_owned()), &text[open..])
        } else {
            return Self::parse_addr_spec(text);
        };
        // `rest` starts with `<`; the URI cannot hold `>`, so the first one closes it.
        let close = rest.find('>').ok_or_else(bad)?;
        let inner = &rest[1..close];
        // LAQUOT and RAQUOT take no LWS inside the brackets (RFC 4475 badaspec).
        if inner.trim() != inner {
            return Err(bad());
        }
        let uri = Uri::parse(inner)?;
        let params = header_params(&rest[close + 1..]).ok_or_else(bad)?;
        Ok(Self {
            display: display.filter(|d| !d.is_empty()),
            uri,
            params,
        })
    }

    /// Without angle brackets, parameters after the URI belong to the header, and a URI with a
    /// `,`, `?` or `;` of its own must be bracketed (RFC 3261 §20; RFC 4475 regbadct).
    fn parse_addr_spec(text: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Address(shorten(text));
        let (uri, params) = match text.find(';') {
            Some(at) => (&text[..at], header_params(&text[at..]).ok_or_else(bad)?),
            None => (text, Vec::new()),
        };
        if uri.contains([',', '?']) {
            return Err(bad());
        }
        Ok(Self {
            display: None,
            uri: Uri::parse(uri)?,
            params,
        })
    }

    pub fn tag(&self) -> Option<&str> {
        param(&self.params, "tag")
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }
}

/// An unquoted display name is tokens separated by LWS (RFC 3261 `*(token LWS)`). Characters
/// that delimit something in a header (`,` `;` `:` `@` `"` `<` …) make it malformed (RFC 4475
/// baddn: `Bell, Alexander`); non-ASCII letters are let through, since some phones send names
/// in their own script unquoted and nothing is ambiguous about them.
fn unquoted_display(display: &str) -> bool {
    display.chars().all(|c| {
        !c.is_ascii()
            || c.is_ascii_alphanumeric()
            || c == ' '
            || c == '\t'
            || "-.!%*_+`'~".contains(c)
    })
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(display) = &self.display {
            write!(f, "{} ", quote(display))?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}
