//! What one user learns of another's objects (nothing beyond "this name is
//! taken"), what a daemon tells a client about itself (no host paths), and
//! the leftovers of interrupted work (a killed push's staging copy, an
//! interrupted scope's journal), each cleaned up.

use crate::util::*;
use serde_json::{Value, json};

fn team() -> Daemon {
    Daemon::start_users(&[("alice", false), ("bob", false)])
}

/// `rh-wasm ARGS --cluster cpu-USER`, which must fail with exit code 2;
/// its stderr with `name` replaced by `NAME`, to compare answers.
fn refusal(d: &Daemon, user: &str, args: &[&str], name: &str) -> String {
    failed(
        d.rh_as(user, args),
        2,
        &format!("rh-wasm {args:?} as {user}"),
    )
    .replace(name, "NAME")
}

/// An HTTP answer as `user`, with `name` replaced by `NAME`.
fn answer(
    d: &Daemon,
    user: &str,
    method: &str,
    path: &str,
    body: &Value,
    name: &str,
) -> (u16, String) {
    let (status, v) = d.http_as(user, method, path, body);
    (status, v.to_string().replace(name, "NAME"))
}

#[test]
fn another_users_objects_answer_like_missing_ones_or_as_a_taken_name() {
    let d = team();
    let deploy = |guest_name: &str, name: &str| {
        let p = guest(guest_name);
        d.rh_ok(&[
            "deploy",
            p.to_str().unwrap(),
            "--name",
            name,
            "--cluster",
            "cpu-alice",
        ]);
    };
    deploy("testkit", "acc");
    deploy("cmdkit", "tool");

    // Calling into a function Bob cannot see says what a missing one says:
    // not its exports, not that it is a command.
    let missing = refusal(&d, "bob", &["call", "nothere/nonexistent"], "nothere");
    assert!(
        missing.contains("no deployed function named `NAME`"),
        "{missing}"
    );
    assert_eq!(
        refusal(&d, "bob", &["call", "acc/nonexistent"], "acc"),
        missing
    );
    let missing = refusal(&d, "bob", &["call", "nothere"], "nothere");
    assert_eq!(refusal(&d, "bob", &["call", "acc"], "acc"), missing);
    assert_eq!(refusal(&d, "bob", &["call", "tool"], "tool"), missing);
    // Alice still learns what her own component exports.
    let hers = refusal(&d, "alice", &["call", "acc/nonexistent"], "acc");
    assert!(hers.contains("exports"), "{hers}");

    // A scope named like one of Alice's Runs: the name is taken, and the
    // answer is the same whether her Run is running or finished.
    let (status, _) = d.http_as("alice", "POST", "/v1/scopes", &json!({"name": "ctx"}));
    assert_eq!(status, 200);
    d.rh_ok(&[
        "call",
        "acc/add",
        "1",
        "2",
        "--run-name",
        "done1",
        "--cluster",
        "cpu-alice",
    ]);
    let running = answer(
        &d,
        "bob",
        "POST",
        "/v1/scopes",
        &json!({"name": "ctx"}),
        "ctx",
    );
    let done = answer(
        &d,
        "bob",
        "POST",
        "/v1/scopes",
        &json!({"name": "done1"}),
        "done1",
    );
    assert_eq!(running.0, 403, "{running:?}");
    assert_eq!(running, done);
    assert!(
        !running.1.contains("running") && !running.1.contains("completed"),
        "{running:?}"
    );
    assert_eq!(d.config("ctx")["status"], "running");

    // Deploying or saving over a name of hers: taken, and nothing changes.
    let before = snapshot(&d.root.join("functions"));
    let e = refusal(
        &d,
        "bob",
        &["deploy", guest("summer").to_str().unwrap(), "--name", "acc"],
        "acc",
    );
    assert!(e.contains("name `NAME` is taken by another user"), "{e}");
    assert_eq!(snapshot(&d.root.join("functions")), before);
    let (status, _) = d.http_as("alice", "POST", "/v1/artifacts/notes", &json!("hers"));
    assert_eq!(status, 200);
    let (status, v) = answer(
        &d,
        "bob",
        "POST",
        "/v1/artifacts/notes",
        &json!("his"),
        "notes",
    );
    assert_eq!(status, 403, "{v}");
    assert!(v.contains("name `NAME` is taken by another user"), "{v}");
    let (_, art) = d.http_as("alice", "GET", "/v1/artifacts/notes", &Value::Null);
    assert_eq!(art["versions"].as_array().unwrap().len(), 1, "{art}");
}

#[test]
fn a_daemons_own_failures_name_no_host_path() {
    let d = Daemon::start();
    // The artifact store's names folder turned into a file: saving fails
    // inside the daemon.
    let names = d.root.join("artifacts/names");
    std::fs::remove_dir_all(&names).unwrap();
    std::fs::write(&names, "").unwrap();
    let (status, body) = d.http("POST", "/v1/artifacts/notes", Some(&d.token()), b"\"x\"");
    assert_eq!(status, 500, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["kind"], "io", "{v}");
    let root = d.root.to_str().unwrap();
    assert!(!body.contains(root) && !body.contains("/tmp"), "{body}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("see its log"),
        "{v}"
    );
}

#[test]
fn an_interrupted_scope_leaves_no_journal() {
    let d = tmp();
    let mut child = std::process::Command::new(RH)
        .args(["scope", "s1", "--", "sleep", "30"])
        .current_dir(d.path())
        .spawn()
        .unwrap();
    let journal = d.path().join("rh/scopes/s1.jsonl");
    wait_until(20, "the scope to open", || journal.exists());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(journal.exists());
    // The next process on this root recovers the scope and its journal.
    rh_ok(d.path(), &["runs"]);
    let c = config(d.path(), "s1");
    assert_eq!(c["status"], "error", "{c}");
    assert_eq!(c["error"]["kind"], "interrupted", "{c}");
    assert!(
        !journal.exists(),
        "the journal of an interrupted scope is left"
    );
    // An open scope keeps its journal while another process opens the root.
    let mut open = std::process::Command::new(RH)
        .args(["scope", "s2", "--", "sleep", "30"])
        .current_dir(d.path())
        .spawn()
        .unwrap();
    let j2 = d.path().join("rh/scopes/s2.jsonl");
    wait_until(20, "the second scope to open", || j2.exists());
    rh_ok(d.path(), &["runs"]);
    assert!(j2.exists(), "an open scope's journal was removed");
    open.kill().unwrap();
    open.wait().unwrap();
}

#[test]
fn a_killed_push_leaves_no_staging_copy() {
    let s3 = S3::start();
    let d = Daemon::start();
    d.deploy("summer");
    d.rh_ok(&[
        "call",
        "summer",
        "1",
        "2",
        "--cluster",
        "cpu",
        "--run-name",
        "r1",
    ]);
    let tmpdir = d.client().join("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    // What a push killed while staging leaves: its process is gone.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = tmpdir.join(format!("rh-wasm-push-{dead}-stage_x"));
    std::fs::create_dir_all(stale.join("r1")).unwrap();
    std::fs::write(stale.join("r1/stdout"), "left behind").unwrap();
    // And one of a push still going (this test process is alive).
    let live = tmpdir.join(format!("rh-wasm-push-{}-stage_y", std::process::id()));
    std::fs::create_dir_all(&live).unwrap();
    let out = std::process::Command::new(RH)
        .args([
            "push",
            "cpu",
            "r1",
            "s3://runs/p",
            "--endpoint",
            &s3.endpoint,
        ])
        .current_dir(d.client())
        .env("RH_WASM_CONFIG", d.client().join("config.toml"))
        .env("TMPDIR", &tmpdir)
        .env("AWS_ACCESS_KEY_ID", "test-key")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(&tmpdir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        left,
        [live.file_name().unwrap().to_string_lossy().to_string()]
    );
}
