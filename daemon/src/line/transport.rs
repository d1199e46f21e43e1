//! SIP transports for the line: UDP (one connected socket), TCP and TLS (one stream each, framed
//! by Content-Length, RFC 5626 CRLF keepalives), TLS, and WebSocket (RFC 7118: `ws`/`wss`,
//! subprotocol `sip`, one SIP message per frame, WebSocket pings as keepalives). TLS and WSS verify
//! the server against the system roots, or only against `[account] ca_file` when set, by the
//! configured host name or IP; or accept exactly the certificate the admin pinned (see [`tls`]).

pub mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use sip_core::flow::{Pong, stun};
use sip_core::message::{Message, ParseError, Parsed, bad_request, parse_datagram, parse_stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use self::tls::{CertFingerprint, TlsError, Trust};
use crate::config::Transport as Kind;

/// What arrived.
#[derive(Debug)]
pub enum Inbound {
    Message(Message),
    /// Bytes that are not a SIP message; logged and dropped, never fatal. When they were a
    /// request, `reply` holds the `400 Bad Request` to send back (RFC 3261 §8.2, §18.3) if one
    /// could be built from its head (see [`bad_request`]).
    Garbage {
        error: ParseError,
        reply: Option<Vec<u8>>,
    },
    /// A keepalive ping, answered by the transport.
    Ping,
    /// A keepalive's answer: a CRLF or WebSocket pong on a stream, or on UDP a STUN Binding
    /// response (RFC 5626 §4.4).
    Pong(Pong),
    /// A STUN message other than the answer to our ping: dropped.
    Stray,
}

/// A plain or TLS stream under a WebSocket.
pub trait StreamIo: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> StreamIo for T {}

#[derive(Debug)]
pub enum Transport {
    Udp {
        socket: UdpSocket,
    },
    Tcp {
        stream: TcpStream,
        buffer: Vec<u8>,
    },
    Tls {
        stream: Box<TlsStream<TcpStream>>,
        buffer: Vec<u8>,
    },
    Ws {
        stream: Box<WebSocketStream<Box<dyn StreamIo>>>,
        secure: bool,
        local: SocketAddr,
    },
}

/// Where to connect: the address, the name the server's certificate (and the WebSocket `Host`)
/// must carry, the WebSocket path, a private CA, and the certificate's pinned SHA-256.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub peer: SocketAddr,
    pub server_name: &'a str,
    pub ws_path: &'a str,
    pub ca_file: Option<&'a Path>,
    pub tls_pin: Option<CertFingerprint>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot reach {peer}: {source}")]
    Connect {
        peer: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0} is not supported by this build yet")]
    Unsupported(&'static str),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("connection closed by the server")]
    Closed,
    #[error("the server did not answer a keepalive (RFC 5626: the flow failed)")]
    NoPong,
    #[error("WebSocket: {0}")]
    WebSocket(String),
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
}

impl Transport {
    /// Connects to `target.peer`; for TLS and WSS, `server_name` is what the certificate must
    /// name and `ca_file` replaces the system roots, unless `tls_pin` names the certificate.
    pub async fn connect(kind: Kind, target: Target<'_>) -> Result<Self, TransportError> {
        let Target {
            peer,
            server_name,
            ws_path,
            ca_file,
            tls_pin,
        } = target;
        let trust = Trust {
            pin: tls_pin,
            ca_file,
        };
        let connect_err = |source| TransportError::Connect { peer, source };
        match kind {
            Kind::Udp => {
                let any: SocketAddr = if peer.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                }
                .parse()
                .map_err(|_| TransportError::Unsupported("this address family"))?;
                let socket = UdpSocket::bind(any).await.map_err(connect_err)?;
                socket.connect(peer).await.map_err(connect_err)?;
                Ok(Self::Udp { socket })
            }
            Kind::Tcp => {
                let stream = TcpStream::connect(peer).await.map_err(connect_err)?;
                // Two small writes (ACK, then a re-INVITE) must not wait on Nagle + delayed ACK.
                stream.set_nodelay(true).map_err(connect_err)?;
                Ok(Self::Tcp {
                    stream,
                    buffer: Vec::with_capacity(4096),
                })
            }
            Kind::Tls => {
                let stream = tls_connect(peer, server_name, trust).await?;
                Ok(Self::Tls {
                    stream: Box::new(stream),
                    buffer: Vec::with_capacity(4096),
                })
            }
            Kind::Ws | Kind::Wss => {
                let secure = kind == Kind::Wss;
                let (io, local): (Box<dyn StreamIo>, SocketAddr) = if secure {
                    let stream = tls_connect(peer, server_name, trust).await?;
                    let local = stream.get_ref().0.local_addr()?;
                    (Box::new(stream), local)
                } else {
                    let stream = TcpStream::connect(peer).await.map_err(connect_err)?;
                    stream.set_nodelay(true).map_err(connect_err)?;
                    let local = stream.local_addr()?;
                    (Box::new(stream), local)
                };
                let host = if server_name.contains(':') && !server_name.starts_with('[') {
                    format!("[{server_name}]")
                } else {
                    server_name.to_owned()
                };
                let scheme = if secure { "wss" } else { "ws" };
                let url = format!("{scheme}://{host}:{}{ws_path}", peer.port());
                let mut request = url
                    .as_str()
                    .into_client_request()
                    .map_err(|e| TransportError::WebSocket(format!("{url}: {e}")))?;
                request
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
                let (stream, response) = tokio_tungstenite::client_async(request, io)
                    .await
                    .map_err(|e| TransportError::WebSocket(format!("handshake with {url}: {e}")))?;
                // RFC 7118 §4.1: the server must agree to speak SIP.
                let agreed = response
                    .headers()
                    .get("Sec-WebSocket-Protocol")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("sip"));
                if !agreed {
                    return Err(TransportError::WebSocket(format!(
                        "{url} did not accept the \"sip\" subprotocol"
                    )));
                }
                Ok(Self::Ws {
                    stream: Box::new(stream),
                    secure,
                    local,
                })
            }
        }
    }

    pub fn is_reliable(&self) -> bool {
        !matches!(self, Self::Udp { .. })
    }

    /// The Via transport token.
    pub fn token(&self) -> &'static str {
        match self {
            Self::Udp { .. } => "UDP",
            Self::Tcp { .. } => "TCP",
            Self::Tls { .. } => "TLS",
            Self::Ws { secure: false, .. } => "WS",
            Self::Ws { secure: true, .. } => "WSS",
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Self::Udp { socket } => socket.local_addr(),
            Self::Tcp { stream, .. } => stream.local_addr(),
            Self::Tls { stream, .. } => stream.get_ref().0.local_addr(),
            Self::Ws { local, .. } => Ok(*local),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        match self {
            Self::Udp { socket } => {
                socket.send(bytes).await?;
            }
            Self::Tcp { stream, .. } => stream.write_all(bytes).await?,
            Self::Tls { stream, .. } => {
                stream.write_all(bytes).await?;
                stream.flush().await?;
            }
            // SIP is text; a frame per message (RFC 7118 §5.2).
            Self::Ws { stream, .. } => {
                let text = String::from_utf8_lossy(bytes).into_owned();
                stream.send(WsMessage::text(text)).await.map_err(ws_error)?;
            }
        }
        Ok(())
    }

    /// Keeps NAT bindings and the connection alive: CRLF on UDP, CRLFCRLF on streams (RFC 5626).
    pub async fn keepalive(&mut self) -> Result<(), TransportError> {
        match self {
            Self::Udp { .. } => self.send(b"\r\n").await,
            Self::Tcp { .. } | Self::Tls { .. } => self.send(b"\r\n\r\n").await,
            Self::Ws { stream, .. } => stream
                .send(WsMessage::Ping(Default::default()))
                .await
                .map_err(ws_error),
        }
    }

    /// Pings the flow for RFC 5626: a STUN Binding request on UDP (the registrar's edge answers
    /// it), otherwise what [`Self::keepalive`] sends, whose answer is a pong too.
    pub async fn flow_ping(&mut self, transaction: [u8; 12]) -> Result<(), TransportError> {
        match self {
            Self::Udp { socket } => {
                socket.send(&stun::binding_request(transaction)).await?;
                Ok(())
            }
            _ => self.keepalive().await,
        }
    }

    /// Waits for the next inbound item. Cancel-safe for use in `select!`: a partial TCP read
    /// stays in the buffer.
    pub async fn recv(&mut self) -> Result<Inbound, TransportError> {
        match self {
            Self::Udp { socket } => {
                let mut datagram = vec![0u8; sip_core::message::MAX_MESSAGE];
                let n = socket.recv(&mut datagram).await?;
                let bytes = &datagram[..n];
                if bytes.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | 0)) {
                    return Ok(Inbound::Ping);
                }
                // STUN shares the socket (RFC 5626 §4.4.2); only a Binding success is ours.
                if stun::is_stun(bytes) {
                    return Ok(match stun::binding_response(bytes) {
                        Some((transaction, true, mapped)) => Inbound::Pong(Pong::Stun {
                            transaction,
                            mapped,
                        }),
                        Some((transaction, false, _)) => {
                            Inbound::Pong(Pong::StunError { transaction })
                        }
                        None => Inbound::Stray,
                    });
                }
                Ok(inbound(bytes))
            }
            Self::Tcp { stream, buffer } => recv_stream(stream, buffer).await,
            Self::Tls { stream, buffer } => recv_stream(stream.as_mut(), buffer).await,
            Self::Ws { stream, .. } => loop {
                let frame = stream
                    .next()
                    .await
                    .ok_or(TransportError::Closed)?
                    .map_err(ws_error)?;
                let bytes = match &frame {
                    WsMessage::Text(text) => text.as_bytes(),
                    WsMessage::Binary(bytes) => &bytes[..],
                    // Pongs are queued by tungstenite; flushing sends them now.
                    WsMessage::Ping(_) => {
                        stream.flush().await.map_err(ws_error)?;
                        return Ok(Inbound::Ping);
                    }
                    WsMessage::Pong(_) => return Ok(Inbound::Pong(Pong::Stream)),
                    WsMessage::Close(_) => return Err(TransportError::Closed),
                    WsMessage::Frame(_) => continue,
                };
                return Ok(inbound(bytes));
            },
        }
    }
}

/// A whole message (a UDP datagram, a WebSocket frame), or the garbage it is.
fn inbound(bytes: &[u8]) -> Inbound {
    match parse_datagram(bytes) {
        Ok(message) => Inbound::Message(message),
        Err(error) => Inbound::Garbage {
            reply: bad_request(bytes, &error),
            error,
        },
    }
}

fn ws_error(error: tokio_tungstenite::tungstenite::Error) -> TransportError {
    use tokio_tungstenite::tungstenite::Error;
    match error {
        Error::ConnectionClosed | Error::AlreadyClosed => TransportError::Closed,
        Error::Io(e) => TransportError::Io(e),
        other => TransportError::WebSocket(other.to_string()),
    }
}

async fn tls_connect(
    peer: SocketAddr,
    server_name: &str,
    trust: Trust<'_>,
) -> Result<TlsStream<TcpStream>, TransportError> {
    let config = tls::client_config(trust)?;
    let name = tls::server_name(server_name)?;
    let tcp = TcpStream::connect(peer)
        .await
        .map_err(|source| TransportError::Connect { peer, source })?;
    // Two small writes (ACK, then a re-INVITE) must not wait on Nagle + delayed ACK.
    tcp.set_nodelay(true)
        .map_err(|source| TransportError::Connect { peer, source })?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| TlsError::from_handshake(server_name, e).into())
}

/// Reads until the buffer holds a whole frame. Cancel-safe: a partial read stays in `buffer`.
async fn recv_stream<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
) -> Result<Inbound, TransportError> {
    loop {
        match parse_stream(buffer) {
            Ok(Some((parsed, used))) => {
                buffer.drain(..used);
                return Ok(match parsed {
                    Parsed::Message(message) => Inbound::Message(message),
                    Parsed::Ping => {
                        stream.write_all(b"\r\n").await?;
                        Inbound::Ping
                    }
                    Parsed::Pong => Inbound::Pong(Pong::Stream),
                });
            }
            Ok(None) => {}
            Err(error) => {
                // The head decides whether we can answer: `bad_request` needs it whole (up to
                // the blank line), so an error before that (too large, no blank line yet)
                // gets no answer.
                let reply = bad_request(buffer, &error);
                // A stream cannot resynchronize after a framing error: drop what we have.
                buffer.clear();
                return Ok(Inbound::Garbage { error, reply });
            }
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(TransportError::Closed);
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests;
