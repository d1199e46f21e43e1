//! What voice processing costs per call (not a test: it prints figures, asserts nothing about
//! speed).
//!
//!     cargo bench -p softphone-bridge --bench voice      (or ./dev bench)
//!
//! At each rate a call runs at (8 kHz PCMU/PCMA, 16 kHz G.722, 48 kHz Opus): CPU time to
//! process one 20 ms microphone frame against the far end (echo cancellation, noise
//! suppression, gain control, and each alone), and that as a share of one core, for a
//! speech-like far end echoed into the microphone at −10 dB.

mod measure;

use std::time::{Duration, Instant};

use measure::speech_like;
use softphone_bridge::audio::voice::{VoiceProcessor, VoiceSettings};

/// Ten seconds of audio per setting, measured three times; the median run is printed.
const SECONDS: usize = 10;
const RUNS: usize = 3;

fn main() {
    let stages = [
        ("all three", VoiceSettings::ALL),
        (
            "echo cancellation",
            VoiceSettings {
                echo_cancellation: true,
                noise_suppression: false,
                gain_control: false,
            },
        ),
        (
            "noise suppression",
            VoiceSettings {
                echo_cancellation: false,
                noise_suppression: true,
                gain_control: false,
            },
        ),
        (
            "gain control",
            VoiceSettings {
                echo_cancellation: false,
                noise_suppression: false,
                gain_control: true,
            },
        ),
    ];
    println!("rate      stages              per 20 ms frame  one call's share of a core");
    for rate in [8_000u32, 16_000, 48_000] {
        let far = speech_like(rate, SECONDS, true);
        // The echo: 30 ms late, 10 dB down.
        let delay = rate as usize * 30 / 1000;
        let mic: Vec<i16> = (0..far.len())
            .map(|i| {
                i.checked_sub(delay)
                    .map_or(0, |j| (f32::from(far[j]) * 0.316) as i16)
            })
            .collect();
        let frame = rate as usize / 50;
        for (name, settings) in stages {
            let mut runs: Vec<Duration> = Vec::new();
            for _ in 0..RUNS {
                let mut processor = VoiceProcessor::new(rate, settings).expect("processor");
                let mut buffer = vec![0i16; frame];
                let started = Instant::now();
                for (far, mic) in far.chunks_exact(frame).zip(mic.chunks_exact(frame)) {
                    processor.render(far);
                    buffer.copy_from_slice(mic);
                    processor.capture(&mut buffer);
                    std::hint::black_box(&buffer);
                }
                runs.push(started.elapsed());
            }
            runs.sort();
            let per_frame = runs[RUNS / 2] / (far.len() / frame) as u32;
            println!(
                "{:>5} Hz  {:<18} {:>10.1} µs {:>26.2} %",
                rate,
                name,
                per_frame.as_secs_f64() * 1e6,
                per_frame.as_secs_f64() * 50.0 * 100.0
            );
        }
    }
}
