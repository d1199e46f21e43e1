//! Requests a page (or the tray, or the CLI) can make of the phone.
//!
//! Field names follow the Softphone contract (`004_…`: `dialTo`, `partnerId`, …) and the Porthole
//! proxy (`003_…`: `destination`, `campaign`, `callerid`). Unknown fields are rejected so a typo such
//! as `dialto` gets `invalid_params` instead of being silently ignored.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ErrorBody, ErrorCode};

/// One action, parsed and typed. This is also the phone's command interface: every surface
/// (WebSocket, tray, CLI) drives the phone with these.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Reply with the full state snapshot.
    GetState,
    /// Contract `update_presence`: change the agent's status.
    UpdatePresence(UpdatePresence),
    /// Contract `disposition`: the list of disposition codes, an array of strings.
    Disposition(Vec<String>),
    /// Contract `partner_config`: enables independent outbound calls from the dialpad.
    PartnerConfig(PartnerConfig),
    /// Contract `start_call`: place an outbound call.
    StartCall(StartCall),
    /// Porthole `call`: place a call; replies with its `guid`.
    Call(PortholeCall),
    /// Porthole `callWithPhone`: place a call with the agent's phone; replies with its `guid`.
    CallWithPhone(PortholeCall),
    Answer(CallRef),
    Reject(CallRef),
    Hangup(CallRef),
    Hold(CallRef),
    Unhold(CallRef),
    Mute(CallRef),
    Unmute(CallRef),
    Dtmf(Dtmf),
    /// Blind transfer: the far end is asked (REFER) to call `to` instead; `callTransferred`
    /// says how it went.
    Transfer(Transfer),
    /// Attended transfer ("connect calls"): the far end of `conversationId` is joined to the
    /// far end of `withConversationId` (the call the agent consulted on); both local calls end.
    ConnectCalls(ConnectCalls),
    /// Shotgun dial: ring up to five numbers at once; the first to answer is the call.
    ShotgunCall(ShotgunCall),
    /// Local conference: the calls named join the agent's mix (created if none).
    Conference(ConferenceRequest),
    /// Takes one call out of the conference, on hold.
    Split(Split),
    /// The agent's disposition and notes for a call, during it or after it for any call in the
    /// history (emits `callNotesSubmitted`).
    SubmitNotes(NotesSubmission),
    /// The page's origin has processed every event up to `seq`: they are not replayed to it again.
    Ack(Ack),
    /// Past calls, newest first.
    GetHistory(HistoryQuery),
    /// Records the call (the agent left, the far end right) until stopped or the call ends.
    StartRecording(CallRef),
    /// Leaves what follows out of the recording until resumed (card numbers, say).
    PauseRecording(CallRef),
    ResumeRecording(CallRef),
    StopRecording(CallRef),
    /// Recordings, newest first.
    ListRecordings(RecordingQuery),
    /// Sets a recording's tags (replacing those it had).
    TagRecording(TagRecording),
    BlacklistAdd(BlacklistNumbers),
    BlacklistRemove(BlacklistNumbers),
    BlacklistList,
    /// The agent's microphone, speaker and ringer for the next calls (kept across restarts);
    /// a name the OS lists (`softphone-bridge devices`), `""` for the system default, a field left
    /// out unchanged. `audioDevicesChanged` goes to every page.
    SetAudioDevices(super::snapshot::AudioDevices),
    /// The devices plugged in, for a picker (kept fresh by a watcher off the phone's task).
    ListAudioDevices,
    /// A test tone on the agent's output while the microphone's level is measured (`audioTest`
    /// events), between calls.
    TestAudio(TestAudio),
    /// The seed platform's provisioning parameters (`auth_key`, `server`, `turn_port`, …):
    /// replaces the line with this account. Checked in `config::provision`, parameter by parameter.
    Provision(Value),
    /// The seed's User Logout step: unregister and end the session.
    Logout,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatePresence {
    pub softphone_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerConfig {
    pub partner_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_segment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_origin_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartCall {
    pub dial_to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dial_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_segment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_origin_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_type: Option<String>,
}

/// Porthole-style call request (`003_…`); field names are uContact's, lower case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortholeCall {
    pub destination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// The caller ID the server should show: only one IT allows (`[dialling] caller_ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callerid: Option<String>,
    /// uContact's "outbound campaign to compute the call": the campaign when `campaign` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outqueue: Option<String>,
    /// uContact's agent, phone, technology and context of the two-step call: the daemon is
    /// the agent's phone already, so these are taken and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tech: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// Names a call; without one the action applies to the current call.
/// `guid` is accepted as the Porthole spelling of the same thing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallRef {
    #[serde(default, alias = "guid", skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dtmf {
    /// Digits to send: `0-9`, `*`, `#`, `A-D`.
    pub digits: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transfer {
    /// Where the call goes: a number or SIP URI, by the same policy as `start_call`.
    pub to: String,
    #[serde(default, alias = "guid", skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectCalls {
    /// The call whose far end is handed over (usually the one on hold).
    pub conversation_id: String,
    /// The call with the party who takes it (the consultation).
    pub with_conversation_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShotgunCall {
    /// One to five numbers or SIP URIs, by the same policy as `start_call`.
    pub dial_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConferenceRequest {
    /// Connected calls to mix with the agent (with those already in the conference, 2 to 4).
    pub conversation_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Split {
    pub conversation_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotesSubmission {
    pub conversation_id: String,
    pub disposition: String,
    #[serde(default)]
    pub notes: String,
    /// With the dialler disposition `SCHEDULE`: when to call back (RFC 3339, in the future).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ack {
    pub seq: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryQuery {
    /// At most this many calls (1 to 100; 50 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only calls that started before this time (RFC 3339, e.g. the `startedAt` of the last
    /// call of the previous page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordingQuery {
    /// At most this many (1 to 100; 50 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only recordings that started before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Only this call's recordings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

/// `blacklist_add` / `blacklist_remove`: one number (`number`) or many (`numbers`), as uContact's
/// single and multiple calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlacklistNumbers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numbers: Vec<String>,
}

impl BlacklistNumbers {
    /// `number` then `numbers`, as given.
    pub fn all(&self) -> Vec<&str> {
        self.number
            .iter()
            .chain(&self.numbers)
            .map(String::as_str)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagRecording {
    pub id: String,
    pub tags: Vec<String>,
}

/// `test_audio`: how long, 1 to 10 seconds (3 when left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestAudio {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u32>,
}

impl Action {
    /// Every action name of protocol v1, as spelled on the wire.
    pub const NAMES: [&'static str; 37] = [
        "get_state",
        "update_presence",
        "disposition",
        "partner_config",
        "start_call",
        "call",
        "callWithPhone",
        "answer",
        "reject",
        "hangup",
        "hold",
        "unhold",
        "mute",
        "unmute",
        "dtmf",
        "transfer",
        "connect_calls",
        "shotgun_call",
        "conference",
        "split",
        "submit_notes",
        "ack",
        "get_history",
        "start_recording",
        "pause_recording",
        "resume_recording",
        "stop_recording",
        "list_recordings",
        "tag_recording",
        "blacklist_add",
        "blacklist_remove",
        "blacklist_list",
        "set_audio_devices",
        "list_audio_devices",
        "test_audio",
        "provision",
        "logout",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Self::GetState => "get_state",
            Self::UpdatePresence(_) => "update_presence",
            Self::Disposition(_) => "disposition",
            Self::PartnerConfig(_) => "partner_config",
            Self::StartCall(_) => "start_call",
            Self::Call(_) => "call",
            Self::CallWithPhone(_) => "callWithPhone",
            Self::Answer(_) => "answer",
            Self::Reject(_) => "reject",
            Self::Hangup(_) => "hangup",
            Self::Hold(_) => "hold",
            Self::Unhold(_) => "unhold",
            Self::Mute(_) => "mute",
            Self::Unmute(_) => "unmute",
            Self::Dtmf(_) => "dtmf",
            Self::Transfer(_) => "transfer",
            Self::ConnectCalls(_) => "connect_calls",
            Self::ShotgunCall(_) => "shotgun_call",
            Self::Conference(_) => "conference",
            Self::Split(_) => "split",
            Self::SubmitNotes(_) => "submit_notes",
            Self::Ack(_) => "ack",
            Self::GetHistory(_) => "get_history",
            Self::StartRecording(_) => "start_recording",
            Self::PauseRecording(_) => "pause_recording",
            Self::ResumeRecording(_) => "resume_recording",
            Self::StopRecording(_) => "stop_recording",
            Self::ListRecordings(_) => "list_recordings",
            Self::TagRecording(_) => "tag_recording",
            Self::BlacklistAdd(_) => "blacklist_add",
            Self::BlacklistRemove(_) => "blacklist_remove",
            Self::BlacklistList => "blacklist_list",
            Self::SetAudioDevices(_) => "set_audio_devices",
            Self::ListAudioDevices => "list_audio_devices",
            Self::TestAudio(_) => "test_audio",
            Self::Provision(_) => "provision",
            Self::Logout => "logout",
        }
    }

    /// Builds an action from its wire name and `params` (`Value::Null` when absent).
    pub fn from_parts(name: &str, params: Value) -> Result<Self, ErrorBody> {
        Ok(match name {
            "get_state" => {
                no_params(name, &params)?;
                Self::GetState
            }
            "update_presence" => Self::UpdatePresence(typed(name, params)?),
            "disposition" => Self::Disposition(typed(name, params)?),
            "partner_config" => Self::PartnerConfig(typed(name, params)?),
            "start_call" => Self::StartCall(typed(name, params)?),
            "call" => Self::Call(typed(name, params)?),
            "callWithPhone" => Self::CallWithPhone(typed(name, params)?),
            "answer" => Self::Answer(call_ref(name, params)?),
            "reject" => Self::Reject(call_ref(name, params)?),
            "hangup" => Self::Hangup(call_ref(name, params)?),
            "hold" => Self::Hold(call_ref(name, params)?),
            "unhold" => Self::Unhold(call_ref(name, params)?),
            "mute" => Self::Mute(call_ref(name, params)?),
            "unmute" => Self::Unmute(call_ref(name, params)?),
            "dtmf" => Self::Dtmf(typed(name, params)?),
            "transfer" => Self::Transfer(typed(name, params)?),
            "connect_calls" => Self::ConnectCalls(typed(name, params)?),
            "shotgun_call" => Self::ShotgunCall(typed(name, params)?),
            "conference" => Self::Conference(typed(name, params)?),
            "split" => Self::Split(typed(name, params)?),
            "submit_notes" => Self::SubmitNotes(typed(name, params)?),
            "ack" => Self::Ack(typed(name, params)?),
            "get_history" => Self::GetHistory(if params.is_null() {
                HistoryQuery::default()
            } else {
                typed(name, params)?
            }),
            "start_recording" => Self::StartRecording(call_ref(name, params)?),
            "pause_recording" => Self::PauseRecording(call_ref(name, params)?),
            "resume_recording" => Self::ResumeRecording(call_ref(name, params)?),
            "stop_recording" => Self::StopRecording(call_ref(name, params)?),
            "list_recordings" => Self::ListRecordings(if params.is_null() {
                RecordingQuery::default()
            } else {
                typed(name, params)?
            }),
            "tag_recording" => Self::TagRecording(typed(name, params)?),
            "blacklist_add" => Self::BlacklistAdd(typed(name, params)?),
            "blacklist_remove" => Self::BlacklistRemove(typed(name, params)?),
            "blacklist_list" => {
                no_params(name, &params)?;
                Self::BlacklistList
            }
            "set_audio_devices" => Self::SetAudioDevices(typed(name, params)?),
            "list_audio_devices" => {
                no_params(name, &params)?;
                Self::ListAudioDevices
            }
            "test_audio" => Self::TestAudio(if params.is_null() {
                TestAudio::default()
            } else {
                typed(name, params)?
            }),
            "provision" => Self::Provision(params),
            "logout" => {
                no_params(name, &params)?;
                Self::Logout
            }
            _ => {
                return Err(ErrorBody::new(
                    ErrorCode::UnknownAction,
                    format!("unknown action `{}`", truncate(name, 64)),
                ));
            }
        })
    }

    /// The wire form of this action's `params` (for tests, the CLI and examples).
    pub fn params(&self) -> Value {
        let value = match self {
            Self::GetState => Ok(Value::Object(Default::default())),
            Self::UpdatePresence(p) => serde_json::to_value(p),
            Self::Disposition(p) => serde_json::to_value(p),
            Self::PartnerConfig(p) => serde_json::to_value(p),
            Self::StartCall(p) => serde_json::to_value(p),
            Self::Call(p) | Self::CallWithPhone(p) => serde_json::to_value(p),
            Self::Answer(p)
            | Self::Reject(p)
            | Self::Hangup(p)
            | Self::Hold(p)
            | Self::Unhold(p)
            | Self::Mute(p)
            | Self::Unmute(p) => serde_json::to_value(p),
            Self::Dtmf(p) => serde_json::to_value(p),
            Self::Transfer(p) => serde_json::to_value(p),
            Self::ConnectCalls(p) => serde_json::to_value(p),
            Self::ShotgunCall(p) => serde_json::to_value(p),
            Self::Conference(p) => serde_json::to_value(p),
            Self::Split(p) => serde_json::to_value(p),
            Self::SubmitNotes(p) => serde_json::to_value(p),
            Self::Ack(p) => serde_json::to_value(p),
            Self::GetHistory(p) => serde_json::to_value(p),
            Self::StartRecording(p)
            | Self::PauseRecording(p)
            | Self::ResumeRecording(p)
            | Self::StopRecording(p) => serde_json::to_value(p),
            Self::ListRecordings(p) => serde_json::to_value(p),
            Self::TagRecording(p) => serde_json::to_value(p),
            Self::BlacklistAdd(p) | Self::BlacklistRemove(p) => serde_json::to_value(p),
            Self::BlacklistList => Ok(Value::Object(Default::default())),
            Self::SetAudioDevices(p) => serde_json::to_value(p),
            Self::ListAudioDevices => Ok(Value::Object(Default::default())),
            Self::TestAudio(p) => serde_json::to_value(p),
            Self::Provision(p) => Ok(p.clone()),
            Self::Logout => Ok(Value::Object(Default::default())),
        };
        value.unwrap_or(Value::Null)
    }

    /// True for actions that need a phone line.
    pub fn needs_line(&self) -> bool {
        !matches!(
            self,
            Self::GetState
                | Self::UpdatePresence(_)
                | Self::Disposition(_)
                | Self::PartnerConfig(_)
                | Self::SubmitNotes(_)
                | Self::Ack(_)
                | Self::GetHistory(_)
                | Self::ListRecordings(_)
                | Self::TagRecording(_)
                | Self::BlacklistAdd(_)
                | Self::BlacklistRemove(_)
                | Self::BlacklistList
                | Self::SetAudioDevices(_)
                | Self::ListAudioDevices
                | Self::TestAudio(_)
                | Self::Provision(_)
                | Self::Logout
        )
    }
}

fn typed<T: DeserializeOwned>(name: &str, params: Value) -> Result<T, ErrorBody> {
    if params.is_null() {
        return Err(ErrorBody::new(
            ErrorCode::InvalidParams,
            format!("`{name}` needs params"),
        ));
    }
    serde_json::from_value(params).map_err(|e| {
        ErrorBody::new(
            ErrorCode::InvalidParams,
            format!("invalid params for `{name}`: {e}"),
        )
    })
}

/// Call-control actions may omit params entirely to mean "the current call".
fn call_ref(name: &str, params: Value) -> Result<CallRef, ErrorBody> {
    if params.is_null() {
        return Ok(CallRef::default());
    }
    typed(name, params)
}

fn no_params(name: &str, params: &Value) -> Result<(), ErrorBody> {
    match params {
        Value::Null => Ok(()),
        Value::Object(map) if map.is_empty() => Ok(()),
        _ => Err(ErrorBody::new(
            ErrorCode::InvalidParams,
            format!("`{name}` takes no params"),
        )),
    }
}

/// Keeps an echoed, page-supplied string short enough for an error message.
pub(super) fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}
