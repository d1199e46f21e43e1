//! Being transferred, the transferee's side (RFC 3515, RFC 5589 §6–7): the far end's REFER in
//! an established call is accepted with 202 and reported ([`CallEvent::Referred`]); the line
//! places the new call and reports its progress back with [`Call::notify_referral`], as NOTIFYs
//! carrying a `message/sipfrag` status line, the last one ending the implicit subscription.

use std::time::Instant;

use super::replaces::unescape;
use super::{Call, CallEvent, CallState, Replaces};
use crate::message::{Method, NameAddr, Request, Uri};
use crate::registration::Entropy;
use crate::transaction::{ClientTransaction, TransactionEvent};

/// How long the implicit subscription lasts unless we end it first, in seconds.
const SUBSCRIPTION_SECONDS: u32 = 60;

/// Where the far end asks us to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    /// The `Refer-To` URI, without its headers.
    pub target: Uri,
    /// A `Replaces` the new INVITE must carry (an attended transfer), already validated.
    pub replaces: Option<String>,
    /// Who asked (`Referred-By`), for the new INVITE.
    pub referred_by: Option<String>,
}

/// The subscription a REFER of theirs created, until its final NOTIFY is answered.
#[derive(Debug)]
pub(super) struct Subscription {
    /// The REFER's CSeq number: the NOTIFYs' `Event: refer;id=` (RFC 3515 §2.4.6).
    id: u32,
    transaction: Option<ClientTransaction>,
    /// The NOTIFY that waits for the one in flight (only the latest news matters).
    queued: Option<Request>,
    /// The final NOTIFY went out: no more.
    terminated: bool,
}

impl Subscription {
    pub(super) fn transaction_mut(&mut self) -> Option<&mut ClientTransaction> {
        self.transaction.as_mut()
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.transaction
            .as_ref()
            .and_then(ClientTransaction::poll_timeout)
    }
}

impl Call {
    /// Their REFER: accepted (202, then NOTIFY 100 Trying) when the call is up and no other
    /// transfer of it is under way; refused with 400 when `Refer-To` is missing, doubled, not a
    /// SIP URI or carries a malformed `Replaces`, with 491 while one is under way, 403 when the
    /// call is not up.
    pub(super) fn on_refer(&mut self, request: &Request, now: Instant, entropy: &mut dyn Entropy) {
        if self.state != CallState::Established {
            return self.respond(request, 403);
        }
        if self.referral.as_ref().is_some_and(|s| !s.terminated) || self.transfer.is_some() {
            return self.respond(request, 491);
        }
        let Some(referral) = parse_referral(request) else {
            return self.respond(request, 400);
        };
        // With our Contact (`dialog_response`): the NOTIFYs' subscription is a dialog usage.
        let accepted = self.dialog_response(request, 202).to_bytes();
        self.send_answer(request, accepted);
        self.referral = Some(Subscription {
            id: request.headers.cseq().map_or(0, |c| c.seq),
            transaction: None,
            queued: None,
            terminated: false,
        });
        self.notify_referral(100, "Trying", now, entropy);
        self.events.push_back(CallEvent::Referred(referral));
    }

    /// Reports how the call the far end referred us to is going: a provisional `status` keeps
    /// the subscription, a final one ends it. Nothing happens without a referral, after the
    /// final report, or once the call ended.
    pub fn notify_referral(
        &mut self,
        status: u16,
        reason: &str,
        now: Instant,
        entropy: &mut dyn Entropy,
    ) {
        if matches!(self.state, CallState::Ended | CallState::Ending) {
            return;
        }
        let Some(id) = self
            .referral
            .as_ref()
            .filter(|s| !s.terminated)
            .map(|s| s.id)
        else {
            return;
        };
        let last = status >= 200;
        let mut notify = self.in_dialog_request(Method::Notify, entropy);
        notify.headers.push("Event", format!("refer;id={id}"));
        notify.headers.push(
            "Subscription-State",
            if last {
                "terminated;reason=noresource".to_owned()
            } else {
                format!("active;expires={SUBSCRIPTION_SECONDS}")
            },
        );
        notify
            .headers
            .push("Contact", format!("<{}>", self.party.contact));
        notify
            .headers
            .push("Content-Type", "message/sipfrag;version=2.0");
        let reason = super::clean_reason(reason);
        notify.body = format!("SIP/2.0 {status} {reason}\r\n").into_bytes();
        let (reliable, timers) = (self.party.reliable, self.timers);
        let Some(subscription) = &mut self.referral else {
            return;
        };
        subscription.terminated = last;
        if subscription.transaction.is_some() {
            subscription.queued = Some(notify);
            return;
        }
        let mut transaction = ClientTransaction::start(notify, reliable, timers, now);
        self.transmits
            .extend(std::iter::from_fn(|| transaction.poll_transmit()));
        subscription.transaction = Some(transaction);
    }

    /// The NOTIFY transaction's output; the queued NOTIFY goes once the one in flight ended.
    pub(super) fn drain_referral(&mut self, now: Instant) {
        let Some(subscription) = &mut self.referral else {
            return;
        };
        // Whatever their answer, the next report goes: a lost progress report is no reason to
        // keep the final one back.
        let events = super::drain(&mut subscription.transaction, &mut self.transmits);
        // Answered (or given up): done with it, though a UDP transaction lingers for Timer K.
        if events
            .iter()
            .any(|event| !matches!(event, TransactionEvent::Provisional(_)))
        {
            subscription.transaction = None;
        }
        if subscription.transaction.is_none()
            && let Some(notify) = subscription.queued.take()
        {
            let mut transaction =
                ClientTransaction::start(notify, self.party.reliable, self.timers, now);
            self.transmits
                .extend(std::iter::from_fn(|| transaction.poll_transmit()));
            subscription.transaction = Some(transaction);
        }
    }
}

/// The `Refer-To` of a REFER (RFC 3515 §2.1: exactly one), as a SIP URI and an optional
/// `Replaces` among its URI headers (RFC 3891 §5). Other URI headers are ignored: a far end
/// must not make us put arbitrary headers on our INVITE.
fn parse_referral(request: &Request) -> Option<Referral> {
    let values = request.headers.all("Refer-To");
    let [value] = values[..] else {
        return None;
    };
    let address = NameAddr::parse(value).ok()?;
    if !matches!(address.uri.scheme.as_str(), "sip" | "sips") {
        return None;
    }
    // The URI text as written, for its headers (`?name=value&…`), which the parser drops.
    let inner = value
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or(value, |(inner, _)| inner);
    let mut replaces = None;
    if let Some((_, headers)) = inner.split_once('?') {
        for header in headers.split('&') {
            let (name, value) = header.split_once('=').unwrap_or((header, ""));
            if name.eq_ignore_ascii_case("replaces") {
                let value = unescape(value)?;
                // Call-IDs and tags are words and tokens (RFC 3261 §25.1): printable ASCII, no
                // comma. Anything else would go on our INVITE as it came.
                if !value.chars().all(|c| c.is_ascii_graphic() && c != ',') {
                    return None;
                }
                Replaces::parse(&value)?;
                if replaces.replace(value).is_some() {
                    return None;
                }
            }
        }
    }
    let referred_by = request
        .headers
        .get("Referred-By")
        .filter(|v| NameAddr::parse(v).is_ok())
        .map(str::to_owned);
    Some(Referral {
        target: address.uri,
        replaces,
        referred_by,
    })
}
