//! SIP transports for the line: UDP (one connected socket) and TCP (one stream, framed by
//! Content-Length, RFC 5626 CRLF keepalives). TLS and WebSocket come next.

use std::net::SocketAddr;

use sip_core::message::{Message, ParseError, Parsed, parse_datagram, parse_stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::config::Transport as Kind;

/// What arrived.
#[derive(Debug)]
pub enum Inbound {
    Message(Message),
    /// Bytes that are not a SIP message; logged and dropped, never fatal.
    Garbage(ParseError),
    /// A keepalive ping (answered by the transport) or pong.
    KeepAlive,
}

#[derive(Debug)]
pub enum Transport {
    Udp { socket: UdpSocket },
    Tcp { stream: TcpStream, buffer: Vec<u8> },
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot reach {peer}: {source}")]
    Connect { peer: SocketAddr, source: std::io::Error },
    #[error("{0} is not supported by this build yet")]
    Unsupported(&'static str),
    #[error("connection closed by the server")]
    Closed,
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
}

impl Transport {
    pub async fn connect(kind: Kind, peer: SocketAddr) -> Result<Self, TransportError> {
        let connect_err = |source| TransportError::Connect { peer, source };
        match kind {
            Kind::Udp => {
                let any: SocketAddr = if peer.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().map_err(|_| TransportError::Unsupported("this address family"))?;
                let socket = UdpSocket::bind(any).await.map_err(connect_err)?;
                socket.connect(peer).await.map_err(connect_err)?;
                Ok(Self::Udp { socket })
            }
            Kind::Tcp => {
                let stream = TcpStream::connect(peer).await.map_err(connect_err)?;
                // Two small writes (ACK, then a re-INVITE) must not wait on Nagle + delayed ACK.
                stream.set_nodelay(true).map_err(connect_err)?;
                Ok(Self::Tcp { stream, buffer: Vec::with_capacity(4096) })
            }
            Kind::Tls => Err(TransportError::Unsupported("transport \"tls\"")),
            Kind::Ws | Kind::Wss => Err(TransportError::Unsupported("transport \"ws\"/\"wss\"")),
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
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Self::Udp { socket } => socket.local_addr(),
            Self::Tcp { stream, .. } => stream.local_addr(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        match self {
            Self::Udp { socket } => {
                socket.send(bytes).await?;
            }
            Self::Tcp { stream, .. } => stream.write_all(bytes).await?,
        }
        Ok(())
    }

    /// Keeps NAT bindings and the connection alive: CRLF on UDP, CRLFCRLF on streams (RFC 5626).
    pub async fn keepalive(&mut self) -> Result<(), TransportError> {
        match self {
            Self::Udp { .. } => self.send(b"\r\n").await,
            Self::Tcp { .. } => self.send(b"\r\n\r\n").await,
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
                    return Ok(Inbound::KeepAlive);
                }
                Ok(match parse_datagram(bytes) {
                    Ok(message) => Inbound::Message(message),
                    Err(e) => Inbound::Garbage(e),
                })
            }
            Self::Tcp { stream, buffer } => loop {
                match parse_stream(buffer) {
                    Ok(Some((parsed, used))) => {
                        buffer.drain(..used);
                        return Ok(match parsed {
                            Parsed::Message(message) => Inbound::Message(message),
                            Parsed::Ping => {
                                stream.write_all(b"\r\n").await?;
                                Inbound::KeepAlive
                            }
                            Parsed::Pong => Inbound::KeepAlive,
                        });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // A stream cannot resynchronize after a framing error: drop what we have.
                        buffer.clear();
                        return Ok(Inbound::Garbage(e));
                    }
                }
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(TransportError::Closed);
                }
                buffer.extend_from_slice(&chunk[..n]);
            },
        }
    }
}
