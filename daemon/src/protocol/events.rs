//! Events the daemon pushes to every connected page. Names and fields are the Softphone
//! contract's (`004_…`) where it has them, plus our own (`hello`, `registrationChanged`,
//! `callRinging`, `dispositionsChanged`, `partnerConfigChanged`).

use serde::{Deserialize, Serialize};

use super::{PartnerConfig, Snapshot, StorageInfo};

/// An event with its sequence number, as framed on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMessage {
    #[serde(flatten)]
    pub event: Event,
    /// Increases by one per event within one daemon `instance`; `hello` is always 0.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "payload", rename_all = "camelCase")]
pub enum Event {
    Hello(Hello),
    StatusChanged(StatusChanged),
    DispositionsChanged(DispositionsChanged),
    PartnerConfigChanged(PartnerConfig),
    RegistrationChanged(RegistrationChanged),
    OutboundCallInitiated(OutboundCallInitiated),
    CallRinging(CallRinging),
    IncomingCall(IncomingCall),
    CallAccepted(CallAccepted),
    CallRejected(CallRejected),
    CallEnded(CallEnded),
    CallNotesSubmitted(CallNotesSubmitted),
    CallHoldChanged(CallHoldChanged),
    CallMuteChanged(CallMuteChanged),
    AudioDeviceUnavailable(AudioDeviceUnavailable),
    AudioDevicesChanged(AudioDevicesChanged),
    AudioTest(AudioTest),
    CallTransferred(CallTransferred),
    ConferenceChanged(ConferenceChanged),
    DtmfReceived(DtmfReceived),
    StorageChanged(StorageInfo),
    RecordingChanged(RecordingChanged),
    RecordingTagged(RecordingTagged),
    CallbackDue(CallbackDue),
    Log(LogLine),
}

impl Event {
    /// Every event name of protocol v1, as spelled on the wire.
    pub const NAMES: [&'static str; 25] = [
        "hello",
        "statusChanged",
        "dispositionsChanged",
        "partnerConfigChanged",
        "registrationChanged",
        "outboundCallInitiated",
        "callRinging",
        "incomingCall",
        "callAccepted",
        "callRejected",
        "callEnded",
        "callNotesSubmitted",
        "callHoldChanged",
        "callMuteChanged",
        "audioDeviceUnavailable",
        "audioDevicesChanged",
        "audioTest",
        "callTransferred",
        "conferenceChanged",
        "dtmfReceived",
        "storageChanged",
        "recordingChanged",
        "recordingTagged",
        "callbackDue",
        "log",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::StatusChanged(_) => "statusChanged",
            Self::DispositionsChanged(_) => "dispositionsChanged",
            Self::PartnerConfigChanged(_) => "partnerConfigChanged",
            Self::RegistrationChanged(_) => "registrationChanged",
            Self::OutboundCallInitiated(_) => "outboundCallInitiated",
            Self::CallRinging(_) => "callRinging",
            Self::IncomingCall(_) => "incomingCall",
            Self::CallAccepted(_) => "callAccepted",
            Self::CallRejected(_) => "callRejected",
            Self::CallEnded(_) => "callEnded",
            Self::CallNotesSubmitted(_) => "callNotesSubmitted",
            Self::CallHoldChanged(_) => "callHoldChanged",
            Self::CallMuteChanged(_) => "callMuteChanged",
            Self::AudioDeviceUnavailable(_) => "audioDeviceUnavailable",
            Self::AudioDevicesChanged(_) => "audioDevicesChanged",
            Self::AudioTest(_) => "audioTest",
            Self::CallTransferred(_) => "callTransferred",
            Self::ConferenceChanged(_) => "conferenceChanged",
            Self::DtmfReceived(_) => "dtmfReceived",
            Self::StorageChanged(_) => "storageChanged",
            Self::RecordingChanged(_) => "recordingChanged",
            Self::RecordingTagged(_) => "recordingTagged",
            Self::CallbackDue(_) => "callbackDue",
            Self::Log(_) => "log",
        }
    }
}

/// First frame on every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hello {
    pub version: u32,
    /// This data folder's event history: the same across restarts, so a page resumes with
    /// `?since=SEQ&instance=ID` after one too.
    pub instance: String,
    /// When this daemon process started (RFC 3339): a different value than last time means it
    /// restarted, and calls it had up were ended with cause `interrupted`.
    pub started_at: String,
    /// True when the client asked to resume (`?since=`) and the missed events follow this frame.
    pub resumed: bool,
    /// The seq of the newest event so far; resume later with `?since=` this or a later seq.
    pub last_seq: u64,
    pub state: Snapshot,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusChanged {
    pub softphone_id: String,
    pub name: String,
    /// Whether incoming calls ring in this status (`false`: do-not-disturb).
    pub accept_calls: bool,
    /// The dialler's ready state.
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DispositionsChanged {
    pub codes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrationChanged {
    pub state: super::LineState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboundCallInitiated {
    pub partner_id: Option<String>,
    pub conversation_id: String,
    /// The number dialled; for a shotgun dial, every number, comma-separated.
    pub dialled_to: String,
    /// A shotgun dial's numbers, in order (absent for a call to one number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialled_to_all: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallRinging {
    pub conversation_id: String,
}

/// A call went on hold or came off it, by the agent (`hold`/`unhold`, confirmed by the far end)
/// or by the far end (its re-INVITE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallHoldChanged {
    pub conversation_id: String,
    pub held: bool,
    /// `agent` or `remote`.
    pub by: String,
}

/// The agent's microphone in a call was muted or unmuted (`mute`/`unmute` from any page or the
/// tray), so every page shows the same state. Sent only when it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallMuteChanged {
    pub conversation_id: String,
    pub muted: bool,
}

/// A call's media started without a working microphone or speaker (none plugged in, the one
/// configured is gone, the OS refused it): it carries silence, and says so instead of looking
/// healthy. The call's snapshot keeps the reason (`audioUnavailable`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudioDeviceUnavailable {
    pub conversation_id: String,
    pub reason: String,
}

/// The agent's audio devices changed: the chosen ones (`set_audio_devices` from any page;
/// `null` is the system default), and with `inUse` a call's devices switching by themselves (a
/// chosen headset unplugged: the system default; plugged back: the headset), with `available`
/// the devices plugged in (one was plugged or unplugged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudioDevicesChanged {
    pub input: Option<String>,
    pub output: Option<String>,
    pub ringer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_use: Option<CallDevicesInUse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<super::snapshot::AudioDeviceList>,
}

impl AudioDevicesChanged {
    pub fn chosen(chosen: &super::snapshot::AudioDevices) -> Self {
        Self {
            input: chosen.input.clone(),
            output: chosen.output.clone(),
            ringer: chosen.ringer.clone(),
            in_use: None,
            available: None,
        }
    }

    /// The chosen devices alone, as the store keeps them.
    pub fn as_chosen(&self) -> super::snapshot::AudioDevices {
        super::snapshot::AudioDevices {
            input: self.input.clone(),
            output: self.output.clone(),
            ringer: self.ringer.clone(),
        }
    }
}

/// `test_audio` in progress: the microphone's level ten times a second while the tone plays,
/// then `done`, with `reason` when the devices did not open. Sent to pages connected at the time,
/// not kept for replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudioTest {
    /// RMS level in dBFS (−100 for silence) over the last 100 ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_level: Option<f64>,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The devices one call's audio switched to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallDevicesInUse {
    pub conversation_id: String,
    pub input: String,
    pub output: String,
}

/// A transfer ended. `kind` is `blind` (our `transfer`); `result` `accepted` (the call went
/// to `to`; `callEnded` with cause `transferred` follows) or `failed` (with `reason`; the call
/// goes on as it was).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallTransferred {
    pub conversation_id: String,
    pub to: String,
    /// `blind`, `attended` (our `connect_calls`) or `remote` (the far end's transfer: the call
    /// goes on with `to`).
    pub kind: String,
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `attended`: the consultation call whose party took the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_conversation_id: Option<String>,
}

/// Who is in the local conference: `conversationIds` mixed with the agent; empty when it
/// ended (fewer than two calls left, or every call split off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConferenceChanged {
    pub conference_id: String,
    pub conversation_ids: Vec<String>,
}

/// A daemon log line, sent while the seed's `debug_html` is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogLine {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    pub message: String,
}

/// The far end sent a DTMF digit (RFC 4733).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DtmfReceived {
    pub conversation_id: String,
    pub digit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IncomingCall {
    pub partner_id: Option<String>,
    pub conversation_id: String,
    #[serde(rename = "callerANI")]
    pub caller_ani: String,
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallAccepted {
    pub partner_id: Option<String>,
    pub conversation_id: String,
    #[serde(rename = "callerANI")]
    pub caller_ani: String,
    pub language: String,
    pub ivr_exit_path: Option<String>,
    pub channel_name: Option<String>,
    pub reservation_start_date: Option<String>,
    pub special_event: Option<String>,
    pub escalation_type: Option<String>,
    /// `ON` or `OFF`.
    pub recording_status: String,
    /// The number that answered: for a shotgun dial, which of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialled_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallRejected {
    pub partner_id: Option<String>,
    pub conversation_id: String,
    /// `active` (the agent rejected) or `passive` (not answered in time, or the caller gave up).
    pub reason: String,
    /// Why, in the words `callEnded` uses (an addition to the contract).
    pub cause: EndCause,
    /// The SIP final response that ended it, when one did (`486`, `Busy Here`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallEnded {
    pub partner_id: Option<String>,
    pub conversation_id: String,
    /// Whole seconds from answer to hang-up.
    pub duration: u64,
    pub disposition: Option<String>,
    pub notes: Option<String>,
    /// `inbound` or `outbound`.
    pub call_type: String,
    /// Why the call ended.
    pub cause: EndCause,
    /// The SIP final response that ended it, when one did (`486`, `Busy Here`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_reason: Option<String>,
}

/// Why a call ended, for pages that must tell a hang-up from a lost call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// The agent hung up (or cancelled before an answer).
    Local,
    /// The other party hung up.
    Remote,
    /// The callee was busy (486, 600).
    Busy,
    /// The callee declined (603).
    Declined,
    /// Nobody answered (408, 480, 487 without a cancel of ours), or an incoming call rang for
    /// `ring_timeout`.
    NoAnswer,
    /// An incoming call declined because the agent's status takes no calls (do-not-disturb).
    Dnd,
    /// A call that would have been answered by itself (bridged by a dialler) declined because
    /// the agent is not ready.
    NotReady,
    /// The callee refused otherwise (another 4xx–6xx).
    Rejected,
    /// The far end vanished mid-call: the session timer ran out, a refresh went unanswered,
    /// or no media arrived for `[media] rtp_timeout`.
    Timeout,
    /// The call could not go on: no media path, no ACK, the line stopped while disconnected.
    Failed,
    /// The agent transferred the call and the far end took it to the target.
    Transferred,
    /// The connection to the SIP server was lost (or never there) before the call could go on.
    Network,
    /// The daemon stopped (a crash, a kill, a power cut) while the call was up or ringing;
    /// reported when it starts again. `duration` then counts up to the last event it stored.
    Interrupted,
}

/// A call's recording started, paused, resumed, stopped or failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordingChanged {
    pub conversation_id: String,
    pub recording_id: String,
    /// `recording`, `paused`, `stopped` or `failed`.
    pub state: String,
    /// The file's name in `DATA_DIR/recordings/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Seconds of audio in the file, once stopped (paused time is not in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Why it failed or is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A recording's tags were set (`tag_recording`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordingTagged {
    pub conversation_id: String,
    pub recording_id: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallNotesSubmitted {
    pub partner_id: Option<String>,
    pub conversation_id: String,
    pub disposition: String,
    pub notes: String,
    /// With `SCHEDULE`: when the callback is due (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_at: Option<String>,
}

/// A callback the agent scheduled (disposition `SCHEDULE`) is due: call `number` back.
/// Sent when due, or at the daemon's next start if it was down then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallbackDue {
    pub number: String,
    /// The call the callback was scheduled on.
    pub conversation_id: String,
    /// When it was scheduled for (RFC 3339, UTC).
    pub at: String,
}
