//! The local API: HTTPS and WSS on one port, on loopback addresses only.
//!
//! Every request passes the `Host` check (DNS rebinding); `/ws` also needs an allowed `Origin`.
//! A plain-HTTP request on the same port gets only `/ping`, which lets the shim tell "daemon
//! running but certificate not trusted" apart from "daemon not running".

mod assets;
pub mod peer;
mod rate;
mod request;
mod session;
mod slots;

pub use rate::{LogBudget, OriginBudget};
pub use request::percent_decode;
pub use slots::{Slot, Slots};

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::config::Ports;
use crate::origins::{Origin, OriginPolicy, Verdict};
use crate::phone::driver::{PhoneHandle, Resume};
use request::{HeadError, RequestHead, read_head};

/// A page cannot hold more connections than this open at once (each tab needs one).
const MAX_CONNECTIONS: usize = 256;
/// Time allowed for the TLS handshake plus the request head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS records start with this byte (handshake content type).
const TLS_HANDSHAKE: u8 = 0x16;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub actions_per_second: u32,
    pub action_burst: u32,
}

/// Everything a connection needs; shared read-only by all of them.
pub struct ApiContext {
    pub phone: PhoneHandle,
    pub policy: OriginPolicy,
    pub port: u16,
    pub limits: Limits,
    pub tls: TlsAcceptor,
    /// `[provisioning] allowed_origins`: the only origins that may `provision` and `logout`.
    pub provisioners: Vec<Origin>,
    /// Actions per origin, across all of its connections.
    pub origin_budget: rate::OriginBudget,
    /// Handshakes in progress per peer process.
    pub handshakes: Slots<u32>,
    /// Open sessions per origin (the tray lists them as connected pages).
    pub sessions: Arc<Slots<Origin>>,
    /// Log lines about refused connections.
    pub refusals: LogBudget,
}

/// Connections one local process may have between accept and `hello`. A browser's network
/// process opens every tab's connections, so this counts only handshakes in progress: an
/// established page does not use up its browser's share.
pub const MAX_HANDSHAKES_PER_PROCESS: usize = 16;
/// Handshakes in progress, all processes together, above which each new one's process is looked
/// up and capped.
const LOOK_UP_PROCESSES_ABOVE: usize = 8;
/// Open WebSocket sessions one origin may hold (tabs of one CRM, each with the shim).
pub const MAX_SESSIONS_PER_ORIGIN: usize = 32;

/// How often the approvals file is checked for changes (the CLI edits it), so that a revoked
/// origin's connections end within this time.
const APPROVALS_CHECK: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    V4 { port: u16, source: std::io::Error },
    #[error(
        "[::1]:{port} is taken{by}: pages that try IPv6 first would reach that process instead of this daemon; stop it or choose another [api] port"
    )]
    V6Taken { port: u16, by: String },
    #[error(
        "every port of {first}-{last} is taken (one per daemon on this machine): widen [api] port"
    )]
    RangeTaken { first: u16, last: u16 },
    #[error(
        "[api] port is a range (a terminal server), but this build cannot tell which OS user a local connection comes from, so one agent's page could reach another agent's daemon; use one port per machine (see docs/security.md)"
    )]
    RangeWithoutUserCheck { first: u16 },
}

impl BindError {
    pub fn port(&self) -> u16 {
        match self {
            Self::V4 { port, .. } | Self::V6Taken { port, .. } => *port,
            Self::RangeTaken { first, .. } | Self::RangeWithoutUserCheck { first } => *first,
        }
    }

    /// Another process holds the port (on IPv4 or IPv6), or the OS keeps it (Windows reserves
    /// port ranges for Hyper-V and WSL and refuses them with "access denied"), so the next one of
    /// a range may do.
    fn is_taken(&self) -> bool {
        match self {
            Self::V4 { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::AddrInUse | std::io::ErrorKind::PermissionDenied
            ),
            Self::V6Taken { .. } | Self::RangeTaken { .. } => true,
            Self::RangeWithoutUserCheck { .. } => false,
        }
    }
}

pub struct Listeners {
    pub port: u16,
    listeners: Vec<TcpListener>,
}

impl Listeners {
    /// Binds the first port of `ports` that is free on both loopbacks. On a terminal server every
    /// agent's daemon shares one range, so each takes the next free port; a port held by anyone
    /// (another daemon, another program) is skipped.
    pub async fn bind_first_free(ports: Ports) -> Result<Self, BindError> {
        if !ports.is_range() {
            return Self::bind(ports.first()).await;
        }
        // Several daemons on one machine are safe only where each refuses other users' peers.
        if !peer::CHECKS_OS_USER {
            return Err(BindError::RangeWithoutUserCheck {
                first: ports.first(),
            });
        }
        for port in ports.iter() {
            match Self::bind(port).await {
                Err(e) if e.is_taken() => continue,
                bound => return bound,
            }
        }
        Err(BindError::RangeTaken {
            first: ports.first(),
            last: ports.last(),
        })
    }

    /// Binds `127.0.0.1:port` and `[::1]:port` (the same port; 0 picks a free one). A machine
    /// without IPv6 loopback gets a warning and IPv4 only; but when another process holds
    /// `[::1]:port` the daemon refuses to start half-bound, since clients that try `::1` first
    /// would talk to that process.
    pub async fn bind(port: u16) -> Result<Self, BindError> {
        // With port 0 the free IPv4 port may be taken on IPv6: try a few.
        for _ in 0..8 {
            let v4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
                .await
                .map_err(|source| BindError::V4 { port, source })?;
            let bound = v4
                .local_addr()
                .map_err(|source| BindError::V4 { port, source })?
                .port();
            let mut listeners = vec![v4];
            match TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, bound))).await {
                Ok(v6) => listeners.push(v6),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    if port == 0 {
                        continue;
                    }
                    let by = peer::listener_of(SocketAddr::from((Ipv6Addr::LOCALHOST, bound)))
                        .map(|who| format!(" by {who}"))
                        .unwrap_or_default();
                    return Err(BindError::V6Taken { port: bound, by });
                }
                Err(e) => {
                    tracing::warn!("no IPv6 loopback here; not listening on [::1]:{bound}: {e}")
                }
            }
            return Ok(Self {
                port: bound,
                listeners,
            });
        }
        Err(BindError::V6Taken {
            port,
            by: String::new(),
        })
    }

    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }
}

/// Accepts connections until the task is dropped.
pub async fn serve(listeners: Listeners, context: Arc<ApiContext>) {
    peer::announce();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut accepting = tokio::task::JoinSet::new();
    let watcher = Arc::clone(&context);
    accepting.spawn(async move {
        let mut every = tokio::time::interval(APPROVALS_CHECK);
        loop {
            every.tick().await;
            for origin in watcher.policy.refresh() {
                let _ = watcher.phone.forget_origin(origin).await;
            }
        }
    });
    for listener in listeners.listeners {
        let context = Arc::clone(&context);
        let permits = Arc::clone(&permits);
        accepting.spawn(async move {
            loop {
                // At the limit, wait instead of refusing: new connections queue in the kernel's
                // backlog, and a real page gets its turn as soon as the flood's handshakes are
                // refused or time out, instead of being closed while the flood holds every place.
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let context = Arc::clone(&context);
                tokio::spawn(async move {
                    handle_connection(stream, context).await;
                    drop(permit);
                });
            }
        });
    }
    while accepting.join_next().await.is_some() {}
}

async fn handle_connection(stream: TcpStream, context: Arc<ApiContext>) {
    // One deadline from accept to `hello` (or to the response): a client that trickles bytes
    // cannot hold a connection longer by spreading them over the phases.
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    // Another OS user's process is closed on before TLS (see `peer`); one process may hold only
    // so many connections, so a local flood cannot lock the browser out.
    let Some(peer) = peer::admit(&stream, &context.refusals).await else {
        return;
    };
    // Which process it is costs a scan of /proc: only worth it when handshakes pile up (a flood).
    let pid = if context.handshakes.in_progress() >= LOOK_UP_PROCESSES_ABOVE {
        peer::process_of(peer).await
    } else {
        None
    };
    let Some(handshake) = context.handshakes.take(pid) else {
        if let Some(suppressed) = context.refusals.allow() {
            tracing::warn!(
                ?pid,
                suppressed,
                "a process has too many connections in handshake; refusing one"
            );
        }
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    let is_tls = match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] == TLS_HANDSHAKE,
        _ => return,
    };
    if !is_tls {
        let _ = tokio::time::timeout_at(deadline, serve_plain_http(stream, context.port)).await;
        return;
    }
    let mut tls = match tokio::time::timeout_at(deadline, context.tls.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake failed: {e}");
            return;
        }
        Err(_) => return,
    };
    let head = match tokio::time::timeout_at(deadline, read_head(&mut tls)).await {
        Ok(Ok(head)) => head,
        Ok(Err(e @ (HeadError::Malformed(_) | HeadError::TooLarge))) => {
            let _ = tokio::time::timeout_at(deadline, Response::from(e).write_to(&mut tls, false))
                .await;
            return;
        }
        _ => return,
    };
    if let Err(e) = route(tls, head, &context, deadline, handshake).await {
        tracing::debug!("request failed: {e}");
    }
}

/// Plain HTTP answers nothing but `/ping`, and only for a local `Host`.
async fn serve_plain_http(mut stream: TcpStream, port: u16) {
    let Ok(head) = read_head(&mut stream).await else {
        return;
    };
    let response = if !head.host_is_local(port) {
        Response::text(
            403,
            "Host must be localhost, 127.0.0.1 or [::1] with this port",
        )
    } else if head.path == "/ping" {
        Response::empty(204).cors_any()
    } else {
        Response::text(400, "use https:// on this port")
    };
    let _ = response.write_to(&mut stream, head.method == "HEAD").await;
}

async fn route<S>(
    mut stream: S,
    head: RequestHead,
    context: &ApiContext,
    deadline: tokio::time::Instant,
    handshake: Slot<'_, u32>,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let head_only = head.method == "HEAD";
    let response = if !head.host_is_local(context.port) {
        tracing::warn!(
            host = head.header("host").unwrap_or(""),
            "refused a request with a foreign Host"
        );
        Response::text(
            403,
            "Host must be localhost, 127.0.0.1 or [::1] with this port",
        )
    } else if head.method == "OPTIONS" {
        // Preflight for the shim's cross-origin GETs (Private Network Access asks for it).
        Response::empty(204)
            .cors_any()
            .header("Access-Control-Allow-Private-Network", "true")
    } else if head.method != "GET" && !head_only {
        Response::text(405, "only GET is served here")
    } else if head.path == "/ws" {
        return session::upgrade(stream, head, context, deadline, handshake).await;
    } else {
        static_response(&head, context)
    };
    tokio::time::timeout_at(deadline, response.write_to(&mut stream, head_only))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)?
}

fn static_response(head: &RequestHead, context: &ApiContext) -> Response {
    const JS: &str = "text/javascript; charset=utf-8";
    const HTML: &str = "text/html; charset=utf-8";
    match head.path.as_str() {
        "/" => Response::empty(302).header("Location", "/demo"),
        "/shim.js" => Response::body(200, JS, assets::SHIM_JS.as_bytes().to_vec()).cors_any(),
        "/shim.mjs" => Response::body(200, JS, assets::shim_module().into_bytes()).cors_any(),
        "/shim.d.ts" => Response::body(
            200,
            "text/plain; charset=utf-8",
            assets::SHIM_DTS.as_bytes().to_vec(),
        )
        .cors_any(),
        "/bridge.js" => Response::body(200, JS, assets::BRIDGE_JS.as_bytes().to_vec()),
        "/bridge.html" => Response::body(200, HTML, assets::BRIDGE_HTML.as_bytes().to_vec())
            .header("Content-Security-Policy", &page_csp(context.port, "'self'")),
        "/demo" => Response::body(200, HTML, assets::DEMO_HTML.as_bytes().to_vec())
            .header(
                "Content-Security-Policy",
                &page_csp(context.port, "'self' 'unsafe-inline'"),
            )
            .header("X-Frame-Options", "DENY"),
        "/panel" => Response::body(200, HTML, assets::PANEL_HTML.as_bytes().to_vec()).header(
            "Content-Security-Policy",
            &format!(
                "{}; frame-ancestors {}",
                page_csp(context.port, "'self'"),
                frame_ancestors(context)
            ),
        ),
        "/panel.js" => Response::body(200, JS, assets::PANEL_JS.as_bytes().to_vec()),
        "/origin" => origin_status(head, context),
        "/ping" => Response::empty(204).cors_any(),
        _ => Response::text(404, "not found"),
    }
}

/// `'self'` and every origin allowed to drive the phone (IT's list, the agent's approvals): they
/// may embed the panel (a CRM side bar, an Open CTI softphone); no one else may frame it. Each is
/// parsed as an origin again (`scheme://host[:port]`), so nothing here widens or breaks the header.
fn frame_ancestors(context: &ApiContext) -> String {
    std::iter::once("'self'".to_owned())
        // Only real origins: a hand-edited approvals file must not add `*` or `https:`.
        .chain(
            context
                .policy
                .embedders()
                .into_iter()
                .filter_map(|o| Origin::parse(&o).ok())
                .map(|o| o.as_str().to_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tells a page whether its own origin may connect, so the shim can explain a refusal.
/// Only the asking origin's status is revealed, never the lists.
fn origin_status(head: &RequestHead, context: &ApiContext) -> Response {
    let Some(raw) = head.header("origin") else {
        return Response::text(400, "send an Origin header");
    };
    let verdict = match Origin::parse(raw) {
        Ok(origin) => match context.policy.check(&origin) {
            Verdict::Allowed => "allowed",
            Verdict::Pending => "pending",
            Verdict::Denied => "denied",
            Verdict::Insecure => "insecure",
        },
        Err(_) => "invalid",
    };
    let body = serde_json::json!({ "origin": raw, "status": verdict }).to_string();
    Response::body(200, "application/json", body.into_bytes())
        .header("Access-Control-Allow-Origin", raw)
        .header("Vary", "Origin")
}

fn page_csp(port: u16, scripts: &str) -> String {
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; \
         connect-src 'self' wss://localhost:{port} wss://127.0.0.1:{port}; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'"
    )
}

/// A complete HTTP/1.1 response; every connection closes after one.
pub(crate) struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn body(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }
    pub(crate) fn text(status: u16, text: &str) -> Self {
        Self::body(
            status,
            "text/plain; charset=utf-8",
            format!("{text}\n").into_bytes(),
        )
    }
    fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Public, secret-free resources (the shim, its types, `/ping`) may be read from any page.
    fn cors_any(self) -> Self {
        self.header("Access-Control-Allow-Origin", "*")
    }

    pub(crate) async fn write_to<W: AsyncWrite + Unpin>(
        &self,
        out: &mut W,
        head_only: bool,
    ) -> std::io::Result<()> {
        let reason = match self.status {
            200 => "OK",
            204 => "No Content",
            302 => "Found",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            426 => "Upgrade Required",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            _ => "Error",
        };
        let mut text = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str(&format!(
            "Content-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
             Referrer-Policy: no-referrer\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        out.write_all(text.as_bytes()).await?;
        if !head_only {
            out.write_all(&self.body).await?;
        }
        out.flush().await?;
        out.shutdown().await
    }
}

impl From<HeadError> for Response {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::TooLarge => Response::text(431, "request head too large"),
            other => Response::text(400, &other.to_string()),
        }
    }
}

/// Parses `?since=SEQ&instance=ID` into a resume request.
fn resume_from(head: &RequestHead) -> Option<Resume> {
    let since = head.query.get("since")?.parse().ok()?;
    let instance = head.query.get("instance").cloned().unwrap_or_default();
    Some(Resume { instance, since })
}
