//! Setting up a call's media: bound at once for plain RTP, gathered in a task for WebRTC (ICE and
//! a TURN allocation can take seconds, and the phone loop must not wait on them). The INVITE or
//! the 200 goes out when the media is ready.

use std::net::IpAddr;
use std::time::Instant;

use sip_core::call::EndReason;
use sip_core::sdp::SessionDescription;

use super::call_io::media_and_sip;
use super::{LineRuntime, Prepared};
use crate::ids::ConversationId;
use crate::line::call_media::{CallMedia, Unacceptable};
use crate::line::webrtc_media::WebRtcSettings;
use crate::line::{LineEvent, MediaKind};

impl LineRuntime {
    /// Places a call to `targets`: one number, or a shotgun's several with one offer.
    pub(super) async fn dial(
        &mut self,
        conversation: ConversationId,
        targets: Vec<sip_core::Uri>,
        headers: Vec<(String, String)>,
        now: Instant,
    ) {
        let Some(ip) = self.local_ip() else {
            let reason = "the line is not connected".to_owned();
            return self.events.push_back(LineEvent::CallEnded {
                conversation,
                reason: EndReason::Network { reason },
            });
        };
        self.io(&conversation).preparing = true;
        let wrap = move |media| Prepared::Offer {
            conversation,
            targets,
            headers,
            media,
        };
        if let Some(prepared) = self.offer_media(ip, wrap).await {
            self.on_prepared(prepared, now).await;
        }
    }

    /// The far end's REFER asks for a call to someone else: media for its offer;
    /// [`Prepared::Referral`] places it.
    pub(super) async fn prepare_referral(&mut self, conversation: ConversationId, now: Instant) {
        let Some(ip) = self.local_ip() else {
            if let Some(sip) = &mut self.sip {
                let why = "the line is not connected";
                sip.referral_failed(&conversation, 503, why, now, &mut self.entropy);
            }
            return;
        };
        let wrap = move |media| Prepared::Referral {
            conversation,
            media,
        };
        if let Some(prepared) = self.offer_media(ip, wrap).await {
            self.on_prepared(prepared, now).await;
        }
    }

    /// An INVITE with `Replaces` takes the call's place: media for our answer to its offer.
    pub(super) async fn prepare_replacing(&mut self, conversation: ConversationId, now: Instant) {
        let (Some(ip), Some(sip)) = (self.local_ip(), &mut self.sip) else {
            return;
        };
        let Some(text) = sip.next_remote_sdp(&conversation) else {
            return;
        };
        let wrap = move |media| Prepared::Replacing {
            conversation,
            media,
        };
        if let Some(prepared) = self.answer_media(ip, text, wrap).await {
            self.on_prepared(prepared, now).await;
        }
    }

    /// Media for an offer: bound at once for plain RTP (returned, `wrap`ped); gathered in a task
    /// for WebRTC, arriving later as `wrap(media)` (None now).
    async fn offer_media(
        &mut self,
        ip: IpAddr,
        wrap: impl FnOnce(Result<CallMedia, String>) -> Prepared + Send + 'static,
    ) -> Option<Prepared> {
        match self.config.media {
            MediaKind::Rtp => Some(wrap(CallMedia::for_offer(ip, &self.media_settings).await)),
            MediaKind::WebRtc => {
                let (settings, webrtc, done) = (
                    self.media_settings.clone(),
                    self.webrtc_settings(ip),
                    self.prepared.0.clone(),
                );
                tokio::spawn(async move {
                    let media = CallMedia::for_webrtc_offer(&settings, &webrtc).await;
                    let _ = done.send(wrap(media));
                });
                None
            }
        }
    }

    /// Media for our answer to their offer `text`, as [`Self::offer_media`]. The offer's profile
    /// decides, so a WebRTC line still takes a plain-RTP call from a PBX; an offer we cannot
    /// read is refused with 488.
    async fn answer_media(
        &mut self,
        ip: IpAddr,
        text: String,
        wrap: impl FnOnce(Result<CallMedia, Unacceptable>) -> Prepared + Send + 'static,
    ) -> Option<Prepared> {
        let Ok(offer) = SessionDescription::parse(&text) else {
            return Some(wrap(Err(Unacceptable {
                status: 488,
                reason: "their offer is not SDP we can read".into(),
            })));
        };
        if offer.audio.protocol.contains("TLS") && self.config.media == MediaKind::WebRtc {
            let (settings, webrtc, done) = (
                self.media_settings.clone(),
                self.webrtc_settings(ip),
                self.prepared.0.clone(),
            );
            tokio::spawn(async move {
                let media = CallMedia::for_webrtc_answer(&settings, &webrtc, &text).await;
                let _ = done.send(wrap(media));
            });
            return None;
        }
        Some(wrap(
            CallMedia::for_answer(ip, &self.media_settings, &offer).await,
        ))
    }

    /// A transfer of the far end's doing reached the new party: the media prepared for the new
    /// dialog takes over (keeping the agent's mute), the old stops. A hold of the old dialog
    /// does not carry over: the page hears that it ended.
    pub(super) async fn switch_media(&mut self, conversation: ConversationId, remote_sdp: &str) {
        let Some(io) = self.calls.get_mut(&conversation) else {
            return;
        };
        let Some(mut media) = io.next_media.take() else {
            return;
        };
        let old = io.media.take();
        io.media_seen = None;
        io.waiting_restart = None;
        if let Some(old) = &old {
            media.set_muted(old.is_muted());
        }
        if let Err(e) = media
            .start(
                &conversation,
                remote_sdp,
                &self.media_settings,
                self.reports.0.clone(),
            )
            .await
        {
            tracing::warn!(%conversation, "{e}; the call has no audio");
        }
        if let Some(old) = old {
            for (held, by_remote) in [(old.held, false), (old.remote_hold, true)] {
                if held {
                    self.events.push_back(LineEvent::CallHold {
                        conversation: conversation.clone(),
                        held: false,
                        by_remote,
                    });
                }
            }
            old.stop().await;
        }
        self.io(&conversation).media = Some(media);
        self.retap(&conversation);
    }

    pub(super) async fn answer(&mut self, conversation: &ConversationId, now: Instant) {
        let Some(ip) = self.local_ip() else { return };
        let Some(sip) = &mut self.sip else { return };
        let Some(text) = sip.remote_sdp(conversation) else {
            // No offer (an offerless INVITE is not supported yet): refuse honestly.
            sip.reject(conversation, 488, now, &mut self.entropy);
            return;
        };
        self.io(conversation).preparing = true;
        let conversation = conversation.to_owned();
        let wrap = move |media| Prepared::Answer {
            conversation,
            media,
        };
        if let Some(prepared) = self.answer_media(ip, text, wrap).await {
            self.on_prepared(prepared, now).await;
        }
    }

    /// The media a call waited for is ready: send the INVITE or the 200, or give up on the call.
    pub(super) async fn on_prepared(&mut self, prepared: Prepared, now: Instant) {
        let conversation = match prepared {
            Prepared::IceRestart {
                conversation,
                offer,
            } => {
                match offer {
                    Ok(gathered) => self.offer_ice_restart(&conversation, &gathered, now),
                    Err(e) => tracing::warn!(%conversation, "{e}; the call keeps its old path"),
                }
                return;
            }
            Prepared::Referral {
                conversation,
                media,
            } => {
                let media = media.map_err(|reason| Unacceptable {
                    status: 503,
                    reason,
                });
                return self.on_next_prepared(conversation, media, true, now).await;
            }
            Prepared::Replacing {
                conversation,
                media,
            } => return self.on_next_prepared(conversation, media, false, now).await,
            Prepared::Offer {
                ref conversation, ..
            }
            | Prepared::Answer {
                ref conversation, ..
            } => conversation.clone(),
        };
        // Not waited for: hung up while gathering, or the line dropped meanwhile (both reported).
        if !self.stop_preparing(&conversation) {
            if let Prepared::Offer {
                media: Ok(media), ..
            }
            | Prepared::Answer {
                media: Ok(media), ..
            } = prepared
            {
                media.stop().await;
            }
            return;
        }
        match prepared {
            Prepared::Offer {
                conversation,
                targets,
                headers,
                media,
            } => match (media, &mut self.sip) {
                (Ok(media), Some(sip)) => {
                    let offer = media.sdp();
                    sip.dial_with(
                        conversation.clone(),
                        targets,
                        headers,
                        offer,
                        now,
                        &mut self.entropy,
                    );
                    self.calls.entry(conversation).or_default().media = Some(media);
                }
                (Ok(media), None) => {
                    media.stop().await;
                    let reason = "the line is not connected".to_owned();
                    self.events.push_back(LineEvent::CallEnded {
                        conversation,
                        reason: EndReason::Network { reason },
                    });
                }
                (Err(reason), _) => self.events.push_back(LineEvent::CallEnded {
                    conversation,
                    reason: EndReason::Failed { reason },
                }),
            },
            Prepared::Answer {
                conversation,
                media,
            } => {
                let Some(sip) = &mut self.sip else {
                    if let Ok(media) = media {
                        media.stop().await;
                    }
                    return;
                };
                match media {
                    Ok(media) => {
                        if !sip.answer(&conversation, media.sdp(), now, &mut self.entropy) {
                            // The caller gave up while we prepared.
                            return media.stop().await;
                        }
                        if media.remote_hold {
                            self.events.push_back(LineEvent::CallHold {
                                conversation: conversation.clone(),
                                held: true,
                                by_remote: true,
                            });
                        }
                        self.calls.entry(conversation).or_default().media = Some(media);
                    }
                    Err(refusal) => {
                        tracing::warn!(%conversation, "cannot answer: {}", refusal.reason);
                        sip.reject(&conversation, refusal.status, now, &mut self.entropy);
                    }
                }
            }
            // Handled above, before the wait for preparing calls.
            Prepared::IceRestart { .. }
            | Prepared::Referral { .. }
            | Prepared::Replacing { .. } => {}
        }
    }

    /// Media for the dialog that is to take a call's place is ready: place it (their REFER) or
    /// answer it (their INVITE with `Replaces`); or tell them it cannot be.
    async fn on_next_prepared(
        &mut self,
        conversation: ConversationId,
        media: Result<CallMedia, Unacceptable>,
        referral: bool,
        now: Instant,
    ) {
        let Some(sip) = &mut self.sip else {
            if let Ok(media) = media {
                media.stop().await;
            }
            return;
        };
        let entropy = &mut self.entropy;
        match media {
            Ok(media) => {
                let placed = if referral {
                    sip.follow_referral(&conversation, media.sdp(), now, entropy)
                } else {
                    sip.answer_next(&conversation, media.sdp(), now, entropy)
                };
                if placed {
                    self.calls.entry(conversation).or_default().next_media = Some(media);
                } else {
                    // The call ended meanwhile.
                    media.stop().await;
                }
            }
            Err(refusal) if referral => {
                sip.referral_failed(&conversation, refusal.status, &refusal.reason, now, entropy)
            }
            Err(refusal) => {
                tracing::warn!(%conversation, "cannot take the replacing call: {}", refusal.reason);
                sip.reject_next(&conversation, refusal.status, now, entropy);
            }
        }
    }

    pub(super) fn webrtc_settings(&self, local: IpAddr) -> WebRtcSettings {
        WebRtcSettings {
            turn: self.config.turn.clone(),
            force_relay: self.config.force_relay,
            loopback: local.is_loopback(),
        }
    }
}

impl LineRuntime {
    /// The machine's address changed: every WebRTC call restarts ICE (RFC 8445 §9) from the
    /// addresses it has now. Gathering runs off the loop; the offers come back as
    /// [`Prepared::IceRestart`] and go out as re-INVITEs.
    pub(super) fn restart_ice(&mut self) {
        for (conversation, io) in &self.calls {
            let Some(restart) = io.media.as_ref().and_then(CallMedia::ice_restart) else {
                continue;
            };
            let (conversation, done) = (conversation.clone(), self.prepared.0.clone());
            tracing::info!(%conversation, "restarting ICE from the new address");
            tokio::spawn(async move {
                let offer = restart.run().await;
                let _ = done.send(Prepared::IceRestart {
                    conversation,
                    offer,
                });
            });
        }
    }

    /// Sends an ICE restart's offer, or keeps it until the call's re-INVITE in flight ends.
    fn offer_ice_restart(&mut self, conversation: &ConversationId, gathered: &str, now: Instant) {
        let Some((media, sip)) = media_and_sip(&mut self.calls, &mut self.sip, conversation) else {
            return;
        };
        let offer = media.ice_offer(gathered);
        if sip.reoffer(conversation, offer.clone(), now, &mut self.entropy) {
            media.ice_restart_sent(offer);
        } else if let Some(io) = self.calls.get_mut(conversation) {
            io.waiting_restart = Some(gathered.to_owned());
        }
    }

    /// A re-INVITE of `conversation` ended: an ICE restart waiting for it goes out now, else a
    /// hold change waiting for it (one re-INVITE at a time; the other waits for this one's end).
    pub(super) fn send_waiting(&mut self, conversation: &ConversationId, now: Instant) {
        if let Some(gathered) = self
            .calls
            .get_mut(conversation)
            .and_then(|io| io.waiting_restart.take())
        {
            self.offer_ice_restart(conversation, &gathered, now);
        }
        if let Some(held) = self
            .calls
            .get_mut(conversation)
            .and_then(|io| io.media.as_mut())
            .and_then(CallMedia::take_waiting_hold)
        {
            self.change_hold(conversation, held, now);
        }
    }

    /// The agent holds or resumes `conversation`: a re-INVITE, or kept until the one in flight
    /// ends (a hold kept stops our media at once); `CallHold` (not by the far end) follows the
    /// far end's answer, or comes at once when the call is already so and nothing is in flight.
    pub(super) fn change_hold(&mut self, conversation: &ConversationId, held: bool, now: Instant) {
        let Some((media, sip)) = media_and_sip(&mut self.calls, &mut self.sip, conversation) else {
            return;
        };
        if media.hold_in_flight() {
            tracing::debug!(%conversation, held, "the hold change waits for the hold in flight");
            media.wait_to_hold(held);
        } else if media.held == held {
            media.clear_waiting_hold();
            self.events.push_back(LineEvent::CallHold {
                conversation: conversation.clone(),
                held,
                by_remote: false,
            });
        } else if !sip.can_reoffer(conversation) {
            // A refresh or an ICE restart is in flight, or the line's connection is down.
            tracing::debug!(%conversation, held, "the hold change waits for the re-INVITE in flight");
            media.wait_to_hold(held);
        } else {
            let offer = media.hold_offer(held);
            if !sip.reoffer(conversation, offer, now, &mut self.entropy) {
                media.hold_not_sent();
                media.wait_to_hold(held);
            }
        }
    }
}
