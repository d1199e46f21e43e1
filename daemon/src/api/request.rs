//! Reading one HTTP/1.1 request head, and the checks every request passes before routing.

use std::collections::HashMap;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Request heads larger than this are refused (431).
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 48;

#[derive(Debug)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    /// Lower-cased names; a repeated header keeps its first value.
    pub headers: HashMap<String, String>,
    /// Bytes read past the head (a client may pipeline its first WebSocket frame).
    pub rest: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("connection closed before a full request")]
    Closed,
    #[error("request head too large")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<RequestHead, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                check_head(&request)?;
                return Ok(head_from(&request, buf[len..].to_vec()));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => return Err(HeadError::TooLarge),
            Err(e) => return Err(HeadError::Malformed(e.to_string())),
        }
    }
}

/// Headers the security checks read must be unambiguous: a proxy or a browser quirk that sent
/// two could make us check one and act on the other. HTTP/1.0 has no `Host` semantics and no
/// WebSocket upgrade.
fn check_head(request: &httparse::Request<'_, '_>) -> Result<(), HeadError> {
    if request.version != Some(1) {
        return Err(HeadError::Malformed("only HTTP/1.1 is served".into()));
    }
    for name in [
        "host",
        "origin",
        "upgrade",
        "sec-websocket-key",
        "connection",
    ] {
        let count = request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count();
        if count > 1 {
            return Err(HeadError::Malformed(format!("more than one {name} header")));
        }
    }
    Ok(())
}

fn head_from(request: &httparse::Request<'_, '_>, rest: Vec<u8>) -> RequestHead {
    let target = request.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = HashMap::new();
    for header in request.headers.iter() {
        let value = String::from_utf8_lossy(header.value).trim().to_owned();
        headers
            .entry(header.name.to_ascii_lowercase())
            .or_insert(value);
    }
    RequestHead {
        method: request.method.unwrap_or("").to_owned(),
        path: path.to_owned(),
        query: parse_query(query),
        headers,
        rest,
    }
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as space); invalid escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// True when `Host` names this daemon by a loopback name and the right port. Anything else
    /// is a DNS-rebinding attempt or a misdirected request.
    pub fn host_is_local(&self, port: u16) -> bool {
        let Some(host) = self.header("host") else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .any(|name| host == format!("{name}:{port}"))
    }

    pub fn is_websocket_upgrade(&self) -> bool {
        let has_token = |name: &str, token: &str| {
            self.header(name)
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        has_token("upgrade", "websocket") && has_token("connection", "upgrade")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("https%3A%2F%2Fcrm.example.com"),
            "https://crm.example.com"
        );
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[tokio::test]
    async fn parses_head_and_keeps_the_rest() {
        let raw = b"GET /ws?since=5&instance=ab HTTP/1.1\r\nHost: localhost:9\r\nOrigin: https://a.b\r\n\r\nXYZ";
        let head = read_head(&mut &raw[..]).await.expect("parses");
        assert_eq!(head.path, "/ws");
        assert_eq!(head.query.get("since").map(String::as_str), Some("5"));
        assert_eq!(head.header("origin"), Some("https://a.b"));
        assert_eq!(head.rest, b"XYZ");
        assert!(head.host_is_local(9));
        assert!(!head.host_is_local(10));
    }

    #[tokio::test]
    async fn rejects_garbage_and_oversized_heads() {
        assert!(matches!(
            read_head(&mut &b"\x00\x01\x02 nonsense\r\n\r\n"[..]).await,
            Err(HeadError::Malformed(_))
        ));
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(
            read_head(&mut huge.as_bytes()).await,
            Err(HeadError::TooLarge)
        ));
        assert!(matches!(
            read_head(&mut &b"GET / HT"[..]).await,
            Err(HeadError::Closed)
        ));
    }
}
