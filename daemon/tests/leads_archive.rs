//! `softphone-bridge leads archive` against the reference lead-archive server
//! (`tests/lab/lead_archive_server.py`: seed 001's contract over a real SQLite database with
//! VICIdial's `vicidial_list` and `vicidial_list_archive`), started on loopback per test.

mod common;
mod lab;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};

const KEY: &str = "c2VlZC1wbGF0Zm9ybS1rZXk";

struct Platform {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    tls: bool,
}

impl Platform {
    /// `leads`: `vicidial_list` holds leads 1..=leads; `args`: more server flags.
    fn start(leads: u32, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, leads, args)
    }

    fn start_in(dir: tempfile::TempDir, leads: u32, args: &[&str]) -> Self {
        std::fs::write(dir.path().join("server.key"), KEY).expect("key");
        let mut child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/lab/lead_archive_server.py"
            ))
            .arg("--db")
            .arg(dir.path().join("vicidial.sqlite"))
            .arg("--key-file")
            .arg(dir.path().join("server.key"))
            .arg("--log")
            .arg(dir.path().join("requests.jsonl"))
            .args(["--seed", &leads.to_string()])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the reference server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server says where it listens");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the reference server did not start: {line:?}"));
        Self {
            child,
            dir,
            port,
            tls: args.contains(&"--tls"),
        }
    }

    /// The same database, request log and address, the server started again with `args`.
    fn restart(mut self, args: &[&str]) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        let port = self.port.to_string();
        let args: Vec<&str> = ["--port", port.as_str()]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        Self::start_in(dir, 0, &args)
    }

    fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The requests it received: (status, how many ids, the first id).
    fn requests(&self) -> Vec<(u64, u64, Option<i64>)> {
        std::fs::read_to_string(self.dir.path().join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("log line");
                (
                    v["status"].as_u64().unwrap_or(0),
                    v["ids"].as_u64().unwrap_or(0),
                    v["first"].as_i64(),
                )
            })
            .collect()
    }

    /// Rows in a table of the platform's database, read by sqlite3 from Python (not by us).
    fn rows(&self, table: &str) -> u64 {
        let out = Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM {table}').fetchone()[0])"
                ),
            ])
            .arg(self.dir.path().join("vicidial.sqlite"))
            .output()
            .expect("python3");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a count")
    }

    /// A raw request to the endpoint, as any client could send it.
    fn post(&self, key: &str, body: &str) -> (u16, Value) {
        let out = Command::new("curl")
            .args(["-s", "-k", "-w", "\n%{http_code}", "-X", "POST"])
            .arg(format!("{}/vicidial/leads/archive", self.url()))
            .args(["-H", &format!("Authorization: Key={key}")])
            .args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ])
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').expect("status line");
        (
            status.parse().expect("status"),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent's workstation: a data folder and the key in an owner-only file.
struct Workstation {
    dir: tempfile::TempDir,
    key_file: PathBuf,
}

impl Workstation {
    fn new() -> Self {
        Self::with_key(KEY)
    }

    fn with_key(key: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_file = dir.path().join("platform.key");
        std::fs::write(&key_file, format!("{key}\n")).expect("key file");
        set_mode(&key_file, 0o600);
        Self { dir, key_file }
    }

    /// `leads archive --server URL --key-file … ARGS`, ids from `ids_file` if given.
    fn archive(&self, platform: &Platform, args: &[&str]) -> Output {
        common::command(self.dir.path())
            .args([
                "leads",
                "archive",
                "--server",
                &platform.url(),
                "--key-file",
            ])
            .arg(&self.key_file)
            .args(args)
            .output()
            .expect("the CLI runs")
    }

    fn ids_file(&self, ids: impl Iterator<Item = i64>) -> String {
        let path = self.dir.path().join("ids.txt");
        let text: Vec<String> = ids.map(|i| i.to_string()).collect();
        std::fs::write(&path, text.join("\n")).expect("ids file");
        path.to_string_lossy().into_owned()
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn archives_1234_leads_in_three_batches() {
    let platform = Platform::start(1300, &[]);
    let agent = Workstation::new();
    let ids = agent.ids_file(1..=1234);
    let out = agent.archive(&platform, &["--ids-file", &ids, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json_of(&out);
    let batches = report["batches"].as_array().expect("batches");
    let seen: Vec<(u64, &str, u64, u64, u64)> = batches
        .iter()
        .map(|b| {
            (
                b["ids"].as_u64().unwrap_or(0),
                b["status"].as_str().unwrap_or(""),
                b["select_count"].as_u64().unwrap_or(0),
                b["insert_count"].as_u64().unwrap_or(0),
                b["delete_count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (500, "processed", 500, 500, 500),
            (500, "processed", 500, 500, 500),
            (234, "processed", 234, 234, 234),
        ]
    );
    assert_eq!(
        report["totals"],
        json!({"select_count": 1234, "insert_count": 1234, "update_count": 0, "delete_count": 1234})
    );
    // In the platform's database: archived, and deleted from the live list (1235..1300 stay).
    assert_eq!(platform.rows("vicidial_list_archive"), 1234);
    assert_eq!(platform.rows("vicidial_list"), 66);
    assert_eq!(
        platform.requests(),
        vec![
            (200, 500, Some(1)),
            (200, 500, Some(501)),
            (200, 234, Some(1001))
        ]
    );
    // The same command again: the journal knows every batch is done; nothing is sent.
    let again = agent.archive(&platform, &["--ids-file", &ids]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("batch 3/3 (234 ids, 1001 … 1234): done by an earlier run"),
        "{}",
        text(&again)
    );
    assert_eq!(platform.requests().len(), 3);
}

#[test]
fn the_words_report_each_batch_and_the_totals() {
    let platform = Platform::start(30, &[]);
    let agent = Workstation::new();
    // Leads 1..10 archived earlier (not deleted): inserting skips them, updating refreshes them.
    let first = agent.archive(&platform, &["--ids", "1,2,3,4,5,6,7,8,9,10", "--no-delete"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let ids: Vec<String> = (1..=25).map(|i| i.to_string()).collect();
    let out = agent.archive(&platform, &["--ids", &ids.join(","), "--batch-size", "10"]);
    let words = text(&out);
    println!("{words}");
    assert_eq!(out.status.code(), Some(0), "{words}");
    assert!(
        words.contains(
            "batch 1/3 (10 ids, 1 … 10): processed — selected 10, inserted 0, updated 10, deleted 10"
        ),
        "{words}"
    );
    assert!(
        words.contains(
            "batch 3/3 (5 ids, 21 … 25): processed — selected 5, inserted 5, updated 0, deleted 5"
        ),
        "{words}"
    );
    assert!(
        words
            .contains("3 of 3 batches processed; selected 25, inserted 15, updated 10, deleted 25"),
        "{words}"
    );
}

#[test]
fn ids_the_platform_would_refuse_are_refused_before_anything_is_sent() {
    let platform = Platform::start(10, &[]);
    let agent = Workstation::new();
    for (ids, message, server_body) in [
        (
            "1,x,2.5",
            "lead_ids must only contain integer values: \"x\", \"2.5\"",
            r#"{"insert_leads":true,"update_leads":true,"delete_leads":true,"lead_ids":[1,"x",2.5]}"#,
        ),
        (
            "3,4,3",
            "lead_ids cannot contain duplicate values: \"3\"",
            r#"{"insert_leads":true,"update_leads":true,"delete_leads":true,"lead_ids":[3,4,3]}"#,
        ),
        (
            " , ",
            "lead_ids must contain atleast 1 value",
            r#"{"insert_leads":true,"update_leads":true,"delete_leads":true,"lead_ids":[]}"#,
        ),
    ] {
        let out = agent.archive(&platform, &["--ids", ids]);
        assert_eq!(out.status.code(), Some(2), "{ids}: {}", text(&out));
        assert!(text(&out).contains(message), "{ids}: {}", text(&out));
        // The message starts as the platform's own for the same mistake.
        let (status, body) = platform.post(KEY, server_body);
        assert_eq!(status, 400);
        let theirs = body["message"].as_str().expect("message");
        assert!(message.starts_with(theirs), "{message} / {theirs}");
    }
    assert!(
        platform.requests().len() == 3,
        "only the raw posts reached it"
    );
    // A dry run sends nothing either, and needs no key.
    let out = common::command(agent.dir.path())
        .args([
            "leads",
            "archive",
            "--server",
            &platform.url(),
            "--ids",
            "1,2,3",
            "--dry-run",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("dry run: 1 batches"), "{}", text(&out));
    assert_eq!(platform.requests().len(), 3);
}

#[test]
fn the_reference_server_answers_every_documented_error_as_documented() {
    let platform = Platform::start(5, &[]);
    let body = |fields: &str| format!("{{{fields}}}");
    let ok = r#""insert_leads":true,"update_leads":true,"delete_leads":true"#;
    let cases: Vec<(String, &str, u16, Value)> = vec![
        (
            body(ok),
            "wrong-key",
            401,
            json!({"message": "unable to validate api user"}),
        ),
        (
            body(r#""insert_leads":"true","update_leads":true,"delete_leads":true,"lead_ids":[1]"#),
            KEY,
            400,
            json!({"message": "insert_leads must be a boolean value", "lead_errors": 0, "lead_ids": []}),
        ),
        (
            body(r#""insert_leads":true,"delete_leads":true,"lead_ids":[1]"#),
            KEY,
            400,
            json!({"message": "update_leads must be a boolean value", "lead_errors": 0, "lead_ids": []}),
        ),
        (
            body(r#""insert_leads":true,"update_leads":true,"delete_leads":1,"lead_ids":[1]"#),
            KEY,
            400,
            json!({"message": "delete_leads must be a boolean value", "lead_errors": 0, "lead_ids": []}),
        ),
        (
            body(&format!(r#"{ok},"lead_ids":["0"]"#)),
            KEY,
            400,
            json!({"message": "lead_ids must only contain integer values", "lead_errors": 1, "lead_ids": ["0"]}),
        ),
        (
            body(ok),
            KEY,
            400,
            json!({"message": "lead_ids must contain atleast 1 value", "lead_errors": 0, "lead_ids": []}),
        ),
        (
            body(&format!(
                r#"{ok},"lead_ids":[{}]"#,
                (1..=501)
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            KEY,
            400,
            json!({"message": "lead_ids cannot exceed 500 values", "lead_errors": 0, "lead_ids": []}),
        ),
        (
            body(&format!(r#"{ok},"lead_ids":[0,1,0]"#)),
            KEY,
            400,
            json!({"message": "lead_ids cannot contain duplicate values", "lead_errors": 1, "lead_ids": [0]}),
        ),
        (
            body(&format!(r#"{ok},"lead_ids":[0,1]"#)),
            KEY,
            400,
            json!({"message": "lead_ids does not exist", "lead_errors": 1, "lead_ids": [0]}),
        ),
        (
            "not json".to_owned(),
            KEY,
            500,
            json!({"message": "internal server error: JSONDecodeError"}),
        ),
        (
            body(&format!(r#"{ok},"lead_ids":[0,1]"#)).replace("[0,1]", "[1]"),
            KEY,
            200,
            json!({"message": "lead_ids batch was successfully processed", "select_count": 1, "insert_count": 1, "update_count": 0, "delete_count": 1}),
        ),
    ];
    for (request, key, status, answer) in cases {
        assert_eq!(platform.post(key, &request), (status, answer), "{request}");
    }
    // Safe delete: an archived row that no longer matches the live one keeps the lead.
    let platform = Platform::start(5, &[]);
    let keep = r#"{"insert_leads":true,"update_leads":false,"delete_leads":false,"lead_ids":[2]}"#;
    assert_eq!(platform.post(KEY, keep).0, 200);
    let changed = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE vicidial_list SET status='SALE' WHERE lead_id=2\"); c.commit()",
        ])
        .arg(platform.dir.path().join("vicidial.sqlite"))
        .status()
        .expect("python3");
    assert!(changed.success());
    let delete_only =
        r#"{"insert_leads":false,"update_leads":false,"delete_leads":true,"lead_ids":[2]}"#;
    assert_eq!(
        platform.post(KEY, delete_only).1["delete_count"],
        0,
        "the archive row differs: not deleted"
    );
    let update_then_delete =
        r#"{"insert_leads":false,"update_leads":true,"delete_leads":true,"lead_ids":[2]}"#;
    assert_eq!(
        platform.post(KEY, update_then_delete).1,
        json!({"message": "lead_ids batch was successfully processed", "select_count": 1, "insert_count": 0, "update_count": 1, "delete_count": 1})
    );
}

#[test]
fn a_refused_key_and_office_hours_stop_the_run_with_their_meaning() {
    let platform = Platform::start(10, &[]);
    let stranger = Workstation::with_key("not-the-key");
    let out = stranger.archive(&platform, &["--ids", "1,2"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains(
            "the platform did not accept the API key (401): {\"message\": \"unable to validate api user\"}"
        ),
        "{}",
        text(&out)
    );
    assert!(
        !text(&out).contains("not-the-key"),
        "the key is never shown"
    );

    let platform = platform.restart(&["--office-hours", "always"]);
    let agent = Workstation::new();
    let out = agent.archive(&platform, &["--ids", "1,2,3", "--batch-size", "2"]);
    let words = text(&out);
    assert_eq!(out.status.code(), Some(4), "{words}");
    assert!(
        words.contains("refuses this during office hours (403): {\"message\": \"api cannot be executed during office hours time condition\"}")
            && words.contains("outside office hours only: after they end, run the same command again (journal"),
        "{words}"
    );
    assert!(
        words.contains("batch 2/2 (1 ids, 3 … 3): not sent"),
        "{words}"
    );
    // After office hours (the condition lifted), the same command does the work.
    let platform = platform.restart(&[]);
    let out = agent.archive(
        &platform,
        &["--ids", "1,2,3", "--batch-size", "2", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json_of(&out)["totals"]["delete_count"], 3);
}

#[test]
fn a_batch_the_platform_refuses_is_reported_verbatim_and_the_others_go_through() {
    let platform = Platform::start(10, &[]);
    let agent = Workstation::new();
    let out = agent.archive(
        &platform,
        &["--ids", "1,2,3,4,99,6", "--batch-size", "3", "--json"],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let report = json_of(&out);
    assert_eq!(report["batches"][0]["status"], "processed");
    assert_eq!(report["batches"][1]["status"], "rejected");
    assert_eq!(
        report["batches"][1]["body"],
        json!({"message": "lead_ids does not exist", "lead_errors": 1, "lead_ids": [99]})
    );
    assert_eq!(
        platform.rows("vicidial_list"),
        7,
        "4 and 6 were not deleted"
    );
    // The same command again: the refused batch is refused again, never taken for one an
    // interrupted run had processed (all its ids gone), and the processed one is not resent.
    let again = agent.archive(
        &platform,
        &["--ids", "1,2,3,4,99,6", "--batch-size", "3", "--json"],
    );
    assert_eq!(again.status.code(), Some(5), "{}", text(&again));
    assert_eq!(json_of(&again)["batches"][1]["status"], "rejected");
    let alone = agent.archive(&platform, &["--ids", "99"]);
    assert_eq!(alone.status.code(), Some(5), "{}", text(&alone));
    let alone = agent.archive(&platform, &["--ids", "99"]);
    assert_eq!(
        alone.status.code(),
        Some(5),
        "a lead that never existed is not 'done': {}",
        text(&alone)
    );
    let firsts: Vec<Option<i64>> = platform.requests().iter().map(|r| r.2).collect();
    assert_eq!(firsts, vec![Some(1), Some(4), Some(4), Some(99), Some(99)]);
}

#[test]
fn a_run_with_another_batch_size_is_another_run() {
    // Stopped after its first batch of 3 (ids 1..=3)…
    let platform = Platform::start(10, &["--exit-after", "1"]);
    let agent = Workstation::new();
    let out = agent.archive(
        &platform,
        &[
            "--ids",
            "1,2,3,4,5,6,7,8,9",
            "--batch-size",
            "3",
            "--retries",
            "0",
        ],
    );
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    // …then run with batches of 4: not the same run, so its first batch (1..=4) is sent, and
    // the platform says which of its ids are gone — nothing is skipped unsent.
    let platform = platform.restart(&[]);
    let out = agent.archive(
        &platform,
        &["--ids", "1,2,3,4,5,6,7,8,9", "--batch-size", "4", "--json"],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let report = json_of(&out);
    assert_eq!(
        report["batches"][0]["body"],
        json!({"message": "lead_ids does not exist", "lead_errors": 3, "lead_ids": [1, 2, 3]})
    );
    assert_eq!(report["batches"][1]["status"], "processed");
    assert_eq!(platform.rows("vicidial_list"), 2, "4 and 10 remain");
}

#[test]
fn server_errors_are_retried_and_an_unreachable_platform_is_reported() {
    let platform = Platform::start(10, &["--fail-first", "2"]);
    let agent = Workstation::new();
    let out = agent.archive(&platform, &["--ids", "1,2", "--retries", "3"]);
    let words = text(&out);
    assert_eq!(out.status.code(), Some(0), "{words}");
    assert_eq!(
        words.matches("the platform answered 500").count(),
        2,
        "{words}"
    );
    assert!(
        words.contains("trying again in 1 s") && words.contains("trying again in 2 s"),
        "{words}"
    );
    drop(platform);
    let gone = Platform::start(10, &["--fail-first", "100"]);
    let out = agent.archive(&gone, &["--ids", "3", "--retries", "1"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out).contains("When the platform is back, run the same command again (journal"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_interrupted_run_resumes_without_resending_what_was_done() {
    // The platform goes away after answering the first batch.
    let platform = Platform::start(1300, &["--exit-after", "1"]);
    let agent = Workstation::new();
    let ids = agent.ids_file(1..=1234);
    let out = agent.archive(&platform, &["--ids-file", &ids, "--retries", "1"]);
    let words = text(&out);
    assert_eq!(out.status.code(), Some(6), "{words}");
    assert!(words.contains("resume at batch 2"), "{words}");
    // Back again; the same command sends batches 2 and 3 only.
    let platform = platform.restart(&[]);
    let out = agent.archive(&platform, &["--ids-file", &ids, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json_of(&out);
    let statuses: Vec<&str> = report["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| b["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, vec!["already_done", "processed", "processed"]);
    assert_eq!(report["totals"]["delete_count"], 1234);
    let first_ids: Vec<Option<i64>> = platform.requests().iter().map(|r| r.2).collect();
    assert_eq!(
        first_ids,
        vec![Some(1), Some(501), Some(1001)],
        "batch 1 sent once"
    );
    assert_eq!(platform.rows("vicidial_list_archive"), 1234);
}

#[test]
fn an_answer_lost_after_the_platform_processed_the_batch_is_recognised() {
    // Request 1 is processed but its answer never arrives: the retry finds every id gone.
    let platform = Platform::start(10, &["--lose-answer", "1"]);
    let agent = Workstation::new();
    let out = agent.archive(&platform, &["--ids", "1,2,3", "--retries", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json_of(&out);
    assert_eq!(report["batches"][0]["status"], "done_before_interruption");
    assert_eq!(platform.rows("vicidial_list_archive"), 3);

    // The same, the answer lost and no retry (the run stops in doubt); the next run meets office
    // hours (a 403 says nothing of the earlier request: still in doubt); after them, the batch
    // is recognised as processed, not reported refused.
    let platform = platform.restart(&["--lose-answer", "1"]);
    let out = agent.archive(&platform, &["--ids", "4,5", "--retries", "0"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let platform = platform.restart(&["--office-hours", "always"]);
    let out = agent.archive(&platform, &["--ids", "4,5"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let platform = platform.restart(&[]);
    let out = agent.archive(&platform, &["--ids", "4,5", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        json_of(&out)["batches"][0]["status"],
        "done_before_interruption"
    );
}

#[test]
fn the_key_is_read_only_from_an_owner_only_file_and_https_is_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (certificate, key) = lab::openssl_self_signed(dir.path(), "platform");
    let certificate = certificate.to_string_lossy().into_owned();
    let tls = Platform::start(10, &["--tls", &certificate, &key.to_string_lossy()]);
    let agent = Workstation::new();
    // Its certificate is not in the system's store: refused at once (not tried again), and the
    // key not sent.
    let out = agent.archive(&tls, &["--ids", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("certificate was refused") && !text(&out).contains("trying again"),
        "{}",
        text(&out)
    );
    assert!(tls.requests().is_empty());
    let out = agent.archive(&tls, &["--ids", "1", "--ca-file", &certificate]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A key file others can read is refused before anything is sent.
    set_mode(&agent.key_file, 0o644);
    let out = agent.archive(&tls, &["--ids", "2", "--ca-file", &certificate]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));
    assert_eq!(tls.requests().len(), 1);
    // Plain http to another machine is refused outright (before any connection).
    set_mode(&agent.key_file, 0o600);
    let out = common::command(agent.dir.path())
        .args([
            "leads",
            "archive",
            "--server",
            "http://dialer.example.com",
            "--ids",
            "1",
            "--key-file",
        ])
        .arg(&agent.key_file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("is not a usable address"),
        "{}",
        text(&out)
    );
}
