//! The integration tests' workhorse: one rh-guest component with a small
//! function for each behaviour the host must get right — output capture,
//! fuel, memory and time limits, cancellation, errors and traps, artifacts
//! and lineage, and the sandbox.
//!
//! Built by the tests with
//! `cargo build --release --target wasm32-wasip2 --manifest-path tests/guests/Cargo.toml`
//! into `<target-dir>/wasm32-wasip2/release/testkit.wasm`.

use std::hint::black_box;
use std::io::Write;
use std::thread;
use std::time::Duration;

/// Prints `marker` on `lines` lines of stdout, and `err <marker>` on as many
/// lines of stderr; returns `marker`. Tells Runs' outputs apart.
#[rh_guest::function]
fn echo_marker(marker: String, lines: u32) -> String {
    for _ in 0..lines {
        println!("{marker}");
        eprintln!("err {marker}");
    }
    marker
}

/// Prints `spinning`, then computes forever without calling the host: only
/// fuel can stop it.
#[rh_guest::function]
fn spin() -> u64 {
    println!("spinning");
    let _ = std::io::stdout().flush();
    let mut x = black_box(1u64);
    loop {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
}

/// Runs `iters` iterations of arithmetic; the result depends only on
/// `iters`. Costs fuel in proportion.
#[rh_guest::function]
fn burn(iters: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iters {
        x = black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    x
}

/// Allocates `mib` MiB in 1 MiB chunks, writing to every page and keeping
/// all of it alive, printing a line per chunk; returns the MiB held.
#[rh_guest::function]
fn hog(mib: u32) -> usize {
    const CHUNK: usize = 1 << 20;
    let mut chunks = Vec::new();
    for n in 1..=mib {
        let mut chunk = vec![0u8; CHUNK];
        for page in (0..CHUNK).step_by(4096) {
            chunk[page] = n as u8;
        }
        chunks.push(black_box(chunk));
        println!("holding {n} MiB");
    }
    chunks.len()
}

/// Prints `start`, takes `mib` MiB (every page written), holds it for
/// `ms` milliseconds, prints `done`; returns the MiB held. A guest that
/// really uses its memory for a while, for the host's memory budget.
#[rh_guest::function]
fn hold(mib: u32, ms: u64) -> usize {
    println!("start");
    let _ = std::io::stdout().flush();
    let mut held = vec![0u8; (mib as usize) << 20];
    for page in (0..held.len()).step_by(4096) {
        held[page] = 1;
    }
    thread::sleep(Duration::from_millis(ms));
    println!("done");
    black_box(&held).len() >> 20
}

/// Fails with `msg`.
#[rh_guest::function]
fn fail(msg: String) -> Result<u32, String> {
    Err(msg)
}

/// Panics with `boom`, which traps the component.
#[rh_guest::function]
fn boom() -> u32 {
    panic!("boom")
}

/// Prints `sleeping`, sleeps `ms` milliseconds, prints `woke`; returns `ms`.
#[rh_guest::function]
fn sleep_ms(ms: u64) -> u64 {
    println!("sleeping");
    let _ = std::io::stdout().flush();
    thread::sleep(Duration::from_millis(ms));
    println!("woke");
    ms
}

/// Every `every_ms` milliseconds, `count` times, prints `tick <unix µs>`
/// (the wall clock when the line was written) and flushes; returns `count`.
/// Measures how long a printed line takes to reach a follower.
#[rh_guest::function]
fn ticks(count: u32, every_ms: u64) -> u32 {
    for _ in 0..count {
        thread::sleep(Duration::from_millis(every_ms));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        println!("tick {now}");
        let _ = std::io::stdout().flush();
    }
    count
}

/// Writes exactly `bytes` bytes to stdout, as lines of `x`; returns `bytes`.
#[rh_guest::function]
fn flood(bytes: u64) -> u64 {
    let mut line = [b'x'; 64];
    line[63] = b'\n';
    let mut stdout = std::io::stdout().lock();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(line.len() as u64);
        if stdout.write_all(&line[..n as usize]).is_err() {
            break;
        }
        left -= n;
    }
    let _ = stdout.flush();
    bytes - left
}

/// Returns the artifact `name` as text.
#[rh_guest::function]
fn load_art(name: String) -> Result<String, String> {
    let bytes = rh_guest::artifacts::load(&name)?;
    String::from_utf8(bytes).map_err(|_| format!("artifact `{name}` is not UTF-8"))
}

/// Saves `text` as the artifact `name`.
#[rh_guest::function]
fn save_art(name: String, text: String) -> Result<(), String> {
    rh_guest::artifacts::save(&name, text.as_bytes())
}

/// Adds two numbers.
#[rh_guest::function]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// The names of the environment variables the guest can see.
#[rh_guest::function]
fn read_env() -> Vec<String> {
    std::env::vars_os()
        .map(|(key, _)| key.to_string_lossy().into_owned())
        .collect()
}

/// Reads the file at `path`, which the sandbox should not allow.
#[rh_guest::function]
fn read_file(path: String) -> Result<String, String> {
    std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))
}
