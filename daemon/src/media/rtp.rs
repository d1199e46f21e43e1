//! RTP packets (RFC 3550 §5.1) and RFC 4733 telephone-events: parse and build, no I/O.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than an RTP header")]
    TooShort,
    #[error("not RTP version 2")]
    Version,
    #[error("header extension or padding runs past the packet")]
    Malformed,
}

impl<'a> RtpPacket<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RtpError> {
        if bytes.len() < 12 {
            return Err(RtpError::TooShort);
        }
        if bytes[0] >> 6 != 2 {
            return Err(RtpError::Version);
        }
        let padding = bytes[0] & 0x20 != 0;
        let extension = bytes[0] & 0x10 != 0;
        let csrc_count = usize::from(bytes[0] & 0x0F);
        let mut start = 12 + 4 * csrc_count;
        if extension {
            let words = bytes.get(start + 2..start + 4).ok_or(RtpError::Malformed)?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
        }
        let mut end = bytes.len();
        if padding {
            let pad = usize::from(*bytes.last().ok_or(RtpError::Malformed)?);
            end = end.checked_sub(pad).ok_or(RtpError::Malformed)?;
        }
        if start > end {
            return Err(RtpError::Malformed);
        }
        Ok(Self {
            marker: bytes[1] & 0x80 != 0,
            payload_type: bytes[1] & 0x7F,
            sequence: u16::from_be_bytes([bytes[2], bytes[3]]),
            timestamp: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            ssrc: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
            payload: &bytes[start..end],
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(self.payload);
    }
}

/// RFC 4733 event payload: digit, end flag, volume, duration in timestamp units.
pub fn telephone_event(event: u8, end: bool, volume: u8, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [event, (u8::from(end) << 7) | (volume & 0x3F), d[0], d[1]]
}

/// The RFC 4733 event code of a DTMF digit.
pub fn dtmf_code(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(12 + (digit as u8 - b'A')),
        'a'..='d' => Some(12 + (digit as u8 - b'a')),
        _ => None,
    }
}

/// The digit of an RFC 4733 event code (0–15).
pub fn dtmf_digit(code: u8) -> Option<char> {
    b"0123456789*#ABCD"
        .get(usize::from(code))
        .map(|b| char::from(*b))
}

/// Turns received telephone-event packets into digits: one per event, however many packets
/// (updates, the thrice-sent end) carry it. An event is identified by its RTP timestamp.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    current: Option<u32>,
}

impl DtmfReceiver {
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let code = *payload.first()?;
        if payload.len() < 4 || self.current == Some(timestamp) {
            return None;
        }
        self.current = Some(timestamp);
        dtmf_digit(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let packet = RtpPacket {
            marker: true,
            payload_type: 0,
            sequence: 65535,
            timestamp: 160,
            ssrc: 0xDEADBEEF,
            payload: &[1, 2, 3],
        };
        let mut bytes = Vec::new();
        packet.write(&mut bytes);
        assert_eq!(bytes.len(), 15);
        assert_eq!(RtpPacket::parse(&bytes), Ok(packet));
        assert_eq!(RtpPacket::parse(&bytes[..11]), Err(RtpError::TooShort));
        bytes[0] = 0x40;
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::Version));
        // Padding longer than the packet, extension past the end.
        let mut padded = vec![0xA0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 200];
        assert_eq!(RtpPacket::parse(&padded), Err(RtpError::Malformed));
        padded[0] = 0x90;
        assert_eq!(RtpPacket::parse(&padded), Err(RtpError::Malformed));
    }

    #[test]
    fn dtmf_codes() {
        assert_eq!(
            "0159*#AD"
                .chars()
                .map(dtmf_code)
                .collect::<Option<Vec<_>>>(),
            Some(vec![0, 1, 5, 9, 10, 11, 12, 15])
        );
        assert_eq!(dtmf_code('x'), None);
        assert_eq!(telephone_event(5, true, 10, 800), [5, 0x8A, 0x03, 0x20]);
        assert_eq!(
            (0..16)
                .map(dtmf_digit)
                .collect::<Option<String>>()
                .as_deref(),
            Some("0123456789*#ABCD")
        );
        assert_eq!(dtmf_digit(16), None);
    }

    #[test]
    fn one_digit_per_event_however_many_packets() {
        let mut receiver = DtmfReceiver::default();
        let mut digits = String::new();
        // '5' as start, two updates, three ends; then '#' at a new timestamp; junk is ignored.
        for (ts, payload) in [
            (160, telephone_event(5, false, 10, 160)),
            (160, telephone_event(5, false, 10, 320)),
            (160, telephone_event(5, true, 10, 800)),
            (160, telephone_event(5, true, 10, 800)),
            (1600, telephone_event(11, false, 10, 160)),
        ] {
            digits.extend(receiver.on_packet(ts, &payload));
        }
        assert_eq!(receiver.on_packet(3200, &[1]), None);
        assert_eq!(receiver.on_packet(4800, &[99, 0, 0, 0]), None);
        assert_eq!(digits, "5#");
    }
}
