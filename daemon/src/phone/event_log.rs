//! Numbers events and keeps the newest ones so a reconnecting page can resume with `?since=`.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::protocol::{Event, EventMessage};

/// One numbered event, serialized once and shared by every connection that sends it.
#[derive(Debug)]
pub struct Published {
    pub message: EventMessage,
    pub json: String,
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
        Self { last_seq: 0, capacity: capacity.max(1), recent: VecDeque::new() }
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn push(&mut self, event: Event) -> Arc<Published> {
        self.last_seq += 1;
        let message = EventMessage { event, seq: self.last_seq };
        let json = serde_json::to_string(&message).unwrap_or_default();
        let published = Arc::new(Published { message, json });
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(Arc::clone(&published));
        published
    }

    pub fn since(&self, since: u64) -> Replay {
        if since > self.last_seq {
            return Replay::Gap;
        }
        let oldest_kept = self.recent.front().map_or(self.last_seq + 1, |p| p.message.seq);
        // Events since+1 .. oldest_kept-1 were dropped from the buffer.
        if since + 1 < oldest_kept {
            return Replay::Gap;
        }
        Replay::Events(
            self.recent.iter().filter(|p| p.message.seq > since).cloned().collect(),
        )
    }
}
