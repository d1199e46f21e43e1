//! Reading certificate files from a folder someone else controls, without following their links.
//!
//! IT runs `certs install --system` as root against the agent's data folder. Everything in that
//! folder (and the folder itself) belongs to the agent, who could have planted symbolic links
//! pointing at root's files. So the root flow never writes or changes anything there: it only
//! *reads*, and it reads through [`NoFollowDir`]:
//!
//! - the path is walked from `/` one component at a time; each component is opened relative to
//!   the directory opened before it (through `/proc/self/fd/N/NAME`, which resolves `N` to the
//!   very directory already open, never re-reading the path) with `O_NOFOLLOW`, so a symbolic
//!   link anywhere on the way is refused, and swapping a component for a link after a check has
//!   nothing to race against;
//! - files are opened `O_NOFOLLOW | O_NONBLOCK` (a planted FIFO cannot hang root), must be regular
//!   files with one link (no hard link to a root file), owned by the owner of the folder they are
//!   in, and small.
//!
//! `O_NOFOLLOW` and `O_NONBLOCK` come from `libc`, per architecture. Other operating systems get
//! a best-effort check
//! (`symlink_metadata` of every component); the root flow (`--system`) is Linux-only.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

pub use crate::private_files::running_as_root;

/// The flags and error number this module needs, from `libc` (constants only, no `unsafe`): they
/// differ between architectures (`O_NOFOLLOW` is 0o400000 on x86_64 but 0o100000 on aarch64,
/// where 0o400000 means `O_LARGEFILE` and would silently follow links).
#[cfg(target_os = "linux")]
pub const O_NOFOLLOW: i32 = libc::O_NOFOLLOW;
#[cfg(target_os = "linux")]
const O_NONBLOCK: i32 = libc::O_NONBLOCK;
/// What opening a symbolic link with `O_NOFOLLOW` fails with.
#[cfg(target_os = "linux")]
const ELOOP: i32 = libc::ELOOP;

/// Certificate files are a few kilobytes; anything bigger is not ours.
const MAX_FILE_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum NoFollowError {
    #[error(
        "{path} is a symbolic link; links are never followed in a folder the agent controls (pass the real path)"
    )]
    Symlink { path: PathBuf },
    #[error("{path} contains `..`; pass a plain absolute path")]
    NotPlain { path: PathBuf },
    #[error("{path} is not a directory")]
    NotDirectory { path: PathBuf },
    #[error("{path} is not a regular file")]
    NotRegularFile { path: PathBuf },
    #[error("{path} has {links} hard links; refusing a file that may be another file in disguise")]
    HardLinked { path: PathBuf, links: u64 },
    #[error("{path} is owned by uid {owner}, not by uid {expected} who owns its folder")]
    WrongOwner {
        path: PathBuf,
        owner: u32,
        expected: u32,
    },
    #[error("{path} is larger than {limit} bytes: not a certificate file of ours")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// True when `path` is root's own: every component that exists is a real directory (no link)
/// owned by root that no one else can write in (or a sticky one such as `/tmp`, where no one else
/// can rename root's entries). A missing tail is fine: only root could create it. Root may then
/// create and write certificates there as the agent would in their folder; anywhere else root
/// only reads.
pub fn root_only(path: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(absolute) = std::path::absolute(path) else {
            return false;
        };
        let safe = |meta: &std::fs::Metadata| {
            meta.is_dir()
                && meta.uid() == 0
                && (meta.mode() & 0o022 == 0 || meta.mode() & 0o1000 != 0)
        };
        let root = Path::new("/");
        let Ok(mut dir) = File::open(root) else {
            return false;
        };
        if !dir.metadata().is_ok_and(|m| safe(&m)) {
            return false;
        }
        let mut walked = root.to_owned();
        for component in absolute.components() {
            let name = match component {
                Component::Normal(name) => name,
                Component::RootDir | Component::CurDir => continue,
                Component::ParentDir | Component::Prefix(_) => return false,
            };
            walked.push(name);
            match open_beneath(&dir, name, &walked) {
                Ok(next) => {
                    if !next.metadata().is_ok_and(|m| safe(&m)) {
                        return false;
                    }
                    dir = next;
                }
                Err(NoFollowError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return true;
                }
                Err(_) => return false,
            }
        }
        true
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        false
    }
}

/// A directory opened without following any link on its path.
#[derive(Debug)]
pub struct NoFollowDir {
    path: PathBuf,
    #[cfg(target_os = "linux")]
    dir: File,
}

impl NoFollowDir {
    /// Opens `path` (made absolute against the current directory), refusing a symbolic link in
    /// any of its components.
    pub fn open(path: &Path) -> Result<Self, NoFollowError> {
        let absolute = if path.is_absolute() {
            path.to_owned()
        } else {
            std::env::current_dir()
                .map_err(|source| NoFollowError::Io {
                    path: path.to_owned(),
                    source,
                })?
                .join(path)
        };
        let mut names = Vec::new();
        for component in absolute.components() {
            match component {
                Component::Normal(name) => names.push(name.to_owned()),
                Component::ParentDir => return Err(NoFollowError::NotPlain { path: absolute }),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        Self::walk(&absolute, &names)
    }

    #[cfg(target_os = "linux")]
    fn walk(absolute: &Path, names: &[std::ffi::OsString]) -> Result<Self, NoFollowError> {
        let root = Path::new("/");
        let mut dir = File::open(root).map_err(|source| NoFollowError::Io {
            path: root.to_owned(),
            source,
        })?;
        let mut walked = root.to_owned();
        for name in names {
            walked.push(name);
            let next = open_beneath(&dir, name, &walked)?;
            let meta = next.metadata().map_err(|source| NoFollowError::Io {
                path: walked.clone(),
                source,
            })?;
            if !meta.is_dir() {
                return Err(NoFollowError::NotDirectory { path: walked });
            }
            dir = next;
        }
        Ok(Self {
            path: absolute.to_owned(),
            dir,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn walk(absolute: &Path, names: &[std::ffi::OsString]) -> Result<Self, NoFollowError> {
        let mut walked = absolute
            .ancestors()
            .last()
            .unwrap_or(absolute)
            .to_path_buf();
        for name in names {
            walked.push(name);
            let meta = std::fs::symlink_metadata(&walked).map_err(|source| NoFollowError::Io {
                path: walked.clone(),
                source,
            })?;
            if meta.file_type().is_symlink() {
                return Err(NoFollowError::Symlink { path: walked });
            }
            if !meta.is_dir() {
                return Err(NoFollowError::NotDirectory { path: walked });
            }
        }
        Ok(Self {
            path: absolute.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the subdirectory `name`, refusing a link.
    pub fn subdir(&self, name: &str) -> Result<Self, NoFollowError> {
        let path = self.path.join(name);
        #[cfg(target_os = "linux")]
        {
            let dir = open_beneath(&self.dir, name.as_ref(), &path)?;
            let meta = dir.metadata().map_err(|source| NoFollowError::Io {
                path: path.clone(),
                source,
            })?;
            if !meta.is_dir() {
                return Err(NoFollowError::NotDirectory { path });
            }
            Ok(Self { path, dir })
        }
        #[cfg(not(target_os = "linux"))]
        {
            Self::open(&path)
        }
    }

    /// Reads the file `name` in this directory: `None` when it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, NoFollowError> {
        let path = self.path.join(name);
        let io = |source| NoFollowError::Io {
            path: path.clone(),
            source,
        };
        #[cfg(target_os = "linux")]
        let file = match open_beneath(&self.dir, name.as_ref(), &path) {
            Ok(file) => file,
            Err(NoFollowError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        #[cfg(not(target_os = "linux"))]
        let file = {
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io(e)),
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(NoFollowError::Symlink { path });
                }
                Ok(_) => File::open(&path).map_err(io)?,
            }
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(NoFollowError::NotRegularFile { path });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if meta.nlink() != 1 {
                return Err(NoFollowError::HardLinked {
                    path,
                    links: meta.nlink(),
                });
            }
            let expected = self.owner()?;
            if meta.uid() != expected {
                return Err(NoFollowError::WrongOwner {
                    path,
                    owner: meta.uid(),
                    expected,
                });
            }
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(NoFollowError::TooLarge {
                path,
                limit: MAX_FILE_BYTES,
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(NoFollowError::TooLarge {
                path,
                limit: MAX_FILE_BYTES,
            });
        }
        Ok(Some(bytes))
    }

    /// The uid owning this directory.
    #[cfg(unix)]
    fn owner(&self) -> Result<u32, NoFollowError> {
        use std::os::unix::fs::MetadataExt;
        #[cfg(target_os = "linux")]
        let meta = self.dir.metadata();
        #[cfg(not(target_os = "linux"))]
        let meta = std::fs::symlink_metadata(&self.path);
        meta.map(|m| m.uid()).map_err(|source| NoFollowError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Opens `name` inside the already open directory `parent`, never following a link at `name`.
#[cfg(target_os = "linux")]
fn open_beneath(parent: &File, name: &std::ffi::OsStr, full: &Path) -> Result<File, NoFollowError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    // `/proc/self/fd/N` is the directory `parent` has open, whatever its path says now.
    let via = PathBuf::from(format!("/proc/self/fd/{}", parent.as_raw_fd())).join(name);
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW | O_NONBLOCK)
        .open(&via)
        .map_err(|source| {
            if source.raw_os_error() == Some(ELOOP) {
                NoFollowError::Symlink {
                    path: full.to_owned(),
                }
            } else {
                NoFollowError::Io {
                    path: full.to_owned(),
                    source,
                }
            }
        })
}
