//! The content-addressed result cache: `call --cache` (and a daemon's
//! `--cache` default) answers from an earlier completed Run of the same
//! component digest, function, inputs and artifact versions.

use crate::util::*;
use serde_json::json;

#[test]
fn a_cached_call_reuses_a_completed_run_under_another_name() {
    let d = tmp();
    deploy(d.path(), "summer");
    rh_ok(
        d.path(),
        &["call", "summer", "1", "2", "--run-name", "first"],
    );
    let out = rh_ok(
        d.path(),
        &[
            "call",
            "summer",
            "1",
            "2",
            "--cache",
            "--run-name",
            "second",
        ],
    );
    assert_eq!(out, "adding 1 and 2\n3\n");
    let c = config(d.path(), "second");
    assert_eq!(c["status"], "completed");
    assert_eq!(c["cache_hit"], "first");
    assert_eq!(c["fuel_consumed"], 0);
    assert_eq!(
        run_file(d.path(), "second", "stdout"),
        run_file(d.path(), "first", "stdout")
    );
    assert_eq!(run_file(d.path(), "second", "result.json"), "3");
    // Other inputs: a miss, executed.
    rh_ok(
        d.path(),
        &["call", "summer", "2", "2", "--cache", "--run-name", "other"],
    );
    assert!(config(d.path(), "other").get("cache_hit").is_none());
    // Without --cache, always executed.
    rh_ok(
        d.path(),
        &["call", "summer", "1", "2", "--run-name", "plain"],
    );
    assert!(config(d.path(), "plain").get("cache_hit").is_none());
}

#[test]
fn only_completed_runs_with_their_files_are_sources() {
    let d = tmp();
    deploy(d.path(), "testkit");
    rh_err(
        d.path(),
        &["call", "testkit/fail", "\"x\"", "--run-name", "f1"],
        1,
    );
    rh_err(
        d.path(),
        &[
            "call",
            "testkit/fail",
            "\"x\"",
            "--cache",
            "--run-name",
            "f2",
        ],
        1,
    );
    assert!(config(d.path(), "f2").get("cache_hit").is_none());
    rh_ok(
        d.path(),
        &["call", "testkit/add", "1", "1", "--run-name", "src"],
    );
    std::fs::remove_file(d.path().join("rh/runs/src/stdout")).unwrap();
    rh_ok(
        d.path(),
        &[
            "call",
            "testkit/add",
            "1",
            "1",
            "--cache",
            "--run-name",
            "miss",
        ],
    );
    assert!(
        config(d.path(), "miss").get("cache_hit").is_none(),
        "a source missing files is a miss"
    );
    std::fs::remove_dir_all(d.path().join("rh/runs/miss")).unwrap();
    rh_ok(
        d.path(),
        &[
            "call",
            "testkit/add",
            "1",
            "1",
            "--cache",
            "--run-name",
            "gone",
        ],
    );
    assert!(
        config(d.path(), "gone").get("cache_hit").is_none(),
        "a deleted source is a miss"
    );
}

#[test]
fn redeploying_a_changed_component_misses() {
    let d = tmp();
    rh_ok(
        d.path(),
        &["deploy", guest("summer").to_str().unwrap(), "--name", "f"],
    );
    rh_ok(
        d.path(),
        &["call", "f", "3", "4", "--cache", "--run-name", "v1"],
    );
    rh_ok(
        d.path(),
        &["call", "f", "3", "4", "--cache", "--run-name", "v1b"],
    );
    assert_eq!(config(d.path(), "v1b")["cache_hit"], "v1");
    rh_ok(
        d.path(),
        &["deploy", guest("raw").to_str().unwrap(), "--name", "f"],
    );
    let out = rh_ok(
        d.path(),
        &["call", "f", "3", "4", "--cache", "--run-name", "v2"],
    );
    assert_eq!(out.trim(), "12");
    assert!(config(d.path(), "v2").get("cache_hit").is_none());
}

#[test]
fn a_daemon_caching_by_default_serves_hits_to_every_client_and_executes_once() {
    let d = Daemon::start_with(&["--cache"]);
    d.deploy("testkit");
    let outs: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                let d = &d;
                s.spawn(move || {
                    d.rh_ok(&[
                        "call",
                        "testkit/sleep_ms",
                        "300",
                        "--cluster",
                        "cpu",
                        "--json",
                    ])
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut executed = 0;
    for o in &outs {
        let v: serde_json::Value = serde_json::from_str(o).unwrap();
        assert_eq!(v["result"], 300, "{o}");
        let c = d.config(v["run_name"].as_str().unwrap());
        if c.get("cache_hit").is_none() {
            executed += 1;
        }
    }
    assert_eq!(
        executed, 1,
        "identical cached calls executed {executed} times"
    );
    // --no-cache executes anyway.
    let v: serde_json::Value = serde_json::from_str(&d.rh_ok(&[
        "call",
        "testkit/sleep_ms",
        "300",
        "--cluster",
        "cpu",
        "--json",
        "--no-cache",
    ]))
    .unwrap();
    assert!(
        d.config(v["run_name"].as_str().unwrap())
            .get("cache_hit")
            .is_none()
    );
}

#[test]
fn a_refresh_executes_and_becomes_the_answer_and_old_answers_expire() {
    let d = tmp();
    deploy(d.path(), "summer");
    let call = |name: &str, extra: &[&str]| {
        let mut args = vec!["call", "summer", "5", "6", "--cache", "--run-name", name];
        args.extend_from_slice(extra);
        rh_ok(d.path(), &args);
        config(d.path(), name).get("cache_hit").cloned()
    };
    assert_eq!(call("c1", &[]), None);
    assert_eq!(call("c2", &[]), Some(json!("c1")));
    // A refresh executes even with an answer there, and is the newest one.
    assert_eq!(call("c3", &["--refresh-cache"]), None);
    assert_eq!(call("c4", &[]), Some(json!("c3")));
    // A TTL shorter than the answers' age is a miss; a long one a hit.
    assert_eq!(call("c5", &["--cache-ttl", "1ms"]), None);
    assert_eq!(call("c6", &["--cache-ttl", "1h"]), Some(json!("c5")));
    let err = rh_err(
        d.path(),
        &["call", "summer", "5", "6", "--cache", "--cache-ttl", "soon"],
        2,
    );
    assert!(err.contains("--cache-ttl"), "{err}");

    // On a daemon: its own TTL, and a call's over HTTP.
    let daemon = Daemon::start_with(&["--cache", "--cache-ttl", "1ms"]);
    daemon.deploy("summer");
    let call = |name: &str, extra: serde_json::Value| {
        let mut body = json!({"function": "summer", "args": [7, 8], "run_name": name});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, text) = daemon.http(
            "POST",
            "/v1/calls",
            Some(&daemon.token()),
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{text}");
        daemon.config(name).get("cache_hit").cloned()
    };
    assert_eq!(call("d1", json!({})), None);
    assert_eq!(call("d2", json!({})), None, "older than the daemon's 1 ms");
    assert_eq!(
        call("d3", json!({"cache_ttl_ms": 3_600_000})),
        Some(json!("d2"))
    );
    assert_eq!(
        call(
            "d4",
            json!({"refresh_cache": true, "cache_ttl_ms": 3_600_000})
        ),
        None
    );
    assert_eq!(
        call("d5", json!({"cache_ttl_ms": 3_600_000})),
        Some(json!("d4"))
    );
}
