//! Moving Runs through object storage, against a real S3-compatible server:
//! moto's standalone server (`python3 -m moto.server`, from PyPI), started
//! on a free loopback port per test. `make test` (which `.ci/run` runs)
//! installs it. moto because it installs in seconds from PyPI with no build
//! step, keeps objects in memory (nothing left on disk after a test), and
//! implements what is used here: signed PUT/GET/HEAD/DELETE, listing and
//! multipart uploads.

use crate::daemon::Daemon;
use crate::util::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct S3 {
    child: Child,
    pub endpoint: String,
    port: u16,
    /// Holds `team.key`, the key of the team whose store this is.
    keys: tempfile::TempDir,
}

/// The secret of the team sharing the store in these tests.
pub const TEAM_KEY: &[u8; 32] = b"the team's secret, 32 bytes long";

impl S3 {
    /// Start a server with one bucket, `runs`.
    pub fn start() -> S3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting python3 -m moto.server ({e}): install it with \
                     `python3 -m pip install 'moto[server]'` (make test does)"
                )
            });
        let s3 = S3 {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            keys: tmp(),
        };
        std::fs::write(s3.team_key(), TEAM_KEY).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while s3.raw("PUT", "/runs", b"").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "moto did not come up: `python3 -m pip install 'moto[server]'` (make test does)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s3
    }

    /// The file holding the team's key.
    pub fn team_key(&self) -> std::path::PathBuf {
        self.keys.path().join("team.key")
    }

    /// An unsigned request (moto accepts them); status and body.
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, Vec::new());
        };
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        if s.write_all(head.as_bytes()).is_err() || s.write_all(body).is_err() {
            return (0, Vec::new());
        }
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let text = String::from_utf8_lossy(&resp);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let at = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .unwrap_or(resp.len());
        (status, resp[at..].to_vec())
    }

    /// A client signing as the CLI does, to change what is stored.
    fn client(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("runs")
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test-key")
            .with_secret_access_key("test-secret")
            .build()
            .unwrap()
    }

    /// Replace an object's bytes.
    pub fn put(&self, key: &str, bytes: &'static [u8]) {
        use object_store::ObjectStore;
        let c = self.client();
        tokio().block_on(c.put(&key.into(), bytes.into())).unwrap();
    }

    /// Write an object, as anyone with write access to the bucket can.
    pub fn put_vec(&self, key: &str, bytes: Vec<u8>) {
        use object_store::ObjectStore;
        let c = self.client();
        tokio().block_on(c.put(&key.into(), bytes.into())).unwrap();
    }

    /// An object's bytes.
    pub fn get(&self, key: &str) -> Vec<u8> {
        use object_store::ObjectStore;
        let c = self.client();
        let rt = tokio();
        rt.block_on(async { c.get(&key.into()).await.unwrap().bytes().await.unwrap() })
            .to_vec()
    }

    /// Delete an object.
    pub fn delete(&self, key: &str) {
        use object_store::ObjectStore;
        let c = self.client();
        tokio().block_on(c.delete(&key.into())).unwrap();
    }

    /// The keys under `prefix` in the bucket.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let (status, body) = self.raw("GET", &format!("/runs?list-type=2&prefix={prefix}"), b"");
        assert_eq!(status, 200);
        String::from_utf8_lossy(&body)
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CLI with credentials in the environment, as a user would set them.
pub fn cli(dir: &Path, config: Option<&Path>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rh-wasm"));
    c.args(args)
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "test-key")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("RUST_BACKTRACE");
    if let Some(cfg) = config {
        c.env("RH_WASM_CONFIG", cfg);
    }
    c
}

pub fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn fails(out: Output, code: i32, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

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
    let out = ok(
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
    let out = ok(
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
    let err = fails(
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
    let err = fails(
        run(cli(there.path(), None, &args)),
        2,
        "pull of a half push",
    );
    assert!(err.contains("did not finish"), "{err}");
    assert_eq!(std::fs::read_dir(there.path()).unwrap().count(), 0);
    // Pushing again sends what is missing, and the Run arrives whole.
    let out = ok(
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
    ok(run(cli(there.path(), None, &args)), "pull");
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
    ok(
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
        hex_sha256(&std::fs::read(d.path().join("rh/runs/r5/result.json")).unwrap());
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
    let err = fails(
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
    let err = fails(
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

fn hex_sha256(bytes: &[u8]) -> String {
    rh_runtime::digest_of(bytes)
        .trim_start_matches("sha256:")
        .to_string()
}

pub fn shared_daemon(s3: &S3) -> Daemon {
    let d = Daemon::start_with(&[
        "--shared-store",
        "s3://runs/team",
        "--endpoint",
        &s3.endpoint,
        "--shared-store-key",
        s3.team_key().to_str().unwrap(),
    ]);
    d.deploy("summer");
    d
}

/// Wait until a Run named `run` has been published.
pub fn published(s3: &S3, run: &str) -> String {
    let suffix = format!("/{run}/manifest.json");
    let mut found = None;
    wait_until(30, &format!("{run} to be published"), || {
        found = s3
            .keys("team/cache/")
            .into_iter()
            .find(|k| k.ends_with(&suffix));
        found.is_some()
    });
    let key = found.unwrap();
    key.strip_suffix("/manifest.json").unwrap().to_string()
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
    ok(
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
    assert_eq!(ok(run(c), "local call"), "adding 5 and 6\n11\n");
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
