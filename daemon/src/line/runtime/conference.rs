//! The local conference: calls whose media mix in our own media tasks (see
//! `media::conference`). The phone says who is in it; the runtime moves each call's audio into
//! the mix or back to the agent's devices, and reports who is mixed.

use crate::audio::{self, CallAudio, Discard, Silence};
use crate::ids::ConversationId;
use crate::line::LineEvent;
use crate::media::conference::Conference;
use crate::media::mixer::{MIX_RATE, RateConverter};

use super::LineRuntime;

pub(super) struct LocalConference {
    hub: Conference,
    legs: Vec<ConversationId>,
}

fn silence() -> CallAudio {
    CallAudio {
        source: Box::new(Silence),
        sink: Box::new(Discard),
        unavailable: None,
    }
}

impl LineRuntime {
    /// Mixes exactly `wanted` (those whose media runs at a rate the mix takes); fewer than two
    /// ends the conference, or refuses to make one. Reports who is mixed with
    /// [`LineEvent::ConferenceMixed`] either way, so the phone never waits on a refusal.
    pub(super) async fn set_conference(&mut self, wanted: Vec<ConversationId>) {
        let joinable: Vec<ConversationId> = wanted
            .into_iter()
            .filter(|c| {
                self.media_rate(c)
                    .is_some_and(|rate| RateConverter::new(rate).is_some())
            })
            .collect();
        if joinable.len() < 2 {
            if self.conference.is_none() {
                tracing::warn!("a conference needs two calls with media running; none made");
            }
            self.end_conference().await;
            self.events.push_back(LineEvent::ConferenceMixed {
                conversations: Vec::new(),
            });
            return;
        }
        let mut conference = match self.conference.take() {
            Some(conference) => conference,
            None => {
                // The calls let go of the agent's devices (a recording closes) before the mix
                // opens them.
                for conversation in &joinable {
                    self.give_audio(conversation, silence()).await;
                }
                let agent = match audio::open_for_call(&self.media_settings.audio, MIX_RATE, None) {
                    Ok(agent) => agent,
                    Err(e) => {
                        tracing::warn!("conference: {e}; the agent is not heard in it");
                        silence()
                    }
                };
                LocalConference {
                    hub: Conference::start(agent),
                    legs: Vec::new(),
                }
            }
        };
        for leaving in conference
            .legs
            .iter()
            .filter(|c| !joinable.contains(c))
            .cloned()
            .collect::<Vec<_>>()
        {
            self.own_audio(&leaving).await;
        }
        for conversation in &joinable {
            if conference.legs.contains(conversation) {
                continue;
            }
            let Some(rate) = self.media_rate(conversation) else {
                continue;
            };
            if let Some(leg) = conference.hub.leg(rate) {
                self.give_audio(conversation, leg).await;
            }
        }
        conference.legs = joinable.clone();
        tracing::info!(legs = joinable.len(), "conference mixing");
        self.conference = Some(conference);
        self.events.push_back(LineEvent::ConferenceMixed {
            conversations: joinable,
        });
    }

    /// A call of the conference ended: the others go on, or the last one talks with the agent
    /// alone.
    pub(super) async fn conference_call_ended(&mut self, conversation: &ConversationId) {
        let Some(conference) = &self.conference else {
            return;
        };
        if !conference.legs.contains(conversation) {
            return;
        }
        let rest: Vec<ConversationId> = conference
            .legs
            .iter()
            .filter(|c| *c != conversation)
            .cloned()
            .collect();
        self.set_conference(rest).await;
    }

    /// A conference call's far end changed (a transfer of theirs): its new media joins the mix.
    pub(super) async fn conference_media_replaced(&mut self, conversation: &ConversationId) {
        let Some(conference) = &self.conference else {
            return;
        };
        if !conference.legs.contains(conversation) {
            return;
        }
        let leg = self
            .media_rate(conversation)
            .and_then(|rate| conference.hub.leg(rate));
        if let Some(leg) = leg {
            self.give_audio(conversation, leg).await;
        }
    }

    /// Ends the conference, if there is one (the caller reports it).
    async fn end_conference(&mut self) {
        let Some(conference) = self.conference.take() else {
            return;
        };
        // The mix closes the agent's devices before the calls open them again.
        conference.hub.stop().await;
        for conversation in &conference.legs {
            self.own_audio(conversation).await;
        }
        tracing::info!("conference ended");
    }

    /// The call's media gets the agent's devices again.
    async fn own_audio(&mut self, conversation: &ConversationId) {
        let Some(rate) = self.media_rate(conversation) else {
            return;
        };
        let own =
            audio::open_for_call(&self.media_settings.audio, rate, None).unwrap_or_else(|e| {
                tracing::warn!(%conversation, "{e}; the call has no audio");
                silence()
            });
        self.give_audio(conversation, own).await;
    }

    /// Hands `audio` to the call's media; the old ends are closed.
    async fn give_audio(&mut self, conversation: &ConversationId, audio: CallAudio) {
        if let Some(media) = self.media(conversation)
            && let Some(old) = media.swap_audio(audio).await
        {
            old.sink.finish();
        }
    }
}
