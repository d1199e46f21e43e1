use std::time::Duration;

use sip_core::call::EndReason;

use super::*;
use crate::protocol::{CallRef, NotesSubmission, PortholeCall, StartCall, UpdatePresence};

struct Counter(u32);
impl Entropy for Counter {
    fn token(&mut self) -> String {
        self.0 += 1;
        format!("{:016x}", self.0)
    }
}

fn settings(line_domain: Option<&str>) -> PhoneSettings {
    PhoneSettings {
        provisioning: Default::default(),
        may_provision: true,
        statuses: crate::config::default_statuses(),
        initial_status: None,
        line_domain: line_domain.map(str::to_owned),
        ids: Box::new(Counter(0)),
        wall_clock: || time::macros::datetime!(2026-11-22 09:00 UTC),
        answering: Default::default(),
        free_text_dispositions: false,
        saved: SavedState::default(),
        auto_record: false,
        pages_may_record: true,
        machine_blacklist: Vec::new(),
        dial_headers: Default::default(),
        dial_rules: Default::default(),
    }
}

fn always() -> super::Answering {
    super::Answering {
        auto: crate::config::AutoAnswer::Always,
        ..Default::default()
    }
}

/// A call from 1002 rings in as `id`.
fn ring(phone: &mut Phone, id: &str, now: Instant) {
    phone.handle_line_event(
        LineEvent::CallIncoming {
            conversation: id.into(),
            caller: "1002".into(),
            headers: Vec::new(),
        },
        now,
    );
}

fn phone() -> Phone {
    Phone::new(settings(None))
}

/// A phone whose line is registered.
fn registered() -> Phone {
    let mut phone = Phone::new(settings(Some("127.0.0.1")));
    phone.handle_line_event(
        LineEvent::Registered {
            extension: "1001".into(),
        },
        Instant::now(),
    );
    phone.poll_event();
    phone
}

fn start_call(dial: &str) -> Action {
    Action::StartCall(StartCall {
        dial_to: dial.into(),
        dial_from: None,
        partner_id: Some("p1".into()),
        business_segment_id: None,
        channel_origin_id: None,
        participant_type: None,
    })
}

#[test]
fn presence_changes_emit_status_changed() {
    let mut phone = phone();
    assert_eq!(phone.snapshot().presence.softphone_id, "available");
    let result = phone.handle_action(Action::UpdatePresence(UpdatePresence {
        softphone_id: "busy".into(),
    }));
    assert_eq!(
        result
            .ok()
            .and_then(|v| v["name"].as_str().map(str::to_owned))
            .as_deref(),
        Some("Busy")
    );
    assert_eq!(phone.snapshot().presence.softphone_id, "busy");
    assert!(
        matches!(phone.poll_event(), Some(Event::StatusChanged(s)) if s.softphone_id == "busy")
    );
    assert_eq!(phone.poll_event(), None);
}

#[test]
fn unknown_status_is_refused_and_changes_nothing() {
    let mut phone = phone();
    let err = phone.handle_action(Action::UpdatePresence(UpdatePresence {
        softphone_id: "lunch".into(),
    }));
    assert_eq!(err.err().map(|e| e.code()), Some(ErrorCode::UnknownStatus));
    assert_eq!(phone.snapshot().presence.softphone_id, "available");
    assert_eq!(phone.poll_event(), None);
}

#[test]
fn initial_status_is_honoured() {
    let phone = Phone::new(PhoneSettings {
        initial_status: Some("offline".into()),
        ..settings(None)
    });
    assert_eq!(phone.snapshot().presence.name, "Offline");
}

#[test]
fn dispositions_and_partner_config_are_stored_in_the_snapshot() {
    let mut phone = phone();
    phone
        .handle_action(Action::Disposition(vec!["Sale".into(), "No answer".into()]))
        .expect("stored");
    let config = PartnerConfig {
        partner_id: "p1".into(),
        business_segment_id: None,
        channel_origin_id: Some("c".into()),
    };
    phone
        .handle_action(Action::PartnerConfig(config.clone()))
        .expect("stored");
    let snapshot = phone.snapshot();
    assert_eq!(snapshot.dispositions, ["Sale", "No answer"]);
    assert_eq!(snapshot.partner_config, Some(config));
    assert!(matches!(
        phone.poll_event(),
        Some(Event::DispositionsChanged(_))
    ));
    assert!(matches!(
        phone.poll_event(),
        Some(Event::PartnerConfigChanged(_))
    ));
}

#[test]
fn bad_dispositions_are_refused() {
    let mut phone = phone();
    let too_many = vec!["x".to_owned(); MAX_DISPOSITIONS + 1];
    assert_eq!(
        phone
            .handle_action(Action::Disposition(too_many))
            .err()
            .map(|e| e.code()),
        Some(ErrorCode::InvalidParams)
    );
    assert_eq!(
        phone
            .handle_action(Action::Disposition(vec![" ".into()]))
            .err()
            .map(|e| e.code()),
        Some(ErrorCode::InvalidParams)
    );
    assert!(phone.snapshot().dispositions.is_empty());
}

#[test]
fn call_actions_say_no_line_instead_of_pretending() {
    let mut phone = phone();
    let start = start_call("+18883973342");
    let call = Action::Call(PortholeCall {
        destination: "1".into(),
        ..Default::default()
    });
    for action in [
        start,
        call,
        Action::Hangup(Default::default()),
        Action::Answer(Default::default()),
    ] {
        let name = action.name();
        assert_eq!(
            phone.handle_action(action),
            Err(PhoneError::NoLine { action: name })
        );
    }
    assert_eq!(phone.poll_event(), None);
}

#[test]
fn outbound_call_from_dial_to_end_with_duration() {
    let mut phone = registered();
    let start = Instant::now();
    let id = phone
        .handle_action(start_call("+1 888 397 3342"))
        .expect("dials")["conversationId"]
        .as_str()
        .map(str::to_owned)
        .expect("id");
    assert!(
        matches!(phone.poll_command(), Some(LineCommand::Dial { conversation, target, .. }) if conversation == id && target.to_string() == "sip:+18883973342@127.0.0.1")
    );
    assert!(
        matches!(phone.poll_event(), Some(Event::OutboundCallInitiated(e)) if e.dialled_to == "+18883973342" && e.partner_id.as_deref() == Some("p1"))
    );
    assert_eq!(phone.snapshot().calls[0].state, "dialing");

    phone.handle_line_event(
        LineEvent::CallRinging {
            conversation: id.as_str().into(),
        },
        start,
    );
    assert!(matches!(phone.poll_event(), Some(Event::CallRinging(_))));
    phone.handle_line_event(
        LineEvent::CallEstablished {
            conversation: id.as_str().into(),
        },
        start,
    );
    assert!(matches!(phone.poll_event(), Some(Event::CallAccepted(a)) if a.conversation_id == id));
    assert_eq!(
        phone
            .handle_action(Action::Mute(CallRef::default()))
            .ok()
            .map(|v| v["muted"].clone()),
        Some(serde_json::json!(true))
    );
    assert!(phone.snapshot().calls[0].muted);
    assert!(
        matches!(phone.poll_event(), Some(Event::CallMuteChanged(m)) if m.muted && m.conversation_id == id)
    );
    // Muting a muted call changes nothing and says nothing.
    phone
        .handle_action(Action::Mute(CallRef::default()))
        .expect("mutes again");
    assert_eq!(phone.poll_event(), None);
    phone.poll_command();
    phone.poll_command();
    phone
        .handle_action(Action::Hangup(CallRef::default()))
        .expect("hangs up");
    assert!(
        matches!(phone.poll_command(), Some(LineCommand::Hangup { conversation }) if conversation == id)
    );
    phone.handle_line_event(
        LineEvent::CallEnded {
            conversation: id.as_str().into(),
            reason: EndReason::Local,
        },
        start + Duration::from_millis(12_400),
    );
    assert!(
        matches!(phone.poll_event(), Some(Event::CallEnded(e)) if e.duration == 12 && e.call_type == "outbound")
    );
    assert!(phone.snapshot().calls.is_empty());

    let notes = NotesSubmission {
        conversation_id: id.clone(),
        disposition: "Sale".into(),
        notes: "booked".into(),
        schedule_at: None,
    };
    phone
        .handle_action(Action::SubmitNotes(notes))
        .expect("notes for an ended call");
    assert!(
        matches!(phone.poll_event(), Some(Event::CallNotesSubmitted(n)) if n.partner_id.as_deref() == Some("p1"))
    );
}

#[test]
fn inbound_call_answer_and_decline() {
    let mut phone = registered();
    let now = Instant::now();
    let headers = vec![("X-Partner-Id".to_owned(), "p9".to_owned())];
    phone.handle_line_event(
        LineEvent::CallIncoming {
            conversation: "c1".into(),
            caller: "+15550100".into(),
            headers,
        },
        now,
    );
    assert!(
        matches!(phone.poll_event(), Some(Event::IncomingCall(e)) if e.caller_ani == "+15550100" && e.language == "en_US" && e.partner_id.as_deref() == Some("p9"))
    );
    phone
        .handle_action(Action::Answer(CallRef::default()))
        .expect("answers the ringing call");
    assert!(
        matches!(phone.poll_command(), Some(LineCommand::Answer { conversation }) if conversation == "c1")
    );

    phone.handle_line_event(
        LineEvent::CallIncoming {
            conversation: "c2".into(),
            caller: "1002".into(),
            headers: Vec::new(),
        },
        now,
    );
    phone.poll_event();
    phone
        .handle_action(Action::Reject(CallRef {
            conversation_id: Some("c2".into()),
        }))
        .expect("declines");
    assert!(matches!(
        phone.poll_command(),
        Some(LineCommand::Reject { status: 603, .. })
    ));
    phone.handle_line_event(
        LineEvent::CallEnded {
            conversation: "c2".into(),
            reason: EndReason::Declined,
        },
        now,
    );
    assert!(matches!(phone.poll_event(), Some(Event::CallRejected(r)) if r.reason == "active"));
    phone.handle_line_event(
        LineEvent::CallIncoming {
            conversation: "c3".into(),
            caller: "1003".into(),
            headers: Vec::new(),
        },
        now,
    );
    phone.poll_event();
    phone.handle_line_event(
        LineEvent::CallEnded {
            conversation: "c3".into(),
            reason: EndReason::Cancelled,
        },
        now,
    );
    assert!(matches!(phone.poll_event(), Some(Event::CallRejected(r)) if r.reason == "passive"));
}

#[test]
fn call_actions_check_their_target_and_the_number() {
    let mut phone = registered();
    assert_eq!(
        phone
            .handle_action(start_call("call me"))
            .err()
            .map(|e| e.code()),
        Some(ErrorCode::InvalidNumber)
    );
    assert_eq!(
        phone
            .handle_action(Action::Answer(CallRef::default()))
            .err()
            .map(|e| e.code()),
        Some(ErrorCode::UnknownCall)
    );
    assert_eq!(
        phone
            .handle_action(Action::Hold(CallRef::default()))
            .err()
            .map(|e| e.code()),
        Some(ErrorCode::UnknownCall)
    );
    let dtmf = Action::Dtmf(crate::protocol::Dtmf {
        digits: "12x".into(),
        conversation_id: None,
    });
    assert_eq!(
        phone.handle_action(dtmf).err().map(|e| e.code()),
        Some(ErrorCode::InvalidParams)
    );
    assert_eq!(phone.poll_command(), None, "nothing reached the line");
    let mut down = Phone::new(settings(Some("127.0.0.1")));
    assert!(matches!(
        down.handle_action(start_call("1002")),
        Err(PhoneError::LineDown {
            state: "registering",
            ..
        })
    ));
}

#[test]
fn hold_dtmf_and_quality_follow_the_line() {
    let mut phone = registered();
    let now = Instant::now();
    phone.handle_line_event(
        LineEvent::CallIncoming {
            conversation: "c1".into(),
            caller: "1002".into(),
            headers: Vec::new(),
        },
        now,
    );
    phone.handle_line_event(
        LineEvent::CallEstablished {
            conversation: "c1".into(),
        },
        now,
    );
    while phone.poll_event().is_some() {}
    phone
        .handle_action(Action::Hold(CallRef::default()))
        .expect("holds the active call");
    assert_eq!(
        phone.poll_command(),
        Some(LineCommand::Hold {
            conversation: "c1".into(),
            held: true
        })
    );
    assert_eq!(
        phone.snapshot().calls[0].state,
        "active",
        "held only once the far end agrees"
    );
    phone.handle_line_event(
        LineEvent::CallHold {
            conversation: "c1".into(),
            held: true,
            by_remote: false,
        },
        now,
    );
    assert!(
        matches!(phone.poll_event(), Some(Event::CallHoldChanged(e)) if e.held && e.by == "agent")
    );
    assert_eq!(phone.snapshot().calls[0].state, "held");
    // Holding a held call is not an error; unhold needs a held call.
    phone
        .handle_action(Action::Hold(CallRef::default()))
        .expect("idempotent");
    phone
        .handle_action(Action::Unhold(CallRef {
            conversation_id: Some("c1".into()),
        }))
        .expect("resumes");
    phone.handle_line_event(
        LineEvent::CallHold {
            conversation: "c1".into(),
            held: true,
            by_remote: true,
        },
        now,
    );
    assert!(
        matches!(phone.poll_event(), Some(Event::CallHoldChanged(e)) if e.held && e.by == "remote")
    );
    assert!(phone.snapshot().calls[0].remote_hold);
    phone.handle_line_event(
        LineEvent::DtmfReceived {
            conversation: "c1".into(),
            digit: '#',
        },
        now,
    );
    assert!(matches!(phone.poll_event(), Some(Event::DtmfReceived(e)) if e.digit == "#"));
    let stats = crate::media::session::MediaStats {
        codec: "PCMU",
        packets_sent: 250,
        round_trip_ms: Some(0.123_456),
        ..Default::default()
    };
    phone.handle_line_event(
        LineEvent::CallQuality {
            conversation: "c1".into(),
            stats,
        },
        now,
    );
    let quality = phone.snapshot().calls[0]
        .quality
        .clone()
        .expect("quality in the snapshot");
    assert_eq!(
        (
            quality.codec.as_str(),
            quality.packets_sent,
            quality.round_trip_ms
        ),
        ("PCMU", 250, Some(0.12))
    );
    assert_eq!(phone.poll_event(), None, "statistics are state, not events");
}

#[test]
fn auto_answer_answers_incoming_calls_without_a_page() {
    let mut phone = Phone::new(PhoneSettings {
        answering: always(),
        ..settings(Some("127.0.0.1"))
    });
    phone.handle_line_event(
        LineEvent::Registered {
            extension: "1001".into(),
        },
        Instant::now(),
    );
    phone.handle_line_event(
        LineEvent::CallIncoming {
            conversation: "c1".into(),
            caller: "1002".into(),
            headers: Vec::new(),
        },
        Instant::now(),
    );
    assert_eq!(
        phone.poll_command(),
        Some(LineCommand::Answer {
            conversation: "c1".into()
        })
    );
}

/// The seed's parameters, valid at the tests' wall clock (2026-11-22 09:00 UTC).
fn seed_params() -> serde_json::Value {
    serde_json::json!({
        "auth_key": "k", "server": "wss://webrtc.example.com:7443", "turn_port": 3478, "customer_id": 7,
        "user_id": 1001, "username": "1001", "password": "p", "expire_date": "2026-11-22 17:00:00"
    })
}

#[test]
fn provisioning_asks_for_a_line_with_its_settings_and_it_settings() {
    let mut phone = Phone::new(PhoneSettings {
        provisioning: crate::config::ProvisioningConfig {
            ca_file: Some("/etc/platform-ca.pem".into()),
            force_relay: true,
            ..Default::default()
        },
        ..settings(None)
    });
    let reply = phone
        .handle_action(Action::Provision(seed_params()))
        .expect("provisioned");
    assert_eq!(reply["extension"], "1001");
    assert_eq!(reply["expiresAt"], "2026-11-22T17:00:00Z");
    let Some(LineCommand::Provision(account)) = phone.poll_command() else {
        panic!("a Provision command")
    };
    assert_eq!(
        account.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/platform-ca.pem"))
    );
    assert!(account.force_relay);
    // Numbers now dial in the provisioned domain.
    phone.handle_line_event(
        LineEvent::Registered {
            extension: "1001".into(),
        },
        Instant::now(),
    );
    phone.handle_action(start_call("1002")).expect("dialled");
    assert!(
        matches!(phone.poll_command(), Some(LineCommand::Dial { target, .. }) if target.to_string() == "sip:1002@webrtc.example.com")
    );
}

#[test]
fn provisioning_is_refused_when_expired_during_a_call_or_turned_off() {
    let mut params = seed_params();
    params["expire_date"] = "2026-11-22 08:59:59".into();
    let expired = phone().handle_action(Action::Provision(params));
    assert!(
        matches!(expired, Err(PhoneError::InvalidProvisioning(ref m)) if m.contains("already past")),
        "{expired:?}"
    );

    let mut on_a_call = registered();
    on_a_call
        .handle_action(start_call("1002"))
        .expect("dialled");
    let busy = on_a_call.handle_action(Action::Provision(seed_params()));
    assert!(
        matches!(busy, Err(PhoneError::CallInProgress(_))),
        "{busy:?}"
    );

    let mut locked = Phone::new(PhoneSettings {
        may_provision: false,
        ..settings(None)
    });
    let refused = locked.handle_action(Action::Provision(seed_params()));
    assert!(
        matches!(refused, Err(PhoneError::Forbidden(ref m)) if m.contains("[provisioning] allowed")),
        "{refused:?}"
    );
    let refused = locked.handle_action(Action::Logout);
    assert!(
        matches!(refused, Err(PhoneError::Forbidden(_))),
        "logout obeys [provisioning] allowed too: {refused:?}"
    );
    assert_eq!(locked.poll_command(), None, "nothing reached the line");
}

/// Security review, finding 1 (High): a page provisioned an account on its own server, IT's
/// `[account] auto_answer` carried over, and the server's call was answered with no page action,
/// handing it the microphone. A provisioned account takes only `[provisioning]` settings.
#[test]
fn a_provisioned_account_does_not_inherit_it_auto_answer() {
    let mut phone = Phone::new(PhoneSettings {
        answering: always(),
        ..settings(Some("pbx.example.com"))
    });
    phone
        .handle_action(Action::Provision(seed_params()))
        .expect("provisioned");
    let Some(LineCommand::Provision(account)) = phone.poll_command() else {
        panic!("a Provision command")
    };
    assert_eq!(
        account.auto_answer,
        crate::config::AutoAnswer::Never,
        "the account does not auto-answer"
    );
    phone.handle_line_event(
        LineEvent::Registered {
            extension: "1001".into(),
        },
        Instant::now(),
    );
    phone.handle_line_event(
        LineEvent::CallIncoming {
            conversation: "c1".into(),
            caller: "attacker".into(),
            headers: Vec::new(),
        },
        Instant::now(),
    );
    assert_eq!(
        phone.poll_command(),
        None,
        "the call rings; nobody answered it"
    );

    // IT may choose auto-answer for provisioned lines, in [provisioning].
    let mut phone = Phone::new(PhoneSettings {
        provisioning: crate::config::ProvisioningConfig {
            auto_answer: crate::config::AutoAnswer::Always,
            ..Default::default()
        },
        ..settings(None)
    });
    phone
        .handle_action(Action::Provision(seed_params()))
        .expect("provisioned");
    assert!(
        matches!(phone.poll_command(), Some(LineCommand::Provision(a)) if a.auto_answer == crate::config::AutoAnswer::Always)
    );
}

#[test]
fn plain_ws_servers_are_refused_unless_it_allows_them() {
    let mut params = seed_params();
    params["server"] = "ws://evil.example.com:8080/ws".into();
    let refused = phone().handle_action(Action::Provision(params.clone()));
    assert!(
        matches!(refused, Err(PhoneError::InvalidProvisioning(ref m)) if m.contains("wss://") && m.contains("danger_allow_ws")),
        "{refused:?}"
    );
    let mut allowing = Phone::new(PhoneSettings {
        provisioning: crate::config::ProvisioningConfig {
            danger_allow_ws: true,
            ..Default::default()
        },
        ..settings(None)
    });
    allowing
        .handle_action(Action::Provision(params))
        .expect("IT allowed ws://");
}

#[test]
fn logout_ends_the_line_for_call_actions() {
    let mut phone = registered();
    phone.handle_action(Action::Logout).expect("logged out");
    assert_eq!(phone.poll_command(), Some(LineCommand::Logout));
    phone.handle_line_event(
        LineEvent::Unregistered {
            reason: Some("logout".into()),
        },
        Instant::now(),
    );
    let event = phone.poll_event().expect("registrationChanged");
    assert!(
        matches!(&event, Event::RegistrationChanged(r) if r.reason.as_deref() == Some("logout")),
        "{event:?}"
    );
    // A page that connects later learns why from the snapshot.
    assert_eq!(phone.snapshot().line.reason.as_deref(), Some("logout"));
    assert!(matches!(
        phone.handle_action(start_call("1002")),
        Err(PhoneError::NoLine { .. })
    ));
}

/// Issue 10, several calls: answering a second call holds the first; taking the first off hold
/// holds the second (a switch); placing a third asks every other call to hold — the line asks
/// nothing more of one held already (`a_switch_back_holds_the_call_whose_resume_is_unanswered`
/// is why it is asked).
#[test]
fn one_conversation_at_a_time() {
    let mut phone = registered();
    let now = Instant::now();
    let commands =
        |phone: &mut Phone| std::iter::from_fn(|| phone.poll_command()).collect::<Vec<_>>();
    let up = |phone: &mut Phone, id: &str| {
        ring(phone, id, now);
        phone
            .handle_action(Action::Answer(CallRef {
                conversation_id: Some(id.into()),
            }))
            .expect("answers");
    };
    up(&mut phone, "c1");
    assert_eq!(
        commands(&mut phone),
        [LineCommand::Answer {
            conversation: "c1".into()
        }],
        "nothing to hold yet"
    );
    phone.handle_line_event(
        LineEvent::CallEstablished {
            conversation: "c1".into(),
        },
        now,
    );
    up(&mut phone, "c2");
    assert_eq!(
        commands(&mut phone),
        [
            LineCommand::Hold {
                conversation: "c1".into(),
                held: true
            },
            LineCommand::Answer {
                conversation: "c2".into()
            }
        ]
    );
    phone.handle_line_event(
        LineEvent::CallEstablished {
            conversation: "c2".into(),
        },
        now,
    );
    phone.handle_line_event(
        LineEvent::CallHold {
            conversation: "c1".into(),
            held: true,
            by_remote: false,
        },
        now,
    );
    // Switch back to c1.
    phone
        .handle_action(Action::Unhold(CallRef {
            conversation_id: Some("c1".into()),
        }))
        .expect("unholds");
    assert_eq!(
        commands(&mut phone),
        [
            LineCommand::Hold {
                conversation: "c2".into(),
                held: true
            },
            LineCommand::Hold {
                conversation: "c1".into(),
                held: false
            }
        ]
    );
    phone.handle_line_event(
        LineEvent::CallHold {
            conversation: "c2".into(),
            held: true,
            by_remote: false,
        },
        now,
    );
    phone.handle_line_event(
        LineEvent::CallHold {
            conversation: "c1".into(),
            held: false,
            by_remote: false,
        },
        now,
    );
    // A third, placed by the agent: c1 (talking) and c2 (held already) are asked to hold.
    phone.handle_action(start_call("1003")).expect("dials");
    let placed = commands(&mut phone);
    assert_eq!(
        placed[..2],
        [
            LineCommand::Hold {
                conversation: "c1".into(),
                held: true
            },
            LineCommand::Hold {
                conversation: "c2".into(),
                held: true
            }
        ]
    );
    assert!(
        matches!(&placed[2..], [LineCommand::Dial { .. }]),
        "{placed:?}"
    );
    assert_eq!(
        phone.snapshot().calls.len(),
        3,
        "the snapshot lists every call"
    );
}

/// Auto-answer takes a second call the same way the agent would: the call they talk on is
/// held first.
#[test]
fn auto_answer_holds_the_call_the_agent_talks_on() {
    let mut phone = Phone::new(PhoneSettings {
        answering: always(),
        ..settings(Some("127.0.0.1"))
    });
    let now = Instant::now();
    ring(&mut phone, "c1", now);
    assert_eq!(
        phone.poll_command(),
        Some(LineCommand::Answer {
            conversation: "c1".into()
        })
    );
    phone.handle_line_event(
        LineEvent::CallEstablished {
            conversation: "c1".into(),
        },
        now,
    );
    ring(&mut phone, "c2", now);
    let commands: Vec<_> = std::iter::from_fn(|| phone.poll_command()).collect();
    assert_eq!(
        commands,
        [
            LineCommand::Hold {
                conversation: "c1".into(),
                held: true
            },
            LineCommand::Answer {
                conversation: "c2".into()
            }
        ]
    );
}

/// Two calls up: `a` (answered from 1002) and `b` (placed to 1003); every command and event so
/// far drained.
fn two_calls() -> (Phone, ConversationId, ConversationId) {
    let now = Instant::now();
    let mut phone = registered();
    ring(&mut phone, "a", now);
    phone.handle_line_event(
        LineEvent::CallEstablished {
            conversation: "a".into(),
        },
        now,
    );
    let b = phone
        .handle_action(start_call("1003"))
        .ok()
        .and_then(|v| v["conversationId"].as_str().map(ConversationId::from))
        .expect("placed");
    phone.handle_line_event(
        LineEvent::CallEstablished {
            conversation: b.clone(),
        },
        now,
    );
    while phone.poll_command().is_some() {}
    while phone.poll_event().is_some() {}
    (phone, "a".into(), b)
}

fn code(result: Result<Value, PhoneError>) -> Option<ErrorCode> {
    result.err().map(|e| e.code())
}

/// Issue 10: `connect_calls` refuses a call with itself, an unknown call, a call not up; and
/// asks the line to connect two calls that are up.
#[test]
fn connect_calls_checks_both_calls() {
    let (mut phone, a, b) = two_calls();
    let connect = |with: &str, from: &str| {
        Action::ConnectCalls(crate::protocol::ConnectCalls {
            conversation_id: from.into(),
            with_conversation_id: with.into(),
        })
    };
    assert_eq!(
        code(phone.handle_action(connect(a.as_str(), a.as_str()))),
        Some(ErrorCode::InvalidParams)
    );
    assert_eq!(
        code(phone.handle_action(connect("nope", a.as_str()))),
        Some(ErrorCode::UnknownCall)
    );
    ring(&mut phone, "ringing", Instant::now());
    assert_eq!(
        code(phone.handle_action(connect("ringing", a.as_str()))),
        Some(ErrorCode::UnknownCall),
        "a call that is not up"
    );
    assert_eq!(phone.poll_command(), None, "nothing was asked of the line");
    let reply = phone
        .handle_action(connect(b.as_str(), a.as_str()))
        .expect("connects");
    assert_eq!(reply["to"], "1003");
    assert_eq!(
        phone.poll_command(),
        Some(LineCommand::ConnectCalls {
            conversation: a.clone(),
            with: b.clone()
        })
    );
    assert_eq!(
        code(phone.handle_action(connect(b.as_str(), a.as_str()))),
        Some(ErrorCode::CallInProgress),
        "one transfer at a time"
    );
}

/// Issue 10: `shotgun_call` checks every number before dialling any; the answering leg names
/// the call in `callAccepted`.
#[test]
fn shotgun_checks_every_number_and_names_the_winner() {
    let mut phone = registered();
    let shotgun = |numbers: &[&str]| {
        Action::ShotgunCall(crate::protocol::ShotgunCall {
            dial_to: numbers.iter().map(|n| (*n).to_owned()).collect(),
            partner_id: None,
        })
    };
    assert_eq!(
        code(phone.handle_action(shotgun(&[]))),
        Some(ErrorCode::InvalidParams)
    );
    assert_eq!(
        code(phone.handle_action(shotgun(&["1", "2", "3", "4", "5", "6"]))),
        Some(ErrorCode::InvalidParams)
    );
    assert_eq!(
        code(phone.handle_action(shotgun(&["1002", "x\ny"]))),
        Some(ErrorCode::InvalidNumber)
    );
    assert_eq!(
        code(phone.handle_action(shotgun(&["1002", "1002"]))),
        Some(ErrorCode::InvalidParams)
    );
    assert_eq!(phone.poll_command(), None);
    assert!(phone.snapshot().calls.is_empty());

    let id = phone
        .handle_action(shotgun(&["1002", "1003"]))
        .ok()
        .and_then(|v| v["conversationId"].as_str().map(ConversationId::from))
        .expect("dialled");
    assert!(
        matches!(phone.poll_command(), Some(LineCommand::DialAll { targets, .. }) if targets.len() == 2)
    );
    let now = Instant::now();
    phone.handle_line_event(
        LineEvent::CallAnsweredBy {
            conversation: id.clone(),
            leg: 1,
        },
        now,
    );
    phone.handle_line_event(
        LineEvent::CallEstablished {
            conversation: id.clone(),
        },
        now,
    );
    let accepted = std::iter::from_fn(|| phone.poll_event())
        .find_map(|event| match event {
            Event::CallAccepted(accepted) => Some(accepted),
            _ => None,
        })
        .expect("callAccepted");
    assert_eq!(accepted.dialled_to.as_deref(), Some("1003"));
    assert_eq!(accepted.caller_ani, "1003");
}

/// The agent switches from `b` to `a` and straight back, before either far end answers: `b`,
/// whose resume is still unanswered (the phone still has it held), is asked to hold again, or
/// it would come back beside `a` once its resume is answered — two callers hearing the agent.
#[test]
fn a_switch_back_holds_the_call_whose_resume_is_unanswered() {
    let (mut phone, a, b) = two_calls();
    let now = Instant::now();
    // `a` held (placing `b` asked it, and the far end has answered).
    phone.handle_line_event(
        LineEvent::CallHold {
            conversation: a.clone(),
            held: true,
            by_remote: false,
        },
        now,
    );
    let unhold = |id: &ConversationId| {
        Action::Unhold(CallRef {
            conversation_id: Some(id.to_string()),
        })
    };
    phone.handle_action(unhold(&a)).expect("switches to a");
    while phone.poll_command().is_some() {}
    // Back to `b` at once: `a`'s resume is unanswered, `a` still held as far as the phone knows.
    phone.handle_action(unhold(&b)).expect("switches back to b");
    let commands: Vec<LineCommand> = std::iter::from_fn(|| phone.poll_command()).collect();
    assert!(
        commands.contains(&LineCommand::Hold {
            conversation: a.clone(),
            held: true
        }),
        "{commands:?}"
    );
}

/// A conference takes its calls off hold, one whose hold the far end has not answered yet
/// included: placing `b` asked the line to hold `a`, and no answer has come. Asked only of the
/// calls held by then, `a` would be held once the answer came, and sit in the conference
/// unheard (the line keeps the resume until the hold's re-INVITE is over).
#[test]
fn a_conference_resumes_a_call_whose_hold_is_unanswered() {
    let (mut phone, a, b) = two_calls();
    assert!(
        phone.snapshot().calls.iter().all(|c| c.state == "active"),
        "the hold of `a` is not answered yet"
    );
    phone
        .handle_action(Action::Conference(crate::protocol::ConferenceRequest {
            conversation_ids: vec![a.to_string(), b.to_string()],
        }))
        .expect("asked");
    let commands: Vec<LineCommand> = std::iter::from_fn(|| phone.poll_command()).collect();
    assert!(
        commands.contains(&LineCommand::Hold {
            conversation: a.clone(),
            held: false
        }),
        "{commands:?}"
    );
}

/// Issue 10: a conference needs 2 to 4 distinct connected calls; `conferenceChanged` follows the
/// line's report of who is mixed, the snapshot marks its calls, `split` asks for the rest and a
/// hold, and an empty report ends it.
#[test]
fn conference_follows_what_the_line_mixes() {
    let (mut phone, a, b) = two_calls();
    let conference = |ids: &[&str]| {
        Action::Conference(crate::protocol::ConferenceRequest {
            conversation_ids: ids.iter().map(|i| (*i).to_owned()).collect(),
        })
    };
    let split = |id: &str| {
        Action::Split(crate::protocol::Split {
            conversation_id: id.into(),
        })
    };
    assert_eq!(
        code(phone.handle_action(conference(&[a.as_str()]))),
        Some(ErrorCode::InvalidParams)
    );
    assert_eq!(
        code(phone.handle_action(conference(&[a.as_str(), a.as_str()]))),
        Some(ErrorCode::InvalidParams)
    );
    assert_eq!(
        code(phone.handle_action(conference(&[a.as_str(), "nope"]))),
        Some(ErrorCode::UnknownCall)
    );
    assert_eq!(
        code(phone.handle_action(split(a.as_str()))),
        Some(ErrorCode::InvalidParams),
        "no conference"
    );
    assert_eq!(phone.poll_command(), None);

    let reply = phone
        .handle_action(conference(&[a.as_str(), b.as_str()]))
        .expect("asked");
    let id = reply["conferenceId"].as_str().expect("an id").to_owned();
    let commands: Vec<LineCommand> = std::iter::from_fn(|| phone.poll_command()).collect();
    assert!(
        commands.contains(&LineCommand::Conference {
            conversations: vec![a.clone(), b.clone()]
        }),
        "{commands:?}"
    );
    let now = Instant::now();
    phone.handle_line_event(
        LineEvent::ConferenceMixed {
            conversations: vec![a.clone(), b.clone()],
        },
        now,
    );
    let changed: Vec<Event> = std::iter::from_fn(|| phone.poll_event()).collect();
    assert_eq!(
        changed,
        [Event::ConferenceChanged(ConferenceChanged {
            conference_id: id.clone(),
            conversation_ids: vec![a.to_string(), b.to_string()],
        })]
    );
    assert!(
        phone
            .snapshot()
            .calls
            .iter()
            .all(|c| c.conference_id.as_deref() == Some(id.as_str()))
    );

    phone.handle_action(split(b.as_str())).expect("split");
    let commands: Vec<LineCommand> = std::iter::from_fn(|| phone.poll_command()).collect();
    assert_eq!(
        commands,
        [
            LineCommand::Conference {
                conversations: Vec::new()
            },
            LineCommand::Hold {
                conversation: b.clone(),
                held: true
            }
        ],
        "one call left: no conference"
    );
    phone.handle_line_event(
        LineEvent::ConferenceMixed {
            conversations: Vec::new(),
        },
        now,
    );
    assert_eq!(
        phone.poll_event(),
        Some(Event::ConferenceChanged(ConferenceChanged {
            conference_id: id,
            conversation_ids: Vec::new()
        }))
    );
    assert!(
        phone
            .snapshot()
            .calls
            .iter()
            .all(|c| c.conference_id.is_none())
    );
}

/// Issue 11 (first part): what the agent submits during a call — the latest of it — is the
/// call's outcome in its `callEnded`; a call with nothing submitted ends with nulls.
#[test]
fn call_ended_carries_the_outcome_submitted_during_the_call() {
    let (mut phone, a, b) = two_calls();
    for (disposition, notes) in [("Call back", "first thought"), ("Sale", "two seats")] {
        phone
            .handle_action(Action::SubmitNotes(NotesSubmission {
                conversation_id: a.to_string(),
                disposition: disposition.into(),
                notes: notes.into(),
                schedule_at: None,
            }))
            .expect("notes taken");
    }
    while phone.poll_event().is_some() {}
    let now = Instant::now();
    for id in [&a, &b] {
        phone.handle_line_event(
            LineEvent::CallEnded {
                conversation: id.clone(),
                reason: EndReason::Remote,
            },
            now,
        );
    }
    let ended: Vec<(String, Option<String>, Option<String>)> =
        std::iter::from_fn(|| phone.poll_event())
            .filter_map(|event| match event {
                Event::CallEnded(ended) => {
                    Some((ended.conversation_id, ended.disposition, ended.notes))
                }
                _ => None,
            })
            .collect();
    assert_eq!(
        ended,
        [
            (a.to_string(), Some("Sale".into()), Some("two seats".into())),
            (b.to_string(), None, None),
        ]
    );
}

/// Issue 11: once the page set the dispositions, `submit_notes` takes only those codes, unless
/// IT allows free text; with no list any disposition is taken.
#[test]
fn dispositions_outside_the_list_are_refused_unless_it_allows_free_text() {
    let submit = |phone: &mut Phone, id: &ConversationId, disposition: &str| {
        phone.handle_action(Action::SubmitNotes(NotesSubmission {
            conversation_id: id.to_string(),
            disposition: disposition.into(),
            notes: String::new(),
            schedule_at: None,
        }))
    };
    let (mut phone, a, _) = two_calls();
    assert!(submit(&mut phone, &a, "Anything").is_ok(), "no list yet");
    phone
        .handle_action(Action::Disposition(vec!["Sale".into(), "No answer".into()]))
        .expect("list set");
    assert_eq!(
        code(submit(&mut phone, &a, "Anything")),
        Some(ErrorCode::InvalidParams)
    );
    assert!(submit(&mut phone, &a, "Sale").is_ok());

    let mut open = Phone::new(PhoneSettings {
        free_text_dispositions: true,
        ..settings(Some("127.0.0.1"))
    });
    open.handle_line_event(
        LineEvent::Registered {
            extension: "1001".into(),
        },
        Instant::now(),
    );
    ring(&mut open, "c", Instant::now());
    open.handle_action(Action::Disposition(vec!["Sale".into()]))
        .expect("list set");
    assert!(submit(&mut open, &"c".into(), "Customer asked for a brochure").is_ok());
}

/// A conference the line could not make (a call's media not running) is reported to the page
/// as one that did not start: `conferenceChanged` with the id it was given and no calls.
#[test]
fn a_refused_conference_is_reported() {
    let (mut phone, a, b) = two_calls();
    let reply = phone
        .handle_action(Action::Conference(crate::protocol::ConferenceRequest {
            conversation_ids: vec![a.to_string(), b.to_string()],
        }))
        .expect("asked");
    let id = reply["conferenceId"].as_str().expect("an id").to_owned();
    phone.handle_line_event(
        LineEvent::ConferenceMixed {
            conversations: Vec::new(),
        },
        Instant::now(),
    );
    assert_eq!(
        phone.poll_event(),
        Some(Event::ConferenceChanged(ConferenceChanged {
            conference_id: id,
            conversation_ids: Vec::new()
        }))
    );
    assert!(
        phone
            .snapshot()
            .calls
            .iter()
            .all(|c| c.conference_id.is_none())
    );
}

/// An answered incoming call `c1` on a registered phone, with commands and events drained.
fn answered(phone: &mut Phone) {
    let now = Instant::now();
    ring(phone, "c1", now);
    phone.handle_line_event(
        LineEvent::CallEstablished {
            conversation: "c1".into(),
        },
        now,
    );
    while phone.poll_command().is_some() {}
    while phone.poll_event().is_some() {}
}

fn recording(phone: &mut Phone, id: &str, state: RecordingState) {
    phone.handle_line_event(
        LineEvent::Recording {
            conversation: "c1".into(),
            id: id.into(),
            state,
            file: None,
            seconds: None,
            problem: None,
        },
        Instant::now(),
    );
}

#[test]
fn recording_follows_the_line_and_its_limits() {
    let mut phone = registered();
    assert_eq!(
        phone
            .handle_action(Action::StartRecording(CallRef::default()))
            .map_err(|e| e.code()),
        Err(ErrorCode::UnknownCall),
        "no call to record"
    );
    answered(&mut phone);
    let reply = phone
        .handle_action(Action::StartRecording(CallRef::default()))
        .expect("started");
    let id = reply["recordingId"].as_str().expect("id").to_owned();
    assert!(matches!(
        phone.poll_command(),
        Some(LineCommand::Record {
            op: RecordOp::Start { .. },
            ..
        })
    ));
    assert_eq!(
        phone
            .handle_action(Action::StartRecording(CallRef::default()))
            .map_err(|e| e.code()),
        Err(ErrorCode::CallInProgress)
    );
    assert_eq!(
        phone
            .handle_action(Action::ResumeRecording(CallRef::default()))
            .map_err(|e| e.code()),
        Err(ErrorCode::UnknownCall),
        "not paused"
    );
    phone
        .handle_action(Action::StopRecording(CallRef::default()))
        .expect("stopped");
    // A pause the line reports after the stop does not bring it back.
    recording(&mut phone, &id, RecordingState::Paused);
    assert_eq!(phone.snapshot().calls[0].recording, None);
    recording(&mut phone, &id, RecordingState::Stopped);
    let event = std::iter::from_fn(|| phone.poll_event())
        .filter_map(|e| match e {
            Event::RecordingChanged(r) => Some(r.state),
            _ => None,
        })
        .last();
    assert_eq!(event.as_deref(), Some("stopped"));
    // Ten recordings a call, then no more.
    for _ in 1..MAX_RECORDINGS_PER_CALL {
        phone
            .handle_action(Action::StartRecording(CallRef::default()))
            .expect("started");
        phone
            .handle_action(Action::StopRecording(CallRef::default()))
            .expect("stopped");
    }
    assert_eq!(
        phone
            .handle_action(Action::StartRecording(CallRef::default()))
            .map_err(|e| e.code()),
        Err(ErrorCode::InvalidParams)
    );
}

#[test]
fn it_may_leave_recording_to_auto_alone() {
    let mut phone = Phone::new(PhoneSettings {
        auto_record: true,
        pages_may_record: false,
        ..settings(Some("127.0.0.1"))
    });
    phone.handle_line_event(
        LineEvent::Registered {
            extension: "1001".into(),
        },
        Instant::now(),
    );
    ring(&mut phone, "c1", Instant::now());
    phone.handle_line_event(
        LineEvent::CallEstablished {
            conversation: "c1".into(),
        },
        Instant::now(),
    );
    let accepted = std::iter::from_fn(|| phone.poll_event()).find_map(|e| match e {
        Event::CallAccepted(a) => Some(a),
        _ => None,
    });
    assert_eq!(accepted.map(|a| a.recording_status), Some("ON".into()));
    assert!(
        std::iter::from_fn(|| phone.poll_command()).any(|c| matches!(
            c,
            LineCommand::Record {
                op: RecordOp::Start { .. },
                ..
            }
        ))
    );
    assert_eq!(
        phone
            .handle_action(Action::StopRecording(CallRef::default()))
            .map_err(|e| e.code()),
        Err(ErrorCode::Forbidden)
    );
}

/// The line reports the end of a call the phone declined (`Declined`: our own final answer).
fn declined(phone: &mut Phone, id: &str, now: Instant) -> Event {
    phone.handle_line_event(
        LineEvent::CallEnded {
            conversation: id.into(),
            reason: EndReason::Declined,
        },
        now,
    );
    phone.poll_event().expect("an end event")
}

#[test]
fn do_not_disturb_declines_with_486_and_pages_see_why() {
    let mut phone = registered();
    phone
        .handle_action(Action::UpdatePresence(UpdatePresence {
            softphone_id: "busy".into(),
        }))
        .expect("busy");
    assert!(
        matches!(phone.poll_event(), Some(Event::StatusChanged(s)) if !s.accept_calls && !s.ready)
    );
    let now = Instant::now();
    ring(&mut phone, "c1", now);
    assert!(matches!(phone.poll_event(), Some(Event::IncomingCall(_))));
    assert_eq!(
        phone.poll_command(),
        Some(LineCommand::Reject {
            conversation: "c1".into(),
            status: 486
        })
    );
    let Event::CallRejected(rejected) = declined(&mut phone, "c1", now) else {
        panic!("callRejected")
    };
    assert_eq!(
        (rejected.reason.as_str(), rejected.cause),
        ("passive", crate::protocol::EndCause::Dnd)
    );
}

#[test]
fn an_unanswered_call_gives_up_at_the_ring_timeout_and_a_mark_answers_after_its_delay() {
    let mut phone = Phone::new(PhoneSettings {
        answering: super::Answering {
            auto: crate::config::AutoAnswer::Bridged,
            header: None,
            ring_timeout: Some(Duration::from_secs(30)),
        },
        ..settings(Some("127.0.0.1"))
    });
    let start = Instant::now();
    ring(&mut phone, "plain", start);
    phone.handle_line_event(
        LineEvent::CallIncoming {
            conversation: "marked".into(),
            caller: "dialler".into(),
            headers: vec![("Call-Info".into(), "<sip:127.0.0.1>;answer-after=2".into())],
        },
        start,
    );
    assert_eq!(phone.poll_command(), None, "both ring for now");
    assert_eq!(phone.next_wake(), Some(start + Duration::from_secs(2)));

    phone.handle_timeout(start + Duration::from_secs(2));
    assert_eq!(
        phone.poll_command(),
        Some(LineCommand::Answer {
            conversation: "marked".into()
        })
    );
    assert_eq!(phone.next_wake(), Some(start + Duration::from_secs(30)));
    // Nothing is due before its time.
    phone.handle_timeout(start + Duration::from_secs(29));
    assert_eq!(phone.poll_command(), None);
    phone.handle_timeout(start + Duration::from_secs(30));
    assert_eq!(
        phone.poll_command(),
        Some(LineCommand::Reject {
            conversation: "plain".into(),
            status: 480
        })
    );
    while phone.poll_event().is_some() {}
    let Event::CallRejected(rejected) = declined(&mut phone, "plain", start) else {
        panic!("callRejected")
    };
    assert_eq!(
        (rejected.reason.as_str(), rejected.cause),
        ("passive", crate::protocol::EndCause::NoAnswer)
    );
    assert_eq!(phone.next_wake(), None);
}

#[test]
fn a_call_the_agent_answered_first_is_left_alone_at_its_deadline() {
    let mut phone = Phone::new(PhoneSettings {
        answering: super::Answering {
            ring_timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        },
        ..settings(Some("127.0.0.1"))
    });
    let start = Instant::now();
    phone.handle_line_event(
        LineEvent::Registered {
            extension: "1001".into(),
        },
        start,
    );
    ring(&mut phone, "c1", start);
    phone
        .handle_action(Action::Answer(CallRef {
            conversation_id: Some("c1".into()),
        }))
        .expect("answers");
    phone.poll_command();
    phone.handle_line_event(
        LineEvent::CallEstablished {
            conversation: "c1".into(),
        },
        start,
    );
    phone.handle_timeout(start + Duration::from_secs(5));
    assert_eq!(
        phone.poll_command(),
        None,
        "an answered call is not declined"
    );
}

#[test]
fn the_blacklist_stops_every_dialling_path_and_it_numbers_stay() {
    let mut phone = Phone::new(PhoneSettings {
        machine_blacklist: vec!["+44 20 7946 0958".into()],
        ..settings(Some("127.0.0.1"))
    });
    assert!(
        matches!(phone.poll_command(), Some(LineCommand::Blacklist(list)) if list.blocks("442079460958")),
        "the line gets IT's list at start"
    );
    phone.handle_line_event(
        LineEvent::Registered {
            extension: "1001".into(),
        },
        Instant::now(),
    );
    let numbers = |list: &[&str]| crate::protocol::BlacklistNumbers {
        number: None,
        numbers: list.iter().map(|n| (*n).to_owned()).collect(),
    };
    // One bad number changes nothing.
    let err = phone
        .handle_action(Action::BlacklistAdd(numbers(&["555-0100", "call me"])))
        .expect_err("bad number");
    assert_eq!(err.code(), ErrorCode::InvalidNumber);
    assert!(err.to_string().contains("`numbers[1]`"), "{err}");
    assert_eq!(phone.agent_blacklist(), Vec::<String>::new());
    let added = phone
        .handle_action(Action::BlacklistAdd(numbers(&[
            "555-0100",
            "+1 555 0101",
            "5550100",
        ])))
        .expect("added");
    assert_eq!(
        added,
        json!({"added": ["5550100", "+15550101"], "alreadyListed": ["5550100"]})
    );
    assert!(
        matches!(phone.poll_command(), Some(LineCommand::Blacklist(l)) if l.blocks("15550101"))
    );

    let refused = |phone: &mut Phone, action: Action| {
        phone.handle_action(action).expect_err("blacklisted").code()
    };
    assert_eq!(
        refused(&mut phone, start_call("555 0100")),
        ErrorCode::Blacklisted
    );
    assert_eq!(
        refused(
            &mut phone,
            Action::Call(PortholeCall {
                destination: "0015550101".into(),
                ..Default::default()
            })
        ),
        ErrorCode::Blacklisted
    );
    assert_eq!(
        refused(
            &mut phone,
            Action::ShotgunCall(crate::protocol::ShotgunCall {
                dial_to: vec!["1002".into(), "+442079460958".into()],
                partner_id: None,
            })
        ),
        ErrorCode::Blacklisted
    );
    assert_eq!(phone.poll_command(), None, "no INVITE for any of them");

    // IT's numbers are not the agent's to remove, and one of them stops the whole removal.
    let err = phone
        .handle_action(Action::BlacklistRemove(numbers(&[
            "5550100",
            "+442079460958",
        ])))
        .expect_err("IT's");
    assert_eq!(err.code(), ErrorCode::Forbidden);
    assert_eq!(phone.agent_blacklist(), ["+15550101", "5550100"]);
    let removed = phone
        .handle_action(Action::BlacklistRemove(crate::protocol::BlacklistNumbers {
            number: Some("555.0100".into()),
            numbers: vec!["5559999".into()],
        }))
        .expect("removed");
    assert_eq!(
        removed,
        json!({"removed": ["5550100"], "notListed": ["5559999"]})
    );
    assert_eq!(
        phone.handle_action(Action::BlacklistList).expect("list"),
        json!({"numbers": ["+15550101"], "machineCount": 1})
    );
}

#[test]
fn going_do_not_disturb_during_an_answer_delay_declines_instead() {
    let mut phone = Phone::new(PhoneSettings {
        answering: super::Answering {
            auto: crate::config::AutoAnswer::Bridged,
            ..Default::default()
        },
        ..settings(Some("127.0.0.1"))
    });
    let start = Instant::now();
    phone.handle_line_event(
        LineEvent::CallIncoming {
            conversation: "marked".into(),
            caller: "dialler".into(),
            headers: vec![("Answer-Mode".into(), "Auto".into())],
        },
        start,
    );
    phone.handle_line_event(
        LineEvent::CallIncoming {
            conversation: "later".into(),
            caller: "dialler".into(),
            headers: vec![("Call-Info".into(), "<sip:pbx>;answer-after=5".into())],
        },
        start,
    );
    assert_eq!(
        phone.poll_command(),
        Some(LineCommand::Answer {
            conversation: "marked".into()
        })
    );
    phone
        .handle_action(Action::UpdatePresence(UpdatePresence {
            softphone_id: "busy".into(),
        }))
        .expect("busy");
    phone.handle_timeout(start + Duration::from_secs(5));
    assert_eq!(
        phone.poll_command(),
        Some(LineCommand::Reject {
            conversation: "later".into(),
            status: 486
        })
    );
    // A call that ended leaves no deadline behind.
    phone
        .handle_action(Action::UpdatePresence(UpdatePresence {
            softphone_id: "available".into(),
        }))
        .expect("available");
    phone.handle_line_event(
        LineEvent::CallIncoming {
            conversation: "gone".into(),
            caller: "dialler".into(),
            headers: vec![("Call-Info".into(), "<sip:pbx>;answer-after=9".into())],
        },
        start,
    );
    assert_eq!(phone.next_wake(), Some(start + Duration::from_secs(9)));
    phone.handle_line_event(
        LineEvent::CallEnded {
            conversation: "gone".into(),
            reason: EndReason::Cancelled,
        },
        start,
    );
    assert_eq!(phone.next_wake(), None);
}

#[test]
fn schedule_keeps_a_callback_until_it_is_due_and_survives_a_restart() {
    let mut phone = registered();
    let now = Instant::now();
    ring(&mut phone, "c1", now);
    phone.handle_line_event(
        LineEvent::CallEnded {
            conversation: "c1".into(),
            reason: EndReason::Cancelled,
        },
        now,
    );
    while phone.poll_event().is_some() {}
    let schedule = |at: &str| {
        Action::SubmitNotes(NotesSubmission {
            conversation_id: "c1".into(),
            disposition: "SCHEDULE".into(),
            notes: String::new(),
            schedule_at: Some(at.into()),
        })
    };
    // The test's wall clock says 2026-11-22 09:00 UTC.
    assert_eq!(
        phone
            .handle_action(schedule("2026-11-22T08:59:59Z"))
            .map_err(|e| e.code()),
        Err(ErrorCode::InvalidParams),
        "in the past"
    );
    assert_eq!(phone.take_changed_callbacks(), None, "nothing changed");
    let reply = phone
        .handle_action(schedule("2026-11-22T11:00:00+01:00"))
        .expect("scheduled");
    assert_eq!(reply, json!({"scheduleAt": "2026-11-22T10:00:00Z"}));
    assert!(matches!(
        phone.poll_event(),
        Some(Event::CallNotesSubmitted(n)) if n.schedule_at.as_deref() == Some("2026-11-22T10:00:00Z")
    ));
    let kept = phone.take_changed_callbacks().expect("to store");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].number, "1002");

    // A restart: the stored callback comes back and fires when due, once.
    let mut phone = Phone::new(PhoneSettings {
        saved: SavedState {
            callbacks: Some(kept),
            ..SavedState::default()
        },
        ..settings(Some("127.0.0.1"))
    });
    let ten = time::macros::datetime!(2026-11-22 10:00 UTC);
    assert_eq!(phone.next_callback_at(), Some(ten));
    phone.fire_due_callbacks(ten - time::Duration::seconds(1));
    assert_eq!(phone.poll_event(), None);
    phone.fire_due_callbacks(ten);
    assert!(matches!(
        phone.poll_event(),
        Some(Event::CallbackDue(c)) if c.conversation_id == "c1" && c.at == "2026-11-22T10:00:00Z"
    ));
    assert_eq!(phone.take_changed_callbacks(), Some(Vec::new()));
    phone.fire_due_callbacks(ten + time::Duration::hours(1));
    assert_eq!(phone.poll_event(), None, "once");
}

#[test]
fn a_caller_id_goes_out_only_when_it_allows_it_and_a_campaign_only_when_clean() {
    let mut phone = Phone::new(PhoneSettings {
        dial_headers: DialHeaders {
            caller_ids: vec!["+1 555 0100".into(), "+1666*".into()],
            ..Default::default()
        },
        ..settings(Some("pbx.example.com"))
    });
    phone.handle_line_event(
        LineEvent::Registered {
            extension: "1001".into(),
        },
        Instant::now(),
    );
    let porthole = |callerid: &str, campaign: &str| {
        Action::Call(PortholeCall {
            destination: "1002".into(),
            callerid: Some(callerid.into()),
            outqueue: Some(campaign.into()),
            agent: Some("agent7".into()),
            tech: Some("SIP".into()),
            ..Default::default()
        })
    };
    for (callerid, campaign, says) in [
        ("+15550199", "Sale->", "not a caller ID IT allows"),
        ("five", "Sale->", "not a phone number"),
        ("+15550100", "Sale\r\nX-Evil: 1", "`campaign`"),
        ("+15550100", &"x".repeat(65), "`campaign`"),
    ] {
        let err = phone
            .handle_action(porthole(callerid, campaign))
            .expect_err("refused");
        assert_eq!(err.code(), ErrorCode::InvalidParams);
        assert!(err.to_string().contains(says), "{err}");
    }
    assert_eq!(phone.poll_command(), None, "nothing dialled");
    phone
        .handle_action(porthole("+1 (666) 000-1234", "Sale->"))
        .expect("allowed");
    assert!(matches!(
        phone.poll_command(),
        Some(LineCommand::Dial { headers, .. }) if headers == vec![
            ("P-Preferred-Identity".to_owned(), "<sip:+16660001234@pbx.example.com>".to_owned()),
            ("X-Campaign".to_owned(), "Sale->".to_owned()),
        ]
    ));
    // Without IT's list, no page chooses a caller ID.
    let mut phone = registered();
    let mut call = start_call("1002");
    if let Action::StartCall(c) = &mut call {
        c.dial_from = Some("+15550100".into());
    }
    let err = phone.handle_action(call).expect_err("not allowed");
    assert!(err.to_string().contains("[dialling] caller_ids"), "{err}");
}

#[test]
fn the_dialpad_dials_what_its_patterns_allow_and_a_partner_may_narrow_them() {
    let mut phone = Phone::new(PhoneSettings {
        dial_rules: DialRules {
            patterns: vec!["1???".into(), "+1*".into(), "+44*".into()],
            partners: [("acme".to_owned(), vec!["+44*".to_owned()])].into(),
        },
        ..settings(Some("127.0.0.1"))
    });
    phone.handle_line_event(
        LineEvent::Registered {
            extension: "1001".into(),
        },
        Instant::now(),
    );
    phone
        .handle_action(start_call("1002"))
        .expect("an extension");
    phone
        .handle_action(start_call("+1 888 397 3342"))
        .expect("North America");
    let err = phone
        .handle_action(start_call("+33 1 23 45 67 89"))
        .expect_err("not for this phone");
    assert_eq!(err.code(), ErrorCode::InvalidNumber);
    assert!(err.to_string().contains("[dialling] patterns"), "{err}");
    let err = phone
        .handle_action(start_call("sip:1002@premium-gateway.example.com"))
        .expect_err("another server");
    assert!(err.to_string().contains("another server"), "{err}");
    // The call's own partner counts, and narrows.
    let mut call = start_call("1002");
    if let Action::StartCall(c) = &mut call {
        c.partner_id = Some("acme".into());
    }
    let err = phone.handle_action(call).expect_err("not acme's");
    assert!(err.to_string().contains("partner acme"), "{err}");
    phone
        .handle_action(Action::PartnerConfig(crate::protocol::PartnerConfig {
            partner_id: "acme".into(),
            business_segment_id: None,
            channel_origin_id: None,
        }))
        .expect("partner");
    phone
        .handle_action(start_call("+44 20 7946 0958"))
        .expect("the partner's");
    let err = phone
        .handle_action(Action::ShotgunCall(crate::protocol::ShotgunCall {
            dial_to: vec!["+442079460958".into(), "1002".into()],
            partner_id: None,
        }))
        .expect_err("one number outside the partner's patterns dials none");
    assert!(err.to_string().contains("partner acme"), "{err}");
}

#[test]
fn another_disposition_calls_a_callback_off_and_a_dtmf_flood_is_cut() {
    let mut phone = registered();
    let now = Instant::now();
    ring(&mut phone, "c1", now);
    let notes = |disposition: &str, at: Option<&str>| {
        Action::SubmitNotes(NotesSubmission {
            conversation_id: "c1".into(),
            disposition: disposition.into(),
            notes: String::new(),
            schedule_at: at.map(str::to_owned),
        })
    };
    phone
        .handle_action(notes("SCHEDULE", Some("2026-11-22T10:00:00Z")))
        .expect("scheduled");
    assert_eq!(phone.take_changed_callbacks().map(|c| c.len()), Some(1));
    phone
        .handle_action(notes("RESPOOL", None))
        .expect("respool");
    assert_eq!(
        phone.take_changed_callbacks(),
        Some(Vec::new()),
        "called off"
    );
    assert_eq!(phone.next_callback_at(), None);

    while phone.poll_event().is_some() {}
    for _ in 0..100 {
        phone.handle_line_event(
            LineEvent::DtmfReceived {
                conversation: "c1".into(),
                digit: '5',
            },
            now,
        );
    }
    let heard = std::iter::from_fn(|| phone.poll_event()).count();
    assert_eq!(
        heard, MAX_DTMF_PER_SECOND as usize,
        "the rest of the second dropped"
    );
    phone.handle_line_event(
        LineEvent::DtmfReceived {
            conversation: "c1".into(),
            digit: '6',
        },
        now + Duration::from_secs(1),
    );
    assert!(
        matches!(phone.poll_event(), Some(Event::DtmfReceived(_))),
        "a new second"
    );
}
