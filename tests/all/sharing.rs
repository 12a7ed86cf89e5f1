//! Users and sharing on a real daemon (`serve --users`): each user sees and
//! changes only what they own or were given; every refusal is checked, and
//! that it changed nothing.

use crate::util::*;
use serde_json::{Value, json};

fn team() -> Daemon {
    Daemon::start_users(&[
        ("alice", false),
        ("bob", false),
        ("carol", false),
        ("root", true),
    ])
}

/// `rh-wasm --json ARGS --cluster cpu-USER` as JSON.
fn as_json(d: &Daemon, user: &str, args: &[&str]) -> Value {
    let a = [&["--json"], args].concat();
    let out = succeeded(d.rh_as(user, &a), &format!("rh-wasm {a:?} as {user}"));
    serde_json::from_str(&out).unwrap()
}

/// `rh-wasm ARGS --cluster cpu-USER`, which fails with exit code 2; its
/// stderr.
fn refused(d: &Daemon, user: &str, args: &[&str]) -> String {
    failed(
        d.rh_as(user, args),
        2,
        &format!("rh-wasm {args:?} as {user}"),
    )
}

fn deploy_testkit(d: &Daemon, user: &str) {
    let p = guest("testkit");
    d.rh_ok(&[
        "deploy",
        p.to_str().unwrap(),
        "--cluster",
        &format!("cpu-{user}"),
    ]);
}

fn run_names(d: &Daemon, user: &str) -> Vec<String> {
    let (status, v) = d.http_as(user, "GET", "/v1/runs", &Value::Null);
    assert_eq!(status, 200, "{v}");
    let mut names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn each_user_sees_and_calls_only_what_they_own_or_were_given() {
    let d = team();
    deploy_testkit(&d, "alice");
    let (_, fns) = d.http_as("alice", "GET", "/v1/functions", &Value::Null);
    assert_eq!(fns.as_array().unwrap().len(), 1, "{fns}");
    let dep: Value = serde_json::from_slice(
        &std::fs::read(d.root.join("functions/names/testkit.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dep["creator"], "alice", "{dep}");
    // Bob does not see it, and calling it is the error for a name that
    // does not exist.
    let (_, fns) = d.http_as("bob", "GET", "/v1/functions", &Value::Null);
    assert_eq!(fns, json!([]));
    let e = refused(&d, "bob", &["call", "testkit/add", "1", "2"]);
    assert!(e.contains("no deployed function named `testkit`"), "{e}");
    assert!(
        run_names(&d, "root").is_empty(),
        "a refused call makes no Run"
    );

    // Alice's Run is hers, whatever creator her request claims.
    let (status, v) = d.http_as(
        "alice",
        "POST",
        "/v1/calls",
        &json!({"function": "testkit/add", "args": [1, 2], "run_name": "a1", "creator": "bob"}),
    );
    assert_eq!((status, &v["result"]), (200, &json!(3)), "{v}");
    assert_eq!(d.config("a1")["creator"], "alice");
    assert_eq!(run_names(&d, "alice"), ["a1"]);
    assert!(run_names(&d, "bob").is_empty());

    // Everything about a Run Bob may not see answers as if it did not exist.
    let before = snapshot(&d.root.join("logs"));
    for args in [
        &["show", "a1"][..],
        &["result", "a1"],
        &["logs", "a1"],
        &["wait", "a1"],
        &["cancel", "a1"],
        &["delete", "a1"],
        &["lineage", "a1"],
    ] {
        let e = refused(&d, "bob", args);
        assert!(e.contains("run named `a1`"), "{args:?}: {e}");
    }
    for path in [
        "/v1/runs/a1/files",
        "/v1/runs/a1/files/result.json",
        "/v1/runs/a1/logs",
    ] {
        let (status, v) = d.http_as("bob", "GET", path, &Value::Null);
        assert_eq!(status, 404, "{path}: {v}");
    }
    let pulled = d.client().join("pulled");
    let e = d.rh_err(
        &["pull", "cpu-bob", "a1", "--to", pulled.to_str().unwrap()],
        2,
    );
    assert!(e.contains("no run named `a1`"), "{e}");
    assert!(!pulled.exists());
    // A Run name of Alice's is taken for Bob, whatever the verb.
    d.rh_ok(&["share", "cpu-alice", "testkit", "--with", "bob"]);
    for verb in ["call", "get-or-call", "run", "get-or-run"] {
        let e = refused(
            &d,
            "bob",
            &[verb, "testkit/add", "1", "2", "--run-name", "a1"],
        );
        assert!(
            e.contains("the run name `a1` is taken by another user's Run"),
            "{verb}: {e}"
        );
    }
    let e = refused(
        &d,
        "bob",
        &[
            "call",
            "testkit/add",
            "1",
            "2",
            "--run-name",
            "a1",
            "--rerun",
        ],
    );
    assert!(e.contains("taken by another user's Run"), "{e}");
    assert_eq!(
        snapshot(&d.root.join("logs")),
        before,
        "refusals changed nothing"
    );

    // Shared for reading, the function can be called and its Runs are Bob's.
    let v = as_json(
        &d,
        "bob",
        &["call", "testkit/add", "2", "3", "--run-name", "b1"],
    );
    assert_eq!(v["result"], 5);
    assert_eq!(d.config("b1")["creator"], "bob");
    assert_eq!(run_names(&d, "bob"), ["b1"]);
    assert_eq!(run_names(&d, "alice"), ["a1"]);
    assert_eq!(
        run_names(&d, "root"),
        ["a1", "b1"],
        "an admin sees every Run"
    );
    // Carol was given nothing.
    let e = refused(&d, "carol", &["call", "testkit/add", "1", "2"]);
    assert!(e.contains("no deployed function named `testkit`"), "{e}");

    // Shared Run: Bob may read it, and reuse it by name.
    d.rh_ok(&[
        "share",
        "cpu-alice",
        "a1",
        "--with",
        "bob",
        "--access",
        "read",
    ]);
    assert_eq!(run_names(&d, "bob"), ["a1", "b1"]);
    assert_eq!(as_json(&d, "bob", &["show", "a1"])["creator"], "alice");
    assert_eq!(as_json(&d, "bob", &["result", "a1"])["result"], 3);
    let v = as_json(
        &d,
        "bob",
        &["get-or-call", "testkit/add", "1", "2", "--run-name", "a1"],
    );
    assert_eq!((&v["run_name"], &v["result"]), (&json!("a1"), &json!(3)));
    d.rh_ok(&["pull", "cpu-bob", "a1", "--to", pulled.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(pulled.join("result.json"))
            .unwrap()
            .trim(),
        "3"
    );

    // Unshared, it is gone again for Bob.
    let out = d.rh_ok(&["unshare", "cpu-alice", "a1", "--with", "bob"]);
    assert!(
        out.contains("bob no longer has access to run `a1`"),
        "{out}"
    );
    assert_eq!(run_names(&d, "bob"), ["b1"]);
    d.rh_ok(&["unshare", "cpu-alice", "testkit", "--with", "bob"]);
    let e = refused(&d, "bob", &["call", "testkit/add", "1", "2"]);
    assert!(e.contains("no deployed function named `testkit`"), "{e}");
}

/// A request's `creator` names nobody: on a daemon with users the Run is
/// the caller's, and the user it names does not see it.
#[test]
fn a_call_cannot_name_another_creator() {
    let d = team();
    deploy_testkit(&d, "bob");
    let (status, v) = d.http_as(
        "bob",
        "POST",
        "/v1/calls",
        &json!({"function": "testkit/add", "args": [2, 3], "run_name": "named",
                "creator": "alice"}),
    );
    assert_eq!((status, &v["result"]), (200, &json!(5)), "{v}");
    assert_eq!(d.config("named")["creator"], "bob");
    let (status, v) = d.http_as("alice", "GET", "/v1/runs/named", &Value::Null);
    assert_eq!(status, 404, "{v}");
    assert!(run_names(&d, "alice").is_empty());
    let (status, v) = d.http_as("bob", "GET", "/v1/runs/named", &Value::Null);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["creator"], "bob", "{v}");
}

#[test]
fn read_access_reads_and_write_access_cancels_deletes_and_redeploys() {
    let d = team();
    deploy_testkit(&d, "alice");
    d.rh_ok(&[
        "share",
        "cpu-alice",
        "testkit",
        "--with",
        "bob",
        "--access",
        "read",
    ]);
    as_json(
        &d,
        "alice",
        &["call", "testkit/add", "1", "2", "--run-name", "a1"],
    );
    as_json(
        &d,
        "alice",
        &["run", "testkit/sleep_ms", "60000", "--run-name", "long"],
    );
    d.rh_ok(&["share", "cpu-alice", "a1", "--with", "bob"]);
    d.rh_ok(&["share", "cpu-alice", "long", "--with", "bob"]);
    let state = || {
        ["logs", "functions/names", "access"]
            .iter()
            .map(|p| snapshot(&d.root.join(p)))
            .collect::<Vec<_>>()
    };
    let before = state();

    // Read access: each change is refused, saying what it needs.
    let needs_write = |args: &[&str], doing: &str| {
        let e = refused(&d, "bob", args);
        assert!(
            e.contains("read access to") && e.contains(&format!("{doing} needs write access")),
            "{args:?}: {e}"
        );
    };
    needs_write(&["cancel", "long"], "cancelling it");
    needs_write(&["delete", "a1"], "deleting it");
    needs_write(&["delete", "testkit", "--kind", "function"], "deleting it");
    needs_write(
        &[
            "deploy",
            guest("summer").to_str().unwrap(),
            "--name",
            "testkit",
        ],
        "redeploying it",
    );
    needs_write(
        &[
            "call",
            "testkit/add",
            "1",
            "2",
            "--run-name",
            "a1",
            "--rerun",
        ],
        "running it again",
    );
    // Only the owner shares.
    let e = d.rh_err(&["share", "cpu-bob", "a1", "--with", "carol"], 2);
    assert!(
        e.contains("only the owner of run `a1` (alice) can share it"),
        "{e}"
    );
    let e = d.rh_err(&["unshare", "cpu-bob", "a1", "--with", "bob"], 2);
    assert!(
        e.contains("only the owner of run `a1` (alice) can unshare it"),
        "{e}"
    );
    assert_eq!(as_json(&d, "alice", &["show", "long"])["status"], "running");
    assert_eq!(state(), before, "refusals changed nothing");

    // Write access: cancel, rerun, delete, redeploy.
    d.rh_ok(&[
        "share",
        "cpu-alice",
        "long",
        "--with",
        "bob",
        "--access",
        "write",
    ]);
    d.rh_ok(&[
        "share",
        "cpu-alice",
        "a1",
        "--with",
        "bob",
        "--access",
        "write",
    ]);
    d.rh_ok(&[
        "share",
        "cpu-alice",
        "testkit",
        "--with",
        "bob",
        "--access",
        "write",
    ]);
    let v = as_json(&d, "bob", &["cancel", "long"]);
    assert_eq!(v["status"], "cancelled");
    // A rerun by Bob makes the Run his; Alice keeps write access to it.
    let v = as_json(
        &d,
        "bob",
        &[
            "call",
            "testkit/add",
            "5",
            "5",
            "--run-name",
            "a1",
            "--rerun",
        ],
    );
    assert_eq!(v["result"], 10);
    assert_eq!(d.config("a1")["creator"], "bob");
    as_json(&d, "alice", &["delete", "a1"]);
    assert!(!d.root.join("logs/a1").exists());
    assert!(refused(&d, "alice", &["show", "a1"]).contains("no run named `a1`"));
    // The grants on a deleted Run go with it: a new Run of that name is
    // Carol's alone.
    d.rh_ok(&["share", "cpu-alice", "testkit", "--with", "carol"]);
    as_json(
        &d,
        "carol",
        &["call", "testkit/add", "1", "1", "--run-name", "a1"],
    );
    assert_eq!(run_names(&d, "bob"), ["long"]);
    // Redeploying as a writer adds a version; the name stays Alice's.
    d.rh_ok(&[
        "deploy",
        guest("summer").to_str().unwrap(),
        "--name",
        "testkit",
        "--cluster",
        "cpu-bob",
    ]);
    let dep: Value = serde_json::from_slice(
        &std::fs::read(d.root.join("functions/names/testkit.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dep["creator"], "alice");
    assert_eq!(dep["versions"][1]["deployed_by"], "bob", "{dep}");
    as_json(&d, "bob", &["delete", "testkit", "--kind", "function"]);
    let e = refused(&d, "alice", &["call", "testkit/add", "1", "2"]);
    assert!(e.contains("no deployed function named `testkit`"), "{e}");
    // Deleting a running Run is refused: cancel it first.
    deploy_testkit(&d, "alice");
    as_json(
        &d,
        "alice",
        &["run", "testkit/sleep_ms", "60000", "--run-name", "long2"],
    );
    let e = refused(&d, "alice", &["delete", "long2"]);
    assert!(e.contains("has not finished"), "{e}");
    assert!(d.root.join("logs/long2/config.json").exists());
}

#[test]
fn a_guest_works_with_artifacts_as_its_caller_and_cache_hits_give_away_nothing() {
    let d = team();
    deploy_testkit(&d, "alice");
    d.rh_ok(&["share", "cpu-alice", "testkit", "--with", "bob"]);
    as_json(
        &d,
        "alice",
        &["call", "testkit/save_art", "\"secret\"", "\"alice's v1\""],
    );
    let (_, art) = d.http_as("alice", "GET", "/v1/artifacts/secret", &Value::Null);
    assert_eq!(art["creator"], "alice", "{art}");

    // Bob's guest can neither read nor overwrite it, and he cannot see it.
    let out = d.rh_as("bob", &["call", "testkit/load_art", "\"secret\""]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no artifact named `secret`"), "{err}");
    let out = d.rh_as(
        "bob",
        &["call", "testkit/save_art", "\"secret\"", "\"bob's\""],
    );
    assert_eq!(out.status.code(), Some(1));
    let (status, _) = d.http_as("bob", "GET", "/v1/artifacts/secret/data", &Value::Null);
    assert_eq!(status, 404);
    let (_, list) = d.http_as("bob", "GET", "/v1/artifacts", &Value::Null);
    assert_eq!(list, json!([]));
    let e = refused(&d, "bob", &["artifacts", "get", "secret"]);
    assert!(e.contains("no artifact named `secret`"), "{e}");
    // Saving under her name: taken, and nothing more is said.
    let (status, v) = d.http_as("bob", "POST", "/v1/artifacts/secret", &json!("bob's"));
    assert_eq!(status, 403, "{v}");
    assert_eq!(
        v["error"]["message"],
        "the artifact name `secret` is taken by another user; choose another"
    );
    let (_, data) = d.http_as("alice", "GET", "/v1/artifacts/secret/data", &Value::Null);
    assert_eq!(data, "alice's v1", "the artifact is unchanged");

    // A result computed from Alice's private artifact is not a cache hit
    // for Bob: he could not have computed it.
    let v = as_json(
        &d,
        "alice",
        &["call", "testkit/load_art", "\"secret\"", "--cache"],
    );
    assert_eq!(v["result"], "alice's v1");
    let out = d.rh_as(
        "bob",
        &[
            "--json",
            "call",
            "testkit/load_art",
            "\"secret\"",
            "--cache",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "error", "{v}");
    assert!(v.get("result").is_none());
    // A result that used nothing private is: the same call, the same answer.
    let a = as_json(&d, "alice", &["call", "testkit/add", "20", "22", "--cache"]);
    let b = as_json(&d, "bob", &["call", "testkit/add", "20", "22", "--cache"]);
    assert_eq!(b["result"], 42);
    let bc = d.config(b["run_name"].as_str().unwrap());
    assert_eq!(bc["cache_hit"], a["run_name"], "{bc}");
    assert_eq!(bc["creator"], "bob");

    // Shared for reading: his guest loads it, and the hit is his.
    d.rh_ok(&["share", "cpu-alice", "secret", "--with", "bob"]);
    let v = as_json(
        &d,
        "bob",
        &["call", "testkit/load_art", "\"secret\"", "--cache"],
    );
    assert_eq!(v["result"], "alice's v1");
    let out = d.rh_as(
        "bob",
        &["call", "testkit/save_art", "\"secret\"", "\"bob's\""],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("saving a new version needs write access"),
        "{err}"
    );
    // Shared for writing: his guest saves a version; the name stays hers.
    d.rh_ok(&[
        "share",
        "cpu-alice",
        "secret",
        "--with",
        "bob",
        "--access",
        "write",
    ]);
    as_json(
        &d,
        "bob",
        &["call", "testkit/save_art", "\"secret\"", "\"bob's v2\""],
    );
    let (_, art) = d.http_as("alice", "GET", "/v1/artifacts/secret", &Value::Null);
    assert_eq!(art["creator"], "alice");
    assert_eq!(art["versions"][1]["saved_by"], "bob", "{art}");
    // Artifacts put from outside a Run are owned the same way.
    let f = d.client().join("notes.txt");
    std::fs::write(&f, "carol's").unwrap();
    d.rh_ok(&[
        "artifacts",
        "put",
        "cpu-carol",
        "notes",
        f.to_str().unwrap(),
    ]);
    let (status, _) = d.http_as("alice", "GET", "/v1/artifacts/notes/data", &Value::Null);
    assert_eq!(status, 404);
    let (_, data) = d.http_as("root", "GET", "/v1/artifacts/notes/data", &Value::Null);
    assert_eq!(data, "carol's", "an admin reads everything");
}

#[test]
fn bad_share_requests_are_refused_and_change_nothing() {
    let d = team();
    deploy_testkit(&d, "alice");
    as_json(
        &d,
        "alice",
        &["call", "testkit/add", "1", "2", "--run-name", "testkit"],
    );
    let shares = d.root.join("access/shares.json");
    let before = std::fs::read(&shares).ok();
    let cases: &[(&[&str], &str)] = &[
        (
            &["share", "cpu-alice", "add", "--with", "bob"],
            "no function, run or artifact named `add`",
        ),
        (
            &["share", "cpu-alice", "testkit", "--with", "bob"],
            "`testkit` names a function and a run; say which with --kind",
        ),
        (
            &[
                "share",
                "cpu-alice",
                "testkit",
                "--kind",
                "run",
                "--with",
                "zed",
            ],
            "no user `zed` on this cluster",
        ),
        (
            &[
                "share",
                "cpu-alice",
                "testkit",
                "--kind",
                "run",
                "--with",
                "alice",
            ],
            "`alice` owns run `testkit` already",
        ),
        (
            &[
                "share",
                "cpu-alice",
                "testkit",
                "--kind",
                "run",
                "--with",
                "b b",
            ],
            "invalid user name",
        ),
        (
            &[
                "share",
                "cpu-carol",
                "testkit",
                "--kind",
                "run",
                "--with",
                "bob",
            ],
            "no run named `testkit`",
        ),
        (
            &["share", "local", "testkit", "--with", "bob"],
            "the local cluster has no users",
        ),
    ];
    for (args, want) in cases {
        let e = d.rh_err(args, 2);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let e = d.rh_err(
        &[
            "share",
            "cpu-alice",
            "testkit",
            "--with",
            "bob",
            "--access",
            "admin",
        ],
        2,
    );
    assert!(e.contains("invalid value 'admin'"), "{e}");
    let (status, v) = d.http_as(
        "alice",
        "POST",
        "/v1/shares",
        &json!({"name": "testkit", "kind": "run", "user": "bob", "access": "owner"}),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown access `owner`"),
        "{v}"
    );
    let (status, _) = d.http_as(
        "alice",
        "POST",
        "/v1/shares",
        &json!({"name": "testkit", "who": "bob"}),
    );
    assert_eq!(status, 400);
    assert_eq!(std::fs::read(&shares).ok(), before, "nothing was granted");
    // A wrong token is nobody.
    let (status, body) = d.http("GET", "/v1/runs", Some("not-a-user-token"), b"");
    assert_eq!(status, 401, "{body}");

    // `shares` lists what one gave and what one was given; nobody else's.
    d.rh_ok(&[
        "share",
        "cpu-alice",
        "testkit",
        "--kind",
        "run",
        "--with",
        "bob",
        "--access",
        "write",
    ]);
    let shares_of = |user: &str| -> Value {
        serde_json::from_str(&d.rh_ok(&["--json", "shares", &format!("cpu-{user}")])).unwrap()
    };
    let mine = shares_of("alice");
    assert_eq!(
        mine,
        json!([{"kind": "run", "name": "testkit", "user": "bob", "access": "write"}])
    );
    assert_eq!(shares_of("bob"), mine);
    assert_eq!(shares_of("carol"), json!([]));
    let out = d.rh_ok(&[
        "unshare",
        "cpu-alice",
        "testkit",
        "--kind",
        "run",
        "--with",
        "carol",
    ]);
    assert!(out.contains("carol had no access"), "{out}");

    // A daemon with one token has no users to share with.
    let solo = Daemon::start();
    solo.deploy("summer");
    let e = solo.rh_err(&["share", "cpu", "summer", "--with", "bob"], 2);
    assert!(e.contains("this daemon has no users"), "{e}");
}

#[test]
fn the_users_file_is_checked_at_start_and_read_again_on_sighup() {
    let d = team();
    let (_, v) = d.http_as("root", "GET", "/v1/health", &Value::Null);
    assert_eq!((&v["user"], &v["admin"]), (&json!("root"), &json!(true)));
    // A new user is let in once the daemon is told to read the file again.
    d.rh_ok(&[
        "users",
        "add",
        "users.toml",
        "dave",
        "--token-file",
        "dave.token",
    ]);
    let text = std::fs::read_to_string(d.client().join("users.toml")).unwrap();
    assert!(
        !text.contains(&d.user_token("dave")),
        "no plain token in the file"
    );
    let (status, _) = d.http_as("dave", "GET", "/v1/health", &Value::Null);
    assert_eq!(status, 401);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_until(10, "dave is let in", || {
        d.http_as("dave", "GET", "/v1/health", &Value::Null).1["user"] == "dave"
    });
    // A broken file is reported and the users known stay.
    std::fs::write(
        d.client().join("users.toml"),
        "[users.eve]\ntoken = \"plain\"\n",
    )
    .unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status()
        .unwrap();
    wait_until(10, "the broken users file to be reported", || {
        d.log().contains("keeping the users read before")
    });
    let log = d.log();
    assert!(log.contains("has a plain `token`"), "{log}");
    assert_eq!(d.http_as("dave", "GET", "/v1/health", &Value::Null).0, 200);

    // At start, a bad file stops the daemon with the reason.
    let dir = tmp();
    let cases = [
        ("[users.eve]\ntoken = \"plain\"\n", "has a plain `token`"),
        (
            "[users.eve]\ntoken_sha256 = \"xyz\"\n",
            "must be 64 hex digits",
        ),
        ("", "names no users"),
    ];
    for (text, want) in cases {
        std::fs::write(dir.path().join("u.toml"), text).unwrap();
        let e = rh_err(
            dir.path(),
            &[
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--root",
                "r",
                "--users",
                "u.toml",
            ],
            3,
        );
        assert!(e.contains(want), "{e}");
    }
    let e = rh_err(
        dir.path(),
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--root",
            "r",
            "--users",
            "missing.toml",
        ],
        3,
    );
    assert!(e.contains("reading the users file missing.toml"), "{e}");
    let e = rh_err(
        dir.path(),
        &["serve", "--users", "u.toml", "--token-file", "t"],
        2,
    );
    assert!(e.contains("cannot be used with"), "{e}");
    assert!(!dir.path().join("r").exists(), "nothing was made");
}

#[test]
fn commands_scopes_and_uploads_are_checked_too() {
    let d = team();
    // A command file is uploaded and run by digest: by whoever uploaded it.
    let cmd = guest("hello_cmd");
    let v = as_json(
        &d,
        "alice",
        &["exec", cmd.to_str().unwrap(), "x", "--run-name", "e1"],
    );
    assert_eq!(v["status"], "completed", "{v}");
    let digest = d.config("e1")["cmds"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(d.config("e1")["creator"], "alice");
    let body = json!({"cmds": [{"cmd": "hello", "component": digest}], "run_name": "e2"});
    let (status, v) = d.http_as("bob", "POST", "/v1/exec", &body);
    assert_eq!(status, 404, "{v}");
    assert!(!d.root.join("logs/e2").exists());
    // Uploading the same bytes himself lets him.
    let (status, _) = d.http(
        "POST",
        "/v1/components",
        Some(&d.user_token("bob")),
        &std::fs::read(&cmd).unwrap(),
    );
    assert_eq!(status, 200);
    let (status, v) = d.http_as("bob", "POST", "/v1/exec", &body);
    assert_eq!((status, &v["status"]), (200, &json!("running")), "{v}");
    // A deployed command by name needs read access to the name.
    d.rh_ok(&["deploy", cmd.to_str().unwrap(), "--cluster", "cpu-alice"]);
    let e = refused(&d, "carol", &["exec", "hello_cmd", "--run-name", "e3"]);
    assert!(e.contains("no deployed function named `hello_cmd`"), "{e}");
    d.rh_ok(&["share", "cpu-alice", "hello_cmd", "--with", "carol"]);
    let v = as_json(&d, "carol", &["exec", "hello_cmd", "--run-name", "e3"]);
    assert_eq!(v["status"], "completed", "{v}");

    // A scope is its opener's; others cannot end it or make Runs in it.
    let (status, _) = d.http_as("alice", "POST", "/v1/scopes", &json!({"name": "ctx"}));
    assert_eq!(status, 200);
    assert_eq!(d.config("ctx")["creator"], "alice");
    let (status, _) = d.http_as("bob", "POST", "/v1/scopes/ctx/end", &json!({}));
    assert_eq!(status, 404);
    let (status, _) = d.http_as(
        "bob",
        "POST",
        "/v1/scopes",
        &json!({"name": "inner", "parent_run": "ctx"}),
    );
    assert_eq!(status, 404);
    assert!(!d.root.join("logs/inner").exists());
    d.rh_ok(&["share", "cpu-alice", "ctx", "--with", "bob"]);
    let (status, v) = d.http_as("bob", "POST", "/v1/scopes/ctx/end", &json!({}));
    assert_eq!(status, 403, "{v}");
    assert_eq!(d.config("ctx")["status"], "running");
    // What Bob loads cannot be recorded in Alice's scope; what she loads is.
    let (status, _) = d.http_as("alice", "POST", "/v1/artifacts/notes", &json!("hers"));
    assert_eq!(status, 200);
    d.rh_ok(&["share", "cpu-alice", "notes", "--with", "bob"]);
    let (status, _) = d.http_as(
        "bob",
        "GET",
        "/v1/artifacts/notes/data?scope=ctx",
        &Value::Null,
    );
    assert_eq!(status, 403);
    let (status, data) = d.http_as(
        "alice",
        "GET",
        "/v1/artifacts/notes/data?scope=ctx",
        &Value::Null,
    );
    assert_eq!((status, data), (200, json!("hers")));
    let (status, _) = d.http_as("alice", "POST", "/v1/scopes/ctx/end", &json!({}));
    assert_eq!(status, 200);
    let ctx = d.config("ctx");
    assert_eq!(ctx["status"], "completed");
    assert_eq!(ctx["upstream_artifacts"][0]["name"], "notes", "{ctx}");
    assert_eq!(
        ctx["upstream_artifacts"].as_array().unwrap().len(),
        1,
        "{ctx}"
    );
}

#[test]
fn delete_works_on_the_local_cluster_too() {
    let d = tmp();
    deploy(d.path(), "summer");
    rh_ok(d.path(), &["call", "summer", "1", "2", "--run-name", "r1"]);
    let out = rh_ok(d.path(), &["delete", "r1"]);
    assert!(out.contains("deleted run `r1` from `local`"), "{out}");
    assert!(!d.path().join("rh/runs/r1").exists());
    let e = rh_err(d.path(), &["delete", "r1"], 2);
    assert!(e.contains("no run named `r1`"), "{e}");
    rh_ok(d.path(), &["delete", "summer", "--kind", "function"]);
    let e = rh_err(d.path(), &["call", "summer", "1", "2"], 2);
    assert!(e.contains("no deployed function named `summer`"), "{e}");
    let e = rh_err(d.path(), &["delete", "../x"], 2);
    assert!(e.contains("invalid run name"), "{e}");
}
