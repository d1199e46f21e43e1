//! The blacklist (issue 12, seed `003_…`) on the real binary: every dialling path refuses a listed
//! number before any INVITE, IT's machine-wide numbers cannot be removed, bad input changes
//! nothing, and the agent's list survives a `kill -9`.

mod common;

use common::{CRM, Client, Daemon};
use serde_json::{Value, json};

const CONFIG: &str = "[demo]\nline = true\n[audio]\nbackend = \"file\"\n[dialling]\nblacklist = [\"+44 20 7946 0958\"]\n";

async fn refused(page: &mut Client, action: &str, params: Value) -> Value {
    let (reply, events) = page.request(action, params).await;
    assert!(
        events.iter().all(|e| e["event"] != "outboundCallInitiated"),
        "no call begins: {events:?}"
    );
    reply["error"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dialling_path_refuses_a_listed_number_and_the_list_survives_kill_9() {
    let daemon = Daemon::start(CONFIG);
    let mut page = daemon.connect(CRM).await;
    page.registered().await;

    // Bad input: one malformed number adds none; an empty request is refused.
    let error = refused(
        &mut page,
        "blacklist_add",
        json!({"numbers": ["555 0100", "555-CALL"]}),
    )
    .await;
    assert_eq!(error["code"], "invalid_number", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("numbers[1]")
    );
    let error = refused(&mut page, "blacklist_add", json!({})).await;
    assert_eq!(error["code"], "invalid_params", "{error}");
    let error = refused(&mut page, "blacklist_add", json!({"numbers": "5550100"})).await;
    assert_eq!(
        error["code"], "invalid_params",
        "a string is not a list: {error}"
    );
    let (list, _) = page.request("blacklist_list", Value::Null).await;
    assert_eq!(list["result"], json!({"numbers": [], "machineCount": 1}));

    let (added, _) = page
        .request(
            "blacklist_add",
            json!({"numbers": ["555 0100", "+1 (555) 010-1111"]}),
        )
        .await;
    assert_eq!(
        added["result"],
        json!({"added": ["5550100", "+15550101111"], "alreadyListed": []})
    );

    // Each path, each list.
    for (action, params) in [
        ("start_call", json!({"dialTo": "555-0100"})),
        (
            "start_call",
            json!({"dialTo": "sip:+15550101111@127.0.0.1"}),
        ),
        ("call", json!({"destination": "0015550101111"})),
        ("callWithPhone", json!({"destination": "+442079460958"})),
        ("shotgun_call", json!({"dialTo": ["echo", "5550100"]})),
    ] {
        let error = refused(&mut page, action, params.clone()).await;
        assert_eq!(error["code"], "blacklisted", "{action} {params}: {error}");
    }
    // A transfer of a call that is up, to a listed number.
    let id = page.start_call("echo").await;
    page.event("callAccepted").await;
    let error = refused(
        &mut page,
        "transfer",
        json!({"conversationId": id, "to": "+44 20 7946 0958"}),
    )
    .await;
    assert_eq!(error["code"], "blacklisted", "{error}");
    let (state, _) = page.request("get_state", Value::Null).await;
    assert_eq!(
        state["result"]["state"]["calls"][0]["state"], "active",
        "the call is untouched"
    );
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;

    // IT's number stays, and takes the whole removal with it.
    let error = refused(
        &mut page,
        "blacklist_remove",
        json!({"numbers": ["5550100", "00442079460958"]}),
    )
    .await;
    assert_eq!(error["code"], "forbidden", "{error}");

    // kill -9: the agent's list is back after the restart, and still enforced.
    let dir = daemon.stop();
    let daemon = Daemon::start_in(dir, CONFIG);
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let (list, _) = page.request("blacklist_list", Value::Null).await;
    assert_eq!(
        list["result"],
        json!({"numbers": ["+15550101111", "5550100"], "machineCount": 1})
    );
    let error = refused(&mut page, "start_call", json!({"dialTo": "5550100"})).await;
    assert_eq!(error["code"], "blacklisted", "{error}");
    let (removed, _) = page
        .request("blacklist_remove", json!({"number": "555.0100"}))
        .await;
    assert_eq!(
        removed["result"],
        json!({"removed": ["5550100"], "notListed": []})
    );
    let (reply, _) = page
        .request("start_call", json!({"dialTo": "5550100"}))
        .await;
    assert_eq!(reply["ok"], true, "dialled once removed: {reply}");
}
