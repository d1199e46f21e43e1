//! Recording a call on a thread of its own: the media task hands it each 20 ms frame (the
//! agent's, the far end's) without ever waiting, and the thread creates the file, encodes and
//! writes ([`super::recorder`]) and says how it ended — exactly once, even if it panics.
//!
//! Nothing here blocks its callers: pausing is a flag the tap reads (paused time is left out
//! of the file), stopping is dropping the [`Recording`] and every [`Tap`], and a queue that is
//! full (a stalled disk) drops frames, which the end report counts.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use super::recorder::RecordingFile;

/// Frames queued for the writer (5 s).
const QUEUE: usize = 250;

/// The agent's frame and whatever the far end's decoded packet held (10 to 120 ms).
type Frame = (Vec<i16>, Vec<i16>);

struct Shared {
    paused: AtomicBool,
    dropped: AtomicU64,
}

/// What the media task holds: hands frames over without blocking.
#[derive(Clone)]
pub struct Tap {
    frames: SyncSender<Frame>,
    shared: Arc<Shared>,
    rate: u32,
}

impl Tap {
    pub fn frame(&self, agent: &[i16], far: &[i16]) {
        if self.shared.paused.load(Ordering::Relaxed) {
            return;
        }
        if let Err(TrySendError::Full(_)) = self.frames.try_send((agent.to_vec(), far.to_vec())) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The sample rate the file was made for.
    pub fn rate(&self) -> u32 {
        self.rate
    }
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub id: String,
    /// Seconds of audio in the file.
    pub seconds: f64,
    /// The file could not be made or written: it holds nothing usable (and was removed).
    pub failed: bool,
    /// Why it failed or is incomplete (frames dropped, the length limit), naming no path.
    pub problem: Option<String>,
}

/// What a recording is made of.
pub struct RecordingSpec {
    pub path: PathBuf,
    pub rate: u32,
    pub id: String,
    /// Goes into the file's tags (the conversation id).
    pub title: String,
    /// At most this many seconds are written; then the recording stops itself.
    pub max_seconds: u64,
}

/// A recording in progress; dropping it (with every tap) closes the file.
pub struct Recording {
    shared: Arc<Shared>,
}

impl Recording {
    /// Starts the writer thread; `done` is called once with how the recording ended.
    pub fn start(
        spec: RecordingSpec,
        done: impl FnOnce(Finished) + Send + 'static,
    ) -> Result<(Self, Tap), std::io::Error> {
        let (frames, inbox) = sync_channel(QUEUE);
        let shared = Arc::new(Shared {
            paused: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let counted = Arc::clone(&shared);
        let rate = spec.rate;
        std::thread::Builder::new()
            .name("recording".into())
            .spawn(move || {
                let mut report = Report {
                    id: spec.id.clone(),
                    done: Some(Box::new(done)),
                };
                let finished = write(spec, &inbox, &counted);
                report.send(finished);
            })?;
        Ok((
            Self {
                shared: Arc::clone(&shared),
            },
            Tap {
                frames,
                shared,
                rate,
            },
        ))
    }

    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::Relaxed);
    }

    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::Relaxed);
    }
}

/// Calls `done` exactly once: with the outcome, or from `drop` if the thread panicked.
struct Report {
    id: String,
    done: Option<Box<dyn FnOnce(Finished) + Send>>,
}

impl Report {
    fn send(&mut self, finished: Finished) {
        if let Some(done) = self.done.take() {
            done(finished);
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        let id = self.id.clone();
        self.send(Finished {
            id,
            seconds: 0.0,
            failed: true,
            problem: Some("the recording's writer stopped unexpectedly".into()),
        });
    }
}

/// The writer thread: the file, then frames into it until every sender is gone.
fn write(spec: RecordingSpec, inbox: &Receiver<Frame>, shared: &Shared) -> Finished {
    let failed = |problem: String| Finished {
        id: spec.id.clone(),
        seconds: 0.0,
        failed: true,
        problem: Some(problem),
    };
    let mut file = match RecordingFile::create(&spec.path, spec.rate, &spec.title) {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(path = %spec.path.display(), "{e}");
            let _ = std::fs::remove_file(&spec.path);
            return failed(e.to_string());
        }
    };
    let frame = (spec.rate / 50) as usize;
    let max_frames = spec.max_seconds.saturating_mul(50);
    // The far end's audio, cut into 20 ms frames whatever its packets held (at most 1 s kept).
    let mut far: VecDeque<i16> = VecDeque::new();
    let mut far_frame = vec![0i16; frame];
    let mut written = 0u64;
    let mut problem = None;
    while let Ok((agent, heard)) = inbox.recv() {
        if written >= max_frames {
            problem = Some(format!(
                "the recording reached its limit of {} minutes ([recording] max_minutes)",
                spec.max_seconds / 60
            ));
            break;
        }
        far.extend(heard);
        while far.len() > spec.rate as usize {
            far.pop_front();
        }
        for (i, sample) in far_frame.iter_mut().enumerate() {
            *sample = if i < far.len() { far[i] } else { 0 };
        }
        far.drain(..frame.min(far.len()));
        if let Err(e) = file.write(&agent, &far_frame) {
            tracing::warn!(path = %spec.path.display(), "{e}; the rest of the call is not recorded");
            problem = Some(e.to_string());
            break;
        }
        written += 1;
    }
    let seconds = match file.close() {
        Ok(seconds) => seconds,
        Err(e) => {
            tracing::warn!(path = %spec.path.display(), "{e}");
            problem.get_or_insert(e.to_string());
            0.0
        }
    };
    let lost = shared.dropped.load(Ordering::Relaxed);
    if lost > 0 && problem.is_none() {
        problem = Some(format!(
            "{lost} frames ({:.1} s) were dropped: the disk did not keep up",
            lost as f64 / 50.0
        ));
    }
    Finished {
        id: spec.id,
        seconds,
        failed: false,
        problem,
    }
}
