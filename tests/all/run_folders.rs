//! The host never follows a symlink a guest left in a Run folder: a command
//! guest (`cmdkit race`) swaps folders in its scratch dir with symlinks to
//! the host's `/`, `/proc/self` and the folder of every Run, while clients
//! ask for files through them many thousands of times, during the Run and
//! after it (when the test keeps swapping them itself). Nothing from
//! outside the Run folder is ever returned, listed, pulled, pushed or
//! copied.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What must never come back: a line of the host's `/etc/passwd`, the
/// daemon's AWS secret from its `/proc/self/environ`, and the result of
/// another Run (`victim`, 123456789 + 1).
const SECRETS: [&str; 3] = ["root:x:0:0", "test-secret", "123456790"];

/// Paths through each raced name (and through the spare names they are
/// swapped with); when the name is a real folder, each holds a decoy.
const PATHS: [&str; 9] = [
    "scratch/d/etc/passwd",
    "scratch/d/proc/self/environ",
    "scratch/p/environ",
    "scratch/r/victim/result.json",
    "scratch/d.link/etc/passwd",
    "scratch/p.link/environ",
    "scratch/r.link/victim/result.json",
    "scratch/d.abs/environ",
    "scratch/p.abs/cmdline",
];

fn leak(bytes: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(bytes);
    SECRETS.into_iter().find(|s| text.contains(s))
}

/// Keep swapping the raced names in `scratch` (as the guest did) until
/// dropped.
struct Swapper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Swapper {
    fn start(scratch: PathBuf) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                for name in ["d", "p", "r"] {
                    let _ = std::fs::rename(scratch.join(name), scratch.join("hold"));
                    let _ =
                        std::fs::rename(scratch.join(format!("{name}.link")), scratch.join(name));
                    let _ =
                        std::fs::rename(scratch.join("hold"), scratch.join(format!("{name}.link")));
                }
                n += 1;
            }
            n
        });
        Swapper {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Every entry under `dir`, never following a symlink: (relative path,
/// is a symlink, bytes of a regular file).
fn entries(dir: &Path) -> Vec<(String, bool, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let bytes = if meta.is_file() {
                    std::fs::read(&path).unwrap()
                } else {
                    Vec::new()
                };
                out.push((rel, meta.file_type().is_symlink(), bytes));
            }
        }
    }
    out
}

/// A copied Run folder holds no symlink and nothing from outside; the
/// raced names hold only decoys.
fn assert_clean_copy(dir: &Path) {
    let found = entries(dir);
    assert!(found.iter().any(|(p, ..)| p == "config.json"), "{found:?}");
    for (path, link, bytes) in &found {
        assert!(!link, "{path} is a symlink in the copy");
        assert_eq!(leak(bytes), None, "{path} holds a host secret");
        if path.starts_with("scratch/") && path != "scratch/hold" {
            assert_eq!(bytes, b"decoy\n", "{path}");
        }
    }
}

/// A pull or push made while a folder changes under it either succeeded
/// with a clean copy at `to`, or failed and left nothing there.
fn try_pull(out: &std::process::Output, to: &Path) -> bool {
    assert_eq!(leak(&out.stdout), None);
    assert_eq!(leak(&out.stderr), None);
    if out.status.success() {
        assert_clean_copy(to);
        true
    } else {
        assert!(!to.exists(), "a failed pull left {}", to.display());
        false
    }
}

fn cmdkit() -> String {
    guest("cmdkit").to_str().unwrap().to_string()
}

#[test]
fn files_of_a_racing_command_run_never_lead_out_of_its_folder() {
    let d = Daemon::start();
    d.deploy("summer");
    d.rh_ok(&[
        "call",
        "summer",
        "123456789",
        "1",
        "--cluster",
        "cpu",
        "--run-name",
        "victim",
    ]);
    let k = cmdkit();
    let caller = std::process::Command::new(RH)
        .args([
            "exec",
            "--cluster",
            "cpu",
            "--run-name",
            "racer",
            "--",
            &k,
            "race",
            "3000",
        ])
        .current_dir(d.client())
        .env("RH_WASM_CONFIG", d.client().join("config.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = d.root.join("logs/racer/stdout");
    wait_until(30, "the race to start", || {
        std::fs::read_to_string(&stdout)
            .unwrap_or_default()
            .contains("racing")
    });
    let token = d.token();
    // While it runs: every file request and the listing are 409.
    let mut during = 0;
    while d.config("racer")["status"] == "running" {
        for p in PATHS {
            let (status, body) = d.http(
                "GET",
                &format!("/v1/runs/racer/files/{p}"),
                Some(&token),
                b"",
            );
            assert_eq!(leak(body.as_bytes()), None, "{p} while running: {body}");
            if status != 409 {
                // Only the end of the Run may come between the two.
                assert_ne!(
                    d.config("racer")["status"],
                    "running",
                    "{p}: {status} {body}"
                );
            }
            during += 1;
        }
        let (status, body) = d.http("GET", "/v1/runs/racer/files", Some(&token), b"");
        assert!(
            status == 409 || d.config("racer")["status"] != "running",
            "{status} {body}"
        );
    }
    let out = caller.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("swapped"), "{said}");
    assert!(during > 100, "only {during} requests while the Run raced");

    // Once it has ended, a pull through the daemon copies only what is
    // inside: the names left as symlinks are not copied.
    let to = d.client().join("pulled");
    d.rh_ok(&["pull", "cpu", "racer", "--to", to.to_str().unwrap()]);
    assert_clean_copy(&to);

    // After it: the test goes on swapping, and asks again and again.
    let scratch = d.root.join("logs/racer/scratch");
    let swapper = Swapper::start(scratch.clone());
    let (mut served, mut after) = (0, 0);
    let until = Instant::now() + Duration::from_secs(60);
    while after < 3000 {
        assert!(Instant::now() < until, "only {after} requests in a minute");
        for p in PATHS {
            let (status, body) = d.http(
                "GET",
                &format!("/v1/runs/racer/files/{p}"),
                Some(&token),
                b"",
            );
            assert_eq!(leak(body.as_bytes()), None, "{p}: {body}");
            match status {
                200 => {
                    assert_eq!(body, "decoy\n", "{p}");
                    served += 1;
                }
                404 => {}
                s => panic!("{p}: {s} {body}"),
            }
            after += 1;
        }
    }
    // The listing (made once the Run had ended, and remembered) names only
    // regular files inside, each a decoy's size. The local test below
    // lists again and again while the names change.
    let list = d.json("GET", "/v1/runs/racer/files", &serde_json::Value::Null);
    for f in list["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        if path.starts_with("scratch/") {
            assert_eq!(f["size"], 6, "{path} is not a decoy: {f}");
        }
    }
    // Pulls through the daemon while the names keep changing: a file that
    // turned into a symlink fails the pull, which leaves nothing.
    for i in 0..5 {
        let to = d.client().join(format!("pulled-{i}"));
        try_pull(
            &d.rh(&["pull", "cpu", "racer", "--to", to.to_str().unwrap()]),
            &to,
        );
    }
    let swaps = swapper.stop();
    assert!(swaps > 100, "only {swaps} swaps");
    assert!(served > 0, "no decoy was ever served");
}

#[test]
fn pull_push_and_the_cache_never_copy_through_a_symlink() {
    let d = tmp();
    deploy(d.path(), "summer");
    rh_ok(
        d.path(),
        &["call", "summer", "123456789", "1", "--run-name", "victim"],
    );
    let k = cmdkit();
    rh_ok(
        d.path(),
        &["exec", "--run-name", "racer", "--", &k, "race", "300"],
    );
    let scratch = d.path().join("rh/runs/racer/scratch");
    let s3 = S3::start();
    let cli = |args: &[&str]| {
        std::process::Command::new(RH)
            .args(args)
            .current_dir(d.path())
            .env("AWS_ACCESS_KEY_ID", "test-key")
            .env("AWS_SECRET_ACCESS_KEY", "test-secret")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap()
    };
    // A local pull, and a push to S3 pulled back, copy only what is inside.
    let push_and_back = |i: usize| {
        let url = format!("s3://runs/race{i}");
        let back = d.path().join(format!("back-{i}"));
        let pushed = cli(&["push", "local", "racer", &url, "--endpoint", &s3.endpoint]);
        assert_eq!(leak(&pushed.stderr), None);
        if !pushed.status.success() {
            return false;
        }
        let back_str = back.to_str().unwrap().to_string();
        let out = cli(&[
            "pull",
            &format!("{url}/racer"),
            "--to",
            &back_str,
            "--endpoint",
            &s3.endpoint,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean_copy(&back);
        true
    };
    let to = d.path().join("pulled");
    assert!(try_pull(
        &cli(&["pull", "local", "racer", "--to", to.to_str().unwrap()]),
        &to
    ));
    assert!(push_and_back(0));
    // The same, many times over, while the names keep changing.
    let swapper = Swapper::start(scratch);
    for i in 0..20 {
        let to = d.path().join(format!("pulled-{i}"));
        try_pull(
            &cli(&["pull", "local", "racer", "--to", to.to_str().unwrap()]),
            &to,
        );
    }
    for i in 1..6 {
        push_and_back(i);
    }
    assert!(swapper.stop() > 10);

    // The result cache copies a source Run's output: a source whose stdout
    // became a symlink to a host file is a miss, and the call computes.
    rh_ok(
        d.path(),
        &["call", "summer", "20", "22", "--run-name", "src", "--cache"],
    );
    let src = d.path().join("rh/runs/src");
    std::fs::remove_file(src.join("stdout")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("stdout")).unwrap();
    let out = rh_ok(
        d.path(),
        &[
            "call",
            "summer",
            "20",
            "22",
            "--run-name",
            "again",
            "--cache",
        ],
    );
    assert!(out.ends_with("42\n"), "{out}");
    assert_eq!(leak(out.as_bytes()), None, "{out}");
    let again = config(d.path(), "again");
    assert!(again["cache_hit"].is_null(), "{again}");
    assert_eq!(leak(run_file(d.path(), "again", "stdout").as_bytes()), None);
}
