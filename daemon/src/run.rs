//! `softphone-bridge run`: wires the phone, the API server and the tray together and waits for
//! a signal (or the tray's Quit).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::api::{self, ApiContext, Limits, Listeners};
use crate::certs::{self, CertPaths};
use crate::config::Config;
use crate::ids::{OsEntropy, random_hex, uuid_v4};
use crate::line::LineConfig;
use crate::line::MediaSettings;
use crate::origins::{ApprovalStore, Origin, OriginPolicy};
use crate::phone::journal::{Journal, Retention};
use crate::phone::{Phone, PhoneSettings, driver};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Certs(#[from] certs::CertError),
    #[error(
        "cannot listen on port {port}: {source} (is another softphone-bridge running? see `softphone-bridge status`)"
    )]
    Listen {
        port: u16,
        source: crate::api::BindError,
    },
    #[error(transparent)]
    Origins(#[from] crate::origins::StoreError),
    #[error(transparent)]
    Line(crate::line::LineConfigError),
    #[error("cannot start the demo line: {source}")]
    Demo { source: std::io::Error },
    #[error(
        "another softphone-bridge{pid} already runs on the data folder {path}; one daemon per data folder (see `softphone-bridge status`, or pass another --data-dir)"
    )]
    AlreadyRunning { path: PathBuf, pid: String },
}

/// Written to `DATA_DIR/daemon.json` while the daemon runs, so the CLI and tests find it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    pub port: u16,
    pub instance: String,
}

impl DaemonInfo {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("daemon.json")
    }
    pub fn read(data_dir: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(Self::path(data_dir)).ok()?).ok()
    }
}

pub struct RunOptions {
    pub config: Config,
    pub data_dir: PathBuf,
    pub headless: bool,
    /// Runtime log control and the lines for pages (`debug_console`, `debug_html`).
    pub logs: Option<(
        crate::logging::LogControl,
        tokio::sync::mpsc::Receiver<crate::logging::LogLine>,
    )>,
}

pub async fn run(options: RunOptions) -> Result<(), RunError> {
    let RunOptions {
        config,
        data_dir,
        headless,
        logs,
    } = options;
    // Owner-only, and whatever an older install left open to other users is closed now.
    let data_dir_error = |e: crate::private_files::PrivateFileError| RunError::DataDir {
        path: e.path,
        source: e.source,
    };
    if let Some(tightened) = crate::private_files::create_dir(&data_dir).map_err(data_dir_error)? {
        tightened.warn();
    }
    crate::private_files::tighten_tree(&data_dir)
        .map_err(data_dir_error)?
        .warn();
    // Held until the process ends: the OS lets go of it even after a kill -9.
    let _lock = lock_data_dir(&data_dir)?;

    let certs = certs::ensure(&CertPaths::in_data_dir(&data_dir))?;
    if certs.created {
        tracing::warn!(
            "new local CA at {}; run `softphone-bridge certs install` so browsers trust https://localhost",
            certs.paths.ca.display()
        );
    }
    // IT's own certificate when it gave one; the per-install CA still exists for `certs`.
    let server_config = match (&config.api.tls_cert, &config.api.tls_key) {
        (Some(cert), Some(key)) => {
            tracing::info!("serving IT's certificate {}", cert.display());
            certs::server_config_from_files(cert, key)?
        }
        _ => certs.server_config()?,
    };
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listeners = Listeners::bind_first_free(config.api.port)
        .await
        .map_err(|source| RunError::Listen {
            port: source.port(),
            source,
        })?;
    let port = listeners.port;

    // Config validation already parsed these; a failure here cannot happen, so skip silently.
    let configured = parse_origins(&config.api.allowed_origins);
    for origin in configured.iter().filter(|o| o.is_insecure()) {
        tracing::warn!(
            %origin,
            "[api] allowed_origins lists a plain http:// origin: anyone on its network path could alter that page and drive this phone"
        );
    }
    let provisioners = parse_origins(&config.provisioning.allowed_origins);
    let store = ApprovalStore::open(&data_dir.join("origins.json"))?;
    let policy = OriginPolicy::new(configured, port, store);

    let journal = if config.store.enabled {
        Journal::open(
            &data_dir.join(crate::store::FILE_NAME),
            &time::OffsetDateTime::now_utc()
                .format(time::macros::format_description!(
                    "[year][month][day]T[hour][minute][second]Z"
                ))
                .unwrap_or_default(),
            config.api.replay_events,
            Retention {
                keep: std::time::Duration::from_secs(u64::from(config.store.keep_days) * 86_400),
                max_events: config.store.max_events,
                max_bytes: config.store.max_megabytes.saturating_mul(1024 * 1024),
            },
            crate::phone::driver::now_ms,
            || random_hex(8),
        )
    } else {
        Journal::without_store(config.api.replay_events, crate::phone::driver::now_ms)
    };
    let mut journal = journal;
    let instance = journal.0.instance().to_owned();
    let endpoint = crate::notify::Endpoint::from_config(&config.notifications);
    // Marks of origins no longer allowed (revoked while the daemon was down, dropped from IT's
    // list) and of endpoints no longer configured go: a re-approved origin starts afresh.
    let notify_key = match &endpoint {
        Ok(Some(e)) => Some(e.key().to_owned()),
        _ => None,
    };
    journal
        .0
        .retain_marks(|key| match key.strip_prefix("notify:") {
            Some(_) => notify_key.as_deref() == Some(key),
            None => Origin::parse(key).is_ok_and(|origin| policy.still_allowed(&origin)),
        });
    match endpoint {
        Ok(None) => {}
        Ok(Some(endpoint)) => match journal.0.watch_stored() {
            Some(stored) => crate::notify::spawn(
                endpoint,
                data_dir.join(crate::store::FILE_NAME),
                instance.clone(),
                stored,
            ),
            None => tracing::error!(
                "[notifications] need the store, and there is none this run; no notifications are sent"
            ),
        },
        Err(e) => tracing::error!("{e}; no notifications are sent"),
    }
    if journal.0.has_store() {
        let vault = crate::secrets::Vault::os(&instance);
        if let Err(e) = &vault {
            tracing::warn!("{e}: an account a page provisions is not restored after a restart");
        }
        journal.0.set_vault(vault);
    }
    let saved = journal.1.saved.clone();
    let line = match &config.account {
        Some(account) => Some(LineConfig::from_account(account).map_err(RunError::Line)?),
        None if config.demo.line => {
            let (address, _service) = crate::demo::start()
                .await
                .map_err(|source| RunError::Demo { source })?;
            Some(LineConfig::demo(address))
        }
        None => None,
    };
    let phone = Phone::new(PhoneSettings {
        statuses: config.statuses(),
        initial_status: config.presence.initial.clone(),
        line_domain: line.as_ref().map(LineConfig::dial_domain),
        ids: Box::new(OsEntropy),
        wall_clock: time::OffsetDateTime::now_utc,
        machine_blacklist: machine_blacklist(&config.dialling),
        dial_rules: crate::phone::DialRules {
            patterns: config.dialling.patterns.clone(),
            partners: config
                .dialling
                .partner
                .iter()
                .map(|p| (p.partner_id.clone(), p.patterns.clone()))
                .collect(),
        },
        dial_headers: crate::phone::DialHeaders {
            caller_ids: config.dialling.caller_ids.clone(),
            caller_id_header: config.dialling.caller_id_header.clone(),
            campaign_header: config.dialling.campaign_header.clone(),
        },
        answering: config
            .account
            .as_ref()
            .map(crate::phone::Answering::from_account)
            .unwrap_or_default(),
        provisioning: config.provisioning.clone(),
        may_provision: config
            .provisioning
            .pages_may_provision(config.account.is_some()),
        free_text_dispositions: config.dispositions.free_text,
        saved,
        auto_record: config.recording.auto,
        pages_may_record: config.recording.allowed,
    });
    let recordings = data_dir.join("recordings");
    let mut media = MediaSettings::from_config(&config.audio, &config.media);
    media.recordings = Some(recordings.clone());
    media.recording_max_seconds = u64::from(config.recording.max_minutes) * 60;
    // A provisioned line gets IT's audio devices but not IT's [media] choices.
    let mut provisioned_media = MediaSettings::from_config(
        &config.audio,
        &crate::config::MediaConfig {
            codecs: config
                .provisioning
                .codecs
                .clone()
                .unwrap_or_else(|| crate::config::MediaConfig::default().codecs),
            ..crate::config::MediaConfig::default()
        },
    );
    provisioned_media.recordings = Some(recordings.clone());
    provisioned_media.recording_max_seconds = media.recording_max_seconds;
    let phone = driver::spawn(
        phone,
        journal,
        driver::Media {
            line: media,
            provisioned: provisioned_media,
            sip_instance: sip_instance(&data_dir),
            recordings: driver::Recordings {
                dir: Some(recordings.clone()),
                keep_days: (config.recording.keep_days > 0).then_some(config.recording.keep_days),
                expired_at: i64::MIN,
            },
            devices: watch_devices(&config.audio),
        },
        line,
        logs,
    );

    let info = DaemonInfo {
        pid: std::process::id(),
        port,
        instance,
    };
    let info_path = DaemonInfo::path(&data_dir);
    if let Err(e) = crate::private_files::write_atomic(
        &info_path,
        serde_json::to_string_pretty(&info)
            .unwrap_or_default()
            .as_bytes(),
    ) {
        tracing::warn!("cannot write {e}");
    }
    for address in listeners.addresses() {
        tracing::info!("listening on https://{address} (wss://localhost:{port}/ws)");
    }

    let sessions = Arc::new(crate::api::Slots::new(crate::api::MAX_SESSIONS_PER_ORIGIN));
    let context = Arc::new(ApiContext {
        phone: phone.clone(),
        policy: policy.clone(),
        port,
        limits: Limits {
            actions_per_second: config.api.actions_per_second,
            action_burst: config.api.action_burst,
        },
        tls,
        provisioners,
        origin_budget: crate::api::OriginBudget::new(
            config.api.origin_actions_per_second,
            config.api.origin_action_burst,
        ),
        handshakes: crate::api::Slots::new(crate::api::MAX_HANDSHAKES_PER_PROCESS),
        sessions: Arc::clone(&sessions),
        refusals: crate::api::LogBudget::default(),
    });
    let server = tokio::spawn(api::serve(listeners, context));

    let (quit_tx, mut quit_rx) = tokio::sync::mpsc::channel::<()>(1);
    if !headless {
        crate::tray::start(crate::tray::TrayContext {
            phone: phone.clone(),
            policy,
            port,
            data_dir: data_dir.clone(),
            connected: sessions,
            quit: quit_tx,
        });
    }

    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down on signal"),
        Some(()) = quit_rx.recv() => tracing::info!("shutting down from the tray"),
    }
    server.abort();
    // Unregister before the process ends, as a desk phone does when switched off.
    phone.shutdown().await;
    let _ = std::fs::remove_file(&info_path);
    Ok(())
}

/// Origins from config, which validation already parsed (so none is skipped here).
fn parse_origins(list: &[String]) -> Vec<Origin> {
    list.iter().filter_map(|o| Origin::parse(o).ok()).collect()
}

/// The device list for pickers (`list_audio_devices`), kept fresh by a watcher thread when calls
/// use the agent's devices.
fn watch_devices(
    audio: &crate::config::AudioConfig,
) -> Option<tokio::sync::mpsc::Receiver<crate::protocol::AudioDeviceList>> {
    #[cfg(feature = "devices")]
    if audio.backend == crate::config::AudioBackend::Cpal {
        let (lists, listed) = tokio::sync::mpsc::channel(4);
        crate::audio::device::watch(lists);
        return Some(listed);
    }
    let _ = audio;
    None
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// This installation's SIP instance id (RFC 5626 `+sip.instance`, a `urn:uuid:` of a random
/// UUID): kept in `sip-instance` in the data folder so the registrar recognizes the phone
/// across restarts and replaces its old binding instead of forking calls to a dead contact.
/// A file that cannot be read or written gives a new id for this run (and a warning).
fn sip_instance(data_dir: &std::path::Path) -> Option<String> {
    let path = data_dir.join("sip-instance");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Some(instance) = valid_instance(text.trim())
    {
        return Some(instance);
    }
    let instance = format!("urn:uuid:{}", uuid_v4(&mut OsEntropy));
    if let Err(e) = crate::private_files::write_atomic(&path, instance.as_bytes()) {
        tracing::warn!(path = %path.display(), "cannot keep the SIP instance id: {e}");
    }
    Some(instance)
}

/// `urn:uuid:` and a UUID in its 8-4-4-4-12 hex form, lower-cased.
fn valid_instance(text: &str) -> Option<String> {
    let uuid = text.strip_prefix("urn:uuid:")?;
    let groups: Vec<&str> = uuid.split('-').collect();
    let shape = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]);
    (shape
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit())))
    .then(|| format!("urn:uuid:{}", uuid.to_ascii_lowercase()))
}

/// One daemon per data folder: an exclusive lock on `DATA_DIR/daemon.lock` (the file stays; the
/// lock goes with the process, however it ends).
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, RunError> {
    let path = data_dir.join("daemon.lock");
    let (file, _) = crate::private_files::open(&path, crate::private_files::Existing::Append)
        .map_err(|e| RunError::DataDir {
            path: e.path,
            source: e.source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(RunError::AlreadyRunning {
            path: data_dir.to_owned(),
            pid: DaemonInfo::read(data_dir)
                .map(|info| format!(" (pid {})", info.pid))
                .unwrap_or_default(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(RunError::DataDir { path, source }),
    }
}

/// IT's blacklist: `[dialling] blacklist` and the numbers in `blacklist_file` (a line that is no
/// number is logged with its line number and skipped; an unreadable file is logged).
fn machine_blacklist(dialling: &crate::config::DiallingConfig) -> Vec<String> {
    let mut numbers = dialling.blacklist.clone();
    if let Some(path) = &dialling.blacklist_file {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (index, line) in text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or_default().trim();
                    if line.is_empty() {
                        continue;
                    }
                    match crate::blacklist::Number::parse(line) {
                        Ok(_) => numbers.push(line.to_owned()),
                        Err(e) => tracing::warn!("{}:{}: {e}; skipped", path.display(), index + 1),
                    }
                }
            }
            Err(e) => tracing::error!(
                "[dialling] blacklist_file {}: {e}; its numbers are NOT blocked",
                path.display()
            ),
        }
    }
    numbers
}

#[cfg(test)]
mod tests {
    use super::{sip_instance, valid_instance};

    #[test]
    fn the_sip_instance_is_a_v4_uuid_kept_across_restarts_in_an_owner_only_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = sip_instance(dir.path()).expect("an instance");
        assert_eq!(
            valid_instance(&first).as_deref(),
            Some(first.as_str()),
            "{first}"
        );
        let uuid = first.trim_start_matches("urn:uuid:");
        assert_eq!(&uuid[14..15], "4", "version 4: {uuid}");
        assert!("89ab".contains(&uuid[19..20]), "RFC 4122 variant: {uuid}");
        assert_eq!(
            sip_instance(dir.path()),
            Some(first.clone()),
            "the same after a restart"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("sip-instance"))
                .expect("written")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A file damaged by hand is replaced, not sent to the registrar.
        std::fs::write(dir.path().join("sip-instance"), "urn:uuid:nope\r\nVia: x").expect("write");
        let replaced = sip_instance(dir.path()).expect("an instance");
        assert_ne!(replaced, first);
        assert!(valid_instance(&replaced).is_some());
    }
}
