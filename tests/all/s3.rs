//! Moving Runs through object storage, against a real S3-compatible server
//! ([`crate::util::S3`]): push, pull, the shared store between daemons.

use crate::util::*;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// Every file of a folder, relative, with its bytes.
fn tree(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    snapshot(dir)
        .into_iter()
        .map(|(p, b)| (p.strip_prefix(dir).unwrap().to_path_buf(), b))
        .collect()
}

#[test]
fn a_daemon_run_goes_to_s3_and_comes_back_byte_identical() {
    let s3 = S3::start();
    let d = Daemon::start();
    d.deploy("testkit");
    let cfg = d.client().join("config.toml");
    d.rh_ok(&[
        "call",
        "testkit/echo_marker",
        "\"m-7\"",
        "20",
        "--cluster",
        "cpu",
        "--run-name",
        "shared-run",
    ]);
    let out = succeeded(
        run(cli(
            d.client(),
            Some(&cfg),
            &[
                "push",
                "cpu",
                "shared-run",
                "s3://runs/team/a",
                "--endpoint",
                &s3.endpoint,
            ],
        )),
        "push",
    );
    assert!(
        out.contains("pushed shared-run to s3://runs/team/a/shared-run"),
        "{out}"
    );
    assert!(
        s3.keys("team/a/shared-run/")
            .contains(&"team/a/shared-run/manifest.json".to_string())
    );
    // Pulled anywhere else: a fresh folder, byte for byte the daemon's.
    let elsewhere = tmp();
    let out = succeeded(
        run(cli(
            elsewhere.path(),
            None,
            &[
                "pull",
                "s3://runs/team/a/shared-run",
                "--to",
                "got/shared-run",
                "--endpoint",
                &s3.endpoint,
            ],
        )),
        "pull",
    );
    assert!(out.contains("all digests checked"), "{out}");
    let original = tree(&d.root.join("logs/shared-run"));
    assert!(original.len() >= 5, "{original:?}");
    assert_eq!(tree(&elsewhere.path().join("got/shared-run")), original);
    // The pulled folder is a Run like any other.
    let run = rh_runtime::Run::open(elsewhere.path().join("got/shared-run")).unwrap();
    assert_eq!(run.result().unwrap(), serde_json::json!("m-7"));
    // A second pull to the same place is refused and changes nothing.
    let err = failed(
        run_pull_again(&s3, elsewhere.path()),
        2,
        "pull onto an existing folder",
    );
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(tree(&elsewhere.path().join("got/shared-run")), original);
}

fn run_pull_again(s3: &S3, dir: &Path) -> Output {
    run(cli(
        dir,
        None,
        &[
            "pull",
            "s3://runs/team/a/shared-run",
            "--to",
            "got/shared-run",
            "--endpoint",
            &s3.endpoint,
        ],
    ))
}

#[test]
fn a_running_run_is_not_pushed() {
    let s3 = S3::start();
    let d = Daemon::start();
    d.deploy("testkit");
    d.rh_ok(&[
        "run",
        "testkit/sleep_ms",
        "20000",
        "--cluster",
        "cpu",
        "--run-name",
        "busy",
    ]);
    let cfg = d.client().join("config.toml");
    let out = run(cli(
        d.client(),
        Some(&cfg),
        &[
            "push",
            "cpu",
            "busy",
            "s3://runs/p",
            "--endpoint",
            &s3.endpoint,
        ],
    ));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("still running"), "{err}");
    assert!(s3.keys("p/").is_empty(), "nothing was written");
    d.rh_ok(&["cancel", "cpu", "busy"]);
}

#[test]
fn an_interrupted_push_is_never_pulled_half_and_resumes() {
    let s3 = S3::start();
    let d = tmp();
    deploy(d.path(), "testkit");
    // 40 MiB of stdout: a multipart upload that takes a moment.
    rh_ok(
        d.path(),
        &[
            "call",
            "testkit/flood",
            "41943040",
            "--run-name",
            "big",
            "--json",
        ],
    );
    let mut push = cli(
        d.path(),
        None,
        &[
            "push",
            "local",
            "big",
            "s3://runs/r",
            "--endpoint",
            &s3.endpoint,
        ],
    );
    let mut push = push
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as its first file is up.
    let deadline = Instant::now() + Duration::from_secs(60);
    while s3.keys("r/big/blobs/").is_empty() {
        assert!(Instant::now() < deadline, "the push sent nothing");
        std::thread::sleep(Duration::from_millis(2));
    }
    push.kill().unwrap();
    push.wait().unwrap();
    assert!(
        !s3.keys("r/big/")
            .contains(&"r/big/manifest.json".to_string()),
        "killed before its manifest: {:?}",
        s3.keys("r/big/")
    );
    // A pull finds no Run, and makes nothing.
    let there = tmp();
    let args = [
        "pull",
        "s3://runs/r/big",
        "--to",
        "big",
        "--endpoint",
        &s3.endpoint,
    ];
    let err = failed(
        run(cli(there.path(), None, &args)),
        2,
        "pull of a half push",
    );
    assert!(err.contains("did not finish"), "{err}");
    assert_eq!(std::fs::read_dir(there.path()).unwrap().count(), 0);
    // Pushing again sends what is missing, and the Run arrives whole.
    let out = succeeded(
        run(cli(
            d.path(),
            None,
            &[
                "push",
                "local",
                "big",
                "s3://runs/r",
                "--endpoint",
                &s3.endpoint,
            ],
        )),
        "push again",
    );
    let already: usize = out
        .split("; ")
        .find_map(|p| p.strip_suffix(" already there)\n"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(already >= 1, "{out}");
    succeeded(run(cli(there.path(), None, &args)), "pull");
    assert_eq!(
        tree(&there.path().join("big")),
        tree(&d.path().join("rh/runs/big"))
    );
    assert_eq!(
        std::fs::metadata(there.path().join("big/stdout"))
            .unwrap()
            .len(),
        41943040
    );
}

#[test]
fn a_damaged_or_missing_blob_is_refused_and_leaves_nothing() {
    let s3 = S3::start();
    let d = tmp();
    deploy(d.path(), "summer");
    rh_ok(d.path(), &["call", "summer", "2", "3", "--run-name", "r5"]);
    succeeded(
        run(cli(
            d.path(),
            None,
            &[
                "push",
                "local",
                "r5",
                "s3://runs/x",
                "--endpoint",
                &s3.endpoint,
            ],
        )),
        "push",
    );
    let result_digest =
        sha256_hex(&std::fs::read(d.path().join("rh/runs/r5/result.json")).unwrap());
    let key = format!("x/r5/blobs/{result_digest}");
    let args = [
        "pull",
        "s3://runs/x/r5",
        "--to",
        "r5",
        "--endpoint",
        &s3.endpoint,
    ];
    // Same length, other bytes: caught by the digest.
    s3.put(&key, b"6");
    let there = tmp();
    let err = failed(
        run(cli(there.path(), None, &args)),
        3,
        "pull of a damaged Run",
    );
    assert!(
        err.contains("result.json") && err.contains("damaged"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(there.path()).unwrap().count(), 0);
    // Gone altogether: the push is incomplete.
    s3.delete(&key);
    let err = failed(
        run(cli(there.path(), None, &args)),
        3,
        "pull with a blob missing",
    );
    assert!(
        err.contains("missing") && err.contains("incomplete"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(there.path()).unwrap().count(), 0);
}

#[test]
fn bad_s3_requests_get_clear_errors() {
    let d = tmp();
    deploy(d.path(), "summer");
    rh_ok(d.path(), &["call", "summer", "2", "3", "--run-name", "r6"]);
    let cases: &[(&[&str], &str)] = &[
        (&["push", "local", "r6", "http://b/x"], "not an S3 address"),
        (&["push", "local", "r6", "s3://"], "names no bucket"),
        (&["push", "local", "r6", "s3://b/../x"], "not allowed"),
        (&["push", "local", "no-such-run", "s3://b/x"], "no-such-run"),
        (&["pull", "s3://b"], "names no Run"),
        (&["pull", "s3://b/x/bad name"], "bad name"),
        (&["pull", "local"], "needs a Run"),
    ];
    for (args, says) in cases {
        let out = run(cli(d.path(), None, args));
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn a_run_made_on_one_daemon_answers_another_through_the_shared_store() {
    let s3 = S3::start();
    let a = shared_daemon(&s3);
    let b = shared_daemon(&s3);
    a.rh_ok(&[
        "call",
        "summer",
        "2",
        "3",
        "--cluster",
        "cpu",
        "--run-name",
        "made-on-a",
    ]);
    let source = published(&s3, "made-on-a");
    // B has never run it: its get-or-call is answered from A's Run.
    let out = b.rh_ok(&[
        "get-or-call",
        "summer",
        "2",
        "3",
        "--cluster",
        "cpu",
        "--run-name",
        "asked-on-b",
    ]);
    assert_eq!(out, "adding 2 and 3\n5\n");
    let c = b.config("asked-on-b");
    assert_eq!(c["status"], "completed");
    assert_eq!(c["cache_hit"], format!("s3://runs/{source}"), "{c}");
    assert_eq!(c["fuel_consumed"], 0, "not executed: {c}");
    assert_eq!(
        std::fs::read_to_string(b.root.join("logs/asked-on-b/stdout")).unwrap(),
        "adding 2 and 3\n"
    );
    // The copy it was answered from is gone once the hit is recorded.
    assert_eq!(walk_names(&b.root.join("shared")), Vec::<String>::new());
    // call --cache finds it too, under a new name.
    let v: serde_json::Value = serde_json::from_str(&b.rh_ok(&[
        "call",
        "summer",
        "2",
        "3",
        "--cluster",
        "cpu",
        "--cache",
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["result"], 5, "{v}");
    // Other inputs are not a hit.
    b.rh_ok(&[
        "call",
        "summer",
        "2",
        "4",
        "--cluster",
        "cpu",
        "--cache",
        "--run-name",
        "other",
    ]);
    assert_eq!(b.config("other")["cache_hit"], serde_json::Value::Null);
    assert!(b.config("other")["fuel_consumed"].as_u64().unwrap() > 0);
}

#[test]
fn a_damaged_shared_entry_is_a_miss_and_never_a_wrong_result() {
    let s3 = S3::start();
    let a = shared_daemon(&s3);
    let b = shared_daemon(&s3);
    a.rh_ok(&[
        "call",
        "summer",
        "4",
        "4",
        "--cluster",
        "cpu",
        "--run-name",
        "src",
    ]);
    let source = published(&s3, "src");
    // Its result, "8", becomes "9" in the store.
    let digest = rh_runtime::digest_of(b"8");
    s3.put(
        &format!("{source}/blobs/{}", digest.trim_start_matches("sha256:")),
        b"9",
    );
    let out = b.rh_ok(&[
        "get-or-call",
        "summer",
        "4",
        "4",
        "--cluster",
        "cpu",
        "--run-name",
        "b-run",
    ]);
    assert!(out.ends_with("8\n"), "{out}");
    let c = b.config("b-run");
    assert_eq!(c["cache_hit"], serde_json::Value::Null, "{c}");
    assert!(c["fuel_consumed"].as_u64().unwrap() > 0, "executed: {c}");
    // Nothing half-copied was left behind by the failed attempt.
    let shared = b.root.join("shared");
    if shared.exists() {
        for e in walk_names(&shared) {
            assert!(!e.contains(".pull-"), "{e}");
        }
    }
}

#[test]
fn concurrent_publishers_of_one_result_leave_a_sound_entry() {
    let s3 = S3::start();
    let a = shared_daemon(&s3);
    let b = shared_daemon(&s3);
    std::thread::scope(|s| {
        for d in [&a, &b] {
            s.spawn(move || {
                d.rh_ok(&[
                    "call",
                    "summer",
                    "7",
                    "8",
                    "--cluster",
                    "cpu",
                    "--run-name",
                    "same",
                ])
            });
        }
    });
    let source = published(&s3, "same");
    // Whichever manifest won names blobs that are all there and whole.
    let fresh = tmp();
    succeeded(
        run(cli(
            fresh.path(),
            None,
            &[
                "pull",
                &format!("s3://runs/{source}"),
                "--to",
                "same",
                "--endpoint",
                &s3.endpoint,
            ],
        )),
        "pull of the shared entry",
    );
    let r = rh_runtime::Run::open(fresh.path().join("same")).unwrap();
    assert_eq!(r.result().unwrap(), 15);
    // And a third cluster is answered from it.
    let c = shared_daemon(&s3);
    let out = c.rh_ok(&[
        "get-or-call",
        "summer",
        "7",
        "8",
        "--cluster",
        "cpu",
        "--run-name",
        "third",
    ]);
    assert_eq!(out, "adding 7 and 8\n15\n");
    assert_eq!(
        c.config("third")["cache_hit"],
        format!("s3://runs/{source}")
    );
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.file_name().to_string_lossy().to_string());
            if e.path().is_dir() {
                out.extend(walk_names(&e.path()));
            }
        }
    }
    out
}

#[test]
fn the_local_cluster_shares_through_the_store_too() {
    let s3 = S3::start();
    let d = tmp();
    deploy(d.path(), "summer");
    // `local` takes its shared store from RH_WASM_SHARED_STORE, and
    // publishes before the command exits.
    let mut c = cli(
        d.path(),
        None,
        &["call", "summer", "5", "6", "--run-name", "laptop-run"],
    );
    c.env("RH_WASM_SHARED_STORE", "s3://runs/team")
        .env("RH_WASM_SHARED_STORE_KEY", s3.team_key())
        .env("AWS_ENDPOINT_URL", &s3.endpoint);
    assert_eq!(succeeded(run(c), "local call"), "adding 5 and 6\n11\n");
    let source = published(&s3, "laptop-run");
    let b = shared_daemon(&s3);
    let out = b.rh_ok(&[
        "get-or-call",
        "summer",
        "5",
        "6",
        "--cluster",
        "cpu",
        "--run-name",
        "on-b",
    ]);
    assert_eq!(out, "adding 5 and 6\n11\n");
    assert_eq!(b.config("on-b")["cache_hit"], format!("s3://runs/{source}"));
}
