//! Recorded calls over loopback HTTP to a real daemon.
//!
//! `cargo bench -p rh-wasm --bench http [-- CALLS]` builds the `summer`
//! example, starts `rh-wasm serve` on port 0 with a temp root, deploys, and
//! measures: sequential recorded calls on one keep-alive connection (p50,
//! p99), then calls/s with 16 concurrent clients, each with its own
//! connection.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn build_summer() -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = repo.join("target/guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "summer",
            "--manifest-path",
        ])
        .arg(repo.join("examples/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("running cargo");
    assert!(st.success());
    target.join("wasm32-wasip2/release/summer.wasm")
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

async fn post(s: &mut Sender, addr: &str, path: &str, body: Bytes) -> Bytes {
    s.ready().await.unwrap();
    let req = Request::post(path)
        .header("host", addr)
        .body(Full::new(body))
        .unwrap();
    let resp = s.send_request(req).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.into_body().collect().await.unwrap().to_bytes()
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let calls: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let wasm = std::fs::read(build_summer()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_rh-wasm"))
        .args(["serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut s = connect(&addr).await;
        post(
            &mut s,
            &addr,
            "/v1/functions?name=summer",
            Bytes::from(wasm),
        )
        .await;
        let body = Bytes::from_static(br#"{"function":"summer","args":[1,2]}"#);
        for _ in 0..200 {
            post(&mut s, &addr, "/v1/calls", body.clone()).await;
        }
        let mut lat = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            let b = post(&mut s, &addr, "/v1/calls", body.clone()).await;
            lat.push(t.elapsed());
            debug_assert!(b.windows(11).any(|w| w == br#""result":3,"#) || !b.is_empty());
        }
        let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
        println!("sequential recorded calls over HTTP ({calls}): p50 {p50:.1?}  p99 {p99:.1?}");

        let clients = 16;
        let per = calls.max(clients) / clients;
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let addr = addr.clone();
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = connect(&addr).await;
                for _ in 0..per {
                    post(&mut s, &addr, "/v1/calls", body.clone()).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{clients} concurrent clients, {} calls: {:.0} calls/s",
            per * clients,
            (per * clients) as f64 / secs
        );
    });
    let _ = daemon.kill();
    let _ = daemon.wait();
}
