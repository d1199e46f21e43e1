//! The tray thread: builds the menu from the phone snapshot and the pending origins, and turns
//! clicks into phone actions and approval decisions.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use tray_icon::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

use super::{TrayContext, Update, open_with_desktop};
use crate::protocol::{Action, CallRecord, LineState, Snapshot, StorageState, UpdatePresence};

const ORIGIN_REFRESH: Duration = Duration::from_secs(1);

pub(super) fn run(context: TrayContext, updates: Sender<Update>, inbox: Receiver<Update>) {
    let tray = match TrayIconBuilder::new()
        .with_tooltip("softphone-bridge")
        .with_icon(icon(false))
        .build()
    {
        Ok(tray) => tray,
        Err(e) => {
            tracing::warn!(
                "no tray icon ({e}); is there a desktop session? running on without a tray"
            );
            return;
        }
    };
    // The tray library reports clicks through a process-global hook; this is the one place that
    // reads it, and it only forwards into this thread's inbox.
    MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
        let _ = updates.send(Update::Click(event.id.0));
    }));
    let mut state: Option<(Snapshot, Vec<CallRecord>)> = None;
    let mut pending: Vec<String> = Vec::new();
    let mut next_refresh = Instant::now();
    loop {
        let mut dirty = false;
        match inbox.recv_timeout(next_refresh.saturating_duration_since(Instant::now())) {
            Ok(Update::State(snapshot, recent)) => {
                state = Some((*snapshot, recent));
                dirty = true;
            }
            Ok(Update::Click(id)) => {
                handle_click(&id, &context);
                dirty = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Pending origins are recorded by connection tasks (and the CLI edits the file), so the
        // tray looks at them on a timer rather than being told.
        if Instant::now() >= next_refresh {
            next_refresh = Instant::now() + ORIGIN_REFRESH;
            let now = context
                .policy
                .store()
                .lock()
                .map(|s| s.origins().pending.clone())
                .unwrap_or_default();
            if now != pending {
                pending = now;
                dirty = true;
            }
        }
        if dirty && let Some((snapshot, recent)) = &state {
            rebuild(&tray, snapshot, recent, &pending);
        }
    }
    MenuEvent::set_event_handler(None::<fn(MenuEvent)>);
}

fn handle_click(id: &str, context: &TrayContext) {
    if let Some(status) = id.strip_prefix("presence:") {
        let action = Action::UpdatePresence(UpdatePresence {
            softphone_id: status.to_owned(),
        });
        if let Ok(Err(e)) = context.phone.blocking_act(action) {
            tracing::warn!("presence change from the tray failed: {e}");
        }
    } else if let Some(origin) = id.strip_prefix("approve:") {
        decide(context, origin, true);
    } else if let Some(origin) = id.strip_prefix("deny:") {
        decide(context, origin, false);
    } else if id == "demo" {
        open_with_desktop(&format!("https://localhost:{}/demo", context.port));
    } else if id == "logs" {
        open_with_desktop(&context.data_dir.join("logs").to_string_lossy());
    } else if id == "quit" {
        let _ = context.quit.blocking_send(());
    }
}

fn decide(context: &TrayContext, origin: &str, approve: bool) {
    let Ok(mut store) = context.policy.store().lock() else {
        return;
    };
    let result = if approve {
        store.approve(origin)
    } else {
        store.deny(origin)
    };
    match result {
        Ok(origin) => tracing::info!(%origin, approve, "origin decided from the tray"),
        Err(e) => tracing::warn!("{e}"),
    }
}

fn rebuild(tray: &TrayIcon, snapshot: &Snapshot, recent: &[CallRecord], pending: &[String]) {
    let menu = Menu::new();
    let line = match snapshot.line.state {
        LineState::None => "Line: not configured".to_owned(),
        state => format!(
            "Line: {} {}",
            serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            snapshot.line.extension.clone().unwrap_or_default()
        ),
    };
    let mut items: Vec<Box<dyn tray_icon::menu::IsMenuItem>> = Vec::new();
    items.push(Box::new(MenuItem::with_id("line", line, false, None)));
    let presence = Submenu::new(format!("Status: {}", snapshot.presence.name), true);
    for status in &snapshot.statuses {
        let checked = status.softphone_id == snapshot.presence.softphone_id;
        let item = CheckMenuItem::with_id(
            format!("presence:{}", status.softphone_id),
            &status.name,
            true,
            checked,
            None,
        );
        let _ = presence.append(&item);
    }
    items.push(Box::new(presence));
    if snapshot.storage.state != StorageState::Ok {
        items.push(Box::new(MenuItem::with_id(
            "storage",
            storage_warning(snapshot),
            false,
            None,
        )));
    }
    if !recent.is_empty() {
        let calls = Submenu::new("Recent calls", true);
        for call in recent {
            let _ = calls.append(&MenuItem::with_id(
                format!("call:{}", call.conversation_id),
                recent_call_label(call),
                false,
                None,
            ));
        }
        items.push(Box::new(calls));
    }
    if !pending.is_empty() {
        let approvals = Submenu::new(format!("Pages asking for access ({})", pending.len()), true);
        for origin in pending {
            let one = Submenu::new(origin, true);
            let _ = one.append(&MenuItem::with_id(
                format!("approve:{origin}"),
                "Allow",
                true,
                None,
            ));
            let _ = one.append(&MenuItem::with_id(
                format!("deny:{origin}"),
                "Deny",
                true,
                None,
            ));
            let _ = approvals.append(&one);
        }
        items.push(Box::new(approvals));
    }
    items.push(Box::new(PredefinedMenuItem::separator()));
    items.push(Box::new(MenuItem::with_id(
        "demo",
        "Open demo page",
        true,
        None,
    )));
    items.push(Box::new(MenuItem::with_id(
        "logs",
        "Open logs folder",
        true,
        None,
    )));
    items.push(Box::new(PredefinedMenuItem::separator()));
    items.push(Box::new(MenuItem::with_id("quit", "Quit", true, None)));
    for item in &items {
        let _ = menu.append(item.as_ref());
    }
    tray.set_menu(Some(Box::new(menu)));
    let _ = tray.set_icon(Some(icon(snapshot.line.state == LineState::Registered)));
    let warning = match snapshot.storage.state {
        StorageState::Ok => String::new(),
        _ => " — work NOT being saved".to_owned(),
    };
    let _ = tray.set_tooltip(Some(format!(
        "softphone-bridge — {}{warning}",
        snapshot.presence.name
    )));
}

/// The tray's line about a store that is not saving, short enough for a menu.
fn storage_warning(snapshot: &Snapshot) -> String {
    let why = snapshot
        .storage
        .reason
        .as_deref()
        .unwrap_or("unknown reason");
    let short: String = why.chars().take(80).collect();
    format!("⚠ Calls and notes are not being saved: {short}")
}

/// `↘ 1002 · 3:04 · Sale` — direction, number, duration and disposition.
fn recent_call_label(call: &CallRecord) -> String {
    let arrow = if call.call_type == "inbound" {
        "↘"
    } else {
        "↗"
    };
    let number: String = call.number.chars().take(32).collect();
    let mut label = format!("{arrow} {number}");
    match (call.duration, call.cause.as_deref()) {
        (None, _) => label.push_str(" · now"),
        (Some(0), Some(cause)) if call.answered_at.is_none() => {
            label.push_str(&format!(" · {}", cause.replace('_', " ")));
        }
        (Some(seconds), _) => label.push_str(&format!(" · {}:{:02}", seconds / 60, seconds % 60)),
    }
    if let Some(disposition) = &call.disposition {
        let short: String = disposition.chars().take(24).collect();
        label.push_str(&format!(" · {short}"));
    }
    label
}

/// A 32×32 dot: green when the line is registered, grey otherwise.
fn icon(registered: bool) -> Icon {
    const SIZE: u32 = 32;
    let color: [u8; 3] = if registered {
        [0x2e, 0xa0, 0x43]
    } else {
        [0x80, 0x80, 0x80]
    };
    let mut rgba = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (dx, dy) = (x as f32 - 15.5, y as f32 - 15.5);
            let inside = dx * dx + dy * dy <= 14.0 * 14.0;
            rgba.extend_from_slice(&color);
            rgba.push(if inside { 0xff } else { 0 });
        }
    }
    // The buffer is exactly SIZE×SIZE×4 bytes, the only way from_rgba can fail.
    Icon::from_rgba(rgba, SIZE, SIZE)
        .unwrap_or_else(|_| unreachable!("icon buffer has the right size"))
}
