//! The dialler dispositions uContact names (issue 12, seed `003_…`) on the real binary: SCHEDULE
//! keeps a callback that fires as `callbackDue` after a `kill -9` and restart, BLACKLIST lists the
//! call's number, and bad input (a SCHEDULE in the past, an unknown disposition) changes nothing.

mod common;

use std::time::Duration;

use common::{CRM, Client, Daemon};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

const CONFIG: &str = "[demo]\nline = true\n[audio]\nbackend = \"file\"\n";

/// A call to `number` on the demo line, ended; its conversation id.
async fn ended_call(page: &mut Client, number: &str) -> String {
    let id = page.start_call(number).await;
    loop {
        // The call may have been answered (even ended) before `start_call`'s reply came.
        let event = page.next_event().await;
        let name = event["event"].as_str().unwrap_or_default();
        if matches!(name, "callEnded" | "callRejected") {
            break;
        }
        if name == "callAccepted" {
            page.request("hangup", json!({"conversationId": id})).await;
        }
    }
    id
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("format")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_callback_fires_after_a_kill_9_and_blacklist_lists_the_number() {
    let daemon = Daemon::start(CONFIG);
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    page.request("disposition", json!(["Sale", "No sale"]))
        .await;
    let echo = ended_call(&mut page, "echo").await;

    // Bad input changes nothing.
    let now = time::OffsetDateTime::now_utc();
    for (params, code, says) in [
        (
            json!({"conversationId": echo, "disposition": "SCHEDULE", "scheduleAt": rfc3339(now - time::Duration::minutes(1))}),
            "invalid_params",
            "in the past",
        ),
        (
            json!({"conversationId": echo, "disposition": "SCHEDULE"}),
            "invalid_params",
            "needs `scheduleAt`",
        ),
        (
            json!({"conversationId": echo, "disposition": "SCHEDULE", "scheduleAt": "tomorrow"}),
            "invalid_params",
            "RFC 3339",
        ),
        (
            json!({"conversationId": echo, "disposition": "Sale", "scheduleAt": rfc3339(now + time::Duration::hours(1))}),
            "invalid_params",
            "only with the disposition SCHEDULE",
        ),
        (
            json!({"conversationId": echo, "disposition": "Maybe later"}),
            "invalid_params",
            "not one of the dispositions",
        ),
        (
            json!({"conversationId": echo, "disposition": "BLACKLIST"}),
            "invalid_number",
            "cannot be blacklisted",
        ),
    ] {
        let (reply, events) = page.request("submit_notes", params.clone()).await;
        assert_eq!(reply["error"]["code"], code, "{params} → {reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{params} → {message}");
        assert!(events.is_empty(), "nothing was submitted: {events:?}");
    }
    let (list, _) = page.request("blacklist_list", Value::Null).await;
    assert_eq!(list["result"]["numbers"], json!([]), "nothing was listed");

    // SCHEDULE in 5 s; the daemon is killed before it is due.
    let due = now + time::Duration::seconds(5);
    let (reply, events) = page
        .request(
            "submit_notes",
            json!({"conversationId": echo, "disposition": "SCHEDULE", "notes": "after lunch", "scheduleAt": rfc3339(due)}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let submitted = events
        .iter()
        .find(|e| e["event"] == "callNotesSubmitted")
        .expect("callNotesSubmitted");
    assert_eq!(
        submitted["payload"]["scheduleAt"],
        reply["result"]["scheduleAt"]
    );
    let dir = daemon.stop();

    let daemon = Daemon::start_in(dir, CONFIG);
    let mut page = daemon.connect(CRM).await;
    let fired = page
        .event_within("callbackDue", Duration::from_secs(10))
        .await
        .expect("callbackDue after the restart");
    assert_eq!(
        fired["payload"],
        json!({"number": "echo", "conversationId": echo, "at": reply["result"]["scheduleAt"]})
    );
    let late = time::OffsetDateTime::now_utc() - due;
    assert!(
        late > time::Duration::seconds(-1),
        "not before it was due: {late}"
    );

    // It fired once: acknowledged (else it would be replayed, as any event), a later restart
    // does not fire it again.
    let (ack, _) = page.request("ack", json!({"seq": fired["seq"]})).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let dir = daemon.stop();
    let daemon = Daemon::start_in(dir, CONFIG);
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    assert!(
        page.event_within("callbackDue", Duration::from_secs(2))
            .await
            .is_none(),
        "a callback fires once"
    );

    // BLACKLIST lists the call's number, and it is then refused.
    let listed = ended_call(&mut page, "5550123").await;
    let (reply, _) = page
        .request(
            "submit_notes",
            json!({"conversationId": listed, "disposition": "BLACKLIST"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let (list, _) = page.request("blacklist_list", Value::Null).await;
    assert_eq!(list["result"]["numbers"], json!(["5550123"]));
    let (reply, _) = page
        .request("start_call", json!({"dialTo": "555 0123"}))
        .await;
    assert_eq!(reply["error"]["code"], "blacklisted", "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dialpad_follows_its_patterns_and_the_partners() {
    let daemon = Daemon::start(&format!(
        "{CONFIG}[dialling]\npatterns = [\"echo\", \"1???\", \"+44*\"]\n[[dialling.partner]]\npartner_id = \"acme\"\npatterns = [\"+44*\"]\n"
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let (reply, _) = page
        .request("start_call", json!({"dialTo": "+1 555 0100"}))
        .await;
    assert_eq!(reply["error"]["code"], "invalid_number", "{reply}");
    ended_call(&mut page, "echo").await;
    page.request("partner_config", json!({"partnerId": "acme"}))
        .await;
    let (reply, _) = page.request("start_call", json!({"dialTo": "echo"})).await;
    assert_eq!(
        reply["error"]["code"], "invalid_number",
        "the partner's rules: {reply}"
    );
    let (reply, _) = page
        .request("call", json!({"destination": "+44 20 7946 0958"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
}
