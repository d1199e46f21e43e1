//! The DNS a SIP client needs to find its server (RFC 3263): SRV (RFC 2782), A and AAAA queries
//! and answers, sans-IO. Build a query, send it yourself, parse what comes back.

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("the DNS message is truncated or malformed")]
    Malformed,
    #[error("{0:?} is not a valid DNS name")]
    BadName(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    A = 1,
    Aaaa = 28,
    Srv = 33,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv(Srv),
}

/// A parsed response: its records by owner name, from the answer and additional sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    /// 0 no error, 3 no such name, …
    pub rcode: u8,
    pub truncated: bool,
    pub records: Vec<(String, Record)>,
}

/// A recursive query for `name`.
pub fn query(id: u16, name: &str, record_type: RecordType) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(DnsError::BadName(name.to_owned()));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() > 12 + 255 {
        return Err(DnsError::BadName(name.to_owned()));
    }
    out.extend_from_slice(&(record_type as u16).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // IN
    Ok(out)
}

pub fn parse(bytes: &[u8]) -> Result<Response, DnsError> {
    let header = bytes.get(..12).ok_or(DnsError::Malformed)?;
    let word = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    let (id, flags, questions) = (word(0), word(2), word(4));
    let records_count = usize::from(word(6)) + usize::from(word(8)) + usize::from(word(10));
    let mut at = 12;
    for _ in 0..questions {
        let (_, next) = read_name(bytes, at)?;
        at = next + 4;
    }
    let mut records = Vec::new();
    for _ in 0..records_count {
        let (owner, next) = read_name(bytes, at)?;
        let fixed = bytes.get(next..next + 10).ok_or(DnsError::Malformed)?;
        let record_type = u16::from_be_bytes([fixed[0], fixed[1]]);
        let length = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let start = next + 10;
        let data = bytes
            .get(start..start + length)
            .ok_or(DnsError::Malformed)?;
        let record = match record_type {
            1 if length == 4 => Some(Record::A(Ipv4Addr::new(data[0], data[1], data[2], data[3]))),
            28 if length == 16 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(data);
                Some(Record::Aaaa(Ipv6Addr::from(octets)))
            }
            33 if length >= 7 => {
                let field = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
                let (target, _) = read_name(bytes, start + 6)?;
                Some(Record::Srv(Srv {
                    priority: field(0),
                    weight: field(2),
                    port: field(4),
                    target,
                }))
            }
            _ => None,
        };
        records.extend(record.map(|r| (owner, r)));
        at = start + length;
    }
    Ok(Response {
        id,
        rcode: (flags & 0x000F) as u8,
        truncated: flags & 0x0200 != 0,
        records,
    })
}

/// Reads a possibly compressed name at `at`; returns it and the offset after it (in place).
fn read_name(bytes: &[u8], mut at: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *bytes.get(at).ok_or(DnsError::Malformed)?;
        match len {
            0 => {
                return Ok((name, end.unwrap_or(at + 1)));
            }
            l if l & 0xC0 == 0xC0 => {
                let low = *bytes.get(at + 1).ok_or(DnsError::Malformed)?;
                end.get_or_insert(at + 2);
                at = (usize::from(l & 0x3F) << 8) | usize::from(low);
            }
            l if l & 0xC0 == 0 => {
                let label = bytes
                    .get(at + 1..at + 1 + usize::from(l))
                    .ok_or(DnsError::Malformed)?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label));
                if name.len() > 255 {
                    return Err(DnsError::Malformed);
                }
                at += 1 + usize::from(l);
            }
            _ => return Err(DnsError::Malformed),
        }
    }
    // More than 64 labels or pointers: a loop.
    Err(DnsError::Malformed)
}

/// Orders SRV records for trying (RFC 2782): lowest priority first; within one priority, a
/// weighted random order. `random` yields numbers used for the weighted choice.
pub fn order_srv(mut records: Vec<Srv>, mut random: impl FnMut() -> u32) -> Vec<Srv> {
    records.retain(|r| r.target != "." && !r.target.is_empty());
    records.sort_by_key(|r| r.priority);
    let mut ordered = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let same = records
            .iter()
            .take_while(|r| r.priority == priority)
            .count();
        let mut group: Vec<Srv> = records.drain(..same).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let index = if total == 0 {
                0
            } else {
                let mut pick = random() % (total + 1);
                group
                    .iter()
                    .position(|r| {
                        let w = u32::from(r.weight);
                        if pick <= w && w > 0 {
                            true
                        } else {
                            pick = pick.saturating_sub(w);
                            false
                        }
                    })
                    .unwrap_or(0)
            };
            ordered.push(group.remove(index));
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response as a server sends it: the question, one SRV answer with a compressed target
    /// name, and the target's A record in the additional section.
    fn srv_response() -> Vec<u8> {
        let mut bytes = query(0xBEEF, "_sip._udp.pbx.lab", RecordType::Srv).expect("query");
        bytes[2] = 0x81;
        bytes[3] = 0x80; // response, RA
        bytes[7] = 1; // one answer
        bytes[11] = 1; // one additional
        // Answer: owner = pointer to the question name (offset 12).
        bytes.extend_from_slice(&[0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60]);
        let target = b"\x08kamailio\xC0\x16"; // "kamailio" + pointer to "pbx.lab" (offset 22)
        let rdata_len = 6 + target.len();
        bytes.extend_from_slice(&(rdata_len as u16).to_be_bytes());
        bytes.extend_from_slice(&[0, 10, 0, 5, 0x13, 0xC4]); // priority 10, weight 5, port 5060
        let target_at = bytes.len();
        bytes.extend_from_slice(target);
        bytes.extend_from_slice(&[
            0xC0,
            target_at as u8,
            0,
            1,
            0,
            1,
            0,
            0,
            0,
            60,
            0,
            4,
            127,
            0,
            0,
            7,
        ]);
        bytes
    }

    #[test]
    fn query_wire_format() {
        let q = query(0x1234, "_sip._udp.example.com.", RecordType::Srv).expect("query");
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..17], b"\x04_sip");
        assert_eq!(&q[q.len() - 4..], &[0, 33, 0, 1]);
        assert!(query(1, "a..b", RecordType::A).is_err());
        assert!(query(1, &"x".repeat(64), RecordType::A).is_err());
    }

    #[test]
    fn parses_srv_with_compression_and_additional_records() {
        let response = parse(&srv_response()).expect("valid");
        assert_eq!(
            (response.id, response.rcode, response.truncated),
            (0xBEEF, 0, false)
        );
        assert_eq!(
            response.records,
            vec![
                (
                    "_sip._udp.pbx.lab".into(),
                    Record::Srv(Srv {
                        priority: 10,
                        weight: 5,
                        port: 5060,
                        target: "kamailio.pbx.lab".into()
                    })
                ),
                (
                    "kamailio.pbx.lab".into(),
                    Record::A(Ipv4Addr::new(127, 0, 0, 7))
                ),
            ]
        );
    }

    #[test]
    fn malformed_responses_are_errors_not_panics() {
        let good = srv_response();
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        // A pointer to itself.
        let mut looped = good.clone();
        let at = looped.len() - 16;
        looped[at] = 0xC0;
        looped[at + 1] = at as u8;
        assert_eq!(parse(&looped), Err(DnsError::Malformed));
    }

    #[test]
    fn srv_order_is_priority_then_weight() {
        let srv = |priority, weight, target: &str| Srv {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        };
        let records = vec![
            srv(20, 0, "backup"),
            srv(10, 0, "zero"),
            srv(10, 100, "heavy"),
            srv(30, 0, "."),
        ];
        let mut counts = std::collections::HashMap::new();
        let mut seed = 7u32;
        for _ in 0..200 {
            let ordered = order_srv(records.clone(), || {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                seed >> 8
            });
            assert_eq!(ordered.len(), 3, "`.` means no service and is dropped");
            assert_eq!(ordered[2].target, "backup");
            *counts.entry(ordered[0].target.clone()).or_insert(0) += 1;
        }
        assert!(
            counts["heavy"] > 180,
            "weight 100 beats weight 0 nearly always: {counts:?}"
        );
    }
}
