//! A small WSS client for the daemon's own API, trusting only the local CA. The CLI's
//! `status` uses it; so do the end-to-end tests and the benchmark.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

pub type ClientStream = WebSocketStream<TlsStream<TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("WebSocket handshake: {0}")]
    Handshake(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("bad request: {0}")]
    Request(String),
}

/// How to reach the daemon.
#[derive(Debug, Clone)]
pub struct Target {
    /// `localhost`, `127.0.0.1` or `::1`.
    pub host: String,
    pub port: u16,
    /// `/ws` plus any query, e.g. `/ws?since=3&instance=…`.
    pub path: String,
    /// The `Origin` header to send; `None` sends none.
    pub origin: Option<String>,
    /// Overrides the `Host` header (tests use it to play a DNS-rebinding page).
    pub host_header: Option<String>,
}

impl Target {
    pub fn new(port: u16, origin: Option<&str>) -> Self {
        Self {
            host: "localhost".into(),
            port,
            path: "/ws".into(),
            origin: origin.map(str::to_owned),
            host_header: None,
        }
    }

    fn address(&self) -> SocketAddr {
        let ip = match self.host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => ip,
            // "localhost" without a resolver lookup: the daemon always listens on 127.0.0.1.
            Err(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        SocketAddr::new(ip, self.port)
    }

    fn url(&self) -> String {
        let host = match self.host.parse::<Ipv6Addr>() {
            Ok(_) => format!("[{}]", self.host),
            Err(_) => self.host.clone(),
        };
        format!("wss://{host}:{}{}", self.port, self.path)
    }
}

/// TLS client config trusting exactly `ca`.
pub fn tls_config(ca: &CertificateDer<'static>) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Opens a TLS connection (no HTTP yet).
pub async fn connect_tls(
    target: &Target,
    ca: &CertificateDer<'static>,
) -> Result<TlsStream<TcpStream>, ClientError> {
    let address = target.address();
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|e| ClientError::Connect(address, e))?;
    let _ = tcp.set_nodelay(true);
    let config = tls_config(ca).map_err(|e| ClientError::Request(e.to_string()))?;
    let name = ServerName::try_from(target.host.trim_matches(['[', ']']).to_owned())
        .map_err(|e| ClientError::Request(e.to_string()))?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(ClientError::Tls)
}

/// Connects and completes the WebSocket handshake. The first frame to read is `hello`.
pub async fn connect(
    target: &Target,
    ca: &CertificateDer<'static>,
) -> Result<ClientStream, ClientError> {
    let mut request = target.url().into_client_request()?;
    let header =
        |v: &str| HeaderValue::from_str(v).map_err(|e| ClientError::Request(e.to_string()));
    if let Some(origin) = &target.origin {
        request.headers_mut().insert("Origin", header(origin)?);
    }
    if let Some(host) = &target.host_header {
        request.headers_mut().insert("Host", header(host)?);
    }
    let tls = connect_tls(target, ca).await?;
    let (ws, _) = tokio_tungstenite::client_async(request, tls).await?;
    Ok(ws)
}
