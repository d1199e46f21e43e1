//! Configuration: TOML, layered from the IT-wide file to the per-user file to `--config FILE`
//! to command-line flags (later wins). See `docs/deploy.md` for every key.

mod load;
mod ports;
pub mod provision;
mod secret;

pub use load::{ConfigError, Loaded, Sources, is_locked, load, load_layers, parse_file};
pub use ports::{Ports, PortsError};
pub use secret::Secret;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::protocol::PresenceStatus;

/// The port pages connect to unless IT picks another.
pub const DEFAULT_PORT: u16 = 48443;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub api: ApiConfig,
    pub account: Option<AccountConfig>,
    pub audio: AudioConfig,
    pub media: MediaConfig,
    pub log: LogConfig,
    pub presence: PresenceConfig,
    pub demo: DemoConfig,
    pub provisioning: ProvisioningConfig,
    pub dispositions: DispositionsConfig,
    pub store: StoreConfig,
    pub notifications: NotificationsConfig,
    pub recording: RecordingConfig,
    pub dialling: DiallingConfig,
    /// Keys IT locks (read only from the machine-wide file).
    pub lock: LockConfig,
}

/// `[lock] keys = ["api.allowed_origins", "provisioning.*"]` in IT's machine-wide file: the agent's
/// file and flags cannot change these keys (a section name or `section.*` locks all of it).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockConfig {
    pub keys: Vec<String>,
}

/// What may be dialled, and what pages may add to the calls they place.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiallingConfig {
    /// IT's machine-wide blacklist: never dialled, and the agent cannot remove them.
    pub blacklist: Vec<String>,
    /// More of IT's blacklist, one number per line (`#` starts a comment); read at start.
    pub blacklist_file: Option<PathBuf>,
    /// Caller IDs pages may ask for (`dialFrom`, `callerid`): numbers, or digits ending in `*`
    /// for a range. Empty: none.
    pub caller_ids: Vec<String>,
    /// The header that carries a chosen caller ID to the server.
    pub caller_id_header: String,
    /// The header that carries a call's campaign to the server.
    pub campaign_header: String,
    /// What the dialpad may dial (`?` one character, `*` any run); empty: anything.
    pub patterns: Vec<String>,
    /// Patterns for one partner, used while a page's `partner_config` names it.
    pub partner: Vec<PartnerDialling>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerDialling {
    pub partner_id: String,
    pub patterns: Vec<String>,
}

impl Default for DiallingConfig {
    fn default() -> Self {
        Self {
            blacklist: Vec::new(),
            blacklist_file: None,
            caller_ids: Vec::new(),
            caller_id_header: "P-Preferred-Identity".into(),
            campaign_header: "X-Campaign".into(),
            patterns: Vec::new(),
            partner: Vec::new(),
        }
    }
}

/// Call recordings (`DATA_DIR/recordings/`, stereo Ogg Opus).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Pages may start, pause, resume and stop recordings (off: only `auto` records).
    pub allowed: bool,
    /// Record every call from its answer.
    pub auto: bool,
    /// A recording stops by itself after this many minutes (at least 1).
    pub max_minutes: u32,
    /// Recordings are deleted this many days after they ended (0: kept until deleted by hand).
    pub keep_days: u32,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            allowed: true,
            auto: false,
            max_minutes: 240,
            keep_days: 90,
        }
    }
}

/// The seed's notification endpoint: every event POSTed as JSON, signed (`notify`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// `https://…` (plain `http://` only to this machine). Unset: no notifications.
    pub url: Option<String>,
    /// The HMAC-SHA256 key of `X-Softphone-Signature`; required with `url`.
    pub secret: Secret,
    /// Trust only this CA (or, holding one certificate, only that certificate).
    pub ca_file: Option<std::path::PathBuf>,
    /// `sha256:…` of the endpoint's certificate: accept exactly that one.
    pub tls_fingerprint: Option<String>,
    /// Per request, connecting included.
    pub timeout_seconds: u32,
    /// The first wait after a failed attempt; doubles up to `retry_max_seconds`.
    pub retry_first_ms: u64,
    pub retry_max_seconds: u32,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            url: None,
            secret: Secret::default(),
            ca_file: None,
            tls_fingerprint: None,
            timeout_seconds: 10,
            retry_first_ms: 1000,
            retry_max_seconds: 60,
        }
    }
}

/// How long the on-disk store keeps events for pages that have not acknowledged them. The call
/// history and the agent's state are kept regardless.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Off: nothing is kept on disk (no history, no replay after a restart, state resets).
    pub enabled: bool,
    /// Events older than this many days are dropped (at least 1).
    pub keep_days: u32,
    /// At most this many events are kept; the oldest go first (at least 1000).
    pub max_events: u64,
    /// At most this many megabytes of events (at least 1).
    pub max_megabytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keep_days: 30,
            max_events: 100_000,
            max_megabytes: 256,
        }
    }
}

/// What the agent's outcome of a call may be.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispositionsConfig {
    /// Accept a disposition that is not in the list the page set (`disposition`), as free text.
    /// Off: once a list is set, `submit_notes` takes only its codes.
    pub free_text: bool,
}

/// What IT decides about accounts that CRM pages provision with the seed's parameters.
///
/// A provisioned account is the page's choice of server, so it gets none of IT's `[account]`
/// settings (auto-answer above all: it would hand the microphone to that server) and none of
/// `[media] codecs`; only what is written here applies to it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// Whether pages may `provision` and `logout` at all. Unset: yes when IT configured no
    /// `[account]`, no when it did (a page must not replace IT's line unless IT says so).
    pub allowed: Option<bool>,
    /// The only origins that may `provision` or `logout`; the agent's approval of an origin is
    /// not enough. Empty: no page may.
    pub allowed_origins: Vec<String>,
    /// CA bundle for the provisioned server's certificate instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Send WebRTC media only through the provisioned TURN relay.
    pub force_relay: bool,
    /// Auto-answer on a provisioned line (`never` unless IT sets it here), as `[account]`'s.
    pub auto_answer: AutoAnswer,
    /// As `[account] auto_answer_header`, for provisioned lines.
    pub auto_answer_header: Option<String>,
    /// As `[account] ring_timeout`, for provisioned lines.
    pub ring_timeout: u32,
    /// Codecs for a provisioned line, in preference order; the built-in list when unset.
    pub codecs: Option<Vec<String>>,
    /// Accept a plain `ws://` server (SIP password and call setup in clear text on the network).
    pub danger_allow_ws: bool,
}

impl ProvisioningConfig {
    /// Whether pages may provision or log out, given whether IT configured an `[account]`.
    pub fn pages_may_provision(&self, it_account: bool) -> bool {
        self.allowed.unwrap_or(!it_account)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// With no `[account]`, run the built-in demo line (call `echo`). Ignored when an account is set.
    pub line: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self { line: true }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// A port (0 picks a free one) or, on terminal servers, a range (`"48443-48543"`) whose
    /// first free port is taken. The daemon writes the one it got to `DATA_DIR/daemon.json`.
    pub port: Ports,
    /// Origins (`scheme://host[:port]`) allowed without the agent's approval.
    pub allowed_origins: Vec<String>,
    /// Sustained actions per second allowed on one connection.
    pub actions_per_second: u32,
    /// Actions a connection may send in a burst before the rate applies.
    pub action_burst: u32,
    /// Sustained actions per second for all connections of one origin together.
    pub origin_actions_per_second: u32,
    /// Burst for all connections of one origin together.
    pub origin_action_burst: u32,
    /// Newest events kept in memory for quick `?since=` resumption (older ones are read from
    /// the store).
    pub replay_events: usize,
    /// IT's own localhost certificate (PEM chain, leaf first) and key, from a PKI every browser
    /// already trusts, served instead of the per-install CA's. Both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            port: Ports::single(DEFAULT_PORT),
            allowed_origins: Vec::new(),
            actions_per_second: 20,
            action_burst: 40,
            origin_actions_per_second: 40,
            origin_action_burst: 80,
            replay_events: 1024,
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

/// The agent's line, in the seed platform's provisioning names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountConfig {
    pub server: String,
    /// More servers for the same account, tried in order when `server` does not answer
    /// (`host[:port]`, same transport); the line returns to `server` once it answers again,
    /// never in the middle of a call.
    pub backup_servers: Vec<String>,
    pub transport: Transport,
    pub username: String,
    pub password: Secret,
    pub auth_key: Option<Secret>,
    pub customer_id: Option<u64>,
    pub user_id: Option<u64>,
    pub turn_port: Option<u16>,
    pub expire_date: Option<String>,
    /// CA bundle to verify the SIP server's certificate (TLS, WSS) instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// The SIP server's certificate pinned by its SHA-256 (`sha256:AB:CD:…`): exactly that
    /// certificate is accepted (TLS, WSS), whoever issued it; checked in `line::LineConfig`.
    pub tls_fingerprint: Option<String>,
    /// `ip:port` of a DNS server for SRV/A/AAAA lookups of `server`, instead of the system's.
    pub dns_server: Option<String>,
    /// Which incoming calls are answered without the agent: `never`, `bridged` (only calls the
    /// server marks as bridged or intercom, after the delay they ask for) or `always`.
    pub auto_answer: AutoAnswer,
    /// A header IT's dialler puts on bridged calls (`Name` or `Name: value`), taken as a mark
    /// besides the standard ones when `auto_answer = "bridged"`.
    pub auto_answer_header: Option<String>,
    /// Seconds an incoming call rings before it is declined (480, cause `no_answer`); 0: until
    /// the caller gives up.
    pub ring_timeout: u32,
    /// Media for calls: `auto` (WebRTC on `ws`/`wss`, RTP otherwise), `rtp` or `webrtc`.
    pub media: AccountMedia,
    /// WebRTC: send media only through the TURN relay (`turn_port`).
    pub force_relay: bool,
    /// The seed's `debug_console` and `debug_html` may also come with the account.
    pub debug_console: Option<bool>,
    pub debug_html: Option<bool>,
}

/// Which incoming calls the phone answers by itself. `true`/`false` (older configs) mean
/// `always`/`never`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "AutoAnswerSetting", rename_all = "lowercase")]
pub enum AutoAnswer {
    #[default]
    Never,
    /// Only calls that come through the registered server marked as bridged or intercom calls.
    Bridged,
    Always,
}

#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum AutoAnswerSetting {
    Flag(bool),
    Mode(String),
}

impl TryFrom<AutoAnswerSetting> for AutoAnswer {
    type Error = String;

    fn try_from(setting: AutoAnswerSetting) -> Result<Self, String> {
        match setting {
            AutoAnswerSetting::Flag(true) => Ok(Self::Always),
            AutoAnswerSetting::Flag(false) => Ok(Self::Never),
            AutoAnswerSetting::Mode(mode) => match mode.as_str() {
                "never" => Ok(Self::Never),
                "bridged" => Ok(Self::Bridged),
                "always" => Ok(Self::Always),
                _ => Err(format!(
                    "`auto_answer` is \"never\", \"bridged\" or \"always\", not {mode:?}"
                )),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountMedia {
    #[default]
    Auto,
    Rtp,
    Webrtc,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioBackend {
    #[default]
    Cpal,
    File,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    pub backend: AudioBackend,
    pub input: Option<String>,
    pub output: Option<String>,
    pub ringer: Option<String>,
    pub input_file: Option<PathBuf>,
    pub output_file: Option<PathBuf>,
    /// File backend: where the ring tone for incoming calls is written (what the ringer plays).
    pub ringer_file: Option<PathBuf>,
    /// Voice processing on the microphone (`audio/voice.rs`): `auto` is on for devices and off
    /// for the file backend (a test file is clean already, and tests compare its exact tones).
    pub echo_cancellation: Processing,
    pub noise_suppression: Processing,
    pub gain_control: Processing,
    /// File backend: what the agent hears leaks into the microphone at this level (dB, −60 to
    /// 0) 30 ms late, as a speakerphone's would — to try the echo canceller without devices.
    pub file_echo_db: Option<f32>,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            backend: AudioBackend::default(),
            input: None,
            output: None,
            ringer: None,
            input_file: None,
            output_file: None,
            ringer_file: None,
            echo_cancellation: Processing::Auto,
            noise_suppression: Processing::Auto,
            gain_control: Processing::Auto,
            file_echo_db: None,
        }
    }
}

impl AudioConfig {
    /// The voice-processing stages that run on this backend.
    pub fn voice_settings(&self) -> crate::audio::voice::VoiceSettings {
        let devices = self.backend == AudioBackend::Cpal;
        crate::audio::voice::VoiceSettings {
            echo_cancellation: self.echo_cancellation.on(devices),
            noise_suppression: self.noise_suppression.on(devices),
            gain_control: self.gain_control.on(devices),
        }
    }
}

/// A voice-processing switch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Processing {
    /// On for the agent's devices, off for the file backend.
    #[default]
    Auto,
    On,
    Off,
}

impl Processing {
    fn on(self, devices: bool) -> bool {
        match self {
            Self::Auto => devices,
            Self::On => true,
            Self::Off => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Preference order for negotiation.
    pub codecs: Vec<String>,
    /// SDES-SRTP (RFC 4568): `off`, `optional` (accept it when offered; offer keys in plain
    /// RTP/AVP) or `required` (offer RTP/SAVP only, refuse unencrypted offers with 488).
    pub srtp: SrtpPolicy,
    /// Session timers (RFC 4028): the refresh interval asked for, in seconds (at least 90);
    /// 0 turns them off. A call whose far end stops refreshing, or stops answering our
    /// refreshes, ends with the cause `timeout`.
    pub session_timer: u32,
    /// Seconds without any media from the far end (not on hold) after which a call is taken
    /// for dead and hung up; 0 turns it off.
    pub rtp_timeout: u32,
    /// How DTMF is sent: `auto` (RFC 4733 in the media when the far end offered
    /// telephone-event, SIP INFO otherwise), `rfc4733`, or `info` (always SIP INFO).
    pub dtmf: DtmfMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DtmfMode {
    #[default]
    Auto,
    Rfc4733,
    Info,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    Off,
    Optional,
    Required,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            // Wideband first (Opus, then G.722 — what desk phones and PBXs offer as HD voice),
            // then G.711 for everyone else.
            codecs: vec!["opus".into(), "g722".into(), "pcmu".into(), "pcma".into()],
            srtp: SrtpPolicy::Optional,
            session_timer: 1800,
            rtp_timeout: 30,
            dtmf: DtmfMode::Auto,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`, or a tracing filter directive.
    pub level: String,
    /// The seed's `debug_console`: raise verbosity to debug.
    pub debug_console: bool,
    /// The seed's `debug_html`: stream log lines to pages.
    pub debug_html: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            debug_console: false,
            debug_html: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceConfig {
    /// `softphoneId` to start in; the first status when unset.
    pub initial: Option<String>,
    pub status: Vec<StatusEntry>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StatusEntry {
    #[serde(rename = "softphoneId")]
    pub softphone_id: String,
    pub name: String,
    /// Incoming calls ring in this status; `false` is do-not-disturb (declined with 486).
    #[serde(default = "yes")]
    pub accept_calls: bool,
    /// The dialler's ready state: calls that would be answered by themselves are, and
    /// declined with 480 when `false`.
    #[serde(default = "yes")]
    pub ready: bool,
}

fn yes() -> bool {
    true
}

/// Statuses offered when IT configures none: Busy and Offline take no calls; On break takes
/// calls made to the agent but is not ready for the dialler.
pub fn default_statuses() -> Vec<PresenceStatus> {
    [
        ("available", "Available", true, true),
        ("busy", "Busy", false, false),
        ("break", "On break", true, false),
        ("offline", "Offline", false, false),
    ]
    .into_iter()
    .map(|(id, name, accept_calls, ready)| PresenceStatus {
        softphone_id: id.into(),
        name: name.into(),
        accept_calls,
        ready,
    })
    .collect()
}

impl Config {
    /// The seed's `debug_console`, from `[log]` or the account.
    pub fn debug_console(&self) -> bool {
        self.log.debug_console
            || self
                .account
                .as_ref()
                .and_then(|a| a.debug_console)
                .unwrap_or(false)
    }

    /// The seed's `debug_html`, from `[log]` or the account.
    pub fn debug_html(&self) -> bool {
        self.log.debug_html
            || self
                .account
                .as_ref()
                .and_then(|a| a.debug_html)
                .unwrap_or(false)
    }

    pub fn statuses(&self) -> Vec<PresenceStatus> {
        if self.presence.status.is_empty() {
            return default_statuses();
        }
        self.presence
            .status
            .iter()
            .map(|s| PresenceStatus {
                softphone_id: s.softphone_id.clone(),
                name: s.name.clone(),
                accept_calls: s.accept_calls,
                ready: s.ready,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
