//! Keeps the protocol module, `examples/messages/`, `docs/protocol.md` and the shim's TypeScript
//! declarations in step: a new action, event or error code fails here until all four know it.

use std::path::{Path, PathBuf};

use serde_json::Value;
use softphone_bridge::protocol::{Action, ErrorCode, Event, ServerMessage, parse_request};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn examples() -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("examples/messages"))
        .expect("examples/messages")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_parses_as_what_its_name_says() {
    let files = examples();
    assert!(files.len() >= Action::NAMES.len() + Event::NAMES.len() + ErrorCode::ALL.len());
    for (name, text) in files {
        let parts: Vec<&str> = name.trim_end_matches(".json").split('.').collect();
        match parts.as_slice() {
            ["request", action] => {
                let request = parse_request(&text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_eq!(request.action.name(), *action, "{name}");
            }
            ["event", event] => {
                let message: ServerMessage =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                let ServerMessage::Event(message) = message else {
                    panic!("{name} is not an event")
                };
                assert_eq!(message.event.name(), *event, "{name}");
                // Nothing in the example is lost or invented by the types.
                let original: Value = serde_json::from_str(&text).expect("json");
                assert_eq!(
                    serde_json::to_value(&message).expect("serializes"),
                    original,
                    "{name} round-trips"
                );
            }
            ["reply", "ok", _] | ["reply", "error", _] => {
                let message: ServerMessage =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(
                    matches!(message, ServerMessage::Reply(_)),
                    "{name} is a reply"
                );
                if let ["reply", "error", code] = parts.as_slice() {
                    let value: Value = serde_json::from_str(&text).expect("json");
                    assert_eq!(value["error"]["code"], *code, "{name}");
                }
            }
            _ => panic!(
                "{name}: name it request.ACTION, event.EVENT, reply.ok.X or reply.error.CODE"
            ),
        }
    }
}

#[test]
fn every_name_has_an_example_a_doc_entry_and_a_type() {
    let names: Vec<String> = examples().into_iter().map(|(n, _)| n).collect();
    let docs = std::fs::read_to_string(root().join("docs/protocol.md")).expect("docs/protocol.md");
    let dts = std::fs::read_to_string(root().join("js-shim/softphone-bridge.d.ts")).expect("d.ts");
    let check = |kind: &str, name: &str, dts_form: String| {
        assert!(
            names.contains(&format!("{kind}.{name}.json")),
            "examples/messages/{kind}.{name}.json missing"
        );
        assert!(
            docs.contains(&format!("`{name}`")),
            "docs/protocol.md does not document `{name}`"
        );
        assert!(
            dts.contains(&dts_form),
            "softphone-bridge.d.ts lacks {dts_form}"
        );
    };
    for action in Action::NAMES {
        check("request", action, format!("  {action}: "));
    }
    for event in Event::NAMES {
        check("event", event, format!("  {event}: "));
    }
    for code in ErrorCode::ALL {
        check("reply.error", code.as_str(), format!("'{}'", code.as_str()));
    }
    // Nothing in the d.ts that the daemon does not know.
    let block = |start: &str| -> Vec<String> {
        let body = dts
            .split(start)
            .nth(1)
            .and_then(|s| s.split('}').next())
            .unwrap_or_default();
        body.lines()
            .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.trim().to_owned()))
            .filter(|k| !k.starts_with("//"))
            .collect()
    };
    assert_eq!(block("interface ActionParams {"), Action::NAMES.to_vec());
    assert_eq!(block("interface EventPayloads {"), Event::NAMES.to_vec());
}
