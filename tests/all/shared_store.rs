//! The shared store's trust model, attacked. Anyone who can write the
//! bucket can compute a cache key and plant an entry there; only entries
//! signed with the team's key, and no bigger than the caller could have
//! made, are taken, and the local copy of one lasts only as long as the
//! hit. Also: what a plain pull refuses before it makes anything.

use crate::util::*;
use rh_runtime::{Manifest, TeamKey};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Write an object with the bucket's credentials and nothing else: no
/// team key.
fn plant(s3: &S3, key: &str, bytes: &[u8]) {
    s3.put_vec(key, bytes.to_vec());
}

/// The manifest of `entry` (`team/cache/<key>/<run>`, or any pushed Run).
fn manifest(s3: &S3, entry: &str) -> Manifest {
    serde_json::from_slice(&s3.get(&format!("{entry}/manifest.json"))).unwrap()
}

/// Plant `bytes` as a blob of `entry` and make `m` name it as `path`.
fn swap_file(s3: &S3, entry: &str, m: &mut Manifest, path: &str, bytes: &[u8]) {
    let digest = sha256_hex(bytes);
    plant(s3, &format!("{entry}/blobs/{digest}"), bytes);
    let f = m.files.iter_mut().find(|f| f.path == path).unwrap();
    f.size = bytes.len() as u64;
    f.sha256 = digest;
}

fn names_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `summer x x` on `b`: computed there, not answered from the store, and
/// nothing left under `<root>/shared`.
fn computed(b: &Daemon, x: u32, run_name: &str) {
    let x = x.to_string();
    let out = b.rh_ok(&[
        "get-or-call",
        "summer",
        &x,
        &x,
        "--cluster",
        "cpu",
        "--run-name",
        run_name,
    ]);
    let sum = 2 * x.parse::<u32>().unwrap();
    let head = &out[..out.len().min(200)];
    assert!(
        out == format!("adding {x} and {x}\n{sum}\n"),
        "{} bytes: {head}",
        out.len()
    );
    let c = b.config(run_name);
    assert_eq!(c["cache_hit"], serde_json::Value::Null, "{c}");
    assert!(c["fuel_consumed"].as_u64().unwrap() > 0, "executed: {c}");
    assert_eq!(names_in(&b.root.join("shared")), Vec::<String>::new());
}

#[test]
fn entries_not_signed_with_the_team_key_are_misses() {
    let s3 = S3::start();
    let a = shared_daemon(&s3);
    let b = shared_daemon(&s3);
    let intruder = TeamKey::new(b"not the team's key, but 32 bytes".to_vec()).unwrap();
    for (x, case) in [(1, "forged result"), (2, "unsigned"), (3, "another key")] {
        // A publishes the call; the entry is then replaced by a planted one
        // at the same cache key, under the same Run name.
        let src = format!("src-{x}");
        a.rh_ok(&[
            "call",
            "summer",
            &x.to_string(),
            &x.to_string(),
            "--cluster",
            "cpu",
            "--run-name",
            &src,
        ]);
        let entry = published(&s3, &src);
        let mut m = manifest(&s3, &entry);
        let body = match case {
            "forged result" => {
                swap_file(&s3, &entry, &mut m, "result.json", b"999");
                m.to_json(None)
            }
            "unsigned" => m.to_json(None),
            _ => m.to_json(Some(&intruder)),
        }
        .unwrap();
        plant(&s3, &format!("{entry}/manifest.json"), &body);
        computed(&b, x, &format!("b-{x}"));
    }
    // A Run signed by another cluster of the team is still a hit, and its
    // copy is gone once the hit is recorded.
    a.rh_ok(&[
        "call",
        "summer",
        "6",
        "6",
        "--cluster",
        "cpu",
        "--run-name",
        "src-6",
    ]);
    let entry = published(&s3, "src-6");
    let out = b.rh_ok(&[
        "get-or-call",
        "summer",
        "6",
        "6",
        "--cluster",
        "cpu",
        "--run-name",
        "b-6",
    ]);
    assert_eq!(out, "adding 6 and 6\n12\n");
    let c = b.config("b-6");
    assert_eq!(c["cache_hit"], format!("s3://runs/{entry}"), "{c}");
    assert_eq!(c["fuel_consumed"], 0, "{c}");
    assert_eq!(names_in(&b.root.join("shared")), Vec::<String>::new());
}

#[test]
fn an_entry_over_the_callers_output_cap_is_a_miss_never_downloaded() {
    let s3 = S3::start();
    let a = shared_daemon(&s3);
    let b = shared_daemon(&s3);
    let team = TeamKey::new(TEAM_KEY.to_vec()).unwrap();
    a.rh_ok(&[
        "call",
        "summer",
        "5",
        "5",
        "--cluster",
        "cpu",
        "--run-name",
        "src",
    ]);
    let entry = published(&s3, "src");
    // Signed with the team's key, but its stdout is 65 MiB: more than a
    // call may write under the 64 MiB output cap.
    let mut m = manifest(&s3, &entry);
    swap_file(&s3, &entry, &mut m, "stdout", &vec![b'x'; 65 << 20]);
    plant(
        &s3,
        &format!("{entry}/manifest.json"),
        &m.to_json(Some(&team)).unwrap(),
    );
    let pid = b.child.id();
    let before = status_kib(pid, "VmHWM");
    computed(&b, 5, "b-5");
    let grew = status_kib(pid, "VmHWM") - before;
    assert!(grew < 16 << 10, "the daemon's peak RSS grew by {grew} KiB");
}

/// `rh-wasm serve ARGS` on a fresh root, which must exit at once: its
/// exit code and stderr.
fn serve_refused(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut c = std::process::Command::new(RH);
    let mut child = c
        .args(["serve", "--addr", "127.0.0.1:0", "--root", "root"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve {args:?} started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn a_shared_store_without_a_good_team_key_is_refused_at_start() {
    let d = tmp();
    let (code, err) = serve_refused(d.path(), &["--shared-store", "s3://runs/team"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--shared-store-key") && err.contains("/dev/urandom"),
        "{err}"
    );
    std::fs::write(d.path().join("short.key"), "secret\n").unwrap();
    let (code, err) = serve_refused(
        d.path(),
        &[
            "--shared-store",
            "s3://runs/team",
            "--shared-store-key",
            "short.key",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("short.key") && err.contains("7 bytes"),
        "{err}"
    );
    assert!(!d.path().join("root").exists(), "nothing was made");
    // The local cluster, likewise.
    let mut c = cli(d.path(), None, &["call", "summer", "1", "2"]);
    c.env("RH_WASM_SHARED_STORE", "s3://runs/team");
    let err = failed(run(c), 2, "local call with a shared store and no key");
    assert!(err.contains("RH_WASM_SHARED_STORE_KEY"), "{err}");
    assert!(!d.path().join("rh").exists(), "nothing was made");
}

#[test]
fn copies_left_by_dead_processes_are_removed_when_a_runtime_opens() {
    use rustix::fs::{FlockOperation, flock};
    let d = tmp();
    deploy(d.path(), "summer");
    let root = d.path().join("rh");
    let shared = root.join("shared");
    // A dead host's copy, the one-folder-per-key layout of older versions,
    // and the copy of a host that is alive (its lock held, here).
    for dir in [
        "4000000000-1-0/src".to_string(),
        format!("{}/old-run", "ab".repeat(32)),
        "777-888-0/src".to_string(),
    ] {
        std::fs::create_dir_all(shared.join(&dir)).unwrap();
        std::fs::write(shared.join(dir).join("stdout"), "x").unwrap();
    }
    let lock = std::fs::File::create(root.join("hosts/777-888.lock")).unwrap();
    flock(&lock, FlockOperation::NonBlockingLockExclusive).unwrap();
    rh_ok(d.path(), &["call", "summer", "1", "2"]);
    assert_eq!(names_in(&shared), ["777-888-0"]);
    // Once that host is gone too, so is its copy.
    drop(lock);
    rh_ok(d.path(), &["call", "summer", "1", "2"]);
    assert_eq!(names_in(&shared), Vec::<String>::new());
}

#[test]
fn a_pull_refuses_what_is_not_a_run_before_making_anything() {
    let s3 = S3::start();
    let d = tmp();
    deploy(d.path(), "summer");
    rh_ok(d.path(), &["call", "summer", "2", "3", "--run-name", "r7"]);
    let push = [
        "push",
        "local",
        "r7",
        "s3://runs/y",
        "--endpoint",
        &s3.endpoint,
    ];
    succeeded(run(cli(d.path(), None, &push)), "push");
    let genuine = manifest(&s3, "y/r7");
    let refused = |says: &str| {
        let there = tmp();
        let pull = [
            "pull",
            "s3://runs/y/r7",
            "--to",
            "r7",
            "--endpoint",
            &s3.endpoint,
        ];
        let err = failed(run(cli(there.path(), None, &pull)), 3, says);
        assert!(err.contains(says), "{err}");
        assert_eq!(names_in(there.path()), Vec::<String>::new());
        err
    };
    let put_manifest = |m: &Manifest| plant(&s3, "y/r7/manifest.json", &m.to_json(None).unwrap());
    // No config.json: not a Run.
    let mut m = genuine.clone();
    m.files.retain(|f| f.path != "config.json");
    put_manifest(&m);
    refused("has no config.json");
    // A file listed twice.
    let mut m = genuine.clone();
    let stdout = m.files.iter().find(|f| f.path == "stdout").unwrap().clone();
    m.files.push(stdout);
    put_manifest(&m);
    refused("lists `stdout` twice");
    // A blob larger than announced: refused at its first byte too many,
    // not once all 16 MiB are in.
    put_manifest(&genuine);
    let result = genuine
        .files
        .iter()
        .find(|f| f.path == "result.json")
        .unwrap();
    plant(
        &s3,
        &format!("y/r7/blobs/{}", result.sha256),
        &vec![b'5'; 16 << 20],
    );
    let err = refused("holds more than the 1 bytes the manifest says");
    assert!(!err.contains(&(16u64 << 20).to_string()), "{err}");
}
