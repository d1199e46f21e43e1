//! Audio for calls: a source (the agent's microphone) and a sink (what the agent hears), at the
//! codec's sample rate, mono 16-bit.
//!
//! Backends: `cpal` (the agent's devices, `device.rs`, whose queues `backlog.rs` keeps from
//! holding delay they do not need; feature `devices`, on by default) and
//! `file` (a WAV looped as the microphone, a WAV recording of the far end — tests and headless
//! use). When no device can be opened the call still goes through, silent, with a warning.
//! Between the backend and the call sits voice processing on the microphone (`voice.rs`).

#[cfg(feature = "devices")]
mod backlog;
pub mod check;
#[cfg(feature = "devices")]
pub mod device;
mod file;
#[cfg(feature = "devices")]
mod resample;
pub mod ringer;
pub mod voice;

pub use file::{WavSink, WavSource};

use std::path::PathBuf;

use crate::config::{AudioBackend, AudioConfig};

pub trait AudioSource: Send {
    /// Fills `frame` with the next samples.
    fn read(&mut self, frame: &mut [i16]);
}

pub trait AudioSink: Send {
    fn write(&mut self, samples: &[i16]);
    /// Flushes and closes (a WAV header is rewritten with the final length).
    fn finish(self: Box<Self>);
}

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("audio device: {0}")]
    Device(String),
}

/// Told the devices a call's audio runs on: when they open, and (`true`) each time they change
/// during the call.
pub type InUseReport = Box<dyn FnMut(crate::protocol::DevicesInUse, bool) + Send>;

/// One call's audio ends.
pub struct CallAudio {
    pub source: Box<dyn AudioSource>,
    pub sink: Box<dyn AudioSink>,
    /// Why the call has no working device (silence stands in for it), for the call to say so
    /// rather than look healthy.
    pub unavailable: Option<String>,
}

impl CallAudio {
    /// No device: silence in, nothing out, and why.
    pub fn unavailable(reason: String) -> Self {
        Self {
            source: Box::new(Silence),
            sink: Box::new(Discard),
            unavailable: Some(reason),
        }
    }
}

/// Opens a source and a sink for one call at `rate` Hz, with the voice processing `config`
/// asks for on the microphone; `report` hears which devices (the cpal backend) are in use.
pub fn open_for_call(
    config: &AudioConfig,
    rate: u32,
    report: Option<InUseReport>,
) -> Result<CallAudio, AudioError> {
    let audio = open_backend(config, rate, report)?;
    let audio = match (config.backend, config.file_echo_db) {
        (AudioBackend::File, Some(db)) => file::speakerphone(audio, rate, db),
        _ => audio,
    };
    Ok(voice::wrap(audio, rate, config.voice_settings()))
}

fn open_backend(
    config: &AudioConfig,
    rate: u32,
    #[cfg_attr(not(feature = "devices"), allow(unused_variables))] report: Option<InUseReport>,
) -> Result<CallAudio, AudioError> {
    match config.backend {
        AudioBackend::File => {
            let source: Box<dyn AudioSource> = match &config.input_file {
                Some(path) => Box::new(WavSource::open(path, rate)?),
                None => Box::new(Silence),
            };
            let sink: Box<dyn AudioSink> = match &config.output_file {
                Some(path) => Box::new(WavSink::create(path, rate)?),
                None => Box::new(Discard),
            };
            Ok(CallAudio {
                source,
                sink,
                unavailable: None,
            })
        }
        #[cfg(feature = "devices")]
        AudioBackend::Cpal => match device::open(config, rate, report) {
            Ok(audio) => Ok(audio),
            Err(e) => {
                tracing::warn!("{e}; this call has no audio (see `softphone-bridge devices`)");
                Ok(CallAudio::unavailable(e.to_string()))
            }
        },
        #[cfg(not(feature = "devices"))]
        AudioBackend::Cpal => {
            tracing::warn!(
                "built without the `devices` feature; this call has no audio (use [audio] backend = \"file\")"
            );
            Ok(CallAudio::unavailable(
                "this build has no audio devices (the `devices` feature)".into(),
            ))
        }
    }
}

pub struct Silence;

impl AudioSource for Silence {
    fn read(&mut self, frame: &mut [i16]) {
        frame.fill(0);
    }
}

pub struct Discard;

impl AudioSink for Discard {
    fn write(&mut self, _samples: &[i16]) {}
    fn finish(self: Box<Self>) {}
}
