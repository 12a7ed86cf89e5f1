//! Cancelling a Run from another process with `rh-wasm cancel` (the
//! library's cancel is tested in `runtime/tests/embed/cancel.rs`).

use crate::util::*;

#[test]
fn cli_cancel_reaches_a_run_in_another_process() {
    let d = tmp();
    deploy(d.path(), "testkit");
    rh_ok(d.path(), &["run", "testkit/spin", "--run-name", "bg"]);
    wait_until(20, "spinning", || {
        run_file(d.path(), "bg", "stdout").contains("spinning")
    });
    let out = rh_ok(d.path(), &["cancel", "local", "bg"]);
    assert_eq!(out.trim(), "bg cancelled");
    assert_eq!(config(d.path(), "bg")["status"], "cancelled");
    let out = rh_ok(d.path(), &["cancel", "local", "bg"]);
    assert!(out.contains("already ended (cancelled)"), "{out}");
    let err = rh_err(d.path(), &["wait", "local", "bg"], 1);
    let _ = err;
}
