use super::*;
use crate::protocol::StatusChanged;

fn status(n: u64) -> Event {
    Event::StatusChanged(StatusChanged {
        softphone_id: n.to_string(),
        accept_calls: true,
        ready: true,
        name: n.to_string(),
    })
}

const KEEP_ALL: Retention = Retention {
    keep: Duration::from_secs(86_400),
    max_events: 100_000,
    max_bytes: u64::MAX,
};

fn open(dir: &tempfile::TempDir, window: usize) -> Journal {
    let path = dir.path().join(crate::store::FILE_NAME);
    Journal::open(&path, "stamp", window, KEEP_ALL, || 1_000, || "inst".into()).0
}

fn origin(text: &str) -> Origin {
    Origin::parse(text).expect("origin")
}

fn seqs(events: &[Arc<Published>]) -> Vec<u64> {
    events.iter().map(|p| p.seq).collect()
}

fn publish(journal: &mut Journal, range: std::ops::RangeInclusive<u64>) -> Vec<Arc<Published>> {
    let events: Vec<Event> = range.map(status).collect();
    journal.publish(&events, 1_000)
}

fn resume(since: u64) -> Resume {
    Resume {
        instance: "inst".into(),
        since,
    }
}

#[test]
fn the_instance_and_the_numbering_go_on_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = open(&dir, 16);
    assert_eq!(seqs(&publish(&mut journal, 1..=3)), [1, 2, 3]);
    drop(journal);
    let mut journal = open(&dir, 16);
    assert_eq!(journal.instance(), "inst");
    assert_eq!(journal.last_seq(), 3);
    assert_eq!(seqs(&publish(&mut journal, 4..=4)), [4]);
    // A page that saw 2 before the restart resumes across it.
    let crm = origin("https://crm.example.com");
    journal.ack(Some(&crm), 0).expect("first contact");
    assert_eq!(journal.status().state, StorageState::Ok);
}

#[test]
fn an_origin_is_replayed_what_it_has_not_acknowledged_and_nothing_from_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = open(&dir, 16);
    publish(&mut journal, 1..=2);
    let crm = origin("https://crm.example.com");
    assert_eq!(
        journal.subscribe(Some(&crm), None),
        (false, Vec::new()),
        "other pages' history is not replayed"
    );
    publish(&mut journal, 3..=5);
    let (resumed, events) = journal.subscribe(Some(&crm), None);
    assert_eq!((resumed, seqs(&events)), (false, vec![3, 4, 5]));
    assert_eq!(journal.ack(Some(&crm), 4), Ok(4));
    assert_eq!(journal.ack(Some(&crm), 3), Ok(4), "an ack never goes back");
    assert_eq!(seqs(&journal.subscribe(Some(&crm), None).1), [5]);
    let (resumed, events) = journal.subscribe(Some(&crm), Some(&resume(3)));
    assert_eq!(
        (resumed, seqs(&events)),
        (true, vec![4, 5]),
        "a page that saw less than its origin acknowledged gets what it missed"
    );
    let (resumed, events) = journal.subscribe(Some(&crm), Some(&resume(0)));
    assert_eq!(
        (resumed, seqs(&events)),
        (false, vec![3, 4, 5]),
        "never before the origin's first connection"
    );
    let (resumed, _) = journal.subscribe(
        Some(&crm),
        Some(&Resume {
            instance: "other".into(),
            since: 4,
        }),
    );
    assert!(!resumed, "another instance's seq means nothing here");
    assert_eq!(
        journal.ack(Some(&crm), 6),
        Err(JournalError::AckFromTheFuture { seq: 6, last: 5 })
    );
    assert_eq!(journal.ack(None, 1), Err(JournalError::AckWithoutOrigin));
    assert_eq!(
        journal.subscribe(None, Some(&resume(0))),
        (false, Vec::new())
    );

    // Marks are kept with the events.
    drop(journal);
    let mut journal = open(&dir, 16);
    assert_eq!(seqs(&journal.subscribe(Some(&crm), None).1), [5]);
    journal.forget(&crm);
    assert_eq!(
        journal.subscribe(Some(&crm), None),
        (false, Vec::new()),
        "a forgotten origin starts afresh"
    );
}

#[test]
fn the_store_reaches_back_where_the_memory_window_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = open(&dir, 2);
    let crm = origin("https://crm.example.com");
    journal.subscribe(Some(&crm), None);
    publish(&mut journal, 1..=6);
    let (resumed, events) = journal.subscribe(Some(&crm), Some(&resume(1)));
    assert_eq!((resumed, seqs(&events)), (true, vec![1, 2, 3, 4, 5, 6]));
    assert!(events[5].json.contains(r#""seq":6"#));
}

#[test]
fn while_the_store_fails_events_are_sent_kept_in_memory_and_the_state_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = open(&dir, 3);
    let crm = origin("https://crm.example.com");
    journal.subscribe(Some(&crm), None);
    publish(&mut journal, 1..=2);
    // Another process breaks the store under us (as a full disk would refuse the write).
    let side = rusqlite::Connection::open(dir.path().join(crate::store::FILE_NAME)).expect("open");
    side.execute_batch("ALTER TABLE events RENAME TO gone")
        .expect("break");
    let sent = publish(&mut journal, 3..=3);
    assert_eq!(
        seqs(&sent),
        [3, 3],
        "the event, then storageChanged carrying its seq"
    );
    assert!(!sent[1].stored && sent[1].json.contains("storageChanged"));
    let status = journal.status();
    assert_eq!(status.state, StorageState::Failing);
    assert!(status.reason.is_some_and(|r| r.contains("softphone.db")));
    assert_eq!(publish(&mut journal, 4..=4).len(), 1, "told once");
    side.execute_batch("ALTER TABLE gone RENAME TO events")
        .expect("mend");
    let sent = publish(&mut journal, 5..=5);
    assert_eq!(sent.len(), 2, "and told when it works again");
    assert_eq!(journal.status().state, StorageState::Ok);
    let (resumed, events) = journal.subscribe(Some(&crm), Some(&resume(2)));
    assert_eq!((resumed, seqs(&events)), (true, vec![1, 2, 3, 4, 5]));
    publish(&mut journal, 6..=6);
    // 3 and 4, sent while the store failed, were written with 5 (from the memory window): with
    // 3 gone from memory the store has it, and the notifier will post it.
    let (resumed, events) = journal.subscribe(Some(&crm), Some(&resume(0)));
    assert_eq!((resumed, seqs(&events)), (true, vec![1, 2, 3, 4, 5, 6]));
    drop(journal);
    let journal = open(&dir, 3);
    assert_eq!(journal.last_seq(), 6, "no seq is reused after a restart");
}

#[test]
fn a_replay_is_capped_to_the_newest_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = open(&dir, 16);
    let crm = origin("https://crm.example.com");
    journal.subscribe(Some(&crm), None);
    let total = MAX_REPLAY_EVENTS as u64 + 500;
    let mut n = 0;
    while n < total {
        let upto = (n + 250).min(total);
        publish(&mut journal, n + 1..=upto);
        n = upto;
    }
    let (resumed, events) = journal.subscribe(Some(&crm), Some(&resume(0)));
    assert!(!resumed, "the oldest 500 are left to the snapshot");
    assert_eq!(events.len(), MAX_REPLAY_EVENTS);
    assert_eq!(events.first().map(|p| p.seq), Some(501));
    assert_eq!(events.last().map(|p| p.seq), Some(total));
    assert!(
        events.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "in order"
    );
}

#[test]
fn without_a_store_the_journal_runs_in_memory_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The store's place is a folder: it cannot be opened.
    std::fs::create_dir(dir.path().join(crate::store::FILE_NAME)).expect("dir");
    let mut journal = open(&dir, 16);
    assert_eq!(journal.status().state, StorageState::Unavailable);
    assert!(
        journal
            .status()
            .reason
            .is_some_and(|r| r.contains("softphone.db"))
    );
    assert_eq!(seqs(&publish(&mut journal, 1..=2)), [1, 2]);
    assert!(matches!(
        journal.history(None, 10, None),
        Err(JournalError::Unavailable(_))
    ));
}

fn open_startup(dir: &tempfile::TempDir) -> (Journal, Startup) {
    let path = dir.path().join(crate::store::FILE_NAME);
    Journal::open(&path, "stamp", 16, KEEP_ALL, || 1_000, || "inst".into())
}

#[test]
fn a_provisioned_account_is_kept_without_its_secrets_and_put_back_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = crate::secrets::Vault::in_memory("inst");
    let params = serde_json::json!({
        "server": "wss://pbx.example.com", "username": "1001",
        "password": "pw-1001", "auth_key": "ak-1001", "turn_port": 3478
    });
    let mut journal = open(&dir, 16);
    journal.set_vault(Ok(vault.clone()));
    journal
        .keep_provisioning(&params, "https://crm.example.com")
        .expect("kept");
    drop(journal);
    let bytes = std::fs::read(dir.path().join(crate::store::FILE_NAME)).expect("db");
    let wal = std::fs::read(dir.path().join("softphone.db-wal")).unwrap_or_default();
    for secret in [b"pw-1001", b"ak-1001"] {
        assert!(
            ![&bytes, &wal]
                .iter()
                .any(|b| b.windows(7).any(|w| w == secret)),
            "no secret in the store"
        );
    }

    let (mut journal, startup) = open_startup(&dir);
    journal.set_vault(Ok(vault.clone()));
    let saved = startup.saved.provisioning.clone();
    assert_eq!(
        saved.as_ref().map(|p| p["params"].get("password")),
        Some(None)
    );
    let recalled = journal.recall_provisioning(saved).expect("recalled");
    assert_eq!(
        recalled,
        Some((params.clone(), "https://crm.example.com".to_owned()))
    );

    // A reboot cleared the keyring: the account is forgotten, parameters too.
    vault.remove("password").expect("removed");
    let err = journal
        .recall_provisioning(Some(serde_json::json!({
            "origin": "https://crm.example.com",
            "params": {"username": "1001"}
        })))
        .expect_err("secret gone");
    assert!(matches!(err, Unkept::SecretGone("password")), "{err}");
    assert_eq!(vault.get("auth_key").expect("get"), None, "both go");
    drop(journal);
    let (_, startup) = open_startup(&dir);
    assert_eq!(startup.saved.provisioning, None);
}

#[test]
fn without_a_keyring_nothing_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = open(&dir, 16);
    journal.set_vault(Err(crate::secrets::VaultError::NoKeyring("test".into())));
    let params = serde_json::json!({"password": "p", "auth_key": "a"});
    assert!(matches!(
        journal.keep_provisioning(&params, "https://crm.example.com"),
        Err(Unkept::NoKeyring(_))
    ));
    drop(journal);
    let (_, startup) = open_startup(&dir);
    assert_eq!(startup.saved.provisioning, None);
}
