//! A daemon under bad requests, refused listening addresses, concurrent
//! and half-closing clients, and a kill of a durable daemon.

use super::*;

#[test]
fn bad_requests_get_clear_errors_and_change_nothing() {
    let d = Daemon::start_with(&["--max-component", "2MiB", "--max-request", "4KiB"]);
    d.deploy("summer");
    d.rh_ok(&[
        "call",
        "summer",
        "1",
        "2",
        "--cluster",
        "cpu",
        "--run-name",
        "done",
    ]);
    let refused = |args: &[&str], code: i32, needle: &str| {
        let before = snapshot(&d.root);
        let err = d.rh_err(args, code);
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err:?}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            before == snapshot(&d.root),
            "{args:?} changed the daemon's state"
        );
    };
    std::fs::write(d.client().join("junk.wasm"), b"not a component").unwrap();
    refused(
        &["deploy", "junk.wasm", "--cluster", "cpu"],
        2,
        "not WebAssembly",
    );
    std::fs::write(d.client().join("empty.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
    refused(
        &["deploy", "empty.wasm", "--cluster", "cpu"],
        2,
        "implements neither world",
    );
    refused(
        &[
            "deploy",
            guest("testkit").to_str().unwrap(),
            "--cluster",
            "cpu",
            "--name",
            "a/b",
        ],
        2,
        "invalid function name",
    );
    refused(
        &["call", "nope", "--cluster", "cpu"],
        2,
        "no deployed function named `nope`",
    );
    refused(
        &["call", "summer", "1", "--cluster", "cpu"],
        2,
        "takes 2 arguments",
    );
    refused(
        &[
            "call",
            "summer",
            "1",
            "2",
            "--cluster",
            "cpu",
            "--run-name",
            "../x",
        ],
        2,
        "invalid run name",
    );
    refused(
        &[
            "call",
            "summer",
            "1",
            "2",
            "--cluster",
            "cpu",
            "--run-name",
            "done",
        ],
        2,
        "already exists",
    );
    refused(&["show", "cpu", "nothing"], 2, "no run named `nothing`");
    refused(
        &["call", "summer", "1", "2", "--cluster", "nowhere"],
        2,
        "unknown cluster `nowhere`",
    );
    // Arguments that do not decode, sent raw.
    let before = snapshot(&d.root);
    let (status, body) = d.http("POST", "/v1/calls", Some(&d.token()), b"{not json");
    assert_eq!(status, 400);
    assert!(body.contains("not valid JSON"), "{body}");
    let (status, body) = d.http("GET", "/v1/nothing", Some(&d.token()), b"");
    assert_eq!(status, 404, "{body}");
    // Over the size limits: 413.
    let big = format!(
        r#"{{"function": "summer", "args": ["{}", 1]}}"#,
        "x".repeat(8000)
    );
    let (status, body) = d.http("POST", "/v1/calls", Some(&d.token()), big.as_bytes());
    assert_eq!(status, 413, "{body}");
    let huge = vec![0u8; 3 << 20];
    let (status, body) = d.http("POST", "/v1/functions?name=huge", Some(&d.token()), &huge);
    assert_eq!(status, 413, "{body}");
    assert!(before == snapshot(&d.root));
    let big_arg = format!("\"{}\"", "y".repeat(8000));
    refused(
        &["call", "summer", &big_arg, "1", "--cluster", "cpu"],
        2,
        "over the limit",
    );
}

#[test]
fn a_daemon_refuses_to_listen_beyond_loopback_without_a_token() {
    let dir = tmp();
    let out = Command::new(RH)
        .args(["serve", "--addr", "0.0.0.0:0", "--root"])
        .arg(dir.path().join("root"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{err}"
    );
}

#[test]
fn concurrent_clients_runs_hold_only_their_own_output() {
    let d = Daemon::start();
    d.deploy("testkit");
    let names: Vec<(String, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..12)
            .map(|i| {
                let d = &d;
                s.spawn(move || {
                    let marker = format!("client-{i:02}-");
                    let run = format!("iso{i}");
                    let out = d.rh_ok(&[
                        "call",
                        "testkit/echo_marker",
                        &format!("\"{marker}\""),
                        "200",
                        "--cluster",
                        "cpu",
                        "--run-name",
                        &run,
                    ]);
                    // The caller saw exactly its own output, streamed.
                    assert_eq!(out.matches(marker.as_str()).count(), 201, "{out}");
                    (marker, run)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (marker, run) in &names {
        let out = std::fs::read_to_string(d.root.join("logs").join(run).join("stdout")).unwrap();
        let err = std::fs::read_to_string(d.root.join("logs").join(run).join("stderr")).unwrap();
        assert_eq!(out.matches(marker.as_str()).count(), 200, "{run}");
        assert_eq!(err.matches(marker.as_str()).count(), 200, "{run}");
        for (other, _) in &names {
            if other != marker {
                assert!(
                    !out.contains(other.as_str()) && !err.contains(other.as_str()),
                    "{run} holds {other}"
                );
            }
        }
    }
}

/// Many calls on a daemon (folders made ahead, records swapped in, results
/// renamed in), with `--durable`: every Run folder holds exactly its five
/// files with the right contents, before and after a kill -9 and restart.
#[test]
fn a_durable_daemons_runs_hold_exactly_their_files_across_a_kill() {
    let mut d = Daemon::start_with(&["--durable"]);
    d.deploy("summer");
    for i in 0..40 {
        let out = d.rh_ok(&[
            "call",
            "summer",
            &i.to_string(),
            "1",
            "--cluster",
            "cpu",
            "--run-name",
            &format!("d{i}"),
        ]);
        assert!(out.trim_end().ends_with(&(i + 1).to_string()), "{out}");
    }
    let check = |d: &Daemon| {
        for i in 0..40 {
            let dir = d.root.join("logs").join(format!("d{i}"));
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().into_string().unwrap())
                .collect();
            files.sort();
            assert_eq!(
                files,
                [
                    "config.json",
                    "inputs.json",
                    "result.json",
                    "stderr",
                    "stdout"
                ],
                "d{i}"
            );
            let c = d.config(&format!("d{i}"));
            assert_eq!(c["name"], format!("d{i}"));
            assert_eq!(c["status"], "completed");
            assert_eq!(
                std::fs::read_to_string(dir.join("result.json")).unwrap(),
                (i + 1).to_string()
            );
            assert_eq!(
                std::fs::read_to_string(dir.join("inputs.json")).unwrap(),
                format!("[{i},1]")
            );
            assert_eq!(
                std::fs::read_to_string(dir.join("stdout")).unwrap(),
                format!("adding {i} and 1\n")
            );
        }
    };
    check(&d);
    d.kill9();
    d.restart();
    check(&d);
    // The dead daemon's prepared folders and spares went with it.
    let hosts: Vec<String> = std::fs::read_dir(d.root.join("hosts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    let ids: std::collections::HashSet<&str> =
        hosts.iter().filter_map(|h| h.split('.').next()).collect();
    assert!(
        ids.len() <= 1,
        "only the live host's files remain: {hosts:?}"
    );
}

/// A client that shuts its side of the connection once the request is sent
/// still gets the answer (HTTP/1.1 half-close; found by the fuzz target).
#[test]
fn a_client_that_half_closes_after_its_request_is_answered() {
    let d = Daemon::start();
    let token = d.token();
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
        write!(
            s,
            "GET /v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    }
}
