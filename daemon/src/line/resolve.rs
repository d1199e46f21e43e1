//! Finding the SIP server (RFC 3263): an IP literal is used as is; a name with an explicit port
//! is looked up (A/AAAA); a bare name first by SRV (`_sip._udp`, `_sip._tcp`, `_sips._tcp`), in
//! priority and weight order, falling back to A/AAAA on the default port. DNS messages are
//! `sip_core::dns`; this is the I/O around them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sip_core::dns::{self, Record, RecordType};
use tokio::net::UdpSocket;

use super::LineConfig;
use crate::config::Transport as Kind;

const TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPTS: usize = 2;

/// Every address to try, best first.
pub async fn server_addresses(config: &LineConfig) -> std::io::Result<Vec<SocketAddr>> {
    let host = config.domain.trim_matches(['[', ']']);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, config.port)]);
    }
    let nameserver = config.dns_server.or_else(system_nameserver);
    if !config.explicit_port
        && let Some(nameserver) = nameserver
    {
        let service = match config.kind {
            Kind::Udp => "_sip._udp",
            Kind::Tcp | Kind::Ws => "_sip._tcp",
            Kind::Tls | Kind::Wss => "_sips._tcp",
        };
        let name = format!("{service}.{host}");
        match lookup(nameserver, &name, RecordType::Srv).await {
            Ok(response) => {
                let srv: Vec<_> = response
                    .records
                    .iter()
                    .filter_map(|(_, r)| {
                        if let Record::Srv(s) = r {
                            Some(s.clone())
                        } else {
                            None
                        }
                    })
                    .collect();
                let ordered = dns::order_srv(srv, random);
                let mut addresses = Vec::new();
                for target in ordered {
                    // The server usually sends the targets' addresses along (additional section).
                    let mut ips = addresses_in(&response.records, &target.target);
                    if ips.is_empty() {
                        ips = host_addresses(config.dns_server, &target.target, target.port)
                            .await
                            .into_iter()
                            .map(|a| a.ip())
                            .collect();
                    }
                    addresses.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, target.port)));
                }
                if !addresses.is_empty() {
                    tracing::info!(%name, first = %addresses[0], "SIP server found by SRV");
                    return Ok(addresses);
                }
            }
            Err(e) => tracing::debug!(%name, "no SRV: {e}"),
        }
    }
    let addresses = host_addresses(config.dns_server, host, config.port).await;
    if addresses.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address (SRV, A, AAAA)"),
        ));
    }
    Ok(addresses)
}

fn addresses_in(records: &[(String, Record)], name: &str) -> Vec<IpAddr> {
    records
        .iter()
        .filter(|(owner, _)| owner.eq_ignore_ascii_case(name))
        .filter_map(|(_, r)| match r {
            Record::A(v4) => Some(IpAddr::V4(*v4)),
            Record::Aaaa(v6) => Some(IpAddr::V6(*v6)),
            Record::Srv(_) => None,
        })
        .collect()
}

/// A/AAAA of `host`: from the configured DNS server when there is one, else the system resolver
/// (which also reads /etc/hosts).
async fn host_addresses(dns_server: Option<SocketAddr>, host: &str, port: u16) -> Vec<SocketAddr> {
    if let Some(server) = dns_server {
        let mut ips = Vec::new();
        for record_type in [RecordType::A, RecordType::Aaaa] {
            if let Ok(response) = lookup(server, host, record_type).await {
                ips.extend(addresses_in(&response.records, host));
            }
        }
        return ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
    }
    match tokio::net::lookup_host((host, port)).await {
        Ok(addresses) => addresses.collect(),
        Err(e) => {
            tracing::debug!(%host, "lookup: {e}");
            Vec::new()
        }
    }
}

async fn lookup(
    server: SocketAddr,
    name: &str,
    record_type: RecordType,
) -> std::io::Result<dns::Response> {
    let invalid =
        |e: dns::DnsError| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string());
    let id = random() as u16;
    let query = dns::query(id, name, record_type).map_err(invalid)?;
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    let mut buffer = vec![0u8; 4096];
    for _ in 0..ATTEMPTS {
        socket.send(&query).await?;
        let Ok(received) = tokio::time::timeout(TIMEOUT, socket.recv(&mut buffer)).await else {
            continue;
        };
        let response = dns::parse(&buffer[..received?]).map_err(invalid)?;
        if response.id != id {
            continue;
        }
        if response.rcode != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name}: DNS rcode {}", response.rcode),
            ));
        }
        return Ok(response);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no DNS answer from {server} for {name}"),
    ))
}

/// The first `nameserver` of /etc/resolv.conf (Unix); elsewhere SRV needs `[account] dns_server`.
fn system_nameserver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .find_map(|rest| rest.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
}

fn random() -> u32 {
    u32::from_str_radix(&crate::ids::random_hex(4), 16).unwrap_or(0)
}
