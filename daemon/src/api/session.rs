//! One WebSocket connection: the upgrade (with the Origin check), then requests in and events
//! out until either side closes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::request::RequestHead;
use super::{ApiContext, Response, Slot, resume_from};
use crate::origins::{Origin, Verdict};
use crate::phone::driver::{Subscription, hello_json};
use crate::protocol::{Action, ErrorBody, ErrorCode, Reply, Request, parse_request};
use crate::rate::TokenBucket;

/// Largest request a page may send; every action fits in far less.
const MAX_MESSAGE: usize = 64 * 1024;
/// Server pings keep NAT-less loopback sockets honest and notice a frozen tab.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Close code telling the shim it fell behind and should resume with `?since=`.
pub const CLOSE_LAGGED: u16 = 4000;
/// Close code telling the shim the agent revoked this origin: do not reconnect by yourself.
pub const CLOSE_REVOKED: u16 = 4003;

/// The origin a connection acts for, or why its upgrade is refused (the text is what the 403
/// body says).
fn admit(head: &RequestHead, context: &ApiContext) -> Result<Origin, &'static str> {
    let Some(raw) = head.header("origin") else {
        return Err("an Origin header is required");
    };
    let Ok(origin) = Origin::parse(raw) else {
        return Err("this Origin cannot be allowed (null or malformed)");
    };
    // The daemon's iframe bridge connects from our own origin on behalf of the page that
    // embeds it; that page's origin (checked by the bridge with postMessage) is what counts.
    let effective = match head.query.get("embedder") {
        Some(embedder) if context.policy.is_own(&origin) => match Origin::parse(embedder) {
            Ok(embedder) => embedder,
            Err(_) => return Err("the embedding page's origin cannot be allowed"),
        },
        _ => origin,
    };
    match context.policy.check(&effective) {
        Verdict::Allowed => Ok(effective),
        Verdict::Pending => Err(
            "this origin is waiting for the agent's approval (tray menu or `softphone-bridge origins approve`)",
        ),
        Verdict::Denied => Err("this origin was denied by the agent"),
        Verdict::Insecure => {
            Err("plain http:// origins cannot be approved; serve the page over https://")
        }
    }
}

/// What one connection may do, decided at the upgrade.
pub(super) struct Peer {
    pub origin: Origin,
    /// Listed in `[provisioning] allowed_origins`: may `provision` and `logout`.
    pub may_provision: bool,
}

pub(super) async fn upgrade<S>(
    mut stream: S,
    head: RequestHead,
    context: &ApiContext,
    deadline: tokio::time::Instant,
    handshake: Slot<'_, u32>,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if !head.is_websocket_upgrade() {
        return Response::text(426, "this endpoint speaks WebSocket only")
            .write_to(&mut stream, false)
            .await;
    }
    // Watch for revocations from before the check, so one that lands while this connection is
    // being set up still ends it.
    let revocations = context.policy.changes();
    let origin = match admit(&head, context) {
        Ok(origin) => origin,
        Err(reason) => {
            tracing::warn!(
                origin = head.header("origin").map(shorten).unwrap_or_default(),
                "refused WebSocket: {reason}"
            );
            return Response::text(403, reason)
                .write_to(&mut stream, false)
                .await;
        }
    };
    let Some(session) = context.sessions.take(Some(origin.clone())) else {
        return Response::text(
            429,
            "this origin has too many open connections; close some tabs",
        )
        .write_to(&mut stream, false)
        .await;
    };
    let (Some(key), Some("13")) = (
        head.header("sec-websocket-key"),
        head.header("sec-websocket-version"),
    ) else {
        return Response::text(400, "needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13")
            .write_to(&mut stream, false)
            .await;
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    let wrote = tokio::time::timeout_at(
        deadline,
        tokio::io::AsyncWriteExt::write_all(&mut stream, response.as_bytes()),
    )
    .await;
    if !matches!(wrote, Ok(Ok(()))) {
        return Ok(());
    }

    let subscription = match context
        .phone
        .subscribe(resume_from(&head), Some(origin.clone()))
        .await
    {
        Ok(subscription) => subscription,
        Err(e) => return Err(std::io::Error::other(e)),
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let ws =
        WebSocketStream::from_partially_read(stream, head.rest, Role::Server, Some(config)).await;
    let peer = Peer {
        may_provision: context.provisioners.contains(&origin),
        origin,
    };
    run(
        ws,
        subscription,
        context,
        peer,
        deadline,
        revocations,
        handshake,
    )
    .await;
    drop(session);
    Ok(())
}

async fn run<S>(
    ws: WebSocketStream<S>,
    subscription: Subscription,
    context: &ApiContext,
    peer: Peer,
    deadline: tokio::time::Instant,
    mut revocations: tokio::sync::watch::Receiver<u64>,
    handshake: Slot<'_, u32>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut bucket = TokenBucket::new(
        context.limits.actions_per_second,
        context.limits.action_burst,
        std::time::Instant::now(),
    );

    let (mut sink, mut frames) = ws.split();
    let Subscription {
        hello,
        replay,
        mut events,
    } = subscription;
    let mut sent_seq = hello.last_seq;
    let sent = tokio::time::timeout_at(deadline, sink.send(Message::text(hello_json(hello)))).await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    // Established: the peer process's handshake place is free for its next tab.
    drop(handshake);
    if !context.policy.still_allowed(&peer.origin) {
        let _ = sink.send(revoked()).await;
        return;
    }
    for (n, published) in replay.into_iter().enumerate() {
        // A replay is capped (a few MB), but the agent may revoke the origin during it.
        if n % 256 == 255 && !context.policy.still_allowed(&peer.origin) {
            let _ = sink.send(revoked()).await;
            return;
        }
        if sink
            .send(Message::text(published.json.clone()))
            .await
            .is_err()
        {
            return;
        }
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    loop {
        tokio::select! {
            frame = frames.next() => {
                let reply = match frame {
                    Some(Ok(Message::Text(text))) => handle_text(&text, context, &peer, &mut bucket).await,
                    Some(Ok(Message::Binary(_))) => Reply::err(None, ErrorBody::new(ErrorCode::InvalidJson, "binary frames are not supported; send JSON text")),
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => continue,
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        let _ = sink.send(close(CloseCode::Size, &format!("message too big: {e}"))).await;
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::debug!("WebSocket read failed: {e}");
                        break;
                    }
                };
                // Events an action caused go out before its reply, so a page that awaits the
                // reply already sees the new state.
                let mut flushed = Ok(());
                loop {
                    let outcome = match events.try_recv() {
                        Ok(published) => Ok(published),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                        Err(TryRecvError::Closed) => Err(RecvError::Closed),
                    };
                    flushed = forward(&mut sink, outcome, &mut sent_seq).await;
                    if flushed.is_err() {
                        break;
                    }
                }
                if flushed.is_err() || sink.send(Message::text(reply.to_json())).await.is_err() {
                    break;
                }
            }
            event = events.recv() => {
                if forward(&mut sink, event, &mut sent_seq).await.is_err() { break; }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() { break; }
            }
            // The agent denied or forgot this origin (tray or CLI): its connections end now.
            Ok(()) = revocations.changed() => {
                if !context.policy.still_allowed(&peer.origin) {
                    tracing::info!(origin = %peer.origin, "origin no longer allowed; closing its connection");
                    let _ = sink.send(revoked()).await;
                    break;
                }
            }
        }
    }
    let _ = sink.close().await;
}

/// Sends one event from the live feed; `Err` ends the session.
async fn forward<K>(
    sink: &mut K,
    event: Result<std::sync::Arc<crate::phone::event_log::Published>, RecvError>,
    sent_seq: &mut u64,
) -> Result<(), ()>
where
    K: futures_util::Sink<Message> + Unpin,
{
    match event {
        Ok(published) => {
            // Replayed events may overlap the live feed by a few; send each seq once.
            if published.stored {
                if published.seq <= *sent_seq {
                    return Ok(());
                }
                *sent_seq = published.seq;
            }
            sink.send(Message::text(published.json.clone()))
                .await
                .map_err(|_| ())
        }
        Err(RecvError::Lagged(missed)) => {
            tracing::warn!(missed, "a client fell behind; asking it to resume");
            let _ = sink
                .send(close(
                    CloseCode::Library(CLOSE_LAGGED),
                    "lagged; reconnect with ?since=",
                ))
                .await;
            Err(())
        }
        Err(RecvError::Closed) => Err(()),
    }
}

/// The close frame for an origin the agent revoked (the shim does not reconnect after it).
fn revoked() -> Message {
    close(
        CloseCode::Library(CLOSE_REVOKED),
        "this origin is no longer allowed",
    )
}

fn close(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_owned()),
    }))
}

async fn handle_text(
    text: &str,
    context: &ApiContext,
    peer: &Peer,
    bucket: &mut TokenBucket,
) -> Reply {
    // Every frame counts, malformed or not, so a flood of garbage is limited too; and every
    // connection of one origin shares the origin's budget, so opening more does not buy more.
    let now = std::time::Instant::now();
    let wait = if !bucket.try_take(now) {
        Some(bucket.retry_after())
    } else {
        context.origin_budget.try_take(&peer.origin, now).err()
    };
    if let Some(wait) = wait {
        let id = parse_request(text).ok().map(|r| r.id);
        let wait = wait.as_millis().max(1);
        return Reply::err(
            id,
            ErrorBody::new(
                ErrorCode::RateLimited,
                format!("too many actions; retry in {wait} ms"),
            ),
        );
    }
    let Request { id, action } = match parse_request(text) {
        Ok(request) => request,
        Err(reply) => return reply,
    };
    if matches!(action, Action::Provision(_) | Action::Logout) && !peer.may_provision {
        let message = format!(
            "only origins IT lists in [provisioning] allowed_origins may `{}`; {} is not listed",
            action.name(),
            peer.origin
        );
        return Reply::err(Some(id), ErrorBody::new(ErrorCode::Forbidden, message));
    }
    let name = action.name();
    match context
        .phone
        .act_for(Some(peer.origin.clone()), action)
        .await
    {
        Ok(Ok(result)) => Reply::ok(id, result),
        Ok(Err(e)) => {
            tracing::debug!(action = name, "action refused: {e}");
            Reply::err(Some(id), ErrorBody::new(e.code(), e.to_string()))
        }
        Err(e) => Reply::err(Some(id), ErrorBody::new(ErrorCode::Internal, e.to_string())),
    }
}

/// At most 80 characters of a header for a log line.
fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}
