//! The agent's work survives the daemon (issue 11), tested on the real binary: `kill -9` mid-call
//! and right after `submit_notes`, then a restart; after-call work on calls from before it; a
//! damaged store; a full and a read-only disk.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{CRM, Client, Daemon};
use serde_json::{Value, json};
use softphone_bridge::client::Target;

const DEMO: &str = "[demo]\nline = true\n[audio]\nbackend = \"file\"\n";

fn resume(daemon: &Daemon, since: u64, instance: &str) -> Target {
    Target {
        path: format!("/ws?since={since}&instance={instance}"),
        ..daemon.target(Some(CRM))
    }
}

fn seq(message: &Value) -> u64 {
    message["seq"].as_u64().expect("seq")
}

/// Events that follow `hello` on a new connection, until `quiet` passes without one.
async fn replayed(client: &mut Client, quiet: Duration) -> Vec<Value> {
    let mut events = Vec::new();
    while let Some(event) = next_event(client, quiet).await {
        events.push(event);
    }
    events
}

async fn next_event(client: &mut Client, within: Duration) -> Option<Value> {
    use futures_util::StreamExt;
    loop {
        let frame = tokio::time::timeout(within, client.ws.next())
            .await
            .ok()??
            .ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            return serde_json::from_str(&text).ok();
        }
    }
}

async fn history(page: &mut Client) -> Vec<Value> {
    let (reply, _) = page.request("get_history", json!({"limit": 100})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    reply["result"]["calls"].as_array().expect("calls").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_call_right_after_notes_loses_nothing() {
    let daemon = Daemon::start(DEMO);
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let instance = page.hello()["payload"]["instance"]
        .as_str()
        .expect("instance")
        .to_owned();
    let started = page.hello()["payload"]["startedAt"].clone();
    page.request("disposition", json!(["Sale", "No sale"]))
        .await;
    page.request("update_presence", json!({"softphoneId": "break"}))
        .await;
    page.request(
        "partner_config",
        json!({"partnerId": "215fd887-39be-4935-981f-2670d6afeaa7"}),
    )
    .await;
    let id = page.start_call("echo").await;
    let accepted = page.event("callAccepted").await;
    // The page has processed everything up to the answer...
    let (ack, _) = page.request("ack", json!({"seq": seq(&accepted)})).await;
    assert_eq!(ack["result"]["acked"], seq(&accepted), "{ack}");
    // ...and the agent's notes are acknowledged by the daemon, then it is killed.
    let (reply, events) = page
        .request(
            "submit_notes",
            json!({"conversationId": id, "disposition": "Sale", "notes": "two seats, aisle"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let notes = events
        .iter()
        .find(|e| e["event"] == "callNotesSubmitted")
        .expect("callNotesSubmitted before the reply")
        .clone();
    let dir = daemon.stop();

    let daemon = Daemon::start_in(dir, DEMO);
    let mut page = daemon
        .connect_to(resume(&daemon, seq(&notes), &instance))
        .await;
    let hello = page.hello()["payload"].clone();
    assert_eq!(
        hello["instance"],
        instance.as_str(),
        "the data folder's history goes on"
    );
    assert_ne!(hello["startedAt"], started, "a page can tell it restarted");
    assert_eq!(hello["resumed"], true, "{hello}");
    let state = &hello["state"];
    assert_eq!(state["presence"]["softphoneId"], "break", "{state}");
    assert_eq!(state["dispositions"], json!(["Sale", "No sale"]));
    assert_eq!(
        state["partnerConfig"]["partnerId"],
        "215fd887-39be-4935-981f-2670d6afeaa7"
    );
    assert_eq!(state["calls"], json!([]), "the call died with the process");
    assert_eq!(state["storage"]["state"], "ok");

    // Everything after the origin's acknowledgement, in order: the notes again (same seq, same
    // payload: a duplicate the page recognises) and the call's end.
    // (The demo line registering again after the restart is news, not a replay.)
    let events: Vec<Value> = replayed(&mut page, Duration::from_millis(500))
        .await
        .into_iter()
        .filter(|e| e["event"] != "registrationChanged")
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names, ["callNotesSubmitted", "callEnded"], "{events:?}");
    assert_eq!(events[0], notes, "exactly as sent before the kill");
    assert_eq!(seq(&events[0]) + 1, seq(&events[1]));
    assert!(hello["lastSeq"].as_u64() >= Some(seq(&events[1])));
    let ended = &events[1]["payload"];
    assert_eq!(ended["conversationId"], id.as_str());
    assert_eq!(ended["cause"], "interrupted", "{ended}");
    assert_eq!(ended["disposition"], "Sale");
    assert_eq!(ended["notes"], "two seats, aisle");
    assert_eq!(ended["callType"], "outbound");

    let calls = history(&mut page).await;
    assert_eq!(calls[0]["conversationId"], id.as_str(), "{calls:?}");
    assert_eq!(calls[0]["number"], "echo");
    assert_eq!(calls[0]["cause"], "interrupted");
    assert_eq!(calls[0]["notes"], "two seats, aisle");
    assert!(calls[0]["answeredAt"].is_string(), "{calls:?}");

    // After-call work on the call from before the restart, then killed again.
    let (reply, events) = page
        .request(
            "submit_notes",
            json!({"conversationId": id, "disposition": "No sale", "notes": "called back: cancelled"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert!(events.iter().any(|e| e["event"] == "callNotesSubmitted"));
    let (reply, _) = page
        .request(
            "submit_notes",
            json!({"conversationId": id, "disposition": "Maybe"}),
        )
        .await;
    assert_eq!(
        reply["error"]["code"], "invalid_params",
        "not in the list: {reply}"
    );
    let dir = daemon.stop();
    let daemon = Daemon::start_in(dir, DEMO);
    let mut page = daemon.connect(CRM).await;
    let calls = history(&mut page).await;
    assert_eq!(calls[0]["disposition"], "No sale");
    assert_eq!(calls[0]["notes"], "called back: cancelled");
    assert_eq!(
        page.hello()["payload"]["state"]["presence"]["softphoneId"],
        "break"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_reach_any_call_of_the_history_and_a_page_pages_through_it() {
    let daemon = Daemon::start(DEMO);
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let mut ids = Vec::new();
    // Only `echo` answers on the demo line: these end at once, unanswered.
    for n in 0..25 {
        ids.push(page.start_call(&format!("55501{n:02}")).await);
        let ended = page.event("callEnded").await;
        assert_eq!(ended["payload"]["duration"], 0);
    }
    let (reply, _) = page
        .request(
            "submit_notes",
            json!({"conversationId": ids[0], "disposition": "Voicemail", "notes": "left a message"}),
        )
        .await;
    assert_eq!(
        reply["ok"], true,
        "the oldest of 25 calls still takes notes: {reply}"
    );

    let (first, _) = page.request("get_history", json!({"limit": 10})).await;
    let first = first["result"]["calls"].as_array().expect("calls").clone();
    assert_eq!(first.len(), 10);
    assert_eq!(first[0]["conversationId"], ids[24].as_str(), "newest first");
    assert_eq!(first[0]["number"], "5550124");
    assert_eq!(first[0]["callType"], "outbound");
    let before = first[9]["startedAt"].as_str().expect("startedAt");
    let (next, _) = page
        .request("get_history", json!({"limit": 100, "before": before}))
        .await;
    let next = next["result"]["calls"].as_array().expect("calls").clone();
    assert_eq!(next.len(), 15, "the rest, without repeats");
    assert_eq!(next[14]["conversationId"], ids[0].as_str());
    assert_eq!(next[14]["notes"], "left a message");

    // A page allowed later (here the daemon's own origin) sees the history from its first
    // connection on: not the calls and notes of before, as it gets none of their events.
    let own = format!("https://localhost:{}", daemon.port);
    let mut newcomer = daemon.connect(&own).await;
    let calls = history(&mut newcomer).await;
    assert_eq!(calls, Vec::<Value>::new(), "{calls:?}");
    for id in [&ids[0], &ids[24]] {
        let (reply, _) = newcomer
            .request(
                "submit_notes",
                json!({"conversationId": id, "disposition": "x", "notes": "overwritten"}),
            )
            .await;
        assert_eq!(reply["error"]["code"], "unknown_call", "{reply}");
    }
    let calls = history(&mut page).await;
    assert_eq!(calls[24]["notes"], "left a message", "untouched");

    for (params, code) in [
        (json!({"limit": 0}), "invalid_params"),
        (json!({"limit": 501}), "invalid_params"),
        (json!({"before": "yesterday"}), "invalid_params"),
        (json!({"limit": "ten"}), "invalid_params"),
        (json!({"after": 1}), "invalid_params"),
    ] {
        let (reply, _) = page.request("get_history", params.clone()).await;
        assert_eq!(reply["error"]["code"], code, "{params}: {reply}");
    }
    for params in [json!({"seq": -1}), json!({"seq": 1_000_000}), json!({})] {
        let (reply, _) = page.request("ack", params.clone()).await;
        assert_eq!(
            reply["error"]["code"], "invalid_params",
            "{params}: {reply}"
        );
    }
}

#[tokio::test]
async fn a_damaged_store_is_set_aside_and_a_fresh_one_started() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage =
        b"SQLite format 3\0 but then nothing a database would hold, repeated....".repeat(100);
    std::fs::write(dir.path().join("softphone.db"), &garbage).expect("write");
    let daemon = Daemon::start_in(dir, "");
    let mut page = daemon.connect(CRM).await;
    let storage = page.hello()["payload"]["state"]["storage"].clone();
    assert_eq!(storage["state"], "ok", "{storage}");
    let reason = storage["reason"].as_str().expect("reason");
    assert!(
        reason.contains("softphone.db.unusable-") && reason.contains("a new one started"),
        "{reason}"
    );
    let aside: Vec<_> = std::fs::read_dir(daemon.data_dir())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("softphone.db.unusable-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read(aside[0].path()).expect("kept"), garbage);
    assert!(
        daemon.log().contains("softphone.db.unusable-"),
        "the log says it too"
    );
    let (reply, _) = page
        .request("update_presence", json!({"softphoneId": "busy"}))
        .await;
    assert_eq!(reply["ok"], true);
    assert_eq!(history(&mut page).await, Vec::<Value>::new());
}

#[tokio::test]
async fn with_the_store_off_nothing_is_written_and_the_snapshot_says_so() {
    let daemon = Daemon::start("[store]\nenabled = false\n");
    let mut page = daemon.connect(CRM).await;
    let storage = page.hello()["payload"]["state"]["storage"].clone();
    assert_eq!(storage["state"], "unavailable", "{storage}");
    assert!(
        storage["reason"]
            .as_str()
            .is_some_and(|r| r.contains("[store] enabled = false"))
    );
    let (reply, _) = page
        .request("update_presence", json!({"softphoneId": "busy"}))
        .await;
    assert_eq!(reply["ok"], true);
    let (reply, _) = page.request("get_history", Value::Null).await;
    assert_eq!(reply["error"]["code"], "storage_unavailable", "{reply}");
    assert!(!daemon.data_dir().join("softphone.db").exists());
}

/// A small tmpfs mounted on a folder for the test's life (root only).
struct Mount(std::path::PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Option<Self> {
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_owned()))
    }

    /// `file` seen read-only through a read-only bind mount of itself.
    fn read_only_file(file: &Path) -> Self {
        for args in [&["--bind"][..], &["-o", "remount,ro,bind"][..]] {
            let mut mount = Command::new("mount");
            mount.args(args).arg(file);
            if args[0] == "--bind" {
                mount.arg(file);
            }
            assert!(mount.status().is_ok_and(|s| s.success()), "mount {args:?}");
        }
        Self(file.to_owned())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` until a write fails.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.flush();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_or_read_only_disk_is_reported_and_the_phone_keeps_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(disk) = Mount::tmpfs(dir.path(), "8m") else {
        eprintln!(
            "SKIPPED: mounting a tmpfs needs root; the disk-full path is covered by the journal's unit tests"
        );
        return;
    };
    let daemon = Daemon::start_in(dir, DEMO);
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let id = page.start_call("echo").await;
    page.event("callAccepted").await;
    page.request(
        "submit_notes",
        json!({"conversationId": id, "disposition": "Sale", "notes": "before the disk filled"}),
    )
    .await;
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;

    let filler = fill(daemon.data_dir());
    let (reply, _) = page
        .request("update_presence", json!({"softphoneId": "busy"}))
        .await;
    assert_eq!(reply["ok"], true, "the phone works on: {reply}");
    let changed = page.event("storageChanged").await;
    assert_eq!(changed["payload"]["state"], "failing", "{changed}");
    let reason = changed["payload"]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("the disk is full") && reason.contains("softphone.db"),
        "{reason}"
    );
    // Calls go on while nothing can be stored.
    let second = page.start_call("echo").await;
    page.event("callAccepted").await;
    page.request("hangup", json!({"conversationId": second}))
        .await;
    page.event("callEnded").await;
    let (state, _) = page.request("get_state", Value::Null).await;
    assert_eq!(state["result"]["state"]["storage"]["state"], "failing");

    std::fs::remove_file(&filler).expect("free space");
    let (reply, _) = page
        .request("update_presence", json!({"softphoneId": "break"}))
        .await;
    assert_eq!(reply["ok"], true);
    let changed = page.event("storageChanged").await;
    assert_eq!(changed["payload"]["state"], "ok", "{changed}");
    assert!(daemon.log().contains("is written again"), "the log says so");

    // A store that cannot be written from the start (a read-only file): said at once, and
    // what it holds is still read.
    let dir = daemon.stop();
    let store = dir.path().join("softphone.db");
    let read_only = Mount::read_only_file(&store);
    let daemon = Daemon::start_in(dir, DEMO);
    let mut page = daemon.connect(CRM).await;
    let storage = page.hello()["payload"]["state"]["storage"].clone();
    assert_eq!(storage["state"], "failing", "{storage}");
    let reason = storage["reason"].as_str().expect("reason");
    assert!(
        reason.contains("read-only") && reason.contains("softphone.db"),
        "{reason}"
    );
    let calls = history(&mut page).await;
    assert!(
        calls.iter().any(|c| c["conversationId"] == id.as_str()),
        "{calls:?}"
    );
    let (reply, _) = page
        .request("update_presence", json!({"softphoneId": "busy"}))
        .await;
    assert_eq!(reply["ok"], true, "the phone works on: {reply}");
    drop(read_only);

    // Nothing stored before the trouble was lost.
    let dir = daemon.stop();
    let daemon = Daemon::start_in(dir, DEMO);
    let mut page = daemon.connect(CRM).await;
    assert_eq!(page.hello()["payload"]["state"]["storage"]["state"], "ok");
    let calls = history(&mut page).await;
    let first = calls
        .iter()
        .find(|c| c["conversationId"] == id.as_str())
        .unwrap_or_else(|| panic!("the first call is kept: {calls:?}"));
    assert_eq!(first["notes"], "before the disk filled");
    assert_eq!(
        page.hello()["payload"]["state"]["presence"]["softphoneId"],
        "break",
        "the last status stored"
    );
    let dir = daemon.stop();
    drop(disk);
    drop(dir);
}
