//! An adaptive jitter buffer, sans-IO: packets go in as they arrive, one frame comes out per
//! playout tick. It holds back a few frames (more when arrival times scatter, RFC 3550 jitter),
//! stretches playout with concealment when the network stalls, and drops a frame to catch up when
//! it holds more than it needs. The caller conceals what [`Playout::Lost`] reports.
//!
//! Playout starts once the frames held span the spread of the transit times seen so far: on a
//! clean network after two frames (40 ms of mouth-to-ear less than a fixed deep start), on a
//! scattering one as deep as the first packets show it must be. Delay added at the start costs
//! nothing; delay added later (a stall) costs a concealed frame in the middle of speech.

use std::collections::BTreeMap;

/// Frames held before playout starts, and the bounds of the adaptive target (20 ms frames).
const MIN_TARGET: usize = 2;
const MAX_TARGET: usize = 10;
/// More than this many frames above the target for `TRIM_AFTER` ticks in a row: drop one frame to
/// cut latency. Slowly, because every drop is a click: a burst after a hiccup drains by itself.
const SLACK: usize = 2;
const TRIM_AFTER: u32 = 25;
/// Underrun ticks before we stop and rebuffer (the far end paused or went on hold).
const MAX_UNDERRUN: u32 = 5;
/// A sequence jump this large is a new stream (far end restarted), not loss.
const RESET_GAP: u64 = 100;
const CAPACITY: usize = 64;

#[derive(Debug, PartialEq, Eq)]
pub enum Playout {
    /// The next frame's payload, in order.
    Frame(Vec<u8>),
    /// The frame is missing: conceal it. `next` is the following payload when it is already
    /// here (Opus can rebuild the lost frame from its in-band FEC).
    Lost { next: Option<Vec<u8>> },
    /// Not playing (filling up, or nothing received): play silence.
    Silence,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct JitterStats {
    pub late: u64,
    pub concealed: u64,
    pub dropped: u64,
    /// Interarrival jitter, RFC 3550 §6.4.1, in milliseconds.
    pub jitter_ms: f64,
    pub target_frames: usize,
}

/// The packets that came while playout waits to start: the lowest and highest transit times and
/// how many there were (how much later than the fastest a frame may come), and the ticks waited
/// with enough frames for the target but not for that spread.
#[derive(Debug)]
struct Waiting {
    fastest: f64,
    slowest: f64,
    packets: u32,
    ticks: u32,
}

impl Waiting {
    fn new(transit: f64) -> Self {
        Self {
            fastest: transit,
            slowest: transit,
            packets: 0,
            ticks: 0,
        }
    }

    fn heard(&mut self, transit: f64) {
        self.fastest = self.fastest.min(transit);
        self.slowest = self.slowest.max(transit);
        self.packets += 1;
    }
}

#[derive(Debug)]
pub struct JitterBuffer {
    frame_ms: f64,
    packets: BTreeMap<u64, Vec<u8>>,
    /// Highest extended sequence number seen (RFC 3550 A.1 style unwrapping).
    highest: Option<u64>,
    next: Option<u64>,
    playing: bool,
    underruns: u32,
    /// Ticks in a row with more than target + SLACK frames held.
    over: u32,
    /// A stall: the frame it waits for, and how many ticks it has filled with concealment
    /// while nothing later had come.
    stalled: Option<(u64, u64)>,
    /// Relative transit time of the previous packet, for the jitter estimate.
    last_transit: Option<f64>,
    /// While not playing: what the start's depth is decided on.
    waiting: Option<Waiting>,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(frame_ms: u32) -> Self {
        Self {
            frame_ms: f64::from(frame_ms),
            packets: BTreeMap::new(),
            highest: None,
            next: None,
            playing: false,
            underruns: 0,
            over: 0,
            stalled: None,
            last_transit: None,
            waiting: None,
            stats: JitterStats {
                target_frames: MIN_TARGET,
                ..JitterStats::default()
            },
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// A packet arrived `arrival_ms` after some fixed origin; `rtp_ms` is its timestamp in ms.
    pub fn push(&mut self, sequence: u16, rtp_ms: f64, arrival_ms: f64, payload: &[u8]) {
        let extended = self.extend(sequence);
        let transit = arrival_ms - rtp_ms;
        if let Some(last) = self.last_transit {
            self.stats.jitter_ms += ((transit - last).abs() - self.stats.jitter_ms) / 16.0;
        }
        self.last_transit = Some(transit);
        if !self.playing {
            self.waiting
                .get_or_insert_with(|| Waiting::new(transit))
                .heard(transit);
        }
        let wanted =
            ((2.0 * self.stats.jitter_ms + self.frame_ms / 2.0) / self.frame_ms).ceil() as usize;
        self.stats.target_frames = wanted.clamp(MIN_TARGET, MAX_TARGET);

        if let Some(next) = self.next {
            if extended.abs_diff(next) > RESET_GAP {
                self.packets.clear();
                self.next = None;
                self.stalled = None;
                self.playing = false;
                let mut waiting = Waiting::new(transit);
                waiting.heard(transit);
                self.waiting = Some(waiting);
                self.highest = Some(extended);
            } else if extended < next {
                self.stats.late += 1;
                return;
            }
        }
        if self.packets.len() >= CAPACITY {
            self.packets.pop_first();
            self.stats.dropped += 1;
        }
        self.packets
            .entry(extended)
            .or_insert_with(|| payload.to_vec());
    }

    /// The frame for this playout tick.
    pub fn pop(&mut self) -> Playout {
        if !self.playing {
            if self.packets.len() < self.stats.target_frames {
                return Playout::Silence;
            }
            // Not past `MAX_TARGET` ticks: a far end that sends a few frames and pauses is
            // still heard.
            if !self.deep_enough()
                && let Some(waiting) = self.waiting.as_mut()
                && waiting.ticks < MAX_TARGET as u32
            {
                waiting.ticks += 1;
                return Playout::Silence;
            }
            self.playing = true;
            self.waiting = None;
            self.underruns = 0;
            self.next = self.packets.keys().next().copied();
        }
        if self.packets.len() > self.stats.target_frames + SLACK {
            self.over += 1;
            if self.over >= TRIM_AFTER {
                // Too much delay has stayed: skip the oldest frame.
                self.over = 0;
                self.packets.pop_first();
                self.stats.dropped += 1;
                self.next = self.packets.keys().next().copied();
            }
        } else {
            self.over = 0;
        }
        let Some(mut next) = self.next else {
            return Playout::Silence;
        };
        let stall = self.stalled.take();
        if let Some((first, ticks)) = stall
            && first == next
            && !self.packets.is_empty()
            && !self.packets.contains_key(&next)
        {
            // The stall filled `ticks` slots and later frames are here now, but not the one it
            // waited for: the frames of those slots are lost (a burst). Concealing them again
            // would add frames and shift all that follows; play on from the first frame here,
            // at most `ticks` on (a late one within the stall still plays: a stretch).
            let earliest = self.packets.keys().next().copied().unwrap_or(next);
            next = earliest.min(first + ticks);
            self.next = Some(next);
        }
        if let Some(payload) = self.packets.remove(&next) {
            self.next = Some(next + 1);
            self.underruns = 0;
            return Playout::Frame(payload);
        }
        self.stats.concealed += 1;
        if self.packets.is_empty() {
            // Nothing later is here: stall (the frame may still come) rather than skip ahead.
            self.underruns += 1;
            if self.underruns > MAX_UNDERRUN {
                self.playing = false;
                self.next = None;
                self.waiting = None;
                return Playout::Silence;
            }
            let ticks = match stall {
                Some((first, ticks)) if first == next => ticks + 1,
                _ => 1,
            };
            self.stalled = Some((next, ticks));
            return Playout::Lost { next: None };
        }
        // A later frame is here, so this one is lost: conceal it and move on.
        self.next = Some(next + 1);
        Playout::Lost {
            next: self.packets.get(&(next + 1)).cloned(),
        }
    }

    /// The frames held span the spread of the transit times seen while waiting (at most
    /// `MAX_TARGET` frames): a frame as late as the latest of them still comes in time. A few
    /// packets show less than the whole spread: n of them, uniform over it, span (n−1)/(n+1) of
    /// it on average, so the spread seen is scaled up by the inverse.
    fn deep_enough(&self) -> bool {
        let (Some((&lowest, _)), Some((&highest, _)), Some(waiting)) = (
            self.packets.first_key_value(),
            self.packets.last_key_value(),
            &self.waiting,
        ) else {
            return true;
        };
        let n = f64::from(waiting.packets.max(2));
        let spread = (waiting.slowest - waiting.fastest) * (n + 1.0) / (n - 1.0);
        let held_ms = (highest - lowest) as f64 * self.frame_ms;
        held_ms >= spread.min(MAX_TARGET as f64 * self.frame_ms)
    }

    fn extend(&mut self, sequence: u16) -> u64 {
        let Some(highest) = self.highest else {
            // Start far from zero so unwrapping backwards never underflows.
            let first = (1u64 << 32) + u64::from(sequence);
            self.highest = Some(first);
            return first;
        };
        let low = highest as u16;
        let delta = sequence.wrapping_sub(low);
        let extended = if delta < u16::MAX / 2 {
            highest + u64::from(delta)
        } else {
            highest - u64::from(low.wrapping_sub(sequence))
        };
        if extended > highest {
            self.highest = Some(extended);
        }
        extended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds packets `seqs` arriving at the given ms, exactly on their media clock.
    fn buffer_with(seqs: &[(u16, f64)]) -> JitterBuffer {
        let mut buffer = JitterBuffer::new(20);
        for (seq, at) in seqs {
            buffer.push(*seq, *at, *at, &[*seq as u8]);
        }
        buffer
    }

    fn frame(seq: u16) -> Playout {
        Playout::Frame(vec![seq as u8])
    }

    #[test]
    fn holds_back_then_plays_in_order_despite_reordering() {
        let mut buffer = JitterBuffer::new(20);
        buffer.push(11, 220.0, 0.0, &[11]);
        assert_eq!(
            buffer.pop(),
            Playout::Silence,
            "one frame is not enough to start"
        );
        buffer.push(10, 200.0, 1.0, &[10]);
        assert_eq!(
            buffer.pop(),
            Playout::Silence,
            "10 came 21 ms behind 11's pace: two frames held are not enough"
        );
        buffer.push(12, 240.0, 20.0, &[12]);
        buffer.push(13, 260.0, 40.0, &[13]);
        for seq in 10..=13 {
            assert_eq!(buffer.pop(), frame(seq));
        }
    }

    /// The start is as deep as the first packets' transit times spread: after two frames on a
    /// clean network, later when they scatter, and never later than `MAX_TARGET` ticks.
    #[test]
    fn the_start_is_as_deep_as_the_first_packets_scatter() {
        // Clean: two frames, then play.
        let mut buffer = buffer_with(&[(1, 20.0), (2, 40.0)]);
        assert_eq!(buffer.pop(), frame(1));
        // 2 is 70 ms slower than the others: playout waits until the frames held span the
        // spread those few packets suggest (70 ms seen in 5 packets: 105 ms; in 6: 98 ms).
        let mut buffer = JitterBuffer::new(20);
        buffer.push(1, 20.0, 20.0, &[1]);
        buffer.push(3, 60.0, 60.0, &[3]);
        buffer.push(2, 40.0, 110.0, &[2]);
        buffer.push(4, 80.0, 80.0, &[4]);
        buffer.push(5, 100.0, 100.0, &[5]);
        assert_eq!(buffer.pop(), Playout::Silence, "held 80 ms of 105");
        buffer.push(6, 120.0, 120.0, &[6]);
        assert_eq!(buffer.pop(), frame(1), "held 100 ms of 98");
        for seq in 2..=6 {
            assert_eq!(buffer.pop(), frame(seq));
        }
        // A far end that sends two scattered frames and pauses is heard all the same.
        let mut buffer = JitterBuffer::new(20);
        buffer.push(1, 20.0, 100.0, &[1]);
        buffer.push(2, 40.0, 40.0, &[2]);
        for _ in 0..MAX_TARGET {
            assert_eq!(buffer.pop(), Playout::Silence);
        }
        assert_eq!(buffer.pop(), frame(1));
        assert_eq!(buffer.pop(), frame(2));
    }

    #[test]
    fn a_gap_is_concealed_with_the_next_frame_for_fec() {
        let mut buffer = buffer_with(&[(1, 20.0), (2, 40.0), (4, 80.0), (5, 100.0)]);
        assert_eq!(buffer.pop(), frame(1));
        assert_eq!(buffer.pop(), frame(2));
        assert_eq!(
            buffer.pop(),
            Playout::Lost {
                next: Some(vec![4])
            }
        );
        assert_eq!(buffer.pop(), frame(4));
        assert_eq!(buffer.stats().concealed, 1);
        // 3 arrives after its slot passed: late, dropped.
        buffer.push(3, 60.0, 130.0, &[3]);
        assert_eq!(buffer.stats().late, 1);
        assert_eq!(buffer.pop(), frame(5));
    }

    /// A frame lost while nothing later had come yet is concealed once, in its own slot: when the
    /// next frames arrive it is not concealed a second time (which would shift the rest).
    #[test]
    fn a_frame_lost_at_the_edge_is_concealed_once() {
        let mut buffer = buffer_with(&[(1, 20.0), (2, 40.0)]);
        assert_eq!(buffer.pop(), frame(1));
        assert_eq!(buffer.pop(), frame(2));
        // 3 is lost; at its tick nothing later is here yet.
        assert_eq!(buffer.pop(), Playout::Lost { next: None });
        buffer.push(4, 80.0, 85.0, &[4]);
        assert_eq!(
            buffer.pop(),
            frame(4),
            "3's slot was filled; 4 plays in its own"
        );
        buffer.push(5, 100.0, 105.0, &[5]);
        assert_eq!(buffer.pop(), frame(5));
        assert_eq!(buffer.stats().concealed, 1);
    }

    /// A burst of three lost frames, two of them at ticks when nothing later had come: three
    /// slots concealed in all, not four (which would shift everything after by a frame).
    #[test]
    fn a_burst_lost_at_the_edge_is_concealed_once_per_frame() {
        let mut buffer = buffer_with(&[(1, 20.0), (2, 40.0)]);
        assert_eq!(buffer.pop(), frame(1));
        assert_eq!(buffer.pop(), frame(2));
        // 3, 4 and 5 are lost; nothing later is here at 3's and 4's ticks.
        assert_eq!(buffer.pop(), Playout::Lost { next: None });
        assert_eq!(buffer.pop(), Playout::Lost { next: None });
        buffer.push(6, 120.0, 125.0, &[6]);
        assert_eq!(
            buffer.pop(),
            Playout::Lost {
                next: Some(vec![6])
            },
            "5's slot"
        );
        assert_eq!(buffer.pop(), frame(6));
        assert_eq!(buffer.stats().concealed, 3);
        // A stall whose frames come late, all together, is a stretch: they all play.
        let mut buffer = buffer_with(&[(1, 20.0), (2, 40.0)]);
        assert_eq!(buffer.pop(), frame(1));
        assert_eq!(buffer.pop(), frame(2));
        assert_eq!(buffer.pop(), Playout::Lost { next: None });
        assert_eq!(buffer.pop(), Playout::Lost { next: None });
        for seq in 3..=5u16 {
            buffer.push(seq, f64::from(seq) * 20.0, 125.0, &[seq as u8]);
        }
        for seq in 3..=5 {
            assert_eq!(buffer.pop(), frame(seq));
        }
        // Only the stalled one lost, a later one of the stall late: that one still plays.
        let mut buffer = buffer_with(&[(1, 20.0), (2, 40.0)]);
        assert_eq!(buffer.pop(), frame(1));
        assert_eq!(buffer.pop(), frame(2));
        assert_eq!(buffer.pop(), Playout::Lost { next: None });
        assert_eq!(buffer.pop(), Playout::Lost { next: None });
        buffer.push(4, 80.0, 125.0, &[4]);
        buffer.push(5, 100.0, 125.0, &[5]);
        assert_eq!(buffer.pop(), frame(4));
        assert_eq!(buffer.pop(), frame(5));
    }

    #[test]
    fn a_stall_stretches_playout_and_then_rebuffers() {
        let mut buffer = buffer_with(&[(1, 20.0), (2, 40.0)]);
        assert_eq!(buffer.pop(), frame(1));
        assert_eq!(buffer.pop(), frame(2));
        // The network stalls: conceal without skipping, so frame 3 still plays when it comes.
        assert_eq!(buffer.pop(), Playout::Lost { next: None });
        buffer.push(3, 60.0, 100.0, &[3]);
        assert_eq!(buffer.pop(), frame(3));
        for _ in 0..MAX_UNDERRUN {
            assert_eq!(buffer.pop(), Playout::Lost { next: None });
        }
        assert_eq!(
            buffer.pop(),
            Playout::Silence,
            "a long silence stops playout until it refills"
        );
    }

    #[test]
    fn scattered_arrivals_raise_the_target_and_excess_delay_is_dropped() {
        let mut buffer = JitterBuffer::new(20);
        // Arrival times wobble by ±40 ms around the media clock.
        for seq in 0..200u16 {
            let wobble = if seq % 2 == 0 { 40.0 } else { -40.0 };
            buffer.push(
                seq,
                f64::from(seq) * 20.0,
                f64::from(seq) * 20.0 + wobble,
                &[0],
            );
            let _ = buffer.pop();
        }
        let stats = buffer.stats();
        assert!(
            stats.jitter_ms > 40.0,
            "jitter estimate {}",
            stats.jitter_ms
        );
        assert!(stats.target_frames >= 5, "target {}", stats.target_frames);
        // Delay that stays (40 frames held while the target is 2): trimmed, one frame at a time,
        // only after it has lasted; a short burst is left to drain by itself.
        let mut buffer = JitterBuffer::new(20);
        for seq in 0..40u16 {
            buffer.push(seq, f64::from(seq) * 20.0, 0.0, &[seq as u8]);
        }
        for _ in 0..TRIM_AFTER - 1 {
            let _ = buffer.pop();
        }
        assert_eq!(buffer.stats().dropped, 0, "not at once");
        let _ = buffer.pop();
        assert_eq!(buffer.stats().dropped, 1);
    }

    #[test]
    fn sequence_wrap_and_stream_restart() {
        let mut buffer = buffer_with(&[(65534, 0.0), (65535, 20.0), (0, 40.0), (1, 60.0)]);
        assert_eq!(buffer.pop(), Playout::Frame(vec![254]));
        assert_eq!(buffer.pop(), Playout::Frame(vec![255]));
        assert_eq!(buffer.pop(), frame(0));
        // The far end restarts at a random sequence number: a new stream, not 30000 lost frames.
        buffer.push(30000, 0.0, 100.0, &[7]);
        buffer.push(30001, 20.0, 120.0, &[8]);
        assert_eq!(buffer.pop(), Playout::Frame(vec![7]));
        assert_eq!(buffer.stats().concealed, 0);
        // ... or at a lower one: still a new stream, not thousands of late packets.
        buffer.push(500, 0.0, 200.0, &[9]);
        buffer.push(501, 20.0, 220.0, &[10]);
        assert_eq!(buffer.pop(), Playout::Frame(vec![9]));
        assert_eq!(buffer.stats().late, 0);
    }
}
