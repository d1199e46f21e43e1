//! Files and folders only their owner can read. Everything the daemon writes — the data folder,
//! logs, approvals, `daemon.json`, certificates, recordings — goes through these helpers, so on a
//! shared machine (a terminal server) no other OS user can read call logs, approvals or keys.
//!
//! On Unix: folders are created `0700`, files `0600`, both set at creation (never readable by
//! others, not even for a moment); a path an older install left looser is tightened and reported
//! as [`Tightened`] for the caller to log (logging may not be set up yet when the log file opens).
//! Symbolic links are never followed when tightening. Elsewhere (Windows) the per-user data folder
//! already inherits an owner-only ACL, and these helpers create files plainly.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Mode of every folder the daemon creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the daemon creates.
pub const FILE_MODE: u32 = 0o600;

/// A file operation that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct PrivateFileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl PrivateFileError {
    fn at(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self {
            path: path.to_owned(),
            source,
        }
    }
}

/// A path other users could read (or write), now owner-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tightened {
    pub path: PathBuf,
    /// Permission bits before.
    pub was: u32,
    /// Permission bits now.
    pub now: u32,
}

impl Tightened {
    /// Logs the warning an agent or IT person should see once.
    pub fn warn(&self) {
        tracing::warn!(
            "{} was open to other users (mode {:04o}, left by an older install?); now {:04o}",
            self.path.display(),
            self.was,
            self.now
        );
    }
}

/// What to do with a file that already exists when opening it for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Keep its content and write at the end (logs).
    Append,
    /// Start it afresh (recordings, a log grown too big).
    Truncate,
}

/// Creates `dir` and any missing parents owner-only, and tightens `dir` itself if it already
/// existed with looser permissions.
pub fn create_dir(dir: &Path) -> Result<Option<Tightened>, PrivateFileError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(dir).map_err(PrivateFileError::at(dir))?;
    tighten(dir)
}

/// Replaces `path` with `bytes` atomically (a temporary file beside it, then a rename), so a
/// reader never sees half a file, and the new file is owner-only from its first byte.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PrivateFileError> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    // A temporary file left by a crash is ours to replace; `create_new` below then guarantees
    // the file we write is one we created with our mode, not one planted beforehand.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(PrivateFileError::at(&tmp)(e));
        }
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    set_file_mode(&mut options);
    let mut file = options.open(&tmp).map_err(PrivateFileError::at(&tmp))?;
    if let Err(e) = file.write_all(bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(PrivateFileError::at(&tmp)(e));
    }
    drop(file);
    std::fs::rename(&tmp, path).map_err(PrivateFileError::at(path))
}

/// Opens `path` for writing, creating it owner-only; an existing file keeps or loses its content
/// as `existing` says and is tightened if it was looser.
pub fn open(
    path: &Path,
    existing: Existing,
) -> Result<(File, Option<Tightened>), PrivateFileError> {
    let mut options = OpenOptions::new();
    options.create(true);
    match existing {
        Existing::Append => options.append(true),
        Existing::Truncate => options.write(true).truncate(true),
    };
    set_file_mode(&mut options);
    let file = options.open(path).map_err(PrivateFileError::at(path))?;
    let tightened = tighten_open(&file, path)?;
    Ok((file, tightened))
}

/// Makes one path owner-only if it is not: `0700` for a folder, `0600` for a file. Symbolic
/// links are left alone (never followed).
pub fn tighten(path: &Path) -> Result<Option<Tightened>, PrivateFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(path).map_err(PrivateFileError::at(path))?;
        let target = if meta.is_dir() {
            DIR_MODE
        } else if meta.is_file() {
            FILE_MODE
        } else {
            return Ok(None);
        };
        let was = meta.permissions().mode() & 0o7777;
        if was & 0o077 == 0 {
            return Ok(None);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(target))
            .map_err(PrivateFileError::at(path))?;
        Ok(Some(Tightened {
            path: path.to_owned(),
            was,
            now: target,
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

/// What [`tighten_tree`] changed, and the entries it could not change.
#[derive(Debug, Default)]
pub struct TreeReport {
    pub tightened: Vec<Tightened>,
    pub failed: Vec<PrivateFileError>,
}

impl TreeReport {
    /// One warning per tightened path and per failure.
    pub fn warn(&self) {
        for tightened in &self.tightened {
            tightened.warn();
        }
        for failure in &self.failed {
            tracing::warn!("cannot make owner-only: {failure}");
        }
    }
}

/// Tightens `root` and everything below it (without following links). Failing on `root` is an
/// error: its `0700` is what keeps every entry private. An entry that cannot be changed (owned by
/// someone else) is reported and the walk goes on.
pub fn tighten_tree(root: &Path) -> Result<TreeReport, PrivateFileError> {
    let mut report = TreeReport::default();
    report.tightened.extend(tighten(root)?);
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) => {
                report.failed.push(PrivateFileError::at(&folder)(e));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    report.failed.push(PrivateFileError::at(&folder)(e));
                    continue;
                }
            };
            let path = entry.path();
            match tighten(&path) {
                Ok(tightened) => report.tightened.extend(tightened),
                Err(e) => report.failed.push(e),
            }
            // `file_type` does not follow links: a link to a folder is not walked into.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(path);
            }
        }
    }
    Ok(report)
}

fn set_file_mode(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    #[cfg(not(unix))]
    {
        let _ = options;
    }
}

/// Tightens an already open file through its handle, so a link swapped in meanwhile is not hit.
fn tighten_open(file: &File, path: &Path) -> Result<Option<Tightened>, PrivateFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = file.metadata().map_err(PrivateFileError::at(path))?;
        let was = meta.permissions().mode() & 0o7777;
        // A device or pipe given as a recording target (`/dev/null`) is not ours to change.
        if !meta.is_file() || was & 0o077 == 0 {
            return Ok(None);
        }
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(PrivateFileError::at(path))?;
        Ok(Some(Tightened {
            path: path.to_owned(),
            was,
            now: FILE_MODE,
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        Ok(None)
    }
}

/// The OS user this process runs as (Linux: the owner of `/proc/self`, read without `unsafe`).
/// Files here are made "owner-only" for this user; the API refuses peers of any other.
#[cfg(target_os = "linux")]
pub fn own_uid() -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|meta| meta.uid())
}

/// Whether this process runs as root (never, where [`own_uid`] cannot tell).
pub fn running_as_root() -> bool {
    #[cfg(target_os = "linux")]
    {
        own_uid().is_ok_and(|uid| uid == 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777
    }

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn new_folders_and_files_are_owner_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a/b");
        assert_eq!(create_dir(&dir).expect("create"), None);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);

        let file = dir.join("daemon.json");
        write_atomic(&file, b"{}").expect("write");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).expect("read"), b"{}");
        write_atomic(&file, b"{\"a\":1}").expect("rewrite");
        assert_eq!(std::fs::read(&file).expect("read"), b"{\"a\":1}");
        assert!(!dir.join("daemon.json.tmp").exists(), "no temporary left");

        let (mut log, tightened) = open(&dir.join("x.log"), Existing::Append).expect("open");
        log.write_all(b"line\n").expect("write");
        assert_eq!(tightened, None);
        assert_eq!(mode(&dir.join("x.log")), 0o600);
    }

    #[test]
    fn a_loose_existing_path_is_tightened_and_reported() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).expect("mkdir");
        set_mode(&dir, 0o755);
        let tightened = create_dir(&dir).expect("create").expect("tightened");
        assert_eq!((tightened.was, tightened.now), (0o755, 0o700));
        assert_eq!(mode(&dir), 0o700);

        let log = dir.join("old.log");
        std::fs::write(&log, "old\n").expect("write");
        set_mode(&log, 0o644);
        let (mut file, tightened) = open(&log, Existing::Append).expect("open");
        file.write_all(b"new\n").expect("append");
        assert_eq!(tightened.map(|t| t.was), Some(0o644));
        assert_eq!(mode(&log), 0o600);
        assert_eq!(std::fs::read_to_string(&log).expect("read"), "old\nnew\n");

        let (_, tightened) = open(&log, Existing::Truncate).expect("reopen");
        assert_eq!(tightened, None, "already owner-only");
        assert_eq!(std::fs::read_to_string(&log).expect("read"), "");
    }

    #[test]
    fn a_tree_is_tightened_without_following_links() {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let foreign = outside.path().join("foreign.txt");
        std::fs::write(&foreign, "not ours").expect("write");
        set_mode(&foreign, 0o644);

        let data = root.path().join("data");
        std::fs::create_dir_all(data.join("logs")).expect("mkdir");
        std::fs::write(data.join("origins.json"), "{}").expect("write");
        std::fs::write(data.join("logs/softphone-bridge.log"), "x").expect("write");
        std::os::unix::fs::symlink(&foreign, data.join("link")).expect("symlink");
        for (path, m) in [
            (data.clone(), 0o755),
            (data.join("logs"), 0o777),
            (data.join("origins.json"), 0o644),
            (data.join("logs/softphone-bridge.log"), 0o664),
        ] {
            set_mode(&path, m);
        }

        let report = tighten_tree(&data).expect("tighten");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        let mut changed: Vec<_> = report
            .tightened
            .iter()
            .map(|t| {
                (
                    t.path.strip_prefix(&data).expect("inside").to_owned(),
                    t.was,
                )
            })
            .collect();
        changed.sort();
        assert_eq!(
            changed,
            vec![
                (PathBuf::new(), 0o755),
                (PathBuf::from("logs"), 0o777),
                (PathBuf::from("logs/softphone-bridge.log"), 0o664),
                (PathBuf::from("origins.json"), 0o644),
            ]
        );
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("logs")), 0o700);
        assert_eq!(mode(&data.join("logs/softphone-bridge.log")), 0o600);
        assert_eq!(mode(&foreign), 0o644, "the link's target is not touched");
        assert!(tighten_tree(&data).expect("again").tightened.is_empty());
    }
}
