//! Each limit ends the Run as an `error` with its own kind, and the host
//! carries on.

use crate::util::*;

#[test]
fn spinning_guest_times_out() {
    let d = tmp();
    deploy(d.path(), "testkit");
    let started = std::time::Instant::now();
    let err = rh_err(
        d.path(),
        &[
            "call",
            "testkit/spin",
            "--timeout",
            "300ms",
            "--run-name",
            "t",
        ],
        1,
    );
    assert!(err.contains("timed out after 300ms"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let c = config(d.path(), "t");
    assert_eq!(c["status"], "error");
    assert_eq!(c["error"]["kind"], "timeout");
    assert_eq!(c["limits"]["timeout_ms"], 300);
    // Output written before the timeout is kept.
    assert!(run_file(d.path(), "t", "stdout").contains("spinning"));
}

#[test]
fn fuel_budget_runs_out() {
    let d = tmp();
    deploy(d.path(), "testkit");
    // A small loop fits a generous budget...
    rh_ok(
        d.path(),
        &[
            "call",
            "testkit/burn",
            "1000",
            "--fuel",
            "100000000",
            "--run-name",
            "ok",
        ],
    );
    let c = config(d.path(), "ok");
    assert!(c["fuel_consumed"].as_u64().unwrap() < 100_000_000);
    // ...a long one does not.
    let err = rh_err(
        d.path(),
        &[
            "call",
            "testkit/burn",
            "100000000000",
            "--fuel",
            "50000000",
            "--run-name",
            "f",
        ],
        1,
    );
    assert!(err.contains("ran out of fuel"), "{err}");
    let c = config(d.path(), "f");
    assert_eq!(c["error"]["kind"], "out_of_fuel");
    assert_eq!(c["limits"]["fuel"], 50_000_000);
    assert!(c["fuel_consumed"].as_u64().unwrap() >= 49_000_000, "{c}");
}

#[test]
fn memory_hog_hits_the_limit() {
    let d = tmp();
    deploy(d.path(), "testkit");
    rh_ok(
        d.path(),
        &[
            "call",
            "testkit/hog",
            "4",
            "--memory",
            "32MiB",
            "--run-name",
            "small",
        ],
    );
    let err = rh_err(
        d.path(),
        &[
            "call",
            "testkit/hog",
            "200",
            "--memory",
            "32MiB",
            "--run-name",
            "big",
        ],
        1,
    );
    assert!(err.contains("memory limit"), "{err}");
    let c = config(d.path(), "big");
    assert_eq!(c["error"]["kind"], "memory_limit");
    assert_eq!(c["limits"]["memory"], 32 << 20);
}
