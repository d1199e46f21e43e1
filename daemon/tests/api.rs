//! End-to-end tests of the local API against the real binary: TLS trusting only the generated
//! CA, Host and Origin checks, protocol errors, rate limit, fan-out and resume.

mod common;

use common::{CRM, Daemon};
use serde_json::{Value, json};
use softphone_bridge::client::{self, ClientError, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite;

/// The HTTP status a refused WebSocket handshake got.
async fn refused(daemon: &Daemon, target: Target) -> u16 {
    match client::connect(&target, &daemon.ca).await {
        Err(ClientError::Handshake(tungstenite::Error::Http(response))) => {
            response.status().as_u16()
        }
        Ok(_) => panic!("{target:?} was let in"),
        Err(e) => panic!("{target:?} failed otherwise: {e}"),
    }
}

/// A raw HTTPS GET, returning the status line and the body.
async fn https_get(
    daemon: &Daemon,
    host_header: &str,
    path: &str,
    origin: Option<&str>,
) -> (u16, String) {
    let mut tls = client::connect_tls(&daemon.target(None), &daemon.ca)
        .await
        .expect("tls");
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\n{origin}\r\n");
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response).await;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn hello_over_every_loopback_name() {
    let daemon = Daemon::start("");
    for host in ["localhost", "127.0.0.1", "::1"] {
        let target = Target {
            host: host.into(),
            ..daemon.target(Some(CRM))
        };
        let client = daemon.connect_to(target).await;
        let hello = client.hello();
        assert_eq!(hello["seq"], 0);
        assert_eq!(hello["payload"]["version"], 1, "{host}");
        assert_eq!(hello["payload"]["resumed"], false);
        assert_eq!(
            hello["payload"]["state"]["presence"]["softphoneId"],
            "available"
        );
        assert_eq!(hello["payload"]["state"]["line"]["state"], "none");
    }
}

#[tokio::test]
async fn foreign_missing_and_null_origins_are_refused_and_can_do_nothing() {
    let daemon = Daemon::start("");
    assert_eq!(
        refused(&daemon, daemon.target(Some("https://evil.example"))).await,
        403
    );
    assert_eq!(refused(&daemon, daemon.target(None)).await, 403);
    assert_eq!(refused(&daemon, daemon.target(Some("null"))).await, 403);
    assert_eq!(
        refused(&daemon, daemon.target(Some("http://crm.example.com"))).await,
        403,
        "scheme must match"
    );
    assert_eq!(
        refused(&daemon, daemon.target(Some("https://crm.example.com:8443"))).await,
        403,
        "port must match"
    );
    // The iframe bridge's embedder cannot be used from a foreign origin to borrow an allowed one.
    let smuggle = Target {
        path: format!("/ws?embedder={}", "https%3A%2F%2Fcrm.example.com"),
        ..daemon.target(Some("https://evil.example"))
    };
    assert_eq!(refused(&daemon, smuggle).await, 403);
    // From our own origin the embedder decides: a foreign embedder is refused.
    let own = format!("https://localhost:{}", daemon.port);
    let bridged = Target {
        path: "/ws?embedder=https%3A%2F%2Fevil.example".into(),
        ..daemon.target(Some(&own))
    };
    assert_eq!(refused(&daemon, bridged).await, 403);
    let bridged = Target {
        path: "/ws?embedder=https%3A%2F%2Fcrm.example.com".into(),
        ..daemon.target(Some(&own))
    };
    daemon.connect_to(bridged).await;
    // The daemon's own pages are allowed.
    daemon.connect(&own).await;
}

#[tokio::test]
async fn unknown_origin_waits_for_approval_then_connects() {
    let daemon = Daemon::start("");
    let page = "https://newcrm.example.org";
    assert_eq!(refused(&daemon, daemon.target(Some(page))).await, 403);
    let list = daemon.cli(&["origins", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).trim(),
        format!("pending\t{page}")
    );
    let (status, body) = https_get(
        &daemon,
        &format!("localhost:{}", daemon.port),
        "/origin",
        Some(page),
    )
    .await;
    assert_eq!(
        (status, body.contains("\"pending\"")),
        (200, true),
        "{body}"
    );

    assert!(daemon.cli(&["origins", "approve", page]).status.success());
    daemon.connect(page).await;
    assert!(daemon.cli(&["origins", "deny", page]).status.success());
    assert_eq!(refused(&daemon, daemon.target(Some(page))).await, 403);

    let bad = daemon.cli(&["origins", "approve", "not an origin"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("scheme://host"));
}

#[tokio::test]
async fn foreign_host_is_refused_everywhere() {
    let daemon = Daemon::start("");
    let rebinding = Target {
        host_header: Some(format!("evil.example:{}", daemon.port)),
        ..daemon.target(Some(CRM))
    };
    assert_eq!(refused(&daemon, rebinding).await, 403);
    let wrong_port = Target {
        host_header: Some(format!("localhost:{}", daemon.port.wrapping_add(1))),
        ..daemon.target(Some(CRM))
    };
    assert_eq!(refused(&daemon, wrong_port).await, 403);
    assert_eq!(
        https_get(
            &daemon,
            &format!("evil.example:{}", daemon.port),
            "/shim.js",
            None
        )
        .await
        .0,
        403
    );
    let (status, body) = https_get(
        &daemon,
        &format!("127.0.0.1:{}", daemon.port),
        "/shim.js",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("SoftphoneBridge"));
    let (status, body) = https_get(
        &daemon,
        &format!("[::1]:{}", daemon.port),
        "/shim.mjs",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("export default SoftphoneBridge"));
    assert_eq!(
        https_get(
            &daemon,
            &format!("localhost:{}", daemon.port),
            "/nope",
            None
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn malformed_input_gets_specific_codes_and_the_connection_keeps_working() {
    let daemon = Daemon::start("");
    let mut client = daemon.connect(CRM).await;
    let cases: [(&str, &str); 9] = [
        ("{oops", "invalid_json"),
        ("42", "invalid_request"),
        (r#"{"action":"get_state"}"#, "invalid_request"),
        (r#"{"id":1,"action":"frobnicate"}"#, "unknown_action"),
        (r#"{"id":2,"action":"update_presence"}"#, "invalid_params"),
        (
            r#"{"id":3,"action":"update_presence","params":{"softphoneId":7}}"#,
            "invalid_params",
        ),
        (
            r#"{"id":4,"action":"update_presence","params":{"softphoneId":"lunch"}}"#,
            "unknown_status",
        ),
        (
            r#"{"id":5,"action":"start_call","params":{"dialTo":"+18883973342"}}"#,
            "no_line",
        ),
        (
            r#"{"id":6,"action":"call","params":{"destination":"091000000","campaign":"Sale->"}}"#,
            "no_line",
        ),
    ];
    for (text, code) in cases {
        client.send_text(text).await;
        let reply = client.next_message().await;
        assert_eq!(reply["ok"], false, "{text}");
        assert_eq!(reply["error"]["code"], code, "{text} → {reply}");
        assert!(!reply["error"]["message"].as_str().unwrap_or("").is_empty());
    }
    client.ws.send_binary_frame().await;
    assert_eq!(client.next_message().await["error"]["code"], "invalid_json");
    let (reply, _) = client.request("get_state", Value::Null).await;
    assert_eq!(reply["ok"], true, "still serving after bad input: {reply}");
    assert_eq!(
        reply["result"]["state"]["presence"]["softphoneId"],
        "available"
    );
}

/// Finding 14: a request naming `action` twice ran the last one (serde_json keeps the last key).
#[tokio::test]
async fn a_request_repeating_a_key_is_refused_and_does_nothing() {
    let daemon = Daemon::start("");
    let mut client = daemon.connect(CRM).await;
    client
        .send_text(r#"{"id":8,"action":"get_state","action":"update_presence","params":{"softphoneId":"busy"}}"#)
        .await;
    let reply = client.next_message().await;
    assert_eq!(reply["id"], 8, "{reply}");
    assert_eq!(reply["error"]["code"], "invalid_request", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("duplicate key `action`")),
        "{reply}"
    );
    let (reply, events) = client.request("get_state", Value::Null).await;
    assert!(events.is_empty(), "no statusChanged: {events:?}");
    assert_eq!(
        reply["result"]["state"]["presence"]["softphoneId"],
        "available"
    );
}

trait SendBinary {
    async fn send_binary_frame(&mut self);
}
impl SendBinary for softphone_bridge::client::ClientStream {
    async fn send_binary_frame(&mut self) {
        use futures_util::SinkExt;
        self.send(tungstenite::Message::binary(vec![1u8, 2, 3]))
            .await
            .expect("send");
    }
}

#[tokio::test]
async fn oversized_messages_close_only_that_connection() {
    let daemon = Daemon::start("");
    let mut big = daemon.connect(CRM).await;
    let mut other = daemon.connect(CRM).await;
    // The daemon may close while our client is still writing the frame; either way is fine here.
    let oversized = format!(
        r#"{{"id":1,"action":"get_state","params":"{}"}}"#,
        "x".repeat(200_000)
    );
    let _ = futures_util::SinkExt::send(&mut big.ws, tungstenite::Message::text(oversized)).await;
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        futures_util::StreamExt::next(&mut big.ws),
    )
    .await;
    match closed {
        Ok(Some(Ok(tungstenite::Message::Close(Some(frame))))) => {
            assert_eq!(u16::from(frame.code), 1009)
        }
        Ok(Some(Err(_)) | None) => {}
        other => panic!("expected a close, got {other:?}"),
    }
    let (reply, _) = other.request("get_state", Value::Null).await;
    assert_eq!(reply["ok"], true);
}

#[tokio::test]
async fn rate_limit_is_per_connection_with_a_clear_code() {
    let daemon = Daemon::start("actions_per_second = 1\naction_burst = 3\n");
    let mut flood = daemon.connect(CRM).await;
    let mut limited = 0;
    for _ in 0..10 {
        let (reply, _) = flood.request("get_state", Value::Null).await;
        if reply["ok"] == false {
            assert_eq!(reply["error"]["code"], "rate_limited", "{reply}");
            limited += 1;
        }
    }
    assert!(limited >= 6, "burst of 3 then about 1/s: {limited} limited");
    // Another connection has its own allowance.
    let mut calm = daemon.connect(CRM).await;
    assert_eq!(calm.request("get_state", Value::Null).await.0["ok"], true);
}

#[tokio::test]
async fn presence_change_reaches_every_client() {
    let daemon = Daemon::start("");
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(daemon.connect(CRM).await);
    }
    let (reply, before_reply) = clients[0]
        .request("update_presence", json!({"softphoneId": "busy"}))
        .await;
    assert_eq!(
        reply["result"],
        json!({"softphoneId": "busy", "name": "Busy", "acceptCalls": false, "ready": false})
    );
    // The acting page gets the event before its reply, so its state is current when it resumes.
    assert_eq!(before_reply.len(), 1, "{before_reply:?}");
    assert_eq!(before_reply[0]["event"], "statusChanged");
    for client in &mut clients[1..] {
        let event = client.event("statusChanged").await;
        assert_eq!(
            event["payload"],
            json!({"softphoneId": "busy", "name": "Busy", "acceptCalls": false, "ready": false})
        );
        assert!(event["seq"].as_u64().unwrap_or(0) >= 1);
    }
    // A new page sees the new state in its hello.
    let late = daemon.connect(CRM).await;
    assert_eq!(
        late.hello()["payload"]["state"]["presence"]["softphoneId"],
        "busy"
    );
}

#[tokio::test]
async fn dispositions_and_partner_config_are_shared_state() {
    let daemon = Daemon::start("");
    let mut agent = daemon.connect(CRM).await;
    let (reply, _) = agent
        .request("disposition", json!(["Sale", "No answer"]))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let (reply, _) = agent
        .request(
            "partner_config",
            json!({"partnerId": "215fd887-39be-4935-981f-2670d6afeaa7"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let later = daemon.connect(CRM).await;
    let state = &later.hello()["payload"]["state"];
    assert_eq!(state["dispositions"], json!(["Sale", "No answer"]));
    assert_eq!(
        state["partnerConfig"]["partnerId"],
        "215fd887-39be-4935-981f-2670d6afeaa7"
    );
}

#[tokio::test]
async fn since_replays_missed_events_or_says_not_resumed() {
    let daemon = Daemon::start("replay_events = 4\n");
    let first = daemon.connect(CRM).await;
    let instance = first.hello()["payload"]["instance"]
        .as_str()
        .expect("instance")
        .to_owned();
    let since = first.hello()["payload"]["lastSeq"]
        .as_u64()
        .expect("lastSeq");
    drop(first);

    let mut other = daemon.connect(CRM).await;
    for status in ["busy", "break"] {
        other
            .request("update_presence", json!({ "softphoneId": status }))
            .await;
    }
    let resume = |since: u64, instance: &str| Target {
        path: format!("/ws?since={since}&instance={instance}"),
        ..daemon.target(Some(CRM))
    };
    let mut back = daemon.connect_to(resume(since, &instance)).await;
    assert_eq!(back.hello()["payload"]["resumed"], true);
    let replayed = [back.next_message().await, back.next_message().await];
    assert_eq!(replayed[0]["payload"]["softphoneId"], "busy");
    assert_eq!(replayed[1]["payload"]["softphoneId"], "break");
    assert_eq!(replayed[1]["seq"].as_u64(), Some(since + 2));
    assert_eq!(
        back.hello()["payload"]["state"]["presence"]["softphoneId"],
        "break",
        "snapshot is current too"
    );

    let stranger = daemon.connect_to(resume(since, "another-daemon")).await;
    assert_eq!(
        stranger.hello()["payload"]["resumed"],
        false,
        "another daemon's seq means nothing here"
    );

    for status in ["available", "busy", "break", "offline", "available"] {
        other
            .request("update_presence", json!({ "softphoneId": status }))
            .await;
    }
    // The memory window of 4 no longer reaches back: the store does.
    let mut from_store = daemon.connect_to(resume(since, &instance)).await;
    assert_eq!(from_store.hello()["payload"]["resumed"], true);
    let mut seqs = Vec::new();
    for _ in 0..7 {
        seqs.push(
            from_store.next_message().await["seq"]
                .as_u64()
                .expect("seq"),
        );
    }
    assert_eq!(
        seqs,
        (since + 1..=since + 7).collect::<Vec<_>>(),
        "in order, none missing"
    );
}

#[tokio::test]
async fn listens_on_loopback_only() {
    let daemon = Daemon::start("");
    // Keyed by socket inode: /proc/net/tcp* is read in pages, and a table that changes between two
    // reads (other tests open sockets meanwhile) can show one row twice.
    let mut listening = std::collections::BTreeMap::new();
    for (file, width) in [("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)] {
        let table = std::fs::read_to_string(file).unwrap_or_default();
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let Some((address, port)) = local.split_once(':') else {
                continue;
            };
            if *state == "0A" && u16::from_str_radix(port, 16).ok() == Some(daemon.port) {
                assert_eq!(address.len(), width);
                listening.insert(inode.to_string(), address.to_owned());
            }
        }
    }
    let mut listening: Vec<String> = listening.into_values().collect();
    listening.sort();
    // /proc shows addresses in host byte order per 32-bit word: 127.0.0.1 is 0100007F, ::1 ends in 01000000.
    assert_eq!(
        listening,
        ["00000000000000000000000001000000", "0100007F"],
        "only 127.0.0.1 and ::1"
    );
}

#[tokio::test]
async fn plain_http_answers_only_ping() {
    let daemon = Daemon::start("");
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", daemon.port))
        .await
        .expect("tcp");
    tcp.write_all(
        format!(
            "GET /ping HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
            daemon.port
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut response = String::new();
    let _ = tcp.read_to_string(&mut response).await;
    assert!(response.starts_with("HTTP/1.1 204"), "{response}");
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", daemon.port))
        .await
        .expect("tcp");
    tcp.write_all(
        format!(
            "GET /shim.js HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
            daemon.port
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut response = String::new();
    let _ = tcp.read_to_string(&mut response).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
}

#[tokio::test]
async fn garbage_on_the_socket_does_not_hurt_the_daemon() {
    let mut daemon = Daemon::start("");
    let mut client = daemon.connect(CRM).await;
    let payloads: [&[u8]; 4] = [
        b"\x16\x03\x01\x00\x05hello",
        b"\x00\xff\xfe garbage\r\n\r\n",
        b"GET",
        &[0x16; 4096],
    ];
    for bytes in payloads {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", daemon.port))
            .await
            .expect("tcp");
        let _ = tcp.write_all(bytes).await;
        let _ = tcp.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            tcp.read_to_end(&mut sink),
        )
        .await;
    }
    // A TLS client that sends a malformed HTTP head gets 400.
    let (status, _) = https_get(&daemon, "localhost\r\nbroken", "/", None).await;
    assert!(status == 400 || status == 0, "{status}");
    assert!(daemon.is_running());
    assert_eq!(client.request("get_state", Value::Null).await.0["ok"], true);
}

#[tokio::test]
async fn secrets_never_leave_the_daemon() {
    let secret = "hunter2-very-secret";
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"127.0.0.1:5060\"\nusername = \"1001\"\npassword = \"{secret}\"\nauth_key = \"{secret}-key\"\n[log]\nlevel = \"trace\"\n"
    ));
    let mut client = daemon.connect(CRM).await;
    assert!(!client.hello().to_string().contains(secret));
    let (reply, _) = client.request("get_state", Value::Null).await;
    assert!(!reply.to_string().contains(secret));
    let shown = daemon.cli(&[
        "config",
        "show",
        "--config",
        &daemon.data_dir().join("config.toml").to_string_lossy(),
    ]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("***") && !shown.contains(secret), "{shown}");
    assert!(!daemon.log().contains(secret), "log leaks the secret");
    assert!(!daemon.log().is_empty(), "trace logging wrote something");
}
