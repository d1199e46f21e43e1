//! The processor on known signals: a speech-like far end fed back into the microphone at
//! −10 dB, near-end speech alone, and a noise bed.

use super::*;

/// A speech-like signal: voiced harmonics under two moving formants, in syllables (about four
/// a second) with pauses, at `level` RMS while voiced. `voice` picks a pitch and a pattern, so
/// two voices differ.
pub(crate) fn speech(voice: u32, seconds: f32, rate: u32, level: f32) -> Vec<f32> {
    let n = (seconds * rate as f32) as usize;
    let mut random = 0x9E37_79B9u32.wrapping_mul(voice + 1);
    let mut next = move || {
        random ^= random << 13;
        random ^= random >> 17;
        random ^= random << 5;
        (random % 1000) as f32 / 1000.0
    };
    let base = 100.0 + 40.0 * voice as f32;
    let mut phase = 0.0f32;
    let mut out = Vec::with_capacity(n);
    let syllable = (rate as f32 * 0.18) as usize;
    let (mut f1, mut f2, mut on) = (500.0, 1500.0, true);
    for i in 0..n {
        if i % syllable == 0 {
            f1 = 300.0 + 500.0 * next();
            f2 = 900.0 + 1600.0 * next();
            on = next() > 0.3;
        }
        let t = i as f32 / rate as f32;
        let f0 = base * (1.0 + 0.1 * (2.0 * std::f32::consts::PI * 3.0 * t).sin());
        phase += f0 / rate as f32;
        let mut value = 0.0;
        let harmonics = (3400.0 / f0) as usize;
        for k in 1..=harmonics {
            let f = k as f32 * f0;
            let gain =
                1.0 / (1.0 + ((f - f1) / 120.0).powi(2)) + 0.6 / (1.0 + ((f - f2) / 180.0).powi(2));
            value += gain * (2.0 * std::f32::consts::PI * k as f32 * phase).sin();
        }
        // Soft syllable edges.
        let within = (i % syllable) as f32 / syllable as f32;
        let envelope = if on {
            (std::f32::consts::PI * within).sin()
        } else {
            0.0
        };
        out.push(value * envelope);
    }
    scale_to(&mut out, level);
    out
}

/// Scales so the active part's RMS is `level`.
fn scale_to(signal: &mut [f32], level: f32) {
    let active: Vec<f32> = signal.iter().copied().filter(|s| s.abs() > 1e-4).collect();
    let rms = (active.iter().map(|s| s * s).sum::<f32>() / active.len().max(1) as f32).sqrt();
    if rms > 0.0 {
        signal.iter_mut().for_each(|s| *s *= level / rms);
    }
}

/// White noise at `level` RMS.
fn noise(seconds: f32, rate: u32, level: f32) -> Vec<f32> {
    let mut random = 12345u32;
    (0..(seconds * rate as f32) as usize)
        .map(|_| {
            random = random.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((random >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * level * 3f32.sqrt()
        })
        .collect()
}

/// A small room: the direct sound 30 ms late, two reflections, `gain_db` overall.
fn room(far: &[f32], rate: u32, gain_db: f32) -> Vec<f32> {
    let gain = 10f32.powf(gain_db / 20.0);
    let taps = [(0.030, 1.0), (0.037, 0.35), (0.051, -0.2)];
    let norm = taps
        .iter()
        .map(|(_, a): &(f32, f32)| a * a)
        .sum::<f32>()
        .sqrt();
    (0..far.len())
        .map(|i| {
            taps.iter()
                .map(|(delay, a)| {
                    let d = (delay * rate as f32) as usize;
                    i.checked_sub(d).map_or(0.0, |j| far[j] * a)
                })
                .sum::<f32>()
                * gain
                / norm
        })
        .collect()
}

fn to_i16(signal: &[f32]) -> Vec<i16> {
    signal
        .iter()
        .map(|s| (s.clamp(-1.0, 1.0) * 32767.0) as i16)
        .collect()
}

fn energy(samples: &[i16]) -> f64 {
    samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() + 1e-9
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

/// Runs `far` (what the agent hears) and `mic` (what the microphone picks up) through a
/// processor 20 ms at a time, as a call's media loop does; returns what would be sent.
pub(crate) fn run(rate: u32, settings: VoiceSettings, far: &[f32], mic: &[f32]) -> Vec<i16> {
    let mut processor = VoiceProcessor::new(rate, settings).expect("processor");
    let frame = rate as usize / 50;
    let (far, mic) = (to_i16(far), to_i16(mic));
    let mut out = Vec::with_capacity(mic.len());
    for (far, mic) in far.chunks(frame).zip(mic.chunks(frame)) {
        processor.render(far);
        let mut frame = mic.to_vec();
        processor.capture(&mut frame);
        out.extend(frame);
    }
    out
}

/// Echo return loss enhancement over `range` (seconds) where the far end speaks: how much
/// quieter the processed microphone is than the echo alone.
fn erle(rate: u32, echo: &[f32], out: &[i16], range: std::ops::Range<f32>) -> f64 {
    let span = (range.start * rate as f32) as usize..(range.end * rate as f32) as usize;
    db(energy(&to_i16(&echo[span.clone()])) / energy(&out[span]))
}

#[test]
fn a_far_end_fed_back_at_minus_10_db_is_cancelled_by_20_db_and_near_end_speech_passes() {
    for rate in [8_000, 16_000, 48_000] {
        // 8 s of the far end alone, then 4 s of the agent alone.
        let far: Vec<f32> = speech(0, 8.0, rate, 0.1)
            .into_iter()
            .chain(std::iter::repeat_n(0.0, 4 * rate as usize))
            .collect();
        let echo = room(&far, rate, -10.0);
        let near: Vec<f32> = std::iter::repeat_n(0.0, 8 * rate as usize)
            .chain(speech(1, 4.0, rate, 0.05))
            .collect();
        let mic: Vec<f32> = echo.iter().zip(&near).map(|(e, n)| e + n).collect();
        let out = run(rate, VoiceSettings::ALL, &far, &mic);

        let erle = erle(rate, &echo, &out, 3.0..8.0);
        assert!(erle >= 20.0, "{rate} Hz: ERLE {erle:.1} dB after 3 s");
        let span = 9 * rate as usize..12 * rate as usize;
        let passed = db(energy(&out[span.clone()]) / energy(&to_i16(&near[span])));
        assert!(
            passed > -3.0,
            "{rate} Hz: near-end speech kept {passed:.1} dB of its level"
        );
    }
}

/// On hold, or while digits go out, the far end is still played but the microphone is not
/// read: that far end must not stay queued ahead of the echo for the rest of the call.
#[test]
fn far_end_played_while_the_microphone_was_not_read_does_not_derail_the_canceller() {
    let rate = 16_000;
    let far = speech(0, 10.0, rate, 0.1);
    let echo = room(&far, rate, -10.0);
    let mut processor = VoiceProcessor::new(rate, VoiceSettings::ALL).expect("processor");
    let frame = rate as usize / 50;
    let (far, echo_i16) = (to_i16(&far), to_i16(&echo));
    let mut out = Vec::new();
    for (n, (far, mic)) in far.chunks(frame).zip(echo_i16.chunks(frame)).enumerate() {
        processor.render(far);
        // 200 ms without the microphone at 1 s (ten frames, like two digits sent).
        if (50..60).contains(&n) {
            out.extend(std::iter::repeat_n(0, frame));
            continue;
        }
        let mut frame = mic.to_vec();
        processor.capture(&mut frame);
        out.extend(frame);
    }
    let erle = erle(rate, &echo, &out, 5.0..10.0);
    assert!(
        erle >= 20.0,
        "ERLE {erle:.1} dB after a gap in the microphone"
    );
}

#[test]
fn echo_passes_when_echo_cancellation_is_off() {
    let rate = 16_000;
    let far = speech(0, 6.0, rate, 0.1);
    let echo = room(&far, rate, -10.0);
    let off = VoiceSettings {
        echo_cancellation: false,
        ..VoiceSettings::ALL
    };
    let out = run(rate, off, &far, &echo);
    let erle = erle(rate, &echo, &out, 3.0..6.0);
    assert!(
        erle < 6.0,
        "without the canceller the echo stays: {erle:.1} dB"
    );
}

/// Noise suppression judged as the voice-to-noise ratio gained (so the gain control's lift,
/// which applies to both, does not count either way).
#[test]
fn a_noise_bed_is_reduced_against_the_voice() {
    let rate = 16_000;
    // A fan's hiss at −40 dBFS under the agent's voice at −26 dBFS; judged after 3 s.
    let bed = noise(8.0, rate, 0.01);
    let voice = speech(1, 8.0, rate, 0.05);
    let mic: Vec<f32> = bed.iter().zip(&voice).map(|(b, v)| b + v).collect();
    let silent = vec![0.0; mic.len()];
    let frame = rate as usize / 50;
    let ratio = |out: &[i16]| {
        let (mut voiced, mut pauses) = (0.0, 0.0);
        for (i, chunk) in voice.chunks(frame).enumerate().skip(150) {
            let e = energy(&out[i * frame..(i + 1) * frame]);
            if chunk.iter().all(|s| *s == 0.0) {
                pauses += e;
            } else if chunk.iter().filter(|s| s.abs() > 0.01).count() > frame / 2 {
                voiced += e;
            }
        }
        db(voiced / pauses)
    };
    let before = ratio(&to_i16(&mic));
    let after = ratio(&run(rate, VoiceSettings::ALL, &silent, &mic));
    assert!(
        after - before >= 6.0,
        "voice over noise {before:.1} dB before, {after:.1} dB after"
    );

    // The hiss alone, without the gain control: at least 10 dB lower once the estimate settles.
    let suppressor = VoiceSettings {
        gain_control: false,
        ..VoiceSettings::ALL
    };
    let out = run(rate, suppressor, &silent, &bed);
    let reduced = erle(rate, &bed, &out, 2.0..8.0);
    assert!(reduced >= 10.0, "the hiss alone is {reduced:.1} dB lower");
}

#[test]
fn rates_the_module_does_not_run_at_are_refused() {
    assert!(matches!(
        VoiceProcessor::new(44_100, VoiceSettings::ALL),
        Err(VoiceError::Rate(44_100))
    ));
}
