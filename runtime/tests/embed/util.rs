//! The helpers of the library's tests: what `rh-test-support` shares with
//! the CLI's tests, and a runtime on a test's temp dir with guests deployed
//! through it.

pub use rh_test_support::*;

use rh_runtime::{Caller, RunHandle, Runtime};
use std::path::Path;
use std::time::{Duration, Instant};

/// An embedded runtime on `dir/rh`, the local cluster's root there.
pub fn runtime(dir: &Path) -> Runtime {
    Runtime::open(dir.join("rh")).unwrap()
}

/// Deploy a guest under its own name, as the embedding program.
pub fn deploy(rt: &Runtime, name: &str) {
    deploy_as(rt, &Caller::host(), name);
}

/// Deploy a guest under its own name, as `caller`.
pub fn deploy_as(rt: &Runtime, caller: &Caller, name: &str) {
    tokio()
        .block_on(rt.deploy_file(caller, &guest(name), None))
        .unwrap_or_else(|e| panic!("deploying {name}: {e}"));
}

/// Wait until a running Run's stdout holds `text`: its guest has got that
/// far.
pub async fn printed(h: &RunHandle, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&h.stdout().unwrap()).contains(text) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {text:?} in the stdout of {}",
            h.name()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
