//! A Run whose host process dies is never left `running`.

use crate::util::*;

#[test]
fn killed_worker_run_becomes_interrupted_on_reopen() {
    let d = tmp();
    deploy(d.path(), "testkit");
    rh_ok(d.path(), &["run", "testkit/spin", "--run-name", "victim"]);
    wait_until(20, "spinning", || {
        run_file(d.path(), "victim", "stdout").contains("spinning")
    });
    let c = config(d.path(), "victim");
    assert_eq!(c["status"], "running");
    let host = c["host"].as_str().unwrap();
    let pid: i32 = host.split('-').next().unwrap().parse().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_until(20, "worker gone", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
    });
    // Any open of the cluster recovers it, once the dead process's lock is
    // free: a thread-group leader shows as a zombie while its other threads
    // may still be exiting with the lock's file open, so look again until
    // the kernel has let go.
    // The worker may die before its index row is committed (rows are
    // written in 10 ms batches): recovery puts it there, so the Run is
    // listed once recovered.
    wait_until(20, "recovery", || {
        rh_ok(d.path(), &["runs"]);
        config(d.path(), "victim")["status"] != "running"
    });
    let out = rh_ok(d.path(), &["runs"]);
    assert!(out.contains("victim"), "{out}");
    let c = config(d.path(), "victim");
    assert_eq!(c["status"], "error");
    assert_eq!(c["error"]["kind"], "interrupted");
    assert!(c["end_time"].is_string());
    assert!(run_file(d.path(), "victim", "stdout").contains("spinning"));
    // And the interrupted Run can be rerun under its name.
    let err = rh_err(d.path(), &["result", "local", "victim"], 1);
    assert!(err.contains("interrupted"), "{err}");
}

#[test]
fn a_live_run_of_another_process_is_not_recovered() {
    let d = tmp();
    deploy(d.path(), "testkit");
    rh_ok(d.path(), &["run", "testkit/spin", "--run-name", "alive"]);
    // Opening the cluster again must leave the live Run alone.
    rh_ok(d.path(), &["runs"]);
    rh_ok(d.path(), &["runs"]);
    assert_eq!(config(d.path(), "alive")["status"], "running");
    rh_ok(d.path(), &["cancel", "local", "alive"]);
}
