use std::time::{Duration, SystemTime};

use super::*;

#[test]
fn generated_leaf_is_valid_for_local_names_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = CertPaths::in_data_dir(dir.path());
    let certs = ensure(&paths).expect("created");
    assert!(certs.created);
    verify_leaf(&certs, SystemTime::now()).expect("valid now for localhost, 127.0.0.1 and ::1");
    assert!(
        verify_leaf(
            &certs,
            SystemTime::now() + Duration::from_secs(900 * 24 * 3600)
        )
        .is_err(),
        "expires"
    );
    certs.server_config().expect("usable for TLS");

    // A second start reuses the same files.
    let again = ensure(&paths).expect("loaded");
    assert!(!again.created);
    assert_eq!(again.ca_sha256(), certs.ca_sha256());
}

#[test]
fn ca_key_is_not_kept_and_leaf_key_is_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = CertPaths::in_data_dir(dir.path());
    ensure(&paths).expect("created");
    let mut names: Vec<_> = std::fs::read_dir(&paths.dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["about.json", "ca.pem", "localhost.key", "localhost.pem"]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&paths.key)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key readable by the owner only");
    }
}

#[test]
fn ca_cannot_vouch_for_other_names() {
    // The name constraints are in the CA: a leaf for another name, even signed by a CA with the
    // same constraints, fails verification.
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = ensure(&CertPaths::in_data_dir(dir.path())).expect("created");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs.ca.clone()).expect("root");
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        std::sync::Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("verifier");
    let name = ServerName::try_from("example.com").expect("name");
    assert!(
        verifier
            .verify_server_cert(&certs.leaf, &[], &name, &[], UnixTime::now())
            .is_err()
    );
}

#[test]
fn broken_files_are_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = CertPaths::in_data_dir(dir.path());
    let first = ensure(&paths).expect("created");
    std::fs::write(&paths.leaf, "garbage").expect("write");
    let second = ensure(&paths).expect("recreated");
    assert!(second.created);
    assert_ne!(first.ca_sha256(), second.ca_sha256());
}
