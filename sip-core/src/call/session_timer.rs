//! Session timers (RFC 4028): a call is refreshed by re-INVITE every half interval by one side,
//! the refresher; the other side ends it when no refresh arrives before the interval runs out.
//! A far end that vanished (crashed, lost its network) is found this way instead of the agent
//! sitting in silence.

use std::time::{Duration, Instant};

use crate::message::Headers;

/// The smallest interval we accept (RFC 4028 §4: at least 90 s).
pub const MIN_SE: u32 = 90;
/// The largest interval we take from a peer: a day (beyond it, dead-call detection is the
/// media timeout's job).
const MAX_SE: u32 = 86_400;
/// After a refresh of ours failed (491, 500…), the next try.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Who refreshes, and when the next refresh or the expiry is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTimer {
    /// Seconds agreed.
    pub interval: u32,
    /// True when we send the refreshes; false when we wait for theirs.
    pub we_refresh: bool,
    due: Instant,
    /// The session ends here unless refreshed: the last refresh plus the interval.
    expires: Instant,
}

/// What is due at [`SessionTimer::due`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Refresh,
    Expired,
}

/// `Session-Expires: delta[;refresher=uac|uas]`.
fn parse(value: &str) -> Option<(u32, Option<String>)> {
    let mut fields = value.split(';');
    let delta = fields.next()?.trim().parse().ok()?;
    let refresher = fields.find_map(|field| {
        let (name, value) = field.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| value.trim().to_ascii_lowercase())
    });
    Some((delta, refresher))
}

/// The interval a message names (`Session-Expires`, compact form `x`).
pub fn requested(headers: &Headers) -> Option<(u32, Option<String>)> {
    headers.get("Session-Expires").and_then(parse)
}

/// Whether a message says `Supported: timer` (or requires it).
pub fn supports_timer(headers: &Headers) -> bool {
    if headers
        .all("Require")
        .iter()
        .any(|tag| tag.trim().eq_ignore_ascii_case("timer"))
    {
        return true;
    }
    headers
        .all("Supported")
        .iter()
        .any(|tag| tag.trim().eq_ignore_ascii_case("timer"))
}

/// What we answer to an INVITE's session-timer request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub interval: u32,
    pub we_refresh: bool,
    /// `Session-Expires` for our 2xx.
    pub header: String,
    /// Whether our 2xx carries `Require: timer` (they refresh and support timers).
    pub require: bool,
}

impl Terms {
    /// The interval they asked for (shortened to ours, never below our minimum or theirs) and
    /// the refresher they named; when they named none, they refresh if they support timers.
    /// A caller that does not support timers cannot refresh, whatever it wrote: we do (§9).
    pub fn for_offer(request: &Headers, ours: u32) -> Self {
        let theirs = supports_timer(request);
        let their_min = request
            .get("Min-SE")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(MIN_SE)
            .clamp(MIN_SE, MAX_SE);
        let (interval, refresher) = match requested(request) {
            Some((interval, refresher)) => (interval.min(ours).max(their_min), refresher),
            None => (ours.max(their_min), None),
        };
        let they_refresh = theirs && refresher.as_deref() != Some("uas");
        Self {
            interval,
            we_refresh: !they_refresh,
            header: format!(
                "{interval};refresher={}",
                if they_refresh { "uac" } else { "uas" }
            ),
            require: they_refresh && theirs,
        }
    }
}

impl SessionTimer {
    fn new(interval: u32, we_refresh: bool, now: Instant) -> Self {
        let mut timer = Self {
            interval,
            we_refresh,
            due: now,
            expires: now,
        };
        timer.refreshed(now);
        timer
    }

    /// We called: the 2xx says who refreshes. Without `Session-Expires` the callee does not do
    /// session timers, and we refresh at our own interval anyway (§7.4): a refresh that fails
    /// with 408 or 481 still finds a vanished far end.
    pub fn for_answer(response: &Headers, ours: u32, now: Instant) -> Self {
        match requested(response) {
            Some((interval, refresher)) => {
                let we_refresh = refresher.as_deref() != Some("uas");
                Self::new(interval.clamp(MIN_SE, MAX_SE), we_refresh, now)
            }
            None => Self::new(ours, true, now),
        }
    }

    /// They called and we answer on `terms` (see [`Terms::for_offer`]).
    pub fn answering(terms: &Terms, now: Instant) -> Self {
        Self::new(terms.interval, terms.we_refresh, now)
    }

    /// A refresh went through, either way: the next one (or the expiry) counts from now. The
    /// refresher sends at half the interval; the other side gives up at the interval less a
    /// third of it, at most 32 s (§10).
    pub fn refreshed(&mut self, now: Instant) {
        let interval = Duration::from_secs(u64::from(self.interval));
        self.expires = now + interval;
        self.due = if self.we_refresh {
            now + interval / 2
        } else {
            now + interval - (interval / 3).min(Duration::from_secs(32))
        };
    }

    /// Tries again a little later (our refresh could not be sent: another INVITE in progress,
    /// or no connection).
    pub fn postpone(&mut self, now: Instant) {
        self.due = now + Duration::from_secs(2);
    }

    /// Our refresh went out: if no answer makes it count, the next try comes after a pause.
    pub fn sent(&mut self, now: Instant) {
        self.due = now + RETRY_AFTER;
    }

    /// The line was away (its connection dropped): refreshes could not pass either way, so
    /// the session counts from its return.
    pub fn resumed(&mut self, now: Instant) {
        if self.we_refresh {
            self.due = now;
        } else {
            self.refreshed(now);
        }
    }

    pub fn due(&self) -> Instant {
        self.due
    }

    /// At [`Self::due`]: a refresh of ours, or the end — theirs never came, or ours kept
    /// failing until the session ran out.
    pub fn what_is_due(&self, now: Instant) -> Due {
        if self.we_refresh && now < self.expires {
            Due::Refresh
        } else {
            Due::Expired
        }
    }

    /// `Session-Expires` for our refreshing re-INVITE, or our answer to theirs.
    pub fn header(&self, refresher_is_uac: bool) -> String {
        format!(
            "{};refresher={}",
            self.interval,
            if refresher_is_uac { "uac" } else { "uas" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut headers = Headers::new();
        for (name, value) in lines {
            headers.push(name, *value);
        }
        headers
    }

    #[test]
    fn who_refreshes_and_when() {
        let now = Instant::now();
        // Their 2xx names us (uac) as refresher: we refresh at half the interval.
        let answer = SessionTimer::for_answer(
            &headers(&[("Session-Expires", "120;refresher=uac")]),
            1800,
            now,
        );
        assert_eq!((answer.interval, answer.we_refresh), (120, true));
        assert_eq!(answer.due(), now + Duration::from_secs(60));
        // They refresh: we give up at 120 - 32 s.
        let answer = SessionTimer::for_answer(
            &headers(&[("Session-Expires", "120 ; Refresher = UAS")]),
            1800,
            now,
        );
        assert_eq!(
            (answer.we_refresh, answer.what_is_due(now)),
            (false, Due::Expired)
        );
        assert_eq!(answer.due(), now + Duration::from_secs(88));
        // No timer in the answer: we refresh at ours.
        let answer = SessionTimer::for_answer(&headers(&[]), 1800, now);
        assert_eq!((answer.interval, answer.we_refresh), (1800, true));

        // They offer 600 and support timers but name no refresher: they refresh, Require.
        let terms = Terms::for_offer(
            &headers(&[("Session-Expires", "600"), ("Supported", "100rel, timer")]),
            1800,
        );
        let timer = SessionTimer::answering(&terms, now);
        assert_eq!((timer.interval, timer.we_refresh), (600, false));
        assert_eq!(
            (terms.header.as_str(), terms.require),
            ("600;refresher=uac", true)
        );
        // No timer support: we refresh, no Require.
        let terms = Terms::for_offer(&headers(&[]), 1800);
        assert_eq!((terms.interval, terms.we_refresh), (1800, true));
        assert_eq!(
            (terms.header.as_str(), terms.require),
            ("1800;refresher=uas", false)
        );
        // They ask us to refresh.
        let terms = Terms::for_offer(
            &headers(&[
                ("Session-Expires", "300;refresher=uas"),
                ("Supported", "timer"),
            ]),
            1800,
        );
        assert!(terms.we_refresh);
        assert_eq!(terms.header, "300;refresher=uas");
        // A long interval of theirs is shortened to ours; garbage is no request.
        let terms = Terms::for_offer(&headers(&[("Session-Expires", "7200")]), 1800);
        assert_eq!(terms.interval, 1800);
        assert_eq!(requested(&headers(&[("Session-Expires", "soon")])), None);
    }
}
