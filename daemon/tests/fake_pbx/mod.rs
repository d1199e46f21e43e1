//! A hostile (or merely fake) SIP server for security tests: SIP over plain WebSocket (RFC 7118)
//! or UDP on loopback. It answers REGISTER (optionally with a digest challenge first), records
//! every message it receives, and can call the registered phone. Written for these tests only:
//! a page-chosen server is exactly what finding 1 is about, so no real PBX plays it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sip_core::{Message, Request, Response};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{
    Request as HttpRequest, Response as HttpResponse,
};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// What the fake server saw and lets the test do.
pub struct FakePbx {
    pub address: SocketAddr,
    /// Every SIP message received, as text.
    pub received: mpsc::UnboundedReceiver<String>,
    /// Text to send to the phone over its connection (e.g. an INVITE).
    send: mpsc::UnboundedSender<String>,
    /// The phone's Contact, once it registered.
    pub contact: tokio::sync::watch::Receiver<Option<String>>,
}

pub struct Options {
    /// Answer the first REGISTER with 401 and a digest challenge.
    pub challenge: bool,
}

impl FakePbx {
    /// SIP over `ws://127.0.0.1:PORT`, subprotocol `sip`.
    pub async fn websocket(options: Options) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (seen, received) = mpsc::unbounded_channel();
        let (send, mut outbox) = mpsc::unbounded_channel::<String>();
        let (contact_tx, contact) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            // The callback's error type is tungstenite's (large) HTTP response; ours never fails.
            #[allow(clippy::result_large_err)]
            let with_sip = |_: &HttpRequest, mut response: HttpResponse| {
                response
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
                Ok(response)
            };
            let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, with_sip).await else {
                return;
            };
            let (mut sink, mut frames) = ws.split();
            let mut state = Registrar::new(options.challenge);
            loop {
                tokio::select! {
                    frame = frames.next() => {
                        let Some(Ok(frame)) = frame else { return };
                        let text = match frame {
                            WsMessage::Text(text) => text.to_string(),
                            WsMessage::Close(_) => return,
                            _ => continue,
                        };
                        let _ = seen.send(text.clone());
                        if let Some((reply, registered)) = state.on_message(&text) {
                            if let Some(contact) = registered {
                                let _ = contact_tx.send(Some(contact));
                            }
                            if sink.send(WsMessage::text(reply)).await.is_err() { return; }
                        }
                    }
                    Some(text) = outbox.recv() => {
                        if sink.send(WsMessage::text(text)).await.is_err() { return; }
                    }
                }
            }
        });
        Self {
            address,
            received,
            send,
            contact,
        }
    }

    /// SIP over UDP on `127.0.0.1:PORT`.
    pub async fn udp(options: Options) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let address = socket.local_addr().expect("address");
        let (seen, received) = mpsc::unbounded_channel();
        let (send, mut outbox) = mpsc::unbounded_channel::<String>();
        let (contact_tx, contact) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let mut state = Registrar::new(options.challenge);
            let mut phone: Option<SocketAddr> = None;
            let mut buffer = vec![0u8; 65536];
            loop {
                tokio::select! {
                    got = socket.recv_from(&mut buffer) => {
                        let Ok((n, from)) = got else { return };
                        phone = Some(from);
                        let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                        if text.trim().is_empty() { continue; }
                        let _ = seen.send(text.clone());
                        if let Some((reply, registered)) = state.on_message(&text) {
                            if let Some(contact) = registered {
                                let _ = contact_tx.send(Some(contact));
                            }
                            let _ = socket.send_to(reply.as_bytes(), from).await;
                        }
                    }
                    Some(text) = outbox.recv() => {
                        if let Some(to) = phone {
                            let _ = socket.send_to(text.as_bytes(), to).await;
                        }
                    }
                }
            }
        });
        Self {
            address,
            received,
            send,
            contact,
        }
    }

    pub fn send(&self, text: String) {
        let _ = self.send.send(text);
    }

    /// The phone's Contact once it registered (waits up to 20 s).
    pub async fn registered_contact(&mut self) -> String {
        let wait = self.contact.wait_for(Option::is_some);
        match tokio::time::timeout(Duration::from_secs(20), wait).await {
            Ok(Ok(contact)) => contact.clone().unwrap_or_default(),
            _ => panic!("the phone did not register with the fake PBX"),
        }
    }

    /// The next received message whose first line contains `needle` (waits up to `within`).
    pub async fn next_matching(&mut self, needle: &str, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.received.recv()).await {
                Ok(Some(text)) if text.lines().next().unwrap_or("").contains(needle) => {
                    return Some(text);
                }
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Calls the phone at `contact` with an SDP offer. `transport` names the Via transport.
    pub fn invite(&self, contact: &str, transport: &str, sdp: &str) {
        self.invite_with(contact, transport, sdp, "", "fake-call-1");
    }

    /// [`Self::invite`] with `extra` header lines (each ending in CRLF) and its own Call-ID.
    pub fn invite_with(
        &self,
        contact: &str,
        transport: &str,
        sdp: &str,
        extra: &str,
        call_id: &str,
    ) {
        self.invite_body(contact, transport, "application/sdp", sdp, extra, call_id);
    }

    /// [`Self::invite_with`] with any body and Content-Type.
    pub fn invite_body(
        &self,
        contact: &str,
        transport: &str,
        content_type: &str,
        body: &str,
        extra: &str,
        call_id: &str,
    ) {
        let target = uri_of(contact);
        let text = format!(
            "INVITE {target} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {}:{};branch=z9hG4bK-{call_id}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:attacker@127.0.0.1>;tag=fake1\r\n\
             To: <{target}>\r\n\
             Call-ID: {call_id}@127.0.0.1\r\n\
             CSeq: 1 INVITE\r\n\
             {extra}\
             Contact: <sip:attacker@{}:{};transport={}>\r\n\
             Content-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.address.ip(),
            self.address.port(),
            self.address.ip(),
            self.address.port(),
            transport.to_ascii_lowercase(),
            body.len()
        );
        self.send(text);
    }

    /// Sends `method` (ACK, BYE) in the dialog a 2xx to our INVITE `call_id` set up.
    pub fn in_dialog(&self, method: &str, response: &str, contact: &str, call_id: &str) {
        let to = header(response, "To").unwrap_or_default();
        let target = uri_of(contact);
        let seq = if method == "ACK" { 1 } else { 2 };
        let text = format!(
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {}:{};branch=z9hG4bK-{call_id}-{method}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:attacker@127.0.0.1>;tag=fake1\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}@127.0.0.1\r\n\
             CSeq: {seq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            self.address.ip(),
            self.address.port(),
        );
        self.send(text);
    }

    /// ACKs a 2xx to our INVITE (the dialog's To tag comes from the response).
    pub fn ack(&self, response: &str, contact: &str) {
        let to = header(response, "To").unwrap_or_default();
        let target = uri_of(contact);
        let text = format!(
            "ACK {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {}:{};branch=z9hG4bK-fake-ack\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:attacker@127.0.0.1>;tag=fake1\r\n\
             To: {to}\r\n\
             Call-ID: fake-call-1@127.0.0.1\r\n\
             CSeq: 1 ACK\r\n\
             Content-Length: 0\r\n\r\n",
            self.address.ip(),
            self.address.port(),
        );
        self.send(text);
    }
}

/// The URI in a Contact value (`<sip:…>;params` → `sip:…`).
fn uri_of(contact: &str) -> String {
    contact
        .trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A header's value in a message's text.
pub fn header(text: &str, name: &str) -> Option<String> {
    text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Answers REGISTER, and OPTIONS (the line's liveness probe) as any PBX does; answers other
/// requests (and responses) nothing.
struct Registrar {
    challenge: bool,
}

impl Registrar {
    fn new(challenge: bool) -> Self {
        Self { challenge }
    }

    /// The reply to send, and the phone's Contact when this reply registers it.
    fn on_message(&mut self, text: &str) -> Option<(String, Option<String>)> {
        let Ok(Message::Request(request)) = sip_core::message::parse_datagram(text.as_bytes())
        else {
            return None;
        };
        if request.method.as_str() == "OPTIONS" {
            let response = Response::to_request(&request, 200, Some("fake"));
            return Some((
                String::from_utf8_lossy(&response.to_bytes()).into_owned(),
                None,
            ));
        }
        if request.method.as_str() != "REGISTER" {
            return None;
        }
        if self.challenge && request.headers.get("Authorization").is_none() {
            let mut response = Response::to_request(&request, 401, Some("fake"));
            response.headers.push(
                "WWW-Authenticate",
                "Digest realm=\"fake\", nonce=\"0123456789abcdef\", algorithm=MD5, qop=\"auth\"",
            );
            return Some((
                String::from_utf8_lossy(&response.to_bytes()).into_owned(),
                None,
            ));
        }
        Some(ok(&request))
    }
}

fn ok(request: &Request) -> (String, Option<String>) {
    let mut response = Response::to_request(request, 200, Some("fake"));
    let contact = request
        .headers
        .get("Contact")
        .unwrap_or_default()
        .to_owned();
    response
        .headers
        .push("Contact", format!("{contact};expires=300"));
    response.headers.push("Expires", "300");
    (
        String::from_utf8_lossy(&response.to_bytes()).into_owned(),
        Some(contact),
    )
}
