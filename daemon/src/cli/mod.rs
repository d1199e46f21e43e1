//! Command-line surface: parses arguments, loads config, runs one command, maps the outcome to
//! an exit code (0 success, 1 failure at run time, 2 bad usage or bad config).

mod commands;
mod leads;
pub mod policies;
mod support_bundle;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "softphone-bridge",
    version,
    about = "The agent's phone line, driven by CRM pages over a secure localhost WebSocket"
)]
pub struct Cli {
    /// Where certificates, approvals, state and logs live (default: the per-user data folder).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (tray icon unless --headless).
    Run(RunArgs),
    /// Manage the local certificate authority and browser trust.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// List, approve or deny web origins that asked to use the phone.
    Origins {
        #[command(subcommand)]
        command: OriginsCommand,
    },
    /// Check configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Show whether the daemon runs, and its state.
    Status,
    /// The platform's lead-archive endpoint (for IT's scripts).
    Leads {
        #[command(subcommand)]
        command: leads::LeadsCommand,
    },
    /// List audio devices (names for [audio] input, output, ringer).
    Devices,
    /// Write a zip for a helpdesk ticket: config (secrets hidden), logs, versions, audio devices,
    /// the last 100 events. No passwords, keys or recordings are in it.
    SupportBundle {
        /// Where to write it (default: softphone-bridge-support-DATE-TIME.zip here). An existing
        /// file is not replaced.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The extra config file the daemon runs with (as `run --config`), if any.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print the Chrome/Edge policies that let CRM origins reach the phone on localhost.
    Policies {
        /// A CRM origin (repeatable), e.g. https://crm.example.com; `[*.]example.com` patterns too.
        #[arg(long, required_unless_present = "ca")]
        origin: Vec<String>,
        /// Also trust this localhost CA (PEM; name-constrained to localhost, as `certs` and the
        /// package make them) in Chrome and Edge on Linux, which do not read the system store
        /// (the CACertificates policy). On Windows and macOS the machine store serves.
        #[arg(long, value_name = "CA_PEM")]
        ca: Option<PathBuf>,
        /// Only this OS's form: linux (managed-policy JSON), windows (.reg), macos (.mobileconfig).
        #[arg(long, value_parser = ["linux", "windows", "macos"])]
        os: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// An extra config file, applied over the system-wide and per-user files.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run without a tray icon.
    #[arg(long)]
    pub headless: bool,
    /// Port for https/wss on localhost (0 picks a free one), or a range whose first free port
    /// is taken (terminal servers: "48443-48543"). The port in use is in DATA_DIR/daemon.json.
    #[arg(long, value_name = "PORT|FIRST-LAST")]
    pub port: Option<crate::config::Ports>,
    /// Allow an origin without approval (repeatable), e.g. https://crm.example.com.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,
    /// Log level or filter (error, warn, info, debug, trace).
    #[arg(long)]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Print the CA's path, fingerprint and validity.
    Show,
    /// Trust the local CA in this user's browsers (and, with --system, the system store).
    Install {
        /// Also the machine's trust store (run as root / administrator; every user trusts it).
        #[arg(long)]
        system: bool,
    },
    /// Remove the local CA from the stores `install` wrote to.
    Uninstall {
        /// Also from the machine's trust store (run as root / administrator).
        #[arg(long)]
        system: bool,
    },
    /// Make a new CA and certificate (then run `certs install` again).
    Renew,
}

#[derive(Debug, Subcommand)]
pub enum OriginsCommand {
    /// Show approved, denied and pending origins.
    List,
    /// Let an origin use the phone (as the agent's "Allow" in the tray).
    Approve {
        /// The origin, `scheme://host[:port]`, e.g. https://crm.example.com.
        origin: String,
    },
    /// Refuse an origin; its pages are turned away until it is forgotten or approved.
    Deny {
        /// The origin, `scheme://host[:port]`.
        origin: String,
    },
    /// Forget an origin: it will be pending again on its next attempt.
    Forget {
        /// The origin, `scheme://host[:port]`.
        origin: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parse FILE strictly and report the first problem.
    Check {
        /// The TOML file to check (unknown keys, wrong types and bad values are errors).
        file: PathBuf,
        /// FILE is IT's machine-wide file: it may leave out what agents' files add (the
        /// account's user name and password), and may lock keys with `[lock]`.
        #[arg(long)]
        machine: bool,
    },
    /// Print the merged configuration the daemon would use (secrets redacted).
    Show {
        /// An extra config file, applied over the system-wide and per-user files (as `run --config`).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print each key the files or flags set with the file it came from, one per line.
        #[arg(long)]
        origin: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let data_dir = match cli.data_dir.clone().or_else(default_data_dir) {
        Some(dir) => dir,
        None => {
            eprintln!("error: no home directory; pass --data-dir DIR");
            return ExitCode::from(2);
        }
    };
    match commands::dispatch(cli.command, data_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

pub fn default_data_dir() -> Option<PathBuf> {
    // The local profile: on Windows %LOCALAPPDATA%, never the roaming profile (a call's store,
    // logs and certificates must not follow the agent to another machine or slow every sign-in);
    // elsewhere the same as the data folder.
    directories::ProjectDirs::from("", "", "softphone-bridge")
        .map(|d| d.data_local_dir().to_owned())
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    /// Every subcommand and every argument of the CLI says what it is for (`--help`).
    #[test]
    fn every_subcommand_and_flag_has_help_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in command.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} <{id}>"));
                }
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "softphone-bridge", &mut missing);
        assert_eq!(missing, Vec::<String>::new(), "without help text");
    }
}
