//! The runtime as a library: concurrent isolation, artifacts and lineage,
//! loading Runs by name and by path.

use crate::util::*;
use rh_runtime::{CallRequest, Caller, Error, Run, RunStatus};
use serde_json::json;

#[test]
fn concurrent_runs_see_only_their_own_output() {
    let d = tmp();
    let rt = runtime(d.path());
    deploy(&rt, "testkit");
    let names = tokio().block_on(async {
        let mut tasks = Vec::new();
        for i in 0..32 {
            let rt = rt.clone();
            tasks.push(tokio::spawn(async move {
                let marker = format!("marker-{i:02}-");
                let run = rt
                    .call(
                        &Caller::host(),
                        CallRequest::new("testkit/echo_marker", json!([marker, 50])),
                    )
                    .await
                    .unwrap();
                (marker, run.name().to_string())
            }));
        }
        let mut v = Vec::new();
        for t in tasks {
            v.push(t.await.unwrap());
        }
        v
    });
    let all: std::collections::HashSet<_> = names.iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(all.len(), 32, "automatic names collided");
    for (marker, name) in &names {
        let out = run_file(d.path(), name, "stdout");
        let err = run_file(d.path(), name, "stderr");
        assert_eq!(out.matches(marker.as_str()).count(), 50, "{name}");
        assert_eq!(err.matches(marker.as_str()).count(), 50, "{name}");
        for (other, _) in &names {
            if other != marker {
                assert!(!out.contains(other.as_str()), "{name} holds {other}");
                assert!(!err.contains(other.as_str()), "{name} holds {other}");
            }
        }
    }
}

#[test]
fn pipeline_records_artifacts_upstream_and_downstream() {
    let d = tmp();
    let rt = runtime(d.path());
    deploy(&rt, "pipeline");
    let data = rt
        .save_artifact(&Caller::host(), "dataset", b"1,2\n2,4\n3,6\n4,8\n")
        .unwrap();
    tokio().block_on(async {
        rt.call(
            &Caller::host(),
            CallRequest::new("pipeline/preprocess", json!(["dataset"])).run_name("prep"),
        )
        .await
        .unwrap();
        rt.call(
            &Caller::host(),
            CallRequest::new("pipeline/train", json!([3])).run_name("train"),
        )
        .await
        .unwrap();
        rt.call(
            &Caller::host(),
            CallRequest::new("pipeline/export", json!(["json"])).run_name("export"),
        )
        .await
        .unwrap();
    });
    let prep = rt.run(&Caller::host(), "prep").unwrap();
    assert_eq!(prep.config().upstream_artifacts, vec![data.clone()]);
    let clean = &prep.config().downstream_artifacts;
    assert_eq!(clean.len(), 1);
    assert_eq!(clean[0].name, "clean-data");
    let train = rt.run(&Caller::host(), "train").unwrap();
    assert_eq!(&train.config().upstream_artifacts, clean);
    assert_eq!(train.config().downstream_artifacts[0].name, "model");
    let export = rt.run(&Caller::host(), "export").unwrap();
    assert_eq!(
        export.config().upstream_artifacts,
        train.config().downstream_artifacts
    );
    assert_eq!(export.config().downstream_artifacts[0].name, "model-export");
    // The recorded version is the one stored.
    let (bytes, current) = rt
        .load_artifact(&Caller::host(), "model-export", None)
        .unwrap();
    assert_eq!(current, export.config().downstream_artifacts[0]);
    assert_eq!(rh_runtime::digest_of(&bytes), current.digest);
    // A missing artifact is an error the function reports.
    let err = tokio()
        .block_on(rt.call(
            &Caller::host(),
            CallRequest::new("pipeline/preprocess", json!(["nothing"])),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("nothing"), "{err}");
}

#[test]
fn runs_load_by_name_and_by_path() {
    let d = tmp();
    let rt = runtime(d.path());
    deploy(&rt, "summer");
    let run = tokio()
        .block_on(rt.call(
            &Caller::host(),
            CallRequest::new("summer", json!({"a": 20, "b": 22})).run_name("byp"),
        ))
        .unwrap();
    let by_name = rt.run(&Caller::host(), "byp").unwrap();
    let by_path = Run::open(d.path().join("rh/runs/byp")).unwrap();
    assert_eq!(by_name.config(), run.config());
    assert_eq!(by_path.config(), run.config());
    assert_eq!(by_path.result().unwrap(), json!(42));
    // Arguments by name are stored in parameter order.
    assert_eq!(by_path.inputs().unwrap(), b"[20,22]");
    assert!(String::from_utf8_lossy(&by_path.stdout().unwrap()).contains("adding 20 and 22"));
    assert_eq!(by_path.stderr().unwrap(), b"");
    assert_eq!(by_name.status(), RunStatus::Completed);
}

/// A guest reads the host's wall clock (WASI clocks are not virtualized), so
/// the stamps `ticks` prints are the moments its lines were written: the
/// benchmark suite's follow latency rests on this.
#[test]
fn guest_wall_clock_is_the_hosts() {
    let d = tmp();
    let rt = runtime(d.path());
    deploy(&rt, "testkit");
    let now_us = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
    };
    let before = now_us();
    let run = tokio()
        .block_on(rt.call(
            &Caller::host(),
            CallRequest::new("testkit/ticks", json!([5, 2])),
        ))
        .unwrap();
    let after = now_us();
    assert_eq!(run.result().unwrap(), json!(5));
    let out = String::from_utf8(run.stdout().unwrap()).unwrap();
    let stamps: Vec<u128> = out
        .lines()
        .map(|l| l.strip_prefix("tick ").unwrap().parse().unwrap())
        .collect();
    assert_eq!(stamps.len(), 5, "{out}");
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    assert!(
        stamps[0] >= before && stamps[4] <= after,
        "{before} {stamps:?} {after}"
    );
}

#[test]
fn tags_are_recorded_and_bad_ones_refused_before_anything_is_written() {
    let d = tmp();
    let rt = runtime(d.path());
    deploy(&rt, "summer");
    let me = Caller::host();
    let tk = tokio();
    let req = CallRequest::new("summer", json!([1, 2]))
        .run_name("tagged")
        .tag("team", "search")
        .tag("stage", "eval");
    let run = tk.block_on(rt.call(&me, req)).unwrap();
    let want: std::collections::BTreeMap<String, String> = [("stage", "eval"), ("team", "search")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(run.config().tags, want);
    // As recorded on disk, not only in memory.
    assert_eq!(rt.run(&me, "tagged").unwrap().config().tags, want);
    for req in [
        CallRequest::new("summer", json!([1, 2])).tag("a b", "x"),
        CallRequest::new("summer", json!([1, 2])).tag("k", "x".repeat(257)),
        (0..33).fold(CallRequest::new("summer", json!([1, 2])), |r, i| {
            r.tag(format!("k{i}"), "v")
        }),
    ] {
        let e = tk
            .block_on(rt.call(&me, req.run_name("refused")))
            .unwrap_err();
        assert!(
            matches!(e, Error::Invalid(_) | Error::InvalidName { .. }),
            "{e}"
        );
        assert!(rt.run(&me, "refused").is_err(), "no Run was made: {e}");
    }
}
