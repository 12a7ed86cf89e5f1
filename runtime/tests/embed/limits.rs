//! A cluster's limits set by the embedding program.

use crate::util::*;
use rh_runtime::Caller;

#[test]
fn endless_output_is_capped() {
    let d = tmp();
    // The cap is a cluster setting; open the local cluster with a small one.
    let opts = rh_runtime::RuntimeOptions::new(d.path().join("rh")).limits(rh_runtime::Limits {
        output: 64 << 10,
        ..Default::default()
    });
    let rt = rh_runtime::Runtime::open_with(opts).unwrap();
    deploy(&rt, "testkit");
    let err = tokio()
        .block_on(
            rt.call(
                &Caller::host(),
                rh_runtime::CallRequest::new("testkit/flood", serde_json::json!([10_000_000]))
                    .run_name("flood"),
            ),
        )
        .unwrap_err();
    assert!(
        matches!(err, rh_runtime::Error::OutputLimit { limit: 65536, .. }),
        "{err}"
    );
    let c = config(d.path(), "flood");
    assert_eq!(c["error"]["kind"], "output_limit");
    let len = std::fs::metadata(d.path().join("rh/runs/flood/stdout"))
        .unwrap()
        .len();
    assert_eq!(len, 64 << 10);
}
