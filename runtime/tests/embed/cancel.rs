//! Cancelling a Run through the library, including a guest spinning in a
//! tight loop, and its output while it runs.

use crate::util::*;
use rh_runtime::{CallRequest, Caller, RunStatus};
use std::time::{Duration, Instant};

#[test]
fn cancel_stops_a_spinning_guest_and_keeps_its_output() {
    let d = tmp();
    let rt = runtime(d.path());
    deploy(&rt, "testkit");
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
        printed(&h, "spinning").await;
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
fn live_output_is_in_the_file_before_the_call_returns() {
    let d = tmp();
    let rt = runtime(d.path());
    deploy(&rt, "progress");
    tokio().block_on(async {
        let h = rt
            .start(
                &Caller::host(),
                CallRequest::new("progress", serde_json::json!([50, 100])).run_name("live"),
            )
            .await
            .unwrap();
        printed(&h, "step 1/50").await;
        // Seen while the Run is still running.
        assert_eq!(h.status().unwrap(), RunStatus::Running);
        assert!(matches!(
            h.result(),
            Err(rh_runtime::Error::NotFinished { .. })
        ));
        h.cancel().await.unwrap();
    });
}
