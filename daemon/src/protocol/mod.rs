//! Protocol v1: every message on `wss://localhost:PORT/ws`, defined once.
//!
//! `docs/protocol.md`, the shim's TypeScript declarations (`js-shim/softphone-bridge.d.ts`) and
//! `examples/messages/*.json` follow this module; `daemon/tests/protocol_sync.rs` keeps them in step.
//!
//! Wire shapes (JSON text frames):
//! - client request `{"id": ID, "action": "NAME", "params": {…}}` (ID is a string or a number);
//! - reply `{"id": ID, "ok": true, "result": {…}}` or `{"id": ID, "ok": false, "error": {"code", "message"}}`;
//! - event `{"event": "NAME", "seq": N, "payload": {…}}`; the first frame is always `hello` with `seq` 0.

mod actions;
mod events;
mod snapshot;

pub use actions::{
    Ack, Action, BlacklistNumbers, CallRef, ConferenceRequest, ConnectCalls, Dtmf, HistoryQuery,
    NotesSubmission, PartnerConfig, PortholeCall, RecordingQuery, ShotgunCall, Split, StartCall,
    TagRecording, TestAudio, Transfer, UpdatePresence,
};
pub use events::{
    AudioDeviceUnavailable, AudioDevicesChanged, AudioTest, CallAccepted, CallDevicesInUse,
    CallEnded, CallHoldChanged, CallMuteChanged, CallNotesSubmitted, CallRejected, CallRinging,
    CallTransferred, CallbackDue, ConferenceChanged, DispositionsChanged, DtmfReceived, EndCause,
    Event, EventMessage, Hello, IncomingCall, LogLine, OutboundCallInitiated, RecordingChanged,
    RecordingTagged, RegistrationChanged, StatusChanged,
};
pub use snapshot::{
    AudioDeviceList, AudioDevices, CallInfo, CallQuality, CallRecord, DevicesInUse, LineInfo,
    LineState, PresenceStatus, RecordingInfo, Snapshot, StorageInfo, StorageState,
};

use actions::truncate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Protocol version announced in `hello`. Bumped only for incompatible changes.
pub const VERSION: u32 = 1;

/// A request's `id`, echoed in its reply. Pages use numbers or strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(serde_json::Number),
    Text(String),
}

/// A parsed, well-formed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub action: Action,
}

/// Stable, snake_case error codes carried on the wire. Pages switch on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON (or is a binary frame).
    InvalidJson,
    /// JSON, but not a request object with a string/number `id` and a string `action`.
    InvalidRequest,
    /// `action` names no action of this protocol version.
    UnknownAction,
    /// `params` are missing, of the wrong type, or carry unknown fields.
    InvalidParams,
    /// The connection sent more actions than its rate allows.
    RateLimited,
    /// A call action arrived but no phone line is configured or registered.
    NoLine,
    /// `update_presence` named a `softphoneId` that is not configured.
    UnknownStatus,
    /// No call has that `conversationId`.
    UnknownCall,
    /// A destination number fails the dialling policy.
    InvalidNumber,
    /// The action is valid but this line cannot do it yet (e.g. hold).
    NotSupported,
    /// `provision` parameters fail the seed's datatypes; the message names the parameter.
    InvalidProvisioning,
    /// The action would end a call in progress (`provision` while on a call).
    CallInProgress,
    /// IT's settings do not let this page (or any page) do this action (`provision`, `logout`).
    Forbidden,
    /// The on-disk store is not available (`get_history`); the snapshot's `storage` says why.
    StorageUnavailable,
    /// The number is on the blacklist (the agent's or IT's): no INVITE goes out.
    Blacklisted,
    /// The daemon could not complete the action; the message says why.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::UnknownAction => "unknown_action",
            Self::InvalidParams => "invalid_params",
            Self::RateLimited => "rate_limited",
            Self::NoLine => "no_line",
            Self::UnknownStatus => "unknown_status",
            Self::UnknownCall => "unknown_call",
            Self::InvalidNumber => "invalid_number",
            Self::NotSupported => "not_supported",
            Self::InvalidProvisioning => "invalid_provisioning",
            Self::CallInProgress => "call_in_progress",
            Self::Forbidden => "forbidden",
            Self::StorageUnavailable => "storage_unavailable",
            Self::Blacklisted => "blacklisted",
            Self::Internal => "internal",
        }
    }

    pub const ALL: [ErrorCode; 16] = [
        Self::InvalidJson,
        Self::InvalidRequest,
        Self::UnknownAction,
        Self::InvalidParams,
        Self::RateLimited,
        Self::NoLine,
        Self::UnknownStatus,
        Self::UnknownCall,
        Self::InvalidNumber,
        Self::NotSupported,
        Self::InvalidProvisioning,
        Self::CallInProgress,
        Self::Forbidden,
        Self::StorageUnavailable,
        Self::Blacklisted,
        Self::Internal,
    ];
}

/// The `error` object of a failed reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A reply to one request. `id` is absent only when the request was too broken to carry one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    Ok {
        id: RequestId,
        ok: True,
        result: Value,
    },
    Err {
        id: Option<RequestId>,
        ok: False,
        error: ErrorBody,
    },
}

impl Reply {
    pub fn ok(id: RequestId, result: Value) -> Self {
        Self::Ok {
            id,
            ok: True,
            result,
        }
    }
    pub fn err(id: Option<RequestId>, error: ErrorBody) -> Self {
        Self::Err {
            id,
            ok: False,
            error,
        }
    }
    pub fn to_json(&self) -> String {
        // Serializing these plain data types cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// `true` as a type, so `ok` can only be true in a success reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct True;
/// `false` as a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct False;

macro_rules! bool_literal {
    ($ty:ident, $value:literal) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bool($value)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if bool::deserialize(d)? == $value {
                    Ok($ty)
                } else {
                    Err(serde::de::Error::custom(concat!(
                        "expected ",
                        stringify!($value)
                    )))
                }
            }
        }
    };
}
bool_literal!(True, true);
bool_literal!(False, false);

/// Everything the daemon sends: an event (including `hello`) or a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerMessage {
    Event(Box<EventMessage>),
    Reply(Reply),
}

/// Parses one text frame into a request, or the error reply to send back.
///
/// The checks run from the outside in so each failure gets the most specific code:
/// not JSON → `invalid_json`; not a request object, or a key repeated in any object →
/// `invalid_request`; unknown name → `unknown_action`; bad params → `invalid_params`.
pub fn parse_request(text: &str) -> Result<Request, Reply> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Reply::err(
            None,
            ErrorBody::new(ErrorCode::InvalidJson, format!("not valid JSON: {e}")),
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err(invalid_request(
            None,
            "a request must be a JSON object with id, action and params",
        ));
    };
    let duplicate = first_duplicate_key(text).map_err(|_| {
        // Cannot happen (the frame parsed as a `Value` under the same limits), but a check
        // that could not run must not let the request through.
        invalid_request(None, "the request could not be checked for repeated keys")
    })?;
    if let Some(duplicate) = duplicate {
        // A repeated `id` leaves no single id to echo; any other repeat still lets the page
        // match the refusal to its request.
        let id = if duplicate.is_top_level("id") {
            None
        } else {
            request_id(object.remove("id")).ok()
        };
        return Err(invalid_request(id, &duplicate.to_string()));
    }
    let id = request_id(object.remove("id")).map_err(|message| invalid_request(None, message))?;
    let name = match object.remove("action") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(invalid_request(Some(id), "`action` must be a string")),
        None => return Err(invalid_request(Some(id), "missing `action`")),
    };
    let params = object.remove("params").unwrap_or(Value::Null);
    if let Some(extra) = object.keys().next() {
        let extra = truncate(extra, ECHOED_CHARS);
        let message = format!("unknown field `{extra}`; a request has only id, action and params");
        return Err(invalid_request(Some(id), &message));
    }
    match Action::from_parts(&name, params) {
        Ok(action) => Ok(Request { id, action }),
        // serde's messages quote the page's field names and values whole.
        Err(error) => Err(Reply::err(
            Some(id),
            ErrorBody::new(error.code, truncate(&error.message, MAX_ERROR_CHARS - 1)),
        )),
    }
}

fn request_id(value: Option<Value>) -> Result<RequestId, &'static str> {
    match value {
        Some(Value::String(s)) => Ok(RequestId::Text(s)),
        Some(Value::Number(n)) => Ok(RequestId::Number(n)),
        Some(_) => Err("`id` must be a string or a number"),
        None => Err("missing `id` (a string or a number)"),
    }
}

fn invalid_request(id: Option<RequestId>, message: &str) -> Reply {
    Reply::err(id, ErrorBody::new(ErrorCode::InvalidRequest, message))
}

/// The first key that one JSON object of a request repeats, and where.
///
/// serde_json keeps the last of two equal keys without a word, so `{"action":"get_state",
/// "action":"logout"}` would run `logout` while anything that reads the first key (a log line, a
/// proxy, a person reviewing traffic) sees `get_state`. Such a request means two things; we refuse it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DuplicateKey {
    /// Where the object is: empty for the request itself, else e.g. `params.list[2]`.
    path: String,
    key: String,
}

impl DuplicateKey {
    fn is_top_level(&self, key: &str) -> bool {
        self.path.is_empty() && self.key == key
    }
}

impl std::fmt::Display for DuplicateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = truncate(&self.key, ECHOED_CHARS);
        if self.path.is_empty() {
            write!(f, "duplicate key `{key}` in the request")
        } else {
            let path = truncate(&self.path, ECHOED_CHARS);
            write!(f, "duplicate key `{key}` in `{path}`")
        }
    }
}

/// How much of a page-supplied key or path an error message echoes.
const ECHOED_CHARS: usize = 64;

/// The longest error message `parse_request` replies with (a page's long value or field name is
/// cut, not echoed whole).
pub const MAX_ERROR_CHARS: usize = 240;

/// Scans `text`, already known to be valid JSON, for an object that repeats a key. Keys are
/// compared after unescaping (`"\u0061ction"` is `action`).
fn first_duplicate_key(text: &str) -> Result<Option<DuplicateKey>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(
        DuplicateScan {
            path: &JsonPath::Root,
        },
        &mut deserializer,
    )
}

/// Where a value sits, built only as deep as the scan goes and rendered only for a duplicate.
enum JsonPath<'a> {
    Root,
    Key(&'a JsonPath<'a>, &'a str),
    Index(&'a JsonPath<'a>, usize),
}

impl JsonPath<'_> {
    fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Self::Root => {}
            Self::Key(parent, key) => {
                parent.render(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Self::Index(parent, index) => {
                parent.render(out);
                // Writing to a String cannot fail.
                let _ = write!(out, "[{index}]");
            }
        }
    }
}

/// Visits one JSON value and yields the first duplicate key inside it, in document order.
struct DuplicateScan<'a> {
    path: &'a JsonPath<'a>,
}

impl<'de> serde::de::DeserializeSeed<'de> for DuplicateScan<'_> {
    type Value = Option<DuplicateKey>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for DuplicateScan<'_> {
    type Value = Option<DuplicateKey>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut first = None;
        let mut index = 0;
        loop {
            let path = JsonPath::Index(self.path, index);
            let Some(found) = seq.next_element_seed(DuplicateScan { path: &path })? else {
                return Ok(first);
            };
            first = first.or(found);
            index += 1;
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut first = None;
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = JsonPath::Key(self.path, &key);
            let found = map.next_value_seed(DuplicateScan { path: &path })?;
            if first.is_none() && seen.contains(&key) {
                let mut rendered = String::new();
                self.path.render(&mut rendered);
                first = Some(DuplicateKey {
                    path: rendered,
                    key,
                });
            } else {
                first = first.or(found);
                seen.insert(key);
            }
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests;
