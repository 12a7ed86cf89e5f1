//! A real daemon on a real port (port 0, its own root), driven through the
//! real CLI and through raw HTTP.

use crate::util::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn every_verb_works_against_a_daemon() {
    let d = Daemon::start();
    d.deploy("summer");
    d.deploy("progress");
    let fns = d.rh_ok(&["functions", "cpu"]);
    assert!(
        fns.contains("summer(a, b)") && fns.contains("progress(steps, millis)"),
        "{fns}"
    );

    let out = d.rh_ok(&[
        "call",
        "summer",
        "1",
        "2",
        "--cluster",
        "cpu",
        "--run-name",
        "my_fn_run",
    ]);
    assert_eq!(out, "adding 1 and 2\n3\n");
    let c = d.config("my_fn_run");
    assert_eq!(c["status"], "completed");
    assert!(!c["cluster"].as_str().unwrap().is_empty());
    assert!(
        !d.client().join("rh").exists(),
        "a remote call touched the local cluster"
    );

    let shown: serde_json::Value =
        serde_json::from_str(&d.rh_ok(&["show", "cpu", "my_fn_run"])).unwrap();
    assert_eq!(shown, c);
    assert_eq!(d.rh_ok(&["result", "cpu", "my_fn_run"]).trim(), "3");
    assert_eq!(d.rh_ok(&["logs", "cpu", "my_fn_run"]), "adding 1 and 2\n");
    assert!(d.rh_ok(&["runs", "cpu"]).contains("my_fn_run"));

    // get-or-call: a hit executes nothing and prints only the result.
    assert_eq!(
        d.rh_ok(&[
            "get-or-call",
            "summer",
            "1",
            "2",
            "--cluster",
            "cpu",
            "--run-name",
            "my_fn_run"
        ]),
        "3\n"
    );
    assert_eq!(d.config("my_fn_run"), c);
    let err = d.rh_err(
        &[
            "get-or-call",
            "summer",
            "2",
            "2",
            "--cluster",
            "cpu",
            "--run-name",
            "my_fn_run",
        ],
        2,
    );
    assert!(err.contains("from other inputs"), "{err}");

    // run / get-or-run / logs --follow / wait.
    assert_eq!(
        d.rh_ok(&[
            "run",
            "progress",
            "3",
            "50",
            "--cluster",
            "cpu",
            "--run-name",
            "bg"
        ])
        .trim(),
        "bg running"
    );
    let logs = d.rh_ok(&["logs", "cpu", "bg", "--follow"]);
    assert_eq!(logs.matches("step ").count(), 3, "{logs}");
    assert_eq!(d.rh_ok(&["wait", "cpu", "bg"]).trim(), "bg completed");
    assert_eq!(
        d.rh_ok(&[
            "get-or-run",
            "progress",
            "3",
            "50",
            "--cluster",
            "cpu",
            "--run-name",
            "bg"
        ])
        .trim(),
        "bg completed"
    );
    let js: serde_json::Value =
        serde_json::from_str(&d.rh_ok(&["call", "summer", "5", "6", "--cluster", "cpu", "--json"]))
            .unwrap();
    assert_eq!(js["result"], 11);
    assert_eq!(js["status"], "completed");

    // pull: the same folder, byte for byte.
    d.rh_ok(&["pull", "cpu", "my_fn_run"]);
    let here = d.client().join("rh/runs/my_fn_run");
    let there = d.root.join("logs/my_fn_run");
    for f in [
        "config.json",
        "inputs.json",
        "result.json",
        "stdout",
        "stderr",
    ] {
        assert_eq!(
            std::fs::read(here.join(f)).unwrap(),
            std::fs::read(there.join(f)).unwrap(),
            "{f}"
        );
    }
    let mut names: Vec<_> = std::fs::read_dir(&here)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names.len(), 5);
    let err = d.rh_err(&["pull", "cpu", "my_fn_run"], 2);
    assert!(err.contains("already exists"), "{err}");
    d.rh_ok(&["pull", "cpu", "bg", "--to", "elsewhere/bg"]);
    assert_eq!(
        std::fs::read(d.client().join("elsewhere/bg/stdout")).unwrap(),
        std::fs::read(d.root.join("logs/bg/stdout")).unwrap()
    );
}

#[test]
fn requests_without_the_right_token_are_refused_and_change_nothing() {
    let d = Daemon::start();
    d.deploy("summer");
    let before = snapshot(&d.root);
    let wasm = std::fs::read(guest("testkit")).unwrap();
    let call = br#"{"function": "summer", "args": [1, 2], "run_name": "sneaky"}"#;
    for token in [None, Some("wrong"), Some("s3cret-token-for-test")] {
        for (method, path, body) in [
            ("GET", "/v1/runs", &b""[..]),
            ("GET", "/v1/functions", &b""[..]),
            ("POST", "/v1/calls", &call[..]),
            ("POST", "/v1/functions?name=testkit", &wasm[..]),
            ("POST", "/v1/runs/x/cancel", &b""[..]),
        ] {
            let (status, body) = d.http(method, path, token, body);
            assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
            assert!(body.contains("unauthorized"), "{body}");
        }
    }
    assert!(
        before == snapshot(&d.root),
        "a refused request changed the daemon's state"
    );
    let (status, _) = d.http("GET", "/v1/runs", Some(&d.token()), b"");
    assert_eq!(status, 200);
    // The CLI with a wrong token says so.
    std::fs::write(d.client().join("bad-token"), "nope").unwrap();
    d.rh_ok(&[
        "cluster",
        "add",
        "bad",
        &format!("http://{}", d.addr),
        "--token-file",
        "bad-token",
    ]);
    let err = d.rh_err(&["call", "summer", "1", "2", "--cluster", "bad"], 2);
    assert!(err.contains("missing or wrong bearer token"), "{err}");
}

#[test]
fn a_follower_sees_a_line_while_the_run_is_still_running() {
    let d = Daemon::start();
    d.deploy("progress");
    d.rh_ok(&[
        "run",
        "progress",
        "100",
        "100",
        "--cluster",
        "cpu",
        "--run-name",
        "slow",
    ]);
    let mut follower = Command::new(RH)
        .args(["logs", "cpu", "slow", "--follow"])
        .current_dir(d.client())
        .env("RH_WASM_CONFIG", d.client().join("config.toml"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "step 1/100");
    assert_eq!(lines.next().unwrap().unwrap(), "step 2/100");
    // Seen while the Run runs.
    assert_eq!(d.config("slow")["status"], "running");
    d.rh_ok(&["cancel", "cpu", "slow"]);
    // The follower ends when the Run does.
    assert!(follower.wait().unwrap().success());
}

#[test]
fn cancel_stops_a_spinning_guest_promptly() {
    let d = Daemon::start();
    d.deploy("testkit");
    d.rh_ok(&[
        "run",
        "testkit/spin",
        "--cluster",
        "cpu",
        "--run-name",
        "spin",
    ]);
    wait_until(20, "spinning", || {
        std::fs::read_to_string(d.root.join("logs/spin/stdout"))
            .unwrap_or_default()
            .contains("spinning")
    });
    let t = Instant::now();
    assert_eq!(d.rh_ok(&["cancel", "cpu", "spin"]).trim(), "spin cancelled");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "cancel took {:?}",
        t.elapsed()
    );
    let c = d.config("spin");
    assert_eq!(c["status"], "cancelled");
    assert!(
        std::fs::read_to_string(d.root.join("logs/spin/stdout"))
            .unwrap()
            .contains("spinning")
    );
    assert!(
        d.rh_ok(&["cancel", "cpu", "spin"])
            .contains("already ended")
    );
    // A synchronous call that spins is cancelled from another client too.
    let caller = Command::new(RH)
        .args([
            "call",
            "testkit/spin",
            "--cluster",
            "cpu",
            "--run-name",
            "spin2",
        ])
        .current_dir(d.client())
        .env("RH_WASM_CONFIG", d.client().join("config.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(20, "spin2 running", || {
        d.root.join("logs/spin2/config.json").exists()
    });
    d.rh_ok(&["cancel", "cpu", "spin2"]);
    let out = caller.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("spinning"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cancelled"));
}

#[test]
fn identical_get_or_calls_from_several_clients_execute_once() {
    let d = Daemon::start();
    d.deploy("testkit");
    let outs: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                let d = &d;
                s.spawn(move || {
                    d.rh_ok(&[
                        "get-or-call",
                        "testkit/sleep_ms",
                        "400",
                        "--cluster",
                        "cpu",
                        "--run-name",
                        "once",
                    ])
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outs {
        assert_eq!(o.lines().last(), Some("400"), "{o}");
    }
    let stdout = std::fs::read_to_string(d.root.join("logs/once/stdout")).unwrap();
    assert_eq!(stdout.matches("sleeping").count(), 1, "{stdout}");
}

#[test]
fn killed_daemon_leaves_no_run_running_after_restart() {
    let mut d = Daemon::start();
    d.deploy("testkit");
    d.rh_ok(&[
        "run",
        "testkit/spin",
        "--cluster",
        "cpu",
        "--run-name",
        "inflight",
    ]);
    wait_until(20, "spinning", || {
        std::fs::read_to_string(d.root.join("logs/inflight/stdout"))
            .unwrap_or_default()
            .contains("spinning")
    });
    d.kill9();
    assert_eq!(d.config("inflight")["status"], "running");
    d.restart();
    let c = d.config("inflight");
    assert_eq!(c["status"], "error");
    assert_eq!(c["error"]["kind"], "interrupted");
    // The restarted daemon serves the functions deployed before.
    assert_eq!(
        d.rh_ok(&["call", "testkit/add", "2", "2", "--cluster", "cpu"])
            .trim(),
        "4"
    );
}

#[test]
fn graceful_shutdown_ends_every_run() {
    let mut d = Daemon::start_with(&["--grace", "2s"]);
    d.deploy("testkit");
    d.deploy("progress");
    d.rh_ok(&[
        "run",
        "testkit/spin",
        "--cluster",
        "cpu",
        "--run-name",
        "forever",
    ]);
    d.rh_ok(&[
        "run",
        "progress",
        "2",
        "20",
        "--cluster",
        "cpu",
        "--run-name",
        "short",
    ]);
    let status = d.terminate();
    assert!(status.success(), "{status:?}");
    assert_eq!(d.config("short")["status"], "completed");
    assert_eq!(d.config("forever")["status"], "cancelled");
    for e in std::fs::read_dir(d.root.join("logs")).unwrap().flatten() {
        let c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.path().join("config.json")).unwrap()).unwrap();
        assert_ne!(c["status"], "running", "{}", e.path().display());
    }
    // Stopped means stopped: nothing listens any more.
    assert!(std::net::TcpStream::connect(&d.addr).is_err());
}

mod robust;
