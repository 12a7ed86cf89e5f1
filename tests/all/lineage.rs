//! Artifacts from the CLI, their versions, and lineage across Runs.

use crate::util::*;
use std::collections::BTreeSet;

/// Every (kind, name) in one direction of a lineage tree.
fn names(node: &serde_json::Value, dir: &str, out: &mut BTreeSet<(String, String)>) {
    for k in node[dir].as_array().into_iter().flatten() {
        out.insert((
            k["kind"].as_str().unwrap().into(),
            k["name"].as_str().unwrap().into(),
        ));
        names(k, dir, out);
    }
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn run_pipeline(rh: &dyn Fn(&[&str]) -> String, cluster: &str) {
    rh(&[
        "call",
        "pipeline/preprocess",
        "\"dataset\"",
        "--cluster",
        cluster,
        "--run-name",
        "prep",
    ]);
    rh(&[
        "call",
        "pipeline/train",
        "3",
        "--cluster",
        cluster,
        "--run-name",
        "train",
    ]);
    rh(&[
        "call",
        "pipeline/export",
        "\"json\"",
        "--cluster",
        cluster,
        "--run-name",
        "export",
    ]);
}

#[test]
fn lineage_of_a_three_step_pipeline_locally() {
    let d = tmp();
    deploy(d.path(), "pipeline");
    std::fs::write(d.path().join("data.csv"), "1,2\n2,4\n3,6\n").unwrap();
    let put = rh_ok(d.path(), &["artifacts", "put", "dataset", "data.csv"]);
    assert!(put.starts_with("dataset sha256:"), "{put}");
    run_pipeline(&|a| rh_ok(d.path(), a), "local");

    let tree: serde_json::Value = serde_json::from_str(&rh_ok(
        d.path(),
        &["lineage", "local", "model-export", "--json"],
    ))
    .unwrap();
    assert_eq!(tree["kind"], "artifact");
    let mut up = BTreeSet::new();
    names(&tree, "upstream", &mut up);
    assert_eq!(
        up,
        set(&[
            ("run", "export"),
            ("run", "train"),
            ("run", "prep"),
            ("artifact", "model"),
            ("artifact", "clean-data"),
            ("artifact", "dataset"),
        ])
    );
    let text = rh_ok(d.path(), &["lineage", "local", "model-export"]);
    for needle in [
        "run export (pipeline/export",
        "run train",
        "run prep",
        "artifact dataset",
        "put from outside any run",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    // Downstream from the dataset: the same three Runs.
    let tree: serde_json::Value =
        serde_json::from_str(&rh_ok(d.path(), &["lineage", "local", "dataset", "--json"])).unwrap();
    let mut down = BTreeSet::new();
    names(&tree, "downstream", &mut down);
    assert!(
        down.contains(&("run".into(), "export".into()))
            && down.contains(&("artifact".into(), "model-export".into()))
    );
    // A Run's lineage: what it loaded and what it saved.
    let tree: serde_json::Value =
        serde_json::from_str(&rh_ok(d.path(), &["lineage", "local", "train", "--json"])).unwrap();
    assert_eq!(tree["kind"], "run");
    assert_eq!(tree["upstream"][0]["name"], "clean-data");
    assert_eq!(tree["downstream"][0]["name"], "model");
    let err = rh_err(d.path(), &["lineage", "local", "nothing"], 2);
    assert!(err.contains("no artifact or run named `nothing`"), "{err}");
}

#[test]
fn artifact_versions_are_kept_by_digest() {
    let d = tmp();
    deploy(d.path(), "testkit");
    std::fs::write(d.path().join("v1"), "first").unwrap();
    std::fs::write(d.path().join("v2"), "second").unwrap();
    let d1 = rh_ok(d.path(), &["artifacts", "put", "cfg", "v1"]);
    rh_ok(
        d.path(),
        &["call", "testkit/load_art", "\"cfg\"", "--run-name", "r1"],
    );
    rh_ok(d.path(), &["artifacts", "put", "cfg", "v2"]);
    rh_ok(
        d.path(),
        &["call", "testkit/load_art", "\"cfg\"", "--run-name", "r2"],
    );
    let show: serde_json::Value = serde_json::from_str(&rh_ok(
        d.path(),
        &["artifacts", "show", "local", "cfg", "--json"],
    ))
    .unwrap();
    assert_eq!(show["versions"].as_array().unwrap().len(), 2);
    let first = d1.split_whitespace().nth(1).unwrap();
    assert_eq!(rh_ok(d.path(), &["artifacts", "get", "cfg"]), "second");
    assert_eq!(
        rh_ok(d.path(), &["artifacts", "get", "cfg", "--digest", first]),
        "first"
    );
    // Each Run recorded the version it loaded.
    assert_eq!(
        config(d.path(), "r1")["upstream_artifacts"][0]["digest"],
        first
    );
    assert_ne!(
        config(d.path(), "r2")["upstream_artifacts"][0]["digest"],
        first
    );
    // A version saved by a Run names it.
    rh_ok(
        d.path(),
        &[
            "call",
            "testkit/save_art",
            "\"note\"",
            "\"hi\"",
            "--run-name",
            "saver",
        ],
    );
    let show: serde_json::Value = serde_json::from_str(&rh_ok(
        d.path(),
        &["artifacts", "show", "local", "note", "--json"],
    ))
    .unwrap();
    assert_eq!(show["versions"][0]["run"], "saver");
    assert!(rh_ok(d.path(), &["artifacts", "list"]).contains("note"));
}

#[test]
fn artifacts_and_lineage_on_a_daemon() {
    let d = Daemon::start();
    d.deploy("pipeline");
    std::fs::write(d.client().join("data.csv"), "1,1\n2,2\n").unwrap();
    d.rh_ok(&["artifacts", "put", "cpu", "dataset", "data.csv"]);
    run_pipeline(&|a| d.rh_ok(a), "cpu");
    let tree: serde_json::Value =
        serde_json::from_str(&d.rh_ok(&["lineage", "cpu", "model-export", "--json"])).unwrap();
    let mut up = BTreeSet::new();
    names(&tree, "upstream", &mut up);
    assert!(
        up.contains(&("run".into(), "prep".into()))
            && up.contains(&("artifact".into(), "dataset".into())),
        "{up:?}"
    );
    assert!(
        d.rh_ok(&["artifacts", "list", "cpu"])
            .contains("model-export")
    );
    let model = d.rh_ok(&["artifacts", "get", "cpu", "model"]);
    assert!(model.contains("slope"), "{model}");
    assert!(
        !d.client().join("rh").exists(),
        "remote artifacts touched the local cluster"
    );
}
