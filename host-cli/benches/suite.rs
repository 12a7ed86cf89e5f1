//! The benchmark suite: what a Run costs, next to the bare Wasmtime limit,
//! every figure in one run.
//!
//! `cargo bench -p rh-wasm --bench suite [-- --quick] [--calls N] [--json PATH]
//! [--dir DIR] [--only cpu,deploy,daemon]` (or
//! `make bench`) builds the guests, then measures, in this order:
//!
//! - embedded, on a local root, interleaved call by call so machine noise
//!   hits all three alike: the bare limit (fresh Store + instantiate from the
//!   pre-linked `InstancePre` + call, nothing recorded), the filesystem
//!   floor (the folder and files a Run needs, made with plain `std::fs`),
//!   and a recorded call;
//! - a CPU-bound guest with the default fuel settings against fuel off;
//! - deploy (validate + compile + store) of `summer` into fresh roots;
//! - against a real daemon (`rh-wasm serve` on a loopback port): sequential
//!   recorded calls (each beside a bare call), calls/s from 16 clients,
//!   `get-or-call` hits, content-cache hits, cancel of a spinning guest, the
//!   delay from a guest's `println!` to a `logs --follow` client, restart
//!   then first call, and RSS idle and with 64 Runs in flight;
//! - a stalled daemon (`--only stall`): health checks and calls while two
//!   large components compile and four clients read a 1 GiB Run file;
//! - Python functions (`--only python`): `rh-wasm build` of
//!   `examples/python/summer.py`, its deploy, its calls over HTTP beside
//!   the Rust `summer`'s, the first call after a restart, and the daemon's
//!   memory with 16 Python Runs in flight;
//! - history (`--only history [--history-runs N]`, only when asked: it
//!   writes N Run records, 1,000,000 by default, about 5.5 GB on tmpfs):
//!   search, lineage, calls and daemon start on a root holding N Runs,
//!   the index's cost, `gc` throughput, the inodes and bytes of a Run
//!   (see `suite/history.rs`).
//!
//! It prints a table and writes JSON (default `<target>/bench/suite.json`).
//! The roots live in a temporary folder under `--dir` (default
//! `<target>/bench`): point it at another filesystem to measure there.
//! Warm-up calls are not counted. Nothing here asserts a time: the targets
//! are printed beside the figures, and `BENCHMARKS.md` explains them.

#[path = "suite/cluster.rs"]
mod cluster;
#[path = "suite/dashboard.rs"]
mod dashboard;
#[path = "suite/history.rs"]
mod history;
#[path = "suite/python.rs"]
mod python;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rh_runtime::{CallRequest, Caller, EngineOptions, Runtime, RuntimeOptions};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- set-up

struct Opts {
    /// Calls per latency figure.
    calls: usize,
    json: PathBuf,
    /// Where the roots are made (a filesystem to measure on).
    dir: PathBuf,
    /// Sections to run besides the embedded one (which gives the bare
    /// reference); all when empty.
    only: Vec<String>,
    /// Runs a history root holds (`--only history`).
    history_runs: usize,
}

impl Opts {
    fn runs(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .to_path_buf()
}

fn opts() -> Opts {
    let mut o = Opts {
        calls: 2000,
        json: target_dir().join("bench/suite.json"),
        dir: target_dir().join("bench"),
        only: Vec::new(),
        history_runs: 1_000_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.calls = 300,
            "--calls" => o.calls = args.next().and_then(|n| n.parse().ok()).expect("--calls N"),
            "--json" => o.json = args.next().expect("--json PATH").into(),
            "--dir" => o.dir = args.next().expect("--dir DIR").into(),
            "--history-runs" => {
                o.history_runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--history-runs N")
            }
            "--only" => {
                o.only = args
                    .next()
                    .expect("--only cpu,deploy,daemon")
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            // `cargo bench` passes `--bench`; other flags are not ours.
            _ => {}
        }
    }
    o
}

// ------------------------------------------------------------ statistics

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One row of the table.
#[derive(Default)]
struct Row {
    figure: String,
    p50: Option<Duration>,
    p99: Option<Duration>,
    /// Calls per second.
    rate: Option<f64>,
    /// A figure that is not a time or a rate, with its unit.
    value: Option<(f64, &'static str)>,
    samples: usize,
    /// The bare limit measured beside this figure, when it was.
    bare_p50: Option<Duration>,
    target: String,
    met: Option<bool>,
}

impl Row {
    fn latency(figure: &str, v: &[Duration], target: &str, limit: Option<Duration>) -> Row {
        let p50 = pct(v, 0.5);
        Row {
            figure: figure.into(),
            p50: Some(p50),
            p99: Some(pct(v, 0.99)),
            samples: v.len(),
            target: target.into(),
            met: limit.map(|l| p50 <= l),
            ..Row::default()
        }
    }

    fn json(&self) -> Value {
        json!({
            "figure": self.figure,
            "p50_us": self.p50.map(us),
            "p99_us": self.p99.map(us),
            "per_second": self.rate,
            "value": self.value.map(|v| v.0),
            "unit": self.value.map(|v| v.1),
            "samples": self.samples,
            "bare_p50_us": self.bare_p50.map(us),
            "x_bare": match (self.p50, self.bare_p50) {
                (Some(p), Some(b)) => Some(p.as_secs_f64() / b.as_secs_f64()),
                _ => None,
            },
            "target": self.target,
            "met": self.met,
        })
    }
}

fn fmt_d(d: Option<Duration>) -> String {
    match d {
        None => "".into(),
        Some(d) if d < Duration::from_millis(1) => format!("{:.0} µs", us(d)),
        Some(d) if d < Duration::from_secs(1) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<58} {:>10} {:>10} {:>11} {:>9} {:>8}  {:<22} met",
        "figure", "p50", "p99", "rate/value", "bare p50", "x bare", "target"
    );
    for r in rows {
        let rv = match (r.rate, r.value) {
            (Some(x), _) => format!("{x:.0}/s"),
            (_, Some((v, u))) => format!("{v:.1} {u}"),
            _ => "".into(),
        };
        let x = match (r.p50, r.bare_p50) {
            (Some(p), Some(b)) => format!("x{:.1}", p.as_secs_f64() / b.as_secs_f64()),
            _ => "".into(),
        };
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        println!(
            "{:<58} {:>10} {:>10} {:>11} {:>9} {:>8}  {:<22} {met}",
            r.figure,
            fmt_d(r.p50),
            fmt_d(r.p99),
            rv,
            fmt_d(r.bare_p50),
            x,
            r.target
        );
    }
}

// --------------------------------------------------------------- embedded

/// What a Run's folder needs from the filesystem, made with plain `std::fs`
/// the way the run store makes it: a folder built under a temporary name
/// and renamed into place, with the record, inputs, stdout, stderr and
/// result, then the record replaced through a swap.
struct FsFloor {
    dir: PathBuf,
    spare: PathBuf,
    n: u64,
    config: Vec<u8>,
}

impl FsFloor {
    fn new(dir: PathBuf) -> FsFloor {
        std::fs::create_dir_all(&dir).unwrap();
        // Spread over block groups, as the run store asks for its folder.
        if let Ok(f) = std::fs::File::open(&dir)
            && let Ok(flags) = rustix::fs::ioctl_getflags(&f)
        {
            let _ = rustix::fs::ioctl_setflags(&f, flags | rustix::fs::IFlags::TOPDIR);
        }
        FsFloor {
            spare: dir.join(".spare"),
            dir,
            n: 0,
            config: vec![b' '; 900],
        }
    }

    fn once(&mut self) {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        self.n += 1;
        let tmp = self.dir.join(format!(".tmp-{}", self.n));
        std::fs::create_dir(&tmp).unwrap();
        std::fs::write(tmp.join("config.json"), &self.config).unwrap();
        std::fs::write(tmp.join("inputs.json"), b"[1,2]").unwrap();
        let _out = std::fs::File::create(tmp.join("stdout")).unwrap();
        let _err = std::fs::File::create(tmp.join("stderr")).unwrap();
        let dir = self.dir.join(format!("run-{}", self.n));
        std::fs::rename(&tmp, &dir).unwrap();
        std::fs::write(dir.join("result.json"), b"3").unwrap();
        std::fs::write(&self.spare, &self.config).unwrap();
        let config = dir.join("config.json");
        if renameat_with(CWD, &self.spare, CWD, &config, RenameFlags::EXCHANGE).is_err() {
            std::fs::rename(&self.spare, &config).unwrap();
        }
    }
}

struct Embedded {
    bare: Vec<Duration>,
    floor: Vec<Duration>,
    recorded: Vec<Duration>,
}

fn embedded(tk: &tokio::runtime::Runtime, rt: &Runtime, root: &Path, calls: usize) -> Embedded {
    let args = json!([1, 2]);
    let mut floor = FsFloor::new(root.join("fs-floor"));
    let mut m = Embedded {
        bare: Vec::with_capacity(calls),
        floor: Vec::with_capacity(calls),
        recorded: Vec::with_capacity(calls),
    };
    tk.block_on(async {
        let warm = (calls / 10).max(50);
        for i in 0..warm + calls {
            let t = Instant::now();
            let out = rt.bare_call("summer", &args).await.unwrap();
            let bare = t.elapsed();
            assert_eq!(out, b"3");
            let t = Instant::now();
            floor.once();
            let fs = t.elapsed();
            let t = Instant::now();
            let run = rt
                .call(&Caller::host(), CallRequest::new("summer", args.clone()))
                .await
                .unwrap();
            let rec = t.elapsed();
            assert_eq!(run.result().unwrap(), json!(3));
            if i >= warm {
                m.bare.push(bare);
                m.floor.push(fs);
                m.recorded.push(rec);
            }
        }
    });
    m
}

/// A ~100 ms CPU-bound guest with the default fuel settings, and with fuel
/// off; median of 7 each, interleaved. The ratio default/off.
fn cpu_bound(tk: &tokio::runtime::Runtime, root: &Path, guests: &Path) -> (Duration, Duration) {
    let open = |name: &str, o: EngineOptions| {
        let rt = Runtime::open_with(RuntimeOptions::new(root.join(name)).engine(o)).unwrap();
        tk.block_on(rt.deploy_file(&Caller::host(), &guests.join("testkit.wasm"), None))
            .unwrap();
        rt
    };
    let off = open(
        "fuel-off",
        EngineOptions {
            metering: false,
            ..EngineOptions::default()
        },
    );
    let on = open("fuel-default", EngineOptions::default());
    let burn = |rt: &Runtime, iters: u64| {
        let t = Instant::now();
        tk.block_on(rt.bare_call("testkit/burn", &json!([iters])))
            .unwrap();
        t.elapsed()
    };
    let mut iters = 1_000_000u64;
    while burn(&off, iters) < Duration::from_millis(50) {
        iters *= 2;
    }
    iters = (iters as f64 * 0.1 / burn(&off, iters).as_secs_f64()) as u64;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        a.push(burn(&off, iters));
        b.push(burn(&on, iters));
    }
    (pct(&a, 0.5), pct(&b, 0.5))
}

/// Deploy `summer` (validate, compile, store) into a fresh root, `n` times.
fn deploys(tk: &tokio::runtime::Runtime, root: &Path, guests: &Path, n: usize) -> Vec<Duration> {
    let bytes = std::fs::read(guests.join("summer.wasm")).unwrap();
    (0..n)
        .map(|i| {
            let rt = Runtime::open(root.join(format!("deploy-{i}"))).unwrap();
            let t = Instant::now();
            tk.block_on(rt.deploy(&Caller::host(), &bytes, "summer"))
                .unwrap();
            t.elapsed()
        })
        .collect()
}

// ----------------------------------------------------------------- daemon

struct Daemon {
    child: Child,
    addr: String,
}

impl Daemon {
    fn start(root: &Path) -> (Daemon, Duration) {
        Self::start_with(root, &[])
    }

    fn start_with(root: &Path, extra: &[&str]) -> (Daemon, Duration) {
        let t = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rh-wasm"))
            .args(["serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(root)
            .args(extra)
            .env("RUST_LOG", "warn")
            // For a shared store on a local S3 server (moto takes any).
            .env(
                "AWS_ACCESS_KEY_ID",
                std::env::var("AWS_ACCESS_KEY_ID").unwrap_or("bench".into()),
            )
            .env(
                "AWS_SECRET_ACCESS_KEY",
                std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or("bench".into()),
            )
            .env(
                "AWS_REGION",
                std::env::var("AWS_REGION").unwrap_or("us-east-1".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting rh-wasm serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready = t.elapsed();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        (Daemon { child, addr }, ready)
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    /// User + system CPU time of the daemon so far, all threads.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which may hold spaces): utime is
        // the 12th, stime the 13th, in clock ticks.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let hz = rustix::param::clock_ticks_per_second();
        Duration::from_secs_f64((f[11] + f[12]) as f64 / hz as f64)
    }

    /// SIGTERM and wait: the daemon's own graceful shutdown.
    fn stop(mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> Sender {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn request(s: &mut Sender, addr: &str, method: &str, path: &str, body: Bytes) -> Value {
    request_as(s, addr, None, method, path, body).await
}

/// A request with a bearer token when given.
async fn request_as(
    s: &mut Sender,
    addr: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Bytes,
) -> Value {
    s.ready().await.unwrap();
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Full::new(body)).unwrap();
    let resp = s.send_request(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{method} {path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

async fn post(s: &mut Sender, addr: &str, path: &str, body: &Value) -> Value {
    request(s, addr, "POST", path, Bytes::from(body.to_string())).await
}

/// What access checks cost: calls by a user to a function shared with them,
/// on a daemon with users, interleaved call by call with plain calls on a
/// daemon without users started the same way (a fresh root each).
fn users_figures(
    tk: &tokio::runtime::Runtime,
    work: &Path,
    guests: &Path,
    calls: usize,
    rows: &mut Vec<Row>,
) {
    let dir = work.join("users");
    std::fs::create_dir_all(&dir).unwrap();
    for user in ["alice", "bob"] {
        let out = Command::new(env!("CARGO_BIN_EXE_rh-wasm"))
            .args(["users", "add", "users.toml", user, "--token-file"])
            .arg(format!("{user}.token"))
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let token = |u: &str| {
        std::fs::read_to_string(dir.join(format!("{u}.token")))
            .unwrap()
            .trim()
            .to_string()
    };
    let (alice, bob) = (token("alice"), token("bob"));
    let users = dir.join("users.toml");
    let (d, _) = Daemon::start_with(&dir.join("root"), &["--users", users.to_str().unwrap()]);
    let (plain, _) = Daemon::start(&dir.join("plain"));
    tk.block_on(async {
        let mut a = connect(&plain.addr).await;
        let mut b = connect(&d.addr).await;
        let bytes = Bytes::from(std::fs::read(guests.join("summer.wasm")).unwrap());
        let path = "/v1/functions?name=summer";
        request(&mut a, &plain.addr, "POST", path, bytes.clone()).await;
        request_as(&mut b, &d.addr, Some(&alice), "POST", path, bytes).await;
        let share = json!({"name": "summer", "user": "bob", "access": "read"});
        let body = Bytes::from(share.to_string());
        request_as(&mut b, &d.addr, Some(&alice), "POST", "/v1/shares", body).await;
        let call = Bytes::from(json!({"function": "summer", "args": [1, 2]}).to_string());
        let warm = (calls / 10).max(50);
        let (mut without, mut with) = (Vec::new(), Vec::new());
        for i in 0..warm + calls {
            let t = Instant::now();
            let v = request(&mut a, &plain.addr, "POST", "/v1/calls", call.clone()).await;
            let l0 = t.elapsed();
            let t = Instant::now();
            let w = request_as(
                &mut b,
                &d.addr,
                Some(&bob),
                "POST",
                "/v1/calls",
                call.clone(),
            )
            .await;
            let l1 = t.elapsed();
            assert_eq!((&v["result"], &w["result"]), (&json!(3), &json!(3)), "{w}");
            if i >= warm {
                without.push(l0);
                with.push(l1);
            }
        }
        rows.push(Row::latency(
            "recorded call over HTTP, no users (beside the next)",
            &without,
            "reported",
            None,
        ));
        let mut r = Row::latency(
            "recorded call over HTTP as a user (value: x no users)",
            &with,
            "reported",
            None,
        );
        r.value = Some((us(pct(&with, 0.5)) / us(pct(&without, 0.5)), "x"));
        rows.push(r);
    });
    d.stop();
    plain.stop();
}

fn now_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// Everything measured against the daemon.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the figures it fills are its output"
)]
async fn daemon_figures(
    d: &Daemon,
    rt: &Runtime,
    guests: &Path,
    calls: usize,
    rows: &mut Vec<Row>,
    bare_ref: Duration,
) {
    let addr = d.addr.clone();
    let mut s = connect(&addr).await;
    for f in ["summer", "testkit"] {
        let bytes = std::fs::read(guests.join(format!("{f}.wasm"))).unwrap();
        request(
            &mut s,
            &addr,
            "POST",
            &format!("/v1/functions?name={f}"),
            Bytes::from(bytes),
        )
        .await;
    }
    let call = json!({"function": "summer", "args": [1, 2]});
    let bare_args = json!([1, 2]);

    // Sequential recorded calls, each beside a bare call.
    let warm = (calls / 10).max(50);
    let (mut bare, mut lat) = (Vec::new(), Vec::new());
    for i in 0..warm + calls {
        let t = Instant::now();
        rt.bare_call("summer", &bare_args).await.unwrap();
        let b = t.elapsed();
        let t = Instant::now();
        let v = post(&mut s, &addr, "/v1/calls", &call).await;
        let l = t.elapsed();
        assert_eq!(v["result"], json!(3), "{v}");
        if i >= warm {
            bare.push(b);
            lat.push(l);
        }
    }
    let mut r = Row::latency(
        "recorded call over HTTP, sequential",
        &lat,
        "p50 <= 0.5 ms",
        Some(Duration::from_micros(500)),
    );
    r.bare_p50 = Some(pct(&bare, 0.5));
    rows.push(r);

    // The same call as `rh-wasm call` makes it: output streamed in frames.
    let streamed = json!({"function": "summer", "args": [1, 2], "stream": true});
    let mut slat = Vec::new();
    for i in 0..warm + calls / 2 {
        let t = Instant::now();
        s.ready().await.unwrap();
        let req = Request::post("/v1/calls")
            .header("host", &addr)
            .body(Full::new(Bytes::from(streamed.to_string())))
            .unwrap();
        let body = s.send_request(req).await.unwrap().into_body();
        let bytes = body.collect().await.unwrap().to_bytes();
        let l = t.elapsed();
        // The last frame is the answer: type 3, then its JSON.
        assert!(
            bytes.windows(10).any(|w| w == b"\"result\":3"),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        if i >= warm {
            slat.push(l);
        }
    }
    let mut r = Row::latency(
        "recorded call over HTTP, streamed (as rh-wasm call)",
        &slat,
        "reported",
        None,
    );
    r.bare_p50 = Some(pct(&bare, 0.5));
    rows.push(r);

    // Throughput: 16 clients, each on its own connection; median of 3.
    let clients = 16;
    let per = (calls / clients).max(50);
    let mut rates = Vec::new();
    let cpu_before = d.cpu_time();
    for _ in 0..3 {
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let addr = addr.clone();
            let call = call.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = connect(&addr).await;
                for _ in 0..per {
                    let v = post(&mut s, &addr, "/v1/calls", &call).await;
                    assert_eq!(v["result"], json!(3));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        rates.push((per * clients) as f64 / t.elapsed().as_secs_f64());
    }
    let cpu = d.cpu_time() - cpu_before;
    let rate = median_f(rates);
    rows.push(Row {
        figure: format!("recorded calls/s over HTTP, {clients} clients"),
        rate: Some(rate),
        samples: 3 * per * clients,
        bare_p50: Some(bare_ref),
        target: ">= 10,000/s".into(),
        met: Some(rate >= 10_000.0),
        ..Row::default()
    });

    rows.push(Row {
        figure: "daemon CPU per recorded call (both cores, all threads)".into(),
        value: Some((us(cpu) / (3 * per * clients) as f64, "µs")),
        samples: 3 * per * clients,
        target: "reported".into(),
        ..Row::default()
    });

    // get-or-call of an existing Run: answered from its record.
    let goc = json!({"function": "summer", "args": [1, 2], "run_name": "bench-hit", "mode": "get_or_call"});
    post(&mut s, &addr, "/v1/calls", &goc).await;
    let mut hits = Vec::new();
    for i in 0..warm + calls {
        let t = Instant::now();
        let v = post(&mut s, &addr, "/v1/calls", &goc).await;
        let l = t.elapsed();
        assert_eq!(v["run_name"], "bench-hit", "{v}");
        if i >= warm {
            hits.push(l);
        }
    }
    let mut r = Row::latency(
        "get-or-call hit over HTTP (existing Run)",
        &hits,
        "p50 <= 0.3 ms",
        Some(Duration::from_micros(300)),
    );
    r.bare_p50 = Some(bare_ref);
    rows.push(r);

    // A content-cache hit: a new Run made from a completed one's files.
    let cached = json!({"function": "summer", "args": [1, 2], "cache": true});
    let mut chits = Vec::new();
    let n = (calls / 4).max(50);
    for i in 0..warm + n {
        let t = Instant::now();
        let v = post(&mut s, &addr, "/v1/calls", &cached).await;
        let l = t.elapsed();
        assert_eq!(v["result"], json!(3), "{v}");
        if i >= warm {
            chits.push(l);
        }
    }
    let mut r = Row::latency(
        "call --cache hit over HTTP (new Run)",
        &chits,
        "reported",
        None,
    );
    r.bare_p50 = Some(bare_ref);
    rows.push(r);

    // Cancel a spinning guest; the cancel answers once the Run has ended.
    let mut cancels = Vec::new();
    for i in 0..50 {
        let name = format!("bench-spin-{i}");
        let v = post(
            &mut s,
            &addr,
            "/v1/calls",
            &json!({"function": "testkit/spin", "args": [], "run_name": name, "mode": "run"}),
        )
        .await;
        assert_eq!(v["status"], "running", "{v}");
        let t = Instant::now();
        let v = post(
            &mut s,
            &addr,
            &format!("/v1/runs/{name}/cancel"),
            &json!({}),
        )
        .await;
        cancels.push(t.elapsed());
        assert_eq!(v["status"], "cancelled", "{v}");
    }
    let mut r = Row::latency(
        "cancel of a spinning guest -> cancelled, over HTTP",
        &cancels,
        "p99 <= 5 ms",
        None,
    );
    r.met = Some(pct(&cancels, 0.99) <= Duration::from_millis(5));
    rows.push(r);

    // A line printed by the guest, seen by a follower.
    let count = 200;
    let v = post(
        &mut s,
        &addr,
        "/v1/calls",
        &json!({"function": "testkit/ticks", "args": [count, 5], "run_name": "bench-ticks", "mode": "run"}),
    )
    .await;
    assert_eq!(v["status"], "running", "{v}");
    let mut f = connect(&addr).await;
    let since = now_us();
    let req = Request::get("/v1/runs/bench-ticks/logs?follow=1")
        .header("host", &addr)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let body = f.send_request(req).await.unwrap().into_body();
    let (delays, lines) = tick_delays(body, since).await;
    assert_eq!(lines, count, "the follower saw every line");
    let mut r = Row::latency(
        "guest println -> logs --follow client",
        &delays,
        "p99 <= 20 ms",
        None,
    );
    r.met = Some(pct(&delays, 0.99) <= Duration::from_millis(20));
    rows.push(r);
}

/// Read `tick <unix µs>` lines (the `ticks` guest's) from a followed log
/// until it ends: how long each took to arrive, for lines written after
/// `since` (those before are history), and how many lines came.
async fn tick_delays(mut body: hyper::body::Incoming, since: u128) -> (Vec<Duration>, usize) {
    let (mut delays, mut pending, mut lines) = (Vec::new(), Vec::new(), 0);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.unwrap().into_data() else {
            continue;
        };
        let seen = now_us();
        pending.extend_from_slice(&data);
        while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let stamp: u128 = std::str::from_utf8(&line)
                .unwrap()
                .trim()
                .strip_prefix("tick ")
                .unwrap()
                .parse()
                .unwrap();
            lines += 1;
            if stamp >= since {
                delays.push(Duration::from_micros(seen.saturating_sub(stamp) as u64));
            }
        }
    }
    (delays, lines)
}

// ------------------------------------------------------------------- main

/// A component of `funcs` functions of `ops` arithmetic steps each, new
/// bytes for each `salt`: seconds of compiling. It implements no world, so
/// its deploy is refused once compiled.
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

/// One request on a fresh connection, the answer read and dropped; the
/// status and how long it took.
fn timed(addr: &str, head: &str, body: &[u8]) -> (u16, Duration) {
    use std::io::Read;
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let (mut first, mut buf) = (Vec::new(), vec![0u8; 1 << 16]);
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if first.len() < 16 {
            first.extend_from_slice(&buf[..n.min(16)]);
        }
    }
    let status = String::from_utf8_lossy(&first)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, t.elapsed())
}

/// Health checks and calls answered while two large deploys and four
/// reads of a 1 GiB Run file keep the daemon's cores busy.
fn stall_figures(root: &Path) -> Vec<Row> {
    let (d, _) = Daemon::start(root);
    let summer = rh_test_support::guest("summer");
    let bytes = std::fs::read(&summer).unwrap();
    let head = |method: &str, path: &str, len: usize| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    assert_eq!(
        timed(
            &d.addr,
            &head("POST", "/v1/functions?name=summer", bytes.len()),
            &bytes
        )
        .0,
        200
    );
    let call = br#"{"function":"summer","args":[1,2],"run_name":"big"}"#;
    assert_eq!(
        timed(&d.addr, &head("POST", "/v1/calls", call.len()), call).0,
        200
    );
    // The Run's stdout made 1 GiB (sparse: reading it costs CPU, not disk).
    let out = std::fs::File::create(root.join("logs/big/stdout")).unwrap();
    out.set_len(1 << 30).unwrap();
    drop(out);
    let components: Vec<Vec<u8>> = (0..2).map(|i| large_component(300, 600, i)).collect();
    let call = br#"{"function":"summer","args":[1,2]}"#;
    let addr = d.addr.as_str();
    let (health, calls) = std::thread::scope(|s| {
        let mut heavy = Vec::new();
        for (i, c) in components.iter().enumerate() {
            let h = head("POST", &format!("/v1/functions?name=large{i}"), c.len());
            heavy.push(s.spawn(move || timed(addr, &h, c)));
        }
        for _ in 0..4 {
            let h = head("GET", "/v1/runs/big/files/stdout", 0);
            heavy.push(s.spawn(move || timed(addr, &h, b"")));
        }
        std::thread::sleep(Duration::from_millis(200));
        let (mut health, mut calls) = (Vec::new(), Vec::new());
        while !heavy.iter().all(|h| h.is_finished()) {
            let (status, t) = timed(addr, &head("GET", "/v1/health", 0), b"");
            assert_eq!(status, 200);
            health.push(t);
            let (status, t) = timed(addr, &head("POST", "/v1/calls", call.len()), call);
            assert_eq!(status, 200);
            calls.push(t);
            std::thread::sleep(Duration::from_millis(10));
        }
        (health, calls)
    });
    d.stop();
    let fifty = Duration::from_millis(50);
    let mut rows = Vec::new();
    for (figure, v) in [
        (
            "stalled daemon: GET /v1/health (2 compiles, 4 x 1 GiB reads)",
            health,
        ),
        (
            "stalled daemon: summer call (2 compiles, 4 x 1 GiB reads)",
            calls,
        ),
    ] {
        let mut r = Row::latency(figure, &v, "p99 <= 50 ms", None);
        r.met = Some(pct(&v, 0.99) <= fifty);
        rows.push(r);
    }
    rows
}

fn main() {
    let o = opts();
    // The example and test guests, built as the tests build them.
    let guests = rh_test_support::guest_dir();
    std::fs::create_dir_all(&o.dir).unwrap();
    let work = tempfile::tempdir_in(&o.dir).unwrap();
    let tk = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();

    eprintln!(
        "embedded: {} calls each of bare, fs floor, recorded ...",
        o.calls
    );
    let rt = Runtime::open(work.path().join("local")).unwrap();
    tk.block_on(rt.deploy_file(&Caller::host(), &guests.join("summer.wasm"), None))
        .unwrap();
    let m = embedded(&tk, &rt, work.path(), o.calls);
    let bare = pct(&m.bare, 0.5);
    let mut r = Row::latency(
        "bare: fresh Store + instantiate + call (no Run)",
        &m.bare,
        "reference",
        None,
    );
    r.bare_p50 = Some(bare);
    rows.push(r);
    let mut r = Row::latency(
        "fs floor: a Run's folder and files, plain std::fs",
        &m.floor,
        "reported",
        None,
    );
    r.bare_p50 = Some(bare);
    rows.push(r);
    let mut r = Row::latency(
        "recorded call, embedded, local root",
        &m.recorded,
        "p50 <= 5x bare",
        Some(bare * 5),
    );
    r.bare_p50 = Some(bare);
    rows.push(r);

    // With --durable: the record, result and folder fsynced per Run.
    let durable =
        Runtime::open_with(RuntimeOptions::new(work.path().join("durable")).durable(true)).unwrap();
    tk.block_on(durable.deploy_file(&Caller::host(), &guests.join("summer.wasm"), None))
        .unwrap();
    let n = (o.calls / 10).max(50);
    let lat: Vec<Duration> = (0..n + 10)
        .map(|_| {
            let t = Instant::now();
            let run = tk
                .block_on(durable.call(&Caller::host(), CallRequest::new("summer", json!([1, 2]))))
                .unwrap();
            assert_eq!(run.result().unwrap(), json!(3));
            t.elapsed()
        })
        .skip(10)
        .collect();
    let mut r = Row::latency(
        "recorded call, embedded, durable (fsync)",
        &lat,
        "reported",
        None,
    );
    r.bare_p50 = Some(bare);
    rows.push(r);

    if o.runs("cpu") {
        eprintln!("CPU-bound guest, fuel off vs default ...");
        let (off, on) = cpu_bound(&tk, work.path(), &guests);
        let ratio = on.as_secs_f64() / off.as_secs_f64();
        rows.push(Row {
            figure: format!("CPU-bound guest (~100 ms): default fuel vs off ({off:.0?})"),
            p50: Some(on),
            value: Some((ratio, "x off")),
            samples: 7,
            target: "<= 1.3x".into(),
            met: Some(ratio <= 1.3),
            ..Row::default()
        });
    }

    if o.runs("deploy") {
        eprintln!("deploy ...");
        let dep = deploys(&tk, work.path(), &guests, 7);
        let mut r = Row::latency(
            "deploy summer (validate + compile + store)",
            &dep,
            "<= 150 ms",
            Some(Duration::from_millis(150)),
        );
        r.bare_p50 = Some(bare);
        rows.push(r);
    }

    if o.runs("daemon") {
        eprintln!("daemon ...");
        let droot = work.path().join("daemon");
        let (d, _) = Daemon::start(&droot);
        let idle_fresh = d.rss_kib();
        tk.block_on(daemon_figures(&d, &rt, &guests, o.calls, &mut rows, bare));
        users_figures(&tk, work.path(), &guests, o.calls, &mut rows);

        // Restart on the same root, then the first call (precompiled copy).
        d.stop();
        let (mut firsts, mut readies, mut seconds) = (Vec::new(), Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..5 {
            if let Some(d) = last.take() {
                Daemon::stop(d);
            }
            let (d, ready) = Daemon::start(&droot);
            readies.push(ready);
            let (first, second) = tk.block_on(async {
                let mut s = connect(&d.addr).await;
                let call = json!({"function": "summer", "args": [1, 2]});
                let t = Instant::now();
                let v = post(&mut s, &d.addr, "/v1/calls", &call).await;
                let first = t.elapsed();
                assert_eq!(v["result"], json!(3));
                let t = Instant::now();
                post(&mut s, &d.addr, "/v1/calls", &call).await;
                (first, t.elapsed())
            });
            firsts.push(first);
            seconds.push(second);
            last = Some(d);
        }
        let d = last.unwrap();
        rows.push(Row::latency(
            "daemon restart: start until listening",
            &readies,
            "reported",
            None,
        ));
        let mut r = Row::latency(
            "daemon restart: first call (precompiled copy)",
            &firsts,
            "<= 5 ms",
            Some(Duration::from_millis(5)),
        );
        r.bare_p50 = Some(bare);
        rows.push(r);
        rows.push(Row::latency(
            "daemon restart: second call",
            &seconds,
            "reported",
            None,
        ));

        // RSS idle, then with 64 Runs in flight.
        std::thread::sleep(Duration::from_millis(300));
        let idle = d.rss_kib();
        let inflight = 64;
        let busy = tk.block_on(async {
        let mut s = connect(&d.addr).await;
        let mut names = Vec::new();
        for i in 0..inflight {
            let name = format!("bench-sleep-{i}");
            let v = post(
                &mut s,
                &d.addr,
                "/v1/calls",
                &json!({"function": "testkit/sleep_ms", "args": [1500], "run_name": name, "mode": "run"}),
            )
            .await;
            assert_eq!(v["status"], "running", "{v}");
            names.push(name);
        }
        let busy = d.rss_kib();
        for n in names {
            let v = request(&mut s, &d.addr, "GET", &format!("/v1/runs/{n}/wait"), Bytes::new()).await;
            assert_eq!(v["status"], "completed", "{v}");
        }
        busy
    });
        rows.push(Row {
            figure: "daemon RSS, idle after start".into(),
            value: Some((idle_fresh as f64 / 1024.0, "MiB")),
            samples: 1,
            target: "<= 30 MB".into(),
            met: Some(idle_fresh * 1024 <= 30_000_000),
            ..Row::default()
        });
        rows.push(Row {
            figure: "daemon RSS, idle after restart and calls".into(),
            value: Some((idle as f64 / 1024.0, "MiB")),
            samples: 1,
            target: "<= 30 MB".into(),
            met: Some(idle * 1024 <= 30_000_000),
            ..Row::default()
        });
        rows.push(Row {
            figure: format!("daemon RSS, {inflight} Runs in flight"),
            value: Some((busy as f64 / 1024.0, "MiB")),
            samples: 1,
            target: "reported".into(),
            ..Row::default()
        });
        rows.push(Row {
            figure: "daemon RSS per Run in flight".into(),
            value: Some((busy.saturating_sub(idle) as f64 / inflight as f64, "KiB")),
            samples: 1,
            target: "reported".into(),
            ..Row::default()
        });
        drop(d);
    }

    if o.only.iter().any(|s| s == "history") {
        history::history_figures(
            &tk,
            work.path(),
            &guests,
            &rt,
            o.history_runs,
            o.calls,
            &mut rows,
        );
    }

    if o.only.iter().any(|s| s == "dashboard") {
        dashboard::dashboard_figures(
            &tk,
            work.path(),
            &guests,
            o.history_runs,
            o.calls,
            &mut rows,
        );
    }

    if o.only.iter().any(|s| s == "cluster") {
        cluster::cluster_figures(&tk, work.path(), &guests, o.calls, &mut rows);
    }

    if o.runs("python") {
        eprintln!("python ...");
        python::python_figures(&tk, work.path(), &guests, o.calls, &mut rows);
    }

    if o.runs("stall") {
        eprintln!("stalled daemon ...");
        rows.extend(stall_figures(&work.path().join("stall")));
    }

    print_table(&rows);
    let out = json!({
        "suite": "rh-wasm",
        "calls_per_figure": o.calls,
        "dir": o.dir,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "bare_p50_us": us(bare),
        "figures": rows.iter().map(Row::json).collect::<Vec<_>>(),
    });
    if let Some(parent) = o.json.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let mut f = std::fs::File::create(&o.json).unwrap();
    writeln!(f, "{}", serde_json::to_string_pretty(&out).unwrap()).unwrap();
    println!("\nJSON: {}", o.json.display());
}
