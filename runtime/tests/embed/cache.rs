//! Reuse through the library: single flight of identical `get_or_call`s,
//! and the result cache missing when an upstream artifact changed.

use crate::util::*;
use rh_runtime::{CallRequest, Caller, RunStatus};
use serde_json::json;

#[test]
fn concurrent_identical_get_or_calls_execute_once() {
    let d = tmp();
    let rt = runtime(d.path());
    deploy(&rt, "testkit");
    let results = tokio().block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let rt = rt.clone();
            tasks.push(tokio::spawn(async move {
                rt.get_or_call(
                    &Caller::host(),
                    CallRequest::new("testkit/sleep_ms", json!([300])).run_name("once"),
                )
                .await
                .unwrap()
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for r in &results {
        assert_eq!(r.status(), RunStatus::Completed);
        assert_eq!(r.result().unwrap(), json!(300));
        assert_eq!(r.config().start_time, results[0].config().start_time);
    }
    let stdout = run_file(d.path(), "once", "stdout");
    assert_eq!(stdout.matches("sleeping").count(), 1, "{stdout}");
}

#[test]
fn a_changed_upstream_artifact_misses() {
    let d = tmp();
    let rt = runtime(d.path());
    deploy(&rt, "testkit");
    let tk = tokio();
    rt.save_artifact(&Caller::host(), "cfg", b"one").unwrap();
    let call = |name: &str| {
        tk.block_on(
            rt.call(
                &Caller::host(),
                CallRequest::new("testkit/load_art", json!(["cfg"]))
                    .run_name(name)
                    .cache(true),
            ),
        )
        .unwrap()
    };
    assert!(call("a1").config().cache_hit.is_none());
    assert_eq!(call("a2").config().cache_hit.as_deref(), Some("a1"));
    rt.save_artifact(&Caller::host(), "cfg", b"two").unwrap();
    let a3 = call("a3");
    assert!(a3.config().cache_hit.is_none(), "the artifact changed");
    assert_eq!(a3.result().unwrap(), json!("two"));
    assert_eq!(call("a4").config().cache_hit.as_deref(), Some("a3"));
}
