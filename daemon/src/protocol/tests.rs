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
    let request = parse_request(r#"{"id":1,"action":"start_call","params":{"dialTo":"+18883973342","partnerId":"p"}}"#)
        .expect("valid request");
    assert_eq!(request.id, RequestId::Number(1.into()));
    let Action::StartCall(call) = request.action else { panic!("wrong action") };
    assert_eq!(call.dial_to, "+18883973342");
    assert_eq!(call.partner_id.as_deref(), Some("p"));
}

#[test]
fn each_failure_gets_its_own_code() {
    assert_eq!(error_code("{not json"), (None, ErrorCode::InvalidJson));
    assert_eq!(error_code("[1,2]"), (None, ErrorCode::InvalidRequest));
    assert_eq!(error_code(r#"{"action":"get_state"}"#), (None, ErrorCode::InvalidRequest));
    assert_eq!(error_code(r#"{"id":{},"action":"get_state"}"#), (None, ErrorCode::InvalidRequest));
    let id = Some(RequestId::Text("a".into()));
    assert_eq!(error_code(r#"{"id":"a","action":5}"#), (id.clone(), ErrorCode::InvalidRequest));
    assert_eq!(error_code(r#"{"id":"a","action":"get_state","extra":1}"#), (id.clone(), ErrorCode::InvalidRequest));
    assert_eq!(error_code(r#"{"id":"a","action":"dial"}"#), (id.clone(), ErrorCode::UnknownAction));
    assert_eq!(error_code(r#"{"id":"a","action":"start_call"}"#), (id.clone(), ErrorCode::InvalidParams));
    assert_eq!(error_code(r#"{"id":"a","action":"start_call","params":{"dialTo":5}}"#), (id.clone(), ErrorCode::InvalidParams));
    assert_eq!(error_code(r#"{"id":"a","action":"start_call","params":{"dialto":"1"}}"#), (id.clone(), ErrorCode::InvalidParams));
    assert_eq!(error_code(r#"{"id":"a","action":"disposition","params":"Sale"}"#), (id.clone(), ErrorCode::InvalidParams));
    assert_eq!(error_code(r#"{"id":"a","action":"get_state","params":[1]}"#), (id, ErrorCode::InvalidParams));
}

#[test]
fn unknown_action_names_are_truncated_in_messages() {
    let long = "x".repeat(10_000);
    let Err(Reply::Err { error, .. }) = parse_request(&format!(r#"{{"id":1,"action":"{long}"}}"#)) else { panic!() };
    assert!(error.message.len() < 200, "message echoes at most a short prefix");
}

#[test]
fn call_actions_accept_no_params_and_porthole_guid() {
    let request = parse_request(r#"{"id":1,"action":"hangup"}"#).expect("no params is fine");
    assert_eq!(request.action, Action::Hangup(CallRef::default()));
    let request = parse_request(r#"{"id":1,"action":"hangup","params":{"guid":"g"}}"#).expect("guid alias");
    assert_eq!(request.action, Action::Hangup(CallRef { conversation_id: Some("g".into()) }));
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
            "submit_notes" => json!({"conversationId": "c", "disposition": "d"}),
            _ => serde_json::Value::Null,
        };
        let action = Action::from_parts(name, params).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(action.name(), name);
        assert_eq!(Action::from_parts(name, action.params()).as_ref().map(Action::name), Ok(name));
    }
}

#[test]
fn replies_serialize_with_literal_ok() {
    let ok = Reply::ok(RequestId::Number(3.into()), json!({}));
    assert_eq!(serde_json::to_value(&ok).ok(), Some(json!({"id": 3, "ok": true, "result": {}})));
    let err = Reply::err(None, ErrorBody::new(ErrorCode::NoLine, "m"));
    assert_eq!(
        serde_json::to_value(&err).ok(),
        Some(json!({"id": null, "ok": false, "error": {"code": "no_line", "message": "m"}}))
    );
    for code in ErrorCode::ALL {
        assert_eq!(serde_json::to_value(code).ok(), Some(json!(code.as_str())));
    }
}
