//! Adding the local CA to the trust stores browsers use, and taking it out again.
//!
//! - Linux: the NSS databases Chromium (`~/.pki/nssdb`) and Firefox (each profile) read, via
//!   `certutil` (package `libnss3-tools`); with `--system`, also the system store via
//!   `update-ca-certificates` (Debian/Ubuntu) or `trust anchor` (p11-kit: Fedora, Arch).
//! - macOS: the login keychain (`security add-trusted-cert`).
//! - Windows: the current user's Root store (`certutil -user`).
//!
//! `certs/` in the repository has the same steps as scripts IT runs at scale.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The nickname the CA gets in NSS databases and the file name in the system store.
pub const NICKNAME: &str = "softphone-bridge local CA";
#[cfg(target_os = "linux")]
const SYSTEM_ANCHOR: &str = "/usr/local/share/ca-certificates/softphone-bridge.crt";

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("`{program}` is not installed ({hint})")]
    MissingTool {
        program: &'static str,
        hint: &'static str,
    },
    #[error("`{command}` failed: {output}")]
    Failed { command: String, output: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no trust store was changed: {0}")]
    NothingDone(String),
}

/// What one install/uninstall did, store by store, for the CLI to print.
#[derive(Debug, Default)]
pub struct Report {
    pub done: Vec<String>,
    pub skipped: Vec<String>,
}

pub fn install(ca: &Path, system: bool) -> Result<Report, TrustError> {
    platform::install(ca, system)
}

pub fn uninstall(system: bool) -> Result<Report, TrustError> {
    platform::uninstall(system)
}

fn run(program: &'static str, args: &[&str], hint: &'static str) -> Result<String, TrustError> {
    let output = Command::new(program).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            TrustError::MissingTool { program, hint }
        } else {
            TrustError::Failed {
                command: program.into(),
                output: e.to_string(),
            }
        }
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(TrustError::Failed {
            command: format!("{program} {}", args.join(" ")),
            output: text.trim().to_owned(),
        })
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use super::*;

    const CERTUTIL_HINT: &str = "install libnss3-tools (Debian/Ubuntu) or nss-tools (Fedora)";

    /// Chromium's shared NSS database and every Firefox profile under the home directory.
    fn nss_databases(create_chromium_db: bool) -> Result<Vec<PathBuf>, TrustError> {
        let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
            return Ok(Vec::new());
        };
        let mut dbs = Vec::new();
        let chromium = home.join(".pki/nssdb");
        if !chromium.join("cert9.db").exists() && create_chromium_db {
            std::fs::create_dir_all(&chromium).map_err(|source| TrustError::Io {
                path: chromium.clone(),
                source,
            })?;
            let db = format!("sql:{}", chromium.display());
            run(
                "certutil",
                &["-N", "-d", &db, "--empty-password"],
                CERTUTIL_HINT,
            )?;
        }
        if chromium.join("cert9.db").exists() {
            dbs.push(chromium);
        }
        for firefox in [
            home.join(".mozilla/firefox"),
            home.join("snap/firefox/common/.mozilla/firefox"),
        ] {
            let Ok(entries) = std::fs::read_dir(&firefox) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.path().join("cert9.db").exists() {
                    dbs.push(entry.path());
                }
            }
        }
        Ok(dbs)
    }

    pub fn install(ca: &Path, system: bool) -> Result<Report, TrustError> {
        let mut report = Report::default();
        let ca_str = ca.to_string_lossy();
        for db in nss_databases(true)? {
            let db_arg = format!("sql:{}", db.display());
            // Replace any older CA of ours (a renewal makes a new one under the same nickname).
            let _ = run(
                "certutil",
                &["-D", "-d", &db_arg, "-n", NICKNAME],
                CERTUTIL_HINT,
            );
            run(
                "certutil",
                &[
                    "-A", "-d", &db_arg, "-t", "C,,", "-n", NICKNAME, "-i", &ca_str,
                ],
                CERTUTIL_HINT,
            )?;
            report.done.push(format!("NSS database {}", db.display()));
        }
        if system {
            install_system(ca, &mut report)?;
        } else {
            report
                .skipped
                .push("system store (use --system, as root)".into());
        }
        if report.done.is_empty() {
            return Err(TrustError::NothingDone("no NSS database found".into()));
        }
        Ok(report)
    }

    fn install_system(ca: &Path, report: &mut Report) -> Result<(), TrustError> {
        if Path::new("/usr/sbin/update-ca-certificates").exists() {
            std::fs::copy(ca, SYSTEM_ANCHOR).map_err(|source| TrustError::Io {
                path: SYSTEM_ANCHOR.into(),
                source,
            })?;
            run("update-ca-certificates", &[], "install ca-certificates")?;
            report.done.push(format!("system store ({SYSTEM_ANCHOR})"));
        } else {
            run(
                "trust",
                &["anchor", "--store", &ca.to_string_lossy()],
                "install p11-kit",
            )?;
            report
                .done
                .push("system store (p11-kit trust anchor)".into());
        }
        Ok(())
    }

    pub fn uninstall(system: bool) -> Result<Report, TrustError> {
        let mut report = Report::default();
        for db in nss_databases(false)? {
            let db_arg = format!("sql:{}", db.display());
            match run(
                "certutil",
                &["-D", "-d", &db_arg, "-n", NICKNAME],
                CERTUTIL_HINT,
            ) {
                Ok(_) => report.done.push(format!("NSS database {}", db.display())),
                Err(TrustError::MissingTool { .. }) => {
                    return Err(TrustError::MissingTool {
                        program: "certutil",
                        hint: CERTUTIL_HINT,
                    });
                }
                Err(_) => report
                    .skipped
                    .push(format!("NSS database {} (not present)", db.display())),
            }
        }
        if system && Path::new(SYSTEM_ANCHOR).exists() {
            std::fs::remove_file(SYSTEM_ANCHOR).map_err(|source| TrustError::Io {
                path: SYSTEM_ANCHOR.into(),
                source,
            })?;
            run(
                "update-ca-certificates",
                &["--fresh"],
                "install ca-certificates",
            )?;
            report.done.push(format!("system store ({SYSTEM_ANCHOR})"));
        }
        Ok(report)
    }
}

#[cfg(target_os = "macos")]
mod platform {
    use super::*;

    fn keychain() -> String {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/Library/Keychains/login.keychain-db")
    }

    pub fn install(ca: &Path, _system: bool) -> Result<Report, TrustError> {
        let kc = keychain();
        run(
            "security",
            &[
                "add-trusted-cert",
                "-r",
                "trustRoot",
                "-k",
                &kc,
                &ca.to_string_lossy(),
            ],
            "part of macOS",
        )?;
        Ok(Report {
            done: vec![format!("login keychain {kc}")],
            skipped: Vec::new(),
        })
    }

    pub fn uninstall(_system: bool) -> Result<Report, TrustError> {
        let kc = keychain();
        run(
            "security",
            &["delete-certificate", "-c", "softphone-bridge local CA", &kc],
            "part of macOS",
        )?;
        Ok(Report {
            done: vec![format!("login keychain {kc}")],
            skipped: Vec::new(),
        })
    }
}

#[cfg(target_os = "windows")]
mod platform {
    use super::*;

    pub fn install(ca: &Path, _system: bool) -> Result<Report, TrustError> {
        run(
            "certutil",
            &["-user", "-f", "-addstore", "Root", &ca.to_string_lossy()],
            "part of Windows",
        )?;
        Ok(Report {
            done: vec!["current user's Root store".into()],
            skipped: Vec::new(),
        })
    }

    pub fn uninstall(_system: bool) -> Result<Report, TrustError> {
        run(
            "certutil",
            &["-user", "-delstore", "Root", "softphone-bridge local CA"],
            "part of Windows",
        )?;
        Ok(Report {
            done: vec!["current user's Root store".into()],
            skipped: Vec::new(),
        })
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod platform {
    use super::*;

    pub fn install(_ca: &Path, _system: bool) -> Result<Report, TrustError> {
        Err(TrustError::NothingDone(
            "this OS has no automatic trust installation; see certs/README.md".into(),
        ))
    }
    pub fn uninstall(_system: bool) -> Result<Report, TrustError> {
        install(Path::new(""), false)
    }
}
