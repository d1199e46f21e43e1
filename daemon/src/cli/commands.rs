use std::path::PathBuf;

use super::{CertsCommand, Command, ConfigCommand, OriginsCommand, RunArgs};
use crate::certs::{self, CertPaths, trust};
use crate::config::{self, ConfigError, Sources};
use crate::origins::{ApprovalStore, StoreError};
use crate::run::{DaemonInfo, RunError, RunOptions};

/// Every way a command can fail, wrapped once for `main`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Certs(#[from] certs::CertError),
    #[error(transparent)]
    Trust(#[from] trust::TrustError),
    #[error(transparent)]
    Origins(#[from] StoreError),
    #[error("{0}")]
    Status(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Bundle(#[from] super::support_bundle::BundleError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Leads(#[from] crate::leads::LeadsError),
    /// A leads run that ended before its last batch or with refused batches: the report said
    /// why; this carries its exit code.
    #[error("the archive run did not complete (exit code {0})")]
    LeadsStopped(u8),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Usage(_) => 2,
            Self::Leads(e) => e.exit_code(),
            Self::LeadsStopped(code) => *code,
            Self::Origins(StoreError::BadOrigin(..)) => 2,
            _ => 1,
        }
    }
}

pub fn dispatch(command: Command, data_dir: PathBuf) -> Result<(), CliError> {
    match command {
        Command::Run(args) => run(args, data_dir),
        Command::Certs { command } => certs_command(command, &data_dir),
        Command::Origins { command } => origins_command(command, &data_dir),
        Command::Config {
            command: ConfigCommand::Check { file, machine },
        } => {
            let (config, _) = config::parse_file(&file)?;
            // What only makes sense as a whole: the account's server, its DNS server. IT's file
            // may leave the credentials to the agents' files.
            if let Some(account) = &config.account {
                let mut account = account.clone();
                if machine {
                    if account.username.is_empty() {
                        account.username = "agent".into();
                    }
                    if account.password.is_empty() {
                        account.password = crate::config::Secret::new("-");
                    }
                }
                crate::line::LineConfig::from_account(&account)
                    .map_err(|e| CliError::Status(format!("{}: {e}", file.display())))?;
            }
            if !machine && !config.lock.keys.is_empty() {
                return Err(CliError::Status(format!(
                    "{}: [lock] is only read from IT's machine-wide file (check it with --machine)",
                    file.display()
                )));
            }
            println!("{}: ok", file.display());
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Show { config, origin },
        } => {
            let loaded = config::load_layers(&Sources::standard(config))?;
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            print!("{}", config_text(&loaded, origin)?);
            Ok(())
        }
        Command::Status => status(&data_dir),
        Command::Leads { command } => super::leads::run(command, &data_dir),
        Command::Devices => {
            print!("{}", devices_text());
            Ok(())
        }
        Command::SupportBundle { out, config } => {
            let loaded = config::load_layers(&Sources::standard(config))?;
            let written = super::support_bundle::write(&data_dir, &loaded, out)?;
            println!("{}", written.display());
            Ok(())
        }
        Command::Policies { origin, os, ca } => policies(&origin, os.as_deref(), ca.as_deref()),
    }
}

/// `policies`: each origin checked (a page origin or a `[*.]` pattern), then the forms asked for.
fn policies(
    origins: &[String],
    os: Option<&str>,
    ca: Option<&std::path::Path>,
) -> Result<(), CliError> {
    // Only a CA that can sign nothing but localhost goes into every browser's trust.
    let ca_der = ca
        .map(|path| {
            let pem = std::fs::read(path)
                .map_err(|e| CliError::Status(format!("--ca {}: {e}", path.display())))?;
            crate::certs::inspect::inspect_pem(&pem)
                .and_then(|(der, facts)| {
                    crate::certs::inspect::check_constraints(&facts).map(|()| der)
                })
                .map_err(|e| CliError::Status(format!("--ca {}: {e}", path.display())))
        })
        .transpose()?;
    if origins.is_empty() && os.is_some_and(|o| o != "linux") {
        return Err(CliError::Status(
            "--ca alone is for Linux; on Windows and macOS trust the CA in the machine store (docs/deploy.md)".into(),
        ));
    }
    for origin in origins {
        // Chrome's URL patterns: an origin, or a host (`[*.]example.com`) for any scheme.
        let pattern = origin.replace("[*.]", "").replace("*.", "");
        let pattern = if pattern.contains("://") {
            pattern
        } else {
            format!("https://{pattern}")
        };
        crate::origins::Origin::parse(&pattern)
            .map_err(|e| CliError::Status(format!("--origin {origin:?}: {e}")))?;
    }
    use super::policies::{linux_json, macos_mobileconfig, windows_reg};
    let uuid = |_: u8| crate::ids::uuid_v4(&mut crate::ids::OsEntropy);
    let forms = [
        (
            "linux",
            "# /etc/opt/chrome/policies/managed/softphone-bridge.json (also /etc/chromium/policies/managed/, /etc/opt/edge/policies/managed/)",
            linux_json(origins, ca_der.as_deref()),
        ),
        (
            "windows",
            "; softphone-bridge.reg: import with `reg import`, or push the same values by Group Policy / Intune",
            windows_reg(origins),
        ),
        (
            "macos",
            "<!-- softphone-bridge.mobileconfig: install with your MDM (System scope) -->",
            macos_mobileconfig(origins, uuid),
        ),
    ];
    for (name, comment, text) in forms {
        // With only a CA there is nothing for the other systems' forms to say.
        let wanted = os.map_or(!origins.is_empty() || name == "linux", |o| o == name);
        if wanted {
            if os.is_none() {
                println!("{comment}");
            }
            println!("{text}");
        }
    }
    Ok(())
}

/// The merged configuration as TOML (secrets as `***`), headed by the files it came from; with
/// `origin`, every key flat with the file (or `default`) its value came from.
pub(super) fn config_text(loaded: &config::Loaded, origin: bool) -> Result<String, CliError> {
    Ok(config_render(&config_value(loaded)?, loaded, origin))
}

/// The merged configuration as a TOML value (secrets as `***`).
pub(super) fn config_value(loaded: &config::Loaded) -> Result<toml::Value, CliError> {
    toml::Value::try_from(&loaded.config)
        .map_err(|e| CliError::Status(format!("cannot print the configuration: {e}")))
}

/// [`config_text`] of a value the caller may have trimmed further (the support bundle).
pub(super) fn config_render(value: &toml::Value, loaded: &config::Loaded, origin: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if origin {
        for (key, shown) in flat(value, "") {
            let from = loaded.origins.get(&key).map_or("default", String::as_str);
            let _ = writeln!(out, "{key} = {shown}  # {from}");
        }
    } else {
        for path in &loaded.used {
            let _ = writeln!(out, "# from {}", path.display());
        }
        out.push_str(&toml::to_string(value).unwrap_or_default());
    }
    out
}

/// Every leaf of `value` as a dotted key and its TOML text (arrays whole).
fn flat(value: &toml::Value, prefix: &str) -> Vec<(String, String)> {
    match value {
        toml::Value::Table(table) => table
            .iter()
            .flat_map(|(key, inner)| {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flat(inner, &path)
            })
            .collect(),
        other => vec![(prefix.to_owned(), other.to_string())],
    }
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

fn run(args: RunArgs, data_dir: PathBuf) -> Result<(), CliError> {
    let mut sources = Sources::standard(args.config);
    let mut api = toml::Table::new();
    if let Some(port) = args.port {
        let value = if port.is_range() {
            toml::Value::String(port.to_string())
        } else {
            toml::Value::Integer(i64::from(port.first()))
        };
        api.insert("port".into(), value);
    }
    if !args.allow_origins.is_empty() {
        let origins = args
            .allow_origins
            .into_iter()
            .map(toml::Value::String)
            .collect();
        api.insert("allowed_origins".into(), toml::Value::Array(origins));
    }
    if !api.is_empty() {
        sources
            .overrides
            .insert("api".into(), toml::Value::Table(api));
    }
    if let Some(level) = args.log_level {
        let mut log = toml::Table::new();
        log.insert("level".into(), toml::Value::String(level));
        sources
            .overrides
            .insert("log".into(), toml::Value::Table(log));
    }
    let loaded = config::load_layers(&sources)?;
    let (config, used) = (loaded.config, loaded.used);
    let logs = crate::logging::init(&config.log.level, Some(&data_dir.join("logs")));
    logs.0.set_verbose(config.debug_console());
    logs.0.set_pages(config.debug_html());
    for path in &used {
        tracing::info!("config: {}", path.display());
    }
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let options = RunOptions {
        config,
        data_dir,
        headless: args.headless,
        logs: Some(logs),
    };
    // Before the runtime's threads exist: they inherit the keyring it sets up.
    crate::secrets::prepare_process();
    runtime()?.block_on(crate::run::run(options))?;
    Ok(())
}

/// `certs …`. As root against a folder root does not solely own (IT's `install --system` against
/// the agent's folder) nothing is created or written there: the CA is only read, without
/// following links, then checked.
fn certs_command(command: CertsCommand, data_dir: &std::path::Path) -> Result<(), CliError> {
    let paths = CertPaths::in_data_dir(data_dir);
    let root = certs::nofollow::running_as_root();
    let links = if root {
        certs::Links::Refuse
    } else {
        certs::Links::Follow
    };
    // The folder's owner may create and replace files in it; root in someone else's folder may not,
    // and there acts for IT (the system store only). Root is its own user (its own NSS stores)
    // only when both the folder and `$HOME` are root's: under `sudo -E` HOME is the agent's.
    let may_write = !root || certs::nofollow::root_only(data_dir);
    // A HOME that does not exist is no one's: root then acts for IT (the package's trust script
    // runs with HOME=/nonexistent so that nothing is created there).
    let home_is_roots = std::env::var_os("HOME").is_some_and(|home| {
        let home = std::path::Path::new(&home);
        home.is_dir() && certs::nofollow::root_only(home)
    });
    let who = if !root || (may_write && home_is_roots) {
        trust::Installer::Agent
    } else {
        trust::Installer::Root
    };
    let writing = |command| {
        if may_write {
            Ok(())
        } else {
            Err(certs::CertError::RootWouldWrite { command })
        }
    };
    match command {
        CertsCommand::Show => {
            if may_write {
                // The CA is created when missing, as before.
                certs::ensure(&paths)?;
            }
            print_ca(&certs::CaOnDisk::read(&paths, links)?);
            Ok(())
        }
        CertsCommand::Install { system } => {
            if may_write {
                certs::ensure(&paths)?;
            }
            let ca = certs::CaOnDisk::read(&paths, links)?.verified()?;
            let report = trust::install(&ca, system, who)?;
            println!("installed CA SHA-256 {}", ca.facts.sha256);
            print_report("trusted in", &report);
            Ok(())
        }
        CertsCommand::Uninstall { system } => {
            let report = trust::uninstall(system, who)?;
            print_report("removed from", &report);
            Ok(())
        }
        CertsCommand::Renew => {
            writing("renew")?;
            certs::generate(&paths)?;
            println!(
                "new CA at {}; restart the daemon and run `softphone-bridge certs install`",
                paths.ca.display()
            );
            Ok(())
        }
    }
}

/// What the CA certificate itself says, then whether `certs install` would accept it.
fn print_ca(ca: &certs::CaOnDisk) {
    println!("CA certificate: {}", ca.path.display());
    match &ca.facts {
        Ok((_, facts)) => {
            println!("SHA-256:        {}", facts.sha256);
            println!("Subject:        {}", facts.subject);
            println!("Issuer:         {}", facts.issuer);
            println!("Valid from:     {}", facts.not_before);
            println!("Valid until:    {}", facts.not_after);
            match facts.ca {
                Some(Some(len)) => println!("CA:             yes (path length {len})"),
                Some(None) => println!("CA:             yes"),
                None => println!("CA:             no (no basicConstraints CA:TRUE)"),
            }
            match &facts.name_constraints {
                None => println!("Name constraints: none (the CA could vouch for any name)"),
                Some(nc) => {
                    let critical = if nc.critical {
                        "critical"
                    } else {
                        "NOT critical"
                    };
                    let list = |subtrees: &[certs::inspect::Subtree]| {
                        if subtrees.is_empty() {
                            "(none)".to_owned()
                        } else {
                            subtrees
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    };
                    println!("Name constraints: {critical}");
                    println!("  permitted:    {}", list(&nc.permitted));
                    println!("  excluded:     {}", list(&nc.excluded));
                }
            }
        }
        Err(e) => println!("Unreadable:     {e}"),
    }
    match &ca.recorded_sha256 {
        Some(recorded) => println!("Recorded at creation: {recorded}"),
        None => println!("Recorded at creation: (no about.json fingerprint)"),
    }
    match ca.verdict() {
        Ok(()) => println!(
            "Verdict:        OK: our CA, limited to localhost, 127.0.0.1 and ::1 by critical name constraints"
        ),
        Err(e) => println!("Verdict:        REFUSED: {e}"),
    }
}

fn print_report(verb: &str, report: &trust::Report) {
    for store in &report.done {
        println!("{verb}: {store}");
    }
    for store in &report.skipped {
        println!("skipped: {store}");
    }
}

fn origins_command(command: OriginsCommand, data_dir: &std::path::Path) -> Result<(), CliError> {
    crate::private_files::create_dir(data_dir).map_err(|e| StoreError::Write {
        path: e.path,
        source: e.source,
    })?;
    let mut store = ApprovalStore::open(&data_dir.join("origins.json"))?;
    match command {
        OriginsCommand::List => {
            let origins = store.origins();
            for (label, list) in [
                ("approved", &origins.approved),
                ("denied", &origins.denied),
                ("pending", &origins.pending),
            ] {
                for origin in list {
                    println!("{label}\t{origin}");
                }
            }
        }
        OriginsCommand::Approve { origin } => println!("approved {}", store.approve(&origin)?),
        OriginsCommand::Deny { origin } => {
            let denied = store.deny(&origin)?;
            println!("denied {denied}");
            // IT's list wins over the agent's: say so instead of pretending the page is cut off.
            let it_listed = config::load(&Sources::standard(None)).is_ok_and(|(config, _)| {
                config
                    .api
                    .allowed_origins
                    .iter()
                    .any(|o| crate::origins::Origin::parse(o).is_ok_and(|o| o == denied))
            });
            if it_listed {
                eprintln!(
                    "warning: IT lists {denied} in [api] allowed_origins, so the daemon keeps allowing it; ask IT to remove it there"
                );
            }
        }
        OriginsCommand::Forget { origin } => println!("forgot {}", store.forget(&origin)?),
    }
    Ok(())
}

fn status(data_dir: &std::path::Path) -> Result<(), CliError> {
    use futures_util::StreamExt;
    let Some(info) = DaemonInfo::read(data_dir) else {
        return Err(CliError::Status(format!(
            "not running (no {})",
            DaemonInfo::path(data_dir).display()
        )));
    };
    let certs = certs::load(&CertPaths::in_data_dir(data_dir))?;
    let origin = format!("https://localhost:{}", info.port);
    let target = crate::client::Target::new(info.port, Some(&origin));
    let hello = runtime()?.block_on(async {
        let mut ws = crate::client::connect(&target, &certs.ca)
            .await
            .map_err(|e| CliError::Status(format!("daemon pid {} not reachable: {e}", info.pid)))?;
        match ws.next().await {
            Some(Ok(frame)) => Ok(frame.into_text().map(|t| t.to_string()).unwrap_or_default()),
            _ => Err(CliError::Status("no hello from the daemon".into())),
        }
    })?;
    println!(
        "running: pid {}, wss://localhost:{}/ws",
        info.pid, info.port
    );
    let value: serde_json::Value = serde_json::from_str(&hello).unwrap_or_default();
    let state = &value["payload"]["state"];
    // The extension is what the platform's User Login step needs (docs/deploy.md).
    let extension = state["line"]["extension"]
        .as_str()
        .map(|e| format!(" (extension {e})"))
        .unwrap_or_default();
    println!(
        "line:     {}{extension}",
        state["line"]["state"].as_str().unwrap_or("?")
    );
    println!(
        "presence: {}",
        state["presence"]["name"].as_str().unwrap_or("?")
    );
    println!(
        "calls:    {}",
        state["calls"].as_array().map_or(0, Vec::len)
    );
    Ok(())
}

/// The audio devices, as `devices` prints them (and the support bundle keeps them).
#[cfg(feature = "devices")]
pub(super) fn devices_text() -> String {
    use std::fmt::Write;
    let list = crate::audio::device::list();
    let mark = |name: &String, default: &Option<String>| {
        if default.as_ref() == Some(name) {
            " (default)"
        } else {
            ""
        }
    };
    let mut out = String::from("input devices:\n");
    for name in &list.inputs {
        let _ = writeln!(out, "  {name}{}", mark(name, &list.default_input));
    }
    out.push_str("output devices:\n");
    for name in &list.outputs {
        let _ = writeln!(out, "  {name}{}", mark(name, &list.default_output));
    }
    if list.inputs.is_empty() && list.outputs.is_empty() {
        out.push_str("  (none found; calls use [audio] backend = \"file\" or have no audio)\n");
    }
    out
}

#[cfg(not(feature = "devices"))]
pub(super) fn devices_text() -> String {
    "built without the `devices` feature: no audio devices\n".into()
}
