use rusqlite::Connection;

use super::*;
use crate::protocol::{
    CallAccepted, CallEnded, CallNotesSubmitted, DispositionsChanged, EndCause,
    OutboundCallInitiated, PartnerConfig, StatusChanged,
};

fn store_in(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join(FILE_NAME), "stamp")
        .expect("opens")
        .0
}

fn append(store: &mut Store, seq: u64, at_ms: i64, event: Event) {
    let json = crate::phone::event_log::frame(&event, seq);
    store
        .append(
            &[NewEvent {
                seq,
                at_ms,
                event: &event,
                json: &json,
            }],
            false,
        )
        .expect("append");
}

fn dialled(id: &str) -> Event {
    Event::OutboundCallInitiated(OutboundCallInitiated {
        partner_id: Some("p1".into()),
        conversation_id: id.into(),
        dialled_to: "+15551234".into(),
        dialled_to_all: None,
    })
}

fn accepted(id: &str) -> Event {
    Event::CallAccepted(CallAccepted {
        partner_id: Some("p1".into()),
        conversation_id: id.into(),
        caller_ani: "+15551234".into(),
        language: "en_US".into(),
        ivr_exit_path: None,
        channel_name: None,
        reservation_start_date: None,
        special_event: None,
        escalation_type: None,
        recording_status: "OFF".into(),
        dialled_to: None,
    })
}

fn status(id: &str) -> Event {
    Event::StatusChanged(StatusChanged {
        softphone_id: id.into(),
        accept_calls: true,
        ready: true,
        name: id.into(),
    })
}

#[test]
fn the_instance_and_the_numbering_outlive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(&dir);
    assert_eq!(store.last_seq().expect("seq"), 0);
    let instance = store.instance(|| "abc".into()).expect("instance");
    append(&mut store, 1, 1_000, status("available"));
    append(&mut store, 2, 2_000, status("break"));
    drop(store);
    let mut store = store_in(&dir);
    assert_eq!(
        store.instance(|| "other".into()).expect("instance"),
        instance
    );
    assert_eq!(store.last_seq().expect("seq"), 2);
    let after = store.events_after(1, 10).expect("events");
    assert_eq!(after.len(), 1);
    assert_eq!((after[0].seq, after[0].name.as_str()), (2, "statusChanged"));
    assert!(after[0].json.contains(r#""seq":2"#));
    assert_eq!(
        store
            .append(
                &[NewEvent {
                    seq: 2,
                    at_ms: 0,
                    event: &status("x"),
                    json: "{}"
                }],
                false
            )
            .map_err(|e| matches!(e, StoreError::Write { .. })),
        Err(true),
        "a seq is stored once"
    );
}

#[test]
fn history_and_agent_state_follow_the_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(&dir);
    append(&mut store, 1, 10_000, dialled("c1"));
    append(&mut store, 2, 12_000, accepted("c1"));
    assert_eq!(
        store
            .unfinished_calls()
            .expect("calls")
            .iter()
            .map(|c| c.conversation_id.as_str())
            .collect::<Vec<_>>(),
        ["c1"],
        "a call that is up is unfinished"
    );
    append(
        &mut store,
        3,
        20_000,
        Event::CallNotesSubmitted(CallNotesSubmitted {
            partner_id: Some("p1".into()),
            conversation_id: "c1".into(),
            disposition: "SALE".into(),
            notes: "wants the blue one".into(),
            schedule_at: None,
        }),
    );
    append(
        &mut store,
        4,
        42_000,
        Event::CallEnded(CallEnded {
            partner_id: Some("p1".into()),
            conversation_id: "c1".into(),
            duration: 30,
            disposition: None,
            notes: None,
            call_type: "outbound".into(),
            cause: EndCause::Remote,
            sip_status: None,
            sip_reason: None,
        }),
    );
    append(&mut store, 5, 50_000, dialled("c2"));
    append(&mut store, 6, 51_000, status("break"));
    append(
        &mut store,
        7,
        52_000,
        Event::DispositionsChanged(DispositionsChanged {
            codes: vec!["SALE".into(), "NO_SALE".into()],
        }),
    );
    append(
        &mut store,
        8,
        53_000,
        Event::PartnerConfigChanged(PartnerConfig {
            partner_id: "p9".into(),
            business_segment_id: None,
            channel_origin_id: None,
        }),
    );

    let history = store.history(10, 0, None).expect("history");
    assert_eq!(
        history
            .iter()
            .map(|c| c.conversation_id.as_str())
            .collect::<Vec<_>>(),
        ["c2", "c1"],
        "newest first"
    );
    let c1 = history[1].record();
    assert_eq!(c1.call_type, "outbound");
    assert_eq!(c1.number, "+15551234");
    assert_eq!(c1.started_at, "1970-01-01T00:00:10Z");
    assert_eq!(c1.answered_at.as_deref(), Some("1970-01-01T00:00:12Z"));
    assert_eq!(c1.duration, Some(30));
    assert_eq!(c1.cause.as_deref(), Some("remote"));
    assert_eq!(
        (c1.disposition.as_deref(), c1.notes.as_deref()),
        (Some("SALE"), Some("wants the blue one")),
        "notes submitted during the call stay when callEnded carries none"
    );
    assert_eq!(history[0].record().duration, None, "c2 is not over");
    assert_eq!(
        store
            .history(10, 0, Some(50_000))
            .expect("history")
            .iter()
            .map(|c| c.conversation_id.as_str())
            .collect::<Vec<_>>(),
        ["c1"],
        "before is exclusive"
    );
    assert_eq!(store.history(1, 0, None).expect("history").len(), 1);
    assert_eq!(
        store
            .history(10, 42_000, None)
            .expect("history")
            .iter()
            .map(|c| c.conversation_id.as_str())
            .collect::<Vec<_>>(),
        ["c2", "c1"],
        "a call that ended at `since` or later is seen"
    );
    assert_eq!(
        store.history(10, 42_001, None).expect("history").len(),
        1,
        "c1 ended before, c2 is still going"
    );
    assert_eq!(
        store.call("c1").expect("call").map(|c| c.notes),
        Some(Some("wants the blue one".into()))
    );
    assert_eq!(store.call("nope").expect("call"), None);

    let saved = store.saved_state().expect("state");
    assert_eq!(saved.presence.as_deref(), Some("break"));
    assert_eq!(
        saved.dispositions,
        Some(vec!["SALE".to_owned(), "NO_SALE".to_owned()])
    );
    assert_eq!(
        saved.partner_config.map(|p| p.partner_id),
        Some("p9".into())
    );
}

#[test]
fn migrates_from_every_earlier_version() {
    for from in 0..schema::latest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        {
            let mut conn = Connection::open(&path).expect("open");
            schema::migrate_to(&mut conn, from).expect("older schema");
            assert_eq!(schema::version(&conn).expect("version"), from);
            // What every version since 1 has: an event of a day's work.
            if from >= 1 {
                conn.execute(
                    "INSERT INTO events (seq, at_ms, name, json) VALUES (7, 1, 'statusChanged', '{}')",
                    [],
                )
                .expect("fixture");
            }
        }
        let mut store = store_in(&dir);
        assert_eq!(
            schema::version(&store.conn).expect("version"),
            schema::latest(),
            "from version {from}"
        );
        let expected = if from >= 1 { 7 } else { 0 };
        assert_eq!(store.last_seq().expect("seq"), expected, "from {from}");
        append(&mut store, expected + 1, 2, status("available"));
    }
}

#[test]
fn a_store_from_a_newer_version_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    drop(store_in(&dir));
    let conn = Connection::open(&path).expect("open");
    conn.pragma_update(None, "user_version", schema::latest() + 1)
        .expect("bump");
    drop(conn);
    let error = Store::open(&path, "stamp").expect_err("refused");
    assert!(
        error.to_string().contains("newer softphone-bridge")
            && error.to_string().contains("softphone.db"),
        "{error}"
    );
    assert!(path.exists(), "the newer file is not touched");
}

#[test]
fn foreign_and_damaged_files_are_set_aside_for_a_fresh_store() {
    let not_sqlite = |path: &Path| {
        std::fs::write(
            path,
            b"this is not a database at all, just text that is long enough to look like a header",
        )
        .expect("write")
    };
    let other_program = |path: &Path| {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x');")
            .expect("foreign");
    };
    let damaged = |path: &Path| {
        {
            let dir = path.parent().expect("dir");
            let mut store = Store::open(path, "first").expect("open").0;
            for seq in 1..=200 {
                append(&mut store, seq, 1, status(&"x".repeat(200)));
            }
            let _ = dir;
        }
        // Overwrite the pages after the first with garbage.
        let mut bytes = std::fs::read(path).expect("read");
        assert!(bytes.len() > 8192, "several pages");
        for b in &mut bytes[4096..8192] {
            *b = 0xA5;
        }
        std::fs::write(path, bytes).expect("damage");
    };
    for (what, make, why) in [
        (
            "text",
            &not_sqlite as &dyn Fn(&Path),
            "not an SQLite database",
        ),
        ("another program's", &other_program, "another program"),
        ("damaged", &damaged, "damaged"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        make(&path);
        let original = std::fs::read(&path).expect("read");
        let (mut store, set_aside) = Store::open(&path, "20261203T070000Z").expect("opens fresh");
        let set_aside = set_aside.unwrap_or_else(|| panic!("{what}: set aside"));
        assert!(set_aside.why.contains(why), "{what}: {}", set_aside.why);
        assert_eq!(
            set_aside.file,
            dir.path().join("softphone.db.unusable-20261203T070000Z")
        );
        assert_eq!(
            std::fs::read(&set_aside.file).expect("kept"),
            original,
            "{what}: kept as it was"
        );
        assert_eq!(store.last_seq().expect("seq"), 0, "{what}: a fresh store");
        append(&mut store, 1, 1, status("available"));
    }
}

#[test]
fn pruning_counts_what_no_page_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(&dir);
    for seq in 1..=10 {
        append(
            &mut store,
            seq,
            i64::try_from(seq).expect("small") * 1000,
            status("a"),
        );
    }
    store
        .set_mark(
            "https://a",
            Mark {
                floor: 0,
                acked: 6,
                since_ms: 0,
            },
        )
        .expect("mark");
    store
        .set_mark(
            "https://b",
            Mark {
                floor: 3,
                acked: 9,
                since_ms: 5,
            },
        )
        .expect("mark");
    // Older than 4.5 s at 10 s: events 1..=4 go; a had acknowledged them all.
    let pruned = store.prune(10_000, 5_500, 100, u64::MAX).expect("prune");
    assert_eq!(
        pruned,
        Pruned {
            events: 4,
            unacknowledged: 0
        }
    );
    // At most 2 events: 5..=8 go; a had not acknowledged 7 and 8.
    let pruned = store.prune(10_000, 1_000_000, 2, u64::MAX).expect("prune");
    assert_eq!(
        pruned,
        Pruned {
            events: 4,
            unacknowledged: 2
        }
    );
    assert_eq!(store.dropped_events().expect("dropped"), 2);
    // Everything is old: the newest event stays, so the numbering never goes back.
    store.prune(1_000_000, 1, 100, u64::MAX).expect("prune");
    assert_eq!(store.last_seq().expect("seq"), 10);
    assert_eq!(store.events_after(0, 10).expect("events").len(), 1);
    assert_eq!(
        store.mark("https://b").expect("mark"),
        Some(Mark {
            floor: 3,
            acked: 9,
            since_ms: 5
        })
    );
    store.forget_mark("https://b").expect("forget");
    assert_eq!(store.mark("https://b").expect("mark"), None);
}

#[cfg(unix)]
#[test]
fn the_database_and_its_journal_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(&dir);
    append(&mut store, 1, 1, status("a"));
    for name in [FILE_NAME, "softphone.db-wal", "softphone.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is {mode:o}");
    }
}

#[test]
fn the_wal_is_checkpointed_off_the_writers_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(&dir);
    let autocheckpoint: i64 = store
        .conn
        .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(autocheckpoint, 0, "commits never checkpoint");
    let size = |name: &str| std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
    let before = size(FILE_NAME);
    for seq in 1..=300 {
        append(&mut store, seq, 1, status(&"x".repeat(100)));
    }
    assert!(size("softphone.db-wal") > 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size(FILE_NAME) <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpointer copied nothing into the database"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn bytes_bound_the_store_and_a_replay_reads_newest_first_within_its_caps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(&dir);
    for seq in 1..=20 {
        append(&mut store, seq, 1, status(&"x".repeat(1000)));
    }
    let each =
        u64::try_from(store.events_after(19, 1).expect("events")[0].json.len()).expect("len");
    // Room for 5 events' JSON: the 15 oldest go (no origin ever connected: none counted).
    let pruned = store
        .prune(1, 1_000_000, 1000, each * 5 + 10)
        .expect("prune");
    assert_eq!(pruned.events, 15);
    assert_eq!(store.events_after(0, 100).expect("events")[0].seq, 16);

    let seqs = |events: &[StoredEvent]| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    let (events, cut) = store
        .newest_events_between(0, 21, 100, usize::MAX)
        .expect("read");
    assert_eq!((seqs(&events), cut), (vec![16, 17, 18, 19, 20], false));
    let (events, cut) = store
        .newest_events_between(0, 19, 100, usize::MAX)
        .expect("read");
    assert_eq!(
        (seqs(&events), cut),
        (vec![16, 17, 18], false),
        "before is exclusive"
    );
    let (events, cut) = store
        .newest_events_between(0, 21, 2, usize::MAX)
        .expect("read");
    assert_eq!(
        (seqs(&events), cut),
        (vec![19, 20], true),
        "the newest within the count"
    );
    let (events, cut) = store
        .newest_events_between(0, 21, 100, usize::try_from(each * 3).expect("small"))
        .expect("read");
    assert_eq!(
        (seqs(&events), cut),
        (vec![18, 19, 20], true),
        "the newest within the bytes"
    );
    let (events, _) = store.newest_events_between(0, 21, 100, 1).expect("read");
    assert_eq!(seqs(&events), [20], "at least one");
}

#[test]
fn recordings_follow_their_events_and_expire() {
    use crate::protocol::RecordingChanged;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = store_in(&dir);
    append(&mut store, 1, 1_000, dialled("c1"));
    let changed = |state: &str, duration: Option<f64>| {
        Event::RecordingChanged(RecordingChanged {
            conversation_id: "c1".into(),
            recording_id: "r1".into(),
            state: state.into(),
            file: (state == "recording").then(|| "20261203T080000Z-r1.opus".into()),
            duration,
            reason: None,
        })
    };
    append(&mut store, 2, 2_000, changed("recording", None));
    assert_eq!(
        store.unfinished_recordings().expect("read").len(),
        1,
        "a recording in progress is unfinished"
    );
    append(&mut store, 3, 3_000, changed("paused", None));
    append(
        &mut store,
        4,
        4_000,
        Event::RecordingTagged(crate::protocol::RecordingTagged {
            conversation_id: "c1".into(),
            recording_id: "r1".into(),
            tags: vec!["vip".into()],
        }),
    );
    append(&mut store, 5, 9_000, changed("stopped", Some(5.5)));
    // A later event changes neither the end nor the call's recording.
    append(&mut store, 6, 20_000, changed("stopped", None));
    let r = store.recording("r1").expect("read").expect("kept");
    assert_eq!(
        (
            r.state.as_str(),
            r.file.as_deref(),
            r.seconds,
            r.started_ms,
            r.ended_ms
        ),
        (
            "stopped",
            Some("20261203T080000Z-r1.opus"),
            Some(5.5),
            2_000,
            Some(9_000)
        )
    );
    assert_eq!(r.tags, ["vip"], "other events keep the tags");
    assert!(store.unfinished_recordings().expect("read").is_empty());
    assert_eq!(
        store.call("c1").expect("read").and_then(|c| c.recording),
        Some("r1".into())
    );
    assert_eq!(
        store
            .recordings(10, 0, None, Some("c1"))
            .expect("read")
            .len(),
        1
    );
    assert_eq!(
        store
            .recordings(10, 0, None, Some("c2"))
            .expect("read")
            .len(),
        0
    );
    assert_eq!(
        store.recordings(10, 9_001, None, None).expect("read").len(),
        0,
        "ended before since"
    );
    assert_eq!(
        store.expire_recordings(9_000).expect("expire"),
        Vec::<String>::new()
    );
    assert_eq!(
        store.expire_recordings(9_001).expect("expire"),
        ["20261203T080000Z-r1.opus"]
    );
    assert_eq!(store.recording("r1").expect("read"), None);
}
