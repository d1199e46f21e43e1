//! Numbers events and keeps the newest ones in memory, so most reconnecting pages resume
//! without reading the store (and all of them do when there is no store).

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Serialize;

use crate::protocol::Event;

/// An event framed as on the wire (`EventMessage`'s form), without copying the event.
#[derive(Serialize)]
struct Framed<'a> {
    #[serde(flatten)]
    event: &'a Event,
    seq: u64,
}

/// The wire JSON of `event` numbered `seq`.
pub fn frame(event: &Event, seq: u64) -> String {
    serde_json::to_string(&Framed { event, seq }).unwrap_or_default()
}

/// One numbered event, serialized once and shared by every connection that sends it.
#[derive(Debug, PartialEq, Eq)]
pub struct Published {
    pub seq: u64,
    pub json: String,
    /// Kept for replay and numbered; false for `log` and `storageChanged` events, which carry
    /// the last seq unchanged.
    pub stored: bool,
}

#[derive(Debug)]
pub struct EventLog {
    last_seq: u64,
    capacity: usize,
    recent: VecDeque<Arc<Published>>,
}

/// What a resuming client gets.
#[derive(Debug, PartialEq)]
pub enum Replay {
    /// Everything after `since`, oldest first (possibly nothing).
    Events(Vec<Arc<Published>>),
    /// `since` is older than the buffer or newer than any event: start from a fresh snapshot.
    Gap,
}

impl EventLog {
    /// An empty window whose next event is `last_seq + 1`.
    pub fn new(capacity: usize, last_seq: u64) -> Self {
        Self {
            last_seq,
            capacity: capacity.max(1),
            recent: VecDeque::new(),
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn push(&mut self, event: &Event) -> Arc<Published> {
        self.last_seq += 1;
        let published = Arc::new(Published {
            seq: self.last_seq,
            json: frame(event, self.last_seq),
            stored: true,
        });
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(Arc::clone(&published));
        published
    }

    /// An event sent live but neither numbered nor kept (`log` lines): it carries the last seq,
    /// so a page resuming from it misses nothing.
    pub fn transient(&self, event: &Event) -> Arc<Published> {
        Arc::new(Published {
            seq: self.last_seq,
            json: frame(event, self.last_seq),
            stored: false,
        })
    }

    /// The oldest seq the window holds (past the last when it is empty).
    pub fn oldest_seq(&self) -> u64 {
        self.recent.front().map_or(self.last_seq + 1, |p| p.seq)
    }

    /// The kept events after `since` (oldest first), whatever the window still holds.
    pub fn kept_after(&self, since: u64) -> impl Iterator<Item = &Arc<Published>> {
        self.recent.iter().filter(move |p| p.seq > since)
    }

    pub fn since(&self, since: u64) -> Replay {
        if since > self.last_seq {
            return Replay::Gap;
        }
        let oldest_kept = self.recent.front().map_or(self.last_seq + 1, |p| p.seq);
        // Events since+1 .. oldest_kept-1 were dropped from the buffer.
        if since + 1 < oldest_kept {
            return Replay::Gap;
        }
        Replay::Events(
            self.recent
                .iter()
                .filter(|p| p.seq > since)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::StatusChanged;

    fn event(n: u32) -> Event {
        Event::StatusChanged(StatusChanged {
            softphone_id: n.to_string(),
            accept_calls: true,
            ready: true,
            name: n.to_string(),
        })
    }

    fn seqs(replay: Replay) -> Option<Vec<u64>> {
        match replay {
            Replay::Events(events) => Some(events.iter().map(|p| p.seq).collect()),
            Replay::Gap => None,
        }
    }

    #[test]
    fn numbers_from_one_and_replays_after_since() {
        let mut log = EventLog::new(3, 0);
        assert_eq!(seqs(log.since(0)), Some(vec![]), "nothing happened yet");
        for n in 1..=3 {
            assert_eq!(log.push(&event(n)).seq, u64::from(n));
        }
        assert_eq!(seqs(log.since(0)), Some(vec![1, 2, 3]));
        assert_eq!(seqs(log.since(2)), Some(vec![3]));
        assert_eq!(seqs(log.since(3)), Some(vec![]));
        assert_eq!(
            seqs(log.since(4)),
            None,
            "a seq from the future is a different history"
        );
    }

    #[test]
    fn gap_when_the_buffer_no_longer_holds_the_next_event() {
        let mut log = EventLog::new(3, 0);
        for n in 1..=5 {
            log.push(&event(n));
        }
        // Kept: 3, 4, 5.
        assert_eq!(seqs(log.since(1)), None, "event 2 is gone");
        assert_eq!(seqs(log.since(2)), Some(vec![3, 4, 5]));
        assert!(log.push(&event(6)).json.contains(r#""seq":6"#));
    }
}
