//! The history of Runs: search with filters and pages (local and on a
//! daemon), the index of Runs repaired after a crash, rebuilt from nothing
//! or from a corrupt file, and every bad filter refused.

use crate::util::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;

/// `runs --json` on `local` in `dir`, with `args`.
fn search(dir: &Path, args: &[&str]) -> Value {
    let out = rh_ok(dir, &[&["runs", "--json"], args].concat());
    serde_json::from_str(&out).unwrap()
}

fn call_tagged(
    dir: &Path,
    f: &str,
    args: &[&str],
    run: &str,
    tags: &[&str],
) -> std::process::Output {
    let mut a = vec!["call", f];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--run-name", run]);
    for t in tags {
        a.extend_from_slice(&["--tag", t]);
    }
    rh(dir, &a)
}

#[test]
fn search_filters_combine_newest_first_and_pages_hold_every_run_once() {
    let d = tmp();
    let dir = d.path();
    deploy(dir, "summer");
    deploy(dir, "testkit");
    for i in 0..6 {
        let team = if i % 2 == 0 { "team=a" } else { "team=b" };
        let out = call_tagged(
            dir,
            "summer",
            &["1", &i.to_string()],
            &format!("s{i}"),
            &[team, "exp=7"],
        );
        assert!(out.status.success());
    }
    let out = call_tagged(dir, "testkit/fail", &["\"no\""], "f0", &["team=a"]);
    assert_eq!(out.status.code(), Some(1));
    rh_ok(
        dir,
        &[
            "scope",
            "outer",
            "--",
            RH,
            "call",
            "summer",
            "2",
            "2",
            "--run-name",
            "inner",
        ],
    );

    // Newest first, everything.
    let all = page_names(&search(dir, &[]));
    assert_eq!(all[..3], ["inner", "outer", "f0"], "{all:?}");
    assert_eq!(all.len(), 9, "{all:?}");
    // Filters, combined with AND.
    assert_eq!(page_names(&search(dir, &["--status", "error"])), ["f0"]);
    assert_eq!(
        page_names(&search(dir, &["--function", "testkit/fail"])),
        ["f0"]
    );
    assert_eq!(page_names(&search(dir, &["--function", "testkit"])), ["f0"]);
    assert_eq!(
        page_names(&search(dir, &["--tag", "team=a", "--status", "completed"])),
        ["s4", "s2", "s0"]
    );
    assert_eq!(
        page_names(&search(dir, &["--tag", "team=b", "--tag", "exp=7"])),
        ["s5", "s3", "s1"]
    );
    assert!(page_names(&search(dir, &["--tag", "team=b", "--tag", "exp=8"])).is_empty());
    assert_eq!(page_names(&search(dir, &["--parent", "outer"])), ["inner"]);
    let me = std::env::var("USER").unwrap_or_default();
    if !me.is_empty() {
        assert_eq!(
            page_names(&search(dir, &["--creator", &me, "--function", "summer"])).len(),
            7
        );
    }
    assert!(page_names(&search(dir, &["--creator", "nobody-at-all"])).is_empty());
    assert_eq!(page_names(&search(dir, &["--since", "1h"])).len(), 9);
    assert!(page_names(&search(dir, &["--until", "1h"])).is_empty());
    assert!(page_names(&search(dir, &["--since", "2999-01-01T00:00:00Z"])).is_empty());

    // Pages of 4: every Run once, in order, the last page without a cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = vec!["--limit", "4"];
        if let Some(c) = &cursor {
            args.extend_from_slice(&["--cursor", c]);
        }
        let page = search(dir, &args);
        seen.extend(page_names(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, all);
    // The table says where the next page starts.
    let table = rh_ok(dir, &["runs", "--limit", "2"]);
    assert!(table.contains("next page: --cursor "), "{table}");
}

#[test]
fn every_bad_filter_is_a_clear_error_locally_and_a_400_on_a_daemon() {
    let d = tmp();
    let dir = d.path();
    for (args, needle) in [
        (&["--status", "done"][..], "unknown status `done`"),
        (&["--since", "soon"][..], "neither a duration"),
        (&["--until", "5x"][..], "neither a duration"),
        (&["--cursor", "abc"][..], "not a cursor"),
        (&["--limit", "0"][..], "limit 0 is out of range"),
        (&["--limit", "1001"][..], "limit 1001 is out of range"),
        (&["--tag", "novalue"][..], "not KEY=VALUE"),
        (&["--tag", "bad key=1"][..], "tag"),
    ] {
        let err = rh_err(dir, &[&["runs"], args].concat(), 2);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let daemon = Daemon::start();
    for q in [
        "status=done",
        "since=soon",
        "until=5x",
        "cursor=abc",
        "limit=0",
        "limit=1001",
        "limit=x",
        "tag=novalue",
        "color=red",
        "since=%ZZ",
    ] {
        let (status, body) =
            daemon.http("GET", &format!("/v1/runs?{q}"), Some(&daemon.token()), b"");
        assert_eq!(status, 400, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.contains('\n')),
            "{v}"
        );
    }
    let err = daemon.rh_err(&["runs", "cpu", "--status", "done"], 2);
    assert!(err.contains("unknown status"), "{err}");
}

/// Calls on a daemon over HTTP.
fn http_call(d: &Daemon, run: &str, tags: Value) -> Value {
    d.json(
        "POST",
        "/v1/calls",
        &json!({"function": "summer", "args": [1, 2], "run_name": run, "tags": tags}),
    )
}

#[test]
fn a_daemon_pages_every_run_exactly_once_while_runs_are_added() {
    let d = Daemon::start();
    d.deploy("summer");
    for i in 0..60 {
        http_call(&d, &format!("old-{i:03}"), json!({"batch": "old"}));
    }
    // Runs keep arriving while a client pages through.
    let adding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (addr, token) = (d.addr.clone(), d.token());
    let flag = adding.clone();
    let writer = std::thread::spawn(move || {
        let mut n = 0;
        while flag.load(std::sync::atomic::Ordering::Relaxed) {
            let body =
                json!({"function": "summer", "args": [1, 1], "run_name": format!("new-{n:04}")});
            http_post(&addr, &token, "/v1/calls", &body.to_string());
            n += 1;
        }
        n
    });
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/v1/runs?limit=7{cursor}");
        let v = d.json("GET", &path, &Value::Null);
        let page = page_names(&v);
        assert!(page.len() <= 7);
        seen.extend(page);
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    adding.store(false, std::sync::atomic::Ordering::Relaxed);
    let added = writer.join().unwrap();
    assert!(added > 0, "nothing was added while paging");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a Run listed twice: {seen:?}");
    let old: Vec<&String> = seen.iter().filter(|n| n.starts_with("old-")).collect();
    assert_eq!(old.len(), 60, "every Run that existed is listed once");
    // Newest first.
    let expect: Vec<String> = (0..60).rev().map(|i| format!("old-{i:03}")).collect();
    assert_eq!(old.into_iter().cloned().collect::<Vec<_>>(), expect);
    // A tag query over HTTP (tag=k%3Dv), through the CLI too.
    let v = d.json("GET", "/v1/runs?tag=batch%3Dold&limit=1000", &Value::Null);
    assert_eq!(page_names(&v).len(), 60);
    let out = d.rh_ok(&[
        "runs",
        "cpu",
        "--tag",
        "batch=old",
        "--limit",
        "5",
        "--json",
    ]);
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        page_names(&page),
        ["old-059", "old-058", "old-057", "old-056", "old-055"]
    );
    assert!(page["next_cursor"].is_string());
}

/// A POST on a daemon; the answer is not needed.
fn http_post(addr: &str, token: &str, path: &str, body: &str) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
}

#[test]
fn a_crash_between_a_runs_folder_and_its_row_is_repaired_when_the_cluster_opens() {
    let d = tmp();
    let dir = d.path();
    deploy(dir, "summer");
    rh_ok(dir, &["call", "summer", "1", "2", "--run-name", "before"]);
    // The process dies after the Run's folder is whole and before the
    // index commits its end.
    let out = std::process::Command::new(RH)
        .args([
            "call",
            "summer",
            "2",
            "2",
            "--run-name",
            "lost",
            "--tag",
            "k=v",
        ])
        .current_dir(dir)
        .env("RH_WASM_CRASH", "index-commit")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the crash point was not reached");
    assert_eq!(config(dir, "lost")["status"], "completed");
    // The next command that opens the cluster repairs the row.
    let page = search(dir, &["--status", "completed"]);
    assert_eq!(page_names(&page), ["lost", "before"]);
    assert_eq!(page_names(&search(dir, &["--tag", "k=v"])), ["lost"]);
    assert!(page_names(&search(dir, &["--status", "running"])).is_empty());
}

#[test]
fn a_missing_or_corrupt_index_is_rebuilt_from_the_folders_and_reindex_rebuilds_it() {
    let d = tmp();
    let dir = d.path();
    deploy(dir, "summer");
    deploy(dir, "testkit");
    for i in 0..3 {
        rh_ok(
            dir,
            &[
                "call",
                "summer",
                "1",
                &i.to_string(),
                "--run-name",
                &format!("r{i}"),
                "--tag",
                "t=x",
            ],
        );
    }
    rh_ok(
        dir,
        &[
            "call",
            "testkit/save_art",
            "\"model\"",
            "\"w\"",
            "--run-name",
            "train",
        ],
    );
    rh_ok(
        dir,
        &["call", "testkit/load_art", "\"model\"", "--run-name", "use"],
    );
    let lineage_before = rh_ok(dir, &["lineage", "model", "--json"]);
    let index = dir.join("rh/index.sqlite");
    let rows_before = index_rows(&index);
    assert!(rows_before.contains("\"train\""), "{rows_before}");

    // From nothing.
    for f in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
        let _ = std::fs::remove_file(dir.join("rh").join(f));
    }
    let out = rh(dir, &["runs", "--json"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rebuilt it from the Run folders"),
        "no log line"
    );
    assert_eq!(index_rows(&index), rows_before);
    assert_eq!(rh_ok(dir, &["lineage", "model", "--json"]), lineage_before);

    // From a corrupt file.
    std::fs::write(&index, b"this is not a database, it is a crash").unwrap();
    for f in ["index.sqlite-wal", "index.sqlite-shm"] {
        let _ = std::fs::remove_file(dir.join("rh").join(f));
    }
    let out = rh(dir, &["runs", "--tag", "t=x", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page_names(&page), ["r2", "r1", "r0"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("rebuilt it from the Run folders"));
    assert_eq!(index_rows(&index), rows_before);

    // On request: a Run folder copied in by hand is found.
    let src = dir.join("rh/runs/r0");
    let dst = dir.join("rh/runs/copied");
    std::fs::create_dir(&dst).unwrap();
    for f in [
        "config.json",
        "inputs.json",
        "result.json",
        "stdout",
        "stderr",
    ] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let cfg = std::fs::read_to_string(dst.join("config.json"))
        .unwrap()
        .replace("\"r0\"", "\"copied\"");
    std::fs::write(dst.join("config.json"), cfg).unwrap();
    assert!(!page_names(&search(dir, &["--limit", "1000"])).contains(&"copied".to_string()));
    assert!(rh_ok(dir, &["reindex"]).contains("holds 6 Runs"));
    assert!(page_names(&search(dir, &["--limit", "1000"])).contains(&"copied".to_string()));
}
