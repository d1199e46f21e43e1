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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PresenceStatus {
    pub softphone_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineInfo {
    pub state: LineState,
    /// The registered extension (the seed platform's "WebRTC Phone Extension").
    pub extension: Option<String>,
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
}
