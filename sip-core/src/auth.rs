//! Digest authentication for SIP (RFC 3261 §22, RFC 8760): MD5, SHA-256 and SHA-512-256 (and
//! their `-sess` forms), with `qop=auth`, `qop=auth-int` or no qop, answering 401
//! (`WWW-Authenticate` → `Authorization`) and 407 (`Proxy-Authenticate` → `Proxy-Authorization`).

use md5::Digest as _;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("not a Digest challenge")]
    NotDigest,
    #[error("challenge lacks `{0}`")]
    Missing(&'static str),
    #[error("unsupported digest algorithm {0:?}")]
    Algorithm(String),
    #[error("challenge offers no usable qop ({0:?})")]
    Qop(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    Md5,
    Sha256,
    Sha512_256,
}

impl Algorithm {
    fn parse(token: &str) -> Result<(Self, bool), AuthError> {
        let upper = token.trim().to_ascii_uppercase();
        let (name, sess) = match upper.strip_suffix("-SESS") {
            Some(name) => (name.to_owned(), true),
            None => (upper.clone(), false),
        };
        let algorithm = match name.as_str() {
            "MD5" => Self::Md5,
            "SHA-256" => Self::Sha256,
            "SHA-512-256" => Self::Sha512_256,
            _ => {
                return Err(AuthError::Algorithm(
                    token.trim().chars().take(32).collect(),
                ));
            }
        };
        Ok((algorithm, sess))
    }

    fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
            Self::Sha512_256 => "SHA-512-256",
        }
    }

    /// Lower-case hex digest.
    fn hash(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Self::Md5 => md5::Md5::digest(data.as_bytes()).to_vec(),
            Self::Sha256 => ring::digest::digest(&ring::digest::SHA256, data.as_bytes())
                .as_ref()
                .to_vec(),
            Self::Sha512_256 => ring::digest::digest(&ring::digest::SHA512_256, data.as_bytes())
                .as_ref()
                .to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    None,
    Auth,
    AuthInt,
}

/// One parsed `WWW-Authenticate` / `Proxy-Authenticate` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    pub sess: bool,
    pub qop: Qop,
    /// The nonce expired but the credentials were right: retry without asking the user.
    pub stale: bool,
}

impl Challenge {
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let value = value.trim();
        let (scheme, rest) = value
            .split_once(char::is_whitespace)
            .ok_or(AuthError::NotDigest)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::NotDigest);
        }
        let params = auth_params(rest);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let (algorithm, sess) = match get("algorithm") {
            Some(a) => Algorithm::parse(&a)?,
            None => (Algorithm::Md5, false),
        };
        let qop = match get("qop") {
            None => Qop::None,
            Some(list) => {
                let offered: Vec<String> = list
                    .split(',')
                    .map(|q| q.trim().to_ascii_lowercase())
                    .collect();
                if offered.iter().any(|q| q == "auth") {
                    Qop::Auth
                } else if offered.iter().any(|q| q == "auth-int") {
                    Qop::AuthInt
                } else {
                    return Err(AuthError::Qop(list.chars().take(32).collect()));
                }
            }
        };
        Ok(Self {
            realm: get("realm").ok_or(AuthError::Missing("realm"))?,
            nonce: get("nonce").ok_or(AuthError::Missing("nonce"))?,
            opaque: get("opaque"),
            algorithm,
            sess,
            qop,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Of several challenges (RFC 8760 §2.4: one per algorithm), the strongest we support.
    pub fn pick<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Self, AuthError> {
        let mut best: Option<Self> = None;
        let mut last_error = AuthError::NotDigest;
        for value in values {
            match Self::parse(value) {
                Ok(c) if best.as_ref().is_none_or(|b| c.algorithm > b.algorithm) => best = Some(c),
                Ok(_) => {}
                Err(e) => last_error = e,
            }
        }
        best.ok_or(last_error)
    }

    /// The `Authorization` (or `Proxy-Authorization`) header value answering this challenge.
    /// `cnonce` must be fresh and random per request; `nc` counts uses of this nonce from 1.
    pub fn answer(&self, request: &DigestRequest<'_>, cnonce: &str, nc: u32) -> String {
        let a = self.algorithm;
        let mut ha1 = a.hash(&format!(
            "{}:{}:{}",
            request.username, self.realm, request.password
        ));
        if self.sess {
            ha1 = a.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = match self.qop {
            Qop::AuthInt => a.hash(&format!(
                "{}:{}:{}",
                request.method,
                request.uri,
                a.hash(&String::from_utf8_lossy(request.body))
            )),
            _ => a.hash(&format!("{}:{}", request.method, request.uri)),
        };
        let nc = format!("{nc:08x}");
        let (response, qop) = match self.qop {
            Qop::None => (a.hash(&format!("{ha1}:{}:{ha2}", self.nonce)), None),
            Qop::Auth => (
                a.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce)),
                Some("auth"),
            ),
            Qop::AuthInt => (
                a.hash(&format!(
                    "{ha1}:{}:{nc}:{cnonce}:auth-int:{ha2}",
                    self.nonce
                )),
                Some("auth-int"),
            ),
        };
        let algorithm = if self.sess {
            format!("{}-sess", a.name())
        } else {
            a.name().to_owned()
        };
        let mut header = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\", algorithm={algorithm}",
            quote(request.username),
            quote(&self.realm),
            quote(&self.nonce),
            request.uri
        );
        if let Some(qop) = qop {
            header.push_str(&format!(
                ", qop={qop}, nc={nc}, cnonce=\"{}\"",
                quote(cnonce)
            ));
        }
        if let Some(opaque) = &self.opaque {
            header.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        header
    }
}

/// What is being authenticated. `password` is used for hashing only and never formatted.
pub struct DigestRequest<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `k=v, k="v, with comma"` → pairs, unquoting values.
fn auth_params(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        pairs.push((key, value));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(header: &str, name: &str) -> String {
        auth_params(header.trim_start_matches("Digest "))
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    #[test]
    fn rfc_2617_md5_vector() {
        let c = Challenge::parse(r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#).expect("parses");
        assert_eq!(
            (c.algorithm, c.qop, c.sess),
            (Algorithm::Md5, Qop::Auth, false)
        );
        let request = DigestRequest {
            username: "Mufasa",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
        };
        let header = c.answer(&request, "0a4f113b", 1);
        assert_eq!(get(&header, "response"), "6629fae49393a05397450978507c4ef1");
        assert_eq!(get(&header, "nc"), "00000001");
        assert_eq!(get(&header, "opaque"), "5ccc069c403ebaf9f0171e9517f40e41");
    }

    #[test]
    fn rfc_7616_sha256_and_md5_vectors() {
        let request = DigestRequest {
            username: "Mufasa",
            password: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
        };
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let base = r#"realm="http-auth@example.org", qop="auth, auth-int", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let sha = Challenge::parse(&format!("Digest algorithm=SHA-256, {base}")).expect("sha-256");
        assert_eq!(
            get(&sha.answer(&request, cnonce, 1), "response"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        let md5 = Challenge::parse(&format!("Digest algorithm=MD5, {base}")).expect("md5");
        assert_eq!(
            get(&md5.answer(&request, cnonce, 1), "response"),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn picks_the_strongest_offered_algorithm() {
        let offered = [
            r#"Digest realm="r", nonce="n", algorithm=MD5, qop="auth""#,
            r#"Digest realm="r", nonce="n", algorithm=SHA-512-256, qop="auth""#,
            r#"Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth""#,
            r#"Digest realm="r", nonce="n", algorithm=FANCY-9000"#,
        ];
        assert_eq!(
            Challenge::pick(offered).map(|c| c.algorithm),
            Ok(Algorithm::Sha512_256)
        );
        let header = Challenge::pick(offered).expect("pick").answer(
            &DigestRequest {
                username: "1001",
                password: "p",
                method: "REGISTER",
                uri: "sip:127.0.0.1",
                body: b"",
            },
            "c",
            1,
        );
        assert!(
            header.contains("algorithm=SHA-512-256") && get(&header, "response").len() == 64,
            "{header}"
        );
    }

    #[test]
    fn no_qop_sess_and_errors() {
        let c = Challenge::parse(
            r#"Digest realm="asterisk",nonce="1a2b",algorithm=MD5-sess,stale=TRUE"#,
        )
        .expect("parses");
        assert!(c.sess && c.stale && c.qop == Qop::None);
        let header = c.answer(
            &DigestRequest {
                username: "u",
                password: "p",
                method: "INVITE",
                uri: "sip:x",
                body: b"",
            },
            "cn",
            1,
        );
        assert!(
            header.contains("algorithm=MD5-sess") && !header.contains("qop="),
            "{header}"
        );
        assert!(!header.contains("\"p\""), "the password never appears");
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(AuthError::NotDigest)
        );
        assert_eq!(
            Challenge::parse("Digest nonce=\"n\""),
            Err(AuthError::Missing("realm"))
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1"),
            Err(AuthError::Algorithm("SHA-1".into()))
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"other\""),
            Err(AuthError::Qop("other".into()))
        );
    }

    #[test]
    fn quoted_values_may_hold_commas_and_escapes() {
        let c = Challenge::parse(r#"Digest realm="a, \"b\"", nonce="x,y""#).expect("parses");
        assert_eq!((c.realm.as_str(), c.nonce.as_str()), ("a, \"b\"", "x,y"));
    }
}
