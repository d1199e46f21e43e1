//! The per-install certificate authority and the `localhost` certificate the API serves.
//!
//! On first run the daemon makes a CA whose X.509 name constraints permit only `localhost`,
//! `127.0.0.1` and `::1`, signs one leaf for those three names, and **throws the CA key away**:
//! nothing can ever be signed by this CA again, so trusting it exposes nothing beyond this
//! daemon's own localhost certificate. Renewal therefore means a new CA (and re-running
//! `certs install`); see `docs/security.md`.

pub mod inspect;
pub mod nofollow;
pub mod trust;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};

/// Leaf lifetime: Apple platforms reject TLS server certificates valid for more than 825 days,
/// even under a locally trusted root.
const LEAF_DAYS: i64 = 820;
/// The CA outlives the leaf; it can sign nothing once its key is gone, so this bounds nothing
/// but how long the trust entry stays meaningful.
const CA_DAYS: i64 = 825;
/// Warn this long before the leaf expires.
const RENEWAL_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

pub const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot create certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no usable PEM {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("refusing to install {path}: {source}")]
    Refused {
        path: PathBuf,
        source: inspect::CaCheckError,
    },
    #[error("{0}")]
    NoFollow(#[from] nofollow::NoFollowError),
    #[error(
        "{path} does not exist; run `softphone-bridge certs show` as the agent first (root never creates it)"
    )]
    Missing { path: PathBuf },
    #[error(
        "as root, `certs {command}` would write in a folder another user controls; run it as that user (in such a folder root only reads: `certs show`, `certs install --system`)"
    )]
    RootWouldWrite { command: &'static str },
}

/// Paths of the certificate files in `DATA_DIR/certs/`.
#[derive(Debug, Clone)]
pub struct CertPaths {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub leaf: PathBuf,
    pub key: PathBuf,
    pub about: PathBuf,
}

impl CertPaths {
    pub fn in_data_dir(data_dir: &Path) -> Self {
        let dir = data_dir.join("certs");
        Self {
            ca: dir.join("ca.pem"),
            leaf: dir.join("localhost.pem"),
            key: dir.join("localhost.key"),
            about: dir.join("about.json"),
            dir,
        }
    }
}

/// Facts about the current certificates, written beside them for `certs show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct About {
    pub created_unix: i64,
    pub leaf_not_after_unix: i64,
    pub ca_sha256: String,
}

/// Loaded certificates, ready to serve.
#[derive(Debug)]
pub struct LocalCerts {
    pub paths: CertPaths,
    pub ca: CertificateDer<'static>,
    pub leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    /// True when this call created them (trust must be installed anew).
    pub created: bool,
}

/// Loads the certificates, creating them when missing or no longer valid for the three names.
pub fn ensure(paths: &CertPaths) -> Result<LocalCerts, CertError> {
    if let Ok(certs) = load(paths) {
        let now = SystemTime::now();
        if verify_leaf(&certs, now).is_ok() {
            if verify_leaf(&certs, now + RENEWAL_WARNING).is_err() {
                tracing::warn!(
                    "the localhost certificate expires within 30 days; run `softphone-bridge certs renew` \
                     and then `softphone-bridge certs install`"
                );
            }
            return Ok(certs);
        }
        tracing::warn!("the localhost certificate is expired or invalid; creating a new CA");
    }
    generate(paths)?;
    let mut certs = load(paths)?;
    certs.created = true;
    Ok(certs)
}

/// Makes a new CA and leaf, replacing any existing files.
pub fn generate(paths: &CertPaths) -> Result<(), CertError> {
    create_private_dir(&paths.dir)?;
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    let mut ca_name = DistinguishedName::new();
    ca_name.push(DnType::CommonName, "softphone-bridge local CA");
    ca_name.push(
        DnType::OrganizationName,
        "softphone-bridge (this computer only)",
    );
    ca.distinguished_name = ca_name;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(CidrSubnet::V4([127, 0, 0, 1], [255; 4])),
            GeneralSubtree::IpAddress(CidrSubnet::V6(
                std::net::Ipv6Addr::LOCALHOST.octets(),
                [255; 16],
            )),
        ],
        excluded_subtrees: Vec::new(),
    });
    ca.not_before = now - time::Duration::hours(1);
    ca.not_after = now + time::Duration::days(CA_DAYS);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    let mut leaf_name = DistinguishedName::new();
    leaf_name.push(DnType::CommonName, "localhost");
    leaf.distinguished_name = leaf_name;
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = now - time::Duration::hours(1);
    leaf.not_after = now + time::Duration::days(LEAF_DAYS);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    // `issuer` (holding the CA key) is dropped at the end of this function and never written.

    write_private(&paths.key, leaf_key.serialize_pem().as_bytes())?;
    write_public(&paths.leaf, leaf_cert.pem().as_bytes())?;
    write_public(&paths.ca, ca_cert.pem().as_bytes())?;
    let about = About {
        created_unix: now.unix_timestamp(),
        leaf_not_after_unix: (now + time::Duration::days(LEAF_DAYS)).unix_timestamp(),
        ca_sha256: sha256_hex(ca_cert.der()),
    };
    // Owner-only: the fingerprint recorded here is what `certs install` checks the CA against.
    write_private(
        &paths.about,
        serde_json::to_string_pretty(&about)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    tracing::info!(ca = %paths.ca.display(), "created a new local CA and localhost certificate");
    Ok(())
}

pub fn load(paths: &CertPaths) -> Result<LocalCerts, CertError> {
    let read_cert = |path: &Path, what| {
        CertificateDer::from_pem_file(path).map_err(|_| CertError::Pem {
            path: path.to_owned(),
            what,
        })
    };
    let ca = read_cert(&paths.ca, "certificate")?;
    let leaf = read_cert(&paths.leaf, "certificate")?;
    let key = PrivateKeyDer::from_pem_file(&paths.key).map_err(|_| CertError::Pem {
        path: paths.key.clone(),
        what: "private key",
    })?;
    Ok(LocalCerts {
        paths: paths.clone(),
        ca,
        leaf,
        key,
        created: false,
    })
}

/// Checks the leaf chains to our CA and is valid for every local name at `when`.
pub fn verify_leaf(certs: &LocalCerts, when: SystemTime) -> Result<(), CertError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs.ca.clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
    let since_epoch = when
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    for name in LOCAL_NAMES {
        let server_name =
            ServerName::try_from(name).map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(
            &certs.leaf,
            &[],
            &server_name,
            &[],
            UnixTime::since_unix_epoch(since_epoch),
        )?;
    }
    Ok(())
}

/// The local CA as read from `DATA_DIR/certs/` without following links, with what it says and
/// the fingerprint recorded when it was made.
#[derive(Debug)]
pub struct CaOnDisk {
    pub path: PathBuf,
    /// The DER of the single certificate in `ca.pem`, or why it could not be read as one.
    pub facts: Result<(Vec<u8>, inspect::CaFacts), inspect::CaCheckError>,
    /// `ca_sha256` from `about.json`, when present and readable.
    pub recorded_sha256: Option<String>,
    about_path: PathBuf,
}

/// A CA that passed [`inspect::check`]: the only thing `certs install` installs, from memory.
#[derive(Debug, Clone)]
pub struct VerifiedCa {
    pub path: PathBuf,
    pub der: Vec<u8>,
    pub facts: inspect::CaFacts,
}

/// How [`CaOnDisk::read`] treats links on the way to the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Root reading a folder someone else controls: [`nofollow::NoFollowDir`] rules.
    Refuse,
    /// A user reading their own folder: their own links gain them nothing.
    Follow,
}

impl CaOnDisk {
    /// Reads `ca.pem` and `about.json`; writes nothing. With [`Links::Refuse`] through
    /// [`nofollow::NoFollowDir`]: no link is followed anywhere on the path from `/`, and only
    /// single-link regular files of the folder's owner are read.
    pub fn read(paths: &CertPaths, links: Links) -> Result<Self, CertError> {
        let (pem, about) = match links {
            Links::Refuse => {
                let dir = nofollow::NoFollowDir::open(&paths.dir)?;
                (dir.read("ca.pem")?, dir.read("about.json")?)
            }
            Links::Follow => {
                let read = |path: &Path| match std::fs::read(path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(CertError::Io {
                        path: path.to_owned(),
                        source,
                    }),
                };
                (read(&paths.ca)?, read(&paths.about)?)
            }
        };
        let Some(pem) = pem else {
            return Err(CertError::Missing {
                path: paths.ca.clone(),
            });
        };
        let recorded_sha256 = about
            .and_then(|bytes| serde_json::from_slice::<About>(&bytes).ok())
            .map(|about| about.ca_sha256);
        Ok(Self {
            path: paths.ca.clone(),
            facts: inspect::inspect_pem(&pem),
            recorded_sha256,
            about_path: paths.about.clone(),
        })
    }

    /// Whether this CA may be installed, and why not.
    pub fn verdict(&self) -> Result<(), inspect::CaCheckError> {
        match &self.facts {
            Ok((_, facts)) => {
                inspect::check(facts, self.recorded_sha256.as_deref(), &self.about_path)
            }
            Err(e) => Err(e.clone()),
        }
    }

    /// The CA, if it passes the check.
    pub fn verified(self) -> Result<VerifiedCa, CertError> {
        let refused = |source| CertError::Refused {
            path: self.path.clone(),
            source,
        };
        self.verdict().map_err(refused)?;
        let (der, facts) = self.facts.map_err(refused)?;
        Ok(VerifiedCa {
            path: self.path,
            der,
            facts,
        })
    }
}

impl VerifiedCa {
    /// The verified certificate, PEM-encoded from the DER that was checked (never the file's
    /// bytes, which might hold more than the one certificate).
    pub fn pem(&self) -> String {
        use base64::Engine;
        let body = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }
}

impl LocalCerts {
    /// The TLS server configuration for the API (HTTP/1.1 only: WebSocket upgrades need it).
    pub fn server_config(&self) -> Result<rustls::ServerConfig, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.leaf.clone(), self.ca.clone()],
                self.key.clone_key(),
            )?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    pub fn ca_sha256(&self) -> String {
        sha256_hex(&self.ca)
    }
}

/// The TLS setup for IT's own localhost certificate (`[api] tls_cert`, `tls_key`): a PEM chain,
/// leaf first, from IT's PKI that browsers already trust, and its private key.
pub fn server_config_from_files(
    cert: &Path,
    key: &Path,
) -> Result<rustls::ServerConfig, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|_| CertError::Pem {
            path: cert.to_owned(),
            what: "certificate",
        })?
        .collect::<Result<_, _>>()
        .map_err(|_| CertError::Pem {
            path: cert.to_owned(),
            what: "certificate",
        })?;
    if chain.is_empty() {
        return Err(CertError::Pem {
            path: cert.to_owned(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|_| CertError::Pem {
        path: key.to_owned(),
        what: "private key",
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

pub fn sha256_hex(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn create_private_dir(dir: &Path) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: dir.to_owned(),
        source,
    };
    if let Some(tightened) = crate::private_files::create_dir(dir).map_err(|e| io(e.source))? {
        tightened.warn();
    }
    Ok(())
}

/// Certificates are public, but like every file the daemon writes they are owner-only.
fn write_public(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    write_private(path, bytes)
}

/// Writes a file only its owner can read, created with that mode so it is never readable by
/// others, not even for a moment.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    crate::private_files::write_atomic(path, bytes).map_err(|e| CertError::Io {
        path: e.path,
        source: e.source,
    })
}

#[cfg(test)]
mod tests;
