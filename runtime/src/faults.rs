//! Crash points for tests: with `RH_WASM_CRASH=<point>` in its environment,
//! a process aborts (as `kill -9` would end it: no destructor runs, nothing
//! is flushed) when it reaches that point. The tests use it to prove that a
//! crash at the worst moment loses nothing. Points:
//!
//! - `index-commit`: the index writer, about to commit a batch that ends a
//!   Run, after the Run's folder is whole.
//! - `gc-removing`: retention, halfway through moving a batch of Run
//!   folders out of place, before their rows leave the index.

use std::sync::OnceLock;

/// Abort the process here if the environment names this point.
pub(crate) fn crash_point(point: &str) {
    static CHOSEN: OnceLock<Option<String>> = OnceLock::new();
    let chosen = CHOSEN.get_or_init(|| std::env::var("RH_WASM_CRASH").ok());
    if chosen.as_deref() == Some(point) {
        eprintln!("rh-wasm: crashing at `{point}` (RH_WASM_CRASH)");
        std::process::abort();
    }
}
