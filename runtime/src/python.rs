//! Python statements as a Run (`run_python`): the interpreter is a function
//! component built from `guest-sdk/python/rh_python.py` and deployed under
//! the reserved name [`NAME`]. Its one function, `run(statements,
//! keep_going)`, runs the statements in order in one namespace and answers
//! each one's exit code; the Run is recorded as a command Run whose `cmds`
//! are the statements (`{"cmd": "python", "args": [statement],
//! "exit_code"}`), and a statement that raised ends it `python_exception`.

use crate::config::RunConfig;
use crate::functions::ComponentInfo;
use crate::{Error, Result};

/// The name the interpreter is deployed under, and no other component.
pub const NAME: &str = "python";

/// The most statements one Run takes.
pub const MAX_STATEMENTS: usize = 10_000;

pub(crate) fn not_installed() -> Error {
    Error::Invalid(
        "no Python interpreter on this cluster: install it with `rh-wasm python install`".into(),
    )
}

pub(crate) fn check_statements(statements: &[String]) -> Result<()> {
    if statements.is_empty() {
        return Err(Error::Invalid("no Python statements to run".into()));
    }
    if statements.len() > MAX_STATEMENTS {
        return Err(Error::Invalid(format!(
            "{} statements: at most {MAX_STATEMENTS} a Run",
            statements.len()
        )));
    }
    if let Some(i) = statements.iter().position(|s| s.trim().is_empty()) {
        return Err(Error::Invalid(format!("statement {} is empty", i + 1)));
    }
    Ok(())
}

/// Whether a component is the interpreter (the only one that may be
/// deployed as [`NAME`]): one function, `run(statements, keep_going)`.
pub(crate) fn is_interpreter(info: &ComponentInfo) -> bool {
    matches!(info.functions.as_slice(), [f] if f.name == "run" && f.params == ["statements", "keep_going"])
}

/// Record each statement's exit code from the interpreter's answer (one
/// entry per statement: `{"exit_code": 0|1, "error": "..."}`, `null` for
/// one skipped after a failure); the first failure is the Run's error.
pub(crate) fn statements_ended(config: &mut RunConfig, answer: &serde_json::Value) -> Result<()> {
    let bad = || Error::Trap {
        run: config.name.clone(),
        message: "the Python interpreter answered something else than one entry per statement"
            .into(),
    };
    let entries = answer.as_array().ok_or_else(bad)?;
    if entries.len() != config.cmds.len() {
        return Err(bad());
    }
    let mut failure = None;
    for (i, (cmd, e)) in config.cmds.iter_mut().zip(entries).enumerate() {
        if e.is_null() {
            continue;
        }
        let code = e["exit_code"].as_i64().ok_or_else(bad)?;
        cmd.exit_code = Some(code as i32);
        if code != 0 && failure.is_none() {
            let why = e["error"].as_str().unwrap_or("the statement failed");
            failure = Some(format!("statement {}: {why}", i + 1));
        }
    }
    match failure {
        Some(message) => Err(Error::PythonException {
            run: config.name.clone(),
            message,
        }),
        None => Ok(()),
    }
}
