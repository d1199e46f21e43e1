//! Notifications (issue 11, seed `002_…` "set notification endpoint") against a real HTTPS
//! endpoint written for the tests: every event POSTed in order and signed; nothing lost to an
//! endpoint that is down across a `kill -9`; an endpoint that fails, redirects or hangs is
//! retried with back-off and never followed.

mod common;
mod lab;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{CRM, Daemon, eventually};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "s3cret-for-hmac";

/// How the endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Ok,
    Status(u16),
    Redirect,
    Hang,
    /// 500 with a body that never ends: what a hostile or broken endpoint could send.
    Flood,
}

#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn seq(&self) -> u64 {
        self.header("X-Softphone-Seq")
            .and_then(|s| s.parse().ok())
            .expect("X-Softphone-Seq")
    }
}

/// An HTTPS endpoint on loopback that records every request.
struct Endpoint {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    mode: Arc<Mutex<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    async fn start(port: u16, certificate: &Path, key: &Path) -> Self {
        Self::start_with(
            port,
            certificate,
            key,
            Default::default(),
            Arc::new(Mutex::new(Mode::Ok)),
        )
        .await
    }

    async fn start_with(
        port: u16,
        certificate: &Path,
        key: &Path,
        received: Arc<Mutex<Vec<Received>>>,
        mode: Arc<Mutex<Mode>>,
    ) -> Self {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(certificate)
            .expect("cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("certs");
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (log, answer) = (Arc::clone(&received), Arc::clone(&mode));
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, log, answer) =
                    (acceptor.clone(), Arc::clone(&log), Arc::clone(&answer));
                connections.spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    serve(&mut tls, &log, &answer).await;
                });
            }
        });
        Self {
            port,
            received,
            mode,
            task,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("log").clone()
    }

    /// Stops listening and drops every connection: the endpoint is down.
    fn stop(self) -> (Arc<Mutex<Vec<Received>>>, Arc<Mutex<Mode>>) {
        self.task.abort();
        (self.received, self.mode)
    }
}

/// Reads requests off one connection and answers each as the mode says.
async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    log: &Mutex<Vec<Received>>,
    mode: &Mutex<Mode>,
) {
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if request.parse(&buffer[..head_end]).is_err() {
            return;
        }
        let path = request.path.unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
        buffer.drain(..head_end + length);
        log.lock().expect("log").push(Received {
            at: Instant::now(),
            path,
            headers,
            body,
        });
        let current = *mode.lock().expect("mode");
        let answer = match current {
            Mode::Ok => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_owned(),
            Mode::Status(status) => format!("HTTP/1.1 {status} Oops\r\nContent-Length: 5\r\n\r\noops!"),
            Mode::Redirect => "HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n".to_owned(),
            Mode::Hang => {
                std::future::pending::<()>().await;
                return;
            }
            Mode::Flood => {
                let head = "HTTP/1.1 500 Oops\r\nContent-Length: 10000000000\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                while stream.write_all(&chunk).await.is_ok() {}
                return;
            }
        };
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn config(port: u16, certificate: &Path, extra: &str) -> String {
    format!(
        "[demo]\nline = true\n[audio]\nbackend = \"file\"\n[notifications]\nurl = \"https://127.0.0.1:{port}/hook?token=t0ken-in-query\"\nsecret = \"{SECRET}\"\nca_file = \"{}\"\nretry_first_ms = 100\nretry_max_seconds = 1\n{extra}",
        certificate.display()
    )
}

fn certificate() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (certificate, key) = lab::openssl_self_signed(dir.path(), "endpoint");
    (dir, certificate, key)
}

/// HMAC-SHA256 of `text` by OpenSSL, independently of the daemon's code.
fn openssl_hmac(text: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", SECRET])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("openssl runs");
    String::from_utf8_lossy(&out.stdout)
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_posted_signed_in_order_and_none_is_lost_to_a_kill_9_while_the_endpoint_is_down()
{
    let (_certs, certificate, key) = certificate();
    let endpoint = Endpoint::start(0, &certificate, &key).await;
    let port = endpoint.port;
    let daemon = Daemon::start(&config(port, &certificate, ""));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let (_, events) = page
        .request("update_presence", json!({"softphoneId": "busy"}))
        .await;
    let busy = events[0].clone();
    let first = eventually(
        "the endpoint gets statusChanged",
        Duration::from_secs(10),
        || {
            endpoint
                .received()
                .into_iter()
                .find(|r| r.header("X-Softphone-Event") == Some("statusChanged"))
        },
    );
    assert_eq!(first.path, "/hook?token=t0ken-in-query");
    assert_eq!(first.header("Content-Type"), Some("application/json"));
    assert_eq!(first.seq(), busy["seq"].as_u64().expect("seq"));
    assert_eq!(
        first.header("X-Softphone-Instance"),
        page.hello()["payload"]["instance"].as_str()
    );
    let body: Value = serde_json::from_str(&first.body).expect("JSON body");
    assert_eq!(body, busy, "the body is the event as pages get it");
    let signature = first.header("X-Softphone-Signature").expect("signed");
    let (timestamp, mac) = signature
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .expect("t=…,v1=…");
    assert_eq!(mac, openssl_hmac(&format!("{timestamp}.{}", first.body)));
    let sent_at: i64 = timestamp.parse().expect("timestamp");
    assert!((time::OffsetDateTime::now_utc().unix_timestamp() - sent_at).abs() < 60);

    // The endpoint goes down; the agent works on; the daemon is killed; it comes back first.
    let (log, mode) = endpoint.stop();
    let mut expected = Vec::new();
    let (_, events) = page
        .request("update_presence", json!({"softphoneId": "break"}))
        .await;
    expected.extend(events);
    let id = page.start_call("5550100").await;
    expected.push(page.event("outboundCallInitiated").await);
    expected.push(page.event("callEnded").await);
    let (_, events) = page
        .request(
            "submit_notes",
            json!({"conversationId": id, "disposition": "Voicemail", "notes": "left a message"}),
        )
        .await;
    expected.extend(
        events
            .into_iter()
            .filter(|e| e["event"] == "callNotesSubmitted"),
    );
    let dir = daemon.stop();
    let daemon = Daemon::start_in(dir, &config(port, &certificate, ""));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let last = page.hello()["payload"]["lastSeq"]
        .as_u64()
        .expect("lastSeq");
    let endpoint = Endpoint::start_with(port, &certificate, &key, log, mode).await;
    let received = eventually(
        "every event reaches the endpoint",
        Duration::from_secs(30),
        || {
            let received = endpoint.received();
            received.iter().any(|r| r.seq() >= last).then_some(received)
        },
    );
    let seqs: Vec<u64> = received.iter().map(Received::seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "in order: {seqs:?}");
    let mut distinct = seqs.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        (distinct[0]..=*distinct.last().expect("some")).collect::<Vec<_>>(),
        "none missing"
    );
    for event in &expected {
        let seq = event["seq"].as_u64().expect("seq");
        let got = received
            .iter()
            .find(|r| r.seq() == seq)
            .unwrap_or_else(|| panic!("event {seq} never reached the endpoint: {seqs:?}"));
        let body: Value = serde_json::from_str(&got.body).expect("JSON");
        assert_eq!(&body, event, "exactly as the page got it");
    }
    let log = daemon.log();
    assert!(
        !log.contains("t0ken-in-query") && !log.contains(SECRET),
        "no token or secret in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_redirecting_or_hanging_endpoint_is_retried_with_back_off() {
    let (_certs, certificate, key) = certificate();
    let endpoint = Endpoint::start(0, &certificate, &key).await;
    endpoint.set(Mode::Status(500));
    let daemon = Daemon::start(&config(
        endpoint.port,
        &certificate,
        "timeout_seconds = 1\n",
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    page.request("update_presence", json!({"softphoneId": "busy"}))
        .await;
    // The oldest event not delivered (the line registering, here) holds up the rest.
    let seq = eventually("a first attempt", Duration::from_secs(10), || {
        endpoint.received().first().map(Received::seq)
    });
    let attempts = |endpoint: &Endpoint| -> Vec<Received> {
        endpoint
            .received()
            .into_iter()
            .filter(|r| r.seq() == seq)
            .collect()
    };
    // 500: the same event again, waiting longer each time (100 ms, 200 ms, 400 ms…).
    let tries = eventually(
        "four attempts at one event",
        Duration::from_secs(15),
        || {
            let tries = attempts(&endpoint);
            (tries.len() >= 4).then_some(tries)
        },
    );
    let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[2] > gaps[0], "the waits grow: {gaps:?}");
    assert!(
        endpoint.received().iter().all(|r| r.seq() == seq),
        "nothing after it is sent first"
    );
    // A redirect is a failure, never followed.
    endpoint.set(Mode::Redirect);
    let before = attempts(&endpoint).len();
    eventually("attempts after a redirect", Duration::from_secs(10), || {
        (attempts(&endpoint).len() >= before + 2).then_some(())
    });
    // A hang is cut by the timeout and tried again.
    endpoint.set(Mode::Hang);
    let before = attempts(&endpoint).len();
    eventually("attempts through hangs", Duration::from_secs(15), || {
        (attempts(&endpoint).len() >= before + 2).then_some(())
    });
    // Back: the event goes through, and the next one follows.
    endpoint.set(Mode::Ok);
    let (_, events) = page
        .request("update_presence", json!({"softphoneId": "break"}))
        .await;
    let next = events[0]["seq"].as_u64().expect("seq");
    eventually("the next event delivered", Duration::from_secs(15), || {
        endpoint
            .received()
            .iter()
            .any(|r| r.seq() == next)
            .then_some(())
    });
    assert!(daemon.log().contains("not delivered"), "the log says so");
}

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// `count` business events (presence changes), one request each.
async fn pile_up(page: &mut common::Client, count: usize) {
    for i in 0..count {
        let status = if i % 2 == 0 { "busy" } else { "break" };
        let (reply, _) = page
            .request("update_presence", json!({"softphoneId": status}))
            .await;
        assert_eq!(reply["ok"], true, "{reply}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_piling_up_behind_a_failing_endpoint_cost_no_memory() {
    let (_certs, certificate, key) = certificate();
    let endpoint = Endpoint::start(0, &certificate, &key).await;
    endpoint.set(Mode::Status(500));
    // (As many actions as the test can send: the pile is the point.)
    let daemon = Daemon::start(&format!(
        "actions_per_second = 1000000\naction_burst = 1000000\norigin_actions_per_second = 1000000\norigin_action_burst = 1000000\n{}",
        config(endpoint.port, &certificate, "timeout_seconds = 1\n")
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    // Warm-up: the store's pages and caches reach their working size.
    pile_up(&mut page, 4_000).await;
    let first = eventually("a first attempt", Duration::from_secs(10), || {
        endpoint.received().first().map(Received::seq)
    });

    // Almost four times as many events wait while the endpoint fails every way it can: the queue is the
    // store's, on disk, and an answer's body is never read. SQLite's page caches fill up to their
    // fixed size (2 MB per connection) along the way; after that, nothing more is held.
    let mut rss = vec![rss_kib(daemon.pid())];
    for mode in [Mode::Flood, Mode::Hang, Mode::Status(500)].repeat(2) {
        endpoint.set(mode);
        let tried = endpoint.received().len();
        pile_up(&mut page, 2_500).await;
        eventually("attempts go on", Duration::from_secs(10), || {
            (endpoint.received().len() >= tried + 2).then_some(())
        });
        rss.push(rss_kib(daemon.pid()));
    }
    let received = endpoint.received();
    eprintln!(
        "RSS (KiB) after 4,000 undelivered events, then every 2,500 more: {rss:?}; {} attempts",
        received.len()
    );
    assert!(
        received.iter().all(|r| r.seq() == first),
        "only the oldest undelivered event is tried"
    );
    let (start, end) = (rss[0], rss[rss.len() - 1]);
    assert!(
        end < start + 6 * 1024,
        "memory grew from {start} KiB to {end} KiB"
    );
    let last_two = rss[rss.len() - 3];
    assert!(
        end < last_two + 1024,
        "memory still growing over the last 5,000 events: {last_two} KiB to {end} KiB"
    );
}
