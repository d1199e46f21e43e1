//! Sample-rate conversion between an audio device and a codec (e.g. 48 kHz ↔ 8 kHz), band-limited
//! with rubato's windowed-sinc resampler so the microphone does not alias into the narrowband
//! call. (Its FFT resampler pulls in rustsinc's many SIMD code paths: ~1 MB of binary, and resident
//! memory, for no audible gain at these rates.) A stream interface: push any number of samples in,
//! pull what is ready.

use std::collections::VecDeque;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Resampler as _, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use super::AudioError;

pub struct StreamResampler {
    /// None when the rates are equal.
    sinc: Option<Async<f32>>,
    pending: Vec<f32>,
    ready: VecDeque<f32>,
    scratch: Vec<f32>,
}

impl StreamResampler {
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        let sinc = if from == to {
            None
        } else {
            // 5 ms chunks of input: what waits for a whole chunk is latency (20 ms chunks, a
            // frame, held the microphone's audio up to 20 ms more, by the chunks' phase
            // against the call's ticks: the latency bench's device table, PCMU).
            let chunk = (from / 200).max(1) as usize;
            // The filter delays by half its length at the input rate: 128 taps are 1.3 ms at
            // 48 kHz, but 8 ms at 8 kHz (PCMU to the speaker). From below 32 kHz (a narrowband
            // or wideband codec, or a 16 kHz headset's microphone), 64 taps of a plainer window:
            // 4 ms at 8 kHz, still passing up to 3.5 kHz.
            let parameters = if from >= 32_000 {
                SincInterpolationParameters::new(128, WindowFunction::BlackmanHarris2)
            } else {
                SincInterpolationParameters::new(64, WindowFunction::BlackmanHarris)
            }
            .interpolation(SincInterpolationType::Linear);
            let sinc = Async::<f32>::new_sinc(
                f64::from(to) / f64::from(from),
                1.0,
                &parameters,
                chunk,
                1,
                FixedAsync::Input,
            )
            .map_err(|e| AudioError::Device(format!("resampler {from} → {to} Hz: {e}")))?;
            Some(sinc)
        };
        let scratch = vec![0.0; sinc.as_ref().map_or(0, |f| f.output_frames_max())];
        Ok(Self {
            sinc,
            pending: Vec::new(),
            ready: VecDeque::new(),
            scratch,
        })
    }

    pub fn push(&mut self, samples: &[f32]) {
        let Some(sinc) = &mut self.sinc else {
            self.ready.extend(samples);
            return;
        };
        self.pending.extend_from_slice(samples);
        loop {
            let needed = sinc.input_frames_next();
            if self.pending.len() < needed {
                break;
            }
            let capacity = self.scratch.len();
            let (Ok(input), Ok(mut output)) = (
                InterleavedSlice::new(&self.pending[..needed], 1, needed),
                InterleavedSlice::new_mut(&mut self.scratch, 1, capacity),
            ) else {
                break;
            };
            match sinc.process_into_buffer(&input, &mut output, None) {
                Ok((_, written)) => self.ready.extend(&self.scratch[..written]),
                Err(e) => tracing::debug!("resampler: {e}"),
            }
            self.pending.drain(..needed);
        }
    }

    pub fn available(&self) -> usize {
        self.ready.len()
    }

    /// Fills `out` from what is ready; returns how many samples that was.
    pub fn pull(&mut self, out: &mut [f32]) -> usize {
        let n = out.len().min(self.ready.len());
        for (slot, sample) in out.iter_mut().zip(self.ready.drain(..n)) {
            *slot = sample;
        }
        n
    }

    /// The oldest `n` samples ready (fewer if fewer are).
    pub fn oldest(&self, n: usize) -> impl Iterator<Item = &f32> {
        self.ready.iter().take(n)
    }

    /// Drops the oldest `n` samples ready.
    pub fn drop_oldest(&mut self, n: usize) {
        self.ready.drain(..n.min(self.ready.len()));
    }

    /// Drops what is ready beyond `keep` samples (the device fell behind).
    pub fn trim(&mut self, keep: usize) {
        let excess = self.ready.len().saturating_sub(keep);
        self.ready.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, seconds: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| (i as f32 * 2.0 * std::f32::consts::PI * hz / rate as f32).sin() * 0.5)
            .collect()
    }

    /// Goertzel power of `hz` in `samples`, normalised to the signal's length.
    fn power(samples: &[f32], rate: u32, hz: f32) -> f32 {
        let w = 2.0 * std::f32::consts::PI * hz / rate as f32;
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for x in samples {
            let s = x + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (samples.len() as f32).powi(2)
    }

    fn resample(from: u32, to: u32, input: &[f32]) -> Vec<f32> {
        let mut resampler = StreamResampler::new(from, to).expect("resampler");
        // Pushed in uneven pieces, as a device callback delivers them.
        for piece in input.chunks(441) {
            resampler.push(piece);
        }
        let mut out = vec![0.0; resampler.available()];
        resampler.pull(&mut out);
        out
    }

    #[test]
    fn a_tone_keeps_its_pitch_and_level_both_ways() {
        let down = resample(48000, 8000, &tone(48000, 1000.0, 1.0));
        assert!(
            (7500..=8000).contains(&down.len()),
            "about one second out: {}",
            down.len()
        );
        let steady = &down[800..];
        let level = power(steady, 8000, 1000.0);
        assert!(level > 0.05, "1 kHz survives: {level}");
        let up = resample(8000, 48000, &tone(8000, 1000.0, 1.0));
        assert!((45000..=48000).contains(&up.len()), "{}", up.len());
        let steady = &up[4800..];
        let wanted = power(steady, 48000, 1000.0);
        // Naive upsampling leaves an image at 8000 - 1000 Hz; a band-limited one does not.
        let image = power(steady, 48000, 7000.0);
        assert!(
            wanted > 0.05 && image < wanted / 1000.0,
            "tone {wanted}, image {image}"
        );
    }

    #[test]
    fn content_above_the_new_nyquist_is_filtered_not_aliased() {
        // 5 kHz at 48 kHz would alias to 3 kHz at 8 kHz if decimated naively.
        let down = resample(48000, 8000, &tone(48000, 5000.0, 1.0));
        let steady = &down[800..];
        let alias = power(steady, 8000, 3000.0);
        let reference = power(
            &resample(48000, 8000, &tone(48000, 1000.0, 1.0))[800..],
            8000,
            1000.0,
        );
        assert!(
            alias < reference / 1000.0,
            "alias {alias} vs tone {reference}"
        );
    }

    /// Where a click comes out, in ms after it went in.
    fn click_delay_ms(from: u32, to: u32) -> f64 {
        let mut input = vec![0.0; from as usize / 10];
        input[from as usize / 20] = 1.0;
        let out = resample(from, to, &input);
        let peak = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map_or(0, |(i, _)| i);
        peak as f64 * 1000.0 / f64::from(to) - 50.0
    }

    /// What each direction adds to mouth-to-ear: a few ms, not the 8 ms that 128 taps at
    /// 8 kHz took from PCMU to the speaker.
    #[test]
    fn the_filters_delay_by_a_few_ms() {
        for (from, to, most) in [(8000, 48000, 4.5), (16000, 48000, 2.5), (48000, 8000, 1.5)] {
            let delay = click_delay_ms(from, to);
            assert!((0.0..=most).contains(&delay), "{from} → {to}: {delay} ms");
        }
    }

    #[test]
    fn equal_rates_pass_through() {
        let input = tone(8000, 440.0, 0.1);
        assert_eq!(resample(8000, 8000, &input), input);
    }
}
