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
//! emptiest was never needed. All but a margin (10 ms for a tick or a delivery that comes late,
//! more each time the device still went short, up to 40 ms) is dropped where the audio is
//! quiet, so no word is cut; a far end that never pauses has it dropped after five seconds
//! anyway, in 10 ms pieces every fifth tick. Sans-IO: levels and shortfalls in, a count of
//! samples to drop out. Left for later: a margin that shrinks again after a long time without a shortfall.

/// Ticks in a window (one second of 20 ms ticks).
const WINDOW: u32 = 50;
/// What is kept at first for a tick that comes late (speaker) or a delivery that comes late
/// (microphone): 10 ms. Each time the device still went short, the margin grows by what it
/// lacked, up to 40 ms: a host or device that hiccups once will again, and a glitch per hiccup
/// is worse than a few ms more delay.
const MARGIN_SECONDS: f32 = 0.01;
const MAX_MARGIN_SECONDS: f32 = 0.04;
/// Ticks an excess waits for quiet audio before it goes anyway (five seconds), 10 ms every
/// fifth tick.
const PATIENCE: u32 = 250;
/// A pause is quiet samples for twice this (10 ms; shorter is a zero crossing in speech, where
/// nothing is dropped), and this much of it (5 ms) is kept where speech comes back within it.
const SHORTEST_PAUSE_SECONDS: f32 = 0.005;
/// A sample below this (−40 dBFS, of full scale 1.0) is quiet.
const QUIET: f32 = 0.01;

#[derive(Debug)]
pub struct Backlog {
    rate: u32,
    margin: usize,
    max_margin: usize,
    shortest_pause: usize,
    /// Ticks seen in this window, and the lowest level among them.
    seen: u32,
    lowest: usize,
    /// Samples found standing, still to drop; the lowest level since they were found (what
    /// may be dropped is never more than that less the margin); ticks waited for quiet.
    excess: usize,
    floor: usize,
    waited: u32,
}

impl Backlog {
    /// For a queue of `rate` samples a second.
    pub fn new(rate: u32) -> Self {
        let samples = |seconds: f32| (rate as f32 * seconds) as usize;
        Self {
            rate,
            margin: samples(MARGIN_SECONDS),
            max_margin: samples(MAX_MARGIN_SECONDS),
            shortest_pause: samples(SHORTEST_PAUSE_SECONDS).max(1),
            seen: 0,
            lowest: usize::MAX,
            excess: 0,
            floor: usize::MAX,
            waited: 0,
        }
    }

    /// What is kept for lateness now (samples).
    pub fn margin(&self) -> usize {
        self.margin
    }

    /// The same in milliseconds.
    pub fn margin_ms(&self) -> usize {
        self.margin * 1000 / self.rate.max(1) as usize
    }

    /// Once a tick, with what the queue holds beyond this tick's need then (`level` samples: the
    /// speaker's queue before the tick's frame goes in, the microphone's after its frame is
    /// taken out) and how many samples the device went without since the last tick (`short`:
    /// the speaker found the queue empty, the microphone's frame was not full). Returns how many of the oldest samples to drop now;
    /// `quiet(n)` says how many of the oldest `n` are quiet in a row.
    pub fn observe(
        &mut self,
        level: usize,
        short: usize,
        quiet: impl FnOnce(usize) -> usize,
    ) -> usize {
        if short > 0 {
            // Less was held than needed: more margin, and what was found standing is not.
            self.margin = self.margin.saturating_add(short).min(self.max_margin);
            self.excess = 0;
            self.seen = 0;
            self.lowest = usize::MAX;
            return 0;
        }
        self.seen += 1;
        self.lowest = self.lowest.min(level);
        self.floor = self.floor.min(level);
        if self.seen >= WINDOW {
            let standing = self.lowest.saturating_sub(self.margin);
            if standing > 0 && self.excess == 0 {
                self.excess = standing;
                self.floor = self.lowest;
                self.waited = 0;
            }
            self.seen = 0;
            self.lowest = usize::MAX;
        }
        if self.excess == 0 {
            return 0;
        }
        // The queue may have drained since (a device's periods fall differently now).
        let allowed = self.excess.min(self.floor.saturating_sub(self.margin));
        if allowed == 0 {
            self.excess = 0;
            return 0;
        }
        // A pause, or its start: what of it is here goes now (5 ms of it kept where speech
        // comes back within it), the rest at the next.
        let n = match quiet(allowed).min(allowed) {
            run if run == allowed => run,
            run if run >= 2 * self.shortest_pause => run - self.shortest_pause,
            // A far end that never pauses: a 10 ms piece every fifth tick, not one long cut
            // in a word.
            _ if self.waited >= PATIENCE && (self.waited - PATIENCE).is_multiple_of(5) => {
                allowed.min(2 * self.shortest_pause)
            }
            _ => 0,
        };
        self.waited += 1;
        if n == 0 {
            return 0;
        }
        self.excess -= n;
        // What was dropped no longer counts in what stands.
        self.floor -= n;
        self.lowest = self.lowest.saturating_sub(n);
        n
    }
}

/// How many samples from the start are quiet (below [`QUIET`]) in a row.
pub fn quiet_run<'a>(samples: impl IntoIterator<Item = &'a f32>) -> usize {
    samples.into_iter().take_while(|s| s.abs() < QUIET).count()
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    const RATE: u32 = 48_000;
    const FRAME: usize = 960;
    const MARGIN: usize = 480;

    /// A speaker's queue on a virtual clock (in samples at 48 kHz): a frame written each tick
    /// (every 960, late by `late(tick)`), drained by a device `period` samples at a time on its
    /// own clock, `standing` samples queued from the start (a device that started late). A tick
    /// writes speech (0.5) while `loud(tick)`, else silence.
    struct Run {
        /// The level at each tick, before its frame.
        levels: Vec<usize>,
        /// Samples the device found missing once fed, in all; the ticks it was found at.
        short: usize,
        short_at: Vec<usize>,
        /// Samples the backlog let go of, in all.
        dropped: usize,
    }

    fn run(
        standing: usize,
        period: usize,
        ticks: usize,
        loud: impl Fn(usize) -> bool,
        late: impl Fn(usize) -> usize,
    ) -> Run {
        let mut backlog = Backlog::new(RATE);
        let mut queue: VecDeque<f32> = std::iter::repeat_n(0.0, standing).collect();
        let (mut next_callback, mut short_since, mut short, mut fed) =
            (period / 3, 0, 0, standing > 0);
        let (mut levels, mut short_at, mut dropped_all) = (Vec::new(), Vec::new(), 0);
        for tick in 0..ticks {
            let at = tick * FRAME + late(tick);
            while next_callback <= at {
                for _ in 0..period {
                    match queue.pop_front() {
                        Some(_) => fed = true,
                        None if fed => short_since += 1,
                        None => {}
                    }
                }
                next_callback += period;
            }
            levels.push(queue.len());
            short += short_since;
            if short_since > 0 {
                short_at.push(tick);
            }
            let dropped = backlog.observe(queue.len(), std::mem::take(&mut short_since), |n| {
                quiet_run(queue.range(..n))
            });
            queue.drain(..dropped);
            dropped_all += dropped;
            let value = if loud(tick) { 0.5 } else { 0.0 };
            queue.extend(std::iter::repeat_n(value, FRAME));
        }
        Run {
            levels,
            short,
            short_at,
            dropped: dropped_all,
        }
    }

    fn on_time(_: usize) -> usize {
        0
    }

    #[test]
    fn a_late_start_is_let_go_of_within_two_seconds() {
        // 190 ms behind (a device that started late); periods of 10 ms, and of 512 samples
        // (which do not divide a frame: the level at a tick moves with their phase).
        for period in [480, 512] {
            let run = run(9120, period, 200, |_| false, on_time);
            assert!(run.levels[10] >= 9120 - FRAME, "{:?}", run.levels);
            let settled = &run.levels[100..];
            assert!(
                settled.iter().all(|&l| l <= MARGIN + period),
                "period {period}: at most the margin and a period after two seconds: {settled:?}"
            );
            assert_eq!(run.short, 0, "period {period}: the device never went short");
        }
    }

    #[test]
    fn a_queue_at_its_need_is_left_alone() {
        for period in [480, 512, 1024] {
            // Speech throughout, and silence throughout: nothing is let go of, and a period
            // that does not divide a frame starves the device only in the first cycle of their
            // phases (8 frames for 512, 16 for 1024), each time a little less.
            for loud in [true, false] {
                let run = run(0, period, 500, |_| loud, on_time);
                assert_eq!(run.dropped, 0, "period {period}");
                assert!(
                    run.short_at.iter().all(|&t| t < 20),
                    "period {period}: {:?}",
                    run.short_at
                );
            }
        }
    }

    #[test]
    fn speech_is_not_cut_until_it_pauses() {
        // Loud for 3 s, then quiet: nothing dropped before the pause, all after it.
        let run = run(4800, 480, 300, |tick| tick < 150, on_time);
        assert!(
            run.levels[..150].iter().all(|&l| l >= 4800 - FRAME),
            "{:?}",
            run.levels
        );
        assert!(
            run.levels[160..].iter().all(|&l| l <= MARGIN),
            "{:?}",
            run.levels
        );
    }

    #[test]
    fn a_far_end_that_never_pauses_has_it_dropped_in_pieces_after_five_seconds() {
        let run = run(4800, 480, 400, |_| true, on_time);
        // Every fifth tick from the sixth second on.
        let cuts: Vec<usize> = (1..400)
            .filter(|&t| run.levels[t] + 480 == run.levels[t - 1])
            .collect();
        assert!(cuts.windows(2).all(|w| w[1] - w[0] == 5), "{cuts:?}");
        let levels = &run.levels;
        assert!(
            levels[..290].iter().all(|&l| l >= 4800 - FRAME),
            "{levels:?}"
        );
        // 10 ms a cut at most: no long cut in a word.
        assert!(levels.windows(2).all(|w| w[0] <= w[1] + 480), "{levels:?}");
        assert!(levels[340..].iter().all(|&l| l <= MARGIN), "{levels:?}");
        assert_eq!(run.short, 0);
    }

    #[test]
    fn a_hiccup_is_met_once_then_held_against() {
        // Settled, then a tick 25 ms late at 3 s and again at 6 s: the first leaves the device
        // short, the margin grows by what it lacked, and the second finds enough held.
        let hiccups = |tick: usize| if tick == 150 || tick == 300 { 1200 } else { 0 };
        let first = run(0, 480, 200, |_| false, hiccups);
        assert!(first.short > 0, "the first hiccup starves the device");
        let both = run(0, 480, 400, |_| false, hiccups);
        assert_eq!(both.short, first.short, "the second hiccup does not");
    }

    #[test]
    fn quiet_runs_are_below_minus_40_dbfs() {
        assert_eq!(quiet_run(&[0.0, 0.009, -0.009, 0.02, 0.0]), 3);
        assert_eq!(quiet_run(&[0.5, 0.0]), 0);
    }
}
