//! Escape attempts by a guest written for them (`tests/guests/escape`), on
//! a daemon: each fails inside the guest, and the host is unaffected.

use crate::util::{Daemon, status_kib, wait_until};
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
fn exhausting_the_stack_traps_the_guest_and_more_runs_than_instances_wait() {
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
    // More Runs at once than the pool has instances (128): the extra ones
    // wait for a free instance; none fails, none hangs. Each asks for 16
    // MiB, so that 128 at once fit the daemon's memory budget (half the
    // machine's memory): it is the pool they exhaust, not the budget.
    d.deploy("testkit");
    let mib16 = 16 << 20;
    let n = 160;
    let started = std::time::Instant::now();
    for i in 0..n {
        d.json(
            "POST",
            "/v1/calls",
            &json!({"function": "testkit/sleep_ms", "args": [1500],
                    "run_name": format!("many-{i:03}"), "mode": "run", "memory": mib16}),
        );
    }
    for i in 0..n {
        let v = d.json("GET", &format!("/v1/runs/many-{i:03}/wait"), &Value::Null);
        assert_eq!(v["status"], "completed", "{v}");
    }
    // 32 of them had to wait for one of the first 128 to end.
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(3000), "{took:?}");
    // A cancel ends a Run that is waiting for an instance.
    for i in 0..128 {
        d.json(
            "POST",
            "/v1/calls",
            &json!({"function": "testkit/sleep_ms", "args": [60_000],
                    "run_name": format!("hog-{i:03}"), "mode": "run", "memory": mib16}),
        );
    }
    // Every slot is taken once every hog's guest has begun.
    wait_until(60, "all 128 hogs to be running in the guest", || {
        (0..128).all(|i| d.stdout(&format!("hog-{i:03}")).contains("sleeping"))
    });
    d.json(
        "POST",
        "/v1/calls",
        &json!({"function": "testkit/sleep_ms", "args": [1],
                "run_name": "queued", "mode": "run", "memory": mib16}),
    );
    assert_eq!(d.config("queued")["status"], "running");
    let v = d.json("POST", "/v1/runs/queued/cancel", &Value::Null);
    assert_eq!(v["status"], "cancelled", "{v}");
    // Its guest never began: it was waiting for an instance.
    assert_eq!(d.stdout("queued"), "");
    for i in 0..128 {
        d.json("POST", &format!("/v1/runs/hog-{i:03}/cancel"), &Value::Null);
    }
    let v = call(&d, "summer", json!([1, 1]), "after");
    assert_eq!(v["result"], 2, "{v}");
}

#[test]
fn a_guest_cannot_fill_the_hosts_resource_table() {
    let d = daemon();
    let pid = d.child.id();
    call(&d, "summer", json!([1, 1]), "warm");
    let before = status_kib(pid, "VmHWM");
    // Two million handles kept open: each is host memory, not the guest's.
    let v = call(&d, "escape/handles", json!([2_000_000u64]), "handles");
    let grown = status_kib(pid, "VmHWM").saturating_sub(before);
    eprintln!("peak RSS grew {grown} KiB: {v}");
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["error"]["kind"], "trap", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("resource table has no free keys") || msg.contains("handle limit exceeded"),
        "{msg}"
    );
    // The cap is 10,000 handles a Run (Wasmtime's default of 100,000 let
    // this Run add 15 MiB to the host; with the cap it adds 3.5-4.3 MiB,
    // code and heap touched for the first time included).
    assert!(grown < 8 * 1024, "the host's memory grew by {grown} KiB");
    // A guest that keeps a sane number of handles is untouched.
    let v = call(&d, "escape/handles", json!([9000]), "some");
    assert_eq!(v["result"], 9000, "{v}");
    let v = call(&d, "summer", json!([2, 3]), "after");
    assert_eq!(v["result"], 5, "{v}");
}
