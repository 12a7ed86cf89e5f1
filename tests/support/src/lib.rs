//! What the integration tests of `rh-runtime` (`runtime/tests/embed`) and
//! of `rh-wasm` (`tests/all`, and its benchmark suite) share: the guests
//! built from source ([`guest`]), a temp dir per test ([`tmp`]), Run folders read back
//! ([`config`], [`run_file`], [`snapshot`]), waiting on a condition rather
//! than for a while ([`wait_until`]), a process's memory ([`rss_kib`]) and
//! the checks on a finished process ([`succeeded`], [`failed`]).
//!
//! Nothing here knows the `rh-wasm` binary (its path is only known to that
//! crate's own tests, through `CARGO_BIN_EXE_rh-wasm`) or depends on
//! `rh-runtime`, so both crates can use it as a dev-dependency.

#![deny(missing_docs)]

mod guests;

pub use guests::{GUESTS, guest, guest_dir, repo, target_dir, wasm};

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// A temp dir for one test.
pub fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rh-test-")
        .tempdir()
        .unwrap()
}

/// The config.json of the Run `run` of the local cluster in `dir`
/// (`dir/rh/runs/RUN`).
pub fn config(dir: &Path, run: &str) -> serde_json::Value {
    let p = dir.join("rh/runs").join(run).join("config.json");
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

/// A file of the Run `run` of the local cluster in `dir`.
pub fn run_file(dir: &Path, run: &str, file: &str) -> String {
    std::fs::read_to_string(dir.join("rh/runs").join(run).join(file)).unwrap()
}

/// Every file under `dir` with its bytes: to show nothing changed.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(p: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                // Host lock files belong to processes, not to stored state.
                if path.components().any(|c| c.as_os_str() == "hosts") {
                    continue;
                }
                // The index of Runs is compared by what it holds: SQLite
                // rewrites its files' bytes as it likes (WAL, checkpoints).
                let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if file.starts_with("index.sqlite-") || file == "index.lock" {
                    continue;
                }
                if file == "index.sqlite" {
                    out.push((path.clone(), index_rows(&path).into_bytes()));
                    continue;
                }
                if path.is_dir() {
                    out.push((path.clone(), Vec::new()));
                    walk(&path, out);
                } else {
                    out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}

/// What an index of Runs holds, as text: its Runs, tags and edges, once
/// it has settled (rows are written just after a Run's files, by a writer
/// of their own: two reads 30 ms apart agree).
pub fn index_rows(path: &Path) -> String {
    let mut last = index_dump(path);
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(30));
        let now = index_dump(path);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn index_dump(path: &Path) -> String {
    let c = rusqlite::Connection::open(path).expect("open the index of Runs");
    let mut out = String::new();
    for sql in [
        "SELECT name, status, run_type, start_us, end_us, function, fn_full, digest, \
         cache_key, creator, parent, error_kind, what FROM runs ORDER BY name",
        "SELECT r.name, t.key, t.value FROM tags t JOIN runs r ON r.id = t.run ORDER BY 1, 2",
        "SELECT r.name, e.dir, e.pos, e.name, e.digest FROM edges e JOIN runs r ON r.id = e.run \
         ORDER BY 1, 2, 3",
    ] {
        let mut st = c.prepare(sql).expect("query the index of Runs");
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("read the index of Runs");
        for row in rows {
            out.push_str(&row.expect("a row").join("|"));
            out.push('\n');
        }
    }
    out
}

/// Poll `cond` every few ms until it holds; fail naming `what` once `secs`
/// have passed.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A Tokio runtime for tests that drive async code.
pub fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// A field of `/proc/PID/status` in KiB: `VmRSS` (now) or `VmHWM` (peak).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A process's resident memory, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// Insist the process `what` succeeded; its stdout.
pub fn succeeded(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Insist the process `what` exited with `code`; its stderr.
pub fn failed(out: Output, code: i32, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}
