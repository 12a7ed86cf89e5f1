//! A Run named by its folder's path (`show`, `result`, `logs`), as the
//! seed's `rh.run(path=...)`: the local Run folder, or a copy of it
//! anywhere (a pulled folder).

use crate::util::*;

#[test]
fn show_result_and_logs_take_a_run_folders_path() {
    let d = tmp();
    deploy(d.path(), "summer");
    deploy(d.path(), "testkit");
    rh_ok(d.path(), &["call", "summer", "1", "2", "--run-name", "r1"]);
    // A copy elsewhere, as `pull` leaves one.
    let copy = d.path().join("pulled/r1");
    std::fs::create_dir_all(&copy).unwrap();
    for f in [
        "config.json",
        "inputs.json",
        "result.json",
        "stdout",
        "stderr",
    ] {
        std::fs::copy(d.path().join("rh/runs/r1").join(f), copy.join(f)).unwrap();
    }
    for path in ["./rh/runs/r1", "pulled/r1"] {
        let shown: serde_json::Value =
            serde_json::from_str(&rh_ok(d.path(), &["show", path])).unwrap();
        assert_eq!(shown["name"], "r1", "{path}");
        assert_eq!(shown["status"], "completed", "{path}");
        assert_eq!(rh_ok(d.path(), &["result", path]).trim(), "3", "{path}");
        let answer: serde_json::Value =
            serde_json::from_str(&rh_ok(d.path(), &["--json", "result", path])).unwrap();
        assert_eq!(answer["run_name"], "r1");
        assert_eq!(answer["result"], 3);
        assert!(
            rh_ok(d.path(), &["logs", path]).contains("adding 1 and 2"),
            "{path}"
        );
        assert_eq!(rh_ok(d.path(), &["logs", path, "--stderr"]), "");
        assert!(rh_ok(d.path(), &["logs", path, "--follow"]).contains("adding 1 and 2"));
    }
    // A failed Run's folder answers with its error, as by name.
    rh_err(d.path(), &["call", "testkit/boom", "--run-name", "f1"], 1);
    let err = rh_err(d.path(), &["result", "rh/runs/f1"], 1);
    assert_eq!(err, rh_err(d.path(), &["result", "f1"], 1));
    // Anything that is not a Run folder is a clear error.
    std::fs::create_dir_all(d.path().join("empty/dir")).unwrap();
    for path in ["./nowhere/r1", "empty/dir"] {
        let err = rh_err(d.path(), &["show", path], 2);
        assert!(err.contains("is not a Run folder"), "{path}: {err}");
    }
    // A plain name is still a name on a cluster.
    let shown: serde_json::Value = serde_json::from_str(&rh_ok(d.path(), &["show", "r1"])).unwrap();
    assert_eq!(shown["name"], "r1");
}
