//! `--only history`: the cost of history questions on a root holding many
//! Runs (`--history-runs N`, default 1,000,000).
//!
//! The root is filled directly: each Run's folder with its `config.json`
//! (what search reads) written by two threads, then a daemon started on it
//! rebuilds the missing index from the folders (that time is a figure too).
//! The Runs are of ten functions, 2 % `error`, tagged `team` (20 values)
//! and `batch`, and one in a thousand pairs saves and loads an artifact
//! version, for lineage. Then, over HTTP on that daemon: the newest page,
//! a filtered page, a tag page, lineage of a Run, a `get-or-call` hit and
//! recorded calls, each beside the same on a daemon with an empty root;
//! daemon start; the index writer's CPU per recorded call; then 20,000
//! real Runs: the inodes and bytes each takes, `gc` of half of them alone
//! (Runs/s), then of the other half with recorded calls made meanwhile.

use super::*;
use rh_runtime::{FunctionRef, RunConfig, RunError, RunStatus, RunType};
use std::collections::BTreeMap;

/// Functions the filled Runs are of (Run i is of `f{i % 10}`, in `error`
/// when `i % 100` is 0 or 1: so `f0` and `f1` have errors, 1 % each).
const FUNCTIONS: usize = 10;
/// Real Runs made for `gc` and for the size of a Run.
const REAL: usize = 20_000;

fn start_time(i: usize, n: usize) -> String {
    // Spread over the last 30 days, oldest first.
    let span = 30 * 86_400_000_000u64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let at = now - span + span / n as u64 * i as u64;
    rh_runtime::format_when(std::time::UNIX_EPOCH + Duration::from_micros(at))
}

fn filled(i: usize, n: usize) -> RunConfig {
    let f = format!("f{}", i % FUNCTIONS);
    let status = match i % 100 {
        0 | 1 => RunStatus::Error,
        2 => RunStatus::Cancelled,
        _ => RunStatus::Completed,
    };
    let mut tags = BTreeMap::new();
    tags.insert("team".to_string(), format!("{}", i % 20));
    tags.insert("batch".to_string(), format!("{}", i / 1000));
    let art = |k: usize| rh_runtime::ArtifactRef {
        name: format!("model-{k}"),
        digest: format!("sha256:{k:064x}"),
    };
    let (up, down) = match i % 1000 {
        10 => (vec![], vec![art(i / 1000)]),
        11 => (vec![art(i / 1000)], vec![]),
        _ => (vec![], vec![]),
    };
    let start = start_time(i, n);
    RunConfig {
        name: format!("h{i:07}"),
        status,
        run_type: RunType::Function,
        start_time: Some(start.clone()),
        end_time: Some(start),
        fn_name: Some(f.clone()),
        function: Some(FunctionRef {
            name: f,
            digest: format!("sha256:{:064x}", i % FUNCTIONS),
        }),
        input_digest: Some(format!("sha256:{i:064x}")),
        cmds: vec![],
        upstream_artifacts: up,
        downstream_artifacts: down,
        error: (status == RunStatus::Error).then(|| RunError {
            kind: "failed".into(),
            message: "bench".into(),
        }),
        fuel_consumed: Some(12_345),
        limits: None,
        parent_run: None,
        cluster: "bench".into(),
        creator: None,
        tags,
        cache_hit: None,
        host: None,
        attempts: None,
    }
}

/// Write `n` Run folders with their records under `runs`, two threads.
pub(super) fn fill(runs: &Path, n: usize) {
    std::fs::create_dir_all(runs).unwrap();
    std::thread::scope(|s| {
        for t in 0..2 {
            s.spawn(move || {
                for i in (t..n).step_by(2) {
                    let c = filled(i, n);
                    let dir = runs.join(&c.name);
                    std::fs::create_dir(&dir).unwrap();
                    std::fs::write(
                        dir.join("config.json"),
                        serde_json::to_vec_pretty(&c).unwrap(),
                    )
                    .unwrap();
                }
            });
        }
    });
}

/// `n` GETs of `path`, timed.
async fn gets(
    s: &mut Sender,
    addr: &str,
    path: &str,
    n: usize,
    check: impl Fn(&Value),
) -> Vec<Duration> {
    let mut v = Vec::new();
    for i in 0..n + 5 {
        let t = Instant::now();
        let body = request(s, addr, "GET", path, Bytes::new()).await;
        let l = t.elapsed();
        check(&body);
        if i >= 5 {
            v.push(l);
        }
    }
    v
}

/// CPU time of a daemon's threads of one name (the scheduler's own count,
/// in nanoseconds: clock ticks are too coarse for one thread).
fn thread_cpu(pid: u32, name: &str) -> Duration {
    let mut ns = 0u64;
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(ns)
}

fn count_tree(dir: &Path) -> (u64, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let (mut inodes, mut bytes, mut disk) = (1, 0, 0);
    if let Ok(m) = std::fs::metadata(dir) {
        disk += m.blocks() * 512;
    }
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        if m.is_dir() {
            let (i, b, d) = count_tree(&e.path());
            inodes += i;
            bytes += b;
            disk += d;
        } else {
            inodes += 1;
            bytes += m.len();
            disk += m.blocks() * 512;
        }
    }
    (inodes, bytes, disk)
}

async fn deploy(s: &mut Sender, addr: &str, guests: &Path, file: &str, name: &str) {
    let bytes = std::fs::read(guests.join(format!("{file}.wasm"))).unwrap();
    request(
        s,
        addr,
        "POST",
        &format!("/v1/functions?name={name}"),
        Bytes::from(bytes),
    )
    .await;
}

pub fn history_figures(
    tk: &tokio::runtime::Runtime,
    work: &Path,
    guests: &Path,
    rt: &Runtime,
    n: usize,
    calls: usize,
    rows: &mut Vec<Row>,
) {
    let root = work.join("history");
    let runs = root.join("logs");
    eprintln!("history: writing {n} Run folders ...");
    let t = Instant::now();
    fill(&runs, n);
    let filled = t.elapsed();
    rows.push(Row {
        figure: format!("history: write {n} Run records (fill, 2 threads)"),
        value: Some((filled.as_secs_f64(), "s")),
        samples: 1,
        target: "reported".into(),
        ..Row::default()
    });
    eprintln!("history: daemon start, rebuilding the index from the folders ...");
    let (d, rebuilt) = Daemon::start(&root);
    rows.push(Row {
        figure: format!("history: daemon start, index rebuilt from {n} folders"),
        value: Some((rebuilt.as_secs_f64(), "s")),
        samples: 1,
        target: "reported".into(),
        ..Row::default()
    });
    let index_bytes = std::fs::metadata(root.join("index.sqlite"))
        .map(|m| m.len())
        .unwrap_or(0);
    d.stop();
    let mut starts = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        if let Some(d) = last.take() {
            Daemon::stop(d);
        }
        let (d, ready) = Daemon::start(&root);
        starts.push(ready);
        last = Some(d);
    }
    let d = last.unwrap();
    rows.push(Row::latency(
        &format!("history: daemon start, {n} Runs"),
        &starts,
        "<= 1 s",
        Some(Duration::from_secs(1)),
    ));
    let (empty, _) = Daemon::start(&work.join("history-empty"));
    let q = (calls / 10).max(100);
    tk.block_on(async {
        let addr = d.addr.clone();
        let mut s = connect(&addr).await;
        let full = |v: &Value| assert_eq!(v["runs"].as_array().map(Vec::len), Some(50), "{v}");
        let lat = gets(&mut s, &addr, "/v1/runs?limit=50", q, full).await;
        rows.push(Row::latency(
            "history: newest page of 50, HTTP",
            &lat,
            "<= 20 ms",
            Some(Duration::from_millis(20)),
        ));
        let first = request(&mut s, &addr, "GET", "/v1/runs?limit=50", Bytes::new()).await;
        let cursor = first["next_cursor"].as_str().unwrap().to_string();
        let lat = gets(&mut s, &addr, &format!("/v1/runs?limit=50&cursor={cursor}"), q, full).await;
        rows.push(Row::latency("history: second page (cursor), HTTP", &lat, "reported", None));
        // f1's errors: 1 % of the Runs.
        let lat = gets(&mut s, &addr, "/v1/runs?status=error&function=f1&limit=50", q, |v| {
            full(v);
            assert!(
                v["runs"].as_array().unwrap().iter().all(|r| r["status"] == "error" && r["fn_name"] == "f1"),
                "{v}"
            )
        })
        .await;
        rows.push(Row::latency(
            "history: filtered page (status=error, function=f1)",
            &lat,
            "<= 50 ms",
            Some(Duration::from_millis(50)),
        ));
        let lat = gets(&mut s, &addr, "/v1/runs?tag=team%3D7&limit=50", q, full).await;
        rows.push(Row::latency(
            "history: tag page (team=7)",
            &lat,
            "<= 50 ms",
            Some(Duration::from_millis(50)),
        ));
        let consumer = format!("h{:07}", (n / 2) / 1000 * 1000 + 11);
        let lat = gets(&mut s, &addr, &format!("/v1/lineage/{consumer}"), q, |v| {
            assert_eq!(v["upstream"][0]["upstream"][0]["kind"], "run", "{v}")
        })
        .await;
        rows.push(Row::latency(
            "history: lineage of a Run",
            &lat,
            "<= 20 ms",
            Some(Duration::from_millis(20)),
        ));

        // Calls, get-or-call hits: the full root beside the empty one.
        let eaddr = empty.addr.clone();
        let mut e = connect(&eaddr).await;
        for (s, addr) in [(&mut s, &addr), (&mut e, &eaddr)] {
            deploy(s, addr, guests, "summer", "summer").await;
            deploy(s, addr, guests, "summer", "gca").await;
            deploy(s, addr, guests, "summer", "gcb").await;
            post(s, addr, "/v1/calls", &json!({"function": "summer", "args": [1, 2], "run_name": "goc"})).await;
        }
        let call = json!({"function": "summer", "args": [1, 2]});
        let goc = json!({"function": "summer", "args": [1, 2], "run_name": "goc", "mode": "get_or_call"});
        let (mut full_c, mut empty_c, mut bare, mut full_g, mut empty_g) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let cpu0 = (d.cpu_time(), thread_cpu(d.child.id(), "rh-index"));
        for i in 0..calls + 50 {
            let t = Instant::now();
            rt.bare_call("summer", &json!([1, 2])).await.unwrap();
            let b = t.elapsed();
            let t = Instant::now();
            let v = post(&mut s, &addr, "/v1/calls", &call).await;
            let f = t.elapsed();
            assert_eq!(v["result"], 3);
            let t = Instant::now();
            post(&mut e, &eaddr, "/v1/calls", &call).await;
            let m = t.elapsed();
            if i >= 50 {
                bare.push(b);
                full_c.push(f);
                empty_c.push(m);
            }
        }
        let cpu1 = (d.cpu_time(), thread_cpu(d.child.id(), "rh-index"));
        for i in 0..q + 5 {
            let t = Instant::now();
            let v = post(&mut s, &addr, "/v1/calls", &goc).await;
            let f = t.elapsed();
            assert_eq!(v["result"], 3);
            let t = Instant::now();
            post(&mut e, &eaddr, "/v1/calls", &goc).await;
            if i >= 5 {
                full_g.push(f);
                empty_g.push(t.elapsed());
            }
        }
        let bare_p50 = pct(&bare, 0.5);
        let ratio = pct(&full_c, 0.5).as_secs_f64() / pct(&empty_c, 0.5).as_secs_f64();
        let mut r = Row::latency(
            &format!("history: recorded call, {n} Runs held"),
            &full_c,
            "<= 1.1x empty root",
            None,
        );
        r.bare_p50 = Some(bare_p50);
        r.met = Some(ratio <= 1.1);
        rows.push(r);
        let mut r = Row::latency("history: recorded call, empty root", &empty_c, "reference", None);
        r.bare_p50 = Some(bare_p50);
        rows.push(r);
        rows.push(Row {
            figure: "history: recorded call, full root / empty root (p50)".into(),
            value: Some((ratio, "x")),
            samples: full_c.len(),
            target: "<= 1.1".into(),
            met: Some(ratio <= 1.1),
            ..Row::default()
        });
        let per_call = |d: Duration| d.as_secs_f64() * 1e6 / (calls + 50) as f64;
        let (daemon_cpu, index_cpu) = (per_call(cpu1.0 - cpu0.0), per_call(cpu1.1 - cpu0.1));
        rows.push(Row {
            figure: format!("history: index writer CPU per recorded call ({daemon_cpu:.0} µs all)"),
            value: Some((index_cpu, "µs")),
            samples: calls + 50,
            target: "reported".into(),
            ..Row::default()
        });
        let share = index_cpu / daemon_cpu * 100.0;
        rows.push(Row {
            figure: "history: index's share of a recorded call's daemon CPU".into(),
            value: Some((share, "%")),
            samples: calls + 50,
            target: "<= 10 %".into(),
            met: Some(share <= 10.0),
            ..Row::default()
        });
        rows.push(Row::latency("history: get-or-call hit, full root", &full_g, "reported", None));
        rows.push(Row::latency("history: get-or-call hit, empty root", &empty_g, "reference", None));

        // Real Runs: their size, then gc of them while calls go on.
        eprintln!("history: {REAL} real Runs, then gc of them ...");
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let addr = addr.clone();
                tokio::spawn(async move {
                    let mut s = connect(&addr).await;
                    for i in (c..REAL).step_by(8) {
                        let f = if i % 2 == 0 { "gca" } else { "gcb" };
                        let body = json!({"function": f, "args": [1, 2], "run_name": format!("{f}-{i:05}")});
                        post(&mut s, &addr, "/v1/calls", &body).await;
                    }
                })
            })
            .collect();
        for c in clients {
            c.await.unwrap();
        }
        let (mut inodes, mut bytes, mut disk) = (0, 0, 0);
        for i in 0..1000 {
            let (a, b, c) = count_tree(&runs.join(format!("gca-{:05}", 2 * i)));
            inodes += a;
            bytes += b;
            disk += c;
        }
        rows.push(Row {
            figure: "history: inodes per function Run (folder and files)".into(),
            value: Some((inodes as f64 / 1000.0, "inodes")),
            samples: 1000,
            target: "<= 6".into(),
            met: Some(inodes <= 6000),
            ..Row::default()
        });
        rows.push(Row {
            figure: format!("history: bytes per function Run (files; {} on disk)", disk / 1000),
            value: Some((bytes as f64 / 1000.0, "B")),
            samples: 1000,
            target: "reported".into(),
            ..Row::default()
        });
        rows.push(Row {
            figure: format!("history: index bytes per Run ({} MiB for {n})", index_bytes >> 20),
            value: Some((index_bytes as f64 / n as f64, "B")),
            samples: 1,
            target: "reported".into(),
            ..Row::default()
        });
        // gc alone: half of the real Runs.
        let t = Instant::now();
        let v = post(&mut s, &addr, "/v1/gc", &json!({"keep_last": 0, "function": "gca"})).await;
        let took = t.elapsed();
        assert_eq!(v["runs_removed"].as_u64(), Some(REAL as u64 / 2), "{v}");
        let rate = (REAL / 2) as f64 / took.as_secs_f64();
        rows.push(Row {
            figure: format!("history: gc of {} real Runs", REAL / 2),
            rate: Some(rate),
            samples: 1,
            target: ">= 2000/s".into(),
            met: Some(rate >= 2000.0),
            ..Row::default()
        });
        // Recorded calls before and while the other half is removed.
        let mut before = Vec::new();
        for _ in 0..q {
            let t = Instant::now();
            post(&mut s, &addr, "/v1/calls", &call).await;
            before.push(t.elapsed());
        }
        let gc_addr = addr.clone();
        let gc = tokio::spawn(async move {
            let mut s = connect(&gc_addr).await;
            let t = Instant::now();
            let v = post(&mut s, &gc_addr, "/v1/gc", &json!({"keep_last": 0, "function": "gcb"})).await;
            (t.elapsed(), v)
        });
        let mut during = Vec::new();
        while !gc.is_finished() {
            let t = Instant::now();
            post(&mut s, &addr, "/v1/calls", &call).await;
            during.push(t.elapsed());
        }
        let (took, report) = gc.await.unwrap();
        assert_eq!(report["runs_removed"].as_u64(), Some(REAL as u64 / 2), "{report}");
        rows.push(Row {
            figure: format!("history: gc of {} real Runs, calls going on", REAL / 2),
            rate: Some((REAL / 2) as f64 / took.as_secs_f64()),
            samples: 1,
            target: "reported".into(),
            ..Row::default()
        });
        rows.push(Row::latency("history: recorded call before gc", &before, "reference", None));
        if !during.is_empty() {
            let ratio = pct(&during, 0.5).as_secs_f64() / pct(&before, 0.5).as_secs_f64();
            rows.push(Row::latency(
                &format!("history: recorded call while gc runs (x{ratio:.2} before)"),
                &during,
                "reported",
                None,
            ));
        }
    });
    empty.stop();
    d.stop();
}
