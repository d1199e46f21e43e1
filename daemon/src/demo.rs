//! The built-in demo line: with no `[account]`, the daemon runs this tiny SIP service on
//! loopback and registers its line with it, so a newcomer can call `echo` from the demo page and
//! hear themselves — through real SIP (REGISTER, INVITE, ACK, BYE) and real RTP, not a shortcut.
//!
//! It accepts any REGISTER without authentication (it listens on 127.0.0.1 only), answers
//! `echo` by sending every RTP packet straight back to where it came from, and answers other
//! numbers with 404. Dialling `ring-me` is declined (480) and, a few seconds later, the service
//! calls the agent back — an incoming call to try answering, rejecting and `incomingCall` with no
//! PBX; once answered it echoes like `echo`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

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
/// The number that makes the demo service call the agent back.
pub const RING_ME: &str = "ring-me";
/// How long after `ring-me` the agent's phone rings: long enough to see the first call end.
const CALL_BACK_AFTER: Duration = Duration::from_secs(3);

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

/// What the service knows between messages.
#[derive(Default)]
struct Demo {
    calls: Vec<EchoCall>,
    /// The agent's line as its last REGISTER said: its contact and where that came from.
    agent: Option<(Uri, SocketAddr)>,
    /// When to call the agent back (`ring-me`).
    call_back_at: Option<Instant>,
}

fn party(number: &str, address: SocketAddr) -> LocalParty {
    LocalParty {
        aor: uri(&format!("sip:{number}@{address}")),
        contact: uri(&format!("sip:{number}@{address}")),
        transport: "UDP".into(),
        sent_by: address.to_string(),
        reliable: false,
        username: number.into(),
        password: String::new(),
        user_agent: "softphone-bridge demo line".into(),
        session_interval: None,
    }
}

async fn serve(socket: UdpSocket, address: SocketAddr) {
    let mut entropy = OsEntropy;
    let party = party(ECHO, address);
    let mut demo = Demo::default();
    let mut buffer = vec![0u8; sip_core::message::MAX_MESSAGE];
    loop {
        let calls = &mut demo.calls;
        let deadline = calls
            .iter()
            .filter_map(|c| c.call.poll_timeout())
            .chain(demo.call_back_at)
            .min();
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => Some(received),
            _ = sleep_until(deadline) => None,
        };
        let now = Instant::now();
        match received {
            Some(Ok((n, peer))) => match parse_datagram(&buffer[..n]) {
                Ok(message) => {
                    if let Some(reply) =
                        handle(message, peer, now, &party, &mut demo, &mut entropy).await
                    {
                        let _ = socket.send_to(&reply, peer).await;
                    }
                }
                Err(e) => tracing::debug!("demo line: dropped a malformed message: {e}"),
            },
            Some(Err(e)) => tracing::debug!("demo line: {e}"),
            None => {
                for c in &mut demo.calls {
                    c.call.handle_timeout(now, &mut entropy);
                }
                if demo.call_back_at.is_some_and(|at| at <= now) {
                    demo.call_back_at = None;
                    call_back(address, now, &mut demo, &mut entropy).await;
                }
            }
        }
        let calls = &mut demo.calls;
        for c in calls.iter_mut() {
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

/// Calls the agent's registered contact from `ring-me`; once answered the call echoes.
async fn call_back(address: SocketAddr, now: Instant, demo: &mut Demo, entropy: &mut OsEntropy) {
    let Some((contact, agent)) = demo.agent.clone() else {
        tracing::info!("demo line: `ring-me`, but the agent's line is not registered");
        return;
    };
    let Ok(rtp) = UdpSocket::bind(("127.0.0.1", 0)).await else {
        return;
    };
    let port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
    let codecs = [
        sip_core::sdp::Codec::opus(),
        sip_core::sdp::Codec::pcmu(),
        sip_core::sdp::Codec::pcma(),
        sip_core::sdp::Codec::telephone_event(),
    ];
    let offer = SessionDescription::offer(1, "127.0.0.1", port, &codecs);
    let call = Call::outgoing(
        party(RING_ME, address),
        contact,
        offer.to_string(),
        Timers::default(),
        now,
        entropy,
    );
    tracing::info!("demo line: calling the agent back");
    demo.calls.push(EchoCall {
        call,
        peer: agent,
        echo: Some(tokio::spawn(echo(rtp))),
    });
}

/// Sends every RTP packet back where it came from.
async fn echo(rtp: UdpSocket) {
    let mut packet = [0u8; 2048];
    while let Ok((n, from)) = rtp.recv_from(&mut packet).await {
        let _ = rtp.send_to(&packet[..n], from).await;
    }
}

async fn handle(
    message: Message,
    peer: SocketAddr,
    now: Instant,
    party: &LocalParty,
    demo: &mut Demo,
    entropy: &mut OsEntropy,
) -> Option<Vec<u8>> {
    let calls = &mut demo.calls;
    if let Some(c) = calls.iter_mut().find(|c| c.call.matches(&message)) {
        c.call.handle_message(message, now, entropy);
        return None;
    }
    let Message::Request(request) = message else {
        return None;
    };
    let tag = crate::ids::random_hex(4);
    match request.method {
        // Only the demo line's own account registers (any other local process would otherwise
        // take the agent's call-backs).
        Method::Register if request_user(&request) != Some(AGENT) => {
            Some(Message::Response(Response::to_request(&request, 403, Some(&tag))).to_bytes())
        }
        Method::Register => {
            let mut ok = Response::to_request(&request, 200, Some(&tag));
            if let Some(contact) = request.headers.get("Contact") {
                ok.headers.push("Contact", contact);
                let expires = request.headers.get("Expires").unwrap_or("600");
                demo.agent = (expires.trim() != "0")
                    .then(|| contact_uri(contact))
                    .flatten()
                    .map(|uri| (uri, peer));
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
            calls.push(EchoCall {
                call,
                peer,
                echo: Some(tokio::spawn(echo(rtp))),
            });
            None
        }
        Method::Invite if request.uri.user.as_deref() == Some(RING_ME) => {
            // One call-back at a time: repeated `ring-me`s do not ring the agent over and over.
            if demo.call_back_at.is_none() {
                demo.call_back_at = Some(now + CALL_BACK_AFTER);
            }
            let mut busy = Response::to_request(&request, 480, Some(&tag));
            busy.reason = "Calling you back in 3 seconds".into();
            Some(Message::Response(busy).to_bytes())
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

/// The user the request's `To` names (a REGISTER's account).
fn request_user(request: &sip_core::message::Request) -> Option<&str> {
    let to = request.headers.get("To")?;
    let inner = to.split_once("sip:")?.1;
    inner.split('@').next()
}

/// The URI in a Contact header value (`<sip:agent@127.0.0.1:5070;ob>;expires=600`).
fn contact_uri(value: &str) -> Option<Uri> {
    let inner = match (value.find('<'), value.find('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.split(';').next().unwrap_or(value),
    };
    Uri::parse(inner.trim()).ok()
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
