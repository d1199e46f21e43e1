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

mod verifier {
    //! `inspect::check`: only our localhost-constrained CA, recorded at creation, passes.

    use rcgen::{
        BasicConstraints, CertificateParams, CidrSubnet, CustomExtension, GeneralSubtree, IsCa,
        KeyPair, NameConstraints,
    };

    use super::super::inspect::{self, CaCheckError};
    use super::super::*;

    fn local_subtrees() -> Vec<GeneralSubtree> {
        vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(CidrSubnet::V4([127, 0, 0, 1], [255; 4])),
            GeneralSubtree::IpAddress(CidrSubnet::V6(
                std::net::Ipv6Addr::LOCALHOST.octets(),
                [255; 16],
            )),
        ]
    }

    /// A CA made by rcgen with the given name constraints (and optional raw extension).
    fn ca_with(
        constraints: Option<Vec<GeneralSubtree>>,
        extra: Option<CustomExtension>,
    ) -> Vec<u8> {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.name_constraints = constraints.map(|permitted_subtrees| NameConstraints {
            permitted_subtrees,
            excluded_subtrees: Vec::new(),
        });
        params.custom_extensions.extend(extra);
        params.self_signed(&key).expect("ca").der().to_vec()
    }

    fn check(der: &[u8]) -> Result<(), CaCheckError> {
        let facts = inspect::inspect(der).expect("parses");
        inspect::check(&facts, Some(&sha256_hex(der)), Path::new("about.json"))
    }

    fn ours() -> (tempfile::TempDir, CertPaths) {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = CertPaths::in_data_dir(dir.path());
        generate(&paths).expect("generated");
        (dir, paths)
    }

    #[test]
    fn the_ca_this_install_made_passes() {
        let (_dir, paths) = ours();
        let ca = CaOnDisk::read(&paths, Links::Refuse).expect("read");
        ca.verdict().expect("our CA passes");
        let verified = ca.verified().expect("verified");
        let constraints = verified.facts.name_constraints.as_ref().expect("present");
        assert!(constraints.critical);
        let shown: Vec<_> = constraints
            .permitted
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["DNS localhost", "IP 127.0.0.1/32", "IP ::1/128"]);
        // What is installed is the certificate that was checked, byte for byte.
        let pem = verified.pem();
        let again = CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem");
        assert_eq!(again.as_ref(), verified.der.as_slice());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&paths.about)
                .expect("about")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the recorded fingerprint is owner-only");
        }
    }

    #[test]
    fn a_ca_without_name_constraints_is_refused() {
        assert!(matches!(
            check(&ca_with(None, None)),
            Err(CaCheckError::NoNameConstraints)
        ));
    }

    #[test]
    fn a_ca_permitting_another_name_is_refused() {
        let mut subtrees = local_subtrees();
        subtrees.push(GeneralSubtree::DnsName("bank.example".into()));
        match check(&ca_with(Some(subtrees), None)) {
            Err(CaCheckError::PermitsOtherName { name }) => assert_eq!(name, "DNS bank.example"),
            other => panic!("{other:?}"),
        }
        let mut subtrees = local_subtrees();
        subtrees.push(GeneralSubtree::IpAddress(CidrSubnet::V4(
            [10, 0, 0, 0],
            [255, 0, 0, 0],
        )));
        match check(&ca_with(Some(subtrees), None)) {
            Err(CaCheckError::PermitsOtherName { name }) => assert_eq!(name, "IP 10.0.0.0/8"),
            other => panic!("{other:?}"),
        }
        // A wider loopback subnet is another name too.
        let wider = vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(CidrSubnet::V4([127, 0, 0, 0], [255, 0, 0, 0])),
        ];
        assert!(matches!(
            check(&ca_with(Some(wider), None)),
            Err(CaCheckError::PermitsOtherName { .. })
        ));
    }

    #[test]
    fn a_ca_missing_a_local_name_is_refused() {
        // Without an IP subtree, IP addresses would not be constrained at all.
        let only_dns = vec![GeneralSubtree::DnsName("localhost".into())];
        assert!(matches!(
            check(&ca_with(Some(only_dns), None)),
            Err(CaCheckError::MissingPermittedName {
                name: "IP 127.0.0.1/32"
            })
        ));
    }

    #[test]
    fn non_critical_name_constraints_are_refused() {
        // The very extension our CA carries, copied into a CA with the critical flag off.
        let (_dir, paths) = ours();
        let good = CertificateDer::from_pem_file(&paths.ca).expect("ca");
        let value = {
            use x509_parser::prelude::FromDer;
            let (_, cert) =
                x509_parser::certificate::X509Certificate::from_der(&good).expect("parses");
            cert.extensions()
                .iter()
                .find(|e| e.oid.to_id_string() == "2.5.29.30")
                .expect("name constraints")
                .value
                .to_vec()
        };
        let mut extension = CustomExtension::from_oid_content(&[2, 5, 29, 30], value);
        extension.set_criticality(false);
        let der = ca_with(None, Some(extension));
        let facts = inspect::inspect(&der).expect("parses");
        let found = facts.name_constraints.as_ref().expect("found");
        assert!(!found.critical);
        assert_eq!(found.permitted.len(), 3, "same names, only not critical");
        assert!(matches!(
            check(&der),
            Err(CaCheckError::NameConstraintsNotCritical)
        ));
    }

    #[test]
    fn a_foreign_ca_with_the_same_constraints_is_refused() {
        let (_mine, paths) = ours();
        let (_theirs, foreign) = ours();
        // The foreign CA is ours in every respect but was not made by this install.
        std::fs::copy(&foreign.ca, &paths.ca).expect("swap");
        let ca = CaOnDisk::read(&paths, Links::Refuse).expect("read");
        assert!(matches!(
            ca.verdict(),
            Err(CaCheckError::NotThisInstall { .. })
        ));
        assert!(matches!(
            ca.verified(),
            Err(CertError::Refused {
                source: CaCheckError::NotThisInstall { .. },
                ..
            })
        ));
    }

    #[test]
    fn a_ca_without_a_recorded_fingerprint_is_refused() {
        let (_dir, paths) = ours();
        std::fs::remove_file(&paths.about).expect("rm");
        let ca = CaOnDisk::read(&paths, Links::Refuse).expect("read");
        assert!(matches!(ca.verdict(), Err(CaCheckError::NoRecord { .. })));
    }

    #[test]
    fn a_leaf_or_two_certificates_are_refused() {
        let (_dir, paths) = ours();
        let leaf = CertificateDer::from_pem_file(&paths.leaf).expect("leaf");
        let facts = inspect::inspect(&leaf).expect("parses");
        assert!(matches!(
            inspect::check(&facts, Some(&facts.sha256), Path::new("about.json")),
            Err(CaCheckError::NotCa)
        ));
        let ca = std::fs::read_to_string(&paths.ca).expect("ca");
        let unconstrained = rcgen::CertificateParams::default()
            .self_signed(&KeyPair::generate().expect("key"))
            .expect("cert")
            .pem();
        let two = format!("{ca}{unconstrained}");
        assert!(matches!(
            inspect::inspect_pem(two.as_bytes()),
            Err(CaCheckError::NotOneCertificate { found: 2 })
        ));
        assert!(matches!(
            inspect::inspect_pem(b"not a certificate"),
            Err(CaCheckError::NotOneCertificate { found: 0 })
        ));
    }
}

#[cfg(target_os = "linux")]
mod no_follow {
    //! `NoFollowDir`: what the root flow reads from a folder the agent controls.

    use std::os::unix::fs::symlink;

    use super::super::nofollow::{NoFollowDir, NoFollowError, root_only, running_as_root};

    #[test]
    fn reads_a_plain_file_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), "pem").expect("write");
        let opened = NoFollowDir::open(dir.path()).expect("open");
        assert_eq!(
            opened.read("ca.pem").expect("read").as_deref(),
            Some(&b"pem"[..])
        );
        assert_eq!(opened.read("absent").expect("read"), None);
    }

    #[test]
    fn a_link_anywhere_on_the_path_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        std::fs::create_dir_all(real.join("certs")).expect("dirs");
        symlink(&real, dir.path().join("link")).expect("link");
        match NoFollowDir::open(&dir.path().join("link/certs")) {
            Err(NoFollowError::Symlink { path }) => assert_eq!(path, dir.path().join("link")),
            other => panic!("{other:?}"),
        }
        let opened = NoFollowDir::open(&real).expect("real");
        symlink(real.join("certs"), real.join("certs2")).expect("link");
        assert!(matches!(
            opened.subdir("certs2"),
            Err(NoFollowError::Symlink { .. })
        ));
        assert!(matches!(
            NoFollowDir::open(&real.join("certs/../certs")),
            Err(NoFollowError::NotPlain { .. })
        ));
    }

    #[test]
    fn a_linked_fifo_or_hard_linked_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other = tempfile::tempdir().expect("other");
        let target = other.path().join("secret");
        std::fs::write(&target, "secret").expect("write");
        symlink(&target, dir.path().join("ca.pem")).expect("symlink");
        std::fs::hard_link(&target, dir.path().join("about.json")).expect("hard link");
        let fifo = std::process::Command::new("mkfifo")
            .arg(dir.path().join("fifo"))
            .status()
            .expect("mkfifo");
        assert!(fifo.success());
        let opened = NoFollowDir::open(dir.path()).expect("open");
        assert!(matches!(
            opened.read("ca.pem"),
            Err(NoFollowError::Symlink { .. })
        ));
        assert!(matches!(
            opened.read("about.json"),
            Err(NoFollowError::HardLinked { links: 2, .. })
        ));
        // Opened without blocking, then refused: a FIFO cannot hang the root install.
        assert!(matches!(
            opened.read("fifo"),
            Err(NoFollowError::NotRegularFile { .. })
        ));
    }

    #[test]
    fn as_root_a_file_not_owned_by_its_folders_owner_is_refused() {
        if !running_as_root() {
            eprintln!("SKIPPED: needs root to hand a file to another user (CI runs as root)");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "pem").expect("write");
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).expect("chown");
        let opened = NoFollowDir::open(dir.path()).expect("open");
        assert!(matches!(
            opened.read("ca.pem"),
            Err(NoFollowError::WrongOwner {
                owner: 65534,
                expected: 0,
                ..
            })
        ));
    }

    #[test]
    fn root_only_means_owned_by_root_without_links() {
        if !running_as_root() {
            eprintln!("SKIPPED: needs root (CI runs as root)");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(root_only(dir.path()), "root's own temp folder");
        assert!(
            root_only(&dir.path().join("not/yet")),
            "only root can create it"
        );
        let agents = dir.path().join("agent");
        std::fs::create_dir(&agents).expect("dir");
        std::os::unix::fs::chown(&agents, Some(65534), Some(65534)).expect("chown");
        assert!(!root_only(&agents));
        assert!(!root_only(&agents.join("data")));
        symlink(dir.path(), dir.path().join("link")).expect("link");
        assert!(!root_only(&dir.path().join("link")));
    }
}
