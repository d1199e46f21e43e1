//! The `Replaces` header (RFC 3891): an INVITE that takes the place of an existing dialog, as
//! an attended transfer's target receives it.

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
}
