//! Printing for tools: `--json` output. A leaf module.
//!
//! Two ways, kept apart on purpose. An answer (about a Run, a deployment, a
//! share...) prints with its keys sorted at every level, as the daemon
//! writes its answers, so `--json` prints the same bytes whether the
//! cluster is `local` or a daemon. A record (a Run's `config.json`, an
//! artifact, a grant) prints in its own field order, as it is stored.

/// Print an answer as pretty JSON, keys sorted at every level.
pub fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_value(v).and_then(|v| serde_json::to_string_pretty(&v)) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: {e}"),
    }
}

/// Print a record as pretty JSON, in its own field order.
pub fn print_record(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: {e}"),
    }
}
