#!/usr/bin/env python3
"""The seed platform's lead-archive endpoint, for the tests (seeds 000/001: `POST
/vicidial/leads/archive`), over a real SQLite database holding VICIdial's `vicidial_list` and
`vicidial_list_archive` tables.

It implements the documented contract and nothing more:
- `Authorization: Key=<key>` or 401 {"message": "unable to validate api user"};
- outside office hours only, or 403 {"message": "api cannot be executed during office hours time
  condition"};
- the body validated field by field in the documented order, each failure a 400 with the
  documented message, `lead_errors` and `lead_ids`;
- then, in one transaction and in the documented order: insert into the archive the ids not
  already there, update the archive rows of the ids that were there (not the ones just inserted)
  from `vicidial_list`, delete from `vicidial_list` the ids whose archive row matches it column
  for column ("safe delete"); 200 with the counts;
- 500 {"message": ...} for anything else (a body that is not a JSON object, say).

Usage: lead_archive_server.py --db FILE --key-file FILE [--port N] [--office-hours HH:MM-HH:MM]
       [--tls CERT KEY] [--seed N] [--log FILE] [--fail-first N] [--exit-after N] [--lose-answer N]
Prints "listening on <port>" once ready. `--office-hours` is in local time ("always" makes every
request fall inside them). `--seed N` fills `vicidial_list` with leads 1..N. `--log FILE`
appends a JSON line per request (status, how many ids, the first). For the client's failure
paths: `--fail-first N` answers the first N requests 500 (a platform restarting); `--exit-after
N` stops the server after answering N requests (a platform going away mid-run);
`--lose-answer N` processes request N but closes the connection without answering (an answer
lost on the way).
"""

import argparse
import datetime
import hmac
import http.server
import json
import sqlite3
import ssl
import sys
import threading

PATH = "/vicidial/leads/archive"
MAX_IDS = 500
# The lead's data; `lead_id` is the key. A subset of VICIdial's columns, enough for the
# column-for-column comparison of the safe delete to mean something.
COLUMNS = ["lead_id", "list_id", "status", "phone_number", "first_name", "last_name", "modify_date"]
SCHEMA = """
CREATE TABLE IF NOT EXISTS vicidial_list (
    lead_id INTEGER PRIMARY KEY, list_id INTEGER NOT NULL, status TEXT NOT NULL,
    phone_number TEXT NOT NULL, first_name TEXT, last_name TEXT, modify_date TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vicidial_list_archive (
    lead_id INTEGER PRIMARY KEY, list_id INTEGER NOT NULL, status TEXT NOT NULL,
    phone_number TEXT NOT NULL, first_name TEXT, last_name TEXT, modify_date TEXT NOT NULL);
"""


def bad_request(message, errors=None):
    errors = errors or []
    return 400, {"message": message, "lead_errors": len(errors), "lead_ids": errors}


def is_bool(value):
    return isinstance(value, bool)


def is_int(value):
    # JSON true/false are Python ints: not lead ids.
    return isinstance(value, int) and not isinstance(value, bool)


def validate(body):
    """The documented 400s, in the documented order; None when the request is valid."""
    for flag in ("insert_leads", "update_leads", "delete_leads"):
        if not is_bool(body.get(flag)):
            return bad_request(f"{flag} must be a boolean value")
    ids = body.get("lead_ids")
    if ids is None:
        return bad_request("lead_ids must contain atleast 1 value")
    if not isinstance(ids, list):
        return bad_request("lead_ids must only contain integer values", [ids])
    not_ints = [v for v in ids if not is_int(v)]
    if not_ints:
        return bad_request("lead_ids must only contain integer values", not_ints)
    if not ids:
        return bad_request("lead_ids must contain atleast 1 value")
    if len(ids) > MAX_IDS:
        return bad_request(f"lead_ids cannot exceed {MAX_IDS} values")
    seen, duplicates = set(), []
    for v in ids:
        if v in seen and v not in duplicates:
            duplicates.append(v)
        seen.add(v)
    if duplicates:
        return bad_request("lead_ids cannot contain duplicate values", duplicates)
    return None


def archive(db, body):
    ids = body["lead_ids"]
    marks = ",".join("?" * len(ids))
    cols = ",".join(COLUMNS)
    with db:
        found = {row[0] for row in db.execute(f"SELECT lead_id FROM vicidial_list WHERE lead_id IN ({marks})", ids)}
        missing = [v for v in ids if v not in found]
        if missing:
            return bad_request("lead_ids does not exist", missing)
        archived = {row[0] for row in db.execute(f"SELECT lead_id FROM vicidial_list_archive WHERE lead_id IN ({marks})", ids)}
        inserted = updated = deleted = 0
        if body["insert_leads"]:
            for v in ids:
                if v not in archived:
                    db.execute(f"INSERT INTO vicidial_list_archive ({cols}) SELECT {cols} FROM vicidial_list WHERE lead_id = ?", (v,))
                    inserted += 1
        if body["update_leads"]:
            sets = ",".join(f"{c} = (SELECT {c} FROM vicidial_list WHERE lead_id = ?)" for c in COLUMNS[1:])
            for v in ids:
                if v in archived:
                    db.execute(f"UPDATE vicidial_list_archive SET {sets} WHERE lead_id = ?", [v] * len(COLUMNS))
                    updated += 1
        if body["delete_leads"]:
            same = " AND ".join(f"a.{c} IS l.{c}" for c in COLUMNS)
            for v in ids:
                matches = db.execute(
                    f"SELECT 1 FROM vicidial_list l JOIN vicidial_list_archive a ON {same} WHERE l.lead_id = ?", (v,)
                ).fetchone()
                if matches:
                    db.execute("DELETE FROM vicidial_list WHERE lead_id = ?", (v,))
                    deleted += 1
    return 200, {
        "message": "lead_ids batch was successfully processed",
        "select_count": len(found),
        "insert_count": inserted,
        "update_count": updated,
        "delete_count": deleted,
    }


def in_office_hours(spec, now=None):
    if spec is None:
        return False
    if spec == "always":
        return True
    start, end = (datetime.time.fromisoformat(t) for t in spec.split("-"))
    now = (now or datetime.datetime.now()).time()
    return start <= now < end if start <= end else now >= start or now < end


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "lead-archive-reference"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with state["lock"]:
            state["requests"] += 1
            status, answer = self.answer(state, raw)
            if state["log"]:
                try:
                    ids = json.loads(raw).get("lead_ids")
                except Exception:
                    ids = None
                ids = ids if isinstance(ids, list) else []
                with open(state["log"], "a") as log:
                    log.write(json.dumps({"status": status, "ids": len(ids), "first": ids[0] if ids else None}) + "\n")
            if state["requests"] == state["lose_answer"]:
                self.close_connection = True
                return
            self.reply(status, answer)
            if state["requests"] == state["exit_after"]:
                self.wfile.flush()
                threading.Thread(target=self.server.shutdown).start()

    def answer(self, state, raw):
        if state["fail_first"] > 0:
            state["fail_first"] -= 1
            return 500, {"message": "internal server error"}
        if self.path != PATH:
            return 404, {"message": "not found"}
        given = self.headers.get("Authorization") or ""
        if not hmac.compare_digest(given.encode(), f"Key={state['key']}".encode()):
            return 401, {"message": "unable to validate api user"}
        if in_office_hours(state["office_hours"]):
            return 403, {"message": "api cannot be executed during office hours time condition"}
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
            return validate(body) or archive(state["db"], body)
        except Exception as e:  # the documented "any other error"
            return 500, {"message": f"internal server error: {type(e).__name__}"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--office-hours")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log")
    parser.add_argument("--exit-after", type=int, default=0)
    parser.add_argument("--lose-answer", type=int, default=0)
    args = parser.parse_args()
    db = sqlite3.connect(args.db, check_same_thread=False)
    db.executescript(SCHEMA)
    if args.seed:
        with db:
            db.executemany(
                "INSERT OR IGNORE INTO vicidial_list VALUES (?, 101, 'NEW', ?, ?, ?, '2026-12-01 09:00:00')",
                ((i, f"+1555{i:07d}", f"First{i}", f"Last{i}") for i in range(1, args.seed + 1)),
            )
    with open(args.key_file) as f:
        key = f.read().strip()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.state = {
        "db": db,
        "key": key,
        "office_hours": args.office_hours,
        "fail_first": args.fail_first,
        "exit_after": args.exit_after,
        "lose_answer": args.lose_answer,
        "log": args.log,
        "requests": 0,
        "lock": threading.Lock(),
    }
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
