//! Runs the sans-IO [`Phone`] in one task. Surfaces talk to it through a cloneable
//! [`PhoneHandle`]; the task is the only owner of phone state, so no lock guards it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::event_log::{EventLog, Published, Replay};
use super::{Phone, PhoneError};
use crate::line::MediaSettings;
use crate::line::runtime::{LineInput, LineRuntime};
use crate::line::{LineCommand, LineConfig};
use crate::logging::{LogControl, LogLine};
use crate::origins::Origin;
use crate::protocol::{Action, Event, Hello, Snapshot, VERSION};
use crate::rate::LineBudget;
use crate::timer::sleep_until;

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
    Act {
        action: Action,
        reply: oneshot::Sender<Result<Value, PhoneError>>,
    },
    Subscribe {
        resume: Option<Resume>,
        /// The page's origin: replay never reaches back before its first time. `None` for the
        /// daemon's own surfaces (the tray), which resume nothing.
        origin: Option<Origin>,
        reply: oneshot::Sender<Subscription>,
    },
    Snapshot {
        reply: oneshot::Sender<Snapshot>,
    },
    /// The origin was revoked: if approved again, it starts without history.
    ForgetOrigin {
        origin: Origin,
    },
    /// Unregister (waiting at most `UNREGISTER_WAIT`), then stop.
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// How long shutdown waits for the registrar to confirm the unregistration.
const UNREGISTER_WAIT: Duration = Duration::from_secs(2);

/// A cheap, cloneable way to drive the phone.
#[derive(Debug, Clone)]
pub struct PhoneHandle {
    requests: mpsc::Sender<Request>,
}

impl PhoneHandle {
    pub async fn act(&self, action: Action) -> Result<Result<Value, PhoneError>, PhoneStopped> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Act { action, reply })
            .await
            .map_err(|_| PhoneStopped)?;
        answer.await.map_err(|_| PhoneStopped)
    }

    /// For surfaces that run on their own thread (the tray).
    pub fn blocking_act(&self, action: Action) -> Result<Result<Value, PhoneError>, PhoneStopped> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .blocking_send(Request::Act { action, reply })
            .map_err(|_| PhoneStopped)?;
        answer.blocking_recv().map_err(|_| PhoneStopped)
    }

    /// Forgets where `origin`'s replay may start (it was revoked).
    pub async fn forget_origin(&self, origin: Origin) -> Result<(), PhoneStopped> {
        self.requests
            .send(Request::ForgetOrigin { origin })
            .await
            .map_err(|_| PhoneStopped)
    }

    /// Unregisters the line and stops the phone task.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self
            .requests
            .send(Request::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }

    /// The current state, typed (the tray's view; pages get it as `get_state`).
    pub async fn snapshot(&self) -> Result<Snapshot, PhoneStopped> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Snapshot { reply })
            .await
            .map_err(|_| PhoneStopped)?;
        answer.await.map_err(|_| PhoneStopped)
    }

    pub async fn subscribe(
        &self,
        resume: Option<Resume>,
        origin: Option<Origin>,
    ) -> Result<Subscription, PhoneStopped> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Subscribe {
                resume,
                origin,
                reply,
            })
            .await
            .map_err(|_| PhoneStopped)?;
        answer.await.map_err(|_| PhoneStopped)
    }
}

/// Media settings for the configured line and for lines pages provision (which do not inherit
/// IT's `[media]` choices), and the installation's SIP instance id every line registers with.
pub struct Media {
    pub line: MediaSettings,
    pub provisioned: MediaSettings,
    pub sip_instance: Option<String>,
}

/// `log` events a second, and the burst, that reach pages; the rest are counted and dropped.
const LOG_LINES_PER_SECOND: u32 = 20;
const LOG_LINES_BURST: u32 = 100;

/// Starts the phone task, with its line when one is configured. It ends when every handle is
/// dropped or on [`PhoneHandle::shutdown`].
pub fn spawn(
    phone: Phone,
    instance: String,
    replay_capacity: usize,
    media: Media,
    line: Option<LineConfig>,
    logs: Option<(LogControl, mpsc::Receiver<LogLine>)>,
) -> PhoneHandle {
    let (requests, inbox) = mpsc::channel(256);
    // The broadcast buffer only has to absorb bursts; a client that falls further behind is
    // told to reconnect and resumes from the replay log instead.
    let (feed, _) = broadcast::channel(replay_capacity.max(16));
    let sip_instance = media.sip_instance;
    let line = line.map(|mut config| {
        config.sip_instance = sip_instance.clone();
        LineRuntime::new(config, media.line, Instant::now())
    });
    let (log_control, log_lines) = logs.unzip();
    let driver = Driver {
        phone,
        instance,
        log: EventLog::new(replay_capacity),
        feed,
        line,
        media: media.provisioned,
        sip_instance,
        log_control,
        log_lines,
        log_budget: LineBudget::new(LOG_LINES_PER_SECOND, LOG_LINES_BURST, Instant::now()),
        floors: HashMap::new(),
        shutdown: None,
    };
    tokio::spawn(driver.run(inbox));
    PhoneHandle { requests }
}

struct Driver {
    phone: Phone,
    instance: String,
    log: EventLog,
    feed: broadcast::Sender<Arc<Published>>,
    line: Option<LineRuntime>,
    /// For lines provisioned later.
    media: MediaSettings,
    sip_instance: Option<String>,
    /// Rate limit for `log` events, and how many it dropped since the last one sent.
    log_budget: LineBudget,
    /// Per origin, the last seq before its first connection: replay never reaches further back,
    /// so a newly allowed page does not receive other pages' history.
    floors: HashMap<Origin, u64>,
    /// The seed's `debug_console`/`debug_html`, switched by provisioning; lines for pages.
    log_control: Option<LogControl>,
    log_lines: Option<mpsc::Receiver<LogLine>>,
    /// Set while shutting down: when to give up waiting, and whom to tell.
    shutdown: Option<(Instant, oneshot::Sender<()>)>,
}

/// What woke the loop.
enum Wake {
    Request(Option<Request>),
    Line(LineInput),
    Log(LogLine),
    Timer,
}

impl Driver {
    /// The one loop: page/tray requests, SIP bytes and timers, one at a time, so phone state
    /// needs no lock.
    async fn run(mut self, mut inbox: mpsc::Receiver<Request>) {
        loop {
            let deadline = [
                self.line.as_ref().and_then(LineRuntime::next_wake),
                self.shutdown.as_ref().map(|(at, _)| *at),
            ]
            .into_iter()
            .flatten()
            .min();
            let wake = tokio::select! {
                request = inbox.recv(), if self.shutdown.is_none() => Wake::Request(request),
                inbound = recv_line(&mut self.line) => Wake::Line(inbound),
                Some(line) = recv_log(&mut self.log_lines) => Wake::Log(line),
                _ = sleep_until(deadline) => Wake::Timer,
            };
            let now = Instant::now();
            match wake {
                Wake::Request(None) => break,
                Wake::Request(Some(request)) => self.handle_request(request, now).await,
                Wake::Line(inbound) => {
                    if let Some(line) = &mut self.line {
                        line.on_input(inbound, now).await;
                    }
                }
                Wake::Log(line) => self.publish_log(line, now),
                Wake::Timer => {
                    if let Some(line) = &mut self.line {
                        line.on_timer(now).await;
                    }
                }
            }
            self.drain_line().await;
            self.publish_events();
            if self.finish_shutdown(now) {
                break;
            }
        }
    }

    async fn handle_request(&mut self, request: Request, now: Instant) {
        match request {
            Request::Act { action, reply } => {
                let result = self.phone.handle_action(action);
                self.publish_events();
                // The requester may have gone away; the action still took effect.
                let _ = reply.send(result);
                while let Some(command) = self.phone.poll_command() {
                    self.command(command, now).await;
                }
            }
            Request::Subscribe {
                resume,
                origin,
                reply,
            } => {
                let _ = reply.send(self.subscription(resume, origin));
            }
            Request::Snapshot { reply } => {
                let _ = reply.send(self.phone.snapshot());
            }
            Request::ForgetOrigin { origin } => {
                self.floors.remove(&origin);
            }
            Request::Shutdown { reply } => {
                if let Some(line) = &mut self.line {
                    line.stop(now).await;
                }
                self.shutdown = Some((now + UNREGISTER_WAIT, reply));
            }
        }
    }

    /// Line events into the phone, and what the phone decides on its own (auto-answer) back to
    /// the line, until both are quiet.
    async fn drain_line(&mut self) {
        loop {
            let Some(line) = &mut self.line else { return };
            while let Some(event) = line.poll_event() {
                self.phone.handle_line_event(event, Instant::now());
            }
            // An ended session (logout, expiry) leaves no line behind until provisioned again.
            if line.is_stopped() && self.shutdown.is_none() {
                self.line = None;
            }
            let mut commanded = false;
            while let Some(command) = self.phone.poll_command() {
                commanded = true;
                self.command(command, Instant::now()).await;
            }
            if !commanded {
                break;
            }
        }
    }

    /// A phone command: most go to the line; provisioning and logout replace or end it.
    async fn command(&mut self, command: LineCommand, now: Instant) {
        match command {
            LineCommand::Provision(account) => {
                if let Some(mut old) = self.line.take() {
                    old.stop_with(now, "provisioned again").await;
                    while let Some(event) = old.poll_event() {
                        self.phone.handle_line_event(event, now);
                    }
                }
                if let Some(control) = &self.log_control {
                    control.set_verbose(account.debug_console.unwrap_or(false));
                    control.set_pages(account.debug_html.unwrap_or(false));
                }
                // The phone checked the account before asking.
                match LineConfig::from_account(&account) {
                    Ok(mut config) => {
                        tracing::info!(server = %config.domain, transport = ?config.kind, "line provisioned by a page");
                        config.sip_instance = self.sip_instance.clone();
                        self.line = Some(LineRuntime::new(config, self.media.clone(), now));
                    }
                    Err(e) => tracing::warn!("provisioning: {e}"),
                }
            }
            LineCommand::Logout => {
                if let Some(line) = &mut self.line {
                    line.stop_with(now, "logout").await;
                }
            }
            command => {
                if let Some(line) = &mut self.line {
                    line.command(command, now).await;
                }
            }
        }
    }

    /// True when a requested shutdown is complete (unregistered, or waited long enough).
    fn finish_shutdown(&mut self, now: Instant) -> bool {
        let done = match (&self.shutdown, &self.line) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some((deadline, _)), Some(line)) => line.is_stopped() || now >= *deadline,
        };
        if done && let Some((_, reply)) = self.shutdown.take() {
            let _ = reply.send(());
        }
        done
    }

    fn publish_events(&mut self) {
        while let Some(event) = self.phone.poll_event() {
            let published = self.log.push(event);
            tracing::debug!(
                event = published.message.event.name(),
                seq = published.message.seq,
                "event"
            );
            // No receivers is fine: nobody is connected.
            let _ = self.feed.send(published);
        }
    }

    /// A `log` event for pages: rate-limited, and not kept for replay (so it never pushes the
    /// call events a page may need to resume out of the window).
    fn publish_log(&mut self, line: crate::logging::LogLine, now: Instant) {
        let Some(left_out) = self.log_budget.allow(now) else {
            return;
        };
        let message = match left_out {
            0 => line.message,
            dropped => format!("({dropped} log lines dropped: too many) {}", line.message),
        };
        let event = Event::Log(crate::protocol::LogLine {
            level: line.level,
            message,
        });
        let _ = self.feed.send(self.log.transient(event));
    }

    fn subscription(&mut self, resume: Option<Resume>, origin: Option<Origin>) -> Subscription {
        let floor = match origin {
            Some(origin) => *self.floors.entry(origin).or_insert(self.log.last_seq()),
            None => self.log.last_seq(),
        };
        let replay = match resume {
            Some(r) if r.instance == self.instance && r.since >= floor => self.log.since(r.since),
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

async fn recv_log(lines: &mut Option<mpsc::Receiver<LogLine>>) -> Option<LogLine> {
    match lines {
        Some(lines) => lines.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_line(line: &mut Option<LineRuntime>) -> LineInput {
    match line {
        Some(line) => line.recv().await,
        None => std::future::pending().await,
    }
}

/// The `hello` frame as sent on the wire (always `seq` 0).
pub fn hello_json(hello: Hello) -> String {
    let message = crate::protocol::EventMessage {
        event: Event::Hello(hello),
        seq: 0,
    };
    serde_json::to_string(&message).unwrap_or_default()
}
