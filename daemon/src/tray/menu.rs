//! The tray thread: builds the menu from the phone snapshot, the pending origins and the
//! connected pages, and turns clicks into phone actions and approval decisions.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use tray_icon::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

use super::{TrayContext, Update, open_with_desktop};
use crate::protocol::{
    Action, CallInfo, CallRecord, CallRef, LineState, Snapshot, StorageState, UpdatePresence,
};

const ORIGIN_REFRESH: Duration = Duration::from_secs(1);

pub(super) fn run(context: TrayContext, updates: Sender<Update>, inbox: Receiver<Update>) {
    let tray = match TrayIconBuilder::new()
        .with_tooltip("softphone-bridge")
        .with_icon(icon(false, false))
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
    let mut connected: Vec<(String, usize)> = Vec::new();
    // The status to go back to when "Do not disturb" is turned off.
    let mut before_dnd: Option<String> = None;
    let mut next_refresh = Instant::now();
    loop {
        let mut dirty = false;
        match inbox.recv_timeout(next_refresh.saturating_duration_since(Instant::now())) {
            Ok(Update::State(snapshot, recent)) => {
                state = Some((*snapshot, recent));
                dirty = true;
            }
            Ok(Update::Click(id)) => {
                if id == "dnd" {
                    if let Some((snapshot, _)) = &state {
                        toggle_dnd(&context, snapshot, &mut before_dnd);
                    }
                } else {
                    handle_click(&id, &context);
                }
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
            let mut pages: Vec<(String, usize)> = context
                .connected
                .open()
                .into_iter()
                .map(|(origin, n)| (origin.to_string(), n))
                .collect();
            pages.sort();
            if pages != connected {
                connected = pages;
                dirty = true;
            }
        }
        if dirty && let Some((snapshot, recent)) = &state {
            rebuild(&tray, snapshot, recent, &pending, &connected);
        }
    }
    MenuEvent::set_event_handler(None::<fn(MenuEvent)>);
}

fn handle_click(id: &str, context: &TrayContext) {
    if let Some((verb, conversation)) = id.split_once(':')
        && let Some(action) = call_action(verb, conversation)
    {
        if let Ok(Err(e)) = context.phone.blocking_act(action) {
            tracing::warn!("{verb} from the tray failed: {e}");
        }
    } else if let Some(status) = id.strip_prefix("presence:") {
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
    } else if id == "panel" {
        open_with_desktop(&format!("https://localhost:{}/panel", context.port));
    } else if id == "demo" {
        open_with_desktop(&format!("https://localhost:{}/demo", context.port));
    } else if id == "logs" {
        open_with_desktop(&context.data_dir.join("logs").to_string_lossy());
    } else if id == "quit" {
        let _ = context.quit.blocking_send(());
    }
}

/// A call control's menu id (`answer:ID`, …) as the phone action it stands for.
fn call_action(verb: &str, conversation: &str) -> Option<Action> {
    let call = CallRef {
        conversation_id: Some(conversation.to_owned()),
    };
    Some(match verb {
        "answer" => Action::Answer(call),
        "reject" => Action::Reject(call),
        "hangup" => Action::Hangup(call),
        "mute" => Action::Mute(call),
        "unmute" => Action::Unmute(call),
        "hold" => Action::Hold(call),
        "unhold" => Action::Unhold(call),
        _ => return None,
    })
}

/// "Do not disturb": on, a status that declines calls — one named for it (`dnd`, `busy`, "Do not
/// disturb") rather than, say, "Offline" — else the first that declines; off, the status the agent
/// had before (or the first that takes calls).
fn toggle_dnd(context: &TrayContext, snapshot: &Snapshot, before: &mut Option<String>) {
    let target = if snapshot.presence.accept_calls {
        *before = Some(snapshot.presence.softphone_id.clone());
        let declining = || snapshot.statuses.iter().filter(|s| !s.accept_calls);
        let named_for_it = |s: &&crate::protocol::PresenceStatus| {
            let (id, name) = (
                s.softphone_id.to_ascii_lowercase(),
                s.name.to_ascii_lowercase(),
            );
            id == "dnd" || id == "busy" || name.contains("disturb") || name == "busy"
        };
        declining()
            .find(named_for_it)
            .or_else(|| declining().next())
    } else {
        let back = before.take();
        snapshot
            .statuses
            .iter()
            .find(|s| Some(&s.softphone_id) == back.as_ref() && s.accept_calls)
            .or_else(|| snapshot.statuses.iter().find(|s| s.accept_calls))
    };
    let Some(status) = target else {
        tracing::warn!("no status fits \"Do not disturb\" ([presence] statuses)");
        return;
    };
    let action = Action::UpdatePresence(UpdatePresence {
        softphone_id: status.softphone_id.clone(),
    });
    if let Ok(Err(e)) = context.phone.blocking_act(action) {
        tracing::warn!("\"Do not disturb\" from the tray failed: {e}");
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

fn rebuild(
    tray: &TrayIcon,
    snapshot: &Snapshot,
    recent: &[CallRecord],
    pending: &[String],
    connected: &[(String, usize)],
) {
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
    // The calls first: answering is what the agent opens the menu for. One call's controls sit
    // in the menu itself; with several, each call has its own submenu.
    if let [call] = snapshot.calls.as_slice() {
        items.push(Box::new(MenuItem::with_id(
            format!("current:{}", call.conversation_id),
            call_label(call),
            false,
            None,
        )));
        items.extend(call_controls(call));
    } else {
        for call in &snapshot.calls {
            let menu = Submenu::new(call_label(call), true);
            for control in call_controls(call) {
                let _ = menu.append(control.as_ref());
            }
            items.push(Box::new(menu));
        }
    }
    if !snapshot.calls.is_empty() {
        items.push(Box::new(PredefinedMenuItem::separator()));
    }
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
    items.push(Box::new(CheckMenuItem::with_id(
        "dnd",
        "Do not disturb",
        true,
        !snapshot.presence.accept_calls,
        None,
    )));
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
    let pages = Submenu::new(format!("Connected pages ({})", connected.len()), true);
    if connected.is_empty() {
        let _ = pages.append(&MenuItem::with_id("pages:none", "None", false, None));
    }
    for (origin, tabs) in connected {
        let label = match tabs {
            1 => origin.clone(),
            n => format!("{origin} ({n} connections)"),
        };
        let _ = pages.append(&MenuItem::with_id(
            format!("page:{origin}"),
            label,
            false,
            None,
        ));
    }
    items.push(Box::new(pages));
    items.push(Box::new(PredefinedMenuItem::separator()));
    items.push(Box::new(MenuItem::with_id(
        "panel",
        "Open phone panel",
        true,
        None,
    )));
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
    let _ = tray.set_icon(Some(icon(
        snapshot.line.state == LineState::Registered,
        !pending.is_empty(),
    )));
    let mut tooltip = format!("softphone-bridge — {}", snapshot.presence.name);
    if let Some(call) = snapshot.calls.first() {
        tooltip.push_str(&format!(" — {}", call_label(call)));
    }
    if snapshot.storage.state != StorageState::Ok {
        tooltip.push_str(" — work NOT being saved");
    }
    match pending.len() {
        0 => {}
        1 => tooltip.push_str(" — a page is waiting for approval"),
        n => tooltip.push_str(&format!(" — {n} pages are waiting for approval")),
    }
    let _ = tray.set_tooltip(Some(tooltip));
}

/// At most `max` characters of what a far end sent, without control characters or the bidi
/// controls that could make a menu entry read as something else.
fn shown(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}'))
        .take(max)
        .collect()
}

/// `Incoming call: 1002`, `Calling 1002…`, `On call: 1002 (muted)`, `On hold: 1002`.
fn call_label(call: &CallInfo) -> String {
    let number = shown(&call.remote, 32);
    let mut label = match (call.state.as_str(), call.call_type.as_str()) {
        ("ringing", "inbound") => format!("Incoming call: {number}"),
        ("ringing", _) => format!("Calling {number}…"),
        ("held", _) => format!("On hold: {number}"),
        _ => format!("On call: {number}"),
    };
    if call.muted {
        label.push_str(" (muted)");
    }
    label
}

/// What the agent can do with the call in its state.
fn call_controls(call: &CallInfo) -> Vec<Box<dyn tray_icon::menu::IsMenuItem>> {
    let id = &call.conversation_id;
    let item = |verb: &str, label: &str| -> Box<dyn tray_icon::menu::IsMenuItem> {
        Box::new(MenuItem::with_id(format!("{verb}:{id}"), label, true, None))
    };
    let mut controls = Vec::new();
    if call.state == "ringing" && call.call_type == "inbound" {
        controls.push(item("answer", "Answer"));
        controls.push(item("reject", "Reject"));
        return controls;
    }
    controls.push(item("hangup", "Hang up"));
    if call.state != "ringing" {
        let (verb, label) = if call.muted {
            ("unmute", "Unmute")
        } else {
            ("mute", "Mute")
        };
        controls.push(item(verb, label));
        let (verb, label) = if call.state == "held" {
            ("unhold", "Resume")
        } else {
            ("hold", "Hold")
        };
        controls.push(item(verb, label));
    }
    controls
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
    let number = shown(&call.number, 32);
    let mut label = format!("{arrow} {number}");
    match (call.duration, call.cause.as_deref()) {
        (None, _) => label.push_str(" · now"),
        (Some(0), Some(cause)) if call.answered_at.is_none() => {
            label.push_str(&format!(" · {}", cause.replace('_', " ")));
        }
        (Some(seconds), _) => label.push_str(&format!(" · {}:{:02}", seconds / 60, seconds % 60)),
    }
    if let Some(disposition) = &call.disposition {
        let short = shown(disposition, 24);
        label.push_str(&format!(" · {short}"));
    }
    label
}

/// A 32×32 dot: green when the line is registered, grey otherwise; with `badge`, a small orange
/// dot at the top right (pages are waiting for the agent's approval).
fn icon(registered: bool, badge: bool) -> Icon {
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
            let (bx, by) = (x as f32 - 25.5, y as f32 - 6.5);
            if badge && bx * bx + by * by <= 6.0 * 6.0 {
                rgba.extend_from_slice(&[0xf0, 0x8c, 0x00, 0xff]);
                continue;
            }
            rgba.extend_from_slice(&color);
            rgba.push(if inside { 0xff } else { 0 });
        }
    }
    // The buffer is exactly SIZE×SIZE×4 bytes, the only way from_rgba can fail.
    Icon::from_rgba(rgba, SIZE, SIZE)
        .unwrap_or_else(|_| unreachable!("icon buffer has the right size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_far_end_cannot_dress_up_a_menu_entry() {
        // "+1 555 0100" shown, then a right-to-left override that would reverse what follows.
        assert_eq!(shown("+1555\u{202e}0100\u{7}\n", 32), "+15550100");
        assert_eq!(shown(&"9".repeat(50), 32).len(), 32);
    }
}
