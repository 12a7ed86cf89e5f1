//! Tags: `--tag k=v` on the verbs that make a Run, recorded in its
//! `config.json` `tags`, locally and on a daemon; bad tags refused before
//! anything is written.

use crate::util::*;
use serde_json::json;

#[test]
fn tags_are_recorded_locally_and_on_a_daemon() {
    let d = tmp();
    deploy(d.path(), "summer");
    deploy(d.path(), "hello_cmd");
    rh_ok(
        d.path(),
        &[
            "call",
            "summer",
            "1",
            "2",
            "--run-name",
            "t1",
            "--tag",
            "team=search",
            "--tag",
            "lr=0.01 warm",
        ],
    );
    assert_eq!(
        config(d.path(), "t1")["tags"],
        json!({"team": "search", "lr": "0.01 warm"})
    );
    rh_ok(
        d.path(),
        &[
            "get-or-call",
            "summer",
            "1",
            "3",
            "--run-name",
            "t2",
            "--tag",
            "k=v",
        ],
    );
    assert_eq!(config(d.path(), "t2")["tags"], json!({"k": "v"}));
    rh_ok(
        d.path(),
        &[
            "exec",
            "--run-name",
            "t3",
            "--tag",
            "kind=cmd",
            "--",
            "hello_cmd",
        ],
    );
    assert_eq!(config(d.path(), "t3")["tags"], json!({"kind": "cmd"}));
    // Without tags, an empty object: the field is always there.
    rh_ok(d.path(), &["call", "summer", "1", "2", "--run-name", "t4"]);
    assert_eq!(config(d.path(), "t4")["tags"], json!({}));

    let daemon = Daemon::start();
    daemon.deploy("summer");
    daemon.rh_ok(&[
        "call",
        "summer",
        "2",
        "2",
        "--cluster",
        "cpu",
        "--run-name",
        "r1",
        "--tag",
        "where=daemon",
    ]);
    assert_eq!(daemon.config("r1")["tags"], json!({"where": "daemon"}));
    daemon.rh_ok(&[
        "run",
        "summer",
        "2",
        "3",
        "--cluster",
        "cpu",
        "--run-name",
        "r2",
        "--tag",
        "async=yes",
    ]);
    daemon.rh_ok(&["wait", "cpu", "r2"]);
    assert_eq!(daemon.config("r2")["tags"], json!({"async": "yes"}));
    let body =
        json!({"function": "summer", "args": [1, 1], "run_name": "r3", "tags": {"via": "http"}});
    let (status, text) = daemon.http(
        "POST",
        "/v1/calls",
        Some(&daemon.token()),
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(daemon.config("r3")["tags"], json!({"via": "http"}));
}

#[test]
fn bad_tags_are_refused_and_make_no_run() {
    let d = tmp();
    deploy(d.path(), "summer");
    let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    let mut too_many = vec!["call", "summer", "1", "2", "--run-name", "bad"];
    for t in &many {
        too_many.extend(["--tag", t.as_str()]);
    }
    for (args, says) in [
        (
            vec![
                "call",
                "summer",
                "1",
                "2",
                "--run-name",
                "bad",
                "--tag",
                "novalue",
            ],
            "expected KEY=VALUE",
        ),
        (
            vec![
                "call",
                "summer",
                "1",
                "2",
                "--run-name",
                "bad",
                "--tag",
                "a b=c",
            ],
            "invalid tag name",
        ),
        (
            vec![
                "call",
                "summer",
                "1",
                "2",
                "--run-name",
                "bad",
                "--tag",
                "=c",
            ],
            "invalid tag name",
        ),
        (
            vec![
                "call",
                "summer",
                "1",
                "2",
                "--run-name",
                "bad",
                "--tag",
                "k=a\nb",
            ],
            "control character",
        ),
        (too_many, "at most 32 tags"),
    ] {
        let err = rh(d.path(), &args);
        assert!(!err.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&err.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            !d.path().join("rh/runs/bad").exists(),
            "{args:?} made a Run"
        );
    }
    let daemon = Daemon::start();
    daemon.deploy("summer");
    let body = json!({"function": "summer", "args": [1, 1], "run_name": "bad", "tags": {"k": "x".repeat(300)}});
    let (status, text) = daemon.http(
        "POST",
        "/v1/calls",
        Some(&daemon.token()),
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("longer than 256 bytes"), "{text}");
    let (status, _) = daemon.http("GET", "/v1/runs/bad", Some(&daemon.token()), b"");
    assert_eq!(status, 404, "no Run was made");
}
