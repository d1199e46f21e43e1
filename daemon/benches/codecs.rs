//! What each codec costs per call (not a test: it prints figures, asserts nothing about speed).
//!
//!     cargo bench -p softphone-bridge --bench codecs      (or ./dev bench)
//!
//! For PCMU, G.722 and Opus: CPU time to encode and decode one 20 ms frame of a speech-like
//! signal (a few harmonics with a changing pitch), as one call does 50 times a second each way,
//! and what that is as a share of one core for a call.

mod measure;

use std::time::{Duration, Instant};

use measure::speech_like;
use softphone_bridge::media::codec::{AudioCodec, CodecState};

/// Ten seconds of audio per codec, measured five times; the median run is printed.
const SECONDS: usize = 10;
const RUNS: usize = 5;

fn main() {
    println!("codec  encode+decode per 20 ms frame  one call's share of a core  payload per frame");
    for codec in [AudioCodec::Pcmu, AudioCodec::G722, AudioCodec::Opus] {
        let signal = speech_like(codec.sample_rate(), SECONDS, false);
        let frames = signal.len() / codec.samples_per_frame();
        let mut runs: Vec<Duration> = Vec::new();
        let mut payload = 0;
        for _ in 0..RUNS {
            let mut encoder = CodecState::new(codec).expect("codec");
            let mut decoder = CodecState::new(codec).expect("codec");
            let (mut encoded, mut decoded) = (Vec::new(), Vec::new());
            let started = Instant::now();
            for frame in signal.chunks_exact(codec.samples_per_frame()) {
                encoder.encode(frame, &mut encoded);
                decoder.decode(&encoded, &mut decoded);
                payload = encoded.len();
                std::hint::black_box(&decoded);
            }
            runs.push(started.elapsed());
        }
        runs.sort();
        let per_frame = runs[RUNS / 2] / frames as u32;
        // 50 frames a second each way.
        let share = per_frame.as_secs_f64() * 50.0 * 100.0;
        println!(
            "{:<6} {:>10.1} µs {:>27.3} % {:>15} bytes",
            codec.name(),
            per_frame.as_secs_f64() * 1e6,
            share,
            payload
        );
    }
}
