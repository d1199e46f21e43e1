//! Transfer, the transferor's side (RFC 3515 REFER, RFC 5589 §6, §7): a REFER with `Refer-To`
//! and `Referred-By` in the dialog — for an attended transfer the `Refer-To` URI carries a
//! `Replaces` header naming our call with the target ([`Call::replaces_for_target`]); the far end's 202 says it will try, and its NOTIFYs (a
//! `message/sipfrag` of the status line its new call got) say how it went. A 2xx there, or a
//! 202 and then silence (a far end that never notifies), completes the transfer and the call
//! ends with a BYE; a refusal or a failed new call leaves the call as it was.

use std::time::{Duration, Instant};

use super::replaces::escape_header_value;
use super::{Call, CallEvent, CallState, EndReason};
use crate::message::{Method, Request, Uri};
use crate::registration::Entropy;
use crate::transaction::{ClientTransaction, TransactionEvent};

/// How long to wait after the 202 for a first NOTIFY before taking the transfer as done (the
/// far end accepted the REFER; some never notify).
pub const NOTIFY_WITHIN: Duration = Duration::from_secs(32);
/// Once a NOTIFY reported progress, how long the outcome may take when the subscription named
/// no `expires` (RFC 3515 §2.4.5 suggests the REFER's subscription lasts about a minute).
const OUTCOME_WITHIN: Duration = Duration::from_secs(60);
/// The longest `expires` we wait for, whatever the far end says.
const OUTCOME_AT_MOST: Duration = Duration::from_secs(300);

/// How a transfer we asked for ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The far end took the call to the target; ours ends with `EndReason::Transferred`.
    Accepted,
    /// It refused, or the new call failed: our call goes on as it was.
    Failed { reason: String },
}

#[derive(Debug)]
pub(super) struct Transfer {
    transaction: Option<ClientTransaction>,
    /// The far end's 202 came at: a NOTIFY is due within [`NOTIFY_WITHIN`].
    accepted_at: Option<Instant>,
    /// A NOTIFY reported progress: the outcome is due by then (no fallback to success).
    outcome_due: Option<Instant>,
}

impl Transfer {
    pub(super) fn transaction_mut(&mut self) -> Option<&mut ClientTransaction> {
        self.transaction.as_mut()
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let transaction = self
            .transaction
            .as_ref()
            .and_then(ClientTransaction::poll_timeout);
        let notify = match self.outcome_due {
            Some(due) => Some(due),
            None => self.accepted_at.map(|at| at + NOTIFY_WITHIN),
        };
        transaction.into_iter().chain(notify).min()
    }
}

impl Call {
    /// Asks the far end to call `target` instead: a blind transfer, or with `replaces` (the
    /// value of [`Call::replaces_for_target`] of our call with the target) an attended one,
    /// where the far end's INVITE takes that call's place at the target. False when the call is
    /// not up, or a transfer or another request is already under way.
    pub fn refer(
        &mut self,
        target: &Uri,
        replaces: Option<&str>,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) -> bool {
        if self.state != CallState::Established
            || self.transfer.is_some()
            || self.invite_transaction.is_some()
            || self.disconnected
        {
            return false;
        }
        let mut request: Request = self.in_dialog_request(Method::Refer, entropy);
        let refer_to = match replaces {
            Some(replaces) => format!("<{target}?Replaces={}>", escape_header_value(replaces)),
            None => format!("<{target}>"),
        };
        request.headers.push("Refer-To", refer_to);
        request
            .headers
            .push("Referred-By", format!("<{}>", self.party.aor));
        request
            .headers
            .push("Contact", format!("<{}>", self.party.contact));
        let mut transaction =
            ClientTransaction::start(request, self.party.reliable, self.timers, now);
        while let Some(bytes) = transaction.poll_transmit() {
            self.transmits.push_back(bytes);
        }
        self.transfer = Some(Transfer {
            transaction: Some(transaction),
            accepted_at: None,
            outcome_due: None,
        });
        true
    }

    /// The REFER transaction's output and outcome; the NOTIFY deadline.
    pub(super) fn drain_transfer(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        let events = super::drain(&mut transfer.transaction, &mut self.transmits);
        for event in events {
            match event {
                TransactionEvent::Final(response) if (200..300).contains(&response.status) => {
                    transfer.accepted_at = Some(now);
                }
                TransactionEvent::Final(response) => {
                    let reason = format!(
                        "the far end refused the transfer: {} {}",
                        response.status,
                        clean_reason(&response.reason)
                    );
                    return self.transfer_failed(reason);
                }
                TransactionEvent::Timeout | TransactionEvent::TransportError => {
                    return self.transfer_failed("the far end did not answer the REFER".into());
                }
                TransactionEvent::Provisional(_) => {}
            }
        }
        match (transfer.outcome_due, transfer.accepted_at) {
            (Some(due), _) if now >= due => {
                self.transfer_failed("the far end never said how the transfer went".into())
            }
            (None, Some(at)) if now >= at + NOTIFY_WITHIN => {
                self.transfer_accepted(false, now, entropy)
            }
            _ => {}
        }
    }

    /// A NOTIFY in our dialog: the progress of the transfer we asked for (RFC 3515 §2.4.5).
    pub(super) fn on_notify(&mut self, request: &Request, now: Instant, entropy: &mut dyn Entropy) {
        let is_refer = request
            .headers
            .get("Event")
            .or_else(|| request.headers.get("o"))
            .is_some_and(|event| {
                event
                    .split(';')
                    .next()
                    .is_some_and(|name| name.trim().eq_ignore_ascii_case("refer"))
            });
        if !is_refer {
            // An event package we never subscribed to (RFC 6665 §8.3.1).
            return self.respond(request, 489);
        }
        if self.transfer.is_none() {
            // The outcome is known: later NOTIFYs of the same subscription (a `terminated` one
            // after the final status) get 200 while the dialog lasts, since a 481 could make an
            // older UA tear the whole dialog down (RFC 3261 §12.2.1.2).
            return self.respond(request, if self.refer_subscribed { 200 } else { 481 });
        }
        self.respond(request, 200);
        let state = request
            .headers
            .get("Subscription-State")
            .unwrap_or_default()
            .to_ascii_lowercase();
        match sipfrag_status(&request.body) {
            Some(status) if (200..300).contains(&status.0) => {
                self.transfer_accepted(true, now, entropy)
            }
            Some((status, reason)) if status >= 300 => self.transfer_failed(format!(
                "the transfer target did not take the call: {status} {reason}"
            )),
            // Over without a final status: not a success.
            _ if state.trim_start().starts_with("terminated") => {
                self.transfer_failed("the far end ended the transfer without an outcome".into())
            }
            // Progress (100 Trying, 180 Ringing), or a body we cannot read: the outcome is due
            // within the subscription's `expires`.
            _ => {
                let expires = state
                    .split(';')
                    .filter_map(|p| p.trim().strip_prefix("expires="))
                    .find_map(|v| v.trim().parse::<u64>().ok())
                    .map_or(OUTCOME_WITHIN, Duration::from_secs)
                    .min(OUTCOME_AT_MOST);
                if let Some(transfer) = &mut self.transfer {
                    transfer.outcome_due = Some(now + expires);
                }
            }
        }
    }

    /// The call ends while a transfer is under way: the far end hanging up after its 202 is
    /// how some transferees finish a transfer; before it, the transfer failed.
    pub(super) fn settle_transfer_on_end(&mut self) {
        let Some(transfer) = self.transfer.take() else {
            return;
        };
        let outcome = if transfer.accepted_at.is_some() {
            TransferOutcome::Accepted
        } else {
            TransferOutcome::Failed {
                reason: "the call ended before the far end took the transfer".into(),
            }
        };
        self.events.push_back(CallEvent::Transferred(outcome));
    }

    /// The `Replaces` value (RFC 3891 §3) that names this call's dialog as its far end sees
    /// it — their tag is the `to-tag` — for a REFER that hands another party to them. None
    /// unless the call is up.
    pub fn replaces_for_target(&self) -> Option<String> {
        if self.state != CallState::Established {
            return None;
        }
        Some(format!(
            "{};to-tag={};from-tag={}",
            self.call_id,
            self.dialog.remote.tag()?,
            self.dialog.local.tag()?
        ))
    }

    /// Who the far end is: the address we dialled, or the caller's From.
    pub fn remote_uri(&self) -> &Uri {
        &self.dialog.remote.uri
    }

    /// Who we are in the call: our AOR as caller, the address called as callee.
    pub fn local_uri(&self) -> &Uri {
        &self.dialog.local.uri
    }

    /// Hangs up a call whose party now talks to someone else (the consultation call of an
    /// attended transfer that succeeded): BYE, and the call ends `Transferred`.
    pub fn hang_up_transferred(&mut self, now: Instant, entropy: &mut dyn Entropy) {
        if matches!(self.state, CallState::Established | CallState::AwaitingAck) {
            let bye = self.in_dialog_request(Method::Bye, entropy);
            self.start_other(bye, now);
            self.session_timer = None;
            self.end(EndReason::Transferred);
        }
    }

    /// A transfer of ours is under way (REFER sent, outcome not known).
    pub fn is_transferring(&self) -> bool {
        self.transfer.is_some()
    }

    /// The last transfer of ours was accepted on the far end's word (a NOTIFY with a 2xx), not
    /// taken as done from its silence or its hang-up.
    pub fn transfer_confirmed(&self) -> bool {
        self.transfer_confirmed
    }

    fn transfer_accepted(&mut self, confirmed: bool, now: Instant, entropy: &mut dyn Entropy) {
        self.transfer_confirmed = confirmed;
        self.transfer = None;
        self.refer_subscribed = true;
        self.events
            .push_back(CallEvent::Transferred(TransferOutcome::Accepted));
        // RFC 5589 §6: the transferor hangs up once the transfer succeeded.
        if self.state == CallState::Established {
            let bye = self.in_dialog_request(Method::Bye, entropy);
            self.start_other(bye, now);
            self.session_timer = None;
            self.end(EndReason::Transferred);
        }
    }

    fn transfer_failed(&mut self, reason: String) {
        self.transfer = None;
        self.refer_subscribed = true;
        self.events
            .push_back(CallEvent::Transferred(TransferOutcome::Failed { reason }));
    }
}

/// The status line of a `message/sipfrag` body (RFC 3420): `SIP/2.0 200 OK`.
fn sipfrag_status(body: &[u8]) -> Option<(u16, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let rest = line.strip_prefix("SIP/2.0 ")?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let code: u16 = code.parse().ok()?;
    (100..700)
        .contains(&code)
        .then(|| (code, clean_reason(reason)))
}

/// A far end's reason phrase as pages may see it: at most 80 characters, no control or
/// bidirectional-override characters (a log line or a page must not be rewritten by it).
pub fn clean_reason(text: &str) -> String {
    text.chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .take(80)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::sipfrag_status;

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(
            sipfrag_status(b"SIP/2.0 200 OK\r\n"),
            Some((200, "OK".into()))
        );
        assert_eq!(
            sipfrag_status(b"SIP/2.0 180 Ringing"),
            Some((180, "Ringing".into()))
        );
        assert_eq!(sipfrag_status(b"SIP/2.0 603"), Some((603, String::new())));
        assert_eq!(sipfrag_status(b"SIP/2.0 99 Low"), None);
        assert_eq!(sipfrag_status(b"INVITE sip:a SIP/2.0"), None);
        assert_eq!(sipfrag_status(&[0xff, 0xfe]), None);
        assert_eq!(sipfrag_status(b""), None);
    }
}
