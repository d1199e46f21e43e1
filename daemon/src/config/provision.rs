//! The seed platform's provisioning parameters (`auth_key, server, turn_port, customer_id,
//! user_id, username, password, expire_date, debug_console, debug_html`), as a CRM page sends them
//! in a `provision` action. Checked by the seed's datatypes, each failure naming its parameter, and
//! turned into the `[account]` the config file would hold.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::{AccountConfig, Secret, Transport};

/// Every parameter the seed defines; anything else is refused by name.
pub const PARAMETERS: [&str; 10] = [
    "auth_key",
    "server",
    "turn_port",
    "customer_id",
    "user_id",
    "username",
    "password",
    "expire_date",
    "debug_console",
    "debug_html",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    #[error("provisioning parameters must be a JSON object")]
    NotAnObject,
    #[error("`{0}` is required")]
    Missing(&'static str),
    #[error(
        "`{0}` is not a provisioning parameter (expected one of: auth_key, server, turn_port, customer_id, user_id, username, password, expire_date, debug_console, debug_html)"
    )]
    Unknown(String),
    #[error("`{0}` must be a non-empty string")]
    NotAString(&'static str),
    #[error("`{0}` must be an integer without quotes")]
    NotAnInteger(&'static str),
    #[error("`turn_port` must be a port number from 1 to 65535")]
    PortOutOfRange,
    #[error("`{0}` must be true or false")]
    NotABool(&'static str),
    #[error(
        "`expire_date` must be a date and time such as 2026-12-31T18:00:00Z or 2026-12-31 18:00:00 (UTC)"
    )]
    NotADate,
    #[error("`expire_date` {0} is already past")]
    Expired(String),
}

/// A valid set of parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Provisioning {
    pub account: AccountConfig,
    pub expires_at: OffsetDateTime,
    pub debug_console: bool,
    pub debug_html: bool,
}

/// Checks `params` against the seed's datatypes at `now`.
pub fn parse(params: &Value, now: OffsetDateTime) -> Result<Provisioning, ProvisionError> {
    let map = params.as_object().ok_or(ProvisionError::NotAnObject)?;
    if let Some(unknown) = map.keys().find(|k| !PARAMETERS.contains(&k.as_str())) {
        return Err(ProvisionError::Unknown(truncate(unknown)));
    }
    // In the seed's order, so the first problem reported is the first parameter a person checks.
    let auth_key = string(map, "auth_key")?;
    let server = string(map, "server")?;
    let turn_port = integer(map, "turn_port")?;
    let turn_port = u16::try_from(turn_port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or(ProvisionError::PortOutOfRange)?;
    let customer_id = integer(map, "customer_id")?;
    let user_id = integer(map, "user_id")?;
    let username = string(map, "username")?;
    let password = string(map, "password")?;
    let expire_date = string(map, "expire_date")?;
    let expires_at = parse_date(&expire_date)?;
    if expires_at <= now {
        return Err(ProvisionError::Expired(expire_date));
    }
    let debug_console = boolean(map, "debug_console")?;
    let debug_html = boolean(map, "debug_html")?;
    let transport = if server.starts_with("ws://") {
        Transport::Ws
    } else {
        Transport::Wss
    };
    Ok(Provisioning {
        account: AccountConfig {
            server,
            transport,
            username,
            password: Secret::new(password),
            auth_key: Some(Secret::new(auth_key)),
            customer_id: Some(customer_id),
            user_id: Some(user_id),
            turn_port: Some(turn_port),
            expire_date: Some(expire_date),
            debug_console: Some(debug_console),
            debug_html: Some(debug_html),
            ..AccountConfig::default()
        },
        expires_at,
        debug_console,
        debug_html,
    })
}

/// `expire_date` as the seed's DateTime: RFC 3339, or `YYYY-MM-DD HH:MM:SS` taken as UTC.
pub fn parse_date(text: &str) -> Result<OffsetDateTime, ProvisionError> {
    let text = text.trim();
    if let Ok(date) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(date);
    }
    let plain = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, plain)
        .map(|d| d.assume_utc())
        .map_err(|_| ProvisionError::NotADate)
}

fn string(map: &Map<String, Value>, name: &'static str) -> Result<String, ProvisionError> {
    match map.get(name) {
        None | Some(Value::Null) => Err(ProvisionError::Missing(name)),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(_) => Err(ProvisionError::NotAString(name)),
    }
}

/// The seed is strict here (its API refuses integers "passed with double quotes"); so are we.
fn integer(map: &Map<String, Value>, name: &'static str) -> Result<u64, ProvisionError> {
    match map.get(name) {
        None | Some(Value::Null) => Err(ProvisionError::Missing(name)),
        Some(Value::Number(n)) => n.as_u64().ok_or(ProvisionError::NotAnInteger(name)),
        Some(_) => Err(ProvisionError::NotAnInteger(name)),
    }
}

/// Optional; the seed passes them as URL parameters, so `"true"`/`"false"` are accepted too.
fn boolean(map: &Map<String, Value>, name: &'static str) -> Result<bool, ProvisionError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(_) => Err(ProvisionError::NotABool(name)),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2026-11-22T09:00:00Z", &Rfc3339).expect("date")
    }

    fn valid() -> Value {
        json!({
            "auth_key": "k-7f3a", "server": "wss://pbx.example.com:7443/ws", "turn_port": 3478, "customer_id": 77,
            "user_id": 1001, "username": "1001", "password": "secret1001", "expire_date": "2026-11-22 17:00:00",
            "debug_console": "true", "debug_html": false
        })
    }

    fn with(key: &str, value: Value) -> Value {
        let mut params = valid();
        params[key] = value;
        params
    }

    fn without(key: &str) -> Value {
        let mut params = valid();
        params.as_object_mut().map(|m| m.remove(key));
        params
    }

    #[test]
    fn the_seed_parameters_make_a_webrtc_account() {
        let p = parse(&valid(), now()).expect("valid");
        assert_eq!(p.account.transport, Transport::Wss);
        assert_eq!(
            (
                p.account.turn_port,
                p.account.customer_id,
                p.account.user_id
            ),
            (Some(3478), Some(77), Some(1001))
        );
        assert_eq!(
            p.expires_at,
            OffsetDateTime::parse("2026-11-22T17:00:00Z", &Rfc3339).expect("date")
        );
        assert!(p.debug_console && !p.debug_html);
        // Secrets stay secret even in debug output.
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("secret1001") && !shown.contains("k-7f3a"),
            "{shown}"
        );
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let cases = [
            (
                with("turn_port", json!("3478")),
                ProvisionError::NotAnInteger("turn_port"),
            ),
            (
                with("turn_port", json!(70000)),
                ProvisionError::PortOutOfRange,
            ),
            (
                with("turn_port", json!(34.5)),
                ProvisionError::NotAnInteger("turn_port"),
            ),
            (
                with("customer_id", json!(-1)),
                ProvisionError::NotAnInteger("customer_id"),
            ),
            (
                with("user_id", json!(true)),
                ProvisionError::NotAnInteger("user_id"),
            ),
            (
                with("expire_date", json!("tomorrow")),
                ProvisionError::NotADate,
            ),
            (
                with("expire_date", json!("2026-11-22T08:59:59Z")),
                ProvisionError::Expired("2026-11-22T08:59:59Z".into()),
            ),
            (
                with("debug_html", json!("yes")),
                ProvisionError::NotABool("debug_html"),
            ),
            (
                with("username", json!("  ")),
                ProvisionError::NotAString("username"),
            ),
            (
                with("password", json!(1234)),
                ProvisionError::NotAString("password"),
            ),
            (
                with("sip_proxy", json!("x")),
                ProvisionError::Unknown("sip_proxy".into()),
            ),
            (json!([1, 2]), ProvisionError::NotAnObject),
        ];
        for (params, expected) in cases {
            assert_eq!(parse(&params, now()), Err(expected), "{params}");
        }
        for required in [
            "auth_key",
            "server",
            "turn_port",
            "customer_id",
            "user_id",
            "username",
            "password",
            "expire_date",
        ] {
            assert_eq!(
                parse(&without(required), now()),
                Err(ProvisionError::Missing(required))
            );
        }
        assert!(
            parse(&without("debug_console"), now()).is_ok(),
            "debug flags are optional"
        );
    }

    #[test]
    fn errors_do_not_echo_secrets() {
        let message = parse(&with("password", json!(1234)), now())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!message.contains("1234"), "{message}");
    }
}
