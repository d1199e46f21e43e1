//! The dialler dispositions uContact names (seed `003_…`): `RESPOOL`, `RESPOOLALTERNATIVE`,
//! `BLACKLIST` and `SCHEDULE`. They are always taken by `submit_notes`, whatever list of
//! dispositions a page set, and two of them act here: `BLACKLIST` puts the call's number on the
//! agent's blacklist, `SCHEDULE` (with `scheduleAt`) keeps a callback and emits `callbackDue` when
//! it is due — also after a restart, the driver keeping the pending ones in the store. `RESPOOL`
//! and `RESPOOLALTERNATIVE` are the dialler's to carry out: they reach it in `callNotesSubmitted`,
//! `callEnded` and the notification endpoint.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Phone, PhoneError};
use crate::blacklist::Number;
use crate::protocol::{CallbackDue, Event};

pub const DIALLER_DISPOSITIONS: [&str; 4] =
    ["RESPOOL", "RESPOOLALTERNATIVE", "BLACKLIST", "SCHEDULE"];
/// Callbacks pending at once.
pub const MAX_CALLBACKS: usize = 1_000;
/// How far ahead a callback may be scheduled.
const MAX_AHEAD: time::Duration = time::Duration::days(366);

/// What a dialler disposition will do, checked before anything changes.
pub(super) enum DiallerOutcome {
    None,
    /// Any other disposition: a callback scheduled on the call before is called off.
    Other(String),
    Blacklist(Number),
    Schedule(CallbackDue, OffsetDateTime),
}

impl Phone {
    /// Checks a disposition's dialler meaning for the call with `number`: nothing is changed yet,
    /// so a refusal leaves everything as it was.
    pub(super) fn dialler_outcome(
        &self,
        disposition: &str,
        schedule_at: Option<&str>,
        conversation_id: &str,
        number: &str,
    ) -> Result<DiallerOutcome, PhoneError> {
        if disposition != "SCHEDULE" && schedule_at.is_some() {
            return Err(PhoneError::InvalidParams(
                "`scheduleAt` goes only with the disposition SCHEDULE".into(),
            ));
        }
        match disposition {
            "BLACKLIST" => {
                let number = Number::parse(number).map_err(|e| {
                    PhoneError::InvalidNumber(format!(
                        "BLACKLIST: the call's number cannot be blacklisted: {e}; nothing was changed"
                    ))
                })?;
                let listed =
                    self.blacklist.agent_has(&number) || self.blacklist.machine_has(&number);
                if !listed && self.blacklist.agent_len() >= crate::blacklist::MAX_AGENT_NUMBERS {
                    return Err(PhoneError::InvalidParams(format!(
                        "BLACKLIST: the blacklist holds at most {} numbers; nothing was changed",
                        crate::blacklist::MAX_AGENT_NUMBERS
                    )));
                }
                Ok(if listed {
                    DiallerOutcome::None
                } else {
                    DiallerOutcome::Blacklist(number)
                })
            }
            "SCHEDULE" => {
                let text = schedule_at.ok_or_else(|| {
                    PhoneError::InvalidParams(
                        "SCHEDULE needs `scheduleAt`: when to call back (RFC 3339, e.g. 2026-12-04T15:30:00Z)".into(),
                    )
                })?;
                let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
                    PhoneError::InvalidParams(format!(
                        "`scheduleAt` {} is not an RFC 3339 date and time such as 2026-12-04T15:30:00Z",
                        super::shorten(text)
                    ))
                })?;
                let now = (self.wall_clock)();
                if at <= now {
                    return Err(PhoneError::InvalidParams(format!(
                        "`scheduleAt` {} is in the past",
                        super::shorten(text)
                    )));
                }
                if at - now > MAX_AHEAD {
                    return Err(PhoneError::InvalidParams(
                        "`scheduleAt` is more than a year ahead".into(),
                    ));
                }
                if self.callbacks.len() >= MAX_CALLBACKS {
                    return Err(PhoneError::InvalidParams(format!(
                        "{MAX_CALLBACKS} callbacks are pending already"
                    )));
                }
                let at = at.to_offset(time::UtcOffset::UTC);
                Ok(DiallerOutcome::Schedule(
                    CallbackDue {
                        number: number.to_owned(),
                        conversation_id: conversation_id.to_owned(),
                        at: at.format(&Rfc3339).unwrap_or_default(),
                    },
                    at,
                ))
            }
            _ => Ok(DiallerOutcome::Other(conversation_id.to_owned())),
        }
    }

    /// Carries out a checked outcome; the `scheduleAt` for `callNotesSubmitted`.
    pub(super) fn apply_dialler_outcome(&mut self, outcome: DiallerOutcome) -> Option<String> {
        match outcome {
            DiallerOutcome::None => None,
            DiallerOutcome::Other(conversation_id) => {
                let before = self.callbacks.len();
                self.callbacks
                    .retain(|(_, c)| c.conversation_id != conversation_id);
                if self.callbacks.len() != before {
                    self.callbacks_changed = true;
                }
                None
            }
            DiallerOutcome::Blacklist(number) => {
                self.blacklist.add(number);
                self.blacklist_changed = true;
                self.share_blacklist();
                None
            }
            DiallerOutcome::Schedule(callback, at) => {
                let shown = callback.at.clone();
                // Scheduling the same call again moves its callback.
                self.callbacks
                    .retain(|(_, c)| c.conversation_id != callback.conversation_id);
                self.callbacks.push((at, callback));
                self.callbacks_changed = true;
                Some(shown)
            }
        }
    }

    /// When the next callback is due (a calendar time: the driver turns it into a deadline).
    pub fn next_callback_at(&self) -> Option<OffsetDateTime> {
        self.callbacks.iter().map(|(at, _)| *at).min()
    }

    /// Emits `callbackDue` for every callback due at `now` (a calendar time).
    pub fn fire_due_callbacks(&mut self, now: OffsetDateTime) {
        let (due, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut self.callbacks)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.callbacks = pending;
        if !due.is_empty() {
            self.callbacks_changed = true;
        }
        for (_, callback) in due {
            self.events.push_back(Event::CallbackDue(callback));
        }
    }

    /// The pending callbacks when they changed since the last call (for the store).
    pub fn take_changed_callbacks(&mut self) -> Option<Vec<CallbackDue>> {
        std::mem::take(&mut self.callbacks_changed)
            .then(|| self.callbacks.iter().map(|(_, c)| c.clone()).collect())
    }

    /// Storing what [`Phone::take_changed_blacklist`] or [`Phone::take_changed_callbacks`]
    /// handed out failed: hand it out again next time.
    pub fn still_to_store(&mut self, key: &str) {
        match key {
            "blacklist" => self.blacklist_changed = true,
            "callbacks" => self.callbacks_changed = true,
            _ => {}
        }
    }

    /// The agent's blacklist when it changed since the last call (for the store).
    pub fn take_changed_blacklist(&mut self) -> Option<Vec<String>> {
        std::mem::take(&mut self.blacklist_changed).then(|| self.blacklist.agent_numbers())
    }
}

/// Callbacks kept by the last run; ones that no longer parse are dropped.
pub(super) fn restored(saved: Option<Vec<CallbackDue>>) -> Vec<(OffsetDateTime, CallbackDue)> {
    saved
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| Some((OffsetDateTime::parse(&c.at, &Rfc3339).ok()?, c)))
        .take(MAX_CALLBACKS)
        .collect()
}
