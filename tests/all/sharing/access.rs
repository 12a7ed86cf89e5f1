//! What each user may see and do: their own objects, what was shared with
//! them, and what their Runs' guests do on their behalf.

use super::*;

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
