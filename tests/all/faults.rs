//! Faults a daemon must survive without losing or tearing a Run: killed
//! with many Runs in flight, clients that hang up mid-call, a full disk.

use crate::util::*;
use std::io::Write;

#[test]
fn a_daemon_killed_with_50_runs_in_flight_leaves_every_run_terminal_and_whole() {
    let mut d = Daemon::start();
    d.deploy("testkit");
    for i in 0..50 {
        // Half sleep, half spin: Runs blocked in the host and Runs in guest code.
        let (function, args) = if i % 2 == 0 {
            ("testkit/sleep_ms", serde_json::json!([60_000]))
        } else {
            ("testkit/spin", serde_json::json!([]))
        };
        let v = d.json(
            "POST",
            "/v1/calls",
            &serde_json::json!({"function": function, "args": args,
                                "run_name": format!("f{i:02}"), "mode": "run"}),
        );
        assert_eq!(v["status"], "running", "{v}");
    }
    d.kill9();
    d.restart();
    for i in 0..50 {
        let c = d.config(&format!("f{i:02}")); // parses, or panics
        assert_eq!(c["status"], "error", "f{i:02}: {c}");
        assert_eq!(c["error"]["kind"], "interrupted", "f{i:02}: {c}");
    }
    // And the daemon serves calls again.
    assert_eq!(
        d.rh_ok(&["call", "testkit/add", "20", "22", "--cluster", "cpu"])
            .trim(),
        "42"
    );
}

#[test]
fn a_client_that_hangs_up_mid_call_still_gets_its_run_recorded() {
    let d = Daemon::start();
    d.deploy("testkit");
    // Send the call and close the connection at once, before any answer.
    let body = serde_json::json!({"function": "testkit/sleep_ms", "args": [300],
                                  "run_name": "hung-up", "stream": true})
    .to_string();
    let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
    write!(
        s,
        "POST /v1/calls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}",
        d.token(),
        body.len()
    )
    .unwrap();
    wait_until(20, "the Run to start", || {
        d.root.join("logs/hung-up/config.json").is_file()
    });
    drop(s);
    // The documented rule: a Run runs to its end whatever its client does.
    wait_until(20, "the Run to end", || {
        d.config("hung-up")["status"] != "running"
    });
    let c = d.config("hung-up");
    assert_eq!(c["status"], "completed", "{c}");
    assert_eq!(d.run_file("hung-up", "result.json"), "300");
    assert_eq!(d.run_file("hung-up", "stdout"), "sleeping\nwoke\n");
}

/// A full disk during a Run: the Run ends with a clear error, its record
/// stays whole, and the daemon stays up. Needs to mount a small tmpfs
/// (root, as CI runs); elsewhere it says so and checks nothing.
#[test]
fn a_full_disk_ends_the_run_clearly_and_the_daemon_stays_up() {
    let dir = tmp();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
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
    let d = Daemon::start_on(&mnt.join("root"));
    d.deploy("testkit");
    // 40 MiB of output into a 24 MiB filesystem.
    let v = d.json(
        "POST",
        "/v1/calls",
        &serde_json::json!({"function": "testkit/flood", "args": [41_943_040],
                            "run_name": "fills-disk"}),
    );
    assert_eq!(v["status"], "error", "{v}");
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("No space left") || message.contains("space"),
        "a clear error: {v}"
    );
    assert_eq!(v["error"]["kind"], "output_write", "{v}");
    let c = d.config("fills-disk");
    assert_eq!(c["status"], "error", "{c}");
    assert_eq!(c["error"]["kind"], "output_write", "{c}");
    // The daemon is up and answers.
    let (status, _) = d.http("GET", "/v1/health", Some(&d.token()), b"");
    assert_eq!(status, 200);
    // Once space is freed, calls work again.
    std::fs::remove_file(d.root.join("logs/fills-disk/stdout")).unwrap();
    assert_eq!(
        d.rh_ok(&["call", "testkit/add", "1", "1", "--cluster", "cpu"])
            .trim(),
        "2"
    );
}
