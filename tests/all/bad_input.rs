//! Every kind of bad input gets a clear one-line error, exit status 2, and
//! leaves what is stored exactly as it was.

use crate::util::*;
use std::path::Path;

/// Run `args`, expect exit 2 with `needle` in the message, and no change.
fn refused(dir: &Path, args: &[&str], needle: &str) {
    let before = snapshot(&dir.join("rh"));
    let err = rh_err(dir, args, 2);
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err:?}"
    );
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    let after = snapshot(&dir.join("rh"));
    assert_eq!(
        before.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        after.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        "{args:?} changed the stored files"
    );
    assert!(before == after, "{args:?} changed stored bytes");
}

#[test]
fn each_bad_input_is_refused_and_changes_nothing() {
    let d = tmp();
    let dir = d.path();
    deploy(dir, "summer");
    deploy(dir, "text");
    rh_ok(dir, &["call", "summer", "1", "2", "--run-name", "done"]);

    // Not a component: random bytes, and a core module.
    std::fs::write(dir.join("junk.wasm"), b"definitely not wasm").unwrap();
    refused(dir, &["deploy", "junk.wasm"], "not WebAssembly");
    std::fs::write(dir.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    refused(
        dir,
        &["deploy", "core.wasm"],
        "core WebAssembly module, not a component",
    );
    // A component that implements no world we run.
    std::fs::write(dir.join("empty.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
    refused(dir, &["deploy", "empty.wasm"], "implements neither world");
    // A command deployed is fine, but calling it as a function is not.
    let cmd = guest("hello_cmd");
    rh_ok(dir, &["deploy", cmd.to_str().unwrap()]);
    refused(dir, &["call", "hello_cmd"], "is a command component");
    refused(dir, &["deploy", "missing.wasm"], "missing.wasm");

    // Unknown function / cluster.
    refused(
        dir,
        &["call", "nope", "1"],
        "no deployed function named `nope`",
    );
    refused(
        dir,
        &["call", "text/nope", "\"x\""],
        "unknown function `text/nope`",
    );
    refused(dir, &["call", "text", "\"x\""], "exports several functions");
    refused(
        dir,
        &["call", "summer", "1", "2", "--cluster", "cpu"],
        "unknown cluster `cpu`",
    );
    refused(dir, &["runs", "cpu"], "unknown cluster `cpu`");

    // Arguments that do not decode, or do not fit.
    refused(
        dir,
        &["call", "summer", "1", "two"],
        "argument 2 `two` is not JSON",
    );
    refused(dir, &["call", "summer", "1"], "takes 2 arguments, got 1");
    refused(dir, &["call", "summer", "--input", "-"], "not JSON");
    std::fs::write(dir.join("named.json"), r#"{"a": 1, "c": 2}"#).unwrap();
    refused(
        dir,
        &["call", "summer", "--input", "named.json"],
        "unknown argument `c`",
    );
    refused(
        dir,
        &["call", "summer", "1", "2", "--memory", "lots"],
        "not a size",
    );
    refused(
        dir,
        &["call", "summer", "1", "2", "--timeout", "5"],
        "needs a unit",
    );
    refused(
        dir,
        &["call", "summer", "1", "2", "--memory", "8GiB"],
        "over the maximum",
    );

    // Invalid run names.
    for bad in [
        "../evil",
        "a b",
        "..",
        ".",
        "x/y",
        &"n".repeat(129),
        ".hidden",
    ] {
        refused(
            dir,
            &["call", "summer", "1", "2", "--run-name", bad],
            "invalid run name",
        );
    }
    // Names starting with `.` would be hidden from every list: refused for
    // functions and artifacts too, and nothing is stored.
    refused(
        dir,
        &[
            "deploy",
            guest("summer").to_str().unwrap(),
            "--name",
            ".hidden",
        ],
        "may not start with `.`",
    );
    refused(dir, &["show", "local", "../rh"], "invalid run name");
    // A name in use.
    refused(
        dir,
        &["call", "summer", "1", "2", "--run-name", "done"],
        "already exists",
    );
    refused(dir, &["show", "local", "never"], "no run named `never`");
}

#[test]
fn bad_argument_types_are_named_by_the_guest() {
    let d = tmp();
    deploy(d.path(), "summer");
    let err = rh_err(
        d.path(),
        &["call", "summer", "1", "\"two\"", "--run-name", "bt"],
        2,
    );
    assert!(err.contains("`b`"), "{err}");
    let c = config(d.path(), "bt");
    assert_eq!(c["error"]["kind"], "bad_input");
}
