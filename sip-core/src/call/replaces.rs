//! The `Replaces` header (RFC 3891): an INVITE that takes the place of an existing dialog, as
//! an attended transfer's target receives it; and its escaping as a URI header, as a `Refer-To`
//! carries it.

use crate::message::Request;

/// Which dialog an INVITE's `Replaces` names, from *our* side's point of view: its `to-tag` is
/// our tag in that dialog and its `from-tag` the other party's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
    /// Only an early dialog may be replaced (§6.1).
    pub early_only: bool,
}

/// What a request's `Replaces` headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplacesHeader {
    Absent,
    One(Replaces),
    /// More than one, or one without a Call-ID or both tags: answered 400 (§3, §6.1).
    Invalid,
}

impl ReplacesHeader {
    pub fn of(request: &Request) -> Self {
        let values = request.headers.all("Replaces");
        match values[..] {
            [] => Self::Absent,
            [one] => Replaces::parse(one).map_or(Self::Invalid, Self::One),
            _ => Self::Invalid,
        }
    }
}

impl Replaces {
    /// `callid;to-tag=…;from-tag=…[;early-only]`, parameters in any order and case.
    pub fn parse(value: &str) -> Option<Self> {
        let mut fields = value.split(';');
        let call_id = fields.next()?.trim();
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for field in fields {
            let (name, value) = field.split_once('=').unwrap_or((field, ""));
            let value = value.trim().to_owned();
            match name.trim().to_ascii_lowercase().as_str() {
                "to-tag" => to_tag = Some(value),
                "from-tag" => from_tag = Some(value),
                "early-only" => early_only = true,
                _ => {}
            }
        }
        let (Some(to_tag), Some(from_tag)) = (to_tag, from_tag) else {
            return None;
        };
        if call_id.is_empty() || to_tag.is_empty() || from_tag.is_empty() {
            return None;
        }
        Some(Self {
            call_id: call_id.to_owned(),
            to_tag,
            from_tag,
            early_only,
        })
    }
}

/// A URI header's value, escaped (RFC 3261 §25.1 `hvalue`): everything but the unreserved
/// characters as `%XX`, so `;`, `=` and `@` of a `Replaces` stay inside the header.
pub(super) fn escape_header_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() * 2);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

/// `%XX` sequences decoded; None when one is malformed or the result is not UTF-8.
pub(super) fn unescape(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3891_examples() {
        assert_eq!(
            Replaces::parse("425928@bobster.example.org;to-tag=7743;from-tag=6472"),
            Some(Replaces {
                call_id: "425928@bobster.example.org".into(),
                to_tag: "7743".into(),
                from_tag: "6472".into(),
                early_only: false
            })
        );
        let early = Replaces::parse(
            "98732@sip.example.com ; from-tag=r33th4x0r ; To-Tag=ff87ff ; early-only",
        )
        .expect("parses");
        assert_eq!((early.to_tag.as_str(), early.early_only), ("ff87ff", true));
        assert_eq!(
            Replaces::parse("x@y;to-tag=1"),
            None,
            "both tags are required"
        );
        assert_eq!(Replaces::parse(";to-tag=1;from-tag=2"), None);
    }

    #[test]
    fn replaces_escapes_and_unescapes() {
        let value = "a1@host;to-tag=x=y;from-tag=z%";
        let escaped = escape_header_value(value);
        assert_eq!(escaped, "a1%40host%3Bto-tag%3Dx%3Dy%3Bfrom-tag%3Dz%25");
        assert_eq!(unescape(&escaped).as_deref(), Some(value));
        assert_eq!(unescape("%4"), None);
        assert_eq!(unescape("%zz"), None);
        assert_eq!(unescape("%FF"), None, "not UTF-8");
    }
}
