//! What the runtime holds for each call beside the sans-IO line's `LineCall`: the I/O the line
//! cannot own (the call's media tasks, its share of the ringer, media being prepared off the
//! loop) and the clock of its no-media watch. One entry per conversation, gone when the call
//! ends.

use std::collections::HashMap;
use std::time::Instant;

use super::LineRuntime;
use crate::ids::ConversationId;
use crate::line::SipLine;
use crate::line::call_media::CallMedia;

#[derive(Default)]
pub(super) struct CallIo {
    /// The call's media, once it is set up.
    pub media: Option<CallMedia>,
    /// The media of the dialog that is to take the call's place (a transfer of the far end's
    /// doing), until that dialog is up.
    pub next_media: Option<CallMedia>,
    /// Media is being prepared off the loop (WebRTC gathers candidates, which can take seconds
    /// with a TURN server) and the call waits for it.
    pub preparing: bool,
    /// It rings in: the ring tone plays while any call does.
    pub ringing: bool,
    /// Since when media has been expected without a break (not held either way), for
    /// `[media] rtp_timeout`.
    pub media_seen: Option<Instant>,
    /// An ICE restart's offer gathered while the call had a re-INVITE in flight: sent when it
    /// ends.
    pub waiting_restart: Option<String>,
    /// The call's recording, while it runs (its file closes when this goes).
    pub recording: Option<super::recording::CallRecording>,
}

impl CallIo {
    /// Stops its media tasks: a WebRTC peer connection closes (ICE, a TURN allocation) only
    /// when stopped.
    pub async fn stop(self) {
        for media in [self.media, self.next_media].into_iter().flatten() {
            media.stop().await;
        }
    }
}

/// A call's media and the SIP line, borrowed from the runtime's two fields apart (a re-INVITE
/// built from the one, sent on the other) so that the caller keeps the rest of the runtime: its
/// events, its entropy.
pub(super) fn media_and_sip<'a>(
    calls: &'a mut HashMap<ConversationId, CallIo>,
    sip: &'a mut Option<SipLine>,
    conversation: &ConversationId,
) -> Option<(&'a mut CallMedia, &'a mut SipLine)> {
    Some((calls.get_mut(conversation)?.media.as_mut()?, sip.as_mut()?))
}

impl LineRuntime {
    pub(super) fn media(&self, conversation: &ConversationId) -> Option<&CallMedia> {
        self.calls.get(conversation)?.media.as_ref()
    }

    pub(super) fn media_mut(&mut self, conversation: &ConversationId) -> Option<&mut CallMedia> {
        self.calls.get_mut(conversation)?.media.as_mut()
    }

    /// The sample rate of the call's running media.
    pub(super) fn media_rate(&self, conversation: &ConversationId) -> Option<u32> {
        self.media(conversation)?.rate()
    }

    /// The call's entry, made on first use.
    pub(super) fn io(&mut self, conversation: &ConversationId) -> &mut CallIo {
        self.calls.entry(conversation.clone()).or_default()
    }

    /// Whether the call waited for media being prepared; it no longer does.
    pub(super) fn stop_preparing(&mut self, conversation: &ConversationId) -> bool {
        self.calls
            .get_mut(conversation)
            .is_some_and(|io| std::mem::take(&mut io.preparing))
    }

    /// The calls waiting for media being prepared, which no longer wait.
    pub(super) fn drain_preparing(&mut self) -> Vec<ConversationId> {
        self.calls
            .iter_mut()
            .filter(|(_, io)| io.preparing)
            .map(|(conversation, io)| {
                io.preparing = false;
                conversation.clone()
            })
            .collect()
    }

    pub(super) fn any_preparing(&self) -> bool {
        self.calls.values().any(|io| io.preparing)
    }
}
