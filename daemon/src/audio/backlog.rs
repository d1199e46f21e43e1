//! What a device queue holds beyond its need, and when to let it go.
//!
//! Between a call's 20 ms ticks and a device's callbacks sits a queue (the speaker's samples
//! not yet played, the microphone's not yet sent). Each side runs on its own clock, so what the
//! queue holds when a tick comes is set by history: a device that starts late (ALSA's PulseAudio
//! plugin takes up to a second) or stalls leaves everything written meanwhile standing in the
//! queue, and with both clocks in step it never drains — 190 ms more mouth-to-ear for the whole
//! call, measured (`cargo bench --bench latency`, its device table). A sound card whose clock
//! runs slow builds the same, slowly.
//!
//! [`Backlog`] watches the lowest the queue got over each second: what it held even at its
//! emptiest was never needed. All but a margin (10 ms, for a tick that comes late) is dropped
//! where the audio is quiet, so no word is cut; a far end that never pauses has it dropped
//! after five seconds anyway. Sans-IO: levels in, a count of samples to drop out.

/// Ticks in a window (one second of 20 ms ticks).
const WINDOW: u32 = 50;
/// What is kept for a tick that comes late: 10 ms.
const MARGIN_SECONDS: f32 = 0.01;
/// Ticks an excess waits for quiet audio before it goes anyway (five seconds).
const PATIENCE: u32 = 250;
/// A sample below this (−40 dBFS, of full scale 1.0) is quiet.
pub const QUIET: f32 = 0.01;

#[derive(Debug)]
pub struct Backlog {
    margin: usize,
    /// Ticks seen in this window, and the lowest level among them.
    seen: u32,
    lowest: usize,
    /// Samples found standing, still to drop, and the ticks they have waited for quiet.
    excess: usize,
    waited: u32,
}

impl Backlog {
    /// For a queue of `rate` samples a second.
    pub fn new(rate: u32) -> Self {
        Self {
            margin: (rate as f32 * MARGIN_SECONDS) as usize,
            seen: 0,
            lowest: usize::MAX,
            excess: 0,
            waited: 0,
        }
    }

    /// Once a tick, with what the queue holds then (`level` samples, before the tick's own
    /// frame). Returns how many of the oldest samples to drop now; `quiet(n)` says whether the
    /// oldest `n` are all quiet.
    pub fn observe(&mut self, level: usize, quiet: impl FnOnce(usize) -> bool) -> usize {
        self.seen += 1;
        self.lowest = self.lowest.min(level);
        if self.seen >= WINDOW {
            let standing = self.lowest.saturating_sub(self.margin);
            if standing > 0 && self.excess == 0 {
                self.excess = standing;
                self.waited = 0;
            }
            self.seen = 0;
            self.lowest = usize::MAX;
        }
        if self.excess == 0 {
            return 0;
        }
        // The queue may have drained on its own since.
        let n = self.excess.min(level.saturating_sub(self.margin));
        if n == 0 {
            self.excess = 0;
            return 0;
        }
        if self.waited >= PATIENCE || quiet(n) {
            self.excess = 0;
            // What was dropped no longer counts towards this window's lowest.
            self.lowest = self.lowest.saturating_sub(n);
            return n;
        }
        self.waited += 1;
        0
    }
}

/// Whether every sample is quiet (below [`QUIET`]).
pub fn all_quiet<'a>(samples: impl IntoIterator<Item = &'a f32>) -> bool {
    samples.into_iter().all(|s| s.abs() < QUIET)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;
    const FRAME: usize = 960;
    const MARGIN: usize = 480;

    /// A queue fed a frame a tick and drained by a device `period` samples at a time, at the
    /// same rate, `standing` samples behind from the start; `loud_until` ticks of speech that
    /// never pauses. Returns the level before each tick's frame.
    fn run(standing: usize, period: usize, ticks: u32, loud_until: u32) -> Vec<usize> {
        let mut backlog = Backlog::new(RATE);
        let (mut level, mut owed) = (standing, 0usize);
        let mut levels = Vec::new();
        for tick in 0..ticks {
            // The device takes what a tick's worth of its periods asks for.
            owed += FRAME;
            while owed >= period {
                owed -= period;
                level = level.saturating_sub(period);
            }
            levels.push(level);
            let dropped = backlog.observe(level, |_| tick >= loud_until);
            level -= dropped;
            level += FRAME;
        }
        levels
    }

    #[test]
    fn a_late_start_is_let_go_of_within_two_seconds() {
        // 190 ms behind (a device that started late), 10 ms periods.
        let levels = run(9120, 480, 200, 0);
        assert!(levels[10] >= 9120 - FRAME, "{levels:?}");
        let settled = &levels[100..];
        assert!(
            settled.iter().all(|&l| l <= MARGIN),
            "at most the margin stands after two seconds: {settled:?}"
        );
        // And it does not keep dropping: the queue never runs dry.
        assert!(settled.iter().all(|&l| l > 0), "{settled:?}");
    }

    #[test]
    fn a_queue_at_its_need_is_left_alone() {
        let mut backlog = Backlog::new(RATE);
        for tick in 0..1000 {
            // A device whose periods leave between 0 and 20 ms at a tick.
            let level = (tick * 337) % FRAME;
            assert_eq!(backlog.observe(level, |_| true), 0);
        }
    }

    #[test]
    fn speech_is_not_cut_until_it_pauses() {
        // Loud for 3 s, then quiet: nothing dropped before the pause, all after it.
        let levels = run(4800, 480, 300, 150);
        assert!(
            levels[..150].iter().all(|&l| l >= 4800 - FRAME),
            "{levels:?}"
        );
        assert!(levels[160..].iter().all(|&l| l <= MARGIN), "{levels:?}");
    }

    #[test]
    fn a_far_end_that_never_pauses_has_it_dropped_after_five_seconds() {
        let levels = run(4800, 480, 400, u32::MAX);
        assert!(
            levels[..290].iter().all(|&l| l >= 4800 - FRAME),
            "{levels:?}"
        );
        assert!(levels[310..].iter().all(|&l| l <= MARGIN), "{levels:?}");
    }

    #[test]
    fn quiet_is_below_minus_40_dbfs() {
        assert!(all_quiet(&[0.0, 0.009, -0.009]));
        assert!(!all_quiet(&[0.0, 0.02]));
    }
}
