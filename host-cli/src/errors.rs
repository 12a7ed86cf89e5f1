//! The CLI's own errors and its exit codes: a mistake in how a command was
//! used ([`UsageError`]), an error another process answered with
//! ([`RemoteError`]: a daemon's error body, or the local worker's answer),
//! and the one mapping of any error to an exit code and a `--json` kind.
//!
//! A leaf module: the client, the clusters, the commands and `main` all
//! import it, and it imports none of them.

use rh_runtime::Error;

/// A mistake in how the command was used (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// An error another process answered with, by kind and message: a daemon's
/// `{"error": {"kind", "message"}}`, or the worker of an asynchronous Run
/// on `local`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub kind: String,
    pub message: String,
}

/// The runtime error inside an `anyhow` chain, if there is one.
pub fn runtime_error(e: &anyhow::Error) -> Option<&Error> {
    e.chain().find_map(|c| c.downcast_ref::<Error>())
}

fn remote_error(e: &anyhow::Error) -> Option<&RemoteError> {
    e.chain().find_map(|c| c.downcast_ref::<RemoteError>())
}

/// The error's kind, for `--json` output.
pub fn error_kind(e: &anyhow::Error) -> String {
    if let Some(r) = remote_error(e) {
        return r.kind.clone();
    }
    runtime_error(e)
        .map(Error::kind)
        .unwrap_or("error")
        .to_string()
}

/// The exit code for an error kind as the runtime and the daemon name it.
pub fn code_for_kind(kind: &str) -> u8 {
    match kind {
        "out_of_fuel" | "memory_limit" | "timeout" | "cancelled" | "output_limit"
        | "disk_limit" | "output_write" | "trap" | "failed" | "interrupted" | "exit_code"
        | "python_exception" => 1,
        "bad_input" | "unknown_function" | "bad_component" | "invalid_name" | "not_found"
        | "run_exists" | "run_mismatch" | "not_finished" | "invalid" | "unauthorized"
        | "too_large" | "bad_request" | "forbidden" | "unknown_user" | "no_users" => 2,
        _ => 3,
    }
}

/// 1: a Run ended badly; 2: the request was bad; 3: anything else.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(r) = remote_error(e) {
        return code_for_kind(&r.kind);
    }
    match runtime_error(e) {
        Some(r) => code_for_kind(r.kind()),
        None if e.chain().any(|c| c.is::<UsageError>()) => 2,
        None => 3,
    }
}
