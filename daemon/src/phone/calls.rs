//! Calls as the agent and the CRM see them: contract events from line events, and the policy for
//! what may be dialled. Part of the sans-IO phone (time comes in as `now`).

use std::time::Instant;

use sip_core::Uri;
use sip_core::call::EndReason;

use crate::ids::ConversationId;
use crate::line::RecordingState;

use crate::protocol::{
    CallAccepted, CallEnded, CallInfo, CallQuality, CallRejected, EndCause, Event, IncomingCall,
};
use crate::store::StoredCall;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Outbound, sent, no ringing yet.
    Dialing,
    Ringing,
    Active,
}

/// Contract fields filled from SIP headers of an incoming INVITE (defaults documented in
/// docs/protocol.md): `X-Partner-Id`, `X-Language`, `X-IVR-Exit-Path`, `X-Channel-Name`,
/// `X-Reservation-Start-Date`, `X-Special-Event`, `X-Escalation-Type`, `X-Recording-Status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContractFields {
    pub partner_id: Option<String>,
    pub language: Option<String>,
    pub ivr_exit_path: Option<String>,
    pub channel_name: Option<String>,
    pub reservation_start_date: Option<String>,
    pub special_event: Option<String>,
    pub escalation_type: Option<String>,
    pub recording_status: Option<String>,
}

impl ContractFields {
    pub fn from_headers(headers: &[(String, String)]) -> Self {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().chars().take(200).collect::<String>())
        };
        Self {
            partner_id: get("X-Partner-Id"),
            language: get("X-Language"),
            ivr_exit_path: get("X-IVR-Exit-Path"),
            channel_name: get("X-Channel-Name"),
            reservation_start_date: get("X-Reservation-Start-Date"),
            special_event: get("X-Special-Event"),
            escalation_type: get("X-Escalation-Type"),
            recording_status: get("X-Recording-Status"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PhoneCall {
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub state: CallState,
    /// The number dialled, or the caller's number.
    pub remote: String,
    pub muted: bool,
    /// The agent put it on hold (confirmed by the far end).
    pub held: bool,
    pub remote_hold: bool,
    pub quality: Option<CallQuality>,
    pub answered_at: Option<Instant>,
    pub fields: ContractFields,
    /// Where a transfer we asked for takes the call, until it ends.
    pub transferring_to: Option<String>,
    /// A shotgun dial's numbers, in order (empty for a call to one number).
    pub shotgun: Vec<String>,
    /// The agent's disposition and notes submitted during the call, for its `callEnded`.
    pub outcome: Option<Outcome>,
    /// Its recording: the id and where it stands (asked for, then as the line reports).
    pub recording: Option<(String, RecordingState)>,
    /// Recordings started for it so far.
    pub recordings: u32,
    /// Why the phone declined it by itself (do-not-disturb, not ready, rang too long): its
    /// `callRejected` is then passive with this cause.
    pub declined_for: Option<EndCause>,
    /// How many more digits the far end may send now (made at its first digit).
    pub dtmf_budget: Option<crate::rate::TokenBucket>,
    /// Why its media has no working audio device, when it has none.
    pub audio_unavailable: Option<String>,
    /// The devices its audio runs on now, as its media reported them.
    pub audio_devices: Option<crate::protocol::DevicesInUse>,
}

/// What the agent made of a call (`submit_notes`).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub disposition: String,
    pub notes: String,
}

impl PhoneCall {
    pub fn new(
        conversation_id: ConversationId,
        direction: Direction,
        state: CallState,
        remote: String,
        fields: ContractFields,
    ) -> Self {
        Self {
            conversation_id,
            direction,
            state,
            remote,
            muted: false,
            held: false,
            remote_hold: false,
            quality: None,
            answered_at: None,
            fields,
            transferring_to: None,
            shotgun: Vec::new(),
            outcome: None,
            recording: None,
            recordings: 0,
            declined_for: None,
            dtmf_budget: None,
            audio_unavailable: None,
            audio_devices: None,
        }
    }

    /// Recorded now (or about to be): `recording` or `paused`.
    pub fn recording_state(&self) -> Option<RecordingState> {
        self.recording
            .as_ref()
            .map(|(_, state)| *state)
            .filter(|s| matches!(s, RecordingState::Recording | RecordingState::Paused))
    }

    pub fn info(&self) -> CallInfo {
        CallInfo {
            conversation_id: self.conversation_id.to_string(),
            partner_id: self.fields.partner_id.clone(),
            call_type: self.call_type().into(),
            state: match self.state {
                CallState::Dialing => "dialing",
                CallState::Ringing => "ringing",
                CallState::Active if self.held => "held",
                CallState::Active => "active",
            }
            .into(),
            remote: self.remote.clone(),
            muted: self.muted,
            remote_hold: self.remote_hold,
            quality: self.quality.clone(),
            conference_id: None,
            recording: self.recording_state().map(|s| s.as_str().to_owned()),
            audio_unavailable: self.audio_unavailable.clone(),
            audio_devices: self.audio_devices.clone(),
        }
    }

    pub fn call_type(&self) -> &'static str {
        match self.direction {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    fn language(&self) -> String {
        self.fields
            .language
            .clone()
            .unwrap_or_else(|| "en_US".into())
    }

    pub fn incoming_event(&self) -> IncomingCall {
        IncomingCall {
            partner_id: self.fields.partner_id.clone(),
            conversation_id: self.conversation_id.to_string(),
            caller_ani: self.remote.clone(),
            language: self.language(),
        }
    }

    pub fn accepted_event(&self) -> CallAccepted {
        let f = &self.fields;
        CallAccepted {
            partner_id: f.partner_id.clone(),
            conversation_id: self.conversation_id.to_string(),
            caller_ani: self.remote.clone(),
            language: self.language(),
            ivr_exit_path: f.ivr_exit_path.clone(),
            channel_name: f.channel_name.clone(),
            reservation_start_date: f.reservation_start_date.clone(),
            special_event: f.special_event.clone(),
            escalation_type: f.escalation_type.clone(),
            // True to what happens: ON while we record it, or when the PBX says it records.
            recording_status: match f.recording_status.as_deref() {
                _ if self.recording_state().is_some() => "ON".into(),
                Some(s) if s.eq_ignore_ascii_case("on") => "ON".into(),
                _ => "OFF".into(),
            },
            dialled_to: (!self.shotgun.is_empty()).then(|| self.remote.clone()),
        }
    }

    /// The contract event for this call's end: `callEnded` once it was up; for an inbound call
    /// that never was, `callRejected` (`active` when the agent declined, `passive` otherwise).
    pub fn end_event(&self, reason: &EndReason, now: Instant) -> Result<CallEnded, CallRejected> {
        let (sip_status, sip_reason) = match reason {
            EndReason::Rejected { status, reason } => (
                Some(*status),
                Some(sip_core::call::clean_reason(reason)).filter(|r| !r.is_empty()),
            ),
            _ => (None, None),
        };
        if self.answered_at.is_none() && self.direction == Direction::Inbound {
            return Err(CallRejected {
                partner_id: self.fields.partner_id.clone(),
                conversation_id: self.conversation_id.to_string(),
                reason: if *reason == EndReason::Declined && self.declined_for.is_none() {
                    "active"
                } else {
                    "passive"
                }
                .into(),
                cause: match (reason, self.declined_for) {
                    (EndReason::Declined, Some(cause)) => cause,
                    _ => end_cause(reason),
                },
                sip_status,
                sip_reason,
            });
        }
        Ok(CallEnded {
            partner_id: self.fields.partner_id.clone(),
            conversation_id: self.conversation_id.to_string(),
            duration: self
                .answered_at
                .map_or(0, |at| now.saturating_duration_since(at).as_secs()),
            disposition: self.outcome.as_ref().map(|o| o.disposition.clone()),
            notes: self.outcome.as_ref().map(|o| o.notes.clone()),
            call_type: self.call_type().into(),
            cause: end_cause(reason),
            sip_status,
            sip_reason,
        })
    }
}

/// The end of a call the daemon's stop cut (found unfinished in the store at start):
/// `callRejected` for an incoming call that never was answered, else `callEnded`, with cause
/// `interrupted` and the duration up to `last_ms`, the last event stored before the stop.
pub fn interrupted_event(call: &StoredCall, last_ms: i64) -> Event {
    if call.direction == "inbound" && call.answered_ms.is_none() {
        return Event::CallRejected(CallRejected {
            partner_id: call.partner_id.clone(),
            conversation_id: call.conversation_id.clone(),
            reason: "passive".into(),
            cause: EndCause::Interrupted,
            sip_status: None,
            sip_reason: None,
        });
    }
    let duration = call.answered_ms.map_or(0, |at| {
        u64::try_from(last_ms.saturating_sub(at) / 1000).unwrap_or(0)
    });
    Event::CallEnded(CallEnded {
        partner_id: call.partner_id.clone(),
        conversation_id: call.conversation_id.clone(),
        duration,
        disposition: call.disposition.clone(),
        notes: call.notes.clone(),
        call_type: call.direction.clone(),
        cause: EndCause::Interrupted,
        sip_status: None,
        sip_reason: None,
    })
}

/// The line's end reason in the contract's words.
fn end_cause(reason: &EndReason) -> EndCause {
    match reason {
        EndReason::Local => EndCause::Local,
        EndReason::Remote | EndReason::Cancelled => EndCause::Remote,
        EndReason::Declined => EndCause::Declined,
        EndReason::Rejected { status, .. } => match status {
            486 | 600 => EndCause::Busy,
            603 => EndCause::Declined,
            408 | 480 => EndCause::NoAnswer,
            487 => EndCause::Local,
            _ => EndCause::Rejected,
        },
        EndReason::Timeout { .. } => EndCause::Timeout,
        EndReason::Failed { .. } => EndCause::Failed,
        EndReason::Transferred => EndCause::Transferred,
        EndReason::Network { .. } => EndCause::Network,
    }
}

/// The dialling policy: a phone number (`+`, digits, `*`, `#`; spaces, dashes, dots and
/// parentheses are ignored), a user name such as `1002` or `echo`, or a full `sip:`/`sips:`/`tel:`
/// URI. Anything else is refused with the reason.
pub fn target_uri(dial: &str, domain: &str) -> Result<(Uri, String), String> {
    let dial = dial.trim();
    if dial.is_empty() {
        return Err("the number is empty".into());
    }
    if dial.len() > 256 {
        return Err("the number is longer than 256 characters".into());
    }
    // The number ends up in the request line and in To: refuse, never repair, anything that
    // could end a line or a header value there.
    if dial.chars().any(char::is_control) {
        return Err("the number contains a line break or another control character".into());
    }
    let lower = dial.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") || lower.starts_with("tel:") {
        let uri =
            Uri::parse(dial).map_err(|_| format!("{} is not a valid SIP URI", shown(dial)))?;
        let user_ok = uri.user.as_deref().is_none_or(|user| {
            !user.is_empty()
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()+%#&=$".contains(c))
        });
        let host_ok = uri
            .host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
        let params_ok = uri.params.iter().all(|(name, value)| {
            std::iter::once(name.as_str())
                .chain(value.as_deref())
                .all(|t| {
                    t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'+%".contains(c))
                })
        });
        if !(user_ok && host_ok && params_ok) {
            return Err(format!(
                "{} has characters a SIP URI may not carry unescaped (spaces, <, >, commas, quotes…)",
                shown(dial)
            ));
        }
        let shown = uri.user.clone().unwrap_or_else(|| uri.host.clone());
        return Ok((uri, shown));
    }
    let digits: String = dial
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let is_number = !digits.is_empty()
        && digits
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || c == '*' || c == '#' || (c == '+' && i == 0))
        && digits.chars().any(|c| c.is_ascii_digit());
    let user = if is_number {
        if digits.len() > 32 {
            return Err("a phone number has at most 32 digits".into());
        }
        digits
    } else if dial
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        dial.to_owned()
    } else {
        return Err(format!(
            "{} is not a phone number, user or SIP URI",
            shown(dial)
        ));
    };
    let uri = Uri::parse(&format!("sip:{user}@{domain}"))
        .map_err(|_| format!("{} cannot be dialled on {domain}", shown(dial)))?;
    Ok((uri, user))
}

/// A refused number in an error message: quoted and escaped, at most 64 characters.
fn shown(dial: &str) -> String {
    format!("{:?}", dial.chars().take(64).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialling_policy() {
        let ok = |d: &str| target_uri(d, "127.0.0.1").map(|(u, shown)| (u.to_string(), shown));
        assert_eq!(
            ok("+1 (888) 397-3342"),
            Ok(("sip:+18883973342@127.0.0.1".into(), "+18883973342".into()))
        );
        assert_eq!(ok("1002"), Ok(("sip:1002@127.0.0.1".into(), "1002".into())));
        assert_eq!(ok("echo"), Ok(("sip:echo@127.0.0.1".into(), "echo".into())));
        assert_eq!(ok("*97#").map(|(u, _)| u), Ok("sip:*97#@127.0.0.1".into()));
        assert_eq!(
            ok("sip:bob@example.com:5070").map(|(_, s)| s),
            Ok("bob".into())
        );
        for bad in [
            "",
            "call me",
            "1+2",
            "12345678901234567890123456789012345",
            "<script>",
            "sip:",
            "+",
            // Security review, finding 2: header injection through the dialled number.
            "1002\r\nP-Asserted-Identity: <sip:boss@example.com>",
            "sip:1002\r\nINVITE sip:x@y SIP/2.0@127.0.0.1",
            "tel:+1555\r\nX: y",
            "sip:a b@127.0.0.1",
            "sip:a>b@127.0.0.1",
            "sip:a,b@127.0.0.1",
            "sip:a\"b@127.0.0.1",
            "tel:+1 555",
            "tel:+1555,x",
            "sip:1002@127.0.0.1;transport=udp>x",
            "1002\0",
        ] {
            assert!(ok(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn contract_fields_from_headers() {
        let headers = vec![
            ("X-Partner-Id".to_owned(), "p1".to_owned()),
            ("x-language".to_owned(), "es_MX".to_owned()),
            ("X-Recording-Status".to_owned(), "on".to_owned()),
        ];
        let call = PhoneCall::new(
            "c".into(),
            Direction::Inbound,
            CallState::Ringing,
            "+1555".into(),
            ContractFields::from_headers(&headers),
        );
        let accepted = call.accepted_event();
        assert_eq!(
            (
                accepted.partner_id.as_deref(),
                accepted.language.as_str(),
                accepted.recording_status.as_str()
            ),
            (Some("p1"), "es_MX", "ON")
        );
        let now = Instant::now();
        assert_eq!(
            call.end_event(&EndReason::Declined, now)
                .err()
                .map(|r| r.reason),
            Some("active".into())
        );
        assert_eq!(
            call.end_event(&EndReason::Cancelled, now)
                .err()
                .map(|r| r.reason),
            Some("passive".into())
        );
    }
}
