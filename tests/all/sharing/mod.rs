//! Users and sharing on a real daemon (`serve --users`): each user sees and
//! changes only what they own or were given; every refusal is checked, and
//! that it changed nothing.

use crate::util::*;
use serde_json::{Value, json};

pub(super) fn team() -> Daemon {
    Daemon::start_users(&[
        ("alice", false),
        ("bob", false),
        ("carol", false),
        ("root", true),
    ])
}

/// `rh-wasm --json ARGS --cluster cpu-USER` as JSON.
pub(super) fn as_json(d: &Daemon, user: &str, args: &[&str]) -> Value {
    let a = [&["--json"], args].concat();
    let out = succeeded(d.rh_as(user, &a), &format!("rh-wasm {a:?} as {user}"));
    serde_json::from_str(&out).unwrap()
}

/// `rh-wasm ARGS --cluster cpu-USER`, which fails with exit code 2; its
/// stderr.
pub(super) fn refused(d: &Daemon, user: &str, args: &[&str]) -> String {
    failed(
        d.rh_as(user, args),
        2,
        &format!("rh-wasm {args:?} as {user}"),
    )
}

pub(super) fn deploy_testkit(d: &Daemon, user: &str) {
    let p = guest("testkit");
    d.rh_ok(&[
        "deploy",
        p.to_str().unwrap(),
        "--cluster",
        &format!("cpu-{user}"),
    ]);
}

pub(super) fn run_names(d: &Daemon, user: &str) -> Vec<String> {
    let (status, v) = d.http_as(user, "GET", "/v1/runs", &Value::Null);
    assert_eq!(status, 200, "{v}");
    assert!(v["next_cursor"].is_null(), "{v}");
    let mut names: Vec<String> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

mod access;
mod requests;
