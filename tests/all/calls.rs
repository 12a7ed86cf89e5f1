//! Deploying and calling on `local` through the CLI, and what a Run folder
//! holds afterwards.

use crate::util::*;

#[test]
fn summer_call_records_a_complete_run() {
    let d = tmp();
    let out = deploy(d.path(), "summer");
    assert!(out.contains("deployed summer sha256:"), "{out}");
    assert!(out.contains("summer(a, b)"), "{out}");

    let out = rh_ok(
        d.path(),
        &["call", "summer", "1", "2", "--run-name", "my_fn_run"],
    );
    // The guest's line streams first, the result is printed last.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.last(), Some(&"3"), "{out}");
    assert!(out.contains("adding 1 and 2"), "{out}");

    let run = d.path().join("rh/runs/my_fn_run");
    let mut files: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "config.json",
            "inputs.json",
            "result.json",
            "stderr",
            "stdout"
        ]
    );
    assert_eq!(run_file(d.path(), "my_fn_run", "inputs.json"), "[1,2]");
    assert_eq!(run_file(d.path(), "my_fn_run", "result.json"), "3");
    assert!(run_file(d.path(), "my_fn_run", "stdout").contains("adding 1 and 2"));

    let c = config(d.path(), "my_fn_run");
    assert_eq!(c["name"], "my_fn_run");
    assert_eq!(c["status"], "completed");
    assert_eq!(c["run_type"], "function");
    assert_eq!(c["fn_name"], "summer");
    assert_eq!(c["function"]["name"], "summer");
    assert!(
        c["function"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(c["input_digest"], rh_runtime::digest_of(b"[1,2]"));
    assert_eq!(c["cluster"], "local");
    assert!(c["fuel_consumed"].as_u64().unwrap() > 0);
    assert!(c["limits"]["memory"].as_u64().unwrap() > 0);
    assert!(c["error"].is_null());
    for t in ["start_time", "end_time"] {
        let s = c[t].as_str().unwrap();
        assert!(s.ends_with('Z') && s.contains('T'), "{t}: {s}");
    }
    assert!(c["end_time"].as_str() >= c["start_time"].as_str());

    // The same Run through show / result / runs / logs.
    let shown: serde_json::Value =
        serde_json::from_str(&rh_ok(d.path(), &["show", "local", "my_fn_run"])).unwrap();
    assert_eq!(shown, c);
    assert_eq!(
        rh_ok(d.path(), &["result", "local", "my_fn_run"]).trim(),
        "3"
    );
    assert_eq!(rh_ok(d.path(), &["result", "my_fn_run"]).trim(), "3");
    let runs = rh_ok(d.path(), &["runs"]);
    assert!(
        runs.contains("my_fn_run") && runs.contains("completed"),
        "{runs}"
    );
    assert!(rh_ok(d.path(), &["logs", "local", "my_fn_run"]).contains("adding 1 and 2"));
}

#[test]
fn calls_without_a_name_get_unique_automatic_names() {
    let d = tmp();
    deploy(d.path(), "summer");
    let a: serde_json::Value =
        serde_json::from_str(&rh_ok(d.path(), &["call", "summer", "2", "3", "--json"])).unwrap();
    let b: serde_json::Value =
        serde_json::from_str(&rh_ok(d.path(), &["call", "summer", "2", "3", "--json"])).unwrap();
    assert_eq!(a["result"], 5);
    assert_eq!(a["status"], "completed");
    let (na, nb) = (
        a["run_name"].as_str().unwrap(),
        b["run_name"].as_str().unwrap(),
    );
    assert_ne!(na, nb);
    assert!(na.starts_with("summer_20") && na.ends_with('Z'), "{na}");
    assert_eq!(config(d.path(), na)["status"], "completed");
}

#[test]
fn several_functions_in_one_component() {
    let d = tmp();
    let out = deploy(d.path(), "text");
    for f in ["text/word_count", "text/shout", "text/split_words"] {
        assert!(out.contains(f), "{f} missing from {out}");
    }
    let out = rh_ok(d.path(), &["call", "text/word_count", "\"one two three\""]);
    assert_eq!(out.lines().last(), Some("3"));
    let out = rh_ok(d.path(), &["call", "text/shout", "\"hey\"", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["result"], "HEY!");
}

#[test]
fn arguments_by_name_from_a_file_and_positional_agree() {
    let d = tmp();
    deploy(d.path(), "summer");
    std::fs::write(d.path().join("args.json"), r#"{"b": 40, "a": 2}"#).unwrap();
    let out = rh_ok(
        d.path(),
        &[
            "call",
            "summer",
            "--input",
            "args.json",
            "--run-name",
            "byname",
        ],
    );
    assert_eq!(out.lines().last(), Some("42"));
    // Stored in one canonical form: by name and positional are one call.
    assert_eq!(run_file(d.path(), "byname", "inputs.json"), "[2,40]");
    let again = rh_ok(
        d.path(),
        &["get-or-call", "summer", "2", "40", "--run-name", "byname"],
    );
    assert_eq!(again.lines().last(), Some("42"), "the same inputs: {again}");
}

#[test]
fn function_errors_and_panics_become_error_runs() {
    let d = tmp();
    deploy(d.path(), "testkit");
    let err = rh_err(
        d.path(),
        &[
            "call",
            "testkit/fail",
            "\"disk on fire\"",
            "--run-name",
            "f1",
        ],
        1,
    );
    assert!(err.contains("disk on fire"), "{err}");
    let c = config(d.path(), "f1");
    assert_eq!(c["status"], "error");
    assert_eq!(c["error"]["kind"], "failed");
    assert_eq!(c["error"]["message"], "disk on fire");
    assert!(!d.path().join("rh/runs/f1/result.json").exists());

    let err = rh_err(d.path(), &["call", "testkit/boom", "--run-name", "p1"], 1);
    assert!(err.contains("trapped"), "{err}");
    let c = config(d.path(), "p1");
    assert_eq!(c["error"]["kind"], "trap");
    assert!(
        c["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{c}"
    );
    // The panic message went to the Run's stderr.
    assert!(run_file(d.path(), "p1", "stderr").contains("boom"));

    // result of an error Run prints its error and fails.
    let err = rh_err(d.path(), &["result", "local", "f1"], 1);
    assert!(err.contains("disk on fire"), "{err}");
}

#[test]
fn a_component_built_without_the_sdk_works() {
    let d = tmp();
    let out = deploy(d.path(), "raw");
    assert!(out.contains("Multiplies two integers"), "{out}");
    let out = rh_ok(d.path(), &["call", "raw", "6", "7"]);
    assert_eq!(out.lines().last(), Some("42"));
}

#[test]
fn redeploy_makes_a_new_version_and_old_runs_keep_their_digest() {
    let d = tmp();
    rh_ok(
        d.path(),
        &["deploy", guest("summer").to_str().unwrap(), "--name", "f"],
    );
    rh_ok(d.path(), &["call", "f", "1", "1", "--run-name", "old"]);
    let out = rh_ok(
        d.path(),
        &["deploy", guest("raw").to_str().unwrap(), "--name", "f"],
    );
    assert!(out.contains("v2"), "{out}");
    rh_ok(d.path(), &["call", "f", "2", "3", "--run-name", "new"]);
    assert_eq!(run_file(d.path(), "new", "result.json"), "6");
    let (old, new) = (config(d.path(), "old"), config(d.path(), "new"));
    assert_ne!(old["function"]["digest"], new["function"]["digest"]);
    // The old component is still stored.
    let hex = old["function"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    assert!(
        d.path()
            .join(format!("rh/functions/components/{hex}.wasm"))
            .exists()
    );
    let list: serde_json::Value =
        serde_json::from_str(&rh_ok(d.path(), &["functions", "--json"])).unwrap();
    assert_eq!(list[0]["versions"], 2);
}

#[test]
fn describe_reports_params_and_docs() {
    let d = tmp();
    deploy(d.path(), "summer");
    let list: serde_json::Value =
        serde_json::from_str(&rh_ok(d.path(), &["functions", "--json"])).unwrap();
    let f = &list[0]["functions"][0];
    assert_eq!(f["name"], "summer");
    assert_eq!(f["params"], serde_json::json!(["a", "b"]));
    assert!(f["doc"].as_str().unwrap().len() > 3, "{f}");
}

#[test]
fn async_run_outlives_the_command_and_logs_follow_to_the_end() {
    let d = tmp();
    deploy(d.path(), "progress");
    let out = rh_ok(
        d.path(),
        &["run", "progress", "5", "100", "--run-name", "bg"],
    );
    assert_eq!(out.trim(), "bg running");
    // The command has returned; the Run goes on in its worker.
    assert_eq!(config(d.path(), "bg")["status"], "running");
    let logs = rh_ok(d.path(), &["logs", "local", "bg", "--follow"]);
    for i in 1..=5 {
        assert!(logs.contains(&format!("step {i}/5")), "{logs}");
    }
    assert_eq!(config(d.path(), "bg")["status"], "completed");
    assert_eq!(
        rh_ok(d.path(), &["wait", "local", "bg"]).trim(),
        "bg completed"
    );
    assert_eq!(rh_ok(d.path(), &["result", "local", "bg"]).trim(), "5");
}

/// Every guest is built for a reason: each is named by a test of the CLI
/// (`tests/all`) or of the library (`runtime/tests`).
#[test]
fn every_guest_is_used_by_a_test() {
    fn sources(dir: &std::path::Path, out: &mut String) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut all = String::new();
    sources(&repo().join("tests/all"), &mut all);
    sources(&repo().join("runtime/tests"), &mut all);
    for g in GUESTS {
        assert!(
            all.contains(&format!("\"{g}\"")),
            "guest {g} is built but no test uses it"
        );
    }
    // And every guest crate on disk is in the list.
    for ws in ["examples", "tests/guests"] {
        for e in std::fs::read_dir(repo().join(ws)).unwrap().flatten() {
            if e.path().join("Cargo.toml").exists() {
                let name = e.file_name().into_string().unwrap().replace('-', "_");
                assert!(GUESTS.contains(&name.as_str()), "{name} not in GUESTS");
            }
        }
    }
}
