//! `new NAME [--lang rust|python]`: a function project that builds and
//! deploys without edits, and the two commands that do it.
//!
//! A Rust project depends on `rh-guest` by path: the `guest-sdk/` of the
//! source tree this binary was built from (`cargo install --path host-cli`
//! keeps pointing there), so it needs no registry entry of its own, only
//! the crates `rh-guest` itself uses. A Python project is one file.

use crate::errors::UsageError;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `guest-sdk/` of the source tree this binary was built from.
fn guest_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.join("guest-sdk"))
        .unwrap_or_default()
}

fn rust_files(name: &str) -> Vec<(String, String)> {
    let sdk = guest_sdk();
    vec![
        (
            "Cargo.toml".into(),
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
rh-guest = {{ path = "{}" }}

[profile.release]
opt-level = "s"
codegen-units = 1
lto = true
strip = "debuginfo"

# A workspace of its own: it builds for wasm32-wasip2.
[workspace]
"#,
                sdk.display()
            ),
        ),
        (
            "src/lib.rs".into(),
            format!(
                r#"//! `{name}`: an rh-wasm function.

/// Adds two numbers.
#[rh_guest::function]
fn {name}(a: i64, b: i64) -> i64 {{
    println!("adding {{a}} and {{b}}");
    a + b
}}
"#
            ),
        ),
        (
            "README.md".into(),
            format!("# {name}\n\nAn rh-wasm function.\n"),
        ),
    ]
}

fn python_files(name: &str) -> Vec<(String, String)> {
    vec![(
        format!("{name}.py"),
        format!(
            r#""""`{name}`: an rh-wasm function."""

from rh_guest import function


@function
def {name}(a: int, b: int) -> int:
    """Adds two numbers."""
    print(f"adding {{a}} and {{b}}")
    return a + b
"#
        ),
    )]
}

pub fn new(name: &str, lang: &str) -> Result<ExitCode> {
    // A deployed name, a crate name and a Python identifier at once.
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64;
    if !ok || name == "python" {
        bail!(UsageError(format!(
            "`{name}`: a function's name is lowercase letters, digits and _, starting \
             with a letter (and not `python`, the interpreter's)"
        )));
    }
    let dir = PathBuf::from(name);
    if dir.exists() {
        bail!(UsageError(format!("{name} already exists")));
    }
    let (files, build, deploy) = match lang {
        "rust" => {
            if !guest_sdk().join("Cargo.toml").exists() {
                bail!(
                    "the rh-guest crate is not at {} any more (this rh-wasm was built \
                     from a source tree that has moved): install rh-wasm again from a clone",
                    guest_sdk().display()
                );
            }
            (
                rust_files(name),
                format!(
                    "cargo build --release --target wasm32-wasip2 --manifest-path {name}/Cargo.toml"
                ),
                format!("rh-wasm deploy {name}/target/wasm32-wasip2/release/{name}.wasm"),
            )
        }
        "python" => (
            python_files(name),
            format!("rh-wasm build {name}/{name}.py -o {name}/{name}.wasm"),
            format!("rh-wasm deploy {name}/{name}.wasm"),
        ),
        other => bail!(UsageError(format!("--lang {other}: rust or python"))),
    };
    let tmp = PathBuf::from(format!(".{name}.new-{}", std::process::id()));
    let written = (|| -> Result<()> {
        for (rel, text) in &files {
            let p = tmp.join(rel);
            std::fs::create_dir_all(p.parent().expect("a parent"))
                .with_context(|| format!("creating {}", p.display()))?;
            std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        }
        std::fs::rename(&tmp, &dir).with_context(|| format!("creating {name}"))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    println!("created {name}/ ({lang}); build and deploy it with:");
    println!("  {build}");
    println!("  {deploy}");
    println!("then: rh-wasm call {name} 1 2");
    Ok(ExitCode::SUCCESS)
}
