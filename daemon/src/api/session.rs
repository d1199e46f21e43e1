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

use super::rate::TokenBucket;
use super::request::RequestHead;
use super::{ApiContext, Response, resume_from};
use crate::origins::{Origin, Verdict};
use crate::phone::driver::{PhoneHandle, Subscription, hello_json};
use crate::protocol::{ErrorBody, ErrorCode, Reply, Request, parse_request};

/// Largest request a page may send; every action fits in far less.
const MAX_MESSAGE: usize = 64 * 1024;
/// Server pings keep NAT-less loopback sockets honest and notice a frozen tab.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Close code telling the shim it fell behind and should resume with `?since=`.
pub const CLOSE_LAGGED: u16 = 4000;

/// Why an upgrade is refused; the text is what the 403 body says.
fn refusal(head: &RequestHead, context: &ApiContext) -> Option<&'static str> {
    let Some(raw) = head.header("origin") else {
        return Some("an Origin header is required");
    };
    let Ok(origin) = Origin::parse(raw) else {
        return Some("this Origin cannot be allowed (null or malformed)");
    };
    // The daemon's iframe bridge connects from our own origin on behalf of the page that
    // embeds it; that page's origin (checked by the bridge with postMessage) is what counts.
    let effective = match head.query.get("embedder") {
        Some(embedder) if context.policy.is_own(&origin) => match Origin::parse(embedder) {
            Ok(embedder) => embedder,
            Err(_) => return Some("the embedding page's origin cannot be allowed"),
        },
        _ => origin,
    };
    match context.policy.check(&effective) {
        Verdict::Allowed => None,
        Verdict::Pending => Some(
            "this origin is waiting for the agent's approval (tray menu or `softphone-bridge origins approve`)",
        ),
        Verdict::Denied => Some("this origin was denied by the agent"),
    }
}

pub(super) async fn upgrade<S>(
    mut stream: S,
    head: RequestHead,
    context: &ApiContext,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if !head.is_websocket_upgrade() {
        return Response::text(426, "this endpoint speaks WebSocket only")
            .write_to(&mut stream, false)
            .await;
    }
    if let Some(reason) = refusal(&head, context) {
        tracing::warn!(
            origin = head.header("origin").unwrap_or("(none)"),
            "refused WebSocket: {reason}"
        );
        return Response::text(403, reason)
            .write_to(&mut stream, false)
            .await;
    }
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
    tokio::io::AsyncWriteExt::write_all(&mut stream, response.as_bytes()).await?;

    let subscription = match context.phone.subscribe(resume_from(&head)).await {
        Ok(subscription) => subscription,
        Err(e) => return Err(std::io::Error::other(e)),
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let ws =
        WebSocketStream::from_partially_read(stream, head.rest, Role::Server, Some(config)).await;
    run(
        ws,
        subscription,
        context.phone.clone(),
        TokenBucket::new(
            context.limits.actions_per_second,
            context.limits.action_burst,
            std::time::Instant::now(),
        ),
    )
    .await;
    Ok(())
}

async fn run<S>(
    ws: WebSocketStream<S>,
    subscription: Subscription,
    phone: PhoneHandle,
    mut bucket: TokenBucket,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut frames) = ws.split();
    let Subscription {
        hello,
        replay,
        mut events,
    } = subscription;
    let mut sent_seq = hello.last_seq;
    if sink.send(Message::text(hello_json(hello))).await.is_err() {
        return;
    }
    for published in replay {
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
                    Some(Ok(Message::Text(text))) => handle_text(&text, &phone, &mut bucket).await,
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
            if published.message.seq <= *sent_seq {
                return Ok(());
            }
            *sent_seq = published.message.seq;
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

fn close(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_owned()),
    }))
}

async fn handle_text(text: &str, phone: &PhoneHandle, bucket: &mut TokenBucket) -> Reply {
    // Every frame counts, malformed or not, so a flood of garbage is limited too.
    if !bucket.try_take(std::time::Instant::now()) {
        let id = parse_request(text).ok().map(|r| r.id);
        let wait = bucket.retry_after().as_millis().max(1);
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
    let name = action.name();
    match phone.act(action).await {
        Ok(Ok(result)) => Reply::ok(id, result),
        Ok(Err(e)) => {
            tracing::debug!(action = name, "action refused: {e}");
            Reply::err(Some(id), ErrorBody::new(e.code(), e.to_string()))
        }
        Err(e) => Reply::err(Some(id), ErrorBody::new(ErrorCode::Internal, e.to_string())),
    }
}
