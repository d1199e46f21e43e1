//! The ring tone for incoming calls, played on the ringer device (`[audio] ringer`, else the
//! output device) so an agent wearing a headset still hears the desk speaker ring — or, with the
//! file backend, written to `[audio] ringer_file`.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::AudioSink;
use crate::config::{AudioBackend, AudioConfig};

const RATE: u32 = 8000;
const FRAME: usize = 160;
/// North American ring: 440 + 480 Hz, two seconds on, four off.
const TONES: [f32; 2] = [440.0, 480.0];
const ON_SAMPLES: usize = 2 * RATE as usize;
const CYCLE_SAMPLES: usize = 6 * RATE as usize;
/// Each tone at -15 dBFS: clearly audible, never clipping.
const AMPLITUDE: f32 = 0.18;

pub struct Ringer {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Ringer {
    /// Starts ringing; None when there is nowhere to ring (no ringer file, no device).
    pub fn start(config: &AudioConfig) -> Option<Self> {
        let sink = match open_sink(config) {
            Ok(Some(sink)) => sink,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("cannot ring: {e}");
                return None;
            }
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(ring(sink, stopped));
        Some(Self {
            stop: Some(stop),
            task,
        })
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn open_sink(config: &AudioConfig) -> Result<Option<Box<dyn AudioSink>>, super::AudioError> {
    match config.backend {
        AudioBackend::File => match &config.ringer_file {
            Some(path) => Ok(Some(Box::new(super::WavSink::create(path, RATE)?))),
            None => Ok(None),
        },
        #[cfg(feature = "devices")]
        AudioBackend::Cpal => {
            super::device::open_output(config.ringer.as_deref().or(config.output.as_deref()), RATE)
                .map(Some)
        }
        #[cfg(not(feature = "devices"))]
        AudioBackend::Cpal => Ok(None),
    }
}

async fn ring(mut sink: Box<dyn AudioSink>, mut stopped: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut position = 0usize;
    let mut frame = [0i16; FRAME];
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {
                ring_frame(position, &mut frame);
                position = (position + FRAME) % CYCLE_SAMPLES;
                sink.write(&frame);
            }
        }
    }
    sink.finish();
}

/// The ring signal from sample `position` of the cadence on.
fn ring_frame(position: usize, frame: &mut [i16]) {
    for (i, sample) in frame.iter_mut().enumerate() {
        let n = (position + i) % CYCLE_SAMPLES;
        *sample = if n < ON_SAMPLES {
            let t = n as f32 / RATE as f32;
            let value: f32 = TONES
                .iter()
                .map(|hz| (2.0 * std::f32::consts::PI * hz * t).sin() * AMPLITUDE)
                .sum();
            (value * 32767.0) as i16
        } else {
            0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_two_seconds_then_pauses_four() {
        let mut frame = [0i16; FRAME];
        ring_frame(0, &mut frame);
        assert!(
            frame.iter().any(|s| s.unsigned_abs() > 5000),
            "ringing at the start"
        );
        ring_frame(ON_SAMPLES, &mut frame);
        assert!(frame.iter().all(|s| *s == 0), "silent after two seconds");
        ring_frame(CYCLE_SAMPLES, &mut frame);
        assert!(frame.iter().any(|s| *s != 0), "rings again after six");
        let peak = (0..ON_SAMPLES)
            .step_by(FRAME)
            .flat_map(|p| {
                ring_frame(p, &mut frame);
                frame
            })
            .map(i16::unsigned_abs)
            .max();
        assert!(peak.is_some_and(|p| p < 32767), "never clips");
    }
}
