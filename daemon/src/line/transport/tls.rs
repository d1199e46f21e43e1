//! Which server certificates the line accepts over TLS and WSS.
//!
//! - `[account] tls_fingerprint = "sha256:…"`: exactly the certificate with that SHA-256, whatever
//!   its issuer, CA flag, validity dates or names. The admin pinned it; the pin is the server's
//!   identity, so neither `ca_file` nor the system roots nor the host name is consulted.
//! - `ca_file` holding exactly one certificate: the server may present exactly that certificate
//!   (byte for byte; like a pin, its issuer, flags, dates and names are not checked). Many PBXs serve a self-signed one made by `openssl req -x509`, which marks it `CA:TRUE`, and
//!   webpki refuses a CA certificate as an end entity (`CaUsedAsEndEntity`) even when it is the
//!   trust anchor itself. Any other certificate must verify against it as today.
//! - Otherwise (several certificates in `ca_file`, or the system roots): webpki, by host name,
//!   unchanged.
//!
//! In every case the handshake's signature is checked with the ring provider's algorithms, so
//! the server must hold the private key of the certificate it presented: a copy of a public
//! certificate is not enough.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

/// A certificate's SHA-256: what `[account] tls_fingerprint` pins, and what errors print about
/// the certificate a server presented (a certificate is public, so is its digest). Written as
/// OpenSSL prints it (`openssl x509 -noout -fingerprint -sha256`), after `sha256:`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CertFingerprint([u8; 32]);

/// Why a `tls_fingerprint` value is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    #[error("must start with \"sha256:\" (the only digest accepted)")]
    NotSha256,
    #[error("{0:?} is not a hex digit")]
    NotHex(char),
    #[error("colons may only separate bytes (AB:CD:…)")]
    MisplacedColon,
    #[error("a SHA-256 has 64 hex digits, this has {0}")]
    Length(usize),
}

/// How the line decides to trust the server's certificate (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    pub pin: Option<CertFingerprint>,
    pub ca_file: Option<&'a Path>,
}

/// Why a TLS connection to the SIP server could not be set up or was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read ca_file {path}: {source}")]
    ReadCaFile {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("ca_file {path}: {source}")]
    BadCaFile {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("ca_file {0} holds no certificate")]
    EmptyCaFile(PathBuf),
    #[error("no trusted CA certificates (set [account] ca_file or tls_fingerprint)")]
    NoRoots,
    #[error("the TLS settings are refused: {0}")]
    Settings(rustls::Error),
    #[error("cannot verify certificates: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
    #[error("{0:?} is not a valid server name")]
    ServerName(String),
    /// The server's certificate is not the one the admin pinned (see [`Rejection`]).
    #[error("{server}: {source}")]
    Rejected {
        server: String,
        source: Box<Rejection>,
    },
    #[error("handshake with {server}: {source}")]
    Handshake {
        server: String,
        source: std::io::Error,
    },
}

/// A certificate refused because it is not the one pinned by `tls_fingerprint`, or not the only
/// certificate in `ca_file` (nor signed by it). Both print the presented certificate's
/// fingerprint so IT can fix the config. Carried through rustls as `CertificateError::Other` and
/// taken back out by [`TlsError::from_handshake`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum Rejection {
    #[error(
        "the server's certificate does not match the pinned one ([account] tls_fingerprint = \"{pinned}\"); it presented {presented}"
    )]
    PinMismatch {
        pinned: CertFingerprint,
        presented: CertFingerprint,
    },
    #[error(
        "the server's certificate ({presented}) is not the certificate in {} and does not verify against it: {cause}",
        ca_file.display()
    )]
    NotTheCaFileCertificate {
        ca_file: PathBuf,
        presented: CertFingerprint,
        cause: rustls::Error,
    },
}

impl CertFingerprint {
    /// The SHA-256 of a DER certificate.
    pub fn of(certificate: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, certificate);
        let mut bytes = [0u8; 32];
        // SHA-256 digests are 32 bytes.
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }

    /// `sha256:` and 64 hex digits (either case), optionally with a colon between bytes, as
    /// OpenSSL prints them.
    pub fn parse(text: &str) -> Result<Self, FingerprintError> {
        let text = text.trim();
        let hex = text
            .get(..7)
            .filter(|prefix| prefix.eq_ignore_ascii_case("sha256:"))
            .and_then(|_| text.get(7..))
            .ok_or(FingerprintError::NotSha256)?;
        let mut digits = Vec::with_capacity(64);
        let mut after_colon = false;
        for c in hex.chars() {
            if c == ':' {
                if digits.is_empty() || digits.len() % 2 != 0 || after_colon {
                    return Err(FingerprintError::MisplacedColon);
                }
                after_colon = true;
                continue;
            }
            let digit = c.to_digit(16).ok_or(FingerprintError::NotHex(c))?;
            digits.push(digit as u8);
            after_colon = false;
        }
        if after_colon {
            return Err(FingerprintError::MisplacedColon);
        }
        if digits.len() != 64 {
            return Err(FingerprintError::Length(digits.len()));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (pair[0] << 4) | pair[1];
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl TlsError {
    /// A failed handshake, with a refused pin taken out of rustls's error so the line can say so.
    pub fn from_handshake(server: &str, error: std::io::Error) -> Self {
        let rejection = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .and_then(|tls| match tls {
                rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                    other.0.downcast_ref::<Rejection>().cloned().map(Box::new)
                }
                _ => None,
            });
        match rejection {
            Some(source) => Self::Rejected {
                server: server.to_owned(),
                source,
            },
            None => Self::Handshake {
                server: server.to_owned(),
                source: error,
            },
        }
    }
}

/// TLS client settings for the SIP server (ring only), trusting what `trust` says.
pub fn client_config(trust: Trust<'_>) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinningVerifier::new(trust, &provider)?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Settings)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// The name the certificate must carry (ignored when pinned), from a host or `[v6]` literal.
pub fn server_name(server: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(server.trim_matches(['[', ']']).to_owned())
        .map_err(|_| TlsError::ServerName(server.to_owned()))
}

#[derive(Debug)]
struct PinningVerifier {
    rule: Rule,
    /// The provider's signature algorithms, for the handshake signatures in every case.
    algorithms: WebPkiSupportedAlgorithms,
}

#[derive(Debug)]
enum Rule {
    Pinned(CertFingerprint),
    WebPki {
        verifier: Arc<WebPkiServerVerifier>,
        /// `ca_file` when it holds exactly one certificate: that certificate is accepted as
        /// presented.
        only: Option<(PathBuf, CertificateDer<'static>)>,
    },
}

impl PinningVerifier {
    fn new(trust: Trust<'_>, provider: &Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let algorithms = provider.signature_verification_algorithms;
        if let Some(pin) = trust.pin {
            return Ok(Self {
                rule: Rule::Pinned(pin),
                algorithms,
            });
        }
        let mut roots = rustls::RootCertStore::empty();
        let mut only = None;
        match trust.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|source| TlsError::ReadCaFile {
                        path: path.to_owned(),
                        source,
                    })?;
                if let [single] = certs.as_slice() {
                    only = Some((path.to_owned(), single.clone()));
                }
                for cert in certs {
                    roots.add(cert).map_err(|source| TlsError::BadCaFile {
                        path: path.to_owned(),
                        source,
                    })?;
                }
                if roots.is_empty() {
                    return Err(TlsError::EmptyCaFile(path.to_owned()));
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                for cert in native.certs {
                    // One unusable system certificate must not cost the others.
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(TlsError::NoRoots);
                }
            }
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()?;
        Ok(Self {
            rule: Rule::WebPki { verifier, only },
            algorithms,
        })
    }
}

fn reject(rejection: Rejection) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(rejection))))
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.rule {
            Rule::Pinned(pinned) => {
                let presented = CertFingerprint::of(end_entity);
                if presented == *pinned {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(reject(Rejection::PinMismatch {
                        pinned: *pinned,
                        presented,
                    }))
                }
            }
            Rule::WebPki { verifier, only } => {
                if let Some((_, certificate)) = only
                    && certificate.as_ref() == end_entity.as_ref()
                {
                    return Ok(ServerCertVerified::assertion());
                }
                verifier
                    .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                    .map_err(|cause| match only {
                        Some((ca_file, _)) => reject(Rejection::NotTheCaFileCertificate {
                            ca_file: ca_file.clone(),
                            presented: CertFingerprint::of(end_entity),
                            cause,
                        }),
                        None => cause,
                    })
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::server::{ClientHello, ResolvesServerCert};
    use rustls::sign::CertifiedKey;

    /// A certificate for 127.0.0.1 and localhost, with its key.
    struct Made {
        der: CertificateDer<'static>,
        pem: String,
        key: KeyPair,
    }

    /// Self-signed and `CA:TRUE`, like `openssl req -x509` makes.
    fn self_signed_ca() -> Made {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("certificate");
        Made {
            der: cert.der().clone(),
            pem: cert.pem(),
            key,
        }
    }

    /// A leaf for `names`, signed by a new CA; returns (the CA's PEM, leaf).
    fn ca_and_leaf(names: &[&str]) -> (String, Made) {
        let ca_key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).expect("CA").pem();
        let issuer = Issuer::new(params, ca_key);
        let key = KeyPair::generate().expect("key");
        let names = names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let leaf = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("leaf");
        let leaf = Made {
            der: leaf.der().clone(),
            pem: leaf.pem(),
            key,
        };
        (ca, leaf)
    }

    fn ca_file(dir: &tempfile::TempDir, pems: &[&str]) -> PathBuf {
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, pems.concat()).expect("ca_file");
        path
    }

    fn verifier(trust: Trust<'_>) -> PinningVerifier {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        PinningVerifier::new(trust, &provider).expect("verifier")
    }

    fn verify(
        verifier: &PinningVerifier,
        presented: &Made,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let name = ServerName::try_from(name.to_owned()).expect("name");
        verifier
            .verify_server_cert(&presented.der, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    /// Serves `certificate` but signs the handshake with `key` (normally its own).
    #[derive(Debug)]
    struct Serve(Arc<CertifiedKey>);

    impl ResolvesServerCert for Serve {
        fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    /// A real handshake in memory, the server on `version`, the client as the line makes it.
    async fn handshake(
        certificate: &Made,
        key: &KeyPair,
        version: &'static rustls::SupportedProtocolVersion,
        trust: Trust<'_>,
        name: &str,
    ) -> Result<(), TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                key.serialize_der(),
            )))
            .expect("signing key");
        let served = CertifiedKey::new(vec![certificate.der.clone()], signing);
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .expect("versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Serve(Arc::new(served))));
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let serving = tokio::spawn(async move { acceptor.accept(server_io).await.map(|_| ()) });
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(trust)?));
        let result = connector
            .connect(server_name(name)?, client_io)
            .await
            .map(|_| ())
            .map_err(|e| TlsError::from_handshake(name, e));
        let _ = serving.await;
        result
    }

    const VERSIONS: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS12, &rustls::version::TLS13];

    #[test]
    fn fingerprints_parse_as_openssl_prints_them_and_nothing_else() {
        let bytes: Vec<u8> = (0u8..32).map(|i| i * 7).collect();
        let colons = bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let plain = colons.replace(':', "").to_ascii_lowercase();
        let parsed = CertFingerprint::parse(&format!("sha256:{colons}")).expect("openssl form");
        assert_eq!(parsed.0.as_slice(), bytes.as_slice());
        assert_eq!(
            parsed.to_string(),
            format!("sha256:{colons}"),
            "prints as it parses"
        );
        assert_eq!(
            CertFingerprint::parse(&format!(" SHA256:{plain} ")),
            Ok(parsed)
        );
        for (text, error) in [
            (colons.clone(), FingerprintError::NotSha256),
            (format!("sha1:{colons}"), FingerprintError::NotSha256),
            (
                format!("sha256:{}", &plain[..62]),
                FingerprintError::Length(62),
            ),
            (format!("sha256:{plain}00"), FingerprintError::Length(66)),
            (
                format!("sha256:{}g", &plain[..63]),
                FingerprintError::NotHex('g'),
            ),
            (
                format!("sha256::{colons}"),
                FingerprintError::MisplacedColon,
            ),
            (
                format!("sha256:{colons}:"),
                FingerprintError::MisplacedColon,
            ),
            (
                format!("sha256:{}", colons.replacen(':', "::", 1)),
                FingerprintError::MisplacedColon,
            ),
            (
                format!("sha256:0{}", &colons[..colons.len() - 1]),
                FingerprintError::MisplacedColon,
            ),
        ] {
            assert_eq!(CertFingerprint::parse(&text), Err(error), "{text}");
        }
    }

    /// The pin alone decides: a `CA:TRUE` self-signed certificate, reached by a name it does not
    /// carry, with no `ca_file` and whatever the system trusts, over TLS 1.2 and 1.3.
    #[tokio::test]
    async fn the_pinned_certificate_is_accepted_whatever_its_issuer_flag_and_names() {
        let pbx = self_signed_ca();
        let pin = Some(CertFingerprint::of(&pbx.der));
        for version in VERSIONS {
            let trust = Trust { pin, ca_file: None };
            handshake(&pbx, &pbx.key, version, trust, "elsewhere.example")
                .await
                .expect("pinned certificate accepted");
        }
    }

    #[tokio::test]
    async fn another_certificate_fails_the_pin_and_the_error_names_both() {
        let pbx = self_signed_ca();
        let pinned = CertFingerprint::of(&self_signed_ca().der);
        for version in VERSIONS {
            let trust = Trust {
                pin: Some(pinned),
                ca_file: None,
            };
            let error = handshake(&pbx, &pbx.key, version, trust, "localhost")
                .await
                .expect_err("not the pinned certificate");
            match &error {
                TlsError::Rejected { source, .. } => match source.as_ref() {
                    Rejection::PinMismatch {
                        pinned: p,
                        presented,
                    } => {
                        assert_eq!((*p, *presented), (pinned, CertFingerprint::of(&pbx.der)))
                    }
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            }
            let text = error.to_string();
            assert!(text.contains("does not match the pinned one"), "{text}");
        }
    }

    /// A copy of the public certificate is not enough: the server must sign the handshake with
    /// its key.
    #[tokio::test]
    async fn the_pinned_certificate_without_its_private_key_is_refused() {
        let pbx = self_signed_ca();
        let impostor = KeyPair::generate().expect("key");
        for version in VERSIONS {
            let trust = Trust {
                pin: Some(CertFingerprint::of(&pbx.der)),
                ca_file: None,
            };
            let error = handshake(&pbx, &impostor, version, trust, "localhost")
                .await
                .expect_err("signature by another key");
            assert!(matches!(error, TlsError::Handshake { .. }), "{error:?}");
        }
    }

    /// What `openssl req -x509` makes, given as the only certificate in `ca_file`: accepted when
    /// presented, where webpki alone (the line before) refused it as `CaUsedAsEndEntity`.
    #[tokio::test]
    async fn the_only_certificate_in_ca_file_is_accepted_when_presented() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pbx = self_signed_ca();
        let path = ca_file(&dir, &[&pbx.pem]);
        let trust = Trust {
            pin: None,
            ca_file: Some(&path),
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pbx.der.clone()).expect("root");
        let webpki = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .expect("webpki");
        let refused = webpki
            .verify_server_cert(
                &pbx.der,
                &[],
                &ServerName::try_from("localhost").expect("name"),
                &[],
                UnixTime::now(),
            )
            .expect_err("webpki refuses a CA as end entity");
        assert!(
            format!("{refused:?}").contains("CaUsedAsEndEntity"),
            "{refused:?}"
        );

        assert_eq!(verify(&verifier(trust), &pbx, "localhost"), Ok(()));
        for version in VERSIONS {
            handshake(&pbx, &pbx.key, version, trust, "127.0.0.1")
                .await
                .expect("the ca_file certificate");
        }
        let other = self_signed_ca();
        match verify(&verifier(trust), &other, "localhost") {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(e))) => {
                let text = e.to_string();
                assert!(
                    text.contains("is not the certificate in")
                        && text.contains(&CertFingerprint::of(&other.der).to_string()),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// A private CA in `ca_file` works as before: its leaves verify by name, others do not.
    #[test]
    fn a_private_ca_in_ca_file_still_verifies_leaves_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, leaf) = ca_and_leaf(&["pbx.example.com"]);
        let path = ca_file(&dir, &[&ca]);
        let trust = Trust {
            pin: None,
            ca_file: Some(&path),
        };
        assert_eq!(verify(&verifier(trust), &leaf, "pbx.example.com"), Ok(()));
        assert!(verify(&verifier(trust), &leaf, "other.example.com").is_err());
        let (_, stranger) = ca_and_leaf(&["pbx.example.com"]);
        assert!(verify(&verifier(trust), &stranger, "pbx.example.com").is_err());
    }

    /// Exactly one certificate, or no exact match: a bundle stays a list of CAs.
    #[test]
    fn a_bundle_in_ca_file_accepts_no_certificate_as_presented() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pbx = self_signed_ca();
        let (ca, _) = ca_and_leaf(&["pbx.example.com"]);
        let path = ca_file(&dir, &[&ca, &pbx.pem]);
        let trust = Trust {
            pin: None,
            ca_file: Some(&path),
        };
        assert!(verify(&verifier(trust), &pbx, "localhost").is_err());
    }
}
