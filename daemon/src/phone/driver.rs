//! Runs the sans-IO [`Phone`] in one task. Surfaces talk to it through a cloneable
//! [`PhoneHandle`]; the task is the only owner of phone state, so no lock guards it.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::event_log::{EventLog, Published, Replay};
use super::{Phone, PhoneError};
use crate::protocol::{Action, Event, Hello, VERSION};

/// Where a reconnecting client left off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub instance: String,
    pub since: u64,
}

/// What a new connection starts with: its `hello`, any replayed events, and the live feed.
#[derive(Debug)]
pub struct Subscription {
    pub hello: Hello,
    pub replay: Vec<Arc<Published>>,
    pub events: broadcast::Receiver<Arc<Published>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the phone task has stopped")]
pub struct PhoneStopped;

enum Request {
    Act { action: Action, reply: oneshot::Sender<Result<Value, PhoneError>> },
    Subscribe { resume: Option<Resume>, reply: oneshot::Sender<Subscription> },
}

/// A cheap, cloneable way to drive the phone.
#[derive(Debug, Clone)]
pub struct PhoneHandle {
    requests: mpsc::Sender<Request>,
}

impl PhoneHandle {
    pub async fn act(&self, action: Action) -> Result<Result<Value, PhoneError>, PhoneStopped> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Act { action, reply }).await.map_err(|_| PhoneStopped)?;
        answer.await.map_err(|_| PhoneStopped)
    }

    /// For surfaces that run on their own thread (the tray).
    pub fn blocking_act(&self, action: Action) -> Result<Result<Value, PhoneError>, PhoneStopped> {
        let (reply, answer) = oneshot::channel();
        self.requests.blocking_send(Request::Act { action, reply }).map_err(|_| PhoneStopped)?;
        answer.blocking_recv().map_err(|_| PhoneStopped)
    }

    pub async fn subscribe(&self, resume: Option<Resume>) -> Result<Subscription, PhoneStopped> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Subscribe { resume, reply }).await.map_err(|_| PhoneStopped)?;
        answer.await.map_err(|_| PhoneStopped)
    }
}

/// Starts the phone task. It ends when every handle is dropped.
pub fn spawn(phone: Phone, instance: String, replay_capacity: usize) -> PhoneHandle {
    let (requests, inbox) = mpsc::channel(256);
    // The broadcast buffer only has to absorb bursts; a client that falls further behind is
    // told to reconnect and resumes from the replay log instead.
    let (feed, _) = broadcast::channel(replay_capacity.max(16));
    let driver = Driver { phone, instance, log: EventLog::new(replay_capacity), feed };
    tokio::spawn(driver.run(inbox));
    PhoneHandle { requests }
}

struct Driver {
    phone: Phone,
    instance: String,
    log: EventLog,
    feed: broadcast::Sender<Arc<Published>>,
}

impl Driver {
    async fn run(mut self, mut inbox: mpsc::Receiver<Request>) {
        while let Some(request) = inbox.recv().await {
            match request {
                Request::Act { action, reply } => {
                    let result = self.phone.handle_action(action);
                    self.publish_events();
                    // The requester may have gone away; the action still took effect.
                    let _ = reply.send(result);
                }
                Request::Subscribe { resume, reply } => {
                    let _ = reply.send(self.subscription(resume));
                }
            }
        }
    }

    fn publish_events(&mut self) {
        while let Some(event) = self.phone.poll_event() {
            let published = self.log.push(event);
            tracing::debug!(event = published.message.event.name(), seq = published.message.seq, "event");
            // No receivers is fine: nobody is connected.
            let _ = self.feed.send(published);
        }
    }

    fn subscription(&self, resume: Option<Resume>) -> Subscription {
        let replay = match resume {
            Some(r) if r.instance == self.instance => self.log.since(r.since),
            _ => Replay::Gap,
        };
        let (resumed, replay) = match replay {
            Replay::Events(events) => (true, events),
            Replay::Gap => (false, Vec::new()),
        };
        Subscription {
            hello: Hello {
                version: VERSION,
                instance: self.instance.clone(),
                resumed,
                last_seq: self.log.last_seq(),
                state: self.phone.snapshot(),
            },
            replay,
            events: self.feed.subscribe(),
        }
    }
}

/// The `hello` frame as sent on the wire (always `seq` 0).
pub fn hello_json(hello: Hello) -> String {
    let message = crate::protocol::EventMessage { event: Event::Hello(hello), seq: 0 };
    serde_json::to_string(&message).unwrap_or_default()
}
