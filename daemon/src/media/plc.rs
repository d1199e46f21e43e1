//! Packet-loss concealment for the waveform codecs (G.711, G.722): pitch-synchronous waveform
//! substitution, after ITU-T G.711 Appendix I. Sans-IO: decoded frames and losses in, samples out.
//!
//! A lost frame is filled by repeating the last pitch period of what was played (its end blended
//! into the samples that preceded it, so the repetition has no click where it wraps), full level
//! for 10 ms, then fading by a fifth every 10 ms to silence at 60 ms. The first good frame after a
//! loss is cross-faded in from the repetition over a quarter period. Repeating whole 20 ms frames,
//! as before, put a 50 Hz buzz and a click at every frame edge into each loss.

/// Pitch searched between 66 and 400 Hz (lags of 2.5 to 15 ms).
const MIN_PITCH_MS: f32 = 2.5;
const MAX_PITCH_MS: f32 = 15.0;
/// The correlation window for the pitch search.
const WINDOW_MS: f32 = 20.0;
/// Full level this long, then fading to silence over `FADE_MS`.
const HOLD_MS: f32 = 10.0;
const FADE_MS: f32 = 50.0;

pub struct Plc {
    rate: usize,
    /// What was played last (good or concealed), enough for the pitch search.
    history: Vec<f32>,
    /// One pitch period to repeat, blended at its end; empty when no loss is going on.
    period: Vec<f32>,
    /// Samples concealed since the loss began.
    concealed: usize,
}

impl Plc {
    pub fn new(rate: u32) -> Self {
        Self {
            rate: rate as usize,
            history: Vec::new(),
            period: Vec::new(),
            concealed: 0,
        }
    }

    fn ms(&self, ms: f32) -> usize {
        (self.rate as f32 * ms / 1000.0) as usize
    }

    /// A frame that was decoded: after a loss, its start is cross-faded from the repetition.
    pub fn good(&mut self, frame: &mut [i16]) {
        if !self.period.is_empty() {
            let overlap = (self.period.len() / 4).min(frame.len());
            let gain = self.gain();
            for (i, sample) in frame.iter_mut().take(overlap).enumerate() {
                let w = (i + 1) as f32 / (overlap + 1) as f32;
                let synthetic = self.period[(self.concealed + i) % self.period.len()] * gain;
                *sample = (synthetic * (1.0 - w) + f32::from(*sample) * w) as i16;
            }
            self.period.clear();
            self.concealed = 0;
        }
        self.remember(frame.iter().map(|s| f32::from(*s)));
    }

    /// `samples` of concealment for a lost frame.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        out.clear();
        if self.period.is_empty() && !self.start() {
            out.resize(samples, 0);
            return;
        }
        for _ in 0..samples {
            let value = self.period[self.concealed % self.period.len()] * self.gain();
            // `as` saturates: no clamp needed.
            out.push(value as i16);
            self.concealed += 1;
        }
        self.remember(out.iter().map(|&s| f32::from(s)));
    }

    /// The level of the next concealed sample.
    fn gain(&self) -> f32 {
        let (hold, fade) = (self.ms(HOLD_MS), self.ms(FADE_MS).max(1));
        match self.concealed.checked_sub(hold) {
            None => 1.0,
            Some(into_fade) => (1.0 - into_fade as f32 / fade as f32).max(0.0),
        }
    }

    /// At a loss's first frame: finds the pitch and takes the period to repeat. False when there
    /// is not enough history yet (the call's first frames).
    fn start(&mut self) -> bool {
        let (min, max, window) = (
            self.ms(MIN_PITCH_MS).max(1),
            self.ms(MAX_PITCH_MS),
            self.ms(WINDOW_MS),
        );
        let h = &self.history;
        if h.len() < max + window {
            return false;
        }
        let end = h.len();
        let recent = &h[end - window..];
        let (mut best, mut best_score) = (max, f32::MIN);
        for lag in min..=max {
            let earlier = &h[end - window - lag..end - lag];
            let dot: f32 = recent.iter().zip(earlier).map(|(a, b)| a * b).sum();
            let energy: f32 = earlier.iter().map(|b| b * b).sum::<f32>() + 1.0;
            let score = dot / energy.sqrt();
            if score > best_score {
                (best, best_score) = (lag, score);
            }
        }
        // The last period, its last quarter blended into the samples before the period, which
        // is what follows its end when it wraps around.
        let mut period = h[end - best..].to_vec();
        let quarter = best / 4;
        for i in 0..quarter {
            let w = (i + 1) as f32 / (quarter + 1) as f32;
            let before = h[end - best - quarter + i];
            let slot = best - quarter + i;
            period[slot] = period[slot] * (1.0 - w) + before * w;
        }
        self.period = period;
        self.concealed = 0;
        true
    }

    fn remember(&mut self, samples: impl Iterator<Item = f32>) {
        self.history.extend(samples);
        let keep = self.ms(MAX_PITCH_MS + WINDOW_MS) + self.ms(5.0);
        let excess = self.history.len().saturating_sub(keep);
        self.history.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voiced(rate: usize, from: usize, n: usize) -> Vec<i16> {
        // A 180 Hz voice with a few harmonics.
        (from..from + n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let v: f32 = (1..=4)
                    .map(|k| (std::f32::consts::TAU * 180.0 * k as f32 * t).sin() / k as f32)
                    .sum();
                (v * 6000.0) as i16
            })
            .collect()
    }

    fn snr_db(truth: &[i16], got: &[i16]) -> f32 {
        let signal: f32 = truth.iter().map(|s| f32::from(*s).powi(2)).sum();
        let noise: f32 = truth
            .iter()
            .zip(got)
            .map(|(a, b)| (f32::from(*a) - f32::from(*b)).powi(2))
            .sum();
        10.0 * (signal / noise.max(1.0)).log10()
    }

    #[test]
    fn a_lost_frame_continues_the_voice_without_a_click_then_fades() {
        let rate = 8000;
        let mut plc = Plc::new(rate as u32);
        for f in 0..10 {
            let mut frame = voiced(rate, f * 160, 160);
            plc.good(&mut frame);
        }
        let mut out = Vec::new();
        plc.conceal(160, &mut out);
        let truth = voiced(rate, 10 * 160, 160);
        // The first 10 ms follow the voice closely (it is periodic: the pitch was found).
        let snr = snr_db(&truth[..80], &out[..80]);
        assert!(
            snr > 15.0,
            "the concealment continues the voice: {snr:.1} dB"
        );
        // No click where the concealment starts: the step is like the voice's own.
        let last = voiced(rate, 10 * 160 - 1, 1)[0];
        let step = (i32::from(out[0]) - i32::from(last)).abs();
        let own = voiced(rate, 0, 1600)
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0);
        assert!(
            step <= own,
            "step {step} at the start, the voice's largest {own}"
        );
        // Three more lost frames: fading, and silent from 60 ms into the loss.
        let mut frame = Vec::new();
        let mut more = Vec::new();
        for _ in 0..3 {
            plc.conceal(160, &mut frame);
            more.extend_from_slice(&frame);
        }
        assert!(more[0].unsigned_abs() > 0, "still sounding at 20 ms");
        let tail = more[320..]
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        assert_eq!(tail, 0, "silent 60 ms into the loss");
        // The voice comes back: faded in, no click at the junction.
        let mut back = voiced(rate, 14 * 160, 160);
        plc.good(&mut back);
        assert!(
            back[0].unsigned_abs() < 6000,
            "faded in from silence: {}",
            back[0]
        );
    }

    #[test]
    fn without_history_a_loss_is_silence() {
        let mut plc = Plc::new(8000);
        let mut out = vec![1; 3];
        plc.conceal(160, &mut out);
        assert_eq!(out, vec![0; 160]);
    }
}
