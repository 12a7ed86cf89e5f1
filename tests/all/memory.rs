//! The daemon's own memory under guests and requests that ask for a lot:
//! one budget for all running guests together (`serve --memory-total`),
//! artifact loads bounded by the loading Run's memory limit, and request
//! JSON bounded in how many values it may hold once parsed.

use crate::util::{Daemon, status_kib, wait_until};
use rh_runtime::Caller;
use serde_json::{Value, json};

const MIB: u64 = 1 << 20;

/// Start a Run (`mode: run`) of `testkit/hold`: take `mib` MiB, hold it for
/// `ms`, under a memory limit of `limit_mib` and the given timeout.
fn start_hold(d: &Daemon, run: &str, mib: u32, ms: u64, limit_mib: u64, timeout_ms: u64) {
    let v = d.json(
        "POST",
        "/v1/calls",
        &json!({"function": "testkit/hold", "args": [mib, ms], "run_name": run,
                "memory": limit_mib * MIB, "timeout_ms": timeout_ms, "mode": "run"}),
    );
    assert_eq!(v["status"], "running", "{v}");
}

fn wait(d: &Daemon, run: &str) -> Value {
    d.json("GET", &format!("/v1/runs/{run}/wait"), &Value::Null)
}

#[test]
fn runs_beyond_the_memory_budget_wait_for_it_and_one_over_it_is_refused() {
    let d = Daemon::start_with(&["--memory-total", "256MiB"]);
    d.deploy("testkit");
    let pid = d.child.id();
    start_hold(&d, "warm", 1, 0, 16, 10_000);
    assert_eq!(wait(&d, "warm")["result"], 1);
    let before = status_kib(pid, "VmHWM");

    // Each asks 200 MiB of a 256 MiB budget and really uses 180 MiB.
    start_hold(&d, "first", 180, 3000, 200, 60_000);
    wait_until(20, "the first Run to start", || {
        d.stdout("first").contains("start")
    });
    // Its timeout (2.5s) is shorter than the wait for the first to end:
    // it must count from when the Run gets its memory, not from now.
    start_hold(&d, "second", 180, 100, 200, 2500);
    start_hold(&d, "third", 180, 100, 200, 60_000);
    // Neither has begun: the budget is the first's until it ends. (That
    // neither ran beside it at any moment is shown by the daemon's peak.)
    assert_eq!(d.stdout("second"), "", "the second Run did not wait");
    assert_eq!(d.stdout("third"), "", "the third Run did not wait");
    assert_eq!(d.config("second")["status"], "running");
    assert_eq!(
        d.config("first")["status"],
        "running",
        "the check came late"
    );

    // A cancel ends a Run waiting for memory.
    let v = d.json("POST", "/v1/runs/third/cancel", &Value::Null);
    assert_eq!(v["status"], "cancelled", "{v}");
    assert_eq!(d.stdout("third"), "");

    let second = wait(&d, "second");
    assert_eq!(second["status"], "completed", "{second}");
    assert_eq!(second["result"], 180);
    assert_eq!(wait(&d, "first")["result"], 180);
    assert!(d.stdout("second").contains("done"));

    // The two never held their 360 MiB at once.
    let grown = status_kib(pid, "VmHWM").saturating_sub(before) / 1024;
    eprintln!("peak RSS grew {grown} MiB with two 180 MiB guests on a 256 MiB budget");
    assert!(grown < 300, "the daemon's peak grew by {grown} MiB");

    // A Run asking for more than the whole budget would wait forever: it
    // is refused at once, and no Run is made.
    let (status, body) = d.http(
        "POST",
        "/v1/calls",
        Some(&d.token()),
        json!({"function": "testkit/add", "args": [1, 2], "run_name": "too_big",
               "memory": 300 * MIB})
        .to_string()
        .as_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("memory limit") && body.contains("--memory-total"),
        "{body}"
    );
    assert!(!d.root.join("logs/too_big").exists());
    // Within the budget, calls go on as before.
    let out = d.rh_ok(&[
        "call",
        "testkit/add",
        "2",
        "3",
        "--memory",
        "256MiB",
        "--cluster",
        "cpu",
    ]);
    assert_eq!(out.trim(), "5");
}

#[test]
fn a_budget_below_the_default_memory_limit_is_refused_at_start() {
    let d = crate::util::tmp();
    let out = crate::util::rh(
        d.path(),
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--root",
            "root",
            "--memory-total",
            "64MiB",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--memory-total 64MiB is below the memory limit"),
        "{err}"
    );
}

#[test]
fn an_artifact_larger_than_the_memory_limit_is_refused_before_it_is_read() {
    let d = Daemon::start();
    d.deploy("testkit");
    // Saved beside the daemon on its root, so that the upload itself does
    // not raise the daemon's peak.
    {
        let rt = rh_runtime::Runtime::open_with(
            rh_runtime::RuntimeOptions::new(&d.root)
                .runs_dir(d.root.join("logs"))
                .folders_ahead(0),
        )
        .unwrap();
        rt.save_artifact(&Caller::host(), "big", &vec![b'x'; 96 << 20])
            .unwrap();
        rt.save_artifact(&Caller::host(), "small", b"fits").unwrap();
    }
    let pid = d.child.id();
    let call = |run: &str, name: &str| {
        d.json(
            "POST",
            "/v1/calls",
            &json!({"function": "testkit/load_art", "args": [name], "run_name": run,
                    "memory": 16 * MIB}),
        )
    };
    assert_eq!(call("warm", "small")["result"], "fits");
    let before = status_kib(pid, "VmHWM");
    let answers: Vec<Value> = (0..3).map(|i| call(&format!("big-{i}"), "big")).collect();
    let grown = status_kib(pid, "VmHWM").saturating_sub(before) / 1024;
    eprintln!("peak RSS grew {grown} MiB over three refused loads of a 96 MiB artifact");
    for v in answers {
        assert_eq!(v["status"], "error", "{v}");
        assert_eq!(v["error"]["kind"], "failed", "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("artifact `big`") && msg.contains("memory limit"),
            "{msg}"
        );
    }
    assert!(grown < 32, "the daemon's peak grew by {grown} MiB");
    // Nothing was recorded as loaded, and a small artifact still loads.
    assert_eq!(d.config("big-0")["upstream_artifacts"], json!([]));
    assert_eq!(call("after", "small")["result"], "fits");
}

#[test]
fn a_body_of_millions_of_json_values_is_refused_before_it_is_parsed() {
    let d = Daemon::start();
    d.deploy("testkit");
    let pid = d.child.id();
    let v = d.json(
        "POST",
        "/v1/calls",
        &json!({"function": "testkit/add", "args": [1, 2]}),
    );
    assert_eq!(v["result"], 3);
    let before = status_kib(pid, "VmHWM");

    // Just under the 16 MiB request limit: eight million zeros.
    let head = r#"{"function": "testkit/add", "args": ["#;
    let zeros = (16 << 20) / 2 - 64;
    let mut body = Vec::with_capacity(16 << 20);
    body.extend_from_slice(head.as_bytes());
    for i in 0..zeros {
        body.extend_from_slice(if i == 0 { b"0" } else { b",0" });
    }
    body.extend_from_slice(b"]}");
    assert!(body.len() < 16 << 20);
    let answers: Vec<_> = ["/v1/calls", "/v1/exec"]
        .iter()
        .map(|route| (route, d.http("POST", route, Some(&d.token()), &body)))
        .collect();
    let grown = status_kib(pid, "VmHWM").saturating_sub(before) / 1024;
    eprintln!("peak RSS grew {grown} MiB over two 16 MiB bodies of zeros");
    for (route, (status, text)) in answers {
        assert_eq!(status, 413, "{route}: {text}");
        assert!(text.contains("JSON values"), "{route}: {text}");
    }
    assert!(grown < 80, "the daemon's peak grew by {grown} MiB");

    // Size alone is no reason: a long string is one value.
    let marker = "m".repeat(4 << 20);
    let v = d.json(
        "POST",
        "/v1/calls",
        &json!({"function": "testkit/echo_marker", "args": [marker, 0]}),
    );
    assert_eq!(v["result"].as_str().map(str::len), Some(4 << 20));
}
