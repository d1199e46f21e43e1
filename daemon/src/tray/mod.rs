//! The tray menu: line state, the current calls with answer / reject / hang up / mute / hold,
//! presence and "Do not disturb", a warning while the agent's work is not being saved, recent
//! calls, the connected pages, pending origin approvals (with a badge on the icon), demo page,
//! logs, quit.
//!
//! An adapter over the phone's command/event interface like the WebSocket API. The tray library
//! delivers clicks through a process-global receiver; this module is the one place that reads
//! it. On Linux the pure-Rust `ksni` backend talks D-Bus (no GTK); with no desktop session the
//! daemon logs a warning and runs on without a tray.

use std::path::PathBuf;

use crate::origins::OriginPolicy;
use crate::phone::driver::PhoneHandle;

pub struct TrayContext {
    pub phone: PhoneHandle,
    pub policy: OriginPolicy,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Open WebSocket sessions per origin, as the API counts them.
    pub connected: std::sync::Arc<crate::api::Slots<crate::origins::Origin>>,
    pub quit: tokio::sync::mpsc::Sender<()>,
}

/// What the tray thread is told.
#[cfg(feature = "tray")]
#[derive(Debug)]
enum Update {
    /// The phone's state and its newest calls.
    State(
        Box<crate::protocol::Snapshot>,
        Vec<crate::protocol::CallRecord>,
    ),
    /// A menu item was clicked (its id).
    Click(String),
}

#[cfg(feature = "tray")]
mod menu;

#[cfg(feature = "tray")]
/// Starts the tray on its own thread. It lives as long as the process; without a desktop
/// session it logs a warning and ends, and the daemon runs on.
pub fn start(context: TrayContext) {
    let (updates, inbox) = std::sync::mpsc::channel();
    // Feed phone state changes to the tray thread.
    let phone = context.phone.clone();
    let feed = updates.clone();
    tokio::spawn(async move {
        let Ok(mut subscription) = phone.subscribe(None, None).await else {
            return;
        };
        let mut recent = recent_calls(&phone).await;
        if feed
            .send(Update::State(
                Box::new(subscription.hello.state),
                recent.clone(),
            ))
            .is_err()
        {
            return;
        }
        loop {
            let event = match subscription.events.recv().await {
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                Ok(published) => Some(published),
                Err(_) => None,
            };
            let Ok(snapshot) = phone.snapshot().await else {
                return;
            };
            // The history changes with calls and notes, not with every event (log lines).
            if event.is_none_or(|p| changes_history(&p.json)) {
                recent = recent_calls(&phone).await;
            }
            if feed
                .send(Update::State(Box::new(snapshot), recent.clone()))
                .is_err()
            {
                return;
            }
        }
    });
    let spawned = std::thread::Builder::new()
        .name("tray".into())
        .spawn(move || menu::run(context, updates, inbox));
    if let Err(e) = spawned {
        tracing::warn!("cannot start the tray thread: {e}; running without a tray");
    }
}

/// Whether an event (as framed on the wire) changes the call history.
#[cfg(feature = "tray")]
fn changes_history(json: &str) -> bool {
    [
        "callEnded",
        "callRejected",
        "callNotesSubmitted",
        "outboundCallInitiated",
        "incomingCall",
        "callAccepted",
    ]
    .iter()
    .any(|name| json.starts_with(&format!("{{\"event\":\"{name}\"")))
}

/// Calls the tray lists under "Recent calls".
#[cfg(feature = "tray")]
const RECENT_CALLS: u32 = 8;

/// The newest calls of the history (none without a store).
#[cfg(feature = "tray")]
async fn recent_calls(phone: &PhoneHandle) -> Vec<crate::protocol::CallRecord> {
    let query = crate::protocol::HistoryQuery {
        limit: Some(RECENT_CALLS),
        before: None,
    };
    match phone.act(crate::protocol::Action::GetHistory(query)).await {
        Ok(Ok(result)) => serde_json::from_value(result["calls"].clone()).unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[cfg(not(feature = "tray"))]
pub fn start(_context: TrayContext) {
    tracing::info!("built without the `tray` feature; running without a tray");
}

/// Opens a URL or folder with the desktop's default handler.
pub fn open_with_desktop(target: &str) {
    let result = if cfg!(target_os = "windows") {
        std::process::Command::new("cmd")
            .args(["/C", "start", "", target])
            .spawn()
    } else if cfg!(target_os = "macos") {
        std::process::Command::new("open").arg(target).spawn()
    } else {
        std::process::Command::new("xdg-open").arg(target).spawn()
    };
    if let Err(e) = result {
        tracing::warn!("cannot open {target}: {e}");
    }
}
