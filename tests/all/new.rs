//! `rh-wasm new`: a Rust and a Python project that build and deploy without
//! edits, with the commands it prints; bad names refused.

use crate::util::*;
use std::path::Path;

/// The commands `new` printed, to build and to deploy.
fn printed(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter_map(|l| l.strip_prefix("  "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn run_printed(dir: &Path, cmd: &[String], target: &Path) {
    let (prog, args) = cmd.split_first().unwrap();
    let prog = if prog == "rh-wasm" { RH } else { prog.as_str() };
    let out = std::process::Command::new(prog)
        .args(args)
        .current_dir(dir)
        // The guests' target dir: the SDK's dependencies are built there.
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_new_rust_function_builds_deploys_and_answers_without_edits() {
    let d = tmp();
    let dir = d.path();
    let out = rh_ok(dir, &["new", "adder"]);
    let cmds = printed(&out);
    assert_eq!(cmds.len(), 2, "{out}");
    assert_eq!(cmds[0][0], "cargo", "{out}");
    let target = target_dir().join("guests");
    // The printed build puts the component under the project's target/;
    // with a shared target dir, deploy from there instead.
    run_printed(dir, &cmds[0], &target);
    let wasm = target.join("wasm32-wasip2/release/adder.wasm");
    assert!(wasm.exists(), "{}", wasm.display());
    rh_ok(dir, &["deploy", wasm.to_str().unwrap()]);
    let out = rh_ok(dir, &["call", "adder", "1", "2"]);
    assert!(out.ends_with("adding 1 and 2\n3\n"), "{out}");
}

#[test]
fn a_new_python_function_builds_deploys_and_answers_without_edits() {
    let d = tmp();
    let dir = d.path();
    let out = rh_ok(dir, &["new", "py_adder", "--lang", "python"]);
    let cmds = printed(&out);
    assert_eq!(cmds.len(), 2, "{out}");
    for c in &cmds {
        run_printed(dir, c, &target_dir().join("guests"));
    }
    let out = rh_ok(dir, &["call", "py_adder", "1", "2"]);
    assert!(out.ends_with("adding 1 and 2\n3\n"), "{out}");
}

#[test]
fn new_refuses_bad_names_and_existing_folders() {
    let d = tmp();
    let dir = d.path();
    for bad in ["Adder", "1x", "a-b", "python", "../x"] {
        let err = rh_err(dir, &["new", bad], 2);
        assert!(err.contains("lowercase letters"), "{bad}: {err}");
    }
    std::fs::create_dir(dir.join("taken")).unwrap();
    let err = rh_err(dir, &["new", "taken", "--lang", "python"], 2);
    assert!(err.contains("taken already exists"), "{err}");
    assert!(
        std::fs::read_dir(dir.join("taken"))
            .unwrap()
            .next()
            .is_none()
    );
    let err = rh_err(dir, &["new", "x", "--lang", "go"], 2);
    assert!(err.contains("go"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}
