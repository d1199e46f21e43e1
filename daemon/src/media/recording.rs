//! Recording a call on a thread of its own: the media task hands it each 20 ms frame (the
//! agent's, the far end's) without ever waiting, and the thread encodes and writes them
//! ([`super::recorder`]) and says how the file ended. Pausing leaves the paused time out of the
//! file.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use super::recorder::{RecorderError, RecordingFile};

/// Frames queued for the writer (5 s): a stalled disk drops frames, never the call's audio.
const QUEUE: usize = 250;

enum Message {
    Frame(Vec<i16>, Vec<i16>),
    Pause,
    Resume,
    Stop,
}

/// What the media task holds: hands frames over without blocking.
#[derive(Clone)]
pub struct Tap {
    frames: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl Tap {
    pub fn frame(&self, agent: &[i16], far: &[i16]) {
        if let Err(TrySendError::Full(_)) = self
            .frames
            .try_send(Message::Frame(agent.to_vec(), far.to_vec()))
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub id: String,
    /// Seconds of audio in the file.
    pub seconds: f64,
    /// Why it stopped early or is incomplete (a write failed, frames were dropped).
    pub problem: Option<String>,
}

/// A recording in progress; stopping (or dropping) it closes the file, and `done` is called
/// with how it ended.
pub struct Recording {
    control: SyncSender<Message>,
}

impl Recording {
    pub fn start(
        path: &Path,
        rate: u32,
        id: String,
        title: &str,
        done: impl FnOnce(Finished) + Send + 'static,
    ) -> Result<(Self, Tap), RecorderError> {
        let file = RecordingFile::create(path, rate, title)?;
        let (frames, inbox) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        let spawned = std::thread::Builder::new()
            .name("recording".into())
            .spawn(move || done(write(file, &inbox, id, &counted)));
        if let Err(e) = spawned {
            return Err(RecorderError::Io {
                path: path.display().to_string(),
                source: e,
            });
        }
        Ok((
            Self {
                control: frames.clone(),
            },
            Tap { frames, dropped },
        ))
    }

    pub fn pause(&self) {
        let _ = self.control.send(Message::Pause);
    }

    pub fn resume(&self) {
        let _ = self.control.send(Message::Resume);
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let _ = self.control.send(Message::Stop);
    }
}

/// The writer thread: frames into the file until stopped (or every sender is gone).
fn write(
    mut file: RecordingFile,
    inbox: &Receiver<Message>,
    id: String,
    dropped: &AtomicU64,
) -> Finished {
    let mut paused = false;
    let mut problem = None;
    while let Ok(message) = inbox.recv() {
        match message {
            Message::Frame(agent, far) if !paused && problem.is_none() => {
                if let Err(e) = file.write(&agent, &far) {
                    tracing::warn!("{e}; the rest of the call is not recorded");
                    problem = Some(e.to_string());
                }
            }
            Message::Frame(..) => {}
            Message::Pause => paused = true,
            Message::Resume => paused = false,
            Message::Stop => break,
        }
    }
    let seconds = match file.finish() {
        Ok(seconds) => seconds,
        Err(e) => {
            tracing::warn!("{e}");
            problem.get_or_insert(e.to_string());
            0.0
        }
    };
    let lost = dropped.load(Ordering::Relaxed);
    if lost > 0 && problem.is_none() {
        problem = Some(format!(
            "{lost} frames ({:.1} s) were dropped: the disk did not keep up",
            lost as f64 / 50.0
        ));
    }
    Finished {
        id,
        seconds,
        problem,
    }
}
