//! The tray menu, driven the way a desktop drives it: over D-Bus. Each test starts a private
//! session bus (`dbus-daemon`), runs the daemon with a tray on it, reads the menu through the
//! StatusNotifierItem's `com.canonical.dbusmenu` interface with `busctl`, clicks items, and
//! checks the effect over the WebSocket API.

mod common;

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
