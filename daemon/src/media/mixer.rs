//! The local conference's mix, sans-IO: each 20 ms the agent's microphone frame goes in, and
//! every leg gets the agent plus every *other* leg (nobody hears themself), while the agent
//! hears every leg. Legs run at their codec's rate (8 kHz PCMU, 48 kHz Opus); the mix runs at
//! [`MIX_RATE`], legs converting by whole-number ratios.

use std::collections::VecDeque;

/// The rate the mix runs at: every codec rate we speak divides it.
pub const MIX_RATE: u32 = 48_000;
/// One mix frame: 20 ms.
pub const MIX_FRAME: usize = (MIX_RATE / 50) as usize;
/// The most audio a leg's queue keeps either way: more means the two clocks drifted, and the
/// oldest goes (latency must not pile up).
const MAX_QUEUED: usize = 3 * MIX_FRAME;

/// Names a leg in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegId(u64);

#[derive(Debug)]
struct Leg {
    id: LegId,
    /// What the far end said, at the mix rate, not yet mixed.
    heard: VecDeque<i16>,
    /// What the far end is to hear, at the mix rate, not yet sent.
    to_send: VecDeque<i16>,
}

#[derive(Debug, Default)]
pub struct Mixer {
    legs: Vec<Leg>,
    next_id: u64,
}

impl Mixer {
    pub fn add_leg(&mut self) -> LegId {
        self.next_id += 1;
        let id = LegId(self.next_id);
        self.legs.push(Leg {
            id,
            heard: VecDeque::new(),
            to_send: VecDeque::new(),
        });
        id
    }

    pub fn remove_leg(&mut self, id: LegId) {
        self.legs.retain(|leg| leg.id != id);
    }

    pub fn legs(&self) -> usize {
        self.legs.len()
    }

    /// A leg's far end said `samples` (mix rate).
    pub fn push_heard(&mut self, id: LegId, samples: &[i16]) {
        if let Some(leg) = self.legs.iter_mut().find(|leg| leg.id == id) {
            leg.heard.extend(samples);
            trim(&mut leg.heard);
        }
    }

    /// The next `out.len()` samples (mix rate) for a leg's far end; silence where the mix has
    /// not produced them yet.
    pub fn pull_send(&mut self, id: LegId, out: &mut [i16]) {
        out.fill(0);
        if let Some(leg) = self.legs.iter_mut().find(|leg| leg.id == id) {
            let available = out.len().min(leg.to_send.len());
            for (slot, sample) in out.iter_mut().zip(leg.to_send.drain(..available)) {
                *slot = sample;
            }
        }
    }

    /// One frame: `mic` is the agent's [`MIX_FRAME`] samples; returns what the agent hears.
    pub fn mix(&mut self, mic: &[i16]) -> Vec<i16> {
        let frames: Vec<Vec<i16>> = self
            .legs
            .iter_mut()
            .map(|leg| {
                let mut frame: Vec<i16> =
                    leg.heard.drain(..MIX_FRAME.min(leg.heard.len())).collect();
                frame.resize(MIX_FRAME, 0);
                frame
            })
            .collect();
        let mut speaker = vec![0i32; MIX_FRAME];
        for frame in &frames {
            for (sum, sample) in speaker.iter_mut().zip(frame) {
                *sum += i32::from(*sample);
            }
        }
        for (index, leg) in self.legs.iter_mut().enumerate() {
            for (at, everyone) in speaker.iter().enumerate() {
                let agent = i32::from(mic.get(at).copied().unwrap_or(0));
                let own = i32::from(frames[index][at]);
                leg.to_send.push_back(saturate(agent + everyone - own));
            }
            trim(&mut leg.to_send);
        }
        speaker.into_iter().map(saturate).collect()
    }
}

fn saturate(sample: i32) -> i16 {
    sample.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

fn trim(queue: &mut VecDeque<i16>) {
    if queue.len() > MAX_QUEUED {
        let excess = queue.len() - MAX_QUEUED;
        queue.drain(..excess);
    }
}

/// Converts a leg's audio to and from the mix rate by a whole-number ratio: up by linear
/// interpolation, down by averaging (a box filter that keeps most of what lies above the
/// leg's band out of it).
#[derive(Debug)]
pub struct RateConverter {
    ratio: usize,
    /// The last sample converted up, to interpolate across frame boundaries.
    last: i16,
}

impl RateConverter {
    /// None when `rate` does not divide the mix rate.
    pub fn new(rate: u32) -> Option<Self> {
        (rate > 0 && MIX_RATE.is_multiple_of(rate)).then(|| Self {
            ratio: (MIX_RATE / rate) as usize,
            last: 0,
        })
    }

    pub fn ratio(&self) -> usize {
        self.ratio
    }

    /// Leg rate → mix rate.
    pub fn up(&mut self, samples: &[i16]) -> Vec<i16> {
        let mut out = Vec::with_capacity(samples.len() * self.ratio);
        for &sample in samples {
            let (from, to) = (i32::from(self.last), i32::from(sample));
            for step in 1..=self.ratio {
                let value = from + (to - from) * step as i32 / self.ratio as i32;
                out.push(value as i16);
            }
            self.last = sample;
        }
        out
    }

    /// Mix rate → leg rate; `samples.len()` is a multiple of the ratio.
    pub fn down(&self, samples: &[i16], out: &mut [i16]) {
        for (slot, group) in out.iter_mut().zip(samples.chunks(self.ratio)) {
            let sum: i32 = group.iter().map(|s| i32::from(*s)).sum();
            *slot = (sum / group.len().max(1) as i32) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constant(value: i16) -> Vec<i16> {
        vec![value; MIX_FRAME]
    }

    /// Three legs: each hears the agent and the other two, never itself; the agent hears all
    /// three; sums saturate instead of wrapping.
    #[test]
    fn every_leg_hears_everyone_but_itself() {
        let mut mixer = Mixer::default();
        let legs: Vec<LegId> = (0..3).map(|_| mixer.add_leg()).collect();
        for (leg, value) in legs.iter().zip([100, 20, 3]) {
            mixer.push_heard(*leg, &constant(value));
        }
        let speaker = mixer.mix(&constant(1000));
        assert_eq!(speaker, constant(123));
        let mut out = vec![0; MIX_FRAME];
        for (leg, expected) in legs.iter().zip([1023, 1103, 1120]) {
            mixer.pull_send(*leg, &mut out);
            assert_eq!(out, constant(expected));
        }
        // Nothing more was mixed: the next pull is silence.
        mixer.pull_send(legs[0], &mut out);
        assert_eq!(out, constant(0));

        mixer.push_heard(legs[0], &constant(i16::MAX));
        mixer.push_heard(legs[1], &constant(i16::MAX));
        assert_eq!(mixer.mix(&constant(0)), constant(i16::MAX));
    }

    /// A leg that stops sending is silence in the mix; a removed leg is gone from everyone's.
    #[test]
    fn missing_audio_is_silence_and_removed_legs_are_gone() {
        let mut mixer = Mixer::default();
        let (a, b) = (mixer.add_leg(), mixer.add_leg());
        mixer.push_heard(a, &constant(7));
        assert_eq!(mixer.mix(&constant(0)), constant(7));
        mixer.remove_leg(a);
        mixer.push_heard(a, &constant(7));
        assert_eq!(mixer.mix(&constant(0)), constant(0));
        // `b` hears only what `a` said before it left (one frame), then nothing.
        let mut out = vec![0; MIX_FRAME];
        mixer.pull_send(b, &mut out);
        assert_eq!(out, constant(7));
        mixer.pull_send(b, &mut out);
        assert_eq!(out, constant(0));
        assert_eq!(mixer.legs(), 1);
    }

    /// Drift: a leg that delivers faster than the mix consumes keeps at most three frames.
    #[test]
    fn queues_stay_bounded() {
        let mut mixer = Mixer::default();
        let a = mixer.add_leg();
        for _ in 0..10 {
            mixer.push_heard(a, &constant(1));
            mixer.mix(&constant(0));
            mixer.push_heard(a, &constant(1));
        }
        assert!(mixer.legs[0].heard.len() <= MAX_QUEUED);
        assert!(mixer.legs[0].to_send.len() <= MAX_QUEUED);
    }

    /// 8 kHz up to 48 kHz and back gives the same frame (a slow signal), and rates that do not
    /// divide 48 kHz are refused.
    #[test]
    fn rates_convert_by_whole_ratios() {
        let mut converter = RateConverter::new(8000).expect("8 kHz");
        assert_eq!(converter.ratio(), 6);
        let slow: Vec<i16> = (0..160).map(|i| (i * 10) as i16).collect();
        let up = converter.up(&slow);
        assert_eq!(up.len(), 960);
        assert_eq!(&up[6..12], &[1, 3, 5, 6, 8, 10], "interpolated");
        let mut back = vec![0; 160];
        converter.down(&up, &mut back);
        for (a, b) in slow.iter().zip(&back).skip(1) {
            assert!((a - b).abs() <= 5, "{a} vs {b}");
        }
        assert!(RateConverter::new(44_100).is_none());
        assert!(RateConverter::new(0).is_none());
        assert_eq!(RateConverter::new(48_000).map(|c| c.ratio()), Some(1));
    }
}
