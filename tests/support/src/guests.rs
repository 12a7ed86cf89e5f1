//! The guests: every crate under `examples/` and `tests/guests/`, built from
//! source for `wasm32-wasip2` once per test binary.
//!
//! They are built into `<target>/guests`, the folder `make guests` uses, so
//! the test binaries of both crates and the Makefile share one build. The
//! target dir is found from the test binary's own path
//! (`<target>/<profile>/deps/<binary>`) rather than from `CARGO_TARGET_DIR`,
//! which is unset for the default `target/` and may be relative to wherever
//! cargo was started.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every guest crate, so a test can check each is used.
pub const GUESTS: &[&str] = &[
    "summer",
    "text",
    "progress",
    "pipeline",
    "wordcount",
    "cmdkit",
    "testkit",
    "raw",
    "hello_cmd",
    "escape",
];

/// The repository root.
pub fn repo() -> PathBuf {
    // This crate is `tests/support`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// The Cargo target dir the running test binary was built in.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .unwrap_or_else(|| panic!("{} is not in <target>/<profile>/deps", exe.display()))
        .to_path_buf()
}

fn guest_target() -> PathBuf {
    target_dir().join("guests")
}

static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn build_guests() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // rustup does not add a missing target by itself.
    let _ = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .output();
    for manifest in ["examples/Cargo.toml", "tests/guests/Cargo.toml"] {
        let out = Command::new(&cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(repo().join(manifest))
            .env("CARGO_TARGET_DIR", guest_target())
            .output()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "building {manifest} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(guest_target().join("wasm32-wasip2").join("release"))
}

/// The folder of the guest components, building all guests on first use.
pub fn guest_dir() -> PathBuf {
    BUILT
        .get_or_init(build_guests)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Path of a guest component, building all guests on first use.
pub fn guest(name: &str) -> PathBuf {
    assert!(GUESTS.contains(&name), "unknown guest {name}");
    let p = guest_dir().join(format!("{name}.wasm"));
    assert!(p.exists(), "{} missing", p.display());
    p
}

/// [`guest`] as a string, for command lines.
pub fn wasm(name: &str) -> String {
    guest(name).to_str().unwrap().to_string()
}
