//! The `cpal` backend: the agent's real microphone and speaker/headset.
//!
//! cpal streams are not `Send` on every platform, so they live on their own thread. The data
//! callbacks and the call's media task meet in two small buffers (at most 200 ms each, so
//! latency cannot pile up). Rates are converted simply: the microphone is decimated by taking
//! the nearest sample (no low-pass filter, so some aliasing), playback is interpolated linearly.
//! A band-limited resampler (rubato) is the planned upgrade.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SizedSample};

use super::{AudioError, AudioSink, AudioSource, CallAudio};
use crate::config::AudioConfig;

/// Upper bound on buffered audio in each direction.
const MAX_BUFFER_SECONDS: f32 = 0.2;

type Buffer = Arc<Mutex<VecDeque<f32>>>;

/// Device names for `softphone-bridge devices` and `[audio] input`/`output`/`ringer`.
pub struct DeviceList {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub default_input: Option<String>,
    pub default_output: Option<String>,
}

pub fn list() -> DeviceList {
    let host = cpal::default_host();
    DeviceList {
        inputs: host.input_devices().map(|d| d.map(|d| d.to_string()).collect()).unwrap_or_default(),
        outputs: host.output_devices().map(|d| d.map(|d| d.to_string()).collect()).unwrap_or_default(),
        default_input: host.default_input_device().map(|d| d.to_string()),
        default_output: host.default_output_device().map(|d| d.to_string()),
    }
}

/// Opens the configured (or default) input and output devices for one call at `rate` Hz.
pub fn open(config: &AudioConfig, rate: u32) -> Result<CallAudio, AudioError> {
    let capture: Buffer = Arc::default();
    let playback: Buffer = Arc::default();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (input_name, output_name) = (config.input.clone(), config.output.clone());
    let (capture_cb, playback_cb) = (Arc::clone(&capture), Arc::clone(&playback));
    std::thread::Builder::new()
        .name("audio".into())
        .spawn(move || {
            let opened = start_streams(input_name.as_deref(), output_name.as_deref(), capture_cb, playback_cb);
            match opened {
                Ok((streams, rates)) => {
                    let _ = ready_tx.send(Ok(rates));
                    // Keep the streams alive until both ends of the call's audio are dropped.
                    let _ = stop_rx.recv();
                    drop(streams);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| AudioError::Device(e.to_string()))?;
    let (input_rate, output_rate) = ready_rx.recv().map_err(|e| AudioError::Device(e.to_string()))??;
    let stop = Arc::new(stop_tx);
    Ok(CallAudio {
        source: Box::new(DeviceSource { buffer: capture, device_rate: input_rate, rate, _stop: Arc::clone(&stop) }),
        sink: Box::new(DeviceSink { buffer: playback, device_rate: output_rate, rate, _stop: stop }),
    })
}

fn find(devices: Result<impl Iterator<Item = cpal::Device>, cpal::Error>, name: &str) -> Option<cpal::Device> {
    devices.ok()?.find(|d| d.to_string() == name)
}

type Streams = (cpal::Stream, cpal::Stream);

fn start_streams(input: Option<&str>, output: Option<&str>, capture: Buffer, playback: Buffer) -> Result<(Streams, (u32, u32)), AudioError> {
    let host = cpal::default_host();
    let input_device = match input {
        Some(name) => find(host.input_devices(), name).ok_or_else(|| AudioError::Device(format!("no input device named {name:?}")))?,
        None => host.default_input_device().ok_or_else(|| AudioError::Device("no default input device".into()))?,
    };
    let output_device = match output {
        Some(name) => find(host.output_devices(), name).ok_or_else(|| AudioError::Device(format!("no output device named {name:?}")))?,
        None => host.default_output_device().ok_or_else(|| AudioError::Device("no default output device".into()))?,
    };
    let device_error = |e: cpal::Error| AudioError::Device(e.to_string());
    let input_config = input_device.default_input_config().map_err(device_error)?;
    let output_config = output_device.default_output_config().map_err(device_error)?;
    let input_rate = input_config.sample_rate();
    let output_rate = output_config.sample_rate();
    let input_stream = match input_config.sample_format() {
        cpal::SampleFormat::F32 => capture_stream::<f32>(&input_device, &input_config.config(), capture),
        cpal::SampleFormat::I16 => capture_stream::<i16>(&input_device, &input_config.config(), capture),
        cpal::SampleFormat::I32 => capture_stream::<i32>(&input_device, &input_config.config(), capture),
        other => return Err(AudioError::Device(format!("unsupported input sample format {other:?}"))),
    }?;
    let output_stream = match output_config.sample_format() {
        cpal::SampleFormat::F32 => playback_stream::<f32>(&output_device, &output_config.config(), playback),
        cpal::SampleFormat::I16 => playback_stream::<i16>(&output_device, &output_config.config(), playback),
        cpal::SampleFormat::I32 => playback_stream::<i32>(&output_device, &output_config.config(), playback),
        other => return Err(AudioError::Device(format!("unsupported output sample format {other:?}"))),
    }?;
    input_stream.play().map_err(|e| AudioError::Device(e.to_string()))?;
    output_stream.play().map_err(|e| AudioError::Device(e.to_string()))?;
    tracing::info!(input = %input_device, output = %output_device, input_rate, output_rate, "audio devices open");
    Ok(((input_stream, output_stream), (input_rate, output_rate)))
}

fn capture_stream<T>(device: &cpal::Device, config: &cpal::StreamConfig, buffer: Buffer) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    let limit = (config.sample_rate as f32 * MAX_BUFFER_SECONDS) as usize;
    device
        .build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _| {
                let Ok(mut buffer) = buffer.lock() else { return };
                for frame in data.chunks(channels) {
                    let mono = frame.iter().map(|s| f32::from_sample(*s)).sum::<f32>() / frame.len() as f32;
                    buffer.push_back(mono);
                }
                let excess = buffer.len().saturating_sub(limit);
                buffer.drain(..excess);
            },
            |e| tracing::warn!("microphone: {e}"),
            None,
        )
        .map_err(|e| AudioError::Device(e.to_string()))
}

fn playback_stream<T>(device: &cpal::Device, config: &cpal::StreamConfig, buffer: Buffer) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels.max(1));
    device
        .build_output_stream::<T, _, _>(
            *config,
            move |data: &mut [T], _| {
                let mut buffer = buffer.lock().ok();
                for frame in data.chunks_mut(channels) {
                    let value = buffer.as_mut().and_then(|b| b.pop_front()).unwrap_or(0.0);
                    frame.fill(T::from_sample(value));
                }
            },
            |e| tracing::warn!("speaker: {e}"),
            None,
        )
        .map_err(|e| AudioError::Device(e.to_string()))
}

struct DeviceSource {
    buffer: Buffer,
    device_rate: u32,
    rate: u32,
    _stop: Arc<mpsc::Sender<()>>,
}

impl AudioSource for DeviceSource {
    fn read(&mut self, frame: &mut [i16]) {
        let needed = (frame.len() as u64 * u64::from(self.device_rate) / u64::from(self.rate.max(1))) as usize;
        let captured: Vec<f32> = match self.buffer.lock() {
            Ok(mut buffer) => {
                let take = needed.min(buffer.len());
                buffer.drain(..take).collect()
            }
            Err(_) => Vec::new(),
        };
        // Too little captured (start-up, a slow device): the rest of the frame is silence.
        for (i, sample) in frame.iter_mut().enumerate() {
            let position = i as f64 * f64::from(self.device_rate) / f64::from(self.rate.max(1));
            let value = captured.get(position as usize).copied().unwrap_or(0.0);
            *sample = (value.clamp(-1.0, 1.0) * 32767.0) as i16;
        }
    }
}

struct DeviceSink {
    buffer: Buffer,
    device_rate: u32,
    rate: u32,
    _stop: Arc<mpsc::Sender<()>>,
}

impl AudioSink for DeviceSink {
    fn write(&mut self, samples: &[i16]) {
        if samples.is_empty() {
            return;
        }
        let out_len = samples.len() * self.device_rate as usize / self.rate.max(1) as usize;
        let step = f64::from(self.rate) / f64::from(self.device_rate.max(1));
        let limit = (self.device_rate as f32 * MAX_BUFFER_SECONDS) as usize;
        let Ok(mut buffer) = self.buffer.lock() else { return };
        for i in 0..out_len {
            let position = i as f64 * step;
            let index = position as usize;
            let fraction = (position - index as f64) as f32;
            let a = f32::from(samples[index.min(samples.len() - 1)]) / 32768.0;
            let b = f32::from(samples[(index + 1).min(samples.len() - 1)]) / 32768.0;
            buffer.push_back(a + (b - a) * fraction);
        }
        let excess = buffer.len().saturating_sub(limit);
        buffer.drain(..excess);
    }

    fn finish(self: Box<Self>) {}
}
