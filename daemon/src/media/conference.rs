//! The local conference's driver: owns the agent's microphone and speaker, runs the
//! [`Mixer`](super::mixer::Mixer) every 20 ms, and hands each call in the conference an audio
//! source and sink ([`Conference::leg`]) that its media task uses in place of the devices.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::mixer::{LegId, MIX_FRAME, Mixer, RateConverter};
use crate::audio::{AudioSink, AudioSource, CallAudio};

type Shared = Arc<Mutex<Mixer>>;

pub struct Conference {
    mixer: Shared,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Conference {
    /// Starts mixing with the agent's audio, opened at [`super::mixer::MIX_RATE`].
    pub fn start(agent: CallAudio) -> Self {
        let mixer = Shared::default();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(Arc::clone(&mixer), agent, stopped));
        Self {
            mixer,
            stop: Some(stop),
            task,
        }
    }

    /// Audio for a call at `rate` Hz that joins the mix; None when the rate does not divide
    /// the mix rate. The leg leaves the mix when its sink is finished or dropped.
    pub fn leg(&self, rate: u32) -> Option<CallAudio> {
        let (up, down) = (RateConverter::new(rate)?, RateConverter::new(rate)?);
        let id = lock(&self.mixer).add_leg();
        Some(CallAudio {
            source: Box::new(LegSource {
                mixer: Arc::clone(&self.mixer),
                id,
                converter: down,
                buffer: Vec::new(),
            }),
            sink: Box::new(LegSink {
                mixer: Arc::clone(&self.mixer),
                id,
                converter: up,
            }),
            unavailable: None,
        })
    }

    /// Stops mixing and closes the agent's audio (a recording gets its final length).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Conference {
    /// A conference dropped without [`Conference::stop`] (the line went away) still stops
    /// mixing and closes the agent's audio, in its task.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A poisoned lock only means a media task panicked mid-frame; the mix itself is still whole.
fn lock(mixer: &Shared) -> std::sync::MutexGuard<'_, Mixer> {
    mixer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn run(mixer: Shared, agent: CallAudio, mut stopped: oneshot::Receiver<()>) {
    let CallAudio {
        mut source,
        mut sink,
        ..
    } = agent;
    let mut mic = vec![0i16; MIX_FRAME];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {
                source.read(&mut mic);
                let speaker = lock(&mixer).mix(&mic);
                sink.write(&speaker);
            }
        }
    }
    sink.finish();
}

/// What one call in the conference sends: the agent and the other calls.
struct LegSource {
    mixer: Shared,
    id: LegId,
    converter: RateConverter,
    buffer: Vec<i16>,
}

impl AudioSource for LegSource {
    fn read(&mut self, frame: &mut [i16]) {
        self.buffer.resize(frame.len() * self.converter.ratio(), 0);
        lock(&self.mixer).pull_send(self.id, &mut self.buffer);
        self.converter.down(&self.buffer, frame);
    }
}

/// What one call in the conference hears goes into the mix.
struct LegSink {
    mixer: Shared,
    id: LegId,
    converter: RateConverter,
}

impl AudioSink for LegSink {
    fn write(&mut self, samples: &[i16]) {
        let up = self.converter.up(samples);
        lock(&self.mixer).push_heard(self.id, &up);
    }

    fn finish(self: Box<Self>) {}
}

impl Drop for LegSink {
    fn drop(&mut self) {
        lock(&self.mixer).remove_leg(self.id);
    }
}
