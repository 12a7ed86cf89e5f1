//! The helpers of the CLI and daemon tests: what `rh-test-support` shares
//! with the runtime's tests (guests, temp dirs, Run folders, waiting), and
//! on top of it what needs the real `rh-wasm` binary: a runner for it, a
//! daemon on a real port ([`Daemon`]) and an S3 server ([`S3`]).

mod browser;
mod daemon;
mod nats;
mod s3;

pub use browser::Browser;
pub use daemon::Daemon;
pub use nats::Hosts;
pub use rh_test_support::*;
pub use s3::{S3, TEAM_KEY, cli, published, run, shared_daemon};

use std::path::Path;
use std::process::{Command, Output};

/// The `rh-wasm` binary under test.
pub const RH: &str = env!("CARGO_BIN_EXE_rh-wasm");

/// Run the CLI in `dir`.
pub fn rh(dir: &Path, args: &[&str]) -> Output {
    Command::new(RH)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// Run the CLI and insist it succeeds; its stdout.
pub fn rh_ok(dir: &Path, args: &[&str]) -> String {
    succeeded(rh(dir, args), &format!("rh-wasm {args:?}"))
}

/// Run the CLI and insist it fails with `code`; its stderr.
pub fn rh_err(dir: &Path, args: &[&str], code: i32) -> String {
    failed(rh(dir, args), code, &format!("rh-wasm {args:?}"))
}

/// The Run names of a page of search (`{"runs": [..], "next_cursor"}`).
pub fn page_names(page: &serde_json::Value) -> Vec<String> {
    page["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("no runs in {page}"))
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

/// Deploy a guest on `local` in `dir` under its own name.
pub fn deploy(dir: &Path, name: &str) -> String {
    rh_ok(dir, &["deploy", &wasm(name)])
}

/// The hex digits of the SHA-256 of `bytes`, as the runtime computes it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    rh_runtime::digest_of(bytes)
        .trim_start_matches("sha256:")
        .to_string()
}
