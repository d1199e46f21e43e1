//! The messages between the phone, the line and the line's runtime: what the phone asks
//! ([`LineCommand`]), what the line reports ([`LineEvent`]), and what the sans-IO line tells its
//! runtime ([`SipEvent`]). A leaf: the line, its calls and its runtime all use it.

use sip_core::call::{EndReason, TransferOutcome};
use sip_core::message::Uri;

use crate::config::AccountConfig;
use crate::ids::ConversationId;
use crate::media::session::MediaStats;

/// Whose transfer it was.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferKind {
    /// Ours, to a number.
    Blind,
    /// Ours, joining the call's party to the agent's other call `with` (RFC 3891 `Replaces`).
    Attended { with: ConversationId },
    /// The far end's: the call now talks to `to` (their REFER, or an INVITE replacing it).
    Remote { to: String },
}

/// What the line reports to the phone.
#[derive(Debug, Clone, PartialEq)]
pub enum LineEvent {
    Registered {
        extension: String,
    },
    Failed {
        reason: String,
    },
    /// No longer registered; `reason` says why when it was not the registrar's doing
    /// (`expired`: the provisioned `expire_date` passed; `logout`; `shutdown`).
    Unregistered {
        reason: Option<String>,
    },
    /// The callee's phone rings.
    CallRinging {
        conversation: ConversationId,
    },
    /// Someone calls the agent. `headers` are the INVITE's, for the contract's header map.
    CallIncoming {
        conversation: ConversationId,
        caller: String,
        headers: Vec<(String, String)>,
    },
    CallEstablished {
        conversation: ConversationId,
    },
    /// Of a dial to several numbers, the one at `leg` answered (just before `CallEstablished`).
    CallAnsweredBy {
        conversation: ConversationId,
        leg: usize,
    },
    CallEnded {
        conversation: ConversationId,
        reason: EndReason,
    },
    /// The devices a call's audio runs on: when they open, and (`switched`) when they change
    /// during the call (a chosen device unplugged or plugged back).
    AudioDevicesInUse {
        conversation: ConversationId,
        devices: crate::protocol::DevicesInUse,
        switched: bool,
    },
    /// The call's media started without a working audio device; it carries silence.
    AudioUnavailable {
        conversation: ConversationId,
        reason: String,
    },
    /// Hold changed: by our re-INVITE (confirmed) or by theirs (`by_remote`).
    CallHold {
        conversation: ConversationId,
        held: bool,
        by_remote: bool,
    },
    DtmfReceived {
        conversation: ConversationId,
        digit: char,
    },
    CallQuality {
        conversation: ConversationId,
        stats: MediaStats,
    },
    /// Who the local conference mixes now (empty: it ended).
    ConferenceMixed {
        conversations: Vec<ConversationId>,
    },
    /// A transfer ended: ours (when accepted, the call then ends with `Transferred`), or the
    /// far end's (when accepted, the call goes on with the new party).
    CallTransferred {
        conversation: ConversationId,
        outcome: TransferOutcome,
        kind: TransferKind,
    },
    /// A recording of the call started, paused, resumed, stopped or failed.
    Recording {
        conversation: ConversationId,
        id: String,
        state: RecordingState,
        /// The file (when it started).
        file: Option<std::path::PathBuf>,
        /// Seconds of audio in the file (when it stopped).
        seconds: Option<f64>,
        /// Why it failed or is incomplete.
        problem: Option<String>,
    },
}

/// Where a call's recording stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingState {
    Recording,
    Paused,
    Stopped,
    Failed,
}

impl RecordingState {
    /// As on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recording => "recording",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

/// What the phone asks of a call's recording.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOp {
    /// Start one named `id` (made by the phone).
    Start {
        id: String,
    },
    Pause,
    Resume,
    Stop,
}

/// What the phone asks of the line.
#[derive(Debug, Clone, PartialEq)]
pub enum LineCommand {
    Dial {
        conversation: ConversationId,
        target: Uri,
        /// Headers IT allowed the page to add (a caller ID, a campaign), already checked.
        headers: Vec<(String, String)>,
    },
    /// Shotgun dial: ring every target at once; the first to answer is the call.
    DialAll {
        conversation: ConversationId,
        targets: Vec<Uri>,
    },
    Answer {
        conversation: ConversationId,
    },
    Reject {
        conversation: ConversationId,
        status: u16,
    },
    /// The numbers a far end's REFER may not have the line call.
    Blacklist(std::sync::Arc<crate::blacklist::Blacklist>),
    /// The agent's devices for the next calls and the ringer (`None`: the system default).
    AudioDevices(crate::protocol::AudioDevices),
    Hangup {
        conversation: ConversationId,
    },
    Mute {
        conversation: ConversationId,
        muted: bool,
    },
    Dtmf {
        conversation: ConversationId,
        digits: String,
    },
    Hold {
        conversation: ConversationId,
        held: bool,
    },
    /// Blind transfer: ask the far end to call `target` instead.
    Transfer {
        conversation: ConversationId,
        target: Uri,
    },
    /// Attended transfer: join the far end of `conversation` to the far end of `with`.
    ConnectCalls {
        conversation: ConversationId,
        with: ConversationId,
    },
    /// Mix exactly these calls with the agent in a local conference (empty: end it).
    Conference {
        conversations: Vec<ConversationId>,
    },
    /// Record the call (both sides, stereo), or pause, resume or stop its recording.
    Record {
        conversation: ConversationId,
        op: RecordOp,
    },
    /// Replace the line with this account (the driver does it; see `phone::driver`).
    Provision(Box<AccountConfig>),
    /// `test_audio`, for the driver: a tone out and the microphone's level for `seconds`, on
    /// the agent's chosen devices (`None`: those of the configuration).
    CheckAudio {
        seconds: u32,
        devices: Option<crate::protocol::AudioDevices>,
    },
    /// End the session: unregister and stay off until provisioned again.
    Logout,
}

/// What the sans-IO line tells its runtime, which owns sockets and media.
#[derive(Debug, Clone, PartialEq)]
pub enum SipEvent {
    Line(LineEvent),
    /// Media can flow: `remote_sdp` is their answer (outgoing) or offer (incoming).
    MediaReady {
        conversation: ConversationId,
        remote_sdp: String,
    },
    /// A transfer of the far end's doing reached its new party: the call's media now goes to
    /// them (the media prepared for the new dialog replaces the old).
    MediaSwitched {
        conversation: ConversationId,
        remote_sdp: String,
    },
    /// The far end asks us to call `target` (their REFER): prepare media for an offer, then
    /// [`SipLine::follow_referral`] (or [`SipLine::referral_failed`]).
    Referred {
        conversation: ConversationId,
        target: Uri,
    },
    /// An INVITE with `Replaces` names this call: prepare media for its offer
    /// ([`SipLine::next_remote_sdp`]), then [`SipLine::answer_next`].
    Replacing {
        conversation: ConversationId,
    },
    /// The dialog that was to take the call's place (a transfer of theirs) failed: the media
    /// prepared for it goes.
    NextFailed {
        conversation: ConversationId,
    },
    /// A re-INVITE changed their media.
    MediaChanged {
        conversation: ConversationId,
        remote_sdp: String,
    },
    /// Our re-INVITE was answered, or refused.
    ReofferAnswered {
        conversation: ConversationId,
        remote_sdp: String,
    },
    ReofferFailed {
        conversation: ConversationId,
        status: u16,
    },
    /// The server did not answer our probe (or a REGISTER) in time.
    ServerSilent,
    /// Ping the flow (RFC 5626 §4.4): CRLFCRLF or a WebSocket ping on a stream, on UDP a STUN
    /// Binding request with this transaction id.
    FlowPing {
        transaction: [u8; 12],
    },
    /// The registrar confirmed outbound and our ping went unanswered: the flow is dead.
    FlowFailed,
}
