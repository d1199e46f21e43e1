//! Adding the local CA to the trust stores browsers use, and taking it out again.
//!
//! - Linux: the NSS databases Chromium (`~/.pki/nssdb`) and Firefox (each profile) read, via
//!   `certutil` (package `libnss3-tools`); with `--system`, also the system store via
//!   `update-ca-certificates` (Debian/Ubuntu) or `trust anchor` (p11-kit: Fedora, Arch).
//! - macOS: the login keychain (`security add-trusted-cert`).
//! - Windows: the current user's Root store (`certutil -user`).
//!
//! `certs/` in the repository has the same steps as scripts IT runs at scale.
//!
//! Only a [`VerifiedCa`] can be installed, and it is installed from memory: the tools get a copy
//! written to a fresh owner-only folder of this process, never the path in the agent's folder.
//! As root (Linux `--system`), only the system store is changed: NSS databases are per-user and
//! live in a home folder root must not write in (`sudo` may even keep the agent's `HOME`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::VerifiedCa;

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
    #[error("as root, `certs install` only changes the system store: add --system")]
    RootNeedsSystem,
}

/// What one install/uninstall did, store by store, for the CLI to print.
#[derive(Debug, Default)]
pub struct Report {
    pub done: Vec<String>,
    pub skipped: Vec<String>,
}

/// Who runs the install: the agent (their own stores) or root (the system store only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    Agent,
    Root,
}

pub fn install(ca: &VerifiedCa, system: bool, who: Installer) -> Result<Report, TrustError> {
    if who == Installer::Root && !system {
        return Err(TrustError::RootNeedsSystem);
    }
    let copy = PrivateCopy::write(ca.pem().as_bytes())?;
    platform::install(&copy.file, ca, system, who)
}

pub fn uninstall(system: bool, who: Installer) -> Result<Report, TrustError> {
    platform::uninstall(system, who)
}

/// The verified CA in a folder only this process made and only its user can enter; removed on
/// drop. Tools read this copy, so what they install is exactly what was verified.
struct PrivateCopy {
    dir: PathBuf,
    file: PathBuf,
}

impl PrivateCopy {
    fn write(pem: &[u8]) -> Result<Self, TrustError> {
        use std::io::Write;
        let mut nonce = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).map_err(
            |_| TrustError::Io {
                path: std::env::temp_dir(),
                source: std::io::Error::other("no system randomness"),
            },
        )?;
        let name: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("softphone-bridge-ca-{name}"));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| TrustError::Io { path, source }
        };
        #[cfg(unix)]
        let builder = {
            use std::os::unix::fs::DirBuilderExt;
            let mut builder = std::fs::DirBuilder::new();
            builder.mode(0o700);
            builder
        };
        #[cfg(not(unix))]
        let builder = std::fs::DirBuilder::new();
        // `create` (not `create_all`) fails if anything, a planted link included, is there.
        builder.create(&dir).map_err(io(&dir))?;
        let copy = Self {
            file: dir.join("ca.pem"),
            dir,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&copy.file).map_err(io(&copy.file))?;
        file.write_all(pem).map_err(io(&copy.file))?;
        Ok(copy)
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_dir(&self.dir);
    }
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
    /// The agent's NSS databases (`create`: make Chromium's if missing); none for root, which
    /// changes only the system store.
    fn user_databases(
        who: Installer,
        create: bool,
        report: &mut Report,
    ) -> Result<Vec<PathBuf>, TrustError> {
        match who {
            Installer::Agent => nss_databases(create),
            Installer::Root => {
                report
                    .skipped
                    .push("NSS databases (per user: run as the agent)".into());
                Ok(Vec::new())
            }
        }
    }

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

    pub fn install(
        ca: &Path,
        verified: &VerifiedCa,
        system: bool,
        who: Installer,
    ) -> Result<Report, TrustError> {
        let mut report = Report::default();
        let ca_str = ca.to_string_lossy();
        let databases = user_databases(who, true, &mut report)?;
        for db in databases {
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
            install_system(ca, verified, &mut report)?;
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

    fn install_system(
        ca: &Path,
        verified: &VerifiedCa,
        report: &mut Report,
    ) -> Result<(), TrustError> {
        if Path::new("/usr/sbin/update-ca-certificates").exists() {
            write_anchor(verified.pem().as_bytes())?;
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

    /// Writes the system anchor from memory, never through a link.
    fn write_anchor(pem: &[u8]) -> Result<(), TrustError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| TrustError::Io {
            path: SYSTEM_ANCHOR.into(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(crate::certs::nofollow::O_NOFOLLOW)
            .open(SYSTEM_ANCHOR)
            .map_err(io)?;
        file.write_all(pem).map_err(io)
    }

    pub fn uninstall(system: bool, who: Installer) -> Result<Report, TrustError> {
        let mut report = Report::default();
        let databases = user_databases(who, false, &mut report)?;
        for db in databases {
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

    /// The System keychain with `--system` (as root: every user, no prompt when an MDM or the
    /// package runs it), else the user's login keychain.
    fn keychain(system: bool) -> String {
        if system {
            return "/Library/Keychains/System.keychain".into();
        }
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/Library/Keychains/login.keychain-db")
    }

    pub fn install(
        ca: &Path,
        _verified: &VerifiedCa,
        system: bool,
        _who: Installer,
    ) -> Result<Report, TrustError> {
        let kc = keychain(system);
        let mut args = vec!["add-trusted-cert"];
        if system {
            // Admin trust settings: they apply to every user of the machine.
            args.push("-d");
        }
        let ca = ca.to_string_lossy();
        args.extend(["-r", "trustRoot", "-k", &kc, &ca]);
        run("security", &args, "part of macOS")?;
        Ok(Report {
            done: vec![format!("keychain {kc}")],
            skipped: Vec::new(),
        })
    }

    pub fn uninstall(system: bool, _who: Installer) -> Result<Report, TrustError> {
        let kc = keychain(system);
        run(
            "security",
            &["delete-certificate", "-c", "softphone-bridge local CA", &kc],
            "part of macOS",
        )?;
        Ok(Report {
            done: vec![format!("keychain {kc}")],
            skipped: Vec::new(),
        })
    }
}

#[cfg(target_os = "windows")]
mod platform {
    use super::*;

    /// `--system` (elevated: the MSI, or IT): the machine's Root store, which every user and
    /// Chrome/Edge trust; else the current user's (Windows asks the user to confirm).
    fn store(system: bool) -> (&'static [&'static str], &'static str) {
        if system {
            (&[], "machine Root store")
        } else {
            (&["-user"], "current user's Root store")
        }
    }

    pub fn install(
        ca: &Path,
        _verified: &VerifiedCa,
        system: bool,
        _who: Installer,
    ) -> Result<Report, TrustError> {
        let (scope, name) = store(system);
        let ca = ca.to_string_lossy();
        let mut args = scope.to_vec();
        args.extend(["-f", "-addstore", "Root", &ca]);
        run("certutil", &args, "part of Windows")?;
        Ok(Report {
            done: vec![name.into()],
            skipped: Vec::new(),
        })
    }

    pub fn uninstall(system: bool, _who: Installer) -> Result<Report, TrustError> {
        let (scope, name) = store(system);
        let mut args = scope.to_vec();
        args.extend(["-delstore", "Root", "softphone-bridge local CA"]);
        run("certutil", &args, "part of Windows")?;
        Ok(Report {
            done: vec![name.into()],
            skipped: Vec::new(),
        })
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod platform {
    use super::*;

    pub fn install(
        _ca: &Path,
        _verified: &VerifiedCa,
        _system: bool,
        _who: Installer,
    ) -> Result<Report, TrustError> {
        uninstall(false, Installer::Agent)
    }
    pub fn uninstall(_system: bool, _who: Installer) -> Result<Report, TrustError> {
        Err(TrustError::NothingDone(
            "this OS has no automatic trust installation; see certs/README.md".into(),
        ))
    }
}
