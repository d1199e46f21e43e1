//! What a CA certificate really says, and the check that it is one we may install.
//!
//! `certs show` prints [`CaFacts`] as read from the certificate; `certs install` installs only a
//! certificate [`check`] accepts: a CA (`basicConstraints CA:TRUE`) whose **critical** name
//! constraints permit exactly `DNS localhost`, `IP 127.0.0.1/32` and `IP ::1/128`, and whose
//! SHA-256 fingerprint is the one recorded in `about.json` when this install made it.
//!
//! Why a recorded fingerprint and not the CA key: the key is thrown away right after signing the
//! localhost certificate (that is the point of the design), so nothing can be matched against
//! it later. The fingerprint is written, owner-only, at the moment the CA is made. It lives in the
//! agent's folder, so it tells apart *our* CA from a stray or swapped file, but an agent who
//! controls that folder can forge both; what holds even then is the name-constraint check: a CA
//! that passes can vouch for `localhost`, `127.0.0.1` and `::1` and for no other DNS name or IP.

use std::net::{Ipv4Addr, Ipv6Addr};

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use super::sha256_hex;

/// One permitted (or excluded) subtree of a name-constraints extension, as the certificate says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subtree {
    Dns(String),
    Ipv4 {
        address: Ipv4Addr,
        mask: Ipv4Addr,
    },
    Ipv6 {
        address: Ipv6Addr,
        mask: Ipv6Addr,
    },
    /// Any other kind of name (e-mail, URI, directory name…), described for display.
    Other(String),
}

impl std::fmt::Display for Subtree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(name) => write!(f, "DNS {name}"),
            Self::Ipv4 { address, mask } => match prefix_len(&mask.octets()) {
                Some(len) => write!(f, "IP {address}/{len}"),
                None => write!(f, "IP {address} mask {mask}"),
            },
            Self::Ipv6 { address, mask } => match prefix_len(&mask.octets()) {
                Some(len) => write!(f, "IP {address}/{len}"),
                None => write!(f, "IP {address} mask {mask}"),
            },
            Self::Other(what) => f.write_str(what),
        }
    }
}

/// The name-constraints extension as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameConstraintsFound {
    pub critical: bool,
    pub permitted: Vec<Subtree>,
    pub excluded: Vec<Subtree>,
}

/// What a certificate says about itself: the facts `certs show` prints.
#[derive(Debug, Clone)]
pub struct CaFacts {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub sha256: String,
    /// `Some(path_len)` when basicConstraints says CA:TRUE.
    pub ca: Option<Option<u32>>,
    pub name_constraints: Option<NameConstraintsFound>,
}

/// Why a CA certificate may not be installed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CaCheckError {
    #[error("the file holds {found} certificates; exactly one (the CA) is expected")]
    NotOneCertificate { found: usize },
    #[error("not a readable X.509 certificate: {0}")]
    Unparsable(#[from] x509_parser::error::X509Error),
    #[error("the certificate has trailing bytes after its DER encoding")]
    TrailingBytes,
    #[error("the certificate is not a CA (basicConstraints CA:TRUE is missing)")]
    NotCa,
    #[error("the CA carries no name constraints: it could vouch for any web site")]
    NoNameConstraints,
    #[error("the CA's name constraints are not marked critical: some verifiers would ignore them")]
    NameConstraintsNotCritical,
    #[error("the CA's name constraints permit {name}, beyond localhost, 127.0.0.1 and ::1")]
    PermitsOtherName { name: String },
    #[error(
        "the CA's name constraints do not permit {name} (expected exactly localhost, 127.0.0.1/32, ::1/128)"
    )]
    MissingPermittedName { name: &'static str },
    #[error(
        "no fingerprint was recorded when this install made its CA ({path}); run `softphone-bridge certs renew` as the agent"
    )]
    NoRecord { path: std::path::PathBuf },
    #[error(
        "this is not the CA this install made: its SHA-256 is {found}, the one recorded at creation is {recorded}"
    )]
    NotThisInstall { found: String, recorded: String },
}

/// Reads the facts of the single certificate in `pem`.
pub fn inspect_pem(pem: &[u8]) -> Result<(Vec<u8>, CaFacts), CaCheckError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem).collect();
    let [Ok(der)] = certs.as_slice() else {
        return Err(CaCheckError::NotOneCertificate { found: certs.len() });
    };
    let der = der.as_ref().to_vec();
    let facts = inspect(&der)?;
    Ok((der, facts))
}

/// Reads the facts of one DER certificate.
pub fn inspect(der: &[u8]) -> Result<CaFacts, CaCheckError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| match e {
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => {
            CaCheckError::Unparsable(e)
        }
        x509_parser::nom::Err::Incomplete(_) => {
            CaCheckError::Unparsable(x509_parser::error::X509Error::InvalidCertificate)
        }
    })?;
    if !rest.is_empty() {
        return Err(CaCheckError::TrailingBytes);
    }
    let ca = cert
        .basic_constraints()?
        .filter(|bc| bc.value.ca)
        .map(|bc| bc.value.path_len_constraint);
    let name_constraints = cert.name_constraints()?.map(|nc| NameConstraintsFound {
        critical: nc.critical,
        permitted: subtrees(nc.value.permitted_subtrees.as_deref()),
        excluded: subtrees(nc.value.excluded_subtrees.as_deref()),
    });
    let validity = cert.validity();
    Ok(CaFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: date(validity.not_before.timestamp()),
        not_after: date(validity.not_after.timestamp()),
        sha256: sha256_hex(der),
        ca,
        name_constraints,
    })
}

/// The three subtrees our CA must permit, and nothing else.
fn required() -> [(&'static str, Subtree); 3] {
    [
        ("DNS localhost", Subtree::Dns("localhost".into())),
        (
            "IP 127.0.0.1/32",
            Subtree::Ipv4 {
                address: Ipv4Addr::LOCALHOST,
                mask: Ipv4Addr::BROADCAST,
            },
        ),
        (
            "IP ::1/128",
            Subtree::Ipv6 {
                address: Ipv6Addr::LOCALHOST,
                mask: Ipv6Addr::from([0xff; 16]),
            },
        ),
    ]
}

/// DNS names compare without regard to ASCII case; everything else exactly.
fn same(a: &Subtree, b: &Subtree) -> bool {
    match (a, b) {
        (Subtree::Dns(a), Subtree::Dns(b)) => a.eq_ignore_ascii_case(b),
        _ => a == b,
    }
}

/// Accepts only a localhost-constrained CA whose fingerprint is `recorded` (read from `record`,
/// the `about.json` written when the CA was made).
pub fn check(
    facts: &CaFacts,
    recorded: Option<&str>,
    record: &std::path::Path,
) -> Result<(), CaCheckError> {
    check_constraints(facts)?;
    let Some(recorded) = recorded else {
        return Err(CaCheckError::NoRecord {
            path: record.to_owned(),
        });
    };
    if !facts.sha256.eq_ignore_ascii_case(recorded) {
        return Err(CaCheckError::NotThisInstall {
            found: facts.sha256.clone(),
            recorded: recorded.to_owned(),
        });
    }
    Ok(())
}

/// The part of [`check`] that depends on the certificate alone.
pub fn check_constraints(facts: &CaFacts) -> Result<(), CaCheckError> {
    if facts.ca.is_none() {
        return Err(CaCheckError::NotCa);
    }
    let Some(constraints) = &facts.name_constraints else {
        return Err(CaCheckError::NoNameConstraints);
    };
    if !constraints.critical {
        return Err(CaCheckError::NameConstraintsNotCritical);
    }
    let required = required();
    if let Some(other) = constraints
        .permitted
        .iter()
        .find(|found| !required.iter().any(|(_, want)| same(found, want)))
    {
        return Err(CaCheckError::PermitsOtherName {
            name: other.to_string(),
        });
    }
    for (name, want) in &required {
        if !constraints.permitted.iter().any(|found| same(found, want)) {
            return Err(CaCheckError::MissingPermittedName { name });
        }
    }
    Ok(())
}

fn subtrees(list: Option<&[x509_parser::extensions::GeneralSubtree<'_>]>) -> Vec<Subtree> {
    list.unwrap_or_default()
        .iter()
        .map(|subtree| match &subtree.base {
            GeneralName::DNSName(name) => Subtree::Dns((*name).to_owned()),
            GeneralName::IPAddress(bytes) => ip_subtree(bytes),
            GeneralName::RFC822Name(name) => Subtree::Other(format!("e-mail {name}")),
            GeneralName::URI(uri) => Subtree::Other(format!("URI {uri}")),
            GeneralName::DirectoryName(name) => Subtree::Other(format!("directory name {name}")),
            other => Subtree::Other(format!("{other:?}")),
        })
        .collect()
}

fn ip_subtree(bytes: &[u8]) -> Subtree {
    if let Ok([a, b, c, d, m0, m1, m2, m3]) = <[u8; 8]>::try_from(bytes) {
        return Subtree::Ipv4 {
            address: Ipv4Addr::new(a, b, c, d),
            mask: Ipv4Addr::new(m0, m1, m2, m3),
        };
    }
    if let Ok(both) = <[u8; 32]>::try_from(bytes) {
        let (address, mask) = both.split_at(16);
        let v6 = |half: &[u8]| <[u8; 16]>::try_from(half).map(Ipv6Addr::from);
        if let (Ok(address), Ok(mask)) = (v6(address), v6(mask)) {
            return Subtree::Ipv6 { address, mask };
        }
    }
    Subtree::Other(format!("IP subtree of {} bytes (malformed)", bytes.len()))
}

/// The prefix length of a contiguous netmask, `None` when the mask is not contiguous.
fn prefix_len(mask: &[u8]) -> Option<u32> {
    let ones: u32 = mask.iter().map(|b| b.count_ones()).sum();
    let contiguous = mask
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1 == 1))
        .skip_while(|bit| *bit)
        .all(|bit| !bit);
    contiguous.then_some(ones)
}

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| {
            format!(
                "{} {:02}:{:02}:{:02} UTC",
                t.date(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_else(|_| format!("unix time {unix}"))
}
