use super::*;

#[test]
fn origins_normalize() {
    let same = [
        "https://CRM.example.com",
        "https://crm.example.com:443",
        " https://crm.example.com ",
    ];
    for text in same {
        assert_eq!(
            Origin::parse(text).map(|o| o.to_string()).as_deref(),
            Ok("https://crm.example.com")
        );
    }
    assert_eq!(
        Origin::parse("http://localhost:8080")
            .map(|o| o.to_string())
            .as_deref(),
        Ok("http://localhost:8080")
    );
    assert_eq!(
        Origin::parse("https://[::1]:48443")
            .map(|o| o.to_string())
            .as_deref(),
        Ok("https://[::1]:48443")
    );
    assert_eq!(Origin::parse("null"), Err(OriginError::Null));
    assert_eq!(Origin::parse("crm.example.com"), Err(OriginError::Shape));
    assert_eq!(
        Origin::parse("https://crm.example.com/path"),
        Err(OriginError::Extra)
    );
    assert_eq!(
        Origin::parse("https://user@crm.example.com"),
        Err(OriginError::Extra)
    );
    assert_eq!(
        Origin::parse("https://crm.example.com:99999"),
        Err(OriginError::Port)
    );
    assert_eq!(Origin::parse("https://"), Err(OriginError::Host));
    assert_ne!(
        Origin::parse("http://crm.example.com"),
        Origin::parse("https://crm.example.com"),
        "scheme matters"
    );
}

#[test]
fn policy_allows_configured_and_own_and_records_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ApprovalStore::open(&dir.path().join("origins.json")).expect("store");
    let configured = vec![Origin::parse("https://crm.example.com").expect("valid")];
    let policy = OriginPolicy::new(configured, 4000, store);
    let check = |o: &str| policy.check(&Origin::parse(o).expect("valid"));
    assert_eq!(check("https://crm.example.com"), Verdict::Allowed);
    assert_eq!(check("https://localhost:4000"), Verdict::Allowed);
    assert_eq!(check("https://127.0.0.1:4000"), Verdict::Allowed);
    assert_eq!(
        check("https://localhost:4001"),
        Verdict::Pending,
        "another port is another origin"
    );
    assert_eq!(check("https://evil.example"), Verdict::Pending);

    // The CLI approves through its own store on the same file; the daemon sees it at once.
    let mut cli = ApprovalStore::open(&dir.path().join("origins.json")).expect("store");
    assert_eq!(
        cli.origins().pending,
        ["https://evil.example", "https://localhost:4001"],
        "newest first"
    );
    cli.approve("https://EVIL.example:443").expect("approve");
    cli.deny("https://localhost:4001").expect("deny");
    assert_eq!(check("https://evil.example"), Verdict::Allowed);
    assert_eq!(check("https://localhost:4001"), Verdict::Denied);
    cli.forget("https://evil.example").expect("forget");
    assert_eq!(check("https://evil.example"), Verdict::Pending);
}

#[test]
fn pending_list_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = ApprovalStore::open(&dir.path().join("origins.json")).expect("store");
    for i in 0..500 {
        store.check_and_record(&Origin::parse(&format!("https://x{i}.example")).expect("valid"));
    }
    assert_eq!(store.origins().pending.len(), 50);
}

/// Security review, finding 9: after 50 junk pending origins a real CRM was no longer listed,
/// although the shim told the agent to approve it in the tray. Newest first, oldest out.
#[test]
fn a_real_origin_is_listed_first_after_a_flood_of_junk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = ApprovalStore::open(&dir.path().join("origins.json")).expect("store");
    for i in 0..60 {
        store.check_and_record(&Origin::parse(&format!("https://junk{i}.example")).expect("valid"));
    }
    let real = Origin::parse("https://crm.example.com").expect("valid");
    store.check_and_record(&real);
    assert_eq!(store.origins().pending.len(), 50);
    assert_eq!(store.origins().pending[0], "https://crm.example.com");
    // It asks again after more junk: back at the top.
    for i in 60..100 {
        store.check_and_record(&Origin::parse(&format!("https://junk{i}.example")).expect("valid"));
    }
    let reopened = ApprovalStore::open(&dir.path().join("origins.json")).expect("store");
    assert!(
        reopened
            .origins()
            .pending
            .contains(&"https://crm.example.com".to_owned())
    );
    store.check_and_record(&real);
    assert_eq!(store.origins().pending[0], "https://crm.example.com");
}

#[test]
fn pending_origins_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("origins.json");
    let old = StoredOrigins {
        pending: vec!["https://stale.example".into()],
        pending_seen: [("https://stale.example".to_owned(), 1_000)].into(),
        ..Default::default()
    };
    std::fs::write(&path, serde_json::to_string(&old).expect("json")).expect("write");
    let mut store = ApprovalStore::open(&path).expect("store");
    store.check_and_record(&Origin::parse("https://new.example").expect("valid"));
    assert_eq!(
        store.origins().pending,
        vec!["https://new.example".to_owned()]
    );
}

#[test]
fn plain_http_origins_cannot_be_approved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = ApprovalStore::open(&dir.path().join("origins.json")).expect("store");
    assert!(matches!(
        store.approve("http://crm.example.com"),
        Err(StoreError::Insecure(_))
    ));
    assert!(
        store.approve("http://localhost:3000").is_ok(),
        "a local development page never crosses a network"
    );
    let policy = OriginPolicy::new(Vec::new(), 48443, store);
    assert_eq!(
        policy.check(&Origin::parse("http://crm.example.com").expect("valid")),
        Verdict::Insecure
    );
    for local in [
        "http://127.0.0.1:8080",
        "http://[::1]:8080",
        "http://localhost",
    ] {
        assert!(
            !Origin::parse(local).expect("valid").is_insecure(),
            "{local}"
        );
    }
}

#[test]
fn corrupt_store_file_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("origins.json");
    std::fs::write(&path, "{ not json").expect("write");
    assert!(matches!(
        ApprovalStore::open(&path),
        Err(StoreError::Format { .. })
    ));
}

/// Red-team follow-up to finding 9: a site with wildcard DNS opens x1.evil.example,
/// x2.evil.example … faster than the real CRM retries. One site keeps only its newest three.
#[test]
fn one_site_cannot_fill_the_pending_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = ApprovalStore::open(&dir.path().join("origins.json")).expect("store");
    let real = Origin::parse("https://crm.example.com").expect("valid");
    store.check_and_record(&real);
    for i in 0..500 {
        store.check_and_record(
            &Origin::parse(&format!("https://x{i}.evil.example:8443")).expect("valid"),
        );
    }
    let pending = &store.origins().pending;
    assert_eq!(
        pending
            .iter()
            .filter(|o| o.ends_with("evil.example:8443"))
            .count(),
        3
    );
    assert!(pending.contains(&"https://crm.example.com".to_owned()));
    assert_eq!(pending[0], "https://x499.evil.example:8443", "newest first");
}
