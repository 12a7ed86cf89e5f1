//! Shared test helpers: guests built from source once per test binary, a
//! temp dir per test, and a runner for the real `rh-wasm` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn guest_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("guests")
}

/// Every guest crate, so a test can check each is used.
pub const GUESTS: &[&str] = &[
    "summer",
    "text",
    "progress",
    "pipeline",
    "wordcount",
    "cmdkit",
    "testkit",
    "raw",
    "hello_cmd",
    "escape",
];

static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn build_guests() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // rustup does not add a missing target by itself.
    let _ = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .output();
    for manifest in ["examples/Cargo.toml", "tests/guests/Cargo.toml"] {
        let out = Command::new(&cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(repo().join(manifest))
            .env("CARGO_TARGET_DIR", guest_target())
            .output()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "building {manifest} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(guest_target().join("wasm32-wasip2").join("release"))
}

/// Path of a guest component, building all guests on first use.
pub fn guest(name: &str) -> PathBuf {
    assert!(GUESTS.contains(&name), "unknown guest {name}");
    let dir = BUILT
        .get_or_init(build_guests)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let p = dir.join(format!("{name}.wasm"));
    assert!(p.exists(), "{} missing", p.display());
    p
}

/// A temp dir for one test.
pub fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rh-test-")
        .tempdir()
        .unwrap()
}

/// Run the CLI in `dir`.
pub fn rh(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rh-wasm"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// Run the CLI and insist it succeeds; its stdout.
pub fn rh_ok(dir: &Path, args: &[&str]) -> String {
    let out = rh(dir, args);
    assert!(
        out.status.success(),
        "rh-wasm {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run the CLI and insist it fails with `code`; its stderr.
pub fn rh_err(dir: &Path, args: &[&str], code: i32) -> String {
    let out = rh(dir, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "rh-wasm {args:?}:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Deploy a guest on `local` in `dir` under its own name.
pub fn deploy(dir: &Path, name: &str) -> String {
    let p = guest(name);
    rh_ok(dir, &["deploy", p.to_str().unwrap()])
}

/// A Run folder's config.json.
pub fn config(dir: &Path, run: &str) -> serde_json::Value {
    let p = dir.join("rh/runs").join(run).join("config.json");
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

/// Read a file of a Run.
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

/// Poll `cond` every few ms until it holds or `secs` pass.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// An embedded runtime on `dir/rh`.
pub fn runtime(dir: &Path) -> rh_runtime::Runtime {
    rh_runtime::Runtime::open(dir.join("rh")).unwrap()
}

/// A Tokio runtime for embedded tests.
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
