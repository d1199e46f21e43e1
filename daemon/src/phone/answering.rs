//! Which incoming calls ring, which the phone answers by itself and after how long, and when an
//! unanswered one gives up: decisions on the INVITE's headers and the agent's status, with no
//! clock of their own (the phone keeps the deadlines they return).
//!
//! `auto_answer = "bridged"` trusts the marks a PBX or dialler puts on a call it bridges to the
//! agent. Every SIP message reaches the line only over its flow to the registered server (a
//! connected UDP socket, or the TCP/TLS/WebSocket connection), so a marked INVITE sent from
//! anywhere else never arrives; the server must strip these headers from calls it only relays.
//! Marks understood (docs/deploy.md says which PBX sends which):
//! - `Call-Info: <…>;answer-after=N` (FreeSWITCH `sip_auto_answer`, Asterisk dialplans, Kamailio
//!   `append_hf`), answered after N seconds;
//! - `Alert-Info: <…>;info=alert-autoanswer` (also `info=auto-answer`, `autoanswer`, `delay=N`),
//!   and the plain `Alert-Info: Ring Answer` / `Auto Answer` some phones expect;
//! - `Answer-Mode: Auto` or `Priv-Answer-Mode: Auto` (RFC 5373);
//! - the header IT names in `auto_answer_header` (`Name`, or `Name: value` to match its value).

use std::time::{Duration, Instant};

use crate::config::{AccountConfig, AutoAnswer, ProvisioningConfig};
use crate::protocol::{EndCause, PresenceStatus};

/// The longest delay a mark may ask for; longer ones are cut to it.
pub const MAX_ANSWER_DELAY: Duration = Duration::from_secs(60);

/// IT's answering settings for the current line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answering {
    pub auto: AutoAnswer,
    /// `(name, value)`: the header IT's dialler marks bridged calls with.
    pub header: Option<(String, Option<String>)>,
    pub ring_timeout: Option<Duration>,
}

/// What to do with a call that just came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Ring for the agent; give up at the deadline, if any.
    Ring { give_up_at: Option<Instant> },
    /// Answer by itself at this instant (ringing until then).
    AnswerAt(Instant),
    /// Decline at once with this SIP status; the page sees `callRejected` passive with `cause`.
    Decline { status: u16, cause: EndCause },
}

impl Answering {
    pub fn from_account(account: &AccountConfig) -> Self {
        Self::new(
            account.auto_answer,
            account.auto_answer_header.as_deref(),
            account.ring_timeout,
        )
    }

    pub fn from_provisioning(provisioning: &ProvisioningConfig) -> Self {
        Self::new(
            provisioning.auto_answer,
            provisioning.auto_answer_header.as_deref(),
            provisioning.ring_timeout,
        )
    }

    fn new(auto: AutoAnswer, header: Option<&str>, ring_timeout: u32) -> Self {
        let header = header.map(|h| match h.split_once(':') {
            Some((name, value)) => (name.trim().to_owned(), Some(value.trim().to_owned())),
            None => (h.trim().to_owned(), None),
        });
        Self {
            auto,
            header,
            ring_timeout: (ring_timeout > 0).then(|| Duration::from_secs(ring_timeout.into())),
        }
    }

    /// The decision for a call with `headers` arriving `now` while the agent is in `status`.
    /// Do-not-disturb declines everything (486); a call that would be answered by itself is
    /// declined (480) while the agent is not ready, since nobody is at the headset.
    pub fn decide(
        &self,
        headers: &[(String, String)],
        status: &PresenceStatus,
        now: Instant,
    ) -> Decision {
        if !status.accept_calls {
            return Decision::Decline {
                status: 486,
                cause: EndCause::Dnd,
            };
        }
        let delay = match self.auto {
            AutoAnswer::Never => None,
            AutoAnswer::Always => Some(Duration::ZERO),
            AutoAnswer::Bridged => bridged_mark(headers, self.header.as_ref()),
        };
        match delay {
            Some(delay) => match refusal_to_answer(status) {
                Some((status, cause)) => Decision::Decline { status, cause },
                None => Decision::AnswerAt(now + delay.min(MAX_ANSWER_DELAY)),
            },
            None => Decision::Ring {
                give_up_at: self.ring_timeout.map(|t| now + t),
            },
        }
    }
}

/// Why a call may not be answered by itself in `status`, as the SIP refusal and its cause:
/// do-not-disturb (486) or not ready (480). Checked when it arrives and again when its delay ends.
pub fn refusal_to_answer(status: &PresenceStatus) -> Option<(u16, EndCause)> {
    if !status.accept_calls {
        Some((486, EndCause::Dnd))
    } else if !status.ready {
        Some((480, EndCause::NotReady))
    } else {
        None
    }
}

/// The delay a bridged-call mark in `headers` asks for, if there is one.
pub fn bridged_mark(
    headers: &[(String, String)],
    it_header: Option<&(String, Option<String>)>,
) -> Option<Duration> {
    let mut found: Option<Duration> = None;
    let mut mark = |delay: Duration| {
        found = Some(found.map_or(delay, |d| d.min(delay)));
    };
    for (name, value) in headers {
        if let Some((it_name, it_value)) = it_header
            && name.eq_ignore_ascii_case(it_name)
            && it_value.as_deref().is_none_or(|v| v == value.trim())
        {
            mark(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("Call-Info") {
            for entry in entries(value) {
                if let Some(seconds) = param(entry, "answer-after") {
                    mark(seconds_of(seconds).unwrap_or(Duration::ZERO));
                }
            }
        } else if name.eq_ignore_ascii_case("Alert-Info") {
            for entry in entries(value) {
                let info = param(entry, "info").map(str::to_ascii_lowercase);
                let plain = entry.trim().to_ascii_lowercase();
                let auto = matches!(
                    info.as_deref(),
                    Some("alert-autoanswer" | "auto-answer" | "autoanswer" | "auto answer")
                ) || matches!(plain.as_str(), "ring answer" | "auto answer");
                if auto {
                    let delay = param(entry, "delay").and_then(seconds_of);
                    mark(delay.unwrap_or(Duration::ZERO));
                }
            }
        } else if (name.eq_ignore_ascii_case("Answer-Mode")
            || name.eq_ignore_ascii_case("Priv-Answer-Mode"))
            && value
                .split(';')
                .next()
                .is_some_and(|mode| mode.trim().eq_ignore_ascii_case("auto"))
        {
            mark(Duration::ZERO);
        }
    }
    found
}

/// The comma-separated entries of a header value, commas inside `<…>` or quotes kept.
fn entries(value: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut depth = 0u32;
    let mut quoted = false;
    let mut cuts = Vec::new();
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                cuts.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    cuts.push((start, value.len()));
    cuts.into_iter().map(move |(a, b)| &value[a..b])
}

/// The value of `;name=value` after an entry's `<uri>`, case-insensitive name, quotes removed.
fn param<'a>(entry: &'a str, name: &str) -> Option<&'a str> {
    let params = match entry.rfind('>') {
        Some(end) => &entry[end + 1..],
        None => entry,
    };
    params.split(';').find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"'))
    })
}

fn seconds_of(text: &str) -> Option<Duration> {
    text.parse::<u32>()
        .ok()
        .map(|s| Duration::from_secs(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn status(accept_calls: bool, ready: bool) -> PresenceStatus {
        PresenceStatus {
            softphone_id: "s".into(),
            name: "S".into(),
            accept_calls,
            ready,
        }
    }

    #[test]
    fn the_marks_pbxs_send_are_recognised_with_their_delay() {
        let secs = |s| Some(Duration::from_secs(s));
        for (list, expected) in [
            (
                vec![("Call-Info", "<sip:10.0.0.1>;answer-after=0")],
                secs(0),
            ),
            (vec![("call-info", "<sip:pbx>;Answer-After=3")], secs(3)),
            (
                vec![(
                    "Call-Info",
                    "<http://a,b>;purpose=icon, <sip:x>;answer-after=2",
                )],
                secs(2),
            ),
            (
                vec![(
                    "Alert-Info",
                    "<http://www.notused.com>;info=alert-autoanswer;delay=5",
                )],
                secs(5),
            ),
            (vec![("Alert-Info", "info=Auto Answer")], secs(0)),
            (vec![("Alert-Info", "Ring Answer")], secs(0)),
            (vec![("Answer-Mode", "Auto;require")], secs(0)),
            (vec![("Priv-Answer-Mode", "Auto")], secs(0)),
            // Not marks.
            (vec![("Answer-Mode", "Manual")], None),
            (
                vec![("Call-Info", "<http://x/icon.png>;purpose=icon")],
                None,
            ),
            (vec![("Alert-Info", "<http://x/ring.wav>")], None),
            (vec![("X-Answer-After", "0")], None),
            (vec![], None),
        ] {
            assert_eq!(bridged_mark(&headers(&list), None), expected, "{list:?}");
        }
        // The shortest delay of several marks wins.
        let two = headers(&[
            ("Call-Info", "<sip:a>;answer-after=9"),
            ("Answer-Mode", "Auto"),
        ]);
        assert_eq!(bridged_mark(&two, None), secs(0));
    }

    #[test]
    fn the_header_it_names_is_a_mark_with_or_without_a_value() {
        let named = ("X-Dialer-Bridge".to_owned(), None);
        let valued = ("X-Dialer-Bridge".to_owned(), Some("yes".to_owned()));
        let call = headers(&[("x-dialer-bridge", " yes ")]);
        assert_eq!(bridged_mark(&call, Some(&named)), Some(Duration::ZERO));
        assert_eq!(bridged_mark(&call, Some(&valued)), Some(Duration::ZERO));
        let other = headers(&[("X-Dialer-Bridge", "no")]);
        assert_eq!(bridged_mark(&other, Some(&valued)), None);
    }

    #[test]
    fn a_hostile_mark_is_bounded() {
        let now = Instant::now();
        let answering = Answering {
            auto: AutoAnswer::Bridged,
            ..Answering::default()
        };
        let long = headers(&[("Call-Info", "<sip:a>;answer-after=99999999999")]);
        assert_eq!(
            answering.decide(&long, &status(true, true), now),
            Decision::AnswerAt(now + Duration::ZERO),
            "a delay that is no u32 is no delay"
        );
        let hour = headers(&[("Call-Info", "<sip:a>;answer-after=3600")]);
        assert_eq!(
            answering.decide(&hour, &status(true, true), now),
            Decision::AnswerAt(now + MAX_ANSWER_DELAY)
        );
        let junk = headers(&[("Call-Info", &"<<<;;;==,,,\"".repeat(5_000))]);
        assert!(matches!(
            answering.decide(&junk, &status(true, true), now),
            Decision::Ring { .. }
        ));
    }

    #[test]
    fn the_agents_status_decides_before_any_mark() {
        let now = Instant::now();
        let marked = headers(&[("Answer-Mode", "Auto")]);
        let plain = headers(&[]);
        let bridged = Answering {
            auto: AutoAnswer::Bridged,
            ring_timeout: Some(Duration::from_secs(20)),
            ..Answering::default()
        };
        assert_eq!(
            bridged.decide(&marked, &status(false, false), now),
            Decision::Decline {
                status: 486,
                cause: EndCause::Dnd
            }
        );
        assert_eq!(
            bridged.decide(&marked, &status(true, false), now),
            Decision::Decline {
                status: 480,
                cause: EndCause::NotReady
            }
        );
        assert_eq!(
            bridged.decide(&plain, &status(true, false), now),
            Decision::Ring {
                give_up_at: Some(now + Duration::from_secs(20))
            },
            "a call to the agent rings while not ready"
        );
        assert_eq!(
            bridged.decide(&marked, &status(true, true), now),
            Decision::AnswerAt(now)
        );
        let never = Answering::default();
        assert_eq!(
            never.decide(&marked, &status(true, true), now),
            Decision::Ring { give_up_at: None },
            "marks mean nothing unless IT chose bridged"
        );
        let always = Answering {
            auto: AutoAnswer::Always,
            ..Answering::default()
        };
        assert_eq!(
            always.decide(&plain, &status(true, true), now),
            Decision::AnswerAt(now)
        );
    }
}
