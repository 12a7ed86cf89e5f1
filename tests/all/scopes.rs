//! Context scopes: a Run around a shell command, locally or on a daemon,
//! parent of the calls inside it, recording the artifacts it loads and
//! saves, nesting, and failing with the body. A host program's scopes are
//! tested in `runtime/tests/embed/scopes.rs`.

use crate::util::*;
use serde_json::json;

#[test]
fn a_cli_scope_records_its_calls_artifacts_and_nested_scopes() {
    let d = tmp();
    deploy(d.path(), "summer");
    std::fs::write(d.path().join("in.txt"), "data").unwrap();
    rh_ok(d.path(), &["artifacts", "put", "input", "in.txt"]);
    let script = format!(
        "{RH} call summer 1 2 --run-name my_new_run && {RH} artifacts get input > /dev/null && \
         {RH} artifacts put output in.txt && {RH} scope inner -- {RH} call summer 2 2 --run-name nested"
    );
    let out = rh_ok(d.path(), &["scope", "ctx_run", "--", "sh", "-c", &script]);
    assert!(out.contains("adding 1 and 2"), "{out}");
    let c = config(d.path(), "ctx_run");
    assert_eq!(c["run_type"], "context");
    assert_eq!(c["status"], "completed");
    assert_eq!(c["upstream_artifacts"][0]["name"], "input");
    assert_eq!(c["downstream_artifacts"][0]["name"], "output");
    assert_eq!(config(d.path(), "my_new_run")["parent_run"], "ctx_run");
    assert_eq!(config(d.path(), "inner")["parent_run"], "ctx_run");
    assert_eq!(config(d.path(), "nested")["parent_run"], "inner");
    // Calls outside any scope have no parent.
    rh_ok(
        d.path(),
        &["call", "summer", "0", "0", "--run-name", "outside"],
    );
    assert!(config(d.path(), "outside")["parent_run"].is_null());
}

#[test]
fn a_failing_scope_ends_in_error_and_passes_the_failure_on() {
    let d = tmp();
    let out = rh(d.path(), &["scope", "bad", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let c = config(d.path(), "bad");
    assert_eq!(c["status"], "error");
    assert_eq!(c["error"]["message"], "`sh` exited with 3");
    assert!(c["end_time"].is_string());
    let err = rh_err(d.path(), &["scope", "../x", "--", "true"], 2);
    assert!(err.contains("invalid run name"), "{err}");
}

#[test]
fn a_scope_on_a_daemon() {
    let d = Daemon::start();
    d.deploy("summer");
    let script = format!("{RH} call summer 4 5 --cluster cpu --run-name remote_child");
    d.rh_ok(&[
        "scope",
        "rctx",
        "--cluster",
        "cpu",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let c = d.config("rctx");
    assert_eq!(c["run_type"], "context");
    assert_eq!(c["status"], "completed");
    assert_eq!(d.config("remote_child")["parent_run"], "rctx");
    assert!(!d.client().join("rh").exists());
}

#[test]
fn a_daemon_refuses_a_scope_body_that_is_not_json_and_changes_nothing() {
    let d = Daemon::start();
    let token = d.token();
    let refused = |path: &str, body: &str| {
        let (status, text) = d.http("POST", path, Some(&token), body.as_bytes());
        assert_eq!(status, 400, "POST {path} {body:?}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["error"]["kind"], "bad_input",
            "POST {path} {body:?}: {text}"
        );
    };

    // Opening: nothing is made from a body that does not parse.
    for body in ["not json", "{", r#"{"name": "open1""#, r#"["open1"]"#] {
        refused("/v1/scopes", body);
    }
    refused("/v1/scopes", r#"{"name": 7}"#);
    refused("/v1/scopes", r#"{"name": "open1", "parent_run": 5}"#);
    assert!(!d.root.join("logs/open1").exists());
    let (status, _) = d.http("GET", "/v1/runs/open1", Some(&token), b"");
    assert_eq!(status, 404);

    // Ending: the scope stays running.
    d.json("POST", "/v1/scopes", &json!({"name": "ctx"}));
    for body in [
        "not json",
        "{",
        r#"{"error": "x""#,
        "[]",
        r#""done""#,
        r#"{"error": 5}"#,
        r#"{"eror": "typo"}"#,
    ] {
        refused("/v1/scopes/ctx/end", body);
        assert_eq!(d.config("ctx")["status"], "running", "after {body:?}");
    }

    // The bodies the CLI sends, and an empty one, still end it.
    let ended = d.json("POST", "/v1/scopes/ctx/end", &json!({"error": "it broke"}));
    assert_eq!(ended["status"], "error", "{ended}");
    d.json(
        "POST",
        "/v1/scopes",
        &json!({"name": "ctx2", "parent_run": null}),
    );
    let (status, text) = d.http("POST", "/v1/scopes/ctx2/end", Some(&token), b"");
    assert_eq!(status, 200, "{text}");
    assert_eq!(d.config("ctx2")["status"], "completed");
    d.json("POST", "/v1/scopes", &json!({"name": "ctx3"}));
    d.json("POST", "/v1/scopes/ctx3/end", &json!({}));
    assert_eq!(d.config("ctx3")["status"], "completed");
}
