//! The cost of a recorded call next to the bare Wasmtime limit, in one run.
//!
//! `cargo bench -p rh-runtime --bench call [-- CALLS]` builds the `summer`
//! example, then times, interleaved in rounds so machine noise hits both
//! alike: (1) the bare limit, a fresh Store + instantiate from the
//! pre-linked `InstancePre` + call, nothing recorded; (2) a recorded call on
//! a local root (Run folder, config, inputs, result, stdout, stderr).
//! Prints p50/p99 of each and their ratio.

use rh_runtime::{CallRequest, EngineOptions, Runtime, RuntimeOptions};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Build a guest crate of a guest workspace; its component's path.
fn build(workspace: &str, krate: &str) -> std::path::PathBuf {
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
            krate,
            "--manifest-path",
        ])
        .arg(repo.join(workspace).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("running cargo");
    assert!(st.success(), "building {krate} failed");
    target.join(format!("wasm32-wasip2/release/{krate}.wasm"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A CPU-bound guest (~100 ms) under several metering settings, each
/// against fuel off, in interleaved rounds.
fn cpu_bound(tk: &tokio::runtime::Runtime) {
    let wasm = build("tests/guests", "testkit");
    let settings: Vec<(String, EngineOptions)> = [
        (
            "fuel off".to_string(),
            EngineOptions {
                metering: false,
                ..Default::default()
            },
        ),
        (
            "yield every 10k".to_string(),
            EngineOptions {
                fuel_yield_interval: 10_000,
                ..Default::default()
            },
        ),
        (
            "yield every 100k".to_string(),
            EngineOptions {
                fuel_yield_interval: 100_000,
                ..Default::default()
            },
        ),
        (
            "yield every 1M (default)".to_string(),
            EngineOptions::default(),
        ),
        (
            "yield every 10M".to_string(),
            EngineOptions {
                fuel_yield_interval: 10_000_000,
                ..Default::default()
            },
        ),
    ]
    .into_iter()
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let rts: Vec<Runtime> = settings
        .iter()
        .enumerate()
        .map(|(i, (_, o))| {
            let rt = Runtime::open_with(
                RuntimeOptions::new(dir.path().join(i.to_string())).engine(o.clone()),
            )
            .unwrap();
            tk.block_on(rt.deploy_file(&wasm, None)).unwrap();
            rt
        })
        .collect();
    let burn = |rt: &Runtime, iters: u64| {
        let t = Instant::now();
        tk.block_on(rt.bare_call("testkit/burn", &serde_json::json!([iters])))
            .unwrap();
        t.elapsed()
    };
    // Calibrate to ~100 ms with fuel off.
    let mut iters = 1_000_000u64;
    while burn(&rts[0], iters) < Duration::from_millis(50) {
        iters *= 2;
    }
    let per = burn(&rts[0], iters).as_secs_f64() / iters as f64;
    iters = (0.1 / per) as u64;
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); rts.len()];
    for _ in 0..7 {
        for (i, rt) in rts.iter().enumerate() {
            times[i].push(burn(rt, iters));
        }
    }
    let base = median(times[0].clone());
    println!();
    println!("CPU-bound guest, burn({iters}), median of 7:");
    for ((name, _), t) in settings.iter().zip(times) {
        let m = median(t);
        println!(
            "{:<40} {:>10.1?}   x{:.2} of fuel off",
            name,
            m,
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
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
    let wasm = build("examples", "summer");
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::open(dir.path().join("rh")).unwrap();
    let tk = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let args = serde_json::json!([1, 2]);
    tk.block_on(async {
        rt.deploy_file(&wasm, None).await.unwrap();
        // Warm-up, not measured.
        for _ in 0..200 {
            rt.bare_call("summer", &args).await.unwrap();
            rt.call(CallRequest::new("summer", args.clone()))
                .await
                .unwrap();
        }
        let (mut bare, mut rec) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
        let rounds = 10;
        for _ in 0..rounds {
            for _ in 0..calls / rounds {
                let t = Instant::now();
                rt.bare_call("summer", &args).await.unwrap();
                bare.push(t.elapsed());
            }
            for _ in 0..calls / rounds {
                let t = Instant::now();
                rt.call(CallRequest::new("summer", args.clone()))
                    .await
                    .unwrap();
                rec.push(t.elapsed());
            }
        }
        let (b50, b99) = (pct(&mut bare, 0.5), pct(&mut bare, 0.99));
        let (r50, r99) = (pct(&mut rec, 0.5), pct(&mut rec, 0.99));
        println!("calls per figure: {}", rec.len());
        println!("{:<40} {:>10} {:>10}", "figure", "p50", "p99");
        println!(
            "{:<40} {:>10.1?} {:>10.1?}",
            "bare: fresh Store + instantiate + call", b50, b99
        );
        println!(
            "{:<40} {:>10.1?} {:>10.1?}",
            "recorded call on local", r50, r99
        );
        println!(
            "ratio recorded/bare (p50): {:.2}",
            r50.as_secs_f64() / b50.as_secs_f64()
        );
    });
    if std::env::var_os("RH_BENCH_CALLS_ONLY").is_none() {
        cpu_bound(&tk);
    }
}
