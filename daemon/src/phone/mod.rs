//! The phone: the one command/event interface every surface (WebSocket API, tray, CLI) drives.
//!
//! [`Phone`] is sans-IO: it takes [`Action`]s and hands back a reply, and queues [`Event`]s for
//! the caller to drain with [`Phone::poll_event`]. It reads no clock and touches no socket, so
//! it is tested directly. [`driver`] runs it in one tokio task that owns it (no mutex around
//! phone state) and numbers and fans out its events.

pub mod driver;
pub mod event_log;

use std::collections::VecDeque;

use serde_json::{Value, json};

use crate::line::LineEvent;
use crate::protocol::{
    Action, DispositionsChanged, ErrorCode, Event, LineInfo, LineState, PartnerConfig, PresenceStatus,
    RegistrationChanged, Snapshot, StatusChanged,
};

/// Limits on page-supplied lists, so one page cannot make every snapshot huge.
const MAX_DISPOSITIONS: usize = 200;
const MAX_TEXT_CHARS: usize = 200;

/// What the phone is set up with at start.
#[derive(Debug, Clone)]
pub struct PhoneSettings {
    /// Non-empty; the config layer supplies defaults.
    pub statuses: Vec<PresenceStatus>,
    /// `softphoneId` of the status to start in; the first status when `None`.
    pub initial_status: Option<String>,
    /// An `[account]` is configured: the line starts out registering.
    pub line_configured: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PhoneError {
    #[error("`{action}` needs a phone line, and none is configured yet")]
    NoLine { action: &'static str },
    #[error("`{action}` needs a registered line; the line is {state}")]
    LineDown { action: &'static str, state: &'static str },
    #[error("`{action}`: this build registers the line but cannot place or take calls yet")]
    CallsUnsupported { action: &'static str },
    #[error("unknown softphoneId `{0}`; configured statuses are listed in the snapshot")]
    UnknownStatus(String),
    #[error("no call with conversationId `{0}`")]
    UnknownCall(String),
    #[error("{0}")]
    InvalidParams(String),
}

impl PhoneError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NoLine { .. } | Self::LineDown { .. } | Self::CallsUnsupported { .. } => ErrorCode::NoLine,
            Self::UnknownStatus(_) => ErrorCode::UnknownStatus,
            Self::UnknownCall(_) => ErrorCode::UnknownCall,
            Self::InvalidParams(_) => ErrorCode::InvalidParams,
        }
    }
}

#[derive(Debug)]
pub struct Phone {
    statuses: Vec<PresenceStatus>,
    /// Index into `statuses`; always in range because `statuses` never shrinks.
    presence: usize,
    dispositions: Vec<String>,
    partner_config: Option<PartnerConfig>,
    line: LineInfo,
    events: VecDeque<Event>,
}

impl Phone {
    pub fn new(settings: PhoneSettings) -> Self {
        let mut statuses = settings.statuses;
        if statuses.is_empty() {
            statuses = crate::config::default_statuses();
        }
        let presence = settings
            .initial_status
            .and_then(|id| statuses.iter().position(|s| s.softphone_id == id))
            .unwrap_or(0);
        Self {
            statuses,
            presence,
            dispositions: Vec::new(),
            partner_config: None,
            line: LineInfo {
                state: if settings.line_configured { LineState::Registering } else { LineState::None },
                extension: None,
            },
            events: VecDeque::new(),
        }
    }

    /// Carries out one action. On success returns the reply's `result`.
    pub fn handle_action(&mut self, action: Action) -> Result<Value, PhoneError> {
        if action.needs_line() {
            let action = action.name();
            return Err(match self.line.state {
                LineState::None => PhoneError::NoLine { action },
                LineState::Registered => PhoneError::CallsUnsupported { action },
                state => PhoneError::LineDown { action, state: line_state_name(state) },
            });
        }
        match action {
            Action::GetState => Ok(json!({ "state": self.snapshot() })),
            Action::UpdatePresence(p) => self.set_presence(&p.softphone_id),
            Action::Disposition(codes) => self.set_dispositions(codes),
            Action::PartnerConfig(config) => {
                check_text("partnerId", &config.partner_id)?;
                self.partner_config = Some(config.clone());
                self.events.push_back(Event::PartnerConfigChanged(config));
                Ok(json!({}))
            }
            // Notes belong to a call; with no line there has been no call to annotate.
            Action::SubmitNotes(n) => Err(PhoneError::UnknownCall(n.conversation_id)),
            other => Err(PhoneError::NoLine { action: other.name() }),
        }
    }

    /// The next event to publish, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            line: self.line.clone(),
            presence: self.statuses[self.presence].clone(),
            statuses: self.statuses.clone(),
            dispositions: self.dispositions.clone(),
            partner_config: self.partner_config.clone(),
            calls: Vec::new(),
        }
    }

    /// What the line driver reports.
    pub fn handle_line_event(&mut self, event: LineEvent) {
        let (state, extension, reason) = match event {
            LineEvent::Registered { extension } => (LineState::Registered, Some(extension), None),
            LineEvent::Failed { reason } => (LineState::Failed, None, Some(reason)),
            LineEvent::Unregistered => (LineState::Unregistered, None, None),
        };
        let changed = self.line.state != state || self.line.extension != extension;
        self.line = LineInfo { state, extension: extension.clone() };
        // Refreshes that change nothing are not news; failures always are (the reason may differ).
        if changed || reason.is_some() {
            self.events.push_back(Event::RegistrationChanged(RegistrationChanged { state, extension, reason }));
        }
    }

    fn set_presence(&mut self, softphone_id: &str) -> Result<Value, PhoneError> {
        let index = self
            .statuses
            .iter()
            .position(|s| s.softphone_id == softphone_id)
            .ok_or_else(|| PhoneError::UnknownStatus(shorten(softphone_id)))?;
        self.presence = index;
        let status = &self.statuses[index];
        // Re-selecting the current status still notifies: the contract treats every
        // update_presence as a status change the wrapper should see.
        self.events.push_back(Event::StatusChanged(StatusChanged {
            softphone_id: status.softphone_id.clone(),
            name: status.name.clone(),
        }));
        Ok(json!({ "softphoneId": status.softphone_id, "name": status.name }))
    }

    fn set_dispositions(&mut self, codes: Vec<String>) -> Result<Value, PhoneError> {
        if codes.len() > MAX_DISPOSITIONS {
            return Err(PhoneError::InvalidParams(format!(
                "at most {MAX_DISPOSITIONS} disposition codes, got {}",
                codes.len()
            )));
        }
        for code in &codes {
            check_text("disposition code", code)?;
        }
        self.dispositions = codes.clone();
        self.events.push_back(Event::DispositionsChanged(DispositionsChanged { codes }));
        Ok(json!({}))
    }
}

fn check_text(what: &str, text: &str) -> Result<(), PhoneError> {
    if text.trim().is_empty() {
        return Err(PhoneError::InvalidParams(format!("{what} must not be empty")));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(PhoneError::InvalidParams(format!(
            "{what} is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(())
}

fn line_state_name(state: LineState) -> &'static str {
    match state {
        LineState::None => "not configured",
        LineState::Registering => "registering",
        LineState::Registered => "registered",
        LineState::Unregistered => "unregistered",
        LineState::Failed => "failing to register",
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests;
