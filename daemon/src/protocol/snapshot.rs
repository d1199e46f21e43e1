//! The state snapshot carried by `hello` and returned by `get_state`: everything a freshly
//! loaded page needs to draw the phone, so a page refresh loses nothing.

use serde::{Deserialize, Serialize};

use super::PartnerConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    pub line: LineInfo,
    /// The agent's current status.
    pub presence: PresenceStatus,
    /// Every status the agent can choose.
    pub statuses: Vec<PresenceStatus>,
    pub dispositions: Vec<String>,
    pub partner_config: Option<PartnerConfig>,
    pub calls: Vec<CallInfo>,
    /// The devices the agent chose for calls (`None`: the system default).
    #[serde(default)]
    pub audio_devices: AudioDevices,
    /// Whether events, notes and the call history are being kept on disk.
    pub storage: StorageInfo,
}

/// The agent's audio devices by name (`None`: the system default). In `set_audio_devices` a
/// field left out keeps its device and `""` means the system default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AudioDevices {
    pub input: Option<String>,
    pub output: Option<String>,
    pub ringer: Option<String>,
}

/// The on-disk store as the agent's work depends on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageInfo {
    pub state: StorageState,
    /// What went wrong, naming the file (absent when `ok` and nothing was set aside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Events dropped by the retention limits (`[store]`) before every page origin had
    /// acknowledged them, since the store was created.
    pub dropped_events: u64,
}

impl StorageInfo {
    pub fn ok() -> Self {
        Self {
            state: StorageState::Ok,
            reason: None,
            dropped_events: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageState {
    /// Every event is written to disk before it is sent.
    Ok,
    /// Writing failed (disk full, read-only): events are sent and kept in memory only, and the
    /// store is tried again with each event.
    Failing,
    /// There is no store this run (it could not be opened): memory only.
    Unavailable,
}

/// One past call (`get_history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallRecord {
    pub conversation_id: String,
    pub partner_id: Option<String>,
    /// `inbound` or `outbound`.
    pub call_type: String,
    /// The number dialled, or the caller's; the party the call ended with.
    pub number: String,
    /// RFC 3339, when it was dialled or started ringing.
    pub started_at: String,
    pub answered_at: Option<String>,
    /// Whole seconds from answer to end; absent while the call is up.
    pub duration: Option<u64>,
    /// Why it ended (`callEnded`'s causes); absent while the call is up.
    pub cause: Option<String>,
    pub disposition: Option<String>,
    pub notes: Option<String>,
    /// The id of the call's (last) recording.
    pub recording: Option<String>,
}

/// One recording (`list_recordings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordingInfo {
    pub id: String,
    pub conversation_id: String,
    /// The file's name in `DATA_DIR/recordings/` (stereo Ogg Opus: agent left, far end right).
    pub file: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// `recording`, `paused`, `stopped` or `failed`.
    pub state: String,
    /// Seconds of audio, once stopped.
    pub duration: Option<f64>,
    pub reason: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PresenceStatus {
    pub softphone_id: String,
    pub name: String,
    /// Incoming calls ring (`false`: do-not-disturb, they are declined).
    pub accept_calls: bool,
    /// Ready for the dialler: calls that would be answered by themselves are.
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineInfo {
    pub state: LineState,
    /// The registered extension (the seed platform's "WebRTC Phone Extension").
    pub extension: Option<String>,
    /// Why the line is `failed` or `unregistered`, as the last `registrationChanged` said: a
    /// page that connects after the failure learns it here. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    /// No phone line is configured.
    None,
    Registering,
    Registered,
    Unregistered,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallInfo {
    pub conversation_id: String,
    pub partner_id: Option<String>,
    /// `inbound` or `outbound`.
    pub call_type: String,
    /// `ringing`, `active`, `held`.
    pub state: String,
    pub remote: String,
    pub muted: bool,
    /// The far end put the call on hold.
    #[serde(default)]
    pub remote_hold: bool,
    /// Media statistics from RTP/RTCP, refreshed every few seconds while media flows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<CallQuality>,
    /// The local conference the call is mixed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conference_id: Option<String>,
    /// `recording` or `paused` while the call is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// Why the call has no working audio device (`audioDeviceUnavailable`); absent when it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_unavailable: Option<String>,
    /// The devices the call's audio runs on now: the chosen ones, or the system default's while
    /// a chosen one is unplugged. Absent for the file backend and before the media starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_devices: Option<DevicesInUse>,
}

/// A call's microphone and speaker by name, as the OS lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevicesInUse {
    pub input: String,
    pub output: String,
}

/// The devices plugged in (`list_audio_devices`), for a picker; names as `set_audio_devices`
/// takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudioDeviceList {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub default_input: Option<String>,
    pub default_output: Option<String>,
}

/// Call quality both ways: what we receive (loss, jitter, concealment) and what the far end's
/// RTCP reports say about what we send, with the round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallQuality {
    pub codec: String,
    pub srtp: bool,
    pub packets_sent: u32,
    pub packets_received: u32,
    pub packets_lost: i64,
    pub jitter_ms: f64,
    pub concealed_frames: u64,
    pub jitter_buffer_ms: u32,
    pub remote_packets_lost: Option<i32>,
    pub remote_jitter_ms: Option<f64>,
    pub round_trip_ms: Option<f64>,
    /// RTP/RTCP packets dropped because they came from an address the call did not negotiate.
    #[serde(default)]
    pub foreign_packets_dropped: u64,
}
