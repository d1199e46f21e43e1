//! A call's recording: a thread makes and writes the file (`media::recording`); the call's
//! media task hands it each frame through a tap, which follows the call to a new dialog (a
//! transfer of the far end's doing) at the same sample rate. How a recording ended is reported
//! once: by its writer when the file is closed, or here when the line stops first.

use super::LineRuntime;
use crate::ids::ConversationId;
use crate::line::events::{LineEvent, RecordOp, RecordingState};
use crate::media::recording::{Finished, Recording, RecordingSpec, Tap};
use crate::media::session::MediaReport;

/// A recording in progress.
pub(super) struct CallRecording {
    pub id: String,
    /// Closes the file when dropped (with the tap in the media task).
    recording: Recording,
    pub tap: Tap,
}

/// Why a recording was closed here before its writer reported.
pub(super) enum ClosedEarly {
    /// Its `stopped` was reported already (the line stopped): the writer's report is dropped.
    Reported,
    /// The writer's report says this too.
    Because(String),
}

impl LineRuntime {
    pub(super) fn record(&mut self, conversation: ConversationId, op: RecordOp) {
        match op {
            RecordOp::Start { id } => self.start_recording(conversation, id),
            RecordOp::Pause | RecordOp::Resume => {
                let pause = op == RecordOp::Pause;
                let Some(current) = self
                    .calls
                    .get(&conversation)
                    .and_then(|io| io.recording.as_ref())
                else {
                    return;
                };
                if pause {
                    current.recording.pause();
                } else {
                    current.recording.resume();
                }
                let id = current.id.clone();
                let state = if pause {
                    RecordingState::Paused
                } else {
                    RecordingState::Recording
                };
                self.recording_event(conversation, id, state, None);
            }
            RecordOp::Stop => self.close_recording(&conversation, None),
        }
    }

    /// Closes the call's recording; its writer reports `stopped` once the file is written.
    fn close_recording(&mut self, conversation: &ConversationId, why: Option<String>) {
        let Some(io) = self.calls.get_mut(conversation) else {
            return;
        };
        if let Some(media) = &io.media {
            media.record(None);
        }
        if let Some(closed) = io.recording.take()
            && let Some(why) = why
        {
            self.closed_early
                .insert(closed.id, ClosedEarly::Because(why));
        }
    }

    /// The line stops (logout, a new provisioning, shutdown): every recording is closed and
    /// reported `stopped` now, since nobody will hear its writer.
    pub(super) fn close_every_recording(&mut self, why: &str) {
        let mut stopped = Vec::new();
        for (conversation, io) in &mut self.calls {
            if let Some(media) = &io.media {
                media.record(None);
            }
            if let Some(closed) = io.recording.take() {
                stopped.push((conversation.clone(), closed.id));
            }
        }
        for (conversation, id) in stopped {
            self.closed_early.insert(id.clone(), ClosedEarly::Reported);
            self.events.push_back(LineEvent::Recording {
                conversation,
                id,
                state: RecordingState::Stopped,
                file: None,
                seconds: None,
                problem: Some(why.to_owned()),
            });
        }
    }

    fn start_recording(&mut self, conversation: ConversationId, id: String) {
        let Some(dir) = self.media_settings.recordings.clone() else {
            let why = "recording is not set up on this line".to_owned();
            self.recording_event(conversation, id, RecordingState::Failed, Some(why));
            return;
        };
        let Some(rate) = self.media_rate(&conversation) else {
            let why = "the call has no audio to record".to_owned();
            self.recording_event(conversation, id, RecordingState::Failed, Some(why));
            return;
        };
        if let Err(e) = crate::private_files::create_dir(&dir) {
            tracing::warn!("{e}");
            let why = format!("cannot create the recordings folder: {}", e.source);
            self.recording_event(conversation, id, RecordingState::Failed, Some(why));
            return;
        }
        let stamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_default();
        let name = format!("{stamp}-{id}.opus");
        let reports = self.reports.0.clone();
        let finished_for = conversation.clone();
        let spec = RecordingSpec {
            path: dir.join(&name),
            rate,
            id: id.clone(),
            title: conversation.to_string(),
            max_seconds: self.media_settings.recording_max_seconds,
        };
        let started = Recording::start(spec, move |done| {
            // The line may be gone by then; the file is closed either way.
            let _ = reports.send((finished_for, MediaReport::Recorded(done)));
        });
        match started {
            Ok((recording, tap)) => {
                let io = self.io(&conversation);
                if let Some(media) = &io.media {
                    media.record(Some(tap.clone()));
                }
                io.recording = Some(CallRecording {
                    id: id.clone(),
                    recording,
                    tap,
                });
                tracing::info!(%conversation, file = %name, "recording");
                self.events.push_back(LineEvent::Recording {
                    conversation,
                    id,
                    state: RecordingState::Recording,
                    file: Some(name.into()),
                    seconds: None,
                    problem: None,
                });
            }
            Err(e) => {
                tracing::warn!(%conversation, "cannot start a recording: {e}");
                let why = format!("cannot start the recording: {e}");
                self.recording_event(conversation, id, RecordingState::Failed, Some(why));
            }
        }
    }

    fn recording_event(
        &mut self,
        conversation: ConversationId,
        id: String,
        state: RecordingState,
        problem: Option<String>,
    ) {
        self.events.push_back(LineEvent::Recording {
            conversation,
            id,
            state,
            file: None,
            seconds: None,
            problem,
        });
    }

    /// The call's media changed (a transfer of theirs): the recording follows it at the same
    /// sample rate; at another (a new codec) it ends, since one file has one rate.
    pub(super) fn retap(&mut self, conversation: &ConversationId) {
        let rate = self.media_rate(conversation);
        let Some(io) = self.calls.get(conversation) else {
            return;
        };
        let (Some(media), Some(current)) = (&io.media, &io.recording) else {
            return;
        };
        if rate == Some(current.tap.rate()) {
            media.record(Some(current.tap.clone()));
        } else {
            let why =
                "the call moved to a party on another codec; start a new recording".to_owned();
            self.close_recording(conversation, Some(why));
        }
    }

    /// A recording's writer closed its file (asked to, or at its length limit, or failing).
    pub(super) fn recorded(&mut self, conversation: ConversationId, done: Finished) {
        if let Some(io) = self.calls.get_mut(&conversation)
            && io.recording.as_ref().is_some_and(|r| r.id == done.id)
        {
            // It stopped by itself: the media task stops handing it frames.
            if let Some(media) = &io.media {
                media.record(None);
            }
            io.recording = None;
        }
        let problem = match self.closed_early.remove(&done.id) {
            Some(ClosedEarly::Reported) => return,
            Some(ClosedEarly::Because(why)) => Some(match done.problem {
                Some(problem) => format!("{why}; {problem}"),
                None => why,
            }),
            None => done.problem,
        };
        self.events.push_back(LineEvent::Recording {
            conversation,
            id: done.id,
            state: if done.failed {
                RecordingState::Failed
            } else {
                RecordingState::Stopped
            },
            file: None,
            seconds: (!done.failed).then_some(done.seconds),
            problem,
        });
    }
}
