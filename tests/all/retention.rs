//! Retention and cache eviction: `gc` by age and by count, narrowed by
//! status and function, dry runs, producers kept, unreferenced artifact
//! versions and components, a `gc` killed halfway, `serve --retain`,
//! `cache clear`, and the access rules on search and `gc`.

use crate::util::*;
use serde_json::{Value, json};
use std::path::Path;

fn listed(dir: &Path) -> Vec<String> {
    let out = rh_ok(dir, &["runs", "--json", "--limit", "1000"]);
    page_names(&serde_json::from_str(&out).unwrap())
}

fn gc(dir: &Path, args: &[&str]) -> Value {
    let out = rh_ok(dir, &[&["gc", "--json"], args].concat());
    serde_json::from_str(&out).unwrap()
}

#[test]
fn gc_removes_finished_runs_by_age_and_count_never_a_running_one() {
    let d = tmp();
    let dir = d.path();
    deploy(dir, "summer");
    deploy(dir, "testkit");
    for i in 0..4 {
        rh_ok(
            dir,
            &[
                "call",
                "summer",
                "1",
                &i.to_string(),
                "--run-name",
                &format!("old{i}"),
            ],
        );
    }
    assert_eq!(
        rh(dir, &["call", "testkit/fail", "\"x\"", "--run-name", "bad"])
            .status
            .code(),
        Some(1)
    );
    // A Run that is running when gc runs.
    rh_ok(dir, &["run", "testkit/spin", "--run-name", "spinning"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    rh_ok(dir, &["call", "summer", "5", "5", "--run-name", "fresh"]);

    // Bad policies are refused and change nothing.
    for (args, needle) in [
        (&[][..], "--keep-last"),
        (&["--older-than", "1x"][..], "unknown duration unit"),
        (
            &["--older-than", "1s", "--status", "running"][..],
            "never removed",
        ),
        (
            &["--older-than", "1s", "--status", "done"][..],
            "unknown status",
        ),
    ] {
        let err = rh_err(dir, &[&["gc"], args].concat(), 2);
        assert!(err.contains(needle), "{args:?}: {err}");
    }

    // A dry run says what would go and removes nothing.
    let v = gc(
        dir,
        &["--older-than", "1s", "--status", "error", "--dry-run"],
    );
    assert_eq!(v["runs"], json!(["bad"]), "{v}");
    assert_eq!(v["dry_run"], true);
    assert!(v["run_bytes"].as_u64().unwrap() > 0, "{v}");
    assert!(dir.join("rh/runs/bad/config.json").exists());
    let text = rh_ok(
        dir,
        &["gc", "--older-than", "1s", "--status", "error", "--dry-run"],
    );
    assert!(text.contains("bad\nwould remove 1 Runs ("), "{text}");

    // By status, then by function and age.
    let v = gc(dir, &["--older-than", "1s", "--status", "error"]);
    assert_eq!(
        (v["runs_removed"].as_u64(), v["dry_run"].as_bool()),
        (Some(1), Some(false))
    );
    assert!(!dir.join("rh/runs/bad").exists());
    let v = gc(dir, &["--older-than", "1s", "--function", "summer"]);
    assert_eq!(v["runs"], json!(["old0", "old1", "old2", "old3"]), "{v}");
    for r in ["old0", "old1", "old2", "old3"] {
        assert!(!dir.join("rh/runs").join(r).exists());
        assert_eq!(
            rh_err(dir, &["show", r], 2).trim(),
            format!("error: no run named `{r}`")
        );
    }
    let left = listed(dir);
    assert_eq!(left, ["fresh", "spinning"]);
    // Keep the newest one: the spinning Run is not finished, so it stays.
    let v = gc(dir, &["--keep-last", "0"]);
    assert_eq!(v["runs"], json!(["fresh"]), "{v}");
    assert_eq!(listed(dir), ["spinning"]);
    assert_eq!(config(dir, "spinning")["status"], "running");
    rh_ok(dir, &["cancel", "spinning"]);
    // No Run folder or trash is left behind, and names are free again.
    let entries: Vec<String> = std::fs::read_dir(dir.join("rh/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["spinning"], "{entries:?}");
    rh_ok(dir, &["call", "summer", "1", "1", "--run-name", "old0"]);
}

#[test]
fn gc_keeps_producers_of_current_artifacts_and_removes_what_nothing_refers_to() {
    let d = tmp();
    let dir = d.path();
    deploy(dir, "testkit");
    rh_ok(
        dir,
        &[
            "call",
            "testkit/save_art",
            "\"model\"",
            "\"v1\"",
            "--run-name",
            "train1",
        ],
    );
    rh_ok(
        dir,
        &[
            "call",
            "testkit/load_art",
            "\"model\"",
            "--run-name",
            "use1",
        ],
    );
    rh_ok(
        dir,
        &[
            "call",
            "testkit/save_art",
            "\"model\"",
            "\"v2\"",
            "--run-name",
            "train2",
        ],
    );
    rh_ok(
        dir,
        &["call", "testkit/add", "1", "2", "--run-name", "plain"],
    );
    let v = gc(dir, &["--keep-last", "0"]);
    // train2 made the current version of `model`: kept.
    assert_eq!(v["runs"], json!(["train1", "use1", "plain"]), "{v}");
    assert_eq!(v["producers_kept"], 1);
    assert_eq!(listed(dir), ["train2"]);
    let lineage = rh_ok(dir, &["lineage", "model"]);
    assert!(lineage.contains("train2"), "{lineage}");
    // v1 is no longer current, and no kept Run refers to it.
    let art: Value = serde_json::from_str(&rh_ok(dir, &["artifacts", "list", "--json"])).unwrap();
    assert_eq!(art[0]["versions"].as_array().unwrap().len(), 2, "{art}");
    let v1_blob = art[0]["versions"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    // Blobs and components younger than ten minutes stay (a deploy or save
    // may be about to name them): age them.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let age = |p: &Path| {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    };
    age(&dir.join("rh/artifacts/blobs").join(&v1_blob));
    // A component deployed once, its name since deleted, no Run of it kept.
    deploy(dir, "summer");
    rh_ok(dir, &["call", "summer", "1", "2", "--run-name", "s"]);
    rh_ok(dir, &["delete", "summer", "--kind", "function"]);
    let summer_digest = config(dir, "s")["function"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let wasm = dir
        .join("rh/functions/components")
        .join(format!("{summer_digest}.wasm"));
    age(&wasm);
    // While Run `s` is kept, its component stays.
    let v = gc(dir, &["--older-than", "1h", "--components", "--artifacts"]);
    assert_eq!(v["runs_removed"], 0, "{v}");
    assert_eq!(v["components_removed"], 0, "{v}");
    assert_eq!(v["artifact_versions_removed"], 1, "{v}");
    assert!(wasm.exists());
    assert!(!dir.join("rh/artifacts/blobs").join(&v1_blob).exists());
    let v = gc(dir, &["--keep-last", "0", "--components", "--artifacts"]);
    assert_eq!(v["runs"], json!(["s"]), "{v}");
    assert_eq!(v["artifact_versions_removed"], 0, "{v}");
    assert_eq!(v["components_removed"], 1, "{v}");
    assert!(v["other_bytes"].as_u64().unwrap() > 1000, "{v}");
    assert!(!wasm.exists());
    // The deployed testkit and the current version of `model` are untouched.
    let art: Value = serde_json::from_str(&rh_ok(dir, &["artifacts", "list", "--json"])).unwrap();
    assert_eq!(art[0]["versions"].as_array().unwrap().len(), 1, "{art}");
    rh_ok(
        dir,
        &[
            "call",
            "testkit/load_art",
            "\"model\"",
            "--run-name",
            "use2",
        ],
    );
    assert_eq!(config(dir, "use2")["status"], "completed");
    // With --include-producers the producer goes too.
    let v = gc(dir, &["--keep-last", "0", "--include-producers"]);
    assert_eq!(v["runs"], json!(["train2", "use2"]), "{v}");
}

#[test]
fn a_gc_killed_halfway_leaves_every_run_whole_or_gone_and_a_second_gc_finishes() {
    let d = tmp();
    let dir = d.path();
    deploy(dir, "summer");
    for i in 0..10 {
        rh_ok(
            dir,
            &[
                "call",
                "summer",
                "1",
                &i.to_string(),
                "--run-name",
                &format!("r{i}"),
            ],
        );
    }
    let out = std::process::Command::new(RH)
        .args(["gc", "--keep-last", "0"])
        .current_dir(dir)
        .env("RH_WASM_CRASH", "gc-removing")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the crash point was not reached");
    // Some Runs went, the others are whole; search lists exactly those.
    let left = listed(dir);
    assert!(!left.is_empty() && left.len() < 10, "{left:?}");
    for i in 0..10 {
        let r = format!("r{i}");
        let folder = dir.join("rh/runs").join(&r);
        if left.contains(&r) {
            assert_eq!(config(dir, &r)["status"], "completed");
            for f in [
                "config.json",
                "inputs.json",
                "result.json",
                "stdout",
                "stderr",
            ] {
                assert!(folder.join(f).exists(), "{r}/{f}");
            }
        } else {
            assert!(!folder.exists(), "{r} half removed");
        }
    }
    // No moved-aside folder outlives the crashed process.
    let hidden: Vec<_> = std::fs::read_dir(dir.join("rh/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
    let v = gc(dir, &["--keep-last", "0"]);
    assert_eq!(v["runs_removed"].as_u64(), Some(left.len() as u64), "{v}");
    assert!(listed(dir).is_empty());
}

#[test]
fn serve_retain_removes_old_runs_periodically() {
    let d = Daemon::start_with(&["--retain", "1s", "--retain-every", "200ms"]);
    d.deploy("summer");
    for i in 0..3 {
        d.rh_ok(&[
            "call",
            "summer",
            "1",
            &i.to_string(),
            "--cluster",
            "cpu",
            "--run-name",
            &format!("r{i}"),
        ]);
    }
    wait_until(10, "retention removed the Runs", || {
        let v = d.json("GET", "/v1/runs", &Value::Null);
        page_names(&v).is_empty()
    });
    assert!(!d.root.join("logs/r0").exists());
    // It goes on: a later Run goes once it is old enough, not before.
    d.rh_ok(&[
        "call",
        "summer",
        "2",
        "2",
        "--cluster",
        "cpu",
        "--run-name",
        "late",
    ]);
    assert!(page_names(&d.json("GET", "/v1/runs", &Value::Null)).contains(&"late".to_string()));
    wait_until(10, "retention removed the later Run", || {
        !d.root.join("logs/late").exists()
    });
}

#[test]
fn cache_clear_forgets_entries_and_keeps_the_runs() {
    let d = tmp();
    let dir = d.path();
    deploy(dir, "summer");
    deploy(dir, "testkit");
    rh_ok(
        dir,
        &["call", "summer", "1", "2", "--run-name", "a", "--cache"],
    );
    rh_ok(
        dir,
        &[
            "call",
            "testkit/add",
            "1",
            "2",
            "--run-name",
            "t",
            "--cache",
        ],
    );
    rh_ok(
        dir,
        &["call", "summer", "1", "2", "--run-name", "b", "--cache"],
    );
    assert_eq!(config(dir, "b")["cache_hit"], "a");
    let out = rh_ok(dir, &["cache", "clear", "--function", "summer"]);
    assert!(out.contains("forgot 2 cached results"), "{out}");
    rh_ok(
        dir,
        &["call", "summer", "1", "2", "--run-name", "c", "--cache"],
    );
    assert!(
        config(dir, "c").get("cache_hit").is_none(),
        "{}",
        config(dir, "c")
    );
    // The Runs stay; other functions' entries too; new entries answer.
    assert!(listed(dir).contains(&"a".to_string()));
    rh_ok(
        dir,
        &[
            "call",
            "testkit/add",
            "1",
            "2",
            "--run-name",
            "t2",
            "--cache",
        ],
    );
    assert_eq!(config(dir, "t2")["cache_hit"], "t");
    rh_ok(
        dir,
        &["call", "summer", "1", "2", "--run-name", "d", "--cache"],
    );
    assert_eq!(config(dir, "d")["cache_hit"], "c");
    // A rebuilt index forgets them too.
    rh_ok(dir, &["cache", "clear"]);
    rh_ok(dir, &["reindex"]);
    rh_ok(
        dir,
        &[
            "call",
            "testkit/add",
            "1",
            "2",
            "--run-name",
            "t3",
            "--cache",
        ],
    );
    assert!(config(dir, "t3").get("cache_hit").is_none());

    // On a daemon.
    let daemon = Daemon::start();
    daemon.deploy("summer");
    let call = |run: &str| {
        daemon.json(
            "POST",
            "/v1/calls",
            &json!({"function": "summer", "args": [2, 2], "run_name": run, "cache": true}),
        )
    };
    let hit = |run: &str| {
        daemon.json("GET", &format!("/v1/runs/{run}"), &Value::Null)["cache_hit"].clone()
    };
    call("x");
    call("y");
    assert_eq!(hit("y"), "x");
    let v = daemon.json("POST", "/v1/cache/clear", &json!({"function": "summer"}));
    assert_eq!(v["cleared"], 2, "{v}");
    call("z");
    assert!(hit("z").is_null());
    let out = daemon.rh_ok(&["cache", "clear", "cpu"]);
    assert!(out.contains("forgot 1 cached results"), "{out}");
    // gc and reindex through the CLI, on the daemon.
    let v: Value =
        serde_json::from_str(&daemon.rh_ok(&["gc", "cpu", "--keep-last", "1", "--json"])).unwrap();
    assert_eq!(v["runs"], json!(["x", "y"]), "{v}");
    let out = daemon.rh_ok(&["runs", "cpu"]);
    assert!(out.contains("z ") && !out.contains("x "), "{out}");
    assert!(daemon.rh_ok(&["reindex", "cpu"]).contains("holds 1 Runs"));
}

#[test]
fn users_search_and_gc_only_what_they_may_see_and_write() {
    let d = Daemon::start_users(&[("alice", false), ("bob", false), ("root", true)]);
    for u in ["alice", "bob"] {
        d.rh_ok(&[
            "deploy",
            guest("testkit").to_str().unwrap(),
            "--cluster",
            &format!("cpu-{u}"),
            "--name",
            &format!("k-{u}"),
        ]);
    }
    // Interleaved Runs of two users.
    for i in 0..6 {
        for u in ["alice", "bob"] {
            let (status, v) = d.http_as(
                u,
                "POST",
                "/v1/calls",
                &json!({"function": format!("k-{u}/add"), "args": [i, 1], "run_name": format!("{u}-{i}")}),
            );
            assert_eq!(status, 200, "{v}");
        }
    }
    d.rh_ok(&["share", "cpu-alice", "alice-0", "--with", "bob"]);
    // Full pages of what bob may see: his own and the one shared with him.
    let (status, v) = d.http_as("bob", "GET", "/v1/runs?limit=3", &Value::Null);
    assert_eq!(status, 200, "{v}");
    assert_eq!(page_names(&v), ["bob-5", "bob-4", "bob-3"]);
    let c = v["next_cursor"].as_str().unwrap().to_string();
    let (_, v) = d.http_as(
        "bob",
        "GET",
        &format!("/v1/runs?limit=3&cursor={c}"),
        &Value::Null,
    );
    assert_eq!(page_names(&v), ["bob-2", "bob-1", "bob-0"]);
    let c = v["next_cursor"].as_str().unwrap().to_string();
    let (_, v) = d.http_as(
        "bob",
        "GET",
        &format!("/v1/runs?limit=3&cursor={c}"),
        &Value::Null,
    );
    assert_eq!(page_names(&v), ["alice-0"]);
    assert!(v["next_cursor"].is_null());
    let (_, v) = d.http_as("bob", "GET", "/v1/runs?creator=alice", &Value::Null);
    assert_eq!(page_names(&v), ["alice-0"]);
    let (_, v) = d.http_as("root", "GET", "/v1/runs?limit=1000", &Value::Null);
    assert_eq!(page_names(&v).len(), 12);

    // bob's gc removes only his own Runs (alice-0 is shared for reading).
    let (status, v) = d.http_as("bob", "POST", "/v1/gc", &json!({"keep_last": 0}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["runs_removed"], 6, "{v}");
    assert!(
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.as_str().unwrap().starts_with("bob-")),
        "{v}"
    );
    // Artifacts, components, the whole cache and the index are for admins.
    for (path, body) in [
        ("/v1/gc", json!({"keep_last": 0, "components": true})),
        ("/v1/cache/clear", json!({})),
        ("/v1/reindex", Value::Null),
    ] {
        let (status, v) = d.http_as("bob", "POST", path, &body);
        assert_eq!(status, 403, "{path}: {v}");
    }
    // Only an administrator installs the interpreter every run-python uses.
    let bytes = std::fs::read(guest("testkit")).unwrap();
    let (status, _) = d.http(
        "POST",
        "/v1/functions?name=python",
        Some(&d.user_token("bob")),
        &bytes,
    );
    assert_eq!(status, 403);
    let (_, v) = d.http_as("alice", "GET", "/v1/runs?limit=1000", &Value::Null);
    assert_eq!(page_names(&v).len(), 6);
    let (status, v) = d.http_as("root", "POST", "/v1/gc", &json!({"keep_last": 0}));
    assert_eq!((status, v["runs_removed"].as_u64()), (200, Some(6)), "{v}");
    // The grant on a removed Run went with it: a later Run of that name is
    // not bob's to read.
    let (_, shares) = d.http_as("root", "GET", "/v1/shares", &Value::Null);
    assert!(!shares.to_string().contains("alice-0"), "{shares}");
    let (status, v) = d.http_as("root", "POST", "/v1/reindex", &Value::Null);
    assert_eq!((status, v["runs"].as_u64()), (200, Some(0)), "{v}");
}
