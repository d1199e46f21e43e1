//! One request to the platform's lead-archive endpoint (seed 001: `POST /vicidial/leads/archive`,
//! `Authorization: Key=…`, a JSON body) and what its answer means.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Serialize;

use super::journal::Counts;
use crate::config::Secret;

pub const PATH: &str = "/vicidial/leads/archive";
/// The most of an answer's body kept: the documented bodies are a few hundred bytes, a 400 for
/// 500 ids a few KB; a server cannot make us hold more.
const MAX_BODY: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(60);

/// What the request asks the platform to do with the ids, in its order: insert → update → delete.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Steps {
    pub insert_leads: bool,
    pub update_leads: bool,
    pub delete_leads: bool,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(flatten)]
    steps: Steps,
    lead_ids: &'a [i64],
}

/// The platform's answer, by the documented status codes.
#[derive(Debug)]
pub enum Answer {
    /// 200: the batch was processed.
    Processed(Counts),
    /// 400: the batch was refused; the body as the server sent it.
    Rejected(String),
    /// 401: the key was not accepted.
    Unauthorized(String),
    /// 403: office hours.
    OfficeHours(String),
    /// 5xx: worth trying again.
    ServerError(u16, String),
    /// Anything else (a 404 from a wrong server address, a redirect, a 200 that is not the
    /// documented body).
    Unexpected(u16, String),
}

/// A request that got no answer.
#[derive(Debug)]
pub struct Unanswered {
    pub error: String,
    /// The request may have reached the platform (a time-out or a connection lost after
    /// sending): it may have processed the batch. Not so for a refused connection.
    pub maybe_sent: bool,
    /// The platform's certificate was refused: trying again cannot help.
    pub certificate: bool,
}

impl Unanswered {
    fn from(error: &reqwest::Error, sent: bool) -> Self {
        let error_text = crate::http::describe(error);
        // rustls' error is boxed several layers down (hyper, an io::Error) and does not
        // downcast from here; its words say it: "invalid peer certificate: …".
        let certificate = error_text.contains("invalid peer certificate");
        Self {
            error: error_text,
            maybe_sent: sent || !error.is_connect(),
            certificate,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "--server {0:?} is not a usable address: give https://host[:port] (http:// only for this machine, 127.0.0.1 or localhost), without a user or password in it"
    )]
    Url(String),
    #[error("cannot set up TLS for the platform: {0}")]
    Tls(#[from] crate::line::transport::tls::TlsError),
    #[error("cannot set up the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("the key cannot go in a header (it holds characters an HTTP header cannot)")]
    Key,
}

pub struct ArchiveClient {
    url: reqwest::Url,
    authorization: HeaderValue,
    client: reqwest::Client,
}

impl ArchiveClient {
    /// `server`: the platform's address as Service Delivery gives it (`https://host[:port]`,
    /// with or without the endpoint's path). Plain http only to this machine: the key would
    /// otherwise cross the network readable.
    pub fn new(server: &str, key: &Secret, ca_file: Option<&Path>) -> Result<Self, ClientError> {
        // Whatever was given, shown without a password it may hold.
        let shown = match server.rsplit_once('@') {
            Some((_, host)) => format!("…@{host}"),
            None => server.to_owned(),
        };
        let bad = || ClientError::Url(shown.clone());
        let mut url = reqwest::Url::parse(server.trim()).map_err(|_| bad())?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
        let usable = match url.scheme() {
            "https" => true,
            "http" => loopback,
            _ => false,
        };
        if !usable
            || url.host_str().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(bad());
        }
        let base = url.path().trim_end_matches('/').to_owned();
        if base.ends_with(PATH) {
            url.set_path(&base);
        } else {
            url.set_path(&format!("{base}{PATH}"));
        }
        url.set_query(None);
        url.set_fragment(None);
        let mut authorization = HeaderValue::from_str(&format!("Key={}", key.expose()))
            .map_err(|_| ClientError::Key)?;
        authorization.set_sensitive(true);
        let tls = crate::line::transport::tls::client_config(crate::line::transport::tls::Trust {
            pin: None,
            ca_file,
        })?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            // The key goes to the address given and nowhere else.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("softphone-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Client)?;
        Ok(Self {
            url,
            authorization,
            client,
        })
    }

    /// Where the requests go (no secret in it).
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// One batch. `Err` is a request that got no answer (connection, TLS, time-out).
    pub async fn send(&self, steps: Steps, ids: &[i64]) -> Result<Answer, Unanswered> {
        let body = serde_json::to_vec(&Body {
            steps,
            lead_ids: ids,
        })
        .unwrap_or_default();
        let mut response = self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Unanswered::from(&e, false))?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Unanswered::from(&e, true))?
        {
            let room = MAX_BODY.saturating_sub(bytes.len());
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(match status {
            200 => match serde_json::from_str::<Counts>(&text) {
                Ok(counts) => Answer::Processed(counts),
                Err(_) => Answer::Unexpected(status, text),
            },
            400 => Answer::Rejected(text),
            401 => Answer::Unauthorized(text),
            403 => Answer::OfficeHours(text),
            500..=599 => Answer::ServerError(status, text),
            _ => Answer::Unexpected(status, text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(server: &str) -> Result<ArchiveClient, ClientError> {
        ArchiveClient::new(server, &Secret::new("k"), None)
    }

    #[test]
    fn the_endpoint_path_is_added_once() {
        for given in [
            "https://dialer.example.com",
            "https://dialer.example.com/",
            "https://dialer.example.com/vicidial/leads/archive",
            "https://dialer.example.com/vicidial/leads/archive?x=1#y",
            "https://dialer.example.com/vicidial/leads/archive/",
        ] {
            assert_eq!(
                client(given).expect("ok").url().as_str(),
                "https://dialer.example.com/vicidial/leads/archive",
                "{given}"
            );
        }
        assert_eq!(
            client("https://dialer.example.com:8443/api")
                .expect("ok")
                .url()
                .as_str(),
            "https://dialer.example.com:8443/api/vicidial/leads/archive"
        );
    }

    #[test]
    fn the_key_never_crosses_the_network_in_clear() {
        for refused in [
            "http://dialer.example.com",
            "http://10.0.0.5:8080",
            "ftp://dialer.example.com",
            "dialer.example.com",
            "https://user:s3cret@dialer.example.com",
            "",
        ] {
            let error = client(refused).err().expect("refused");
            assert!(matches!(error, ClientError::Url(_)), "{refused}");
            assert!(!error.to_string().contains("s3cret"), "{error}");
        }
        for allowed in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert!(client(allowed).is_ok(), "{allowed}");
        }
    }

    #[test]
    fn a_key_that_cannot_be_a_header_is_refused_without_showing_it() {
        let error = ArchiveClient::new("https://d.example.com", &Secret::new("a\nb"), None)
            .err()
            .expect("ok");
        assert!(matches!(error, ClientError::Key));
        assert!(!error.to_string().contains("a\nb"));
    }

    #[test]
    fn the_body_is_the_documented_object() {
        let body = serde_json::to_value(Body {
            steps: Steps {
                insert_leads: true,
                update_leads: false,
                delete_leads: true,
            },
            lead_ids: &[0, 1],
        })
        .expect("ok");
        assert_eq!(
            body,
            serde_json::json!({"insert_leads": true, "update_leads": false, "delete_leads": true, "lead_ids": [0, 1]})
        );
    }
}
