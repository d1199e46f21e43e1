//! Which OS user is at the other end of a loopback connection.
//!
//! Any process on this machine can open a TCP connection to the API and send any `Origin` it
//! likes; only a browser is bound to tell the truth about it. On a shared machine (a terminal
//! server) other OS users' processes are just as local as the agent's browser. So right after
//! accept, before TLS, the daemon looks up who owns the peer's socket and closes the connection
//! unless it is the daemon's own OS user. A lookup that fails is a refusal too (fail closed).
//!
//! What each OS can check:
//! - **Linux** (this build): `/proc/net/tcp` and `/proc/net/tcp6` list every TCP socket of the
//!   network namespace with the uid that created it and its inode. The peer's socket is the row
//!   whose local address is the peer's and whose remote address is ours (an IPv4 peer on a
//!   dual-stack socket appears in `tcp6` as `::ffff:a.b.c.d`). Its owning process is found by
//!   scanning `/proc/PID/fd` of that user's processes for `socket:[INODE]` — only processes the
//!   daemon may read, so a daemon running as the agent finds the agent's processes.
//! - **Windows** (not enforced yet): `GetExtendedTcpTable` with `TCP_TABLE_OWNER_PID_ALL` gives
//!   the PID owning the connection whose local and remote endpoints are the peer's and ours;
//!   `OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION)` + `OpenProcessToken` +
//!   `GetTokenInformation(TokenUser)` give its SID, compared with our own token's SID. This needs
//!   Win32 FFI calls, which are `unsafe` (forbidden in this workspace); it would need an audited
//!   exception for one small module, or a crate exposing these calls safely.
//! - **macOS** (not enforced yet): there is no table of TCP sockets with owners; the equivalent is
//!   `proc_listpids` + `proc_pidinfo(PROC_PIDLISTFDS)` + `proc_pidfdinfo(PROC_PIDFDSOCKETINFO)`
//!   over every process to find the one holding a socket with these endpoints (what `lsof -i`
//!   does), then its uid. Only processes of the same user (or all, as root) can be inspected,
//!   which is enough to recognise our own user. `LOCAL_PEERPID`/`getpeereid` answer this directly
//!   but only for Unix-domain sockets, which browsers cannot open. Also FFI (`unsafe`).
//!
//! Elsewhere the check says "cannot check", allows the connection, and warns once at start.

use tokio::net::TcpStream;

/// What the owner check found about an admitted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The peer's socket (kernel inode `socket`) belongs to the daemon's own OS user. Which
    /// process holds it costs a scan of `/proc`, so it is looked up only when needed
    /// ([`process_of`]).
    SameUser { socket: u64 },
    /// This OS build cannot tell who the peer is (see the module docs); the connection is let in.
    Unchecked,
}

/// Whether this build refuses local connections from other OS users (see the module docs).
pub const CHECKS_OS_USER: bool = cfg!(target_os = "linux");

/// Says once, at start, what this build can check about local peers.
pub fn announce() {
    #[cfg(target_os = "linux")]
    tracing::debug!("local connections from other OS users are refused");
    #[cfg(not(target_os = "linux"))]
    tracing::warn!(
        "this build cannot tell which OS user a local connection comes from: on a shared machine, \
         other users' processes can reach the API (see docs/security.md)"
    );
}

/// Decides whether a freshly accepted connection may go on; `None` means refused (and logged):
/// the caller just closes it, before TLS.
pub async fn admit(stream: &TcpStream, lines: &super::rate::LogBudget) -> Option<Peer> {
    #[cfg(target_os = "linux")]
    {
        let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
            return None;
        };
        // Reading /proc is blocking file I/O; keep it off the runtime's two workers.
        match tokio::task::spawn_blocking(move || linux::admit(local, peer)).await {
            Ok(Ok(peer)) => Some(peer),
            Ok(Err(refusal)) => {
                // Another user can connect in a loop: the log must not grow with it.
                if let Some(suppressed) = lines.allow() {
                    refusal.log(peer, suppressed);
                }
                None
            }
            Err(e) => {
                if lines.allow().is_some() {
                    tracing::warn!(%peer, "refused a connection: owner check failed: {e}");
                }
                None
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (stream, lines);
        Some(Peer::Unchecked)
    }
}

#[cfg(target_os = "linux")]
pub use linux::{PeerError, PeerOwner, listener_of, peer_of};

/// The process holding an admitted peer's socket, when this OS tells (a scan of `/proc`, off the
/// runtime's workers).
pub async fn process_of(peer: Peer) -> Option<u32> {
    match peer {
        #[cfg(target_os = "linux")]
        Peer::SameUser { socket } => {
            tokio::task::spawn_blocking(move || linux::own_process_holding(socket))
                .await
                .ok()
                .flatten()
        }
        _ => None,
    }
}

/// Who listens on `address`; this build cannot tell outside Linux.
#[cfg(not(target_os = "linux"))]
pub fn listener_of(_address: std::net::SocketAddr) -> Option<String> {
    None
}

#[cfg(target_os = "linux")]
mod linux {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};

    use super::Peer;

    const TCP: &str = "/proc/net/tcp";
    const TCP6: &str = "/proc/net/tcp6";

    /// The OS user owning the peer's socket, and the process holding it when readable.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct PeerOwner {
        pub uid: u32,
        pub pid: Option<u32>,
    }

    #[derive(Debug, thiserror::Error)]
    pub enum PeerError {
        #[error("cannot read {path}: {source}")]
        Read {
            path: PathBuf,
            source: std::io::Error,
        },
        #[error("no socket in {TCP} or {TCP6} has local address {peer} and remote address {local}")]
        NotFound { local: SocketAddr, peer: SocketAddr },
    }

    /// Why a connection was refused.
    pub(super) enum Refusal {
        OtherUser { uid: u32, own: u32 },
        Lookup(PeerError),
    }

    impl Refusal {
        /// `suppressed`: refusals not logged since the last line (rate limit).
        pub(super) fn log(&self, peer: SocketAddr, suppressed: u64) {
            match self {
                Refusal::OtherUser { uid, own } => tracing::warn!(
                    %peer,
                    uid,
                    own_uid = own,
                    suppressed,
                    "refused a connection from another OS user's process"
                ),
                Refusal::Lookup(e) => tracing::warn!(
                    %peer,
                    suppressed,
                    "refused a connection whose owner cannot be checked: {e}"
                ),
            }
        }
    }

    /// One row of `/proc/net/tcp{,6}`, the fields we use.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) struct SocketRow {
        pub local: SocketAddr,
        pub remote: SocketAddr,
        pub uid: u32,
        pub inode: u64,
    }

    /// Finds the owner of the socket at `peer` connected to our `local` end.
    pub fn peer_of(local: SocketAddr, peer: SocketAddr) -> Result<PeerOwner, PeerError> {
        let row = peer_row(local, peer)?;
        Ok(PeerOwner {
            uid: row.uid,
            pid: pid_holding(row.inode, Some(row.uid)),
        })
    }

    /// Who listens on `address` (TCP), as "process NAME (pid N)", when we may see it.
    pub fn listener_of(address: SocketAddr) -> Option<String> {
        let table = if address.is_ipv4() { TCP } else { TCP6 };
        let text = std::fs::read_to_string(table).ok()?;
        let row = text
            .lines()
            .skip(1)
            .filter_map(parse_row)
            .find(|row| row.local == address && row.remote.port() == 0)?;
        let pid = pid_holding(row.inode, None)?;
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        Some(format!("process {} (pid {pid})", name.trim()))
    }

    pub(super) fn admit(local: SocketAddr, peer: SocketAddr) -> Result<Peer, Refusal> {
        let own = own_uid().map_err(Refusal::Lookup)?;
        let row = peer_row(local, peer).map_err(Refusal::Lookup)?;
        if row.uid != own {
            return Err(Refusal::OtherUser { uid: row.uid, own });
        }
        Ok(Peer::SameUser { socket: row.inode })
    }

    /// The process of our own user holding socket `inode`.
    pub(super) fn own_process_holding(inode: u64) -> Option<u32> {
        pid_holding(inode, Some(own_uid().ok()?))
    }

    /// The peer's row; read twice before giving up, since the tables change while we read them.
    fn peer_row(local: SocketAddr, peer: SocketAddr) -> Result<SocketRow, PeerError> {
        match find_row(local, peer) {
            Err(PeerError::NotFound { .. }) => find_row(local, peer),
            found => found,
        }
    }

    fn find_row(local: SocketAddr, peer: SocketAddr) -> Result<SocketRow, PeerError> {
        let (local, peer) = (unmapped(local), unmapped(peer));
        // An IPv4 peer may hold a dual-stack socket, listed in tcp6 with a mapped address.
        let tables: &[&str] = if peer.is_ipv4() {
            &[TCP, TCP6]
        } else {
            &[TCP6]
        };
        for table in tables {
            let text = match std::fs::read_to_string(table) {
                Ok(text) => text,
                // No IPv6 in this kernel: nothing to find there.
                Err(e) if *table == TCP6 && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(PeerError::Read {
                        path: table.into(),
                        source,
                    });
                }
            };
            if let Some(row) = matching_row(&text, local, peer) {
                return Ok(row);
            }
        }
        Err(PeerError::NotFound { local, peer })
    }

    /// The row of the socket whose local end is `peer` and remote end is `local`.
    pub(super) fn matching_row(
        text: &str,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Option<SocketRow> {
        let (local, peer) = (unmapped(local), unmapped(peer));
        text.lines()
            .skip(1)
            .filter_map(parse_row)
            .find(|row| row.local == peer && row.remote == local)
    }

    /// `  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode …`
    pub(super) fn parse_row(line: &str) -> Option<SocketRow> {
        let mut fields = line.split_whitespace();
        let _slot = fields.next()?;
        let local = parse_address(fields.next()?)?;
        let remote = parse_address(fields.next()?)?;
        // st, tx_queue:rx_queue, tr:tm->when, retrnsmt
        let mut rest = fields.skip(4);
        let uid = rest.next()?.parse().ok()?;
        let _timeout = rest.next()?;
        let inode = rest.next()?.parse().ok()?;
        Some(SocketRow {
            local,
            remote,
            uid,
            inode,
        })
    }

    /// `0100007F:1F90` or 32 hex digits `:PORT`. The kernel prints the address as 32-bit words in
    /// the machine's byte order (`%08X` of each word of the network-order address), so the native
    /// bytes of each word are the address bytes; the port is a plain hex number.
    pub(super) fn parse_address(text: &str) -> Option<SocketAddr> {
        let (address, port) = text.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
        let ip = match address.len() {
            8 => IpAddr::V4(Ipv4Addr::from(word(address)?)),
            32 => {
                let mut bytes = [0u8; 16];
                for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                    chunk.copy_from_slice(&word(address.get(i * 8..i * 8 + 8)?)?);
                }
                IpAddr::V6(Ipv6Addr::from(bytes))
            }
            _ => return None,
        };
        Some(unmapped(SocketAddr::new(ip, port)))
    }

    /// `::ffff:a.b.c.d` as `a.b.c.d`, so both forms of one IPv4 endpoint compare equal.
    fn unmapped(address: SocketAddr) -> SocketAddr {
        match address.ip() {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => SocketAddr::new(IpAddr::V4(v4), address.port()),
                None => address,
            },
            IpAddr::V4(_) => address,
        }
    }

    /// The daemon's own (effective) uid: the owner of its `/proc` entry.
    fn own_uid() -> Result<u32, PeerError> {
        crate::private_files::own_uid().map_err(|source| PeerError::Read {
            path: "/proc/self".into(),
            source,
        })
    }

    /// The first process (of `uid`, when given) holding socket `inode`, among those we may read.
    fn pid_holding(inode: u64, uid: Option<u32>) -> Option<u32> {
        if inode == 0 {
            return None;
        }
        let target = format!("socket:[{inode}]");
        let processes = std::fs::read_dir("/proc").ok()?;
        processes.flatten().find_map(|process| {
            let pid = process.file_name().to_str()?.parse::<u32>().ok()?;
            if uid.is_some_and(|uid| process.metadata().is_ok_and(|m| m.uid() != uid)) {
                return None;
            }
            holds(&process.path().join("fd"), &target).then_some(pid)
        })
    }

    fn holds(fd_dir: &Path, target: &str) -> bool {
        let Ok(fds) = std::fs::read_dir(fd_dir) else {
            return false;
        };
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        // Real rows (Linux 6.x, x86_64): a listener on [::]:41967, an IPv4 client on a dual-stack
        // socket (mapped), and a ::1 connection.
        #[cfg(target_endian = "little")]
        const TCP6_SAMPLE: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:A3EF 00000000000000000000000000000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 22513 2 00000000271bc6e7 100 0 0 10 0
   1: 00000000000000000000000001000000:8C1F 00000000000000000000000000000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 22515 2 0000000009614f76 100 0 0 10 0
   2: 00000000000000000000000001000000:8C1F 00000000000000000000000001000000:85EE 01 00000000:00000000 00:00000000 00000000     0        0 0 1 00000000240f8ccf 20 0 0 10 -1
   3: 0000000000000000FFFF00000100007F:8C00 0000000000000000FFFF00000100007F:A3EF 01 00000000:00000000 00:00000000 00000000  1001        0 22514 2 000000006ba8acda 20 0 0 10 -1
   4: 0000000000000000FFFF00000100007F:A3EF 0000000000000000FFFF00000100007F:8C00 01 00000000:00000000 00:00000000 00000000     0        0 0 1 00000000c98a84a7 20 0 0 10 -1
   5: 00000000000000000000000001000000:85EE 00000000000000000000000001000000:8C1F 01 00000000:00000000 00:00000000 00000000  1002        0 22516 2 00000000821ae7cf 20 0 0 10 -1
";

        #[cfg(target_endian = "little")]
        const TCP_SAMPLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1473 1 0000000003bb9ef8 100 0 0 10 0
   1: 0100007F:9C40 0100007F:20FB 01 00000000:00000000 00:00000000 00000000  1000        0 98765 1 0000000003bb9ef8 20 0 0 10 -1
   2: 0100007F:20FB 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 98766 1 0000000003bb9ef8 20 0 0 10 -1
";

        fn addr(text: &str) -> SocketAddr {
            text.parse().expect("socket address")
        }

        #[cfg(target_endian = "little")]
        #[test]
        fn addresses_are_little_endian_words_and_ports_plain_hex() {
            assert_eq!(parse_address("0100007F:20FB"), Some(addr("127.0.0.1:8443")));
            assert_eq!(
                parse_address("00000000000000000000000001000000:8C1F"),
                Some(addr("[::1]:35871"))
            );
            assert_eq!(
                parse_address("0000000000000000FFFF00000100007F:8C00"),
                Some(addr("127.0.0.1:35840")),
                "a mapped IPv4 address compares as IPv4"
            );
            assert_eq!(parse_address("0100007F"), None);
            assert_eq!(parse_address("0100007:20FB"), None);
            assert_eq!(parse_address("0100007G:20FB"), None);
            assert_eq!(parse_address("0100007F:1FFFF"), None);
        }

        #[cfg(target_endian = "little")]
        #[test]
        fn the_peer_row_is_the_one_facing_our_end() {
            // Our end 127.0.0.1:8443, the peer 127.0.0.1:40000: the peer's row (uid 1000), not
            // our own accepted socket's row (uid 0) nor the listener.
            let row = matching_row(TCP_SAMPLE, addr("127.0.0.1:8443"), addr("127.0.0.1:40000"))
                .expect("row");
            assert_eq!((row.uid, row.inode), (1000, 98765));
            assert_eq!(
                matching_row(TCP_SAMPLE, addr("127.0.0.1:8443"), addr("127.0.0.1:40001")),
                None
            );
        }

        #[cfg(target_endian = "little")]
        #[test]
        fn ipv4_peers_on_dual_stack_sockets_and_ipv6_peers_are_found_in_tcp6() {
            let row = matching_row(
                TCP6_SAMPLE,
                addr("127.0.0.1:41967"),
                addr("127.0.0.1:35840"),
            )
            .expect("mapped row");
            assert_eq!((row.uid, row.inode), (1001, 22514));
            let row = matching_row(TCP6_SAMPLE, addr("[::1]:35871"), addr("[::1]:34286"))
                .expect("::1 row");
            assert_eq!((row.uid, row.inode), (1002, 22516));
            // Asked the other way round, we get the accepted socket (inode 0 until accepted).
            let row = matching_row(TCP6_SAMPLE, addr("[::1]:34286"), addr("[::1]:35871"))
                .expect("server row");
            assert_eq!(row.inode, 0);
        }

        #[test]
        fn headers_and_garbage_are_not_rows() {
            assert_eq!(
                parse_row(
                    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
                ),
                None
            );
            assert_eq!(parse_row(""), None);
            assert_eq!(parse_row("   0: 0100007F:20FB 00000000:0000 0A"), None);
            assert_eq!(
                parse_row(
                    "   0: 0100007F:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000  x 0 1"
                ),
                None
            );
        }

        #[test]
        fn a_real_loopback_peer_is_this_user_and_this_process() {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let client = std::net::TcpStream::connect(listener.local_addr().expect("addr"))
                .expect("connect");
            let (accepted, peer) = listener.accept().expect("accept");
            assert_eq!(peer, client.local_addr().expect("client addr"));
            let local = accepted.local_addr().expect("local");
            let owner = peer_of(local, peer).expect("owner");
            assert_eq!(owner.uid, own_uid().expect("own uid"));
            assert_eq!(owner.pid, Some(std::process::id()));
            let Ok(Peer::SameUser { socket }) = admit(local, peer) else {
                panic!("our own peer is admitted");
            };
            assert_eq!(own_process_holding(socket), Some(std::process::id()));
            // A peer that does not exist is not let in.
            let gone = addr("127.0.0.1:1");
            assert!(matches!(
                peer_of(local, gone),
                Err(PeerError::NotFound { .. })
            ));
            assert!(matches!(admit(local, gone), Err(Refusal::Lookup(_))));
        }
    }
}
