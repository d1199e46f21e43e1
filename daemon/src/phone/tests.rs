use super::*;
use crate::protocol::{PortholeCall, StartCall, UpdatePresence};

fn phone() -> Phone {
    Phone::new(PhoneSettings { statuses: crate::config::default_statuses(), initial_status: None, line_configured: false })
}

#[test]
fn presence_changes_emit_status_changed() {
    let mut phone = phone();
    assert_eq!(phone.snapshot().presence.softphone_id, "available");
    let result = phone.handle_action(Action::UpdatePresence(UpdatePresence { softphone_id: "busy".into() }));
    assert_eq!(result.ok().and_then(|v| v["name"].as_str().map(str::to_owned)).as_deref(), Some("Busy"));
    assert_eq!(phone.snapshot().presence.softphone_id, "busy");
    assert!(matches!(phone.poll_event(), Some(Event::StatusChanged(s)) if s.softphone_id == "busy"));
    assert_eq!(phone.poll_event(), None);
}

#[test]
fn unknown_status_is_refused_and_changes_nothing() {
    let mut phone = phone();
    let err = phone.handle_action(Action::UpdatePresence(UpdatePresence { softphone_id: "lunch".into() }));
    assert_eq!(err.err().map(|e| e.code()), Some(ErrorCode::UnknownStatus));
    assert_eq!(phone.snapshot().presence.softphone_id, "available");
    assert_eq!(phone.poll_event(), None);
}

#[test]
fn initial_status_is_honoured() {
    let phone = Phone::new(PhoneSettings { statuses: crate::config::default_statuses(), initial_status: Some("offline".into()), line_configured: false });
    assert_eq!(phone.snapshot().presence.name, "Offline");
}

#[test]
fn dispositions_and_partner_config_are_stored_in_the_snapshot() {
    let mut phone = phone();
    phone.handle_action(Action::Disposition(vec!["Sale".into(), "No answer".into()])).expect("stored");
    let config = PartnerConfig { partner_id: "p1".into(), business_segment_id: None, channel_origin_id: Some("c".into()) };
    phone.handle_action(Action::PartnerConfig(config.clone())).expect("stored");
    let snapshot = phone.snapshot();
    assert_eq!(snapshot.dispositions, ["Sale", "No answer"]);
    assert_eq!(snapshot.partner_config, Some(config));
    assert!(matches!(phone.poll_event(), Some(Event::DispositionsChanged(_))));
    assert!(matches!(phone.poll_event(), Some(Event::PartnerConfigChanged(_))));
}

#[test]
fn bad_dispositions_are_refused() {
    let mut phone = phone();
    let too_many = vec!["x".to_owned(); MAX_DISPOSITIONS + 1];
    assert_eq!(phone.handle_action(Action::Disposition(too_many)).err().map(|e| e.code()), Some(ErrorCode::InvalidParams));
    assert_eq!(phone.handle_action(Action::Disposition(vec![" ".into()])).err().map(|e| e.code()), Some(ErrorCode::InvalidParams));
    assert!(phone.snapshot().dispositions.is_empty());
}

#[test]
fn call_actions_say_no_line_instead_of_pretending() {
    let mut phone = phone();
    let start = Action::StartCall(StartCall {
        dial_to: "+18883973342".into(),
        dial_from: None,
        partner_id: None,
        business_segment_id: None,
        channel_origin_id: None,
        participant_type: None,
    });
    let call = Action::Call(PortholeCall { destination: "1".into(), campaign: None, callerid: None });
    for action in [start, call, Action::Hangup(Default::default()), Action::Answer(Default::default())] {
        let name = action.name();
        assert_eq!(phone.handle_action(action), Err(PhoneError::NoLine { action: name }));
    }
    assert_eq!(phone.poll_event(), None);
}
