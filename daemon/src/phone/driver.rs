//! Runs the sans-IO [`Phone`] in one task. Surfaces talk to it through a cloneable
//! [`PhoneHandle`]; the task is the only owner of phone state, so no lock guards it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::calls::interrupted_event;
use super::event_log::Published;
pub use super::journal::Resume;
use super::journal::{Journal, JournalError, Startup};
use super::{Phone, PhoneError};
use crate::line::MediaSettings;
use crate::line::runtime::{LineInput, LineRuntime};
use crate::line::{LineCommand, LineConfig};
use crate::logging::{LogControl, LogLine};
use crate::origins::Origin;
use crate::protocol::{Action, Event, Hello, Snapshot, VERSION};
use crate::rate::LineBudget;
use crate::timer::sleep_until;

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
        /// The page's origin; `None` for the daemon's own surfaces.
        origin: Option<Origin>,
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
        self.act_for(None, action).await
    }

    /// An action of a page of `origin` (`ack` needs to know whose).
    pub async fn act_for(
        &self,
        origin: Option<Origin>,
        action: Action,
    ) -> Result<Result<Value, PhoneError>, PhoneStopped> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Act {
                action,
                origin,
                reply,
            })
            .await
            .map_err(|_| PhoneStopped)?;
        answer.await.map_err(|_| PhoneStopped)
    }

    /// For surfaces that run on their own thread (the tray).
    pub fn blocking_act(&self, action: Action) -> Result<Result<Value, PhoneError>, PhoneStopped> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .blocking_send(Request::Act {
                action,
                origin: None,
                reply,
            })
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

/// Where recordings go, and how many days they are kept (`None`: until deleted by hand).
#[derive(Debug, Clone, Default)]
pub struct Recordings {
    pub dir: Option<std::path::PathBuf>,
    pub keep_days: Option<u32>,
    /// When expiry last ran (ms since the Unix epoch).
    pub expired_at: i64,
}

/// Media settings for the configured line and for lines pages provision (which do not inherit
/// IT's `[media]` choices), and the installation's SIP instance id every line registers with.
pub struct Media {
    pub line: MediaSettings,
    pub provisioned: MediaSettings,
    pub sip_instance: Option<String>,
    pub recordings: Recordings,
    /// The devices plugged in, from a watcher thread (the cpal backend; `None` for files).
    pub devices: Option<mpsc::Receiver<crate::protocol::AudioDeviceList>>,
}

/// `log` events a second, and the burst, that reach pages; the rest are counted and dropped.
const LOG_LINES_PER_SECOND: u32 = 20;
const LOG_LINES_BURST: u32 = 100;

/// Starts the phone task, with its line when one is configured. It ends when every handle is
/// dropped or on [`PhoneHandle::shutdown`]. Calls the `journal` found interrupted by the last
/// stop are reported ended first.
pub fn spawn(
    phone: Phone,
    journal: (Journal, Startup),
    media: Media,
    line: Option<LineConfig>,
    logs: Option<(LogControl, mpsc::Receiver<LogLine>)>,
) -> PhoneHandle {
    let (requests, inbox) = mpsc::channel(256);
    // The broadcast buffer only has to absorb bursts; a client that falls further behind is
    // told to reconnect and resumes from the replay log instead.
    let (feed, _) = broadcast::channel(1024);
    let (journal, startup) = journal;
    let sip_instance = media.sip_instance;
    let recordings = media.recordings;
    let (log_control, log_lines) = logs.unzip();
    let mut driver = Driver {
        phone,
        journal,
        recordings,
        started_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        feed,
        line: None,
        media: media.provisioned,
        sip_instance,
        log_control,
        log_lines,
        devices: media.devices,
        audio_check: None,
        devices_listed: false,
        log_budget: LineBudget::new(LOG_LINES_PER_SECOND, LOG_LINES_BURST, Instant::now()),
        shutdown: None,
    };
    driver.end_interrupted(&startup);
    // A page's account from before the restart takes the place of the configured line, as its
    // provisioning did then.
    if !driver.restore_provisioning(startup.saved.provisioning.clone()) {
        driver.line = line.map(|mut config| {
            config.sip_instance = driver.sip_instance.clone();
            LineRuntime::new(config, media.line, Instant::now())
        });
    }
    tokio::spawn(driver.run(inbox));
    PhoneHandle { requests }
}

struct Driver {
    phone: Phone,
    journal: Journal,
    /// Where recordings are and how long they stay.
    recordings: Recordings,
    /// `hello.startedAt`: pages tell a restart by it.
    started_at: String,
    feed: broadcast::Sender<Arc<Published>>,
    line: Option<LineRuntime>,
    /// For lines provisioned later.
    media: MediaSettings,
    sip_instance: Option<String>,
    /// Rate limit for `log` events, and how many it dropped since the last one sent.
    log_budget: LineBudget,
    /// The seed's `debug_console`/`debug_html`, switched by provisioning; lines for pages.
    log_control: Option<LogControl>,
    log_lines: Option<mpsc::Receiver<LogLine>>,
    devices: Option<mpsc::Receiver<crate::protocol::AudioDeviceList>>,
    /// The levels of the device check running (`test_audio`), and what stops it.
    audio_check: Option<DeviceCheck>,
    /// Whether the phone has had the first list (pages hear only of changes after it).
    devices_listed: bool,
    /// Set while shutting down: when to give up waiting, and whom to tell.
    shutdown: Option<(Instant, oneshot::Sender<()>)>,
}

/// A running device check (`test_audio`): its levels (an `Err` when the devices did not open),
/// and what stops it.
type DeviceCheck = (mpsc::Receiver<Result<f32, String>>, Arc<AtomicBool>);

/// What woke the loop.
enum Wake {
    Request(Option<Request>),
    Line(LineInput),
    Log(LogLine),
    Devices(crate::protocol::AudioDeviceList),
    /// A level from the device check; `None` when it ended.
    AudioCheck(Option<Result<f32, String>>),
    Timer,
}

impl Driver {
    /// The one loop: page/tray requests, SIP bytes and timers, one at a time, so phone state
    /// needs no lock.
    async fn run(mut self, mut inbox: mpsc::Receiver<Request>) {
        // A restored provisioning's line.
        while let Some(command) = self.phone.poll_command() {
            self.command(command, Instant::now()).await;
        }
        loop {
            let deadline = [
                self.line.as_ref().and_then(LineRuntime::next_wake),
                self.phone.next_wake(),
                self.phone.next_callback_at().map(|at| {
                    let wait = at - time::OffsetDateTime::now_utc();
                    Instant::now() + Duration::try_from(wait).unwrap_or(Duration::ZERO)
                }),
                self.shutdown.as_ref().map(|(at, _)| *at),
            ]
            .into_iter()
            .flatten()
            .min();
            let wake = tokio::select! {
                request = inbox.recv(), if self.shutdown.is_none() => Wake::Request(request),
                inbound = recv_line(&mut self.line) => Wake::Line(inbound),
                Some(line) = recv_log(&mut self.log_lines) => Wake::Log(line),
                Some(list) = recv_devices(&mut self.devices) => Wake::Devices(list),
                level = recv_check(&mut self.audio_check) => Wake::AudioCheck(level),
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
                Wake::AudioCheck(level) => self.publish_check(level),
                Wake::Devices(list) => {
                    self.phone.devices_listed(list, !self.devices_listed);
                    self.devices_listed = true;
                }
                Wake::Timer => {
                    if let Some(line) = &mut self.line {
                        line.on_timer(now).await;
                    }
                }
            }
            // Calls to answer by themselves or to give up on, callbacks due (the phone's own
            // deadlines).
            self.phone.handle_timeout(now);
            while let Some(command) = self.phone.poll_command() {
                self.command(command, now).await;
            }
            self.drain_line().await;
            // A call (ringing too) takes the devices from a device check.
            if let Some((_, stop)) = &self.audio_check
                && self.phone.has_calls()
            {
                stop.store(true, Ordering::Relaxed);
            }
            self.publish_events();
            // After the events: a callback is forgotten only once its `callbackDue` is stored.
            self.keep_state();
            if self.finish_shutdown(now) {
                break;
            }
        }
    }

    async fn handle_request(&mut self, request: Request, now: Instant) {
        match request {
            Request::Act {
                action,
                origin,
                reply,
            } => {
                let result = self.act(action, origin.as_ref());
                let mut commands =
                    std::iter::from_fn(|| self.phone.poll_command()).collect::<Vec<_>>();
                // What only sends a request (the INVITE of `start_call`, an answer, a hold) goes
                // out before the store's commit, so the commit is not on the wire's path; the
                // page still hears of it (event, reply) only once stored. The rest, in order,
                // after the reply: stopping a line or a call's media may take a while.
                let first_slow = commands
                    .iter()
                    .position(|c| !goes_out_at_once(c))
                    .unwrap_or(commands.len());
                let later = commands.split_off(first_slow);
                for command in commands {
                    self.command(command, now).await;
                }
                // Before the reply: what the agent changed survives a crash once acknowledged.
                self.keep_state();
                self.publish_events();
                // The requester may have gone away; the action still took effect.
                let _ = reply.send(result);
                for command in later {
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
                let _ = reply.send(self.snapshot());
            }
            Request::ForgetOrigin { origin } => self.journal.forget(&origin),
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
            LineCommand::CheckAudio { seconds, devices } => {
                let mut audio = self.media.audio.clone();
                if let Some(chosen) = devices {
                    (audio.input, audio.output) = (chosen.input, chosen.output);
                }
                let (levels, measured) = mpsc::channel(16);
                let stop = Arc::new(AtomicBool::new(false));
                crate::audio::check::run(audio, seconds, levels, Arc::clone(&stop));
                self.audio_check = Some((measured, stop));
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

    /// The phone's events: stored, then sent.
    fn publish_events(&mut self) {
        let mut events = Vec::new();
        while let Some(event) = self.phone.poll_event() {
            tracing::debug!(event = event.name(), "event");
            events.push(event);
        }
        if !events.is_empty() {
            self.publish(&events);
        }
    }

    fn publish(&mut self, events: &[Event]) {
        for published in self.journal.publish(events, now_ms()) {
            // No receivers is fine: nobody is connected.
            let _ = self.feed.send(published);
        }
        let closed = events
            .iter()
            .any(|e| matches!(e, Event::RecordingChanged(r) if r.state == "stopped"));
        if closed {
            self.expire_recordings();
        }
    }

    /// The actions the journal answers (history, acknowledgements) or helps with (notes for a
    /// call only the history knows); the rest are the phone's.
    fn act(&mut self, action: Action, origin: Option<&Origin>) -> Result<Value, PhoneError> {
        match action {
            Action::GetState => Ok(serde_json::json!({ "state": self.snapshot() })),
            // One at a time: a page asking again and again gets no pile of threads and tones.
            Action::TestAudio(_) if self.audio_check.is_some() => Err(PhoneError::CallInProgress(
                "a device check is running; wait for its audioTest with done".into(),
            )),
            Action::Ack(ack) => match self.journal.ack(origin, ack.seq) {
                Ok(acked) => Ok(serde_json::json!({ "acked": acked })),
                Err(e @ JournalError::Unavailable(_)) => {
                    Err(PhoneError::StorageUnavailable(e.to_string()))
                }
                Err(e) => Err(PhoneError::InvalidParams(e.to_string())),
            },
            Action::GetHistory(query) => {
                let (limit, before) = page_of(query.limit, query.before.as_deref())?;
                match self.journal.history(origin, limit, before) {
                    Ok(calls) => Ok(serde_json::json!({ "calls": calls })),
                    Err(e) => Err(PhoneError::StorageUnavailable(e.to_string())),
                }
            }
            Action::ListRecordings(query) => {
                let (limit, before) = page_of(query.limit, query.before.as_deref())?;
                match self.journal.recordings(
                    origin,
                    limit,
                    before,
                    query.conversation_id.as_deref(),
                ) {
                    Ok(recordings) => Ok(serde_json::json!({ "recordings": recordings })),
                    Err(e) => Err(PhoneError::StorageUnavailable(e.to_string())),
                }
            }
            Action::TagRecording(request) => self.tag_recording(origin, request),
            Action::SubmitNotes(notes) => {
                // After-call work: on any call of the history the page may see (one from before
                // the memory's recent calls or a restart is recalled); a call in progress is the
                // phone's. Without a store, the phone's recent calls are all there is.
                let id = notes.conversation_id.as_str();
                // While the store fails it may lack a recent call: the phone's memory decides.
                let store_decides = self.journal.has_store()
                    && self.journal.status().state == crate::protocol::StorageState::Ok;
                if !self.phone.has_call_in_progress(id) && store_decides {
                    let Some(call) = self.journal.call(origin, id) else {
                        return Err(PhoneError::UnknownCall(format!(
                            "no call with conversationId `{}` in this page's history",
                            id.chars().take(64).collect::<String>()
                        )));
                    };
                    self.phone.recall(&call);
                }
                self.phone.handle_action(Action::SubmitNotes(notes))
            }
            Action::Provision(params) => {
                let result = self.phone.handle_action(Action::Provision(params.clone()));
                // Only pages provision (the session allows no other caller).
                let origin = origin.map(Origin::as_str).unwrap_or_default();
                if result.is_ok()
                    && let Err(e) = self.journal.keep_provisioning(&params, origin)
                {
                    tracing::warn!(
                        "the provisioned account will not be restored after a restart: {e}"
                    );
                }
                result
            }
            Action::Logout => {
                let result = self.phone.handle_action(Action::Logout);
                if result.is_ok() {
                    self.journal.forget_provisioning();
                }
                result
            }
            action => self.phone.handle_action(action),
        }
    }

    /// Stores what the phone changed that no event carries: the agent's blacklist, pending
    /// callbacks. With the store off (IT's choice) they last for this run, as documented.
    fn keep_state(&mut self) {
        let changes = [
            (
                "blacklist",
                self.phone
                    .take_changed_blacklist()
                    .map(|b| serde_json::json!(b)),
            ),
            (
                "callbacks",
                self.phone
                    .take_changed_callbacks()
                    .map(|c| serde_json::json!(c)),
            ),
        ];
        for (key, value) in changes {
            if let Some(value) = value
                && self.journal.has_store()
                && let Err(e) = self.journal.keep_state(key, &value)
            {
                tracing::warn!(
                    "the {key} changed but could not be stored (tried again at the next change or timer): {e}"
                );
                self.phone.still_to_store(key);
            }
        }
    }

    /// Provisions the phone again with the account a page provisioned before the restart, if
    /// one was kept and is still valid (not expired, IT still allows provisioning).
    fn restore_provisioning(&mut self, saved: Option<Value>) -> bool {
        let params = match self.journal.recall_provisioning(saved) {
            Ok(Some((params, origin))) if self.phone.provisioning_allowed_for(&origin) => params,
            Ok(Some(_)) => {
                tracing::warn!(
                    "the account a page provisioned before the restart is not restored: IT no longer lists its origin in [provisioning] allowed_origins"
                );
                self.journal.forget_provisioning();
                return false;
            }
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(
                    "the account a page provisioned before the restart is not restored: {e}; a page provisions it again"
                );
                return false;
            }
        };
        match self.phone.handle_action(Action::Provision(params)) {
            Ok(_) => {
                tracing::info!("the account a page provisioned before the restart is restored");
                true
            }
            Err(e) => {
                tracing::warn!(
                    "the account a page provisioned before the restart is not restored: {e}"
                );
                self.journal.forget_provisioning();
                false
            }
        }
    }

    /// Replaces a recording's tags: at most 20, each 1 to 64 characters, no control characters.
    fn tag_recording(
        &mut self,
        origin: Option<&Origin>,
        request: crate::protocol::TagRecording,
    ) -> Result<Value, PhoneError> {
        if request.tags.len() > 20 {
            return Err(PhoneError::InvalidParams(format!(
                "at most 20 tags, got {}",
                request.tags.len()
            )));
        }
        let mut tags: Vec<String> = Vec::new();
        for tag in &request.tags {
            let tag = tag.trim();
            // Control and format characters (U+202E…) could disguise a tag in a CRM's page.
            let hidden = |c: char| {
                c.is_control()
                    || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
            };
            if tag.is_empty() || tag.chars().count() > 64 || tag.chars().any(hidden) {
                return Err(PhoneError::InvalidParams(
                    "each tag is 1 to 64 characters, without control or format characters".into(),
                ));
            }
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
        if !self.journal.has_store() {
            return Err(PhoneError::StorageUnavailable(
                "recordings are tagged in the store, and there is none this run".into(),
            ));
        }
        let Some(mut recording) = self.journal.recording(origin, &request.id) else {
            return Err(PhoneError::InvalidParams(format!(
                "no recording with id `{}`",
                request.id.chars().take(64).collect::<String>()
            )));
        };
        recording.tags = tags.clone();
        self.publish(&[recording.tagged()]);
        Ok(serde_json::json!({ "id": recording.id, "tags": tags }))
    }

    /// The phone's state with the store's.
    fn snapshot(&self) -> Snapshot {
        let mut snapshot = self.phone.snapshot();
        snapshot.storage = self.journal.status();
        snapshot
    }

    /// Calls the last run left up or ringing end now, with cause `interrupted`, and stay known
    /// for after-call work.
    fn end_interrupted(&mut self, startup: &Startup) {
        // A store that cannot be written would not remember they were reported: each start
        // would report them again under new seqs. They wait for a writable store.
        if self.journal.status().state != crate::protocol::StorageState::Ok {
            return;
        }
        let last_ms = startup.last_event_ms.unwrap_or(0);
        let mut events: Vec<Event> = startup
            .interrupted
            .iter()
            .map(|call| {
                self.phone.recall(call);
                interrupted_event(call, last_ms)
            })
            .collect();
        if !events.is_empty() {
            tracing::warn!(
                calls = events.len(),
                "calls were cut by the daemon stopping; reporting them ended"
            );
        }
        // Their recordings hold what was written up to the stop (a page a second).
        for recording in &startup.interrupted_recordings {
            let mut stopped = recording.clone();
            stopped.state = "stopped".into();
            stopped.problem = Some(
                "the daemon stopped during the recording; the file holds what was written until then"
                    .into(),
            );
            events.push(stopped.event());
        }
        if !events.is_empty() {
            self.publish(&events);
        }
        self.expire_recordings();
    }

    /// Deletes recordings older than `[recording] keep_days` (files and entries), at most
    /// once an hour.
    fn expire_recordings(&mut self) {
        let now = now_ms();
        if now.saturating_sub(self.recordings.expired_at) < 3_600_000 {
            return;
        }
        self.recordings.expired_at = now;
        let (Some(days), Some(dir)) = (self.recordings.keep_days, self.recordings.dir.clone())
        else {
            return;
        };
        let before = now_ms().saturating_sub(i64::from(days) * 86_400_000);
        for name in self.journal.expire_recordings(before) {
            // Only names this daemon gave: never a path.
            if name.contains(['/', '\\']) || name.starts_with('.') {
                continue;
            }
            match std::fs::remove_file(dir.join(&name)) {
                Ok(()) => tracing::info!(file = %name, "recording deleted ([recording] keep_days)"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(file = %name, "cannot delete an expired recording: {e}"),
            }
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
        let _ = self.feed.send(self.journal.transient(&event));
    }

    /// `audioTest` events: to the pages connected now, not kept (a level meter replays nothing).
    fn publish_check(&mut self, level: Option<Result<f32, String>>) {
        let test = match level {
            Some(Ok(level)) => crate::protocol::AudioTest {
                input_level: Some(f64::from(level)),
                done: false,
                reason: None,
            },
            end => {
                self.audio_check = None;
                crate::protocol::AudioTest {
                    input_level: None,
                    done: true,
                    reason: end.and_then(Result::err),
                }
            }
        };
        let _ = self
            .feed
            .send(self.journal.transient(&Event::AudioTest(test)));
    }

    fn subscription(&mut self, resume: Option<Resume>, origin: Option<Origin>) -> Subscription {
        let (resumed, replay) = self.journal.subscribe(origin.as_ref(), resume.as_ref());
        Subscription {
            hello: Hello {
                version: VERSION,
                instance: self.journal.instance().to_owned(),
                started_at: self.started_at.clone(),
                resumed,
                last_seq: self.journal.last_seq(),
                state: self.snapshot(),
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

async fn recv_devices(
    lists: &mut Option<mpsc::Receiver<crate::protocol::AudioDeviceList>>,
) -> Option<crate::protocol::AudioDeviceList> {
    match lists {
        Some(lists) => lists.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_check(check: &mut Option<DeviceCheck>) -> Option<Result<f32, String>> {
    match check {
        Some((levels, _)) => levels.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_line(line: &mut Option<LineRuntime>) -> LineInput {
    match line {
        Some(line) => line.recv().await,
        None => std::future::pending().await,
    }
}

/// Commands the line carries out by sending a request, without waiting on anything.
fn goes_out_at_once(command: &LineCommand) -> bool {
    matches!(
        command,
        LineCommand::Dial { .. }
            | LineCommand::DialAll { .. }
            | LineCommand::Answer { .. }
            | LineCommand::Reject { .. }
            | LineCommand::Hold { .. }
            | LineCommand::Dtmf { .. }
            | LineCommand::Transfer { .. }
    )
}

/// A page of the history or the recordings: `limit` (1 to [`MAX_HISTORY`], 50 when absent) and
/// `before` (RFC 3339) in ms since the Unix epoch.
fn page_of(limit: Option<u32>, before: Option<&str>) -> Result<(u32, Option<i64>), PhoneError> {
    let limit = limit.unwrap_or(50);
    if !(1..=MAX_HISTORY).contains(&limit) {
        return Err(PhoneError::InvalidParams(format!(
            "`limit` is 1 to {MAX_HISTORY}, got {limit}"
        )));
    }
    let before = match before {
        None => None,
        Some(text) => Some(parse_time_ms(text).ok_or_else(|| {
            PhoneError::InvalidParams(
                "`before` is an RFC 3339 time such as 2026-12-03T09:30:00Z".into(),
            )
        })?),
    };
    Ok((limit, before))
}

/// The most calls one `get_history` returns (notes are up to 10,000 characters each).
const MAX_HISTORY: u32 = 100;

/// The wall clock in ms since the Unix epoch (when events are stored).
pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

/// An RFC 3339 time in ms since the Unix epoch.
fn parse_time_ms(text: &str) -> Option<i64> {
    let time =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The `hello` frame as sent on the wire (always `seq` 0).
pub fn hello_json(hello: Hello) -> String {
    let message = crate::protocol::EventMessage {
        event: Event::Hello(hello),
        seq: 0,
    };
    serde_json::to_string(&message).unwrap_or_default()
}
