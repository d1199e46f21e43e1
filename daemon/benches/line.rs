//! The phone line side by side with baresip (not a test: it prints figures, asserts nothing about
//! speed). Needs the lab packages (`./dev setup`).
//!
//!     cargo bench -p softphone-bridge --bench line      (or ./dev bench)
//!     LINE_PARTS=setup cargo bench ... --bench line     (the setup times only, with the slowest
//!                                                       calls: where a tail comes from)
//!
//! With Kamailio and baresip on loopback, for the release daemon and for baresip:
//! - RSS while idle and registered;
//! - RSS and CPU seconds during a 20 s PCMU call and a 20 s Opus call (the daemon calls baresip;
//!   both ends are measured over the same call, each encoding its tone and decoding the other's);
//! - INVITE → 200 when auto-answering (a bare UDP peer sends the INVITE straight to each);
//!
//! and for the daemon alone, with the bench as its SIP server and a page on the WebSocket:
//! - `start_call` sent → INVITE on the wire, and SIP 200 sent → `callAccepted` on the WebSocket
//!   (with the store, which writes each event before it is sent, and with `[store] enabled = false`).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lab/mod.rs"]
mod lab;
mod measure;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{CRM, Client, Daemon};
use lab::{Baresip, Kamailio, write_tone};
use measure::{Usage, clock_ticks_per_second, mb, usage};
use sip_core::message::{Message, Method, Request, Response, parse_datagram};
use tokio::net::UdpSocket;

const CALL: Duration = Duration::from_secs(20);
const INVITES: usize = 50;
const ACTIONS: usize = 200;

fn percentiles(mut times: Vec<Duration>) -> String {
    times.sort();
    let at = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    format!("p50 {:.3} ms, p99 {:.3} ms", at(0.5), at(0.99))
}

fn lab_daemon(kamailio: &Kamailio, dir: &Path, codec: &str, extra: &str) -> Daemon {
    let tone = dir.join("agent.wav");
    write_tone(&tone, 48000, 1000.0, 0.5, 30.0);
    Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\n{extra}\n\
         [log]\nlevel = \"warn\"\n[media]\ncodecs = [\"{codec}\"]\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
        kamailio.port,
        tone.display(),
        dir.join("heard.wav").display()
    ))
}

/// One 20 s call from the daemon to baresip; returns (daemon, baresip) usage deltas and peaks.
async fn measured_call(
    kamailio: &Kamailio,
    codec: &str,
    baresip_codec: &str,
) -> ((Usage, Usage), (Usage, Usage)) {
    let baresip = Baresip::start(kamailio, "1002", 441.0, baresip_codec);
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = lab_daemon(kamailio, dir.path(), codec, "");
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let (d0, b0) = (usage(daemon.pid()), usage(baresip.pid()));
    page.request("start_call", serde_json::json!({"dialTo": "1002"}))
        .await;
    page.event("callAccepted").await;
    tokio::time::sleep(CALL).await;
    let (d1, b1) = (usage(daemon.pid()), usage(baresip.pid()));
    page.request("hangup", serde_json::Value::Null).await;
    page.event("callEnded").await;
    let delta = |a: Usage, b: Usage| Usage {
        rss_kib: b.rss_kib,
        anon_kib: b.anon_kib,
        cpu_ticks: b.cpu_ticks - a.cpu_ticks,
    };
    ((delta(d0, d1), d1), (delta(b0, b1), b1))
}

/// A bare SIP peer on one UDP socket: the daemon's registrar and the far end of its calls.
struct Peer {
    socket: UdpSocket,
    media: UdpSocket,
    buffer: Vec<u8>,
}

impl Peer {
    async fn new() -> Self {
        Self {
            socket: UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
            media: UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
            buffer: vec![0; 65536],
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("addr")
    }

    /// The next SIP message; keepalives (CRLF) and anything unparsable are skipped.
    async fn recv(
        &mut self,
        deadline: tokio::time::Instant,
        waiting_for: &str,
    ) -> (Message, SocketAddr) {
        loop {
            let received =
                tokio::time::timeout_at(deadline, self.socket.recv_from(&mut self.buffer)).await;
            let (n, from) = received
                .unwrap_or_else(|_| panic!("no {waiting_for} within 10 s"))
                .expect("recv");
            // Keepalives (CRLF) and anything else unparsable are skipped.
            if let Ok(message) = parse_datagram(&self.buffer[..n]) {
                return (message, from);
            }
        }
    }

    async fn request(&mut self, method: Method) -> (Request, SocketAddr) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let (Message::Request(r), from) = self.recv(deadline, method.as_str()).await
                && r.method == method
            {
                return (r, from);
            }
        }
    }

    async fn response(&mut self, status: u16) -> Response {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match self.recv(deadline, &status.to_string()).await {
                (Message::Response(r), _) if r.status == status => return r,
                (Message::Response(r), _) if r.status >= 300 => {
                    panic!("expected {status}, got {} {}", r.status, r.reason)
                }
                _ => {}
            }
        }
    }

    async fn respond(&self, request: &Request, status: u16, to: SocketAddr, sdp: bool) {
        let mut response = Response::to_request(request, status, Some("peer"));
        response
            .headers
            .push("Contact", format!("<sip:peer@{}>", self.addr()));
        if request.method == Method::Register {
            response.headers.push("Expires", "600");
        }
        if sdp {
            response.headers.push("Content-Type", "application/sdp");
            response.body = self.sdp().into_bytes();
        }
        self.socket
            .send_to(&Message::Response(response).to_bytes(), to)
            .await
            .expect("send");
    }

    fn sdp(&self) -> String {
        let port = self.media.local_addr().expect("addr").port();
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
    }

    /// An in-dialog or initial request from us; `to_tag` once the dialog exists.
    async fn send(
        &self,
        method: &str,
        uri: &str,
        call: &str,
        seq: u32,
        to_tag: Option<&str>,
        to: SocketAddr,
    ) {
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let body = if method == "INVITE" {
            self.sdp()
        } else {
            String::new()
        };
        let content_type = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let text = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bK{call}{seq}{method}\r\nMax-Forwards: 70\r\nFrom: <sip:peer@{addr}>;tag=peer{call}\r\n\
             To: <{uri}>{to_tag}\r\nCall-ID: {call}\r\nCSeq: {seq} {method}\r\nContact: <sip:peer@{addr}>\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
            body.len(),
            addr = self.addr()
        );
        self.socket
            .send_to(text.as_bytes(), to)
            .await
            .expect("send");
    }

    /// INVITE → 200 (ms) for `INVITES` calls to the UA at `to`, each ACKed and hung up.
    async fn invite_to_ok(&mut self, uri: &str, to: SocketAddr) -> Vec<Duration> {
        let mut times = Vec::with_capacity(INVITES);
        for i in 0..INVITES {
            let call = format!("bench{i}x{}", to.port());
            let started = Instant::now();
            self.send("INVITE", uri, &call, 1, None, to).await;
            let ok = self.response(200).await;
            times.push(started.elapsed());
            let tag = ok
                .headers
                .to()
                .and_then(|t| t.tag().map(str::to_owned))
                .unwrap_or_default();
            self.send("ACK", uri, &call, 1, Some(&tag), to).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.send("BYE", uri, &call, 2, Some(&tag), to).await;
            self.response(200).await;
        }
        times
    }
}

/// A daemon registered with `peer` as its server.
async fn daemon_on(
    peer: &mut Peer,
    auto_answer: bool,
    store: bool,
) -> (Daemon, Client, SocketAddr) {
    // Rate limits out of the way (these lines land in [api]): this measures the line.
    let daemon = Daemon::start(&format!(
        "actions_per_second = 1000000\naction_burst = 1000000\norigin_actions_per_second = 1000000\norigin_action_burst = 1000000\n[store]\nenabled = {store}\n[account]\nserver = \"{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"x\"\nauto_answer = {auto_answer}\n[log]\nlevel = \"warn\"\n[media]\ncodecs = [\"pcmu\"]\n[audio]\nbackend = \"file\"\n",
        peer.addr()
    ));
    let (register, from) = peer.request(Method::Register).await;
    peer.respond(&register, 200, from, false).await;
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    (daemon, page, from)
}

/// `start_call` → INVITE and SIP 200 → `callAccepted` for `ACTIONS` calls to a bare peer.
async fn setup_times(store: bool) -> (Vec<Duration>, Vec<Duration>) {
    let mut peer = Peer::new().await;
    let (daemon, mut page, _) = daemon_on(&mut peer, false, store).await;
    let (mut to_wire, mut to_event) = (Vec::with_capacity(ACTIONS), Vec::with_capacity(ACTIONS));
    for i in 0..ACTIONS {
        let started = Instant::now();
        page.send_text(&format!(
            r#"{{"id":"b{i}","action":"start_call","params":{{"dialTo":"1002"}}}}"#
        ))
        .await;
        let Ok((invite, from)) =
            tokio::time::timeout(Duration::from_secs(5), peer.request(Method::Invite)).await
        else {
            panic!(
                "call {i}: no INVITE; the page got {}",
                page.next_message().await
            );
        };
        to_wire.push(started.elapsed());
        peer.respond(&invite, 200, from, true).await;
        let answered = Instant::now();
        page.event("callAccepted").await;
        to_event.push(answered.elapsed());
        let (ack, _) = peer.request(Method::Ack).await;
        let call = ack.headers.call_id().to_owned();
        let uri = invite
            .headers
            .get("Contact")
            .and_then(|c| c.split(['<', '>']).nth(1))
            .unwrap_or("sip:1001@127.0.0.1")
            .to_owned();
        let from_tag = invite
            .headers
            .from()
            .and_then(|f| f.tag().map(str::to_owned))
            .unwrap_or_default();
        // Hang up from the peer: BYE in the daemon's dialog (their From tag is our To tag).
        let text = format!(
            "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bKbye{i}\r\nMax-Forwards: 70\r\nFrom: <sip:1002@{addr}>;tag=peer\r\nTo: <sip:1001@{addr}>;tag={from_tag}\r\n\
             Call-ID: {call}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
            addr = peer.addr()
        );
        peer.socket
            .send_to(text.as_bytes(), from)
            .await
            .expect("send");
        peer.response(200).await;
        page.event("callEnded").await;
    }
    drop(daemon);
    (to_wire, to_event)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let hz = clock_ticks_per_second();
    let cpu = |u: Usage| format!("{:.2} s", u.cpu_ticks as f64 / hz);
    if std::env::var("LINE_PARTS").is_ok_and(|only| only == "setup") {
        let (to_wire, to_event) = setup_times(true).await;
        let mut slowest: Vec<(Duration, usize)> = to_wire.iter().copied().zip(0..).collect();
        slowest.sort();
        println!(
            "`start_call` → INVITE on the wire ({ACTIONS}): {}; the slowest (time, call): {:?}",
            percentiles(to_wire),
            &slowest[slowest.len() - 5..]
        );
        println!(
            "SIP 200 → `callAccepted` on the WebSocket ({ACTIONS}), store on: {}",
            percentiles(to_event)
        );
        return;
    }
    let kamailio = Kamailio::start("MD5");

    // Idle and registered.
    let baresip = Baresip::start(&kamailio, "1002", 441.0, "PCMU");
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = lab_daemon(&kamailio, dir.path(), "pcmu", "");
    daemon.connect(CRM).await.registered().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle_daemon, idle_baresip) = (usage(daemon.pid()), usage(baresip.pid()));

    // INVITE → 200, auto-answering: straight to baresip, and to a daemon whose server is the peer.
    let mut peer = Peer::new().await;
    let to_baresip = SocketAddr::from(([127, 0, 0, 1], baresip.sip_port));
    eprintln!("INVITEs to baresip at {to_baresip}");
    let baresip_invite = match tokio::time::timeout(
        Duration::from_secs(20),
        peer.invite_to_ok(&format!("sip:1002@{to_baresip}"), to_baresip),
    )
    .await
    {
        Ok(t) => t,
        Err(_) => panic!(
            "baresip did not answer 50 INVITEs within 20 s; its log:\n{}",
            baresip
                .log()
                .lines()
                .filter(|l| !l.contains("audio="))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    drop((daemon, baresip));
    eprintln!("INVITEs to the daemon");
    let (auto, _page, daemon_addr) = daemon_on(&mut peer, true, true).await;
    eprintln!("  registered from {daemon_addr}");
    let daemon_invite = peer
        .invite_to_ok(&format!("sip:1001@{daemon_addr}"), daemon_addr)
        .await;
    drop(auto);

    // start_call → INVITE on the wire; SIP 200 → callAccepted on the WebSocket; with the
    // store (every event written before it is sent) and without it, in the same run.
    eprintln!("start_call and callAccepted");
    let (to_wire, to_event) = setup_times(true).await;
    let (_, to_event_memory) = setup_times(false).await;

    // 20 s calls.
    eprintln!("20 s calls");
    let ((pcmu_daemon, pcmu_daemon_peak), (pcmu_baresip, pcmu_baresip_peak)) =
        measured_call(&kamailio, "pcmu", "PCMU").await;
    let ((opus_daemon, opus_daemon_peak), (opus_baresip, opus_baresip_peak)) =
        measured_call(&kamailio, "opus", "opus/48000/2").await;

    println!(
        "softphone-bridge line vs baresip 1.0 (release build, loopback, {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| measure | softphone-bridge | baresip | target |");
    println!("|---|---|---|---|");
    println!(
        "| idle RSS, registered | {} | {} | ≤ baresip |",
        mb(idle_daemon.rss_kib),
        mb(idle_baresip.rss_kib)
    );
    println!(
        "| of which private (anonymous) | {} | {} | — |",
        mb(idle_daemon.anon_kib),
        mb(idle_baresip.anon_kib)
    );
    println!(
        "| RSS in a 20 s PCMU call | {} | {} | ≤ baresip |",
        mb(pcmu_daemon_peak.rss_kib),
        mb(pcmu_baresip_peak.rss_kib)
    );
    println!(
        "| CPU for a 20 s PCMU call | {} | {} | ≤ baresip |",
        cpu(pcmu_daemon),
        cpu(pcmu_baresip)
    );
    println!(
        "| RSS in a 20 s Opus call | {} | {} | ≤ baresip |",
        mb(opus_daemon_peak.rss_kib),
        mb(opus_baresip_peak.rss_kib)
    );
    println!(
        "| CPU for a 20 s Opus call | {} | {} | ≤ baresip |",
        cpu(opus_daemon),
        cpu(opus_baresip)
    );
    println!(
        "| INVITE → 200, auto-answer ({INVITES} calls) | {} | {} | — |",
        percentiles(daemon_invite),
        percentiles(baresip_invite)
    );
    println!(
        "| `start_call` → INVITE on the wire ({ACTIONS}) | {} | — | p99 < 1 ms |",
        percentiles(to_wire)
    );
    println!(
        "| SIP 200 → `callAccepted` on the WebSocket ({ACTIONS}), store on | {} | — | p99 < 1 ms |",
        percentiles(to_event)
    );
    println!(
        "| SIP 200 → `callAccepted` on the WebSocket ({ACTIONS}), `[store] enabled = false` | {} | — | — |",
        percentiles(to_event_memory)
    );
}
