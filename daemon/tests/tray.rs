//! The tray menu, driven the way a desktop drives it: over D-Bus. Each test starts a private
//! session bus (`dbus-daemon`), runs the daemon with a tray on it, reads the menu through the
//! StatusNotifierItem's `com.canonical.dbusmenu` interface with `busctl`, clicks items, and
//! checks the effect over the WebSocket API.

mod common;
mod lab;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{CRM, Daemon, eventually};
use serde_json::Value;

struct SessionBus {
    child: Child,
    address: String,
}

impl SessionBus {
    fn start() -> Self {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (package dbus) is installed");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("bus address");
        SessionBus {
            child,
            address: line.trim().to_owned(),
        }
    }

    fn busctl(&self, args: &[&str]) -> Option<Value> {
        let out = Command::new("busctl")
            .arg(format!("--address={}", self.address))
            .arg("--json=short")
            .args(args)
            .output()
            .expect("busctl (package systemd) is installed");
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The bus name of the daemon's StatusNotifierItem, once it has registered.
    fn tray_name(&self) -> String {
        eventually("the tray on the bus", Duration::from_secs(15), || {
            let list = self.busctl(&["list"])?;
            list.as_array()?
                .iter()
                .filter_map(|e| e["name"].as_str())
                .find(|n| n.starts_with("org.kde.StatusNotifierItem-"))
                .map(str::to_owned)
        })
    }

    /// Every menu item as (id, label), depth first.
    fn menu(&self, tray: &str) -> Vec<(i64, String)> {
        let layout = self
            .busctl(&[
                "call",
                tray,
                "/MenuBar",
                "com.canonical.dbusmenu",
                "GetLayout",
                "iias",
                "0",
                "--",
                "-1",
                "0",
            ])
            .unwrap_or_default();
        let mut items = Vec::new();
        flatten(&layout["data"][1], &mut items);
        items
    }

    fn click(&self, tray: &str, label: &str) {
        let out = self.send_click(tray, label);
        assert!(
            out.status.success(),
            "click {label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn send_click(&self, tray: &str, label: &str) -> std::process::Output {
        let id = eventually(
            &format!("menu item {label:?}"),
            Duration::from_secs(15),
            || {
                self.menu(tray)
                    .into_iter()
                    .find(|(_, l)| l == label)
                    .map(|(id, _)| id)
            },
        );
        let id = id.to_string();
        Command::new("busctl")
            .arg(format!("--address={}", self.address))
            .args([
                "call",
                tray,
                "/MenuBar",
                "com.canonical.dbusmenu",
                "Event",
                "isvu",
                &id,
                "clicked",
                "s",
                "",
                "0",
            ])
            .output()
            .expect("busctl")
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(ia{sv}av)` node: [id, props, children]; children are variants wrapping nodes.
fn flatten(node: &Value, items: &mut Vec<(i64, String)>) {
    let (Some(id), Some(label)) = (
        node[0].as_i64(),
        node[1]["label"]["data"].as_str().or(Some("")),
    ) else {
        return;
    };
    items.push((id, label.to_owned()));
    for child in node[2].as_array().into_iter().flatten() {
        flatten(&child["data"], items);
    }
}

fn daemon_with_tray(bus: &SessionBus) -> Daemon {
    Daemon::launch(
        tempfile::tempdir().expect("tempdir"),
        "",
        &[("DBUS_SESSION_BUS_ADDRESS", &bus.address)],
        false,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tray_shows_state_and_changes_presence() {
    let bus = SessionBus::start();
    let daemon = daemon_with_tray(&bus);
    let tray = bus.tray_name();
    let labels: Vec<String> = eventually("the full menu", Duration::from_secs(15), || {
        let labels: Vec<String> = bus.menu(&tray).into_iter().map(|(_, l)| l).collect();
        labels.iter().any(|l| l == "Quit").then_some(labels)
    });
    for expected in [
        "Line: not configured",
        "Status: Available",
        "Busy",
        "Open demo page",
        "Open logs folder",
        "Quit",
    ] {
        assert!(
            labels.iter().any(|l| l == expected),
            "{expected:?} missing from {labels:?}"
        );
    }

    let mut page = daemon.connect(CRM).await;
    // busctl is a blocking child process; the runtime's other worker keeps the page's socket going.
    bus.click(&tray, "Busy");
    let event = page.event("statusChanged").await;
    assert_eq!(
        event["payload"]["softphoneId"], "busy",
        "the tray acts through the phone, like a page"
    );
    eventually(
        "the menu to show the new status",
        Duration::from_secs(15),
        || {
            bus.menu(&tray)
                .iter()
                .any(|(_, l)| l == "Status: Busy")
                .then_some(())
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tray_lists_recent_calls_from_the_history() {
    let bus = SessionBus::start();
    let daemon = Daemon::launch(
        tempfile::tempdir().expect("tempdir"),
        "[demo]\nline = true\n[audio]\nbackend = \"file\"\n",
        &[("DBUS_SESSION_BUS_ADDRESS", &bus.address)],
        false,
    );
    let tray = bus.tray_name();
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    // Only `echo` answers on the demo line: this one ends at once, unanswered.
    page.request("start_call", serde_json::json!({"dialTo": "5550199"}))
        .await;
    page.event("callEnded").await;
    let labels = eventually(
        "the call among recent calls",
        Duration::from_secs(15),
        || {
            let labels: Vec<String> = bus.menu(&tray).into_iter().map(|(_, l)| l).collect();
            labels
                .iter()
                .any(|l| l.starts_with("↗ 5550199 · "))
                .then_some(labels)
        },
    );
    assert!(labels.iter().any(|l| l == "Recent calls"), "{labels:?}");
    assert!(
        !labels.iter().any(|l| l.contains("not being saved")),
        "no warning while the store works: {labels:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tray_approves_a_pending_origin_and_quits() {
    let bus = SessionBus::start();
    let mut daemon = daemon_with_tray(&bus);
    let tray = bus.tray_name();
    let page = "https://newcrm.example.org";
    let refused = softphone_bridge::client::connect(&daemon.target(Some(page)), &daemon.ca).await;
    assert!(refused.is_err(), "unknown origin refused first");

    eventually(
        "the pending origin in the menu",
        Duration::from_secs(15),
        || bus.menu(&tray).iter().any(|(_, l)| l == page).then_some(()),
    );
    bus.click(&tray, "Allow");
    eventually("the approval", Duration::from_secs(15), || {
        let list = daemon.cli(&["origins", "list"]);
        String::from_utf8_lossy(&list.stdout)
            .contains("approved")
            .then_some(())
    });
    daemon.connect(page).await;
    let list = daemon.cli(&["origins", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).trim(),
        format!("approved\t{page}")
    );

    // The daemon may exit before it answers the click; that is the point of Quit.
    bus.send_click(&tray, "Quit");
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(10)),
        Some(0),
        "Quit stops the daemon cleanly"
    );
    assert!(
        !daemon.data_dir().join("daemon.json").exists(),
        "and it cleans up after itself"
    );
}

/// The StatusNotifierItem's tooltip title and text, joined.
fn tooltip(bus: &SessionBus, tray: &str) -> String {
    let value = bus
        .busctl(&[
            "get-property",
            tray,
            "/StatusNotifierItem",
            "org.kde.StatusNotifierItem",
            "ToolTip",
        ])
        .unwrap_or_default();
    value.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tray_answers_mutes_holds_and_hangs_up_a_call_and_shows_pages_and_dnd() {
    let bus = SessionBus::start();
    let kamailio = lab::Kamailio::start("MD5");
    let baresip = lab::Baresip::start(&kamailio, "1002", 441.0, "PCMU");
    let daemon = Daemon::launch(
        tempfile::tempdir().expect("tempdir"),
        &format!(
            "[account]\nserver = \"127.0.0.1:{}\"\ntransport = \"udp\"\nusername = \"1001\"\n\
             password = \"secret1001\"\n[media]\ncodecs = [\"pcmu\"]\n[audio]\nbackend = \"file\"\n",
            kamailio.port
        ),
        &[("DBUS_SESSION_BUS_ADDRESS", &bus.address)],
        false,
    );
    let tray = bus.tray_name();
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let has = |label: &str| bus.menu(&tray).iter().any(|(_, l)| l == label);
    eventually("the connected page", Duration::from_secs(15), || {
        (has("Connected pages (1)") && has(CRM)).then_some(())
    });

    // The far end calls; the agent answers from the tray.
    baresip.command(
        "dial",
        &format!("sip:1001@{}:{}", kamailio.address, kamailio.port),
    );
    let (id, _) = page.incoming_call().await;
    eventually("the ringing call", Duration::from_secs(15), || {
        has("Incoming call: 1002").then_some(())
    });
    assert!(
        tooltip(&bus, &tray).contains("Incoming call: 1002"),
        "{}",
        tooltip(&bus, &tray)
    );
    bus.click(&tray, "Answer");
    let accepted = page.event("callAccepted").await;
    assert_eq!(accepted["payload"]["conversationId"], id.as_str());

    bus.click(&tray, "Mute");
    let muted = page.event("callMuteChanged").await;
    assert_eq!(muted["payload"]["muted"], true, "{muted}");
    bus.click(&tray, "Unmute");
    let unmuted = page.event("callMuteChanged").await;
    assert_eq!(unmuted["payload"]["muted"], false, "{unmuted}");
    bus.click(&tray, "Hold");
    let held = page.event("callHoldChanged").await;
    assert_eq!(held["payload"]["conversationId"], id.as_str(), "{held}");
    eventually("the held call", Duration::from_secs(15), || {
        has("On hold: 1002").then_some(())
    });
    bus.click(&tray, "Resume");
    page.event("callHoldChanged").await;
    bus.click(&tray, "Hang up");
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["conversationId"], id.as_str());

    // "Do not disturb" declines calls until it is turned off again.
    bus.click(&tray, "Do not disturb");
    let dnd = page.event("statusChanged").await;
    assert_eq!(dnd["payload"]["acceptCalls"], false, "{dnd}");
    eventually("the menu to show DND", Duration::from_secs(15), || {
        has("Status: Busy").then_some(())
    });
    bus.click(&tray, "Do not disturb");
    let back = page.event("statusChanged").await;
    assert_eq!(back["payload"]["softphoneId"], "available", "{back}");

    // A page waiting for approval puts a badge on the icon and says so in the tooltip.
    let waiting = "https://other-crm.example.org";
    let refused =
        softphone_bridge::client::connect(&daemon.target(Some(waiting)), &daemon.ca).await;
    assert!(refused.is_err());
    eventually(
        "the approval in the tooltip",
        Duration::from_secs(15),
        || {
            tooltip(&bus, &tray)
                .contains("a page is waiting for approval")
                .then_some(())
        },
    );
    let pixmap = bus
        .busctl(&[
            "get-property",
            &tray,
            "/StatusNotifierItem",
            "org.kde.StatusNotifierItem",
            "IconPixmap",
        ])
        .unwrap_or_default();
    // ARGB pixels: the orange badge (opaque #f08c00) is on the icon.
    let bytes: Vec<u64> = pixmap["data"][0][2]
        .as_array()
        .expect("pixels")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(
        bytes.chunks(4).any(|argb| argb == [255, 0xf0, 0x8c, 0x00]),
        "no badge on the icon"
    );
    drop(page);
    eventually("no page connected", Duration::from_secs(15), || {
        has("Connected pages (0)").then_some(())
    });
}
