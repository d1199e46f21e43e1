//! Reading and layering config files, with errors that name the file, the key and what was
//! expected there.

use std::path::{Path, PathBuf};

use super::Config;
use crate::origins::Origin;

/// Environment variables that move the IT-wide and per-user files (tests and packagers use
/// them; an empty value means "no such file").
pub const SYSTEM_CONFIG_ENV: &str = "SOFTPHONE_BRIDGE_SYSTEM_CONFIG";
pub const USER_CONFIG_ENV: &str = "SOFTPHONE_BRIDGE_USER_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}:{line}:{column}: key `{key}`: {message}")]
    Key {
        path: PathBuf,
        key: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    /// A problem of the layers together (a value one file sets against another's), named with
    /// the file (or the flags) that set the key.
    #[error("{source_name}: config key `{key}`: {message}")]
    InLayer {
        source_name: String,
        key: String,
        message: String,
    },
}

/// The files (and flag overrides) a configuration is built from, lowest precedence first.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// IT's machine-wide file; skipped when missing.
    pub system: Option<PathBuf>,
    /// The agent's own file; skipped when missing.
    pub user: Option<PathBuf>,
    /// `--config FILE`; must exist.
    pub explicit: Option<PathBuf>,
    /// Values from command-line flags, as a TOML table (e.g. `api.port`).
    pub overrides: toml::Table,
}

impl Sources {
    /// The standard locations for this OS, with `explicit` from `--config`.
    pub fn standard(explicit: Option<PathBuf>) -> Self {
        Self {
            system: from_env_or(SYSTEM_CONFIG_ENV, system_config_path()),
            user: from_env_or(USER_CONFIG_ENV, user_config_path()),
            explicit,
            overrides: toml::Table::new(),
        }
    }
}

fn from_env_or(var: &str, default: Option<PathBuf>) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(PathBuf::from(v)),
        None => default,
    }
}

fn system_config_path() -> Option<PathBuf> {
    if cfg!(target_os = "windows") {
        let base = std::env::var_os("ProgramData")?;
        Some(
            Path::new(&base)
                .join("softphone-bridge")
                .join("config.toml"),
        )
    } else if cfg!(target_os = "macos") {
        Some(PathBuf::from(
            "/Library/Application Support/softphone-bridge/config.toml",
        ))
    } else {
        Some(PathBuf::from("/etc/softphone-bridge/config.toml"))
    }
}

fn user_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "softphone-bridge")
        .map(|dirs| dirs.config_dir().join("config.toml"))
}

/// A configuration as loaded: where each key came from, and what was left out.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// The files read, lowest precedence first.
    pub used: Vec<PathBuf>,
    /// Each key a file or flag set (dotted, `api.allowed_origins`), and where it came from.
    pub origins: std::collections::BTreeMap<String, String>,
    /// Keys left out because IT locked them, and other things to log once logging runs.
    pub warnings: Vec<String>,
}

/// Loads and merges every source; returns the config and the files that were read.
pub fn load(sources: &Sources) -> Result<(Config, Vec<PathBuf>), ConfigError> {
    load_layers(sources).map(|loaded| (loaded.config, loaded.used))
}

/// As [`load`], keeping where each key came from. IT's machine-wide file may lock keys
/// (`[lock] keys = ["api.allowed_origins", "provisioning.*"]`): later files and flags cannot
/// change them — what they set there is left out, with a warning naming the file and key.
pub fn load_layers(sources: &Sources) -> Result<Loaded, ConfigError> {
    let mut merged = toml::Table::new();
    let mut loaded = Loaded {
        config: Config::default(),
        used: Vec::new(),
        origins: std::collections::BTreeMap::new(),
        warnings: Vec::new(),
    };
    let mut locked: Vec<String> = Vec::new();
    let mut layers: Vec<(String, toml::Table)> = Vec::new();
    if let Some(path) = sources.system.as_ref().filter(|p| p.exists()) {
        let table = parse_layer(path)?;
        locked = lock_keys(&table);
        layers.push((path.display().to_string(), table));
        loaded.used.push(path.clone());
    }
    let later = [
        sources.user.as_ref().filter(|p| p.exists()),
        sources.explicit.as_ref(),
    ];
    for path in later.into_iter().flatten() {
        let mut table = parse_layer(path)?;
        let name = path.display().to_string();
        unlock(&mut table, &locked, &name, &mut loaded.warnings);
        layers.push((name, table));
        loaded.used.push(path.clone());
    }
    let mut flags = sources.overrides.clone();
    unlock(
        &mut flags,
        &locked,
        "command-line flags",
        &mut loaded.warnings,
    );
    layers.push(("command-line flags".into(), flags));
    for (name, table) in layers {
        for key in leaf_keys(&table, "") {
            loaded.origins.insert(key, name.clone());
        }
        merge(&mut merged, table);
    }
    let config: Config = serde_path_to_error::deserialize(merged).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let message = hide_secret(
            is_secret_key(&key) || SECRET_KEYS.iter().any(|k| inner.message().contains(k)),
            inner.message(),
        );
        in_layer(&loaded.origins, key, message)
    })?;
    validate(&config).map_err(|e| match e {
        ConfigError::Invalid { key, message } => in_layer(&loaded.origins, key, message),
        other => other,
    })?;
    loaded.config = config;
    Ok(loaded)
}

/// `key`'s problem, named with the layer that set it (`presence.status[2].name` is
/// `presence.status`'s; a section's own problem is its first key's).
fn in_layer(
    origins: &std::collections::BTreeMap<String, String>,
    key: String,
    message: String,
) -> ConfigError {
    let base = key.split('[').next().unwrap_or(&key);
    let source = origins.get(base).or_else(|| {
        origins
            .iter()
            .find(|(k, _)| k.starts_with(&format!("{base}.")))
            .map(|(_, v)| v)
    });
    match source {
        Some(source_name) => ConfigError::InLayer {
            source_name: source_name.clone(),
            key,
            message,
        },
        None => ConfigError::Invalid { key, message },
    }
}

/// One layer: its TOML, and its keys and types checked (a file may leave out what another
/// layer sets, such as the agent's own credentials).
fn parse_layer(path: &Path) -> Result<toml::Table, ConfigError> {
    parse_file(path).map(|(_, table)| table)
}

/// The keys IT's file locks.
fn lock_keys(table: &toml::Table) -> Vec<String> {
    table
        .get("lock")
        .and_then(|l| l.get("keys"))
        .and_then(toml::Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(toml::Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether dotted `key` falls under a lock entry: the key itself, a section (`provisioning`), or
/// a section's keys (`provisioning.*`).
pub fn is_locked(locked: &[String], key: &str) -> bool {
    locked.iter().any(|entry| {
        let section = entry.strip_suffix(".*").unwrap_or(entry);
        key == section || key.starts_with(&format!("{section}."))
    })
}

/// Takes out of a later layer what IT locked (and any `[lock]` of its own), saying so.
fn unlock(table: &mut toml::Table, locked: &[String], name: &str, warnings: &mut Vec<String>) {
    if table.remove("lock").is_some() {
        warnings.push(format!(
            "{name}: [lock] is only read from IT's machine-wide file; ignored here"
        ));
    }
    for key in leaf_keys(table, "") {
        if is_locked(locked, &key) {
            remove_key(table, &key);
            warnings.push(format!(
                "{name}: `{key}` is locked by IT's machine-wide file; its value there is kept"
            ));
        }
    }
}

/// Every leaf key of `table`, dotted (arrays are leaves).
fn leaf_keys(table: &toml::Table, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => keys.extend(leaf_keys(inner, &path)),
            _ => keys.push(path),
        }
    }
    keys
}

fn remove_key(table: &mut toml::Table, dotted: &str) {
    match dotted.split_once('.') {
        Some((head, rest)) => {
            if let Some(toml::Value::Table(inner)) = table.get_mut(head) {
                remove_key(inner, rest);
                if inner.is_empty() {
                    table.remove(head);
                }
            }
        }
        None => {
            table.remove(dotted);
        }
    }
}

/// Parses one file strictly (unknown keys and wrong types are errors) and also returns its raw
/// table for layering. This is what `softphone-bridge config check FILE` runs.
pub fn parse_file(path: &Path) -> Result<(Config, toml::Table), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_str(path, &text)
}

fn parse_str(path: &Path, text: &str) -> Result<(Config, toml::Table), ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let (line, column) = position(text, e.span());
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message: hide_secret(on_secret_line(text, line), e.message()),
        }
    })?;
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        let (line, column) = position(text, e.span());
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message: hide_secret(on_secret_line(text, line), e.message()),
        }
    })?;
    let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let (line, column) = position(text, inner.span());
        let secret = is_secret_key(&key) || on_secret_line(text, line);
        ConfigError::Key {
            path: path.to_owned(),
            key,
            line,
            column,
            message: hide_secret(secret, inner.message()),
        }
    })?;
    validate(&config)?;
    Ok((config, table))
}

/// Keys whose values are secrets: an error about one never quotes the value.
const SECRET_KEYS: [&str; 2] = ["password", "auth_key"];

fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    SECRET_KEYS.contains(&last)
}

/// Whether 1-based `line` of `text` assigns a secret key.
fn on_secret_line(text: &str, line: usize) -> bool {
    text.lines()
        .nth(line.saturating_sub(1))
        .and_then(|l| l.split_once('='))
        .is_some_and(|(key, _)| is_secret_key(key.trim().trim_matches('"')))
}

/// The parser's message, or one that names the problem without the value for secret keys
/// (`password = 5` must not print 5).
fn hide_secret(secret: bool, message: &str) -> String {
    if secret {
        "invalid value (not shown: this key holds a secret); expected a quoted string".into()
    } else {
        message.to_owned()
    }
}

/// 1-based line and column of a byte span's start.
fn position(text: &str, span: Option<std::ops::Range<usize>>) -> (usize, usize) {
    let Some(span) = span else { return (0, 0) };
    let before = text.get(..span.start.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Tables merge key by key; any other value (arrays included) is replaced by the later layer.
fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(incoming)) => {
                merge(existing, incoming)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// A notification URL: `https://host[:port]/path`; no user name or password in it (they would
/// end up in logs).
fn check_notification_url(url: &str) -> Result<(), String> {
    // Messages never quote the URL: its path or query may carry a token.
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters".into());
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "is not an https:// URL".to_owned())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry a user name or password; use notifications.secret".into());
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => host,
        _ => authority,
    };
    if host.is_empty() {
        return Err("names no host".into());
    }
    // Not plain http even to this machine: another OS user could listen on that port.
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        _ => Err(
            "is not an https:// URL (plain http would hand every event to whoever listens)".into(),
        ),
    }
}

/// Checks that need more than types: origins parse, statuses are unique, references resolve.
fn validate(config: &Config) -> Result<(), ConfigError> {
    let lists = [
        ("api.allowed_origins", &config.api.allowed_origins),
        (
            "provisioning.allowed_origins",
            &config.provisioning.allowed_origins,
        ),
    ];
    for (key, list) in lists {
        for (i, origin) in list.iter().enumerate() {
            Origin::parse(origin).map_err(|e| ConfigError::Invalid {
                key: format!("{key}[{i}]"),
                message: format!("{origin:?}: {e}"),
            })?;
        }
    }
    let origin_limits = [
        (
            "api.origin_actions_per_second",
            config.api.origin_actions_per_second,
        ),
        ("api.origin_action_burst", config.api.origin_action_burst),
    ];
    if let Some((key, _)) = origin_limits.iter().find(|(_, value)| *value == 0) {
        return Err(ConfigError::Invalid {
            key: (*key).into(),
            message: "must be at least 1".into(),
        });
    }
    if let Some(url) = &config.notifications.url {
        check_notification_url(url).map_err(|message| ConfigError::Invalid {
            key: "notifications.url".into(),
            message,
        })?;
        if config.notifications.secret.is_empty() {
            return Err(ConfigError::Invalid {
                key: "notifications.secret".into(),
                message: "is required with notifications.url: the endpoint needs it to check that events come from this daemon".into(),
            });
        }
    }
    for (key, name) in [
        (
            "dialling.caller_id_header",
            &config.dialling.caller_id_header,
        ),
        ("dialling.campaign_header", &config.dialling.campaign_header),
    ] {
        let token = sip_core::message::is_token(name);
        // Headers the line writes itself: a second copy would confuse every server.
        const OURS: [&str; 30] = [
            "via",
            "v",
            "from",
            "f",
            "to",
            "t",
            "call-id",
            "i",
            "cseq",
            "contact",
            "m",
            "content-length",
            "l",
            "content-type",
            "c",
            "max-forwards",
            "route",
            "record-route",
            "authorization",
            "proxy-authorization",
            "allow",
            "supported",
            "k",
            "require",
            "session-expires",
            "min-se",
            "user-agent",
            "replaces",
            "referred-by",
            "refer-to",
        ];
        if OURS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ConfigError::Invalid {
                key: key.into(),
                message: format!("{name:?} is a header the line writes itself; name another"),
            });
        }
        if !token {
            return Err(ConfigError::Invalid {
                key: key.into(),
                message: format!("{name:?} is not a SIP header name"),
            });
        }
    }
    if config
        .dialling
        .caller_id_header
        .eq_ignore_ascii_case(&config.dialling.campaign_header)
    {
        return Err(ConfigError::Invalid {
            key: "dialling.campaign_header".into(),
            message: "is the same header as dialling.caller_id_header".into(),
        });
    }
    for (i, entry) in config.dialling.caller_ids.iter().enumerate() {
        crate::blacklist::NumberRange::parse(entry).map_err(|e| ConfigError::Invalid {
            key: format!("dialling.caller_ids[{i}]"),
            message: format!("{e} (a number, or digits ending in * for a range)"),
        })?;
    }
    let pattern_lists =
        std::iter::once(("dialling.patterns".to_owned(), &config.dialling.patterns)).chain(
            config
                .dialling
                .partner
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("dialling.partner[{i}].patterns"), &p.patterns)),
        );
    if let Some(i) = config
        .dialling
        .partner
        .iter()
        .position(|p| p.patterns.is_empty())
    {
        return Err(ConfigError::Invalid {
            key: format!("dialling.partner[{i}].patterns"),
            message: "is empty: a partner's patterns narrow what the phone may dial, so list at least one".into(),
        });
    }
    for (key, patterns) in pattern_lists {
        if let Some((i, bad)) = patterns.iter().enumerate().find(|(_, p)| {
            p.is_empty() || p.chars().count() > 100 || p.chars().any(char::is_control)
        }) {
            return Err(ConfigError::Invalid {
                key: format!("{key}[{i}]"),
                message: format!(
                    "{bad:?}: a pattern is 1 to 100 characters, `?` and `*` as wildcards"
                ),
            });
        }
    }
    for (i, number) in config.dialling.blacklist.iter().enumerate() {
        crate::blacklist::Number::parse(number).map_err(|e| ConfigError::Invalid {
            key: format!("dialling.blacklist[{i}]"),
            message: e.to_string(),
        })?;
    }
    let ring_timeouts = [
        (
            "account.ring_timeout",
            config.account.as_ref().map_or(0, |a| a.ring_timeout),
        ),
        (
            "provisioning.ring_timeout",
            config.provisioning.ring_timeout,
        ),
    ];
    if let Some((key, _)) = ring_timeouts.iter().find(|(_, s)| *s > 3_600) {
        return Err(ConfigError::Invalid {
            key: (*key).into(),
            message: "is at most 3600 seconds (0: ring until the caller gives up)".into(),
        });
    }
    if config.api.tls_cert.is_some() != config.api.tls_key.is_some() {
        return Err(ConfigError::Invalid {
            key: if config.api.tls_cert.is_some() {
                "api.tls_key"
            } else {
                "api.tls_cert"
            }
            .into(),
            message: "api.tls_cert and api.tls_key go together: IT's certificate needs its key"
                .into(),
        });
    }
    if config.store.keep_days == 0 {
        return Err(ConfigError::Invalid {
            key: "store.keep_days".into(),
            message: "must be at least 1".into(),
        });
    }
    if config.recording.max_minutes == 0 {
        return Err(ConfigError::Invalid {
            key: "recording.max_minutes".into(),
            message: "must be at least 1".into(),
        });
    }
    if config.store.max_megabytes == 0 {
        return Err(ConfigError::Invalid {
            key: "store.max_megabytes".into(),
            message: "must be at least 1".into(),
        });
    }
    if config.store.max_events < 1000 {
        return Err(ConfigError::Invalid {
            key: "store.max_events".into(),
            message: "must be at least 1000".into(),
        });
    }
    if config.api.actions_per_second == 0 {
        return Err(ConfigError::Invalid {
            key: "api.actions_per_second".into(),
            message: "must be at least 1".into(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for (i, status) in config.presence.status.iter().enumerate() {
        if status.softphone_id.trim().is_empty() || status.name.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: format!("presence.status[{i}]"),
                message: "softphoneId and name must not be empty".into(),
            });
        }
        if !seen.insert(status.softphone_id.as_str()) {
            return Err(ConfigError::Invalid {
                key: format!("presence.status[{i}].softphoneId"),
                message: format!("duplicate softphoneId {:?}", status.softphone_id),
            });
        }
    }
    if let Some(initial) = &config.presence.initial
        && !config.statuses().iter().any(|s| &s.softphone_id == initial)
    {
        return Err(ConfigError::Invalid {
            key: "presence.initial".into(),
            message: format!("{initial:?} is not a configured status"),
        });
    }
    Ok(())
}
