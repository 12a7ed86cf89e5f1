//! Scopes opened by the embedding program: nested, failing outward.

use crate::util::*;
use rh_runtime::{CallRequest, Caller, Error, RunStatus};
use serde_json::json;

#[test]
fn nested_embedded_scopes_fail_outward() {
    let d = tmp();
    let rt = runtime(d.path());
    deploy(&rt, "summer");
    let tk = tokio();
    let out: Result<(), Error> =
        tk.block_on(rt.in_scope(&Caller::host(), "outer", |outer| async move {
            let run = outer
                .call(CallRequest::new("summer", json!([1, 2])).run_name("child"))
                .await?;
            assert_eq!(run.result()?, json!(3));
            outer
                .in_scope("inner", |inner| async move {
                    inner.save_artifact("half-done", b"x")?;
                    Err::<(), _>(Error::Invalid("the inner body failed".into()))
                })
                .await?;
            Ok(())
        }));
    assert_eq!(out.unwrap_err().to_string(), "the inner body failed");
    let outer = rt.run(&Caller::host(), "outer").unwrap();
    let inner = rt.run(&Caller::host(), "inner").unwrap();
    assert_eq!(inner.status(), RunStatus::Error);
    assert_eq!(
        inner.config().error.as_ref().unwrap().message,
        "the inner body failed"
    );
    assert_eq!(inner.config().parent_run.as_deref(), Some("outer"));
    assert_eq!(inner.config().downstream_artifacts[0].name, "half-done");
    assert_eq!(outer.status(), RunStatus::Error);
    assert_eq!(
        rt.run(&Caller::host(), "child")
            .unwrap()
            .config()
            .parent_run
            .as_deref(),
        Some("outer")
    );
}
