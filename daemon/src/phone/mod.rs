//! The phone: the one command/event interface every surface (WebSocket API, tray, CLI) drives.
//!
//! [`Phone`] is sans-IO: it takes [`Action`]s and hands back a reply, and queues [`Event`]s for
//! the caller to drain with [`Phone::poll_event`]. It reads no clock and touches no socket, so
//! it is tested directly. [`driver`] runs it in one tokio task that owns it (no mutex around
//! phone state); the [`journal`] numbers its events, writes them to the store before they are
//! sent, and replays them to each page origin from where it left off.

pub mod answering;
mod blacklisting;
mod calls;
mod dial_headers;
mod dial_rules;
mod dialler;
pub mod driver;
pub mod event_log;
pub mod journal;

use std::collections::VecDeque;
use std::time::Instant;

use calls::{CallState, Direction, PhoneCall};
use sip_core::call::TransferOutcome;
use sip_core::registration::Entropy;

use serde_json::{Value, json};

use crate::ids::{ConferenceId, ConversationId};
use crate::line::{
    LineCommand, LineEvent, MAX_CONFERENCE, MAX_SHOTGUN, RecordOp, RecordingState, TransferKind,
};
use crate::protocol::{
    Action, AudioDevices, AudioDevicesChanged, CallHoldChanged, CallMuteChanged,
    CallNotesSubmitted, CallQuality, CallRinging, CallTransferred, ConferenceChanged,
    DispositionsChanged, DtmfReceived, ErrorCode, Event, LineInfo, LineState,
    OutboundCallInitiated, PartnerConfig, PresenceStatus, RegistrationChanged, Snapshot,
    StatusChanged,
};
use crate::store::{SavedState, StoredCall};
pub use answering::Answering;
use answering::Decision;
pub use dial_headers::DialHeaders;
pub use dial_rules::DialRules;

/// What happens to a ringing call at its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    Answer,
    GiveUp,
}

/// Limits on page-supplied lists, so one page cannot make every snapshot huge.
const MAX_DISPOSITIONS: usize = 200;
const MAX_TEXT_CHARS: usize = 200;
/// Longest audio device name `set_audio_devices` takes (OS names are far shorter).
const MAX_DEVICE_NAME_CHARS: usize = 128;

/// What the phone is set up with at start.
pub struct PhoneSettings {
    /// Non-empty; the config layer supplies defaults.
    pub statuses: Vec<PresenceStatus>,
    /// `softphoneId` of the status to start in; the first status when `None`.
    pub initial_status: Option<String>,
    /// The line's SIP domain when an `[account]` is configured (numbers are dialled in it).
    pub line_domain: Option<String>,
    /// Makes conversation ids (the OS generator in the daemon, a counter in tests).
    pub ids: Box<dyn Entropy + Send>,
    /// The wall clock (`expire_date` is a calendar time); the system's in the daemon, fixed in tests.
    pub wall_clock: fn() -> time::OffsetDateTime,
    /// `[account] auto_answer`, `auto_answer_header`, `ring_timeout`.
    pub answering: Answering,
    /// `[provisioning]`: IT's settings for accounts pages provision.
    pub provisioning: crate::config::ProvisioningConfig,
    /// Whether pages may `provision` and `logout` at all (`[provisioning] allowed`, resolved
    /// against whether IT configured an `[account]`).
    pub may_provision: bool,
    /// `[dispositions] free_text`: a disposition outside the page's list is taken.
    pub free_text_dispositions: bool,
    /// What the agent had chosen before the last stop (from the store): it wins over
    /// `initial_status`.
    pub saved: SavedState,
    /// `[recording] auto`: every call is recorded from its answer.
    pub auto_record: bool,
    /// `[recording] allowed`: pages may start, pause, resume and stop recordings.
    pub pages_may_record: bool,
    /// IT's machine-wide blacklist (`[dialling] blacklist`); the agent's comes in `saved`.
    pub machine_blacklist: Vec<String>,
    /// IT's caller IDs and campaign header (`[dialling]`).
    pub dial_headers: DialHeaders,
    /// IT's dialling patterns, overall and per partner (`[dialling]`).
    pub dial_rules: DialRules,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PhoneError {
    #[error("`{action}` needs a phone line, and none is configured yet")]
    NoLine { action: &'static str },
    #[error("`{action}` needs a registered line; the line is {state}")]
    LineDown {
        action: &'static str,
        state: &'static str,
    },
    #[error("unknown softphoneId `{0}`; configured statuses are listed in the snapshot")]
    UnknownStatus(String),
    #[error("{0}")]
    UnknownCall(String),
    #[error("{0}")]
    InvalidParams(String),
    #[error("{0}")]
    InvalidNumber(String),
    #[error("`{0}` is not supported by this line yet")]
    NotSupported(&'static str),
    #[error("{0}")]
    InvalidProvisioning(String),
    #[error("{0}")]
    CallInProgress(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    StorageUnavailable(String),
    #[error("{0}")]
    Blacklisted(String),
}

impl PhoneError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NoLine { .. } | Self::LineDown { .. } => ErrorCode::NoLine,
            Self::UnknownStatus(_) => ErrorCode::UnknownStatus,
            Self::UnknownCall(_) => ErrorCode::UnknownCall,
            Self::InvalidParams(_) => ErrorCode::InvalidParams,
            Self::InvalidNumber(_) => ErrorCode::InvalidNumber,
            Self::NotSupported(_) => ErrorCode::NotSupported,
            Self::InvalidProvisioning(_) => ErrorCode::InvalidProvisioning,
            Self::CallInProgress(_) => ErrorCode::CallInProgress,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::StorageUnavailable(_) => ErrorCode::StorageUnavailable,
            Self::Blacklisted(_) => ErrorCode::Blacklisted,
        }
    }
}

const PROVISIONING_OFF: &str =
    "IT has not allowed pages to provision or log out this phone ([provisioning] allowed)";

/// Digits a far end may send a second before the rest are dropped (a person types 5–10).
const MAX_DTMF_PER_SECOND: u32 = 20;

/// Recordings one call may have (start and stop in a loop would otherwise fill the disk).
const MAX_RECORDINGS_PER_CALL: u32 = 10;

/// Ended calls kept in memory for `submit_notes` (older ones are recalled from the store).
const RECENT_CALLS: usize = 20;

pub struct Phone {
    statuses: Vec<PresenceStatus>,
    /// Index into `statuses`; always in range because `statuses` never shrinks.
    presence: usize,
    dispositions: Vec<String>,
    partner_config: Option<PartnerConfig>,
    line: LineInfo,
    line_domain: Option<String>,
    /// The devices the agent chose (`set_audio_devices`), kept by the store.
    audio_devices: AudioDevices,
    /// The devices plugged in, as the driver's watcher last listed them.
    device_list: crate::protocol::AudioDeviceList,
    calls: Vec<PhoneCall>,
    ended: VecDeque<PhoneCall>,
    /// The local conference: its id and the calls mixed in it, as the line last reported.
    conference: Option<(ConferenceId, Vec<ConversationId>)>,
    /// The id a conference asked for gets once the line mixes it.
    next_conference_id: Option<ConferenceId>,
    ids: Box<dyn Entropy + Send>,
    wall_clock: fn() -> time::OffsetDateTime,
    answering: Answering,
    blacklist: crate::blacklist::Blacklist,
    dial_headers: DialHeaders,
    dial_rules: DialRules,
    /// The agent's blacklist changed since the driver last stored it.
    blacklist_changed: bool,
    /// Callbacks the agent scheduled (`SCHEDULE`), by when they are due.
    callbacks: Vec<(time::OffsetDateTime, crate::protocol::CallbackDue)>,
    /// They changed since the driver last stored them.
    callbacks_changed: bool,
    /// Incoming calls to answer by themselves, or to give up on, at these instants.
    deadlines: Vec<(Instant, ConversationId, Deadline)>,
    provisioning: crate::config::ProvisioningConfig,
    may_provision: bool,
    free_text_dispositions: bool,
    auto_record: bool,
    pages_may_record: bool,
    commands: VecDeque<LineCommand>,
    events: VecDeque<Event>,
}

impl Phone {
    pub fn new(settings: PhoneSettings) -> Self {
        let mut statuses = settings.statuses;
        if statuses.is_empty() {
            statuses = crate::config::default_statuses();
        }
        let saved = settings.saved;
        let presence = saved
            .presence
            .and_then(|id| statuses.iter().position(|s| s.softphone_id == id))
            .or_else(|| {
                settings
                    .initial_status
                    .and_then(|id| statuses.iter().position(|s| s.softphone_id == id))
            })
            .unwrap_or(0);
        let mut phone = Self {
            statuses,
            presence,
            dispositions: saved.dispositions.unwrap_or_default(),
            partner_config: saved.partner_config,
            line: LineInfo {
                state: if settings.line_domain.is_some() {
                    LineState::Registering
                } else {
                    LineState::None
                },
                extension: None,
                reason: None,
            },
            line_domain: settings.line_domain,
            calls: Vec::new(),
            ended: VecDeque::new(),
            conference: None,
            next_conference_id: None,
            ids: settings.ids,
            wall_clock: settings.wall_clock,
            answering: settings.answering,
            blacklist: crate::blacklist::Blacklist::new(
                settings.machine_blacklist.iter().map(String::as_str),
                saved.blacklist.iter().flatten().map(String::as_str),
            ),
            blacklist_changed: false,
            dial_headers: settings.dial_headers,
            dial_rules: settings.dial_rules,
            callbacks: dialler::restored(saved.callbacks),
            callbacks_changed: false,
            audio_devices: saved.audio_devices.unwrap_or_default(),
            device_list: Default::default(),
            deadlines: Vec::new(),
            provisioning: settings.provisioning,
            may_provision: settings.may_provision,
            free_text_dispositions: settings.free_text_dispositions,
            auto_record: settings.auto_record,
            pages_may_record: settings.pages_may_record,
            commands: VecDeque::new(),
            events: VecDeque::new(),
        };
        if phone.blacklist.agent_len() + phone.blacklist.machine_len() > 0 {
            phone.share_blacklist();
        }
        if phone.audio_devices != AudioDevices::default() {
            phone
                .commands
                .push_back(LineCommand::AudioDevices(phone.audio_devices.clone()));
        }
        phone
    }

    /// Whether any call is up or ringing (the devices are the calls').
    pub fn has_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    /// The driver's device watcher listed what is plugged in: pages hear of a change (a headset
    /// plugged or unplugged), not of the first listing.
    pub fn devices_listed(&mut self, list: crate::protocol::AudioDeviceList, first: bool) {
        if list == self.device_list {
            return;
        }
        self.device_list = list;
        if !first {
            self.events
                .push_back(Event::AudioDevicesChanged(AudioDevicesChanged {
                    available: Some(self.device_list.clone()),
                    ..AudioDevicesChanged::chosen(&self.audio_devices)
                }));
        }
    }

    /// `test_audio`: between calls only (a call holds the devices), 1 to 10 seconds.
    fn test_audio(&mut self, test: crate::protocol::TestAudio) -> Result<Value, PhoneError> {
        let seconds = test.seconds.unwrap_or(3);
        if !(1..=10).contains(&seconds) {
            return Err(PhoneError::InvalidParams(format!(
                "seconds must be 1 to 10, not {seconds}"
            )));
        }
        if !self.calls.is_empty() {
            return Err(PhoneError::CallInProgress(
                "the devices are in a call; test them between calls".into(),
            ));
        }
        self.commands.push_back(LineCommand::CheckAudio {
            seconds,
            devices: (self.audio_devices != AudioDevices::default())
                .then(|| self.audio_devices.clone()),
        });
        Ok(json!({ "seconds": seconds }))
    }

    /// `set_audio_devices`: a field left out keeps its device, `""` is the system default, a
    /// name must be one a person could have typed (no control characters, not endless).
    fn set_audio_devices(&mut self, request: AudioDevices) -> Result<Value, PhoneError> {
        let mut chosen = self.audio_devices.clone();
        for (what, asked, slot) in [
            ("input", request.input, &mut chosen.input),
            ("output", request.output, &mut chosen.output),
            ("ringer", request.ringer, &mut chosen.ringer),
        ] {
            let Some(name) = asked else { continue };
            if name.chars().count() > MAX_DEVICE_NAME_CHARS || name.chars().any(char::is_control) {
                return Err(PhoneError::InvalidParams(format!(
                    "{what} must be a device name of at most {MAX_DEVICE_NAME_CHARS} characters without control characters (\"\" for the system default)"
                )));
            }
            *slot = (!name.trim().is_empty()).then_some(name);
        }
        if chosen != self.audio_devices {
            self.audio_devices = chosen;
            self.events
                .push_back(Event::AudioDevicesChanged(AudioDevicesChanged::chosen(
                    &self.audio_devices,
                )));
            self.commands
                .push_back(LineCommand::AudioDevices(self.audio_devices.clone()));
        }
        Ok(json!(self.audio_devices))
    }

    /// Carries out one action. On success returns the reply's `result`.
    pub fn handle_action(&mut self, action: Action) -> Result<Value, PhoneError> {
        if action.needs_line() {
            let name = action.name();
            match (&self.line.state, &self.line_domain) {
                (_, None) => return Err(PhoneError::NoLine { action: name }),
                (LineState::Registered, Some(_)) => {}
                (state, Some(_)) => {
                    return Err(PhoneError::LineDown {
                        action: name,
                        state: line_state_name(*state),
                    });
                }
            }
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
            Action::StartCall(call) => {
                let partner = call
                    .partner_id
                    .or_else(|| self.partner_config.as_ref().map(|c| c.partner_id.clone()));
                let headers = self.dial_headers(call.dial_from.as_deref(), "dialFrom", None)?;
                let id = self.dial(&call.dial_to, partner, headers)?;
                Ok(json!({ "conversationId": id }))
            }
            Action::BlacklistAdd(request) => self.blacklist_add(&request),
            Action::BlacklistRemove(request) => self.blacklist_remove(&request),
            Action::BlacklistList => Ok(self.blacklist_list()),
            Action::SetAudioDevices(devices) => self.set_audio_devices(devices),
            Action::ListAudioDevices => Ok(json!(self.device_list)),
            Action::TestAudio(test) => self.test_audio(test),
            Action::Call(call) | Action::CallWithPhone(call) => {
                let headers = self.dial_headers(
                    call.callerid.as_deref(),
                    "callerid",
                    call.campaign.as_deref().or(call.outqueue.as_deref()),
                )?;
                let id = self.dial(&call.destination, None, headers)?;
                Ok(json!({ "guid": id, "conversationId": id }))
            }
            Action::Answer(r) => {
                let id = self.pick(
                    r.conversation_id.as_deref(),
                    |c| c.direction == Direction::Inbound && c.state == CallState::Ringing,
                    "ringing incoming",
                )?;
                self.hold_others(&id);
                self.commands.push_back(LineCommand::Answer {
                    conversation: id.clone(),
                });
                Ok(json!({ "conversationId": id }))
            }
            Action::Reject(r) => {
                let id = self.pick(
                    r.conversation_id.as_deref(),
                    |c| c.direction == Direction::Inbound && c.state == CallState::Ringing,
                    "ringing incoming",
                )?;
                self.commands.push_back(LineCommand::Reject {
                    conversation: id.clone(),
                    status: 603,
                });
                Ok(json!({ "conversationId": id }))
            }
            Action::Hangup(r) => {
                let id = self.pick(r.conversation_id.as_deref(), |_| true, "")?;
                self.commands.push_back(LineCommand::Hangup {
                    conversation: id.clone(),
                });
                Ok(json!({ "conversationId": id }))
            }
            Action::Provision(params) => self.provision(&params),
            Action::Logout => {
                if !self.may_provision {
                    return Err(PhoneError::Forbidden(PROVISIONING_OFF.into()));
                }
                self.line_domain = None;
                self.commands.push_back(LineCommand::Logout);
                Ok(json!({}))
            }
            Action::Mute(r) => self.set_muted(r.conversation_id.as_deref(), true),
            Action::Unmute(r) => self.set_muted(r.conversation_id.as_deref(), false),
            Action::Hold(r) => self.set_held(r.conversation_id.as_deref(), true),
            Action::Unhold(r) => self.set_held(r.conversation_id.as_deref(), false),
            Action::Dtmf(d) => {
                if d.digits.is_empty()
                    || d.digits.len() > 32
                    || !d
                        .digits
                        .chars()
                        .all(|c| c.is_ascii_digit() || "*#ABCDabcd".contains(c))
                {
                    return Err(PhoneError::InvalidParams(
                        "digits must be 1 to 32 of 0-9 * # A-D".into(),
                    ));
                }
                let id = self.pick(
                    d.conversation_id.as_deref(),
                    |c| c.state == CallState::Active,
                    "active",
                )?;
                self.commands.push_back(LineCommand::Dtmf {
                    conversation: id.clone(),
                    digits: d.digits,
                });
                Ok(json!({ "conversationId": id }))
            }
            Action::Transfer(t) => self.transfer(t),
            Action::ConnectCalls(c) => self.connect_calls(c),
            Action::ShotgunCall(s) => self.shotgun(s),
            Action::Conference(c) => self.conference(c),
            Action::Split(s) => self.split(s),
            Action::SubmitNotes(n) => self.submit_notes(n),
            Action::StartRecording(_)
            | Action::PauseRecording(_)
            | Action::ResumeRecording(_)
            | Action::StopRecording(_)
                if !self.pages_may_record =>
            {
                Err(PhoneError::Forbidden(
                    "IT has not allowed pages to control recordings ([recording] allowed = false)"
                        .into(),
                ))
            }
            Action::StartRecording(r) => self.start_recording(r.conversation_id.as_deref()),
            Action::PauseRecording(r) => {
                self.change_recording(r.conversation_id.as_deref(), RecordOp::Pause)
            }
            Action::ResumeRecording(r) => {
                self.change_recording(r.conversation_id.as_deref(), RecordOp::Resume)
            }
            Action::StopRecording(r) => {
                self.change_recording(r.conversation_id.as_deref(), RecordOp::Stop)
            }
            // The driver answers these from the store.
            Action::Ack(_)
            | Action::GetHistory(_)
            | Action::ListRecordings(_)
            | Action::TagRecording(_) => Err(PhoneError::StorageUnavailable(
                "this phone runs without a store".into(),
            )),
        }
    }

    /// The next command for the line, oldest first.
    pub fn poll_command(&mut self) -> Option<LineCommand> {
        self.commands.pop_front()
    }

    fn dial(
        &mut self,
        dial: &str,
        partner_id: Option<String>,
        headers: Vec<(String, String)>,
    ) -> Result<ConversationId, PhoneError> {
        let domain = self.line_domain.clone().unwrap_or_default();
        let (target, shown) =
            calls::target_uri(dial, &domain).map_err(PhoneError::InvalidNumber)?;
        self.check_dial_rules(&target, &shown, partner_id.as_deref())?;
        self.check_blacklist(&target, &shown)?;
        let id = ConversationId::new(self.ids.as_mut());
        self.hold_others(&id);
        let fields = calls::ContractFields {
            partner_id: partner_id.clone(),
            ..Default::default()
        };
        self.calls.push(PhoneCall::new(
            id.clone(),
            Direction::Outbound,
            CallState::Dialing,
            shown.clone(),
            fields,
        ));
        self.commands.push_back(LineCommand::Dial {
            conversation: id.clone(),
            target,
            headers,
        });
        self.events
            .push_back(Event::OutboundCallInitiated(OutboundCallInitiated {
                partner_id,
                conversation_id: id.to_string(),
                dialled_to: shown,
                dialled_to_all: None,
            }));
        Ok(id)
    }

    /// Shotgun dial: every number at once, the first to answer is the call. Every number is
    /// checked first: one bad number dials none.
    fn shotgun(&mut self, request: crate::protocol::ShotgunCall) -> Result<Value, PhoneError> {
        if request.dial_to.is_empty() || request.dial_to.len() > MAX_SHOTGUN {
            return Err(PhoneError::InvalidParams(format!(
                "`dialTo` takes 1 to {MAX_SHOTGUN} numbers, got {}",
                request.dial_to.len()
            )));
        }
        let domain = self.line_domain.clone().unwrap_or_default();
        let mut targets = Vec::new();
        let mut shown = Vec::new();
        for (index, dial) in request.dial_to.iter().enumerate() {
            let (target, number) = calls::target_uri(dial, &domain)
                .map_err(|e| PhoneError::InvalidNumber(format!("`dialTo[{index}]`: {e}")))?;
            self.check_dial_rules(&target, &number, request.partner_id.as_deref())?;
            self.check_blacklist(&target, &format!("`dialTo[{index}]` {number}"))?;
            if targets.contains(&target) {
                return Err(PhoneError::InvalidParams(format!(
                    "`dialTo[{index}]`: {number} is in the list twice"
                )));
            }
            targets.push(target);
            shown.push(number);
        }
        let partner_id = request
            .partner_id
            .or_else(|| self.partner_config.as_ref().map(|c| c.partner_id.clone()));
        let id = ConversationId::new(self.ids.as_mut());
        self.hold_others(&id);
        let fields = calls::ContractFields {
            partner_id: partner_id.clone(),
            ..Default::default()
        };
        let joined = shown.join(", ");
        let mut call = PhoneCall::new(
            id.clone(),
            Direction::Outbound,
            CallState::Dialing,
            joined.clone(),
            fields,
        );
        call.shotgun = shown.clone();
        self.calls.push(call);
        self.commands.push_back(LineCommand::DialAll {
            conversation: id.clone(),
            targets,
        });
        self.events
            .push_back(Event::OutboundCallInitiated(OutboundCallInitiated {
                partner_id,
                conversation_id: id.to_string(),
                dialled_to: joined,
                dialled_to_all: Some(shown),
            }));
        Ok(json!({ "conversationId": id }))
    }

    /// Local conference: the calls named join the agent's mix (with those already in it, 2 to
    /// [`MAX_CONFERENCE`]). Held ones are taken off hold; `conferenceChanged` follows once the
    /// line mixes them.
    fn conference(
        &mut self,
        request: crate::protocol::ConferenceRequest,
    ) -> Result<Value, PhoneError> {
        let mut members = self
            .conference
            .as_ref()
            .map(|(_, members)| members.clone())
            .unwrap_or_default();
        for id in &request.conversation_ids {
            let id = self.pick(Some(id), |c| c.state == CallState::Active, "connected")?;
            // `members` holds the conference's calls and those named before this one.
            if members.contains(&id) {
                return Err(PhoneError::InvalidParams(format!(
                    "call `{id}` is named twice or already in the conference (a conference of a call with itself)"
                )));
            }
            members.push(id);
        }
        if members.len() < 2 || members.len() > MAX_CONFERENCE {
            return Err(PhoneError::InvalidParams(format!(
                "a conference takes 2 to {MAX_CONFERENCE} calls, this one would have {}",
                members.len()
            )));
        }
        if let Some(call) = self
            .calls
            .iter()
            .find(|c| members.contains(&c.conversation_id) && c.transferring_to.is_some())
        {
            return Err(PhoneError::CallInProgress(format!(
                "call `{}` is being transferred",
                call.conversation_id
            )));
        }
        self.hold_all_but(&members);
        // Every member off hold, not only those held now: one whose hold the far end has not
        // answered yet would be held once it does. The line resumes what needs it and says
        // nothing changed for the rest.
        for call in &self.calls {
            if members.contains(&call.conversation_id) {
                self.commands.push_back(LineCommand::Hold {
                    conversation: call.conversation_id.clone(),
                    held: false,
                });
            }
        }
        let conference_id = match (&self.conference, &self.next_conference_id) {
            (Some((id, _)), _) | (None, Some(id)) => id.clone(),
            (None, None) => ConferenceId::new(self.ids.as_mut()),
        };
        if self.conference.is_none() {
            self.next_conference_id = Some(conference_id.clone());
        }
        self.commands.push_back(LineCommand::Conference {
            conversations: members.clone(),
        });
        let ids: Vec<String> = members.iter().map(ToString::to_string).collect();
        Ok(json!({ "conferenceId": conference_id.to_string(), "conversationIds": ids }))
    }

    /// Takes a call out of the conference and puts it on hold; with one call left the
    /// conference ends (that call talks with the agent alone).
    fn split(&mut self, request: crate::protocol::Split) -> Result<Value, PhoneError> {
        let id = self.pick(
            Some(&request.conversation_id),
            |c| c.state == CallState::Active,
            "connected",
        )?;
        let Some((_, members)) = &self.conference else {
            return Err(PhoneError::InvalidParams("there is no conference".into()));
        };
        if !members.contains(&id) {
            return Err(PhoneError::InvalidParams(format!(
                "call `{id}` is not in the conference"
            )));
        }
        // `conferenceChanged` follows from the line's report of who is mixed.
        let mut rest: Vec<ConversationId> = members.iter().filter(|m| **m != id).cloned().collect();
        if rest.len() < 2 {
            rest.clear();
        }
        self.commands.push_back(LineCommand::Conference {
            conversations: rest,
        });
        self.commands.push_back(LineCommand::Hold {
            conversation: id.clone(),
            held: true,
        });
        Ok(json!({ "conversationId": id }))
    }

    /// Attended transfer: the far end of `conversationId` is handed to the far end of
    /// `withConversationId`; both calls must be up, distinct, and not being transferred.
    fn connect_calls(
        &mut self,
        request: crate::protocol::ConnectCalls,
    ) -> Result<Value, PhoneError> {
        let up = |c: &PhoneCall| c.state == CallState::Active;
        let id = self.pick(Some(&request.conversation_id), up, "connected")?;
        let with = self.pick(Some(&request.with_conversation_id), up, "connected")?;
        if id == with {
            return Err(PhoneError::InvalidParams(
                "a call cannot be connected with itself".into(),
            ));
        }
        if self.calls.iter().any(|c| {
            (c.conversation_id == id || c.conversation_id == with) && c.transferring_to.is_some()
        }) {
            return Err(PhoneError::CallInProgress(
                "a transfer of one of these calls is already under way".into(),
            ));
        }
        let target = self
            .calls
            .iter()
            .find(|c| c.conversation_id == with)
            .map(|c| c.remote.clone())
            .unwrap_or_default();
        if let Some(call) = self.calls.iter_mut().find(|c| c.conversation_id == id) {
            call.transferring_to = Some(target.clone());
        }
        self.commands.push_back(LineCommand::ConnectCalls {
            conversation: id.clone(),
            with: with.clone(),
        });
        Ok(json!({ "conversationId": id, "withConversationId": with, "to": target }))
    }

    /// The call an action applies to: the one named, else the only one that fits.
    fn pick(
        &self,
        id: Option<&str>,
        fits: impl Fn(&PhoneCall) -> bool,
        what: &str,
    ) -> Result<ConversationId, PhoneError> {
        let what = if what.is_empty() {
            String::new()
        } else {
            format!("{what} ")
        };
        match id {
            Some(id) => match self.calls.iter().find(|c| c.conversation_id == *id) {
                Some(call) if fits(call) => Ok(call.conversation_id.clone()),
                Some(_) => Err(PhoneError::UnknownCall(format!(
                    "call `{}` is not a {what}call",
                    shorten(id)
                ))),
                None => Err(PhoneError::UnknownCall(format!(
                    "no call with conversationId `{}`",
                    shorten(id)
                ))),
            },
            None => self
                .calls
                .iter()
                .rev()
                .find(|c| fits(c))
                .map(|c| c.conversation_id.clone())
                .ok_or_else(|| PhoneError::UnknownCall(format!("there is no {what}call"))),
        }
    }

    fn set_muted(&mut self, id: Option<&str>, muted: bool) -> Result<Value, PhoneError> {
        let id = self.pick(id, |c| c.state == CallState::Active, "active")?;
        if let Some(call) = self.calls.iter_mut().find(|c| c.conversation_id == id)
            && call.muted != muted
        {
            call.muted = muted;
            self.events
                .push_back(Event::CallMuteChanged(CallMuteChanged {
                    conversation_id: id.to_string(),
                    muted,
                }));
        }
        self.commands.push_back(LineCommand::Mute {
            conversation: id.clone(),
            muted,
        });
        Ok(json!({ "conversationId": id, "muted": muted }))
    }

    /// Asks the line to hold or resume; `callHoldChanged` follows once the far end agrees.
    fn set_held(&mut self, id: Option<&str>, held: bool) -> Result<Value, PhoneError> {
        let what = if held { "active" } else { "held" };
        let id = self
            .pick(id, |c| c.state == CallState::Active && c.held != held, what)
            .or_else(|e| {
                // Already in the asked-for state: nothing to do, and not an error.
                self.pick(id, |c| c.state == CallState::Active, "active")
                    .map_err(|_| e)
            })?;
        // Taking a call off hold puts the one the agent was talking on on hold: a switch.
        if !held {
            self.hold_others(&id);
        }
        self.commands.push_back(LineCommand::Hold {
            conversation: id.clone(),
            held,
        });
        Ok(json!({ "conversationId": id, "held": held }))
    }

    /// One conversation at a time: before the agent talks on `id` (answering it, placing it,
    /// taking it off hold), every other connected call the agent is talking on goes on hold.
    /// `callHoldChanged` (by `agent`) follows for each once its far end agrees.
    fn hold_others(&mut self, id: &ConversationId) {
        // Talking on a conference call is talking on the conference: its calls stay.
        let keep = match &self.conference {
            Some((_, members)) if members.contains(id) => members.clone(),
            _ => vec![id.clone()],
        };
        self.hold_all_but(&keep);
    }

    /// Puts every connected call on hold, but those in `keep`: held ones too, as one whose
    /// resume the far end has not answered yet would otherwise come back beside the call the
    /// agent now talks on (the line asks nothing of a call already held, and says nothing
    /// changed).
    fn hold_all_but(&mut self, keep: &[ConversationId]) {
        let talking: Vec<ConversationId> = self
            .calls
            .iter()
            // A call being transferred is on its way out: holding it would only race the REFER.
            .filter(|c| {
                !keep.contains(&c.conversation_id)
                    && c.state == CallState::Active
                    && c.transferring_to.is_none()
            })
            .map(|c| c.conversation_id.clone())
            .collect();
        for conversation in talking {
            self.commands.push_back(LineCommand::Hold {
                conversation,
                held: true,
            });
        }
    }

    /// Blind transfer of the active (or held) call to `to`, by the dialling policy.
    fn transfer(&mut self, request: crate::protocol::Transfer) -> Result<Value, PhoneError> {
        let domain = self.line_domain.clone().unwrap_or_default();
        let (target, shown) =
            calls::target_uri(&request.to, &domain).map_err(PhoneError::InvalidNumber)?;
        self.check_dial_rules(&target, &shown, None)?;
        self.check_blacklist(&target, &shown)?;
        // Without an id: the call the agent talks on, else a held one.
        let id = self
            .pick(
                request.conversation_id.as_deref(),
                |c| c.state == CallState::Active && !c.held,
                "connected",
            )
            .or_else(|_| {
                self.pick(
                    request.conversation_id.as_deref(),
                    |c| c.state == CallState::Active,
                    "connected",
                )
            })?;
        if let Some(call) = self.calls.iter_mut().find(|c| c.conversation_id == id) {
            if call.transferring_to.is_some() {
                return Err(PhoneError::CallInProgress(format!(
                    "a transfer of call `{id}` is already under way"
                )));
            }
            call.transferring_to = Some(shown.clone());
        }
        self.commands.push_back(LineCommand::Transfer {
            conversation: id.clone(),
            target,
        });
        Ok(json!({ "conversationId": id, "to": shown }))
    }

    fn submit_notes(
        &mut self,
        notes: crate::protocol::NotesSubmission,
    ) -> Result<Value, PhoneError> {
        check_text("disposition", &notes.disposition)?;
        let dialler_code = dialler::DIALLER_DISPOSITIONS.contains(&notes.disposition.as_str());
        if !dialler_code
            && !self.free_text_dispositions
            && !self.dispositions.is_empty()
            && !self.dispositions.contains(&notes.disposition)
        {
            return Err(PhoneError::InvalidParams(format!(
                "`{}` is not one of the dispositions set for this phone ({}); IT may allow free text with [dispositions] free_text = true",
                shorten(&notes.disposition),
                shorten(&self.dispositions.join(", "))
            )));
        }
        if notes.notes.chars().count() > 10_000 {
            return Err(PhoneError::InvalidParams(
                "notes are longer than 10000 characters".into(),
            ));
        }
        let unknown = || {
            PhoneError::UnknownCall(format!(
                "no call with conversationId `{}`",
                shorten(&notes.conversation_id)
            ))
        };
        let number = self
            .ended
            .iter()
            .chain(self.calls.iter())
            .find(|c| c.conversation_id == *notes.conversation_id.as_str())
            .map(|c| c.remote.clone())
            .ok_or_else(unknown)?;
        // Checked in full before anything changes.
        let outcome = self.dialler_outcome(
            &notes.disposition,
            notes.schedule_at.as_deref(),
            &notes.conversation_id,
            &number,
        )?;
        let schedule_at = self.apply_dialler_outcome(outcome);
        let call = self
            .ended
            .iter_mut()
            .chain(self.calls.iter_mut())
            .find(|c| c.conversation_id == *notes.conversation_id.as_str())
            .ok_or_else(unknown)?;
        // The latest outcome counts: a call still going carries it in its `callEnded`.
        call.outcome = Some(calls::Outcome {
            disposition: notes.disposition.clone(),
            notes: notes.notes.clone(),
        });
        self.events
            .push_back(Event::CallNotesSubmitted(CallNotesSubmitted {
                partner_id: call.fields.partner_id.clone(),
                conversation_id: notes.conversation_id,
                disposition: notes.disposition,
                notes: notes.notes,
                schedule_at: schedule_at.clone(),
            }));
        Ok(match schedule_at {
            Some(at) => json!({ "scheduleAt": at }),
            None => json!({}),
        })
    }

    /// Records the connected call (the one named, else the one the agent talks on, else a
    /// held one).
    fn start_recording(&mut self, id: Option<&str>) -> Result<Value, PhoneError> {
        let conversation = self
            .pick(id, |c| c.state == CallState::Active && !c.held, "connected")
            .or_else(|_| self.pick(id, |c| c.state == CallState::Active, "connected"))?;
        if let Some(call) = self
            .calls
            .iter()
            .find(|c| c.conversation_id == conversation)
        {
            if call.recording_state().is_some() {
                return Err(PhoneError::CallInProgress(format!(
                    "call `{conversation}` is already being recorded"
                )));
            }
            if call.recordings >= MAX_RECORDINGS_PER_CALL {
                return Err(PhoneError::InvalidParams(format!(
                    "call `{conversation}` was recorded {MAX_RECORDINGS_PER_CALL} times already"
                )));
            }
        }
        let recording = self.begin_recording(&conversation);
        Ok(json!({ "conversationId": conversation, "recordingId": recording }))
    }

    /// Asks the line to record `conversation`; the recording's id.
    fn begin_recording(&mut self, conversation: &ConversationId) -> String {
        let id = crate::ids::uuid_v4(self.ids.as_mut());
        if let Some(call) = self
            .calls
            .iter_mut()
            .find(|c| c.conversation_id == *conversation)
        {
            call.recording = Some((id.clone(), RecordingState::Recording));
            call.recordings += 1;
        }
        self.commands.push_back(LineCommand::Record {
            conversation: conversation.clone(),
            op: RecordOp::Start { id: id.clone() },
        });
        id
    }

    fn change_recording(&mut self, id: Option<&str>, op: RecordOp) -> Result<Value, PhoneError> {
        let (fits, what): (fn(RecordingState) -> bool, &str) = match op {
            RecordOp::Pause => (|s| s == RecordingState::Recording, "recorded"),
            RecordOp::Resume => (|s| s == RecordingState::Paused, "paused-recording"),
            _ => (
                |s| matches!(s, RecordingState::Recording | RecordingState::Paused),
                "recorded",
            ),
        };
        let conversation = self.pick(id, |c| c.recording_state().is_some_and(fits), what)?;
        let mut recording = String::new();
        if let Some(call) = self
            .calls
            .iter_mut()
            .find(|c| c.conversation_id == conversation)
            && let Some((rid, state)) = &mut call.recording
        {
            recording = rid.clone();
            *state = match op {
                RecordOp::Pause => RecordingState::Paused,
                RecordOp::Resume => RecordingState::Recording,
                _ => RecordingState::Stopped,
            };
        }
        self.commands.push_back(LineCommand::Record {
            conversation: conversation.clone(),
            op,
        });
        Ok(json!({ "conversationId": conversation, "recordingId": recording }))
    }

    /// Whether a call with this id is ringing, dialling or up.
    pub fn has_call_in_progress(&self, conversation_id: &str) -> bool {
        self.calls
            .iter()
            .any(|c| c.conversation_id == *conversation_id)
    }

    /// Whether a call with this id is up or among the recent ended ones.
    pub fn knows_call(&self, conversation_id: &str) -> bool {
        self.calls
            .iter()
            .chain(&self.ended)
            .any(|c| c.conversation_id == *conversation_id)
    }

    /// Makes a call from the store's history known again as an ended call, for after-call work.
    pub fn recall(&mut self, stored: &StoredCall) {
        if self.knows_call(&stored.conversation_id) {
            return;
        }
        let direction = if stored.direction == "inbound" {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let fields = calls::ContractFields {
            partner_id: stored.partner_id.clone(),
            ..Default::default()
        };
        let mut call = PhoneCall::new(
            ConversationId::from_store(stored.conversation_id.clone()),
            direction,
            CallState::Active,
            stored.number.clone(),
            fields,
        );
        call.outcome = stored
            .disposition
            .clone()
            .map(|disposition| calls::Outcome {
                disposition,
                notes: stored.notes.clone().unwrap_or_default(),
            });
        self.ended.push_back(call);
        if self.ended.len() > RECENT_CALLS {
            self.ended.pop_front();
        }
    }

    /// Whether `origin` (as the page sent it) is still one IT lets provision.
    pub fn provisioning_allowed_for(&self, origin: &str) -> bool {
        let Ok(origin) = crate::origins::Origin::parse(origin) else {
            return false;
        };
        self.may_provision
            && self
                .provisioning
                .allowed_origins
                .iter()
                .filter_map(|o| crate::origins::Origin::parse(o).ok())
                .any(|allowed| allowed == origin)
    }

    /// When [`Phone::handle_timeout`] is next due.
    pub fn next_wake(&self) -> Option<Instant> {
        self.deadlines.iter().map(|(at, _, _)| *at).min()
    }

    /// Answers the calls whose answer-after delay is over and declines those that rang for
    /// `ring_timeout`, if they still ring.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.fire_due_callbacks((self.wall_clock)());
        let (due, later) = std::mem::take(&mut self.deadlines)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.deadlines = later;
        for (_, conversation, deadline) in due {
            let Some(call) = self.calls.iter_mut().find(|c| {
                c.conversation_id == conversation
                    && c.state == CallState::Ringing
                    && c.direction == Direction::Inbound
            }) else {
                continue;
            };
            // The agent may have gone do-not-disturb or not ready during the delay.
            let status = &self.statuses[self.presence];
            let refusal = match deadline {
                Deadline::Answer => answering::refusal_to_answer(status),
                Deadline::GiveUp => Some((480, crate::protocol::EndCause::NoAnswer)),
            };
            match refusal {
                None => {
                    self.hold_others(&conversation);
                    self.commands
                        .push_back(LineCommand::Answer { conversation });
                }
                Some((status, cause)) => {
                    call.declined_for = Some(cause);
                    self.commands.push_back(LineCommand::Reject {
                        conversation,
                        status,
                    });
                }
            }
        }
    }

    /// The next event to publish, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Checks the seed's parameters and asks for a line with that account. Refused during a call:
    /// replacing the line would drop it.
    fn provision(&mut self, params: &Value) -> Result<Value, PhoneError> {
        if !self.may_provision {
            return Err(PhoneError::Forbidden(PROVISIONING_OFF.into()));
        }
        let mut provisioning = crate::config::provision::parse(params, (self.wall_clock)())
            .map_err(|e| PhoneError::InvalidProvisioning(e.to_string()))?;
        if provisioning.account.transport == crate::config::Transport::Ws
            && !self.provisioning.danger_allow_ws
        {
            return Err(PhoneError::InvalidProvisioning(
                "`server`: plain ws:// is refused (the SIP password and the calls would cross the network unencrypted); use wss://, or IT may allow ws:// with [provisioning] danger_allow_ws = true".into(),
            ));
        }
        // Only IT's [provisioning] settings apply: none of its [account] carries over.
        provisioning.account.ca_file = self.provisioning.ca_file.clone();
        provisioning.account.force_relay = self.provisioning.force_relay;
        provisioning.account.auto_answer = self.provisioning.auto_answer;
        provisioning.account.auto_answer_header = self.provisioning.auto_answer_header.clone();
        provisioning.account.ring_timeout = self.provisioning.ring_timeout;
        let line = crate::line::LineConfig::from_account(&provisioning.account)
            .map_err(|e| PhoneError::InvalidProvisioning(format!("`server`: {e}")))?;
        if !self.calls.is_empty() {
            return Err(PhoneError::CallInProgress(
                "a call is in progress; provision again after it ends".into(),
            ));
        }
        self.line_domain = Some(line.dial_domain());
        self.answering = Answering::from_provisioning(&self.provisioning);
        let expires = provisioning
            .expires_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let extension = provisioning.account.username.clone();
        self.commands
            .push_back(LineCommand::Provision(Box::new(provisioning.account)));
        if self.blacklist.agent_len() + self.blacklist.machine_len() > 0 {
            self.share_blacklist();
        }
        if self.audio_devices != AudioDevices::default() {
            self.commands
                .push_back(LineCommand::AudioDevices(self.audio_devices.clone()));
        }
        Ok(json!({ "extension": extension, "expiresAt": expires }))
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            line: self.line.clone(),
            presence: self.statuses[self.presence].clone(),
            statuses: self.statuses.clone(),
            dispositions: self.dispositions.clone(),
            partner_config: self.partner_config.clone(),
            // The driver fills in the store's state.
            storage: crate::protocol::StorageInfo::ok(),
            audio_devices: self.audio_devices.clone(),
            calls: self
                .calls
                .iter()
                .map(|call| {
                    let mut info = call.info();
                    info.conference_id = self
                        .conference
                        .as_ref()
                        .filter(|(_, members)| members.contains(&call.conversation_id))
                        .map(|(id, _)| id.to_string());
                    info
                })
                .collect(),
        }
    }

    /// What the line driver reports; `now` times the calls.
    pub fn handle_line_event(&mut self, event: LineEvent, now: Instant) {
        let (state, extension, reason) = match event {
            LineEvent::Registered { extension } => (LineState::Registered, Some(extension), None),
            LineEvent::Failed { reason } => (LineState::Failed, None, Some(reason)),
            LineEvent::Unregistered { reason } => (LineState::Unregistered, None, reason),
            LineEvent::CallRinging { conversation } => {
                if let Some(call) = self
                    .calls
                    .iter_mut()
                    .find(|c| c.conversation_id == conversation)
                {
                    call.state = CallState::Ringing;
                    self.events.push_back(Event::CallRinging(CallRinging {
                        conversation_id: conversation.to_string(),
                    }));
                }
                return;
            }
            LineEvent::CallIncoming {
                conversation,
                caller,
                headers,
            } => {
                let fields = calls::ContractFields::from_headers(&headers);
                let mut call = PhoneCall::new(
                    conversation.clone(),
                    Direction::Inbound,
                    CallState::Ringing,
                    caller,
                    fields,
                );
                self.events
                    .push_back(Event::IncomingCall(call.incoming_event()));
                let decision = self
                    .answering
                    .decide(&headers, &self.statuses[self.presence], now);
                match decision {
                    Decision::Ring { give_up_at } => {
                        if let Some(at) = give_up_at {
                            self.deadlines
                                .push((at, conversation.clone(), Deadline::GiveUp));
                        }
                    }
                    Decision::AnswerAt(at) => {
                        self.deadlines
                            .push((at, conversation.clone(), Deadline::Answer));
                    }
                    Decision::Decline { status, cause } => {
                        call.declined_for = Some(cause);
                        self.commands.push_back(LineCommand::Reject {
                            conversation: conversation.clone(),
                            status,
                        });
                    }
                }
                self.calls.push(call);
                self.handle_timeout(now);
                return;
            }
            LineEvent::CallEstablished { conversation } => {
                if let Some(call) = self
                    .calls
                    .iter_mut()
                    .find(|c| c.conversation_id == conversation)
                {
                    call.state = CallState::Active;
                    call.answered_at = Some(now);
                }
                // `[recording] auto`: recorded from the answer, and `callAccepted` says so.
                if self.auto_record {
                    self.begin_recording(&conversation);
                }
                if let Some(call) = self
                    .calls
                    .iter()
                    .find(|c| c.conversation_id == conversation)
                {
                    self.events
                        .push_back(Event::CallAccepted(call.accepted_event()));
                }
                return;
            }
            LineEvent::CallHold {
                conversation,
                held,
                by_remote,
            } => {
                if let Some(call) = self
                    .calls
                    .iter_mut()
                    .find(|c| c.conversation_id == conversation)
                {
                    let field = if by_remote {
                        &mut call.remote_hold
                    } else {
                        &mut call.held
                    };
                    if *field != held {
                        *field = held;
                        let by = if by_remote { "remote" } else { "agent" }.to_owned();
                        self.events
                            .push_back(Event::CallHoldChanged(CallHoldChanged {
                                conversation_id: conversation.to_string(),
                                held,
                                by,
                            }));
                    }
                }
                return;
            }
            LineEvent::CallTransferred {
                conversation,
                outcome,
                kind,
            } => {
                if let Some(call) = self
                    .calls
                    .iter_mut()
                    .find(|c| c.conversation_id == conversation)
                {
                    let accepted = outcome == TransferOutcome::Accepted;
                    let (result, reason) = match outcome {
                        TransferOutcome::Accepted => ("accepted", None),
                        TransferOutcome::Failed { reason } => ("failed", Some(reason)),
                    };
                    let (kind, to, with) = match kind {
                        TransferKind::Blind => (
                            "blind",
                            call.transferring_to.take().unwrap_or_default(),
                            None,
                        ),
                        TransferKind::Attended { with } => (
                            "attended",
                            call.transferring_to.take().unwrap_or_default(),
                            Some(with.to_string()),
                        ),
                        TransferKind::Remote { to } => {
                            // The call goes on, with someone else.
                            if accepted && !to.is_empty() {
                                call.remote = to.clone();
                            }
                            ("remote", to, None)
                        }
                    };
                    self.events
                        .push_back(Event::CallTransferred(CallTransferred {
                            conversation_id: conversation.to_string(),
                            to,
                            kind: kind.into(),
                            result: result.into(),
                            reason,
                            with_conversation_id: with,
                        }));
                }
                return;
            }
            LineEvent::ConferenceMixed { conversations } => {
                let id = match (&self.conference, conversations.is_empty()) {
                    (Some((id, _)), _) => id.clone(),
                    // A conference asked for and refused: the page hears it did not start.
                    (None, true) => match self.next_conference_id.take() {
                        Some(id) => id,
                        None => return,
                    },
                    (None, false) => match self.next_conference_id.take() {
                        Some(id) => id,
                        None => ConferenceId::new(self.ids.as_mut()),
                    },
                };
                let changed = self
                    .conference
                    .as_ref()
                    .is_none_or(|(_, members)| *members != conversations);
                self.conference =
                    (!conversations.is_empty()).then(|| (id.clone(), conversations.clone()));
                if changed || conversations.is_empty() {
                    self.events
                        .push_back(Event::ConferenceChanged(ConferenceChanged {
                            conference_id: id.to_string(),
                            conversation_ids: conversations
                                .iter()
                                .map(ToString::to_string)
                                .collect(),
                        }));
                }
                return;
            }
            LineEvent::CallAnsweredBy { conversation, leg } => {
                if let Some(call) = self
                    .calls
                    .iter_mut()
                    .find(|c| c.conversation_id == conversation)
                    && let Some(number) = call.shotgun.get(leg)
                {
                    call.remote = number.clone();
                }
                return;
            }
            LineEvent::Recording {
                conversation,
                id,
                state,
                file,
                seconds,
                problem,
            } => {
                // The call may have ended meanwhile: its recording closes after it.
                if let Some(call) = self
                    .calls
                    .iter_mut()
                    .chain(self.ended.iter_mut())
                    .find(|c| c.conversation_id == conversation)
                    && let Some((current, known)) = &mut call.recording
                    && *current == id
                    // An ended recording stays ended (a pause crossing a stop).
                    && !matches!(*known, RecordingState::Stopped | RecordingState::Failed)
                {
                    *known = state;
                }
                self.events
                    .push_back(Event::RecordingChanged(crate::protocol::RecordingChanged {
                        conversation_id: conversation.to_string(),
                        recording_id: id,
                        state: state.as_str().into(),
                        file: file.map(|f| f.to_string_lossy().into_owned()),
                        duration: seconds.map(round),
                        reason: problem,
                    }));
                return;
            }
            LineEvent::AudioDevicesInUse {
                conversation,
                devices,
                switched,
            } => {
                let Some(call) = self
                    .calls
                    .iter_mut()
                    .find(|c| c.conversation_id == conversation)
                else {
                    return;
                };
                // Devices that opened put an end to "no working device".
                call.audio_unavailable = None;
                call.audio_devices = Some(devices.clone());
                if switched {
                    self.events
                        .push_back(Event::AudioDevicesChanged(AudioDevicesChanged {
                            in_use: Some(crate::protocol::CallDevicesInUse {
                                conversation_id: conversation.to_string(),
                                input: devices.input,
                                output: devices.output,
                            }),
                            ..AudioDevicesChanged::chosen(&self.audio_devices)
                        }));
                }
                return;
            }
            LineEvent::AudioUnavailable {
                conversation,
                reason,
            } => {
                if let Some(call) = self
                    .calls
                    .iter_mut()
                    .find(|c| c.conversation_id == conversation)
                {
                    call.audio_unavailable = Some(reason.clone());
                    self.events.push_back(Event::AudioDeviceUnavailable(
                        crate::protocol::AudioDeviceUnavailable {
                            conversation_id: conversation.to_string(),
                            reason,
                        },
                    ));
                }
                return;
            }
            LineEvent::DtmfReceived {
                conversation,
                digit,
            } => {
                // A far end flooding digits (INFO costs it nothing) must not fill the store:
                // at most MAX_DTMF_PER_SECOND a call, the rest dropped.
                if let Some(call) = self
                    .calls
                    .iter_mut()
                    .find(|c| c.conversation_id == conversation)
                {
                    let budget = call.dtmf_budget.get_or_insert_with(|| {
                        crate::rate::TokenBucket::new(MAX_DTMF_PER_SECOND, MAX_DTMF_PER_SECOND, now)
                    });
                    if budget.try_take(now) {
                        self.events.push_back(Event::DtmfReceived(DtmfReceived {
                            conversation_id: conversation.to_string(),
                            digit: digit.to_string(),
                        }));
                    }
                }
                return;
            }
            LineEvent::CallQuality {
                conversation,
                stats,
            } => {
                if let Some(call) = self
                    .calls
                    .iter_mut()
                    .find(|c| c.conversation_id == conversation)
                {
                    call.quality = Some(CallQuality {
                        codec: stats.codec.to_owned(),
                        srtp: stats.srtp,
                        packets_sent: stats.packets_sent,
                        packets_received: stats.packets_received,
                        packets_lost: stats.packets_lost,
                        jitter_ms: round(stats.jitter_ms),
                        concealed_frames: stats.concealed_frames,
                        jitter_buffer_ms: stats.jitter_buffer_ms,
                        remote_packets_lost: stats.remote_packets_lost,
                        remote_jitter_ms: stats.remote_jitter_ms.map(round),
                        round_trip_ms: stats.round_trip_ms.map(round),
                        foreign_packets_dropped: stats.foreign_packets_dropped,
                    });
                }
                return;
            }
            LineEvent::CallEnded {
                conversation,
                reason,
            } => {
                // An INVITE/CANCEL flood leaves no deadlines behind.
                self.deadlines.retain(|(_, c, _)| *c != conversation);
                if let Some(index) = self
                    .calls
                    .iter()
                    .position(|c| c.conversation_id == conversation)
                {
                    let call = self.calls.remove(index);
                    // The line reports the conference without it too; until then it is not listed.
                    if let Some((_, members)) = &mut self.conference {
                        members.retain(|m| *m != conversation);
                    }
                    self.events.push_back(match call.end_event(&reason, now) {
                        Ok(ended) => Event::CallEnded(ended),
                        Err(rejected) => Event::CallRejected(rejected),
                    });
                    self.ended.push_back(call);
                    if self.ended.len() > RECENT_CALLS {
                        self.ended.pop_front();
                    }
                }
                return;
            }
        };
        let changed = self.line.state != state || self.line.extension != extension;
        self.line = LineInfo {
            state,
            extension: extension.clone(),
            reason: reason.clone(),
        };
        // Refreshes that change nothing are not news; failures always are (the reason may differ).
        if changed || reason.is_some() {
            self.events
                .push_back(Event::RegistrationChanged(RegistrationChanged {
                    state,
                    extension,
                    reason,
                }));
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
            accept_calls: status.accept_calls,
            ready: status.ready,
        }));
        Ok(json!({
            "softphoneId": status.softphone_id,
            "name": status.name,
            "acceptCalls": status.accept_calls,
            "ready": status.ready,
        }))
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
        self.events
            .push_back(Event::DispositionsChanged(DispositionsChanged { codes }));
        Ok(json!({}))
    }
}

fn check_text(what: &str, text: &str) -> Result<(), PhoneError> {
    if text.trim().is_empty() {
        return Err(PhoneError::InvalidParams(format!(
            "{what} must not be empty"
        )));
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

/// Two decimals are plenty for milliseconds on a page.
fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests;
