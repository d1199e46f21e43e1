use serde_json::json;

use super::*;

fn error_code(text: &str) -> (Option<RequestId>, ErrorCode) {
    match parse_request(text) {
        Err(Reply::Err { id, error, .. }) => (id, error.code),
        other => panic!("expected an error reply for {text}, got {other:?}"),
    }
}

#[test]
fn parses_a_contract_start_call() {
    let request = parse_request(
        r#"{"id":1,"action":"start_call","params":{"dialTo":"+18883973342","partnerId":"p"}}"#,
    )
    .expect("valid request");
    assert_eq!(request.id, RequestId::Number(1.into()));
    let Action::StartCall(call) = request.action else {
        panic!("wrong action")
    };
    assert_eq!(call.dial_to, "+18883973342");
    assert_eq!(call.partner_id.as_deref(), Some("p"));
}

#[test]
fn each_failure_gets_its_own_code() {
    assert_eq!(error_code("{not json"), (None, ErrorCode::InvalidJson));
    assert_eq!(error_code("[1,2]"), (None, ErrorCode::InvalidRequest));
    assert_eq!(
        error_code(r#"{"action":"get_state"}"#),
        (None, ErrorCode::InvalidRequest)
    );
    assert_eq!(
        error_code(r#"{"id":{},"action":"get_state"}"#),
        (None, ErrorCode::InvalidRequest)
    );
    let id = Some(RequestId::Text("a".into()));
    assert_eq!(
        error_code(r#"{"id":"a","action":5}"#),
        (id.clone(), ErrorCode::InvalidRequest)
    );
    assert_eq!(
        error_code(r#"{"id":"a","action":"get_state","extra":1}"#),
        (id.clone(), ErrorCode::InvalidRequest)
    );
    assert_eq!(
        error_code(r#"{"id":"a","action":"dial"}"#),
        (id.clone(), ErrorCode::UnknownAction)
    );
    assert_eq!(
        error_code(r#"{"id":"a","action":"start_call"}"#),
        (id.clone(), ErrorCode::InvalidParams)
    );
    assert_eq!(
        error_code(r#"{"id":"a","action":"start_call","params":{"dialTo":5}}"#),
        (id.clone(), ErrorCode::InvalidParams)
    );
    assert_eq!(
        error_code(r#"{"id":"a","action":"start_call","params":{"dialto":"1"}}"#),
        (id.clone(), ErrorCode::InvalidParams)
    );
    assert_eq!(
        error_code(r#"{"id":"a","action":"disposition","params":"Sale"}"#),
        (id.clone(), ErrorCode::InvalidParams)
    );
    assert_eq!(
        error_code(r#"{"id":"a","action":"get_state","params":[1]}"#),
        (id, ErrorCode::InvalidParams)
    );
}

#[test]
fn unknown_action_names_are_truncated_in_messages() {
    let long = "x".repeat(10_000);
    let Err(Reply::Err { error, .. }) = parse_request(&format!(r#"{{"id":1,"action":"{long}"}}"#))
    else {
        panic!()
    };
    assert!(
        error.message.len() < 200,
        "message echoes at most a short prefix"
    );
}

#[test]
fn call_actions_accept_no_params_and_porthole_guid() {
    let request = parse_request(r#"{"id":1,"action":"hangup"}"#).expect("no params is fine");
    assert_eq!(request.action, Action::Hangup(CallRef::default()));
    let request =
        parse_request(r#"{"id":1,"action":"hangup","params":{"guid":"g"}}"#).expect("guid alias");
    assert_eq!(
        request.action,
        Action::Hangup(CallRef {
            conversation_id: Some("g".into())
        })
    );
}

#[test]
fn every_name_round_trips_through_from_parts() {
    for name in Action::NAMES {
        let params = match name {
            "update_presence" => json!({"softphoneId": "x"}),
            "disposition" => json!(["a"]),
            "partner_config" => json!({"partnerId": "p"}),
            "start_call" => json!({"dialTo": "1"}),
            "call" | "callWithPhone" => json!({"destination": "1"}),
            "dtmf" => json!({"digits": "1"}),
            "transfer" => json!({"to": "1"}),
            "connect_calls" => json!({"conversationId": "a", "withConversationId": "b"}),
            "shotgun_call" => json!({"dialTo": ["1", "2"]}),
            "conference" => json!({"conversationIds": ["a", "b"]}),
            "split" => json!({"conversationId": "a"}),
            "submit_notes" => json!({"conversationId": "c", "disposition": "d"}),
            "ack" => json!({"seq": 1}),
            "tag_recording" => json!({"id": "r", "tags": ["a"]}),
            "blacklist_add" | "blacklist_remove" => json!({"numbers": ["5550100"]}),
            "set_audio_devices" => json!({"input": "Headset"}),
            _ => serde_json::Value::Null,
        };
        let action = Action::from_parts(name, params).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(action.name(), name);
        assert_eq!(
            Action::from_parts(name, action.params())
                .as_ref()
                .map(Action::name),
            Ok(name)
        );
    }
}

#[test]
fn replies_serialize_with_literal_ok() {
    let ok = Reply::ok(RequestId::Number(3.into()), json!({}));
    assert_eq!(
        serde_json::to_value(&ok).ok(),
        Some(json!({"id": 3, "ok": true, "result": {}}))
    );
    let err = Reply::err(None, ErrorBody::new(ErrorCode::NoLine, "m"));
    assert_eq!(
        serde_json::to_value(&err).ok(),
        Some(json!({"id": null, "ok": false, "error": {"code": "no_line", "message": "m"}}))
    );
    for code in ErrorCode::ALL {
        assert_eq!(serde_json::to_value(code).ok(), Some(json!(code.as_str())));
    }
}

/// Mutates every example request byte by byte (deterministic xorshift), and checks each result
/// is a request or an error reply with a code — never a panic.
#[test]
fn mutated_examples_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/messages");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("request."))
        })
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert!(seeds.len() >= 16);
    seeds.push(b"{}".to_vec());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let interesting: &[&[u8]] = &[
        b"\"",
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b",",
        b"null",
        b"1e999",
        b"-",
        b"\\u0000",
        b"\xff",
        b"\"id\"",
        b"\"params\"",
    ];
    let mut outcomes = [0usize; 2];
    for _ in 0..20_000 {
        let seed = &seeds[(next() % seeds.len() as u64) as usize];
        let mut bytes = seed.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % (bytes.len() as u64 + 1)) as usize;
            match next() % 3 {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 => {
                    let piece = interesting[(next() % interesting.len() as u64) as usize];
                    bytes.splice(at..at, piece.iter().copied());
                }
                _ if at < bytes.len() => bytes[at] = next() as u8,
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        match parse_request(&text) {
            Ok(_) => outcomes[0] += 1,
            Err(Reply::Err { error, .. }) => {
                assert!(!error.message.is_empty());
                outcomes[1] += 1;
            }
            Err(other) => panic!("an error must be an error reply: {other:?}"),
        }
    }
    assert!(
        outcomes[0] > 100 && outcomes[1] > 1000,
        "both outcomes exercised: {outcomes:?}"
    );
}

fn refusal(text: &str) -> (Option<RequestId>, ErrorBody) {
    match parse_request(text) {
        Err(Reply::Err { id, error, .. }) => (id, error),
        other => panic!("expected an error reply for {text}, got {other:?}"),
    }
}

/// Finding 14: serde_json keeps the last of two equal keys, so `{"action":"get_state",
/// "action":"logout"}` ran `logout` while anything reading the first key (a log line, a proxy, a
/// reviewer) saw `get_state`. A repeated key anywhere in a request is now refused by name.
#[test]
fn duplicate_keys_are_refused_by_name() {
    let cases: [(&str, &str, &str); 7] = [
        (
            r#"{"id":1,"action":"get_state","action":"logout"}"#,
            "`action`",
            "the request",
        ),
        (
            r#"{"id":1,"action":"hangup","params":{},"params":{"guid":"g"}}"#,
            "`params`",
            "the request",
        ),
        (
            r#"{"id":1,"action":"start_call","params":{"dialTo":"1","dialTo":"2"}}"#,
            "`dialTo`",
            "`params`",
        ),
        (
            r#"{"id":1,"action":"provision","params":{"server":"wss://a","server":"ws://b"}}"#,
            "`server`",
            "`params`",
        ),
        // Escapes are decoded before keys are compared.
        (
            r#"{"id":1,"action":"get_state","\u0061ction":"logout"}"#,
            "`action`",
            "the request",
        ),
        (
            r#"{"id":1,"action":"provision","params":{"x":[0,{"a":1,"a":2}]}}"#,
            "`a`",
            "`params.x[1]`",
        ),
        // A repeated key is refused even when the rest of the request is also wrong.
        (
            r#"{"id":1,"action":"frobnicate","params":{"k":1,"k":1}}"#,
            "`k`",
            "`params`",
        ),
    ];
    for (text, key, place) in cases {
        let (id, error) = refusal(text);
        assert_eq!(error.code, ErrorCode::InvalidRequest, "{text}");
        assert_eq!(id, Some(RequestId::Number(1.into())), "{text}: id echoed");
        assert!(
            error.message.contains(&format!("duplicate key {key}"))
                && error.message.contains(place),
            "{text}: {}",
            error.message
        );
    }
}

#[test]
fn a_duplicated_id_is_refused_without_echoing_either() {
    let (id, error) = refusal(r#"{"id":1,"action":"get_state","id":2}"#);
    assert_eq!((id, error.code), (None, ErrorCode::InvalidRequest));
    assert!(
        error.message.contains("duplicate key `id`"),
        "{}",
        error.message
    );
}

#[test]
fn equal_keys_in_different_objects_are_fine() {
    let request = parse_request(
        r#"{"id":1,"action":"provision","params":{"id":1,"action":2,"o":{"id":3,"o":{"id":4}},"l":[{"id":5},{"id":6}]}}"#,
    )
    .expect("no object repeats a key");
    assert_eq!(request.action.name(), "provision");
}

#[test]
fn a_long_duplicated_key_is_truncated_in_the_message() {
    let long = "k".repeat(10_000);
    let (_, error) = refusal(&format!(
        r#"{{"id":1,"action":"provision","params":{{"{long}":1,"{long}":2}}}}"#
    ));
    assert_eq!(error.code, ErrorCode::InvalidRequest);
    assert!(error.message.len() < 300, "{}", error.message.len());
}

/// The `request` fuzz target asserts that a reply echoes only a bounded part of the frame; these
/// broke it: an unknown field's name, and serde's messages about params (`unknown field `…``,
/// `invalid type: string "…"`), came back whole — up to the 64 KiB frame limit.
#[test]
fn error_messages_echo_at_most_a_short_prefix_of_the_frame() {
    let long = "x".repeat(10_000);
    for text in [
        format!(r#"{{"id":1,"action":"get_state","{long}":1}}"#),
        format!(r#"{{"id":1,"action":"start_call","params":{{"{long}":"1"}}}}"#),
        format!(r#"{{"id":1,"action":"disposition","params":"{long}"}}"#),
    ] {
        let (_, error) = refusal(&text);
        assert!(
            error.message.chars().count() <= MAX_ERROR_CHARS,
            "{} chars: {}…",
            error.message.len(),
            &error.message[..80]
        );
    }
}

/// Found by the `request` fuzz target: serde_json's default float parsing may land one unit in
/// the last place away from the nearest double. The id `1111…17` (96 digits) was echoed as
/// `1.1111111111111112e95`, which read back as `1.1111111111111113e95`: a page — whose
/// `JSON.parse` rounds exactly — could not match its reply to its request. Exact parsing
/// (serde_json's `float_roundtrip`) echoes every numeric id as the double the page meant.
#[test]
fn numeric_ids_echo_exactly() {
    let digits = format!("{}9{}7", "1".repeat(17), "1".repeat(77));
    for id in [
        digits.as_str(),
        "1.1111111111111112e95",
        "0.1",
        "5e-324",
        "-0",
    ] {
        let (echoed, error) = refusal(&format!(r#"{{"id":{id},"action":"x"}}"#));
        // Rust's `str::parse` rounds exactly, as `JSON.parse` does.
        let page_meant: f64 = id.parse().expect("a float literal");
        let Some(RequestId::Number(number)) = &echoed else {
            panic!("{id}: a numeric id is echoed as a number")
        };
        assert_eq!(number.as_f64(), Some(page_meant), "{id} echoed as {number}");
        let reply = Reply::err(echoed, error);
        let wire = reply.to_json();
        let read_back: ServerMessage = serde_json::from_str(&wire).expect("a reply reads back");
        assert_eq!(read_back, ServerMessage::Reply(reply), "{id}");
    }
}
