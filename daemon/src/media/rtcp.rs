//! RTCP (RFC 3550 §6): reception statistics for what we receive, sender and receiver reports
//! with a CNAME, and what the far end's reports tell us (its loss and jitter, the round trip).
//! Sans-IO: the caller passes times in and sends the bytes.

/// Statistics about one received RTP stream (RFC 3550 A.1, A.3, A.8).
#[derive(Debug, Default, Clone)]
pub struct Reception {
    ssrc: u32,
    base: Option<u32>,
    /// Extended highest sequence number (cycles in the high 16 bits).
    max: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    last_transit: Option<i64>,
    /// Interarrival jitter in timestamp units, scaled by 16 as in A.8.
    jitter16: u64,
    /// Middle 32 bits of the last SR's NTP time, and when (our NTP) it arrived.
    last_sr: Option<(u32, u64)>,
}

impl Reception {
    /// A packet arrived; `arrival` is the arrival time in the stream's timestamp units.
    pub fn on_packet(&mut self, ssrc: u32, sequence: u16, timestamp: u32, arrival: u32) {
        if self.base.is_none() || ssrc != self.ssrc {
            *self = Self {
                ssrc,
                base: Some(u32::from(sequence)),
                max: u32::from(sequence),
                ..Self::default()
            };
        }
        let low = self.max as u16;
        let delta = sequence.wrapping_sub(low);
        if delta < u16::MAX / 2 && delta > 0 {
            if sequence < low {
                self.max = self.max.wrapping_add(1 << 16);
            }
            self.max = (self.max & 0xFFFF_0000) | u32::from(sequence);
        }
        self.received = self.received.wrapping_add(1);
        let transit = i64::from(arrival.wrapping_sub(timestamp) as i32);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            self.jitter16 = self.jitter16 + d - ((self.jitter16 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    pub fn on_sender_report(&mut self, ntp: u64, now_ntp: u64) {
        self.last_sr = Some(((ntp >> 16) as u32, now_ntp));
    }

    pub fn ssrc(&self) -> Option<u32> {
        self.base.map(|_| self.ssrc)
    }

    pub fn received(&self) -> u32 {
        self.received
    }

    /// Packets expected but never received (may go negative with duplicates).
    pub fn lost(&self) -> i64 {
        let Some(base) = self.base else { return 0 };
        i64::from(self.max.wrapping_sub(base)) + 1 - i64::from(self.received)
    }

    /// Jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        (self.jitter16 >> 4) as u32
    }

    /// The report block for our next SR/RR; resets the interval counters.
    pub fn report_block(&mut self, now_ntp: u64) -> Option<ReportBlock> {
        let base = self.base?;
        let expected = self.max.wrapping_sub(base).wrapping_add(1);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sr, delay) = match self.last_sr {
            Some((lsr, at)) => (lsr, ((now_ntp.saturating_sub(at)) >> 16) as u32),
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_sequence: self.max,
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr: delay,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    pub cumulative_lost: i32,
    pub highest_sequence: u32,
    pub jitter: u32,
    pub last_sr: u32,
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        let lost = (self.cumulative_lost as u32) & 0x00FF_FFFF;
        out.extend_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        for word in [
            self.highest_sequence,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let word = |i: usize| {
            bytes
                .get(i * 4..i * 4 + 4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        };
        let loss = word(1)?;
        // Sign-extend the 24-bit cumulative count.
        let cumulative_lost = ((loss << 8) as i32) >> 8;
        Some(Self {
            ssrc: word(0)?,
            fraction_lost: (loss >> 24) as u8,
            cumulative_lost,
            highest_sequence: word(2)?,
            jitter: word(3)?,
            last_sr: word(4)?,
            delay_since_last_sr: word(5)?,
        })
    }

    /// Round trip in seconds from this block (RFC 3550 §6.4.1), when it echoes one of our SRs.
    pub fn round_trip(&self, now_ntp: u64) -> Option<f64> {
        if self.last_sr == 0 {
            return None;
        }
        let now = (now_ntp >> 16) as u32;
        let rtt = now
            .wrapping_sub(self.last_sr)
            .wrapping_sub(self.delay_since_last_sr);
        // A clock step or a bogus block gives a huge value: ignore it.
        (rtt < 10 << 16).then(|| f64::from(rtt) / 65536.0)
    }
}

/// What we sent so far, for a sender report.
#[derive(Debug, Clone, Copy, Default)]
pub struct SenderInfo {
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// Builds a compound packet: SR (when we sent media) or RR, then SDES with our CNAME.
pub fn compound(
    ssrc: u32,
    now_ntp: u64,
    sent: Option<SenderInfo>,
    block: Option<ReportBlock>,
    cname: &str,
    out: &mut Vec<u8>,
) {
    out.clear();
    let count = u8::from(block.is_some());
    match sent {
        Some(info) => {
            header(out, count, 200, 6 + 6 * usize::from(count));
            out.extend_from_slice(&ssrc.to_be_bytes());
            out.extend_from_slice(&now_ntp.to_be_bytes());
            out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
            out.extend_from_slice(&info.packets.to_be_bytes());
            out.extend_from_slice(&info.octets.to_be_bytes());
        }
        None => {
            header(out, count, 201, 1 + 6 * usize::from(count));
            out.extend_from_slice(&ssrc.to_be_bytes());
        }
    }
    if let Some(block) = block {
        block.write(out);
    }
    // SDES: one chunk, CNAME item, null-terminated and padded to a word.
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let chunk_len = 4 + 2 + cname.len() + 1;
    let padded = chunk_len.div_ceil(4) * 4;
    header(out, 1, 202, padded / 4);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.resize(out.len() + padded - chunk_len + 1, 0);
}

fn header(out: &mut Vec<u8>, count: u8, packet_type: u8, words_after_header: usize) {
    out.push(0x80 | (count & 0x1F));
    out.push(packet_type);
    out.extend_from_slice(&(words_after_header as u16).to_be_bytes());
}

/// What a received compound packet told us.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Received {
    /// (sender SSRC, NTP time) of a sender report.
    pub sender_report: Option<(u32, u64)>,
    /// Report blocks about our stream.
    pub about_us: Option<ReportBlock>,
    pub bye: bool,
}

/// True when a packet on a muxed port is RTCP (RFC 5761 §4: SR, RR, SDES, BYE, APP, feedback, XR).
pub fn is_rtcp(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0] >> 6 == 2 && (200..=207).contains(&bytes[1])
}

/// Parses a compound packet; anything malformed ends the walk (what came before is kept).
pub fn parse(bytes: &[u8], our_ssrc: u32) -> Received {
    let mut received = Received::default();
    let mut rest = bytes;
    while rest.len() >= 4 && rest[0] >> 6 == 2 {
        let count = usize::from(rest[0] & 0x1F);
        let packet_type = rest[1];
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        let Some(packet) = rest.get(..len) else { break };
        let blocks_at = match packet_type {
            200 if packet.len() >= 28 => {
                let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
                let mut ntp = [0u8; 8];
                ntp.copy_from_slice(&packet[8..16]);
                received.sender_report = Some((ssrc, u64::from_be_bytes(ntp)));
                Some(28)
            }
            201 if packet.len() >= 8 => Some(8),
            203 => {
                received.bye = true;
                None
            }
            _ => None,
        };
        if let Some(start) = blocks_at {
            for i in 0..count {
                let at = start + 24 * i;
                if let Some(block) = packet.get(at..at + 24).and_then(ReportBlock::parse)
                    && block.ssrc == our_ssrc
                {
                    received.about_us = Some(block);
                }
            }
        }
        rest = &rest[len..];
    }
    received
}

/// NTP time (RFC 5905 64-bit format) for a wall-clock time.
pub fn ntp_time(now: std::time::SystemTime) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let since = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since.as_secs() + UNIX_TO_NTP;
    let fraction = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_and_jitter_are_counted_across_a_sequence_wrap() {
        let mut reception = Reception::default();
        // 65530..65535, then 0..9 with 2 and 3 missing; arrival exactly on the media clock.
        let seqs: Vec<u16> = (65530..=65535)
            .chain((0..10).filter(|s| *s != 2 && *s != 3))
            .collect();
        for seq in &seqs {
            let ts = u32::from(seq.wrapping_sub(65530)) * 160;
            reception.on_packet(7, *seq, ts, ts + 1000);
        }
        assert_eq!(reception.lost(), 2);
        assert_eq!(reception.jitter(), 0);
        let block = reception.report_block(0).expect("a block");
        assert_eq!(block.highest_sequence, (1 << 16) | 9);
        assert_eq!(block.cumulative_lost, 2);
        assert_eq!(block.fraction_lost, (2 * 256 / 16) as u8);
        // A quiet interval: nothing new lost.
        assert_eq!(reception.report_block(0).expect("a block").fraction_lost, 0);
    }

    #[test]
    fn reports_round_trip_and_the_rtt_comes_out() {
        let mut theirs = Reception::default();
        theirs.on_packet(0xAAAA, 1, 0, 0);
        // They got our SR sent at NTP t=100 s and answer 0.25 s later; it reaches us at 100.5 s.
        let sent_at = 100u64 << 32;
        theirs.on_sender_report(sent_at, sent_at);
        let block = theirs.report_block(sent_at + (1 << 30)).expect("block");
        let mut bytes = Vec::new();
        compound(0xBBBB, 0, None, Some(block), "agent@host", &mut bytes);
        assert_eq!(bytes.len() % 4, 0);
        assert!(is_rtcp(&bytes));
        let received = parse(&bytes, 0xAAAA);
        let rtt = received
            .about_us
            .expect("block about us")
            .round_trip(sent_at + (1 << 31))
            .expect("rtt");
        assert!((rtt - 0.25).abs() < 0.001, "rtt {rtt}");

        let info = SenderInfo {
            rtp_timestamp: 1600,
            packets: 10,
            octets: 1600,
        };
        compound(0xAAAA, sent_at, Some(info), None, "x", &mut bytes);
        assert_eq!(parse(&bytes, 0).sender_report, Some((0xAAAA, sent_at)));
    }

    #[test]
    fn malformed_compounds_are_survived() {
        for bytes in [
            &[][..],
            &[0x80, 200, 0xFF, 0xFF][..],
            &[0x81, 201, 0, 1, 0, 0, 0, 1][..],
            &[
                0x9F, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0,
            ][..],
        ] {
            let _ = parse(bytes, 1);
        }
        let rtp = [0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        assert!(!is_rtcp(&rtp));
    }
}
