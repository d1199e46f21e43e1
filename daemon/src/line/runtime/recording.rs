//! A call's recording: a thread writes the file (`media::recording`); the call's media task
//! hands it each frame through a tap, which follows the call to a new dialog (a transfer of the
//! far end's doing). Closing the file is reported when it is done, as a media report.

use super::LineRuntime;
use crate::ids::ConversationId;
use crate::line::events::{LineEvent, RecordOp, RecordingState};
use crate::media::recording::{Recording, Tap};
use crate::media::session::MediaReport;

/// A recording in progress.
pub(super) struct CallRecording {
    pub id: String,
    /// Closes the file when dropped (the call ended, or `stop`).
    recording: Recording,
    pub tap: Tap,
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
                self.recording_event(
                    conversation,
                    id,
                    if pause {
                        RecordingState::Paused
                    } else {
                        RecordingState::Recording
                    },
                    None,
                );
            }
            RecordOp::Stop => {
                let Some(io) = self.calls.get_mut(&conversation) else {
                    return;
                };
                if let Some(media) = &io.media {
                    media.record(None);
                }
                // Dropping it closes the file; `Recorded` follows when that is done.
                io.recording = None;
            }
        }
    }

    fn start_recording(&mut self, conversation: ConversationId, id: String) {
        let Some(dir) = self.media_settings.recordings.clone() else {
            self.recording_event(
                conversation,
                id,
                RecordingState::Failed,
                Some("recording is not set up on this line".into()),
            );
            return;
        };
        let Some(rate) = self.media_rate(&conversation) else {
            self.recording_event(
                conversation,
                id,
                RecordingState::Failed,
                Some("the call has no audio to record".into()),
            );
            return;
        };
        if let Err(e) = crate::private_files::create_dir(&dir) {
            self.recording_event(
                conversation,
                id,
                RecordingState::Failed,
                Some(e.to_string()),
            );
            return;
        }
        let stamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_default();
        let name = format!("{stamp}-{id}.opus");
        let path = dir.join(&name);
        let reports = self.reports.0.clone();
        let finished_for = conversation.clone();
        let started = Recording::start(
            &path,
            rate,
            id.clone(),
            conversation.as_str(),
            move |done| {
                // The line may be gone by then; the recording is closed either way.
                let _ = reports.send((finished_for, MediaReport::Recorded(done)));
            },
        );
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
                tracing::info!(%conversation, file = %path.display(), "recording");
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
                tracing::warn!(%conversation, "{e}");
                self.recording_event(
                    conversation,
                    id,
                    RecordingState::Failed,
                    Some(e.to_string()),
                );
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

    /// The call's media changed (a transfer of theirs): the recording follows it.
    pub(super) fn retap(&self, conversation: &ConversationId) {
        if let Some(io) = self.calls.get(conversation)
            && let (Some(media), Some(current)) = (&io.media, &io.recording)
        {
            media.record(Some(current.tap.clone()));
        }
    }

    /// A recording's file was closed.
    pub(super) fn recorded(
        &mut self,
        conversation: ConversationId,
        done: crate::media::recording::Finished,
    ) {
        self.events.push_back(LineEvent::Recording {
            conversation,
            id: done.id,
            state: RecordingState::Stopped,
            file: None,
            seconds: Some(done.seconds),
            problem: done.problem,
        });
    }
}
