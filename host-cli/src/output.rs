//! Printing for people and for tools, and the mapping of errors to exit codes.

use rh_runtime::Error;

/// The runtime error inside an `anyhow` chain, if there is one.
pub fn runtime_error(e: &anyhow::Error) -> Option<&Error> {
    e.chain().find_map(|c| c.downcast_ref::<Error>())
}

/// The error's kind, for `--json` output.
pub fn error_kind(e: &anyhow::Error) -> String {
    if let Some(r) = e
        .chain()
        .find_map(|c| c.downcast_ref::<crate::client::RemoteError>())
    {
        return r.kind.clone();
    }
    runtime_error(e)
        .map(Error::kind)
        .unwrap_or("error")
        .to_string()
}

/// The exit code for an error kind as the daemon names it.
pub fn code_for_kind(kind: &str) -> u8 {
    match kind {
        "out_of_fuel" | "memory_limit" | "timeout" | "cancelled" | "output_limit"
        | "disk_limit" | "output_write" | "trap" | "failed" | "interrupted" | "exit_code" => 1,
        "bad_input" | "unknown_function" | "bad_component" | "invalid_name" | "not_found"
        | "run_exists" | "run_mismatch" | "not_finished" | "invalid" | "unauthorized"
        | "too_large" | "bad_request" | "forbidden" | "unknown_user" | "no_users" => 2,
        _ => 3,
    }
}

/// 1: a Run ended badly; 2: the request was bad; 3: anything else.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(r) = e
        .chain()
        .find_map(|c| c.downcast_ref::<crate::client::RemoteError>())
    {
        return code_for_kind(&r.kind);
    }
    match runtime_error(e) {
        Some(r) => code_for_kind(r.kind()),
        None if e.chain().any(|c| c.is::<UsageError>()) => 2,
        None => 3,
    }
}

/// A mistake in how the command was used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Print a value as pretty JSON.
pub fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: {e}"),
    }
}
