//! Sharing requests, the users file, and the verbs checked like calls:
//! commands, scopes, uploads and deletes.

use super::*;

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
