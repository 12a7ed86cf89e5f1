//! Disk space: a command filling its scratch folder is stopped at the Run's
//! scratch limit, and no Run starts while the disk is nearly full.

use crate::util::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The disk space a folder's files take (allocated bytes).
fn allocated(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += m.blocks() * 512;
        if m.is_dir() {
            total += allocated(&e.path());
        }
    }
    total
}

/// The bytes free on the filesystem of `dir`, as the runtime counts them.
fn free_bytes(dir: &Path) -> u64 {
    let st = rustix::fs::statvfs(dir).unwrap();
    st.f_bavail * st.f_frsize
}

/// The names in a Run folder's parent, leaving out the host's own files.
fn run_folders(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "hosts")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

const MIB: u64 = 1 << 20;

/// `exec` on the daemon's cluster `cpu`; the exit code, stdout and stderr.
fn exec_on(d: &Daemon, run: &str, flags: &[&str], cmd: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["exec", "--cluster", "cpu", "--run-name", run];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend_from_slice(cmd);
    let out = d.rh(&args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_command_filling_its_scratch_folder_ends_disk_limit_and_the_daemon_serves_on() {
    // The cluster's limit is the default and the most a Run may ask for.
    let d = Daemon::start_with(&["--scratch-limit", "48MiB"]);
    d.deploy("cmdkit");
    // 200 MiB into a 16 MiB quota, as fast as the guest can write.
    let (code, _, err) = exec_on(
        &d,
        "fills",
        &["--scratch-limit", "16MiB"],
        &[
            "cmdkit", "fill", "big.bin", "200", "--", "cmdkit", "say", "after",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("took more than 16MiB of scratch space"),
        "{err}"
    );
    let c = d.config("fills");
    assert_eq!(c["status"], "error", "{c}");
    assert_eq!(c["error"]["kind"], "disk_limit", "{c}");
    assert_eq!(c["limits"]["scratch"], 16 * MIB, "{c}");
    // Stopped at the limit, well before the 200 MiB it meant to write, and
    // the next command never ran.
    let used = allocated(&d.root.join("logs/fills/scratch"));
    eprintln!("stopped at {:.1} MiB of scratch", used as f64 / MIB as f64);
    assert!(used > 16 * MIB, "{used}");
    assert!(used < 96 * MIB, "overshot to {used} bytes");
    assert!(c["cmds"][0]["exit_code"].is_null(), "{c}");
    assert!(c["cmds"][1]["exit_code"].is_null(), "{c}");
    assert!(!d.root.join("logs/fills/result.json").exists());
    let stdout = std::fs::read_to_string(d.root.join("logs/fills/stdout")).unwrap();
    assert!(!stdout.contains("after"), "{stdout}");

    // Without --scratch-limit the cluster's limit holds.
    let (code, _, err) = exec_on(
        &d,
        "fills-default",
        &[],
        &["cmdkit", "fill", "b.bin", "200"],
    );
    assert_eq!(code, Some(1), "{err}");
    let c = d.config("fills-default");
    assert_eq!(c["error"]["kind"], "disk_limit", "{c}");
    assert_eq!(c["limits"]["scratch"], 48 * MIB, "{c}");

    // A short burst ends disk_limit too, whenever the watch last looked:
    // the folder is measured again as each command ends.
    let (code, _, err) = exec_on(
        &d,
        "burst",
        &["--scratch-limit", "1MiB"],
        &["cmdkit", "fill", "b.bin", "3"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(d.config("burst")["error"]["kind"], "disk_limit");

    // Asking for more than the cluster allows is refused, and nothing made.
    let before = run_folders(&d.root.join("logs"));
    let (code, _, err) = exec_on(
        &d,
        "greedy",
        &["--scratch-limit", "1GiB"],
        &["cmdkit", "say", "hi"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("over the cluster's limit of 48MiB"), "{err}");
    assert_eq!(run_folders(&d.root.join("logs")), before);

    // The daemon serves on, and a command under its limit completes.
    let (status, _) = d.http("GET", "/v1/health", Some(&d.token()), b"");
    assert_eq!(status, 200);
    let (code, out, err) = exec_on(
        &d,
        "fits",
        &["--scratch-limit", "16MiB"],
        &["cmdkit", "fill", "small.bin", "8"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "wrote 8 MiB to small.bin\n[0]\n");
    let small = d.root.join("logs/fits/scratch/small.bin");
    assert_eq!(std::fs::metadata(small).unwrap().len(), 8 * MIB);
}

#[test]
fn a_local_command_over_its_scratch_limit_ends_disk_limit() {
    let d = tmp();
    let k = wasm("cmdkit");
    let err = rh_err(
        d.path(),
        &[
            "exec",
            "--run-name",
            "lfill",
            "--scratch-limit",
            "8MiB",
            "--",
            &k,
            "fill",
            "big.bin",
            "200",
        ],
        1,
    );
    assert!(err.contains("scratch space"), "{err}");
    let c = config(d.path(), "lfill");
    assert_eq!(c["error"]["kind"], "disk_limit", "{c}");
    assert!(allocated(&d.path().join("rh/runs/lfill/scratch")) < 96 * MIB);
    // A bad size is a usage error.
    let err = rh_err(
        d.path(),
        &["exec", "--scratch-limit", "lots", "--", &k, "say", "hi"],
        2,
    );
    assert!(err.contains("--scratch-limit"), "{err}");
}

#[test]
fn no_run_starts_on_a_daemon_whose_disk_is_under_its_reserve() {
    // A reserve larger than the free space: the disk counts as nearly full.
    let probe = tmp();
    // A tebibyte over: other tests free space meanwhile.
    let reserve = (free_bytes(probe.path()) + (1 << 40)).to_string();
    let mut d = Daemon::start_with(&["--disk-reserve", &reserve]);
    d.deploy("testkit");
    d.deploy("cmdkit");
    let logs = d.root.join("logs");
    let before = snapshot(&logs);

    let (status, body) = d.http(
        "POST",
        "/v1/calls",
        Some(&d.token()),
        br#"{"function": "testkit/add", "args": [1, 2], "run_name": "refused"}"#,
    );
    assert_eq!(status, 507, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["kind"], "disk_full", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is nearly full"),
        "{v}"
    );
    let err = d.rh_err(
        &[
            "call",
            "testkit/add",
            "1",
            "2",
            "--cluster",
            "cpu",
            "--run-name",
            "refused",
        ],
        3,
    );
    assert!(
        err.contains("nearly full") && err.contains("reserve"),
        "{err}"
    );
    let err = d.rh_err(
        &[
            "exec",
            "--cluster",
            "cpu",
            "--run-name",
            "refused",
            "--",
            "cmdkit",
            "say",
            "hi",
        ],
        3,
    );
    assert!(err.contains("nearly full"), "{err}");
    let err = d.rh_err(
        &[
            "run",
            "testkit/add",
            "1",
            "2",
            "--cluster",
            "cpu",
            "--run-name",
            "refused",
        ],
        3,
    );
    assert!(err.contains("nearly full"), "{err}");
    // Nothing was made for the refused Runs.
    assert!(!logs.join("refused").exists());
    assert_eq!(snapshot(&logs), before);
    let (status, _) = d.http("GET", "/v1/health", Some(&d.token()), b"");
    assert_eq!(status, 200);

    // With the default reserve, the same root runs them.
    d.kill9();
    d.restart();
    assert_eq!(
        d.rh_ok(&[
            "call",
            "testkit/add",
            "1",
            "2",
            "--cluster",
            "cpu",
            "--run-name",
            "ran"
        ])
        .trim(),
        "3"
    );
    assert_eq!(d.config("ran")["status"], "completed");
}

/// The default reserve on a small disk: a 32 MiB tmpfs filled to under 5%
/// free refuses new Runs of the local cluster, and runs them once space is
/// freed. Needs to mount a tmpfs (root, as CI runs); elsewhere it says so
/// and checks nothing.
#[test]
fn a_nearly_full_small_disk_refuses_local_runs_until_space_is_freed() {
    let dir = tmp();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=32m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipping: cannot mount a tmpfs here (not root?)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .args(["-l"])
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    deploy(&mnt, "cmdkit");
    rh_ok(
        &mnt,
        &["exec", "--run-name", "first", "--", "cmdkit", "say", "hi"],
    );
    // Leave 512 KiB free: under 5% of 32 MiB.
    let ballast = mnt.join("ballast");
    let fill = free_bytes(&mnt) - (512 << 10);
    std::fs::write(&ballast, vec![7u8; fill as usize]).unwrap();
    let runs = mnt.join("rh/runs");
    let before = snapshot(&runs);
    let err = rh_err(
        &mnt,
        &["exec", "--run-name", "second", "--", "cmdkit", "say", "hi"],
        3,
    );
    assert!(err.contains("nearly full"), "{err}");
    assert_eq!(snapshot(&runs), before);
    std::fs::remove_file(&ballast).unwrap();
    let out = rh_ok(
        &mnt,
        &["exec", "--run-name", "second", "--", "cmdkit", "say", "hi"],
    );
    assert_eq!(out, "hi\n[0]\n");
}
