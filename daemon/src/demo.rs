//! The built-in demo line: with no `[account]`, the daemon runs this tiny SIP service on
//! loopback and registers its line with it, so a newcomer can call `echo` from the demo page and
//! hear themselves — through real SIP (REGISTER, INVITE, ACK, BYE) and real RTP, not a shortcut.
//!
//! It accepts any REGISTER without authentication (it listens on 127.0.0.1 only), answers
//! `echo` by sending every RTP packet straight back to where it came from, and answers other
//! numbers with 404.

use std::net::SocketAddr;
use std::time::Instant;

use sip_core::call::{Call, CallEvent, LocalParty};
use sip_core::message::{Message, Method, Response, Uri, parse_datagram};
use sip_core::sdp::SessionDescription;
use sip_core::transaction::Timers;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::ids::OsEntropy;
use crate::timer::sleep_until;

/// The user name the demo line registers as, and the number that echoes.
pub const AGENT: &str = "agent";
pub const ECHO: &str = "echo";

/// Starts the service; returns the address to register with.
pub async fn start() -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let socket = UdpSocket::bind(("127.0.0.1", 0)).await?;
    let address = socket.local_addr()?;
    tracing::info!(%address, "demo line: call `echo` to hear yourself");
    Ok((address, tokio::spawn(serve(socket, address))))
}

struct EchoCall {
    call: Call,
    peer: SocketAddr,
    echo: Option<JoinHandle<()>>,
}

async fn serve(socket: UdpSocket, address: SocketAddr) {
    let mut entropy = OsEntropy;
    let party = LocalParty {
        aor: uri(&format!("sip:{ECHO}@{address}")),
        contact: uri(&format!("sip:{ECHO}@{address}")),
        transport: "UDP".into(),
        sent_by: address.to_string(),
        reliable: false,
        username: ECHO.into(),
        password: String::new(),
        user_agent: "softphone-bridge demo line".into(),
        session_interval: None,
    };
    let mut calls: Vec<EchoCall> = Vec::new();
    let mut buffer = vec![0u8; sip_core::message::MAX_MESSAGE];
    loop {
        let deadline = calls.iter().filter_map(|c| c.call.poll_timeout()).min();
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => Some(received),
            _ = sleep_until(deadline) => None,
        };
        let now = Instant::now();
        match received {
            Some(Ok((n, peer))) => match parse_datagram(&buffer[..n]) {
                Ok(message) => {
                    if let Some(reply) =
                        handle(message, peer, now, &party, &mut calls, &mut entropy).await
                    {
                        let _ = socket.send_to(&reply, peer).await;
                    }
                }
                Err(e) => tracing::debug!("demo line: dropped a malformed message: {e}"),
            },
            Some(Err(e)) => tracing::debug!("demo line: {e}"),
            None => {
                for c in &mut calls {
                    c.call.handle_timeout(now, &mut entropy);
                }
            }
        }
        for c in &mut calls {
            while let Some(bytes) = c.call.poll_transmit() {
                let _ = socket.send_to(&bytes, c.peer).await;
            }
            while let Some(event) = c.call.poll_event() {
                if let CallEvent::Ended(_) = event
                    && let Some(echo) = c.echo.take()
                {
                    echo.abort();
                }
            }
        }
        calls.retain(|c| !c.call.is_finished());
    }
}

async fn handle(
    message: Message,
    peer: SocketAddr,
    now: Instant,
    party: &LocalParty,
    calls: &mut Vec<EchoCall>,
    entropy: &mut OsEntropy,
) -> Option<Vec<u8>> {
    if let Some(c) = calls.iter_mut().find(|c| c.call.matches(&message)) {
        c.call.handle_message(message, now, entropy);
        return None;
    }
    let Message::Request(request) = message else {
        return None;
    };
    let tag = crate::ids::random_hex(4);
    match request.method {
        Method::Register => {
            let mut ok = Response::to_request(&request, 200, Some(&tag));
            if let Some(contact) = request.headers.get("Contact") {
                ok.headers.push("Contact", contact);
            }
            ok.headers
                .push("Expires", request.headers.get("Expires").unwrap_or("600"));
            Some(Message::Response(ok).to_bytes())
        }
        Method::Invite if request.uri.user.as_deref() == Some(ECHO) => {
            let refuse = |status| {
                Some(
                    Message::Response(Response::to_request(&request, status, Some(&tag)))
                        .to_bytes(),
                )
            };
            let Ok(offer) = SessionDescription::parse(&String::from_utf8_lossy(&request.body))
            else {
                return refuse(488);
            };
            let Ok(rtp) = UdpSocket::bind(("127.0.0.1", 0)).await else {
                return refuse(500);
            };
            let port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
            // The echo sends back whatever arrives, so any codec the caller offers works.
            let Ok((answer, _)) =
                SessionDescription::answer(&offer, 1, "127.0.0.1", port, &offer.audio.codecs)
            else {
                return refuse(488);
            };
            let mut call =
                match Call::incoming(party.clone(), request.clone(), Timers::default(), entropy) {
                    Ok(call) => call,
                    Err(response) => return Some(response),
                };
            call.answer(answer.to_string(), now);
            let echo = tokio::spawn(async move {
                let mut packet = [0u8; 2048];
                while let Ok((n, from)) = rtp.recv_from(&mut packet).await {
                    let _ = rtp.send_to(&packet[..n], from).await;
                }
            });
            calls.push(EchoCall {
                call,
                peer,
                echo: Some(echo),
            });
            None
        }
        Method::Invite => {
            let not_found = Response::to_request(&request, 404, Some(&tag));
            Some(Message::Response(not_found).to_bytes())
        }
        Method::Options => {
            Some(Message::Response(Response::to_request(&request, 200, Some(&tag))).to_bytes())
        }
        Method::Ack => None,
        _ => Some(Message::Response(Response::to_request(&request, 481, Some(&tag))).to_bytes()),
    }
}

fn uri(text: &str) -> Uri {
    Uri::parse(text).unwrap_or_else(|_| Uri {
        scheme: "sip".into(),
        user: None,
        host: "127.0.0.1".into(),
        port: None,
        params: Vec::new(),
    })
}
