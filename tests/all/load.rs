//! Load: many recorded calls at concurrency 64 against a real daemon, each
//! call's output naming it, then every Run checked on disk.
//!
//! The size fits CI by default (2,000 calls); `RH_WASM_LOAD_CALLS=10000`
//! runs the full size. The figures are printed (`--nocapture` shows them).

use crate::util::{Daemon, rss_kib};
use std::time::{Duration, Instant};

#[test]
fn many_concurrent_calls_all_complete_whole_and_apart() {
    let calls: usize = std::env::var("RH_WASM_LOAD_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let clients = 64;
    let d = Daemon::start();
    d.deploy("testkit");
    let token = d.token();
    let call = |i: usize| {
        let marker = format!("load-{i:05}-marker");
        let body = serde_json::json!({
            "function": "testkit/echo_marker",
            "args": [marker, 3],
            "run_name": format!("load-{i:05}"),
        });
        let t = Instant::now();
        let (status, resp) = d.http(
            "POST",
            "/v1/calls",
            Some(&token),
            body.to_string().as_bytes(),
        );
        let took = t.elapsed();
        assert_eq!(status, 200, "call {i}: {resp}");
        let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
        assert_eq!(v["result"], marker.as_str(), "call {i}: {v}");
        took
    };
    // Warm up, then the idle footprint.
    for i in 0..20 {
        call(calls + i);
    }
    std::thread::sleep(Duration::from_millis(300));
    let idle = rss_kib(d.child.id());

    let start = Instant::now();
    let mut peak = idle;
    let lat: Vec<Duration> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                let call = &call;
                s.spawn(move || {
                    (c..calls)
                        .step_by(clients)
                        .map(call)
                        .collect::<Vec<Duration>>()
                })
            })
            .collect();
        while !workers.iter().all(|w| w.is_finished()) {
            peak = peak.max(rss_kib(d.child.id()));
            std::thread::sleep(Duration::from_millis(20));
        }
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    // Memory goes back near idle (checked below) once the daemon has let
    // go of the load: watched until it has, or until a deadline.
    let near_idle = idle + 32 * 1024;
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let now = rss_kib(d.child.id());
        if now <= near_idle || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(20));
    };

    // Every Run: completed, whole, holding its own output and nobody else's.
    let logs = d.root.join("logs");
    let mut lost = 0;
    for i in 0..calls {
        let marker = format!("load-{i:05}-marker");
        let dir = logs.join(format!("load-{i:05}"));
        let c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        if c["status"] != "completed" {
            lost += 1;
            continue;
        }
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("stdout"), format!("{marker}\n").repeat(3), "{i}");
        assert_eq!(read("stderr"), format!("err {marker}\n").repeat(3), "{i}");
        assert_eq!(read("result.json"), format!("\"{marker}\""), "{i}");
        assert_eq!(read("inputs.json"), format!("[\"{marker}\",3]"), "{i}");
    }
    assert_eq!(lost, 0, "Runs not completed");

    let mut lat = lat;
    lat.sort();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    eprintln!(
        "load: {calls} calls, {clients} clients, {:.0} calls/s, p50 {:?}, p99 {:?}; \
         RSS idle {} KiB, peak {} KiB, after {} KiB; lost {lost}",
        calls as f64 / secs,
        p(0.5),
        p(0.99),
        idle,
        peak,
        after
    );
    // Memory goes back near idle: what stays is at most the pool's warm
    // slots (64 instances' kept-resident pages), not the Runs' output.
    assert!(
        after <= near_idle,
        "RSS 20 s after the load {after} KiB, idle {idle} KiB"
    );
}
