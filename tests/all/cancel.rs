//! Cancelling Runs, including a guest spinning in a tight loop, in this
//! process and in another.

use crate::util::*;
use rh_runtime::{CallRequest, Caller, RunStatus};
use std::time::{Duration, Instant};

#[test]
fn cancel_stops_a_spinning_guest_and_keeps_its_output() {
    let d = tmp();
    deploy(d.path(), "testkit");
    let rt = runtime(d.path());
    let tk = tokio();
    tk.block_on(async {
        let h = rt
            .start(
                &Caller::host(),
                CallRequest::new("testkit/spin", serde_json::json!([])).run_name("spin"),
            )
            .await
            .unwrap();
        assert_eq!(h.status().unwrap(), RunStatus::Running);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !String::from_utf8_lossy(&h.stdout().unwrap()).contains("spinning") {
            assert!(Instant::now() < deadline, "guest never printed");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let t = Instant::now();
        let run = h.cancel().await.unwrap();
        let took = t.elapsed();
        assert_eq!(run.status(), RunStatus::Cancelled);
        assert!(took < Duration::from_secs(2), "cancel took {took:?}");
        assert!(String::from_utf8_lossy(&run.stdout().unwrap()).contains("spinning"));
        assert!(matches!(
            run.result(),
            Err(rh_runtime::Error::Cancelled { .. })
        ));
        // Terminal status never changes; cancelling again reports it.
        assert_eq!(h.cancel().await.unwrap().status(), RunStatus::Cancelled);
    });
    let c = config(d.path(), "spin");
    assert_eq!(c["status"], "cancelled");
    assert_eq!(c["error"]["kind"], "cancelled");
    assert!(c["end_time"].is_string());
}

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

#[test]
fn live_output_is_in_the_file_before_the_call_returns() {
    let d = tmp();
    deploy(d.path(), "progress");
    let rt = runtime(d.path());
    tokio().block_on(async {
        let h = rt
            .start(
                &Caller::host(),
                CallRequest::new("progress", serde_json::json!([50, 100])).run_name("live"),
            )
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = String::from_utf8_lossy(&h.stdout().unwrap()).to_string();
            if out.contains("step 1/50") {
                break;
            }
            assert!(Instant::now() < deadline, "no live output");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Seen while the Run is still running.
        assert_eq!(h.status().unwrap(), RunStatus::Running);
        assert!(matches!(
            h.result(),
            Err(rh_runtime::Error::NotFinished { .. })
        ));
        h.cancel().await.unwrap();
    });
}
