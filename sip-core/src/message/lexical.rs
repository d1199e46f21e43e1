//! The lexical pieces header values share (RFC 3261 §25.1): tokens, quoted strings, host names,
//! `;name=value` parameter lists with optional LWS around `;` and `=`, and comma-separated lists.
//!
//! Parameter values are kept as written: a quoted value keeps its quotes (and escapes), so a
//! value printed back is exactly what arrived, and `param()` strips the quotes for readers.

/// RFC 3261 `token` characters.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

pub fn is_token(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_token_char)
}

/// A host name, IPv4 address or bracketed IPv6 reference. `_` is outside the grammar but common
/// in internal names, and harmless.
pub fn is_host(text: &str) -> bool {
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    }
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// The byte length of the quoted string that `text` starts with (quotes included), or `None`
/// when the closing quote is missing. A backslash escapes the next character (quoted-pair).
pub fn quoted_len(text: &str) -> Option<usize> {
    let mut chars = text.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next()?;
            }
            '"' => return Some(at + 1),
            _ => {}
        }
    }
    None
}

/// The text of a quoted string (quotes included), its quoted-pairs resolved.
pub fn unquote(quoted: &str) -> String {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(quoted);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Writes `text` as a quoted string, escaping `"` and `\`.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Parses header parameters: `text` is empty or starts with `;` (after optional LWS), then
/// `;` name [`=` value] repeated, LWS allowed around `;` and `=` (RFC 3261 `SEMI`, `EQUAL`).
/// Names are tokens; a value is a quoted string or a run of characters that cannot end it
/// (`;`, `,`, quotes, angle brackets, whitespace). `None` when the list is malformed, e.g. an
/// empty parameter (`;;`, RFC 4475 badinv01) or an unterminated quote.
pub fn header_params(text: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut params = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        rest = rest.strip_prefix(';')?.trim_start();
        let name_len = rest.find(|c| !is_token_char(c)).unwrap_or(rest.len());
        if name_len == 0 {
            return None;
        }
        let name = &rest[..name_len];
        rest = rest[name_len..].trim_start();
        let value = match rest.strip_prefix('=') {
            Some(after) => {
                let after = after.trim_start();
                let len = if after.starts_with('"') {
                    quoted_len(after)?
                } else {
                    after
                        .find(|c: char| c.is_whitespace() || ";,\"<>".contains(c))
                        .unwrap_or(after.len())
                };
                rest = after[len..].trim_start();
                Some(after[..len].to_owned())
            }
            None => None,
        };
        params.push((name.to_owned(), value));
    }
    Some(params)
}

/// Parses URI parameters: `text` is what follows the first `;` of a URI, no whitespace in it.
/// Each parameter is `name` or `name=value`, neither containing `;`; escapes stay escaped
/// (`%6C%72` is not `lr`, and `%00` never becomes a NUL). `None` for an empty name.
pub fn uri_params(text: &str) -> Option<Vec<(String, Option<String>)>> {
    text.split(';')
        .map(|p| match p.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                Some((name.to_owned(), Some(value.to_owned())))
            }
            None if !p.is_empty() => Some((p.to_owned(), None)),
            _ => None,
        })
        .collect()
}

/// A parameter's value by case-insensitive name, quotes stripped; `""` for a valueless one.
pub fn param<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| match v.as_deref() {
            Some(v) => v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v),
            None => "",
        })
}

pub fn write_params(
    f: &mut std::fmt::Formatter<'_>,
    params: &[(String, Option<String>)],
) -> std::fmt::Result {
    for (name, value) in params {
        match value {
            Some(v) => write!(f, ";{name}={v}")?,
            None => write!(f, ";{name}")?,
        }
    }
    Ok(())
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` for a bad port or host.
pub fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        match &text[end + 1..] {
            "" => (&text[..=end], None),
            rest => (&text[..=end], Some(rest.strip_prefix(':')?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if !is_host(host) {
        return None;
    }
    let port = match port {
        // `parse` would take a leading `+`; a port is digits only.
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((host, port))
}

/// Splits a header value at commas that are outside quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(value[start.min(value.len())..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

pub fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}
