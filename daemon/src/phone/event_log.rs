//! Numbers events and keeps the newest ones so a reconnecting page can resume with `?since=`.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::protocol::{Event, EventMessage};

/// One numbered event, serialized once and shared by every connection that sends it.
#[derive(Debug)]
pub struct Published {
    pub message: EventMessage,
    pub json: String,
    /// Kept for replay and numbered; false for `log` events, which carry the last seq unchanged.
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

impl PartialEq for Published {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl EventLog {
    pub fn new(capacity: usize) -> Self {
        Self {
            last_seq: 0,
            capacity: capacity.max(1),
            recent: VecDeque::new(),
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn push(&mut self, event: Event) -> Arc<Published> {
        self.last_seq += 1;
        let message = EventMessage {
            event,
            seq: self.last_seq,
        };
        let json = serde_json::to_string(&message).unwrap_or_default();
        let published = Arc::new(Published {
            message,
            json,
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
    pub fn transient(&self, event: Event) -> Arc<Published> {
        let message = EventMessage {
            event,
            seq: self.last_seq,
        };
        let json = serde_json::to_string(&message).unwrap_or_default();
        Arc::new(Published {
            message,
            json,
            stored: false,
        })
    }

    pub fn since(&self, since: u64) -> Replay {
        if since > self.last_seq {
            return Replay::Gap;
        }
        let oldest_kept = self
            .recent
            .front()
            .map_or(self.last_seq + 1, |p| p.message.seq);
        // Events since+1 .. oldest_kept-1 were dropped from the buffer.
        if since + 1 < oldest_kept {
            return Replay::Gap;
        }
        Replay::Events(
            self.recent
                .iter()
                .filter(|p| p.message.seq > since)
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
            name: n.to_string(),
        })
    }

    fn seqs(replay: Replay) -> Option<Vec<u64>> {
        match replay {
            Replay::Events(events) => Some(events.iter().map(|p| p.message.seq).collect()),
            Replay::Gap => None,
        }
    }

    #[test]
    fn numbers_from_one_and_replays_after_since() {
        let mut log = EventLog::new(3);
        assert_eq!(seqs(log.since(0)), Some(vec![]), "nothing happened yet");
        for n in 1..=3 {
            assert_eq!(log.push(event(n)).message.seq, u64::from(n));
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
        let mut log = EventLog::new(3);
        for n in 1..=5 {
            log.push(event(n));
        }
        // Kept: 3, 4, 5.
        assert_eq!(seqs(log.since(1)), None, "event 2 is gone");
        assert_eq!(seqs(log.since(2)), Some(vec![3, 4, 5]));
        assert!(log.push(event(6)).json.contains(r#""seq":6"#));
    }
}
