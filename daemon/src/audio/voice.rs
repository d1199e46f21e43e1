//! Voice processing on the microphone path: acoustic echo cancellation, noise suppression and
//! automatic gain control (WebRTC's audio processing module as the `aec3` crate ports it).
//!
//! Sans-IO: [`VoiceProcessor`] takes what the agent is about to hear ([`VoiceProcessor::render`])
//! and what the microphone picked up ([`VoiceProcessor::capture`], processed in place), at the
//! call's rate, and keeps no clock of its own: the call's media loop paces both. [`wrap`] puts
//! one processor between a call's source and sink.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Duration;

use aec3::api::{EchoCanceller3Config, EchoControl};
use aec3::audio_processing::aec3::echo_canceller3::EchoCanceller3;
use aec3::audio_processing::audio_buffer::AudioBuffer;
use aec3::audio_processing::gain_controller2::{GainController2, GainController2Config};
use aec3::audio_processing::ns::{NoiseSuppressor, NsConfig};
use aec3::audio_processing::stream_config::StreamConfig;

use super::{AudioSink, AudioSource, CallAudio};

/// Which stages run (`[audio] echo_cancellation`, `noise_suppression`, `gain_control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoiceSettings {
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub gain_control: bool,
}

impl VoiceSettings {
    pub const ALL: Self = Self {
        echo_cancellation: true,
        noise_suppression: true,
        gain_control: true,
    };

    pub fn any(self) -> bool {
        self.echo_cancellation || self.noise_suppression || self.gain_control
    }
}

/// The far end played ahead of the microphone beyond this is dropped (the speaker's buffer
/// is bounded too): the echo canceller sees one render chunk per capture chunk.
const MAX_RENDER_CHUNKS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("voice processing does not support {0} Hz")]
    Rate(u32),
}

/// One call's voice processing at the call's rate, in the order WebRTC's module runs it: the
/// echo canceller and the noise suppressor on the frequency bands, gain control on the result.
pub struct VoiceProcessor {
    echo: Option<EchoCanceller3>,
    noise: Option<NoiseSuppressor>,
    gain: Option<GainController2>,
    /// Processing rate over call rate: 1, or 2 for 8 kHz calls (the module runs at 16, 32 or
    /// 48 kHz).
    factor: usize,
    /// Samples of one 10 ms chunk at the call's rate.
    chunk: usize,
    stream: StreamConfig,
    render_buffer: AudioBuffer,
    capture_buffer: AudioBuffer,
    /// Far-end audio not yet given to the echo canceller, at the processing rate.
    render: VecDeque<f32>,
    scratch: Vec<f32>,
}

impl VoiceProcessor {
    /// How many times the call's rate the module runs at (it runs at 16, 32 or 48 kHz).
    fn check_rate(rate: u32) -> Result<usize, VoiceError> {
        match rate {
            8_000 => Ok(2),
            16_000 | 32_000 | 48_000 => Ok(1),
            other => Err(VoiceError::Rate(other)),
        }
    }

    pub fn new(rate: u32, settings: VoiceSettings) -> Result<Self, VoiceError> {
        let factor = Self::check_rate(rate)?;
        let inner = rate as usize * factor;
        let buffer = || AudioBuffer::from_sample_rates(inner, 1, inner, 1, inner);
        let gain = settings.gain_control.then(|| {
            let mut config = GainController2Config::default();
            // No analog microphone volume to steer: the digital gain alone.
            config.input_volume_controller.enabled = false;
            GainController2::new(config, Default::default(), inner, 1, true)
        });
        Ok(Self {
            echo: settings
                .echo_cancellation
                .then(|| EchoCanceller3::new(EchoCanceller3Config::default(), inner as i32, 1, 1)),
            noise: settings.noise_suppression.then(|| {
                NoiseSuppressor::new(
                    NsConfig {
                        target_level: aec3::audio_processing::ns::SuppressionLevel::K18dB,
                        ..NsConfig::default()
                    },
                    inner,
                    1,
                )
            }),
            gain,
            factor,
            chunk: rate as usize / 100,
            stream: StreamConfig::new(inner, 1, false),
            render_buffer: buffer(),
            capture_buffer: buffer(),
            render: VecDeque::new(),
            scratch: Vec::new(),
        })
    }

    /// What the agent is about to hear: the echo the microphone may pick up.
    pub fn render(&mut self, samples: &[i16]) {
        if self.echo.is_none() {
            return;
        }
        self.scratch.clear();
        upsample(samples, self.factor, &mut self.scratch);
        self.render.extend(self.scratch.drain(..));
        let limit = MAX_RENDER_CHUNKS * self.chunk * self.factor;
        let excess = self.render.len().saturating_sub(limit);
        self.render.drain(..excess);
    }

    /// Processes the microphone's `frame` in place, in whole 10 ms chunks (a call's frames
    /// are 20 ms; a remainder shorter than a chunk passes unprocessed).
    pub fn capture(&mut self, frame: &mut [i16]) {
        let size = self.chunk * self.factor;
        // Far end played while the microphone was not read (hold, digits being sent) is older
        // than anything this frame can echo: pairing it would leave the canceller behind for
        // the rest of the call. Keep one frame's worth, the newest.
        let keep = frame.len() / self.chunk * size;
        let stale = self.render.len().saturating_sub(keep);
        self.render.drain(..stale);
        for part in frame.chunks_exact_mut(self.chunk) {
            if let Some(echo) = self.echo.as_mut() {
                // One render chunk per capture chunk; none played: silence.
                self.scratch.clear();
                if self.render.len() >= size {
                    self.scratch.extend(self.render.drain(..size));
                } else {
                    self.scratch.resize(size, 0.0);
                }
                self.render_buffer.copy_from(&[&self.scratch], &self.stream);
                self.render_buffer.split_into_frequency_bands();
                echo.analyze_render(&mut self.render_buffer);
            }
            self.scratch.clear();
            upsample(part, self.factor, &mut self.scratch);
            let capture = &mut self.capture_buffer;
            capture.copy_from(&[&self.scratch], &self.stream);
            if let Some(echo) = self.echo.as_mut() {
                echo.analyze_capture(capture);
            }
            capture.split_into_frequency_bands();
            if let Some(echo) = self.echo.as_mut() {
                echo.process_capture(capture, false);
            }
            if let Some(noise) = self.noise.as_mut() {
                noise.analyze(capture);
                noise.process(capture);
            }
            capture.merge_frequency_bands();
            if let Some(gain) = self.gain.as_mut() {
                gain.process(false, capture);
            }
            capture.copy_to_stream(&self.stream, &mut [&mut self.scratch[..]]);
            downsample(&self.scratch, self.factor, part);
        }
    }
}

/// `i16` to the module's `[-1, 1]` floats, `factor` times the rate (linear interpolation: the
/// call's audio has nothing above its own Nyquist to lose).
fn upsample(samples: &[i16], factor: usize, out: &mut Vec<f32>) {
    let mut previous = None;
    for sample in samples {
        let value = f32::from(*sample) / 32768.0;
        if factor == 2 {
            out.push(previous.map_or(value, |p: f32| (p + value) / 2.0));
        }
        out.push(value);
        previous = Some(value);
    }
}

/// Back to the call's rate and `i16` (a pair's mean: a mild low-pass before decimating).
fn downsample(samples: &[f32], factor: usize, out: &mut [i16]) {
    for (slot, group) in out.iter_mut().zip(samples.chunks(factor)) {
        let value = group.iter().sum::<f32>() / group.len() as f32;
        *slot = (value.clamp(-1.0, 1.0) * 32767.0) as i16;
    }
}

/// Puts a processor between `audio`'s source and sink: the sink tells it what is played, the
/// source processes against that. With no stage on, or at a rate the module does not run at,
/// the call's audio is left as it is.
///
/// The module's state is not `Send` (it keeps trait objects without the bound), so each call's
/// processor lives on a thread of its own, fed in order through one channel; the microphone's
/// frame comes back processed, or as it was should that thread be gone.
pub fn wrap(audio: CallAudio, rate: u32, settings: VoiceSettings) -> CallAudio {
    if !settings.any() {
        return audio;
    }
    if let Err(e) = VoiceProcessor::check_rate(rate) {
        tracing::warn!("{e}; this call's microphone is not processed");
        return audio;
    }
    let (jobs, inbox) = mpsc::sync_channel::<Job>(JOBS);
    let (processed_tx, processed) = mpsc::sync_channel(JOBS);
    let spawned = std::thread::Builder::new()
        .name("voice".into())
        .spawn(move || {
            let Ok(mut processor) = VoiceProcessor::new(rate, settings) else {
                return;
            };
            // Ends when the call's source and sink are both dropped.
            while let Ok(job) = inbox.recv() {
                match job {
                    Job::Render(samples) => processor.render(&samples),
                    Job::Capture(number, mut frame) => {
                        processor.capture(&mut frame);
                        if processed_tx.send((number, frame)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("voice processing: {e}; this call's microphone is not processed");
        return audio;
    }
    CallAudio {
        source: Box::new(ProcessedSource {
            inner: audio.source,
            jobs: jobs.clone(),
            processed,
            frames: 0,
        }),
        sink: Box::new(RenderTap {
            inner: audio.sink,
            jobs,
        }),
        unavailable: audio.unavailable,
    }
}

/// Frames queued for the processor's thread, either way; a thread that falls this far behind
/// loses frames rather than delaying the call.
const JOBS: usize = 16;
/// How long the call's media loop waits for its processed frame before sending it as it was
/// (the processing takes about 0.3 ms; a starved thread must not stall the call).
const PROCESSED_WITHIN: Duration = Duration::from_millis(10);

enum Job {
    Render(Vec<i16>),
    /// A microphone frame and its number, so a late reply is never taken for a later frame.
    Capture(u64, Vec<i16>),
}

struct ProcessedSource {
    inner: Box<dyn AudioSource>,
    jobs: mpsc::SyncSender<Job>,
    processed: mpsc::Receiver<(u64, Vec<i16>)>,
    frames: u64,
}

impl AudioSource for ProcessedSource {
    fn read(&mut self, frame: &mut [i16]) {
        self.inner.read(frame);
        self.frames += 1;
        if self
            .jobs
            .try_send(Job::Capture(self.frames, frame.to_vec()))
            .is_err()
        {
            return;
        }
        let deadline = std::time::Instant::now() + PROCESSED_WITHIN;
        while let Ok((number, processed)) = self
            .processed
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            if number == self.frames {
                if processed.len() == frame.len() {
                    frame.copy_from_slice(&processed);
                }
                return;
            }
        }
    }
}

struct RenderTap {
    inner: Box<dyn AudioSink>,
    jobs: mpsc::SyncSender<Job>,
}

impl AudioSink for RenderTap {
    fn write(&mut self, samples: &[i16]) {
        let _ = self.jobs.try_send(Job::Render(samples.to_vec()));
        self.inner.write(samples);
    }

    fn finish(self: Box<Self>) {
        self.inner.finish();
    }
}

#[cfg(test)]
mod tests;
