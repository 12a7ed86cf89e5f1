//! Connections a daemon will not keep: clients that trickle their headers
//! or stay idle are closed, the daemon holds at most `--max-connections`,
//! and running out of file descriptors neither spins nor floods the log.
//! Requests in flight, however long, are never cut.

use crate::util::*;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether the daemon has closed `s` (non-blocking; data read is dropped).
fn closed_by_daemon(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// A connection that has sent the start of a request and then stalls.
fn stalled(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    s
}

/// The daemon's open sockets (its listener, its connections, a few of
/// its own).
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// One keep-alive request for /v1/health on `s`; the answer's status.
fn health_keep_alive(s: &mut TcpStream, token: &str) -> u16 {
    write!(
        s,
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).unwrap();
    status.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Wait up to `secs` for the daemon to close `s`; how long that took.
fn until_closed(s: &mut TcpStream, secs: u64) -> Duration {
    let start = Instant::now();
    wait_until(secs, "the daemon to close the connection", || {
        closed_by_daemon(s)
    });
    start.elapsed()
}

#[test]
fn connections_that_trickle_their_headers_are_closed_and_others_served() {
    let d = Daemon::start_with(&["--header-timeout", "1s"]);
    let started = Instant::now();
    let mut slow: Vec<Option<TcpStream>> = (0..200).map(|_| Some(stalled(&d.addr))).collect();
    // Someone else is answered while they trickle.
    let (status, body) = d.http("GET", "/v1/health", Some(&d.token()), b"");
    assert_eq!(status, 200, "{body}");
    let mut last_closed = Duration::ZERO;
    while slow.iter().any(Option::is_some) && started.elapsed() < Duration::from_secs(10) {
        for conn in &mut slow {
            if let Some(s) = conn {
                let _ = s.write(b"a");
                if closed_by_daemon(s) {
                    *conn = None;
                    last_closed = started.elapsed();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let open = slow.iter().filter(|c| c.is_some()).count();
    assert_eq!(open, 0, "{open} of 200 trickling connections still open");
    // 1s of header timeout, and slack for a busy machine.
    assert!(last_closed < Duration::from_secs(5), "{last_closed:?}");
}

#[test]
fn idle_connections_are_closed_but_long_answers_are_not_cut() {
    let d = Daemon::start_with(&["--header-timeout", "1s", "--idle-timeout", "2s"]);
    // Keep-alive: several requests on one connection.
    let mut s = TcpStream::connect(&d.addr).unwrap();
    for _ in 0..3 {
        assert_eq!(health_keep_alive(&mut s, &d.token()), 200);
    }
    // Idle past the header timeout, it stays open and usable...
    std::thread::sleep(Duration::from_millis(1300));
    assert!(!closed_by_daemon(&mut s), "closed at the header timeout");
    s.set_nonblocking(false).unwrap();
    assert_eq!(health_keep_alive(&mut s, &d.token()), 200);
    // ...and is closed at the idle timeout (with slack for a busy machine).
    let took = until_closed(&mut s, 10);
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Answers that last longer than the idle timeout, with 2.5 s of
    // silence both ways: a follower, a waiter and a streamed call.
    d.deploy("progress");
    d.rh_ok(&[
        "run",
        "progress",
        "2",
        "2500",
        "--cluster",
        "cpu",
        "--run-name",
        "slow",
    ]);
    let spawn = |args: &[&str]| {
        Command::new(RH)
            .args(args)
            .current_dir(d.client())
            .env("RH_WASM_CONFIG", d.client().join("config.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let follow = spawn(&["logs", "cpu", "slow", "--follow"]);
    let wait = spawn(&["wait", "cpu", "slow"]);
    let call = spawn(&["call", "progress", "2", "2500", "--cluster", "cpu"]);
    for (child, want) in [
        (follow, "step 1/2\nstep 2/2\n"),
        (wait, "slow completed\n"),
        (call, "step 1/2\nstep 2/2\n2\n"),
    ] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    }
}

#[test]
fn at_the_cap_the_daemon_holds_no_more_connections_and_serves_after() {
    let mut d = Daemon::start_with(&["--max-connections", "20", "--header-timeout", "2s"]);
    let pid = d.child.id();
    assert_eq!(d.http("GET", "/v1/health", Some(&d.token()), b"").0, 200);
    // Its own sockets, once the request's connection is gone.
    let baseline = (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            sockets(pid)
        })
        .min()
        .unwrap();
    let _stalled: Vec<TcpStream> = (0..30).map(|_| stalled(&d.addr)).collect();
    wait_until(5, "the daemon to accept 20", || {
        sockets(pid) >= baseline + 20
    });
    let mut most = 0;
    let status = std::thread::scope(|scope| {
        // Queued behind the stalled ones, answered once they time out.
        let request = scope.spawn(|| d.http("GET", "/v1/health", Some(&d.token()), b""));
        while !request.is_finished() {
            most = most.max(sockets(pid).saturating_sub(baseline));
            std::thread::sleep(Duration::from_millis(10));
        }
        request.join().unwrap()
    });
    assert_eq!(status.0, 200, "{}", status.1);
    assert_eq!(most, 20, "connections held at once");
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon exited");
}

#[test]
fn out_of_descriptors_the_daemon_backs_off_logs_little_and_recovers() {
    let dir = tmp();
    let root = dir.path().join("root");
    std::fs::write(dir.path().join("token"), "t0ken\n").unwrap();
    let log = dir.path().join("daemon.log");
    // A low open-file limit, and a cap above it.
    let mut child = Command::new("sh")
        .args(["-c", r#"ulimit -n 64 && exec "$0" "$@""#])
        .arg(RH)
        .args(["serve", "--addr", "127.0.0.1:0", "--token-file", "token"])
        .args(["--max-connections", "1000", "--header-timeout", "60s"])
        .arg("--root")
        .arg(&root)
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let d = Daemon {
        child,
        addr,
        root,
        dir,
    };
    let log_size = || std::fs::metadata(&log).unwrap().len();

    // More connections than it has descriptors for.
    let held: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&d.addr).unwrap())
        .collect();
    wait_until(5, "accept to fail", || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("Too many open files")
    });
    let before = log_size();
    std::thread::sleep(Duration::from_secs(3));
    let grew = log_size() - before;
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.truncate(text.floor_char_boundary(2000));
    assert!(grew < 1024, "{grew} bytes of log in 3 s, starting:\n{text}");
    assert!(log_size() < 4096, "{text}");

    // Once they are gone, it answers again.
    drop(held);
    let (status, body) = d.http("GET", "/v1/health", Some("t0ken"), b"");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn bad_connection_options_are_refused() {
    let dir = tmp();
    for (args, says) in [
        (
            ["--header-timeout", "0s"],
            "--header-timeout must be more than 0",
        ),
        (
            ["--idle-timeout", "soon"],
            "--idle-timeout `soon` is not a duration",
        ),
        (
            ["--max-connections", "0"],
            "--max-connections must be at least 1",
        ),
    ] {
        let root = dir.path().join("root");
        let mut all = vec!["serve", "--addr", "127.0.0.1:0", "--root"];
        all.push(root.to_str().unwrap());
        all.extend(args);
        let err = rh_err(dir.path(), &all, 2);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn bodies_that_trickle_are_refused_and_honest_uploads_are_not() {
    let d = Daemon::start_with(&["--header-timeout", "1s"]);
    let token = d.token();
    // Headers in time, then a 1 MiB body a byte every 100 ms.
    let started = Instant::now();
    let mut slow: Vec<Option<TcpStream>> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(&d.addr).unwrap();
            write!(
                s,
                "POST /v1/artifacts/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 1048576\r\n\r\n"
            )
            .unwrap();
            Some(s)
        })
        .collect();
    let mut answers = Vec::new();
    while slow.iter().any(Option::is_some) && started.elapsed() < Duration::from_secs(15) {
        for conn in &mut slow {
            if let Some(s) = conn {
                let _ = s.write(b"a");
                s.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 4096];
                match s.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        answers.push(String::from_utf8_lossy(&buf[..n]).to_string());
                        *conn = None;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    _ => *conn = None,
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(answers.len(), 20, "{answers:?}");
    for a in &answers {
        assert!(a.starts_with("HTTP/1.1 408"), "{a}");
        assert!(a.contains("request_timeout"), "{a}");
    }
    // 1 s of grace, and slack for a busy machine.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = d.http("GET", "/v1/artifacts/slow", Some(&token), b"");
    assert_eq!(status, 404, "a refused body stored nothing");
    // An upload that keeps coming, if slowly (64 KiB/s), is taken.
    let mut s = TcpStream::connect(&d.addr).unwrap();
    write!(
        s,
        "POST /v1/artifacts/steady HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: 196608\r\n\r\n"
    )
    .unwrap();
    for _ in 0..30 {
        s.write_all(&[b'x'; 6553]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    s.write_all(&[b'x'; 196608 - 30 * 6553]).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}
