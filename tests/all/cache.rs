//! `get-or-call` / `get-or-run`: reuse, rerun, mismatch and single flight
//! across processes.

use crate::util::*;

#[test]
fn get_or_call_reuses_a_completed_run() {
    let d = tmp();
    deploy(d.path(), "summer");
    let out = rh_ok(
        d.path(),
        &["get-or-call", "summer", "1", "2", "--run-name", "r"],
    );
    assert_eq!(out.lines().last(), Some("3"));
    assert!(out.contains("adding 1 and 2"), "first call executes: {out}");
    let first = config(d.path(), "r");
    let out = rh_ok(
        d.path(),
        &["get-or-call", "summer", "1", "2", "--run-name", "r"],
    );
    assert_eq!(out.trim(), "3", "a cache hit prints no guest output: {out}");
    assert_eq!(config(d.path(), "r"), first, "the Run was not touched");

    // Other inputs under the same name: a clear error, nothing changed.
    let err = rh_err(
        d.path(),
        &["get-or-call", "summer", "5", "5", "--run-name", "r"],
        2,
    );
    assert!(err.contains("from other inputs"), "{err}");
    assert_eq!(config(d.path(), "r"), first);
    // ...unless a rerun is asked for.
    let out = rh_ok(
        d.path(),
        &[
            "get-or-call",
            "summer",
            "5",
            "5",
            "--run-name",
            "r",
            "--rerun",
        ],
    );
    assert_eq!(out.lines().last(), Some("10"));
    assert_eq!(run_file(d.path(), "r", "result.json"), "10");
}

#[test]
fn get_or_call_reruns_after_error() {
    let d = tmp();
    deploy(d.path(), "testkit");
    rh_err(
        d.path(),
        &[
            "get-or-call",
            "testkit/spin",
            "--run-name",
            "e",
            "--timeout",
            "100ms",
        ],
        1,
    );
    let c = config(d.path(), "e");
    assert_eq!(c["error"]["kind"], "timeout");
    // Same call again: the error Run is replaced by a new execution.
    rh_err(
        d.path(),
        &[
            "get-or-call",
            "testkit/spin",
            "--run-name",
            "e",
            "--timeout",
            "100ms",
        ],
        1,
    );
    let c2 = config(d.path(), "e");
    assert_ne!(c["start_time"], c2["start_time"]);
}

#[test]
fn concurrent_get_or_calls_from_several_processes_execute_once() {
    let d = tmp();
    deploy(d.path(), "testkit");
    let path = d.path().to_path_buf();
    let outs: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let path = &path;
                s.spawn(move || {
                    rh_ok(
                        path,
                        &["get-or-call", "testkit/sleep_ms", "400", "--run-name", "xp"],
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outs {
        assert_eq!(o.lines().last(), Some("400"), "{o}");
    }
    let stdout = run_file(d.path(), "xp", "stdout");
    assert_eq!(stdout.matches("sleeping").count(), 1, "{stdout}");
    // Exactly one of the four printed the guest's output.
    assert_eq!(outs.iter().filter(|o| o.contains("sleeping")).count(), 1);
}

#[test]
fn get_or_run_returns_the_existing_run_or_starts_one() {
    let d = tmp();
    deploy(d.path(), "progress");
    let out = rh_ok(
        d.path(),
        &["get-or-run", "progress", "3", "50", "--run-name", "gr"],
    );
    assert_eq!(out.trim(), "gr running");
    let out = rh_ok(
        d.path(),
        &["get-or-run", "progress", "3", "50", "--run-name", "gr"],
    );
    assert!(out.starts_with("gr "), "{out}");
    rh_ok(d.path(), &["wait", "local", "gr"]);
    let out = rh_ok(
        d.path(),
        &["get-or-run", "progress", "3", "50", "--run-name", "gr"],
    );
    assert_eq!(out.trim(), "gr completed");
    let err = rh_err(
        d.path(),
        &["get-or-run", "progress", "4", "50", "--run-name", "gr"],
        2,
    );
    assert!(err.contains("from other inputs"), "{err}");
}
