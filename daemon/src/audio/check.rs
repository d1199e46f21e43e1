//! The agent's device check: a test tone on the output while the microphone's level is measured
//! — what a settings page's "Test audio" does, with no call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::AudioSource;
use crate::config::AudioConfig;

/// The check runs at Opus's rate (devices resample to it).
const RATE: u32 = 48_000;
/// One frame: 20 ms.
const FRAME: usize = RATE as usize / 50;
/// Levels sent per second.
const LEVELS_PER_SECOND: usize = 10;
/// The tone: 1 kHz at −12 dBFS, clearly audible, not loud.
const TONE_HZ: f32 = 1000.0;
const TONE_AMPLITUDE: f32 = 0.25;
/// Quieter than anything: what silence measures as.
pub const SILENCE_DBFS: f32 = -100.0;

/// Plays the tone and measures the microphone for `seconds` on a thread of its own; sends the
/// microphone's RMS level in dBFS ten times a second, then closes `levels`. Devices that do not
/// open are reported as one `Err` with the reason. Setting `stop` ends it at the next frame (a
/// call came in: the devices are the call's).
pub fn run(
    config: AudioConfig,
    seconds: u32,
    levels: tokio::sync::mpsc::Sender<Result<f32, String>>,
    stop: Arc<AtomicBool>,
) {
    let spawned = std::thread::Builder::new()
        .name("audio-check".into())
        .spawn(move || {
            let audio = match super::open_backend(&config, RATE, None) {
                Ok(audio) => audio,
                Err(e) => {
                    let _ = levels.blocking_send(Err(e.to_string()));
                    return;
                }
            };
            if let Some(reason) = audio.unavailable {
                let _ = levels.blocking_send(Err(reason));
                return;
            }
            let (mut source, mut sink) = (audio.source, audio.sink);
            let frames = seconds as usize * 50;
            let per_level = 50 / LEVELS_PER_SECOND;
            let (mut input, mut tone) = (vec![0i16; FRAME], vec![0i16; FRAME]);
            let mut phase = 0.0f32;
            let (mut energy, mut counted) = (0.0f64, 0usize);
            let started = Instant::now();
            for frame in 0..frames {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                for sample in tone.iter_mut() {
                    *sample =
                        (TONE_AMPLITUDE * 32767.0 * (std::f32::consts::TAU * phase).sin()) as i16;
                    phase = (phase + TONE_HZ / RATE as f32).fract();
                }
                sink.write(&tone);
                read_level(source.as_mut(), &mut input, &mut energy, &mut counted);
                if (frame + 1) % per_level == 0 {
                    if levels.blocking_send(Ok(dbfs(energy, counted))).is_err() {
                        break;
                    }
                    (energy, counted) = (0.0, 0);
                }
                // Paced like a call: one frame every 20 ms.
                let due = started + Duration::from_millis(20 * (frame as u64 + 1));
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            sink.finish();
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot check the audio devices: {e}");
    }
}

fn read_level(
    source: &mut dyn AudioSource,
    frame: &mut [i16],
    energy: &mut f64,
    counted: &mut usize,
) {
    source.read(frame);
    *energy += energy_of(frame);
    *counted += frame.len();
}

/// The samples' energy at full scale 1: what [`dbfs`] takes, summed over as many frames as wanted.
pub fn energy_of(samples: &[i16]) -> f64 {
    samples
        .iter()
        .map(|s| (f64::from(*s) / 32768.0).powi(2))
        .sum()
}

/// RMS level in dBFS (a full-scale square wave is 0), rounded to 0.1 dB.
pub fn dbfs(energy: f64, samples: usize) -> f32 {
    if samples == 0 || energy <= 0.0 {
        return SILENCE_DBFS;
    }
    let level = 10.0 * (energy / samples as f64).log10();
    ((level.max(f64::from(SILENCE_DBFS)) * 10.0).round() / 10.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_rms_dbfs() {
        // A sine at half scale: RMS 0.354, −9.0 dBFS.
        let n = 4800;
        let energy: f64 = (0..n).map(|i| (0.5 * (i as f64 * 0.1).sin()).powi(2)).sum();
        assert!((dbfs(energy, n) + 9.0).abs() < 0.2, "{}", dbfs(energy, n));
        assert_eq!(dbfs(0.0, n), SILENCE_DBFS);
        assert_eq!(dbfs(1.0, 0), SILENCE_DBFS);
    }
}
