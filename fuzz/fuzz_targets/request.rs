//! WebSocket requests (JSON → `Action`): any text frame becomes a typed request or an error reply,
//! never a panic, and both keep their promises.
//!
//! The target compiles the daemon's own `protocol` module from its source file (serde and
//! serde_json are its only dependencies) instead of depending on the whole daemon crate: that
//! would build ~290 crates (webrtc, tokio, rustls, opus…) with sanitizer flags for one function.
//! See docs/decisions.md, "Fuzzing the request parser".
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../daemon/src/protocol/mod.rs"]
mod protocol;

use libfuzzer_sys::fuzz_target;
use protocol::{Action, ErrorCode, MAX_ERROR_CHARS, Reply, ServerMessage, parse_request};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    // A WebSocket text frame is UTF-8 (the library checks); a binary frame never reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_request(text) {
        Ok(request) => {
            let name = request.action.name();
            assert!(Action::NAMES.contains(&name), "{name} is a v1 action");
            // What parsed was a JSON object naming exactly this action and id.
            let value: Value = serde_json::from_str(text).expect("a parsed request is JSON");
            assert_eq!(value.get("action").and_then(Value::as_str), Some(name));
            assert_eq!(value.get("id"), serde_json::to_value(&request.id).ok().as_ref());
            // Re-serialized as a page would send it, it parses to the same request.
            let frame = json!({"id": request.id, "action": name, "params": request.action.params()});
            let again = parse_request(&frame.to_string());
            assert_eq!(again.as_ref().ok(), Some(&request), "round trip of {frame}");
        }
        Err(reply) => {
            let Reply::Err { ref id, ref error, .. } = reply else {
                panic!("an error is an error reply: {reply:?}");
            };
            assert!(
                matches!(
                    error.code,
                    ErrorCode::InvalidJson
                        | ErrorCode::InvalidRequest
                        | ErrorCode::UnknownAction
                        | ErrorCode::InvalidParams
                ),
                "parse_request uses only the parsing codes: {:?}",
                error.code
            );
            assert!(!error.message.is_empty());
            assert!(
                error.message.chars().count() <= MAX_ERROR_CHARS,
                "message echoes a bounded part of the frame: {} chars",
                error.message.chars().count()
            );
            // On the wire: valid JSON, `ok: false`, a stable snake_case code, and it reads back.
            let wire = reply.to_json();
            let value: Value = serde_json::from_str(&wire).expect("the reply is JSON");
            assert_eq!(value["ok"], Value::Bool(false));
            let code = value["error"]["code"].as_str().expect("code is a string");
            assert_eq!(code, error.code.as_str());
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            let back: ServerMessage = serde_json::from_str(&wire).expect("reads back");
            assert_eq!(back, ServerMessage::Reply(reply.clone()));
            // An echoed id is the frame's own top-level `id`, never one made up or taken from params.
            if let Some(id) = id {
                let value: Value = serde_json::from_str(text).expect("an id came from JSON");
                assert_eq!(value.get("id"), serde_json::to_value(id).ok().as_ref());
            }
        }
    }
});
