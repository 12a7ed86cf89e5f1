//! Slow work (compiling a large component, reading and hashing large Run
//! files) runs off the daemon's async workers: while two large deploys and
//! four reads of a 1 GiB file go on, `GET /v1/health` and a `summer` call
//! are still answered at once: the slow work runs on lowered background
//! threads (`rh_runtime::background`).

use crate::util::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A component whose core module has `funcs` functions of `ops` arithmetic
/// steps each: seconds of compiling for Cranelift. `salt` makes each one's
/// digest (and so its compile) new. It implements no world, so the deploy
/// is refused, but only once it has been compiled.
fn large_component(funcs: usize, ops: usize, salt: usize) -> Vec<u8> {
    let mut wat = String::from("(component (core module\n");
    for f in 0..funcs {
        wat.push_str(&format!(
            "(func (export \"f{f}\") (param i64) (result i64)\n"
        ));
        for k in 0..ops {
            let c = (f * 7919 + k * 104_729 + salt) % 1_000_003;
            wat.push_str(&format!(
                "local.get 0 i64.const {c} i64.mul i64.const {k} i64.xor local.set 0\n"
            ));
        }
        wat.push_str("local.get 0)\n");
    }
    wat.push_str("))");
    wat::parse_str(&wat).unwrap()
}

/// One request on a fresh connection, reading the whole answer; the status,
/// how long it took and how many bytes came back.
fn timed(addr: &str, head: &str, body: &[u8]) -> (u16, Duration, u64) {
    let started = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    // Read it all, keeping only its start: some answers are 1 GiB.
    let (mut first, mut buf, mut total) = (Vec::new(), vec![0u8; 1 << 16], 0u64);
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        if first.len() < 16 {
            first.extend_from_slice(&buf[..n.min(16)]);
        }
    }
    let status = String::from_utf8_lossy(&first)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, started.elapsed(), total)
}

/// How many descriptors of process `pid` are open on a file named `name`.
fn open_on(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.ends_with(name)))
        .count()
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

#[test]
fn large_deploys_and_file_reads_do_not_stall_the_daemon() {
    let d = Daemon::start();
    d.deploy("summer");
    let token = d.token();
    // A finished command Run with a 1 GiB file (sparse: reading it costs
    // CPU, not disk).
    let k = guest("cmdkit");
    d.rh_ok(&[
        "exec",
        "--cluster",
        "cpu",
        "--run-name",
        "big",
        "--",
        k.to_str().unwrap(),
        "say",
        "hi",
    ]);
    let big = std::fs::File::create(d.root.join("logs/big/scratch/big.bin")).unwrap();
    big.set_len(1 << 30).unwrap();
    drop(big);
    let components: Vec<Vec<u8>> = (0..2).map(|i| large_component(300, 600, i)).collect();

    let addr = d.addr.clone();
    let auth = format!("Authorization: Bearer {token}\r\n");
    let load = std::thread::scope(|s| {
        let mut heavy = Vec::new();
        for (i, c) in components.iter().enumerate() {
            let (addr, auth) = (addr.clone(), auth.clone());
            heavy.push(s.spawn(move || {
                let head = format!(
                    "POST /v1/functions?name=large{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n",
                    c.len()
                );
                timed(&addr, &head, c)
            }));
        }
        for _ in 0..4 {
            let (addr, auth) = (addr.clone(), auth.clone());
            heavy.push(s.spawn(move || {
                let head = format!(
                    "GET /v1/runs/big/files/scratch/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n"
                );
                timed(&addr, &head, b"")
            }));
        }
        // Once the heavy work has started (the four reads have opened the
        // file), measure until it is over.
        let pid = d.child.id();
        wait_until(30, "the daemon to open big.bin for the four reads", || {
            open_on(pid, "big.bin") >= 4 || heavy[2..].iter().any(|h| h.is_finished())
        });
        let (mut health, mut calls) = (Vec::new(), Vec::new());
        let call = br#"{"function":"summer","args":[1,2]}"#;
        while !heavy.iter().all(|h| h.is_finished()) {
            let head =
                format!("GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n");
            let (status, t, _) = timed(&addr, &head, b"");
            assert_eq!(status, 200);
            health.push(t);
            let head = format!(
                "POST /v1/calls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n",
                call.len()
            );
            let (status, t, _) = timed(&addr, &head, call);
            assert_eq!(status, 200);
            calls.push(t);
            std::thread::sleep(Duration::from_millis(10));
        }
        let heavy: Vec<_> = heavy.into_iter().map(|h| h.join().unwrap()).collect();
        (health, calls, heavy)
    });
    let (health, calls, heavy) = load;
    // The deploys were compiled (then refused: no world), the reads whole.
    for (status, t, _) in &heavy[..2] {
        assert_eq!(*status, 400, "deploy took {t:?}");
    }
    for (status, _, bytes) in &heavy[2..] {
        assert_eq!(*status, 200);
        assert!(*bytes > 1 << 30, "a read ended after {bytes} bytes");
    }
    let longest = heavy.iter().map(|h| h.1).max().unwrap();
    eprintln!(
        "heavy work {longest:?}; {} health checks p99 {:?}; {} calls p99 {:?}",
        health.len(),
        p99(health.clone()),
        calls.len(),
        p99(calls.clone())
    );
    assert!(
        longest > Duration::from_millis(500),
        "the heavy work was not heavy: {longest:?}"
    );
    assert!(health.len() >= 10, "only {} health checks", health.len());
    // Before this work ran off the workers, a health check waited for a
    // whole compile (seconds). The 50 ms target is the bench suite's
    // (`make bench`, "stall"); here, where other tests share the cores,
    // the bound only has to tell a stalled daemon from a busy one.
    assert!(p99(health) < Duration::from_millis(250));
    assert!(p99(calls) < Duration::from_millis(250));
}

#[test]
fn clients_that_never_read_hold_up_nothing() {
    let d = Daemon::start();
    d.deploy("summer");
    d.rh_ok(&[
        "call",
        "summer",
        "1",
        "2",
        "--cluster",
        "cpu",
        "--run-name",
        "big",
    ]);
    // A Run file far larger than the socket buffers.
    let out = std::fs::File::create(d.root.join("logs/big/stdout")).unwrap();
    out.set_len(64 << 20).unwrap();
    drop(out);
    let token = d.token();
    // More streams than there are turns for background work, none read.
    let stalled: Vec<std::net::TcpStream> = (0..80)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
            write!(
                s,
                "GET /v1/runs/big/files/stdout HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
            )
            .unwrap();
            s
        })
        .collect();
    // Every stream has begun: the daemon sends, and nobody reads.
    for s in &stalled {
        s.set_nonblocking(true).unwrap();
    }
    wait_until(30, "the daemon to answer every stream", || {
        stalled
            .iter()
            .all(|s| s.peek(&mut [0u8; 1]).is_ok_and(|n| n > 0))
    });
    // A compile, a listing and an artifact still go through.
    let started = Instant::now();
    d.deploy("testkit");
    let files = d.json("GET", "/v1/runs/big/files", &serde_json::Value::Null);
    assert!(files["files"].as_array().unwrap().len() >= 5, "{files}");
    let (status, body) = d.http("POST", "/v1/artifacts/a", Some(&token), b"\"x\"");
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    drop(stalled);
}
