//! Escape attempts by a guest written for them (`tests/guests/escape`), on
//! a daemon: each fails inside the guest, and the host is unaffected.

use crate::daemon::Daemon;
use serde_json::{Value, json};

fn call(d: &Daemon, function: &str, args: Value, run: &str) -> Value {
    d.json(
        "POST",
        "/v1/calls",
        &json!({"function": function, "args": args, "run_name": run}),
    )
}

/// The message of a Run that ended in `failed` (the guest's own Err).
fn refused(v: &Value) -> String {
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["error"]["kind"], "failed", "{v}");
    v["error"]["message"].as_str().unwrap().to_string()
}

fn daemon() -> Daemon {
    let d = Daemon::start();
    d.deploy("escape");
    d.deploy("summer");
    d
}

/// Every file of a Run folder, as text.
fn run_text(d: &Daemon, run: &str) -> String {
    let dir = d.root.join("logs").join(run);
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        all.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()));
    }
    all
}

#[test]
fn a_guest_cannot_read_host_files_the_daemons_root_or_other_runs() {
    let d = daemon();
    d.rh_ok(&[
        "call",
        "summer",
        "40",
        "2",
        "--cluster",
        "cpu",
        "--run-name",
        "secret-run",
    ]);
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let root = d.root.display().to_string();
    let targets = [
        "/etc/passwd".to_string(),
        format!("{root}/logs/secret-run/result.json"),
        format!("{root}/logs/secret-run/stdout"),
        format!("{root}/functions/names/summer.json"),
        "../secret-run/stdout".to_string(),
        "secret-run/stdout".to_string(),
    ];
    for (i, path) in targets.iter().enumerate() {
        let v = call(&d, "escape/read_path", json!([path]), &format!("read-{i}"));
        let msg = refused(&v);
        assert!(msg.contains("cannot read"), "{path}: {msg}");
        let text = run_text(&d, &format!("read-{i}"));
        assert!(
            !text.contains("adding 40 and 2"),
            "{path} leaked another Run"
        );
        assert!(
            !text.contains(passwd.lines().next().unwrap()),
            "{path} leaked /etc/passwd"
        );
    }
    for (i, path) in ["/", ".", &root].iter().enumerate() {
        let v = call(&d, "escape/list_dir", json!([path]), &format!("list-{i}"));
        assert!(refused(&v).contains("cannot list"), "{path}: {v}");
    }
}

#[test]
fn a_guest_cannot_write_outside_anywhere() {
    let d = daemon();
    let outside = crate::util::tmp();
    let target = outside.path().join("escaped.txt");
    let root_target = d.root.join("logs/escaped.txt");
    for (i, path) in [
        target.display().to_string(),
        root_target.display().to_string(),
        "/tmp/escaped-by-guest.txt".to_string(),
        "escaped.txt".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let v = call(
            &d,
            "escape/write_path",
            json!([path, "pwned"]),
            &format!("w-{i}"),
        );
        assert!(refused(&v).contains("cannot write"), "{path}: {v}");
    }
    assert!(!target.exists());
    assert!(!root_target.exists());
    assert!(!std::path::Path::new("/tmp/escaped-by-guest.txt").exists());
}

#[test]
fn a_guest_sees_no_environment_and_no_network() {
    let d = daemon();
    // The daemon's own environment holds credentials; the guest sees none.
    let v = call(&d, "escape/environment", json!([]), "env");
    assert_eq!(v["status"], "completed", "{v}");
    let seen: Vec<String> = serde_json::from_value(v["result"].clone()).unwrap();
    assert!(
        seen.iter().all(|s| !s.contains('=')),
        "no variables: {seen:?}"
    );
    assert!(!run_text(&d, "env").contains("test-secret"));
    // Not even the daemon's own port.
    let v = call(&d, "escape/connect", json!([d.addr]), "tcp");
    assert!(refused(&v).contains("cannot connect"), "{v}");
    let v = call(&d, "escape/connect", json!(["1.1.1.1:443"]), "tcp-out");
    assert!(refused(&v).contains("cannot connect"), "{v}");
    let v = call(&d, "escape/udp", json!([]), "udp");
    assert!(refused(&v).contains("cannot bind"), "{v}");
    let v = call(&d, "escape/resolve", json!(["localhost"]), "dns");
    assert!(refused(&v).contains("cannot resolve"), "{v}");
}

#[test]
fn exhausting_the_stack_or_the_instance_pool_traps_the_guest_not_the_host() {
    let d = daemon();
    let v = call(&d, "escape/recurse", json!([100_000_000u64]), "deep");
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["error"]["kind"], "trap", "{v}");
    // Past the guest's shadow stack (in its own linear memory) or past the
    // wasm call stack: a trap either way, the host's stack untouched.
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("stack") || msg.contains("out of bounds memory access"),
        "{msg}"
    );
    // More Runs at once than the pool has instances (128): each one either
    // runs or ends with a clear error; none hangs, the daemon carries on.
    d.deploy("testkit");
    let n = 160;
    for i in 0..n {
        d.json(
            "POST",
            "/v1/calls",
            &json!({"function": "testkit/sleep_ms", "args": [1500],
                    "run_name": format!("many-{i:03}"), "mode": "run"}),
        );
    }
    let mut completed = 0;
    for i in 0..n {
        let v = d.json("GET", &format!("/v1/runs/many-{i:03}/wait"), &Value::Null);
        match v["status"].as_str() {
            Some("completed") => completed += 1,
            Some("error") => {
                let m = v["error"]["message"].as_str().unwrap_or_default();
                assert!(m.contains("concurrent limit of 128"), "a clear error: {v}");
            }
            other => panic!("{other:?}: {v}"),
        }
    }
    eprintln!("{completed} of {n} Runs completed");
    assert!(completed >= 128, "the pool's 128 slots ran: {completed}");
    let v = call(&d, "summer", json!([1, 1]), "after");
    assert_eq!(v["result"], 2, "{v}");
}
