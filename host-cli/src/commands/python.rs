//! `python install` (the sandboxed interpreter, built from
//! `guest-sdk/python/rh_python.py` and deployed as `python`) and
//! `run-python` (statements as one command Run).

use super::build::componentize;
use crate::cli::RunPythonArgs;
use crate::cluster;
use crate::errors::{UsageError, code_for_kind};
use crate::output::print_json;
use anyhow::{Context, Result};
use rh_runtime::CallRequest;
use std::io::Read;
use std::process::ExitCode;

const INTERPRETER: &str = include_str!("../../../guest-sdk/python/rh_python.py");

pub async fn install(cluster_name: &str, json: bool) -> Result<ExitCode> {
    let c = cluster::open(cluster_name)?;
    let work = tempfile::tempdir().context("making a folder to build in")?;
    std::fs::write(work.path().join("rh_python.py"), INTERPRETER)?;
    let out = work.path().join("python.wasm");
    eprintln!("building the Python interpreter ...");
    componentize("rh_python", work.path(), &out)?;
    let bytes = std::fs::read(&out).context("reading the interpreter")?;
    eprintln!(
        "deploying it on `{cluster_name}` as `{}` ...",
        rh_runtime::python::NAME
    );
    let info = c.deploy(rh_runtime::python::NAME, bytes).await?;
    if json {
        print_json(&info);
    } else {
        println!(
            "installed the Python interpreter on `{cluster_name}` as `{}` ({})",
            rh_runtime::python::NAME,
            info.digest
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn statements(a: &RunPythonArgs) -> Result<Vec<String>> {
    let read_stdin = || -> Result<String> {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading statements from stdin")?;
        Ok(s)
    };
    let list = match (&a.file, a.statements.as_slice()) {
        (Some(f), _) if f.as_os_str() == "-" => vec![read_stdin()?],
        (Some(f), _) => vec![
            std::fs::read_to_string(f)
                .map_err(|e| UsageError(format!("--file {}: {e}", f.display())))?,
        ],
        (None, [one]) if one == "-" => vec![read_stdin()?],
        (None, list) => list.to_vec(),
    };
    if list.is_empty() {
        return Err(UsageError(
            "no statements: rh-wasm run-python -- 'print(1)' .. (or --file F, or - for stdin)"
                .into(),
        )
        .into());
    }
    Ok(list)
}

pub async fn run_python(a: RunPythonArgs, json: bool) -> Result<ExitCode> {
    let list = statements(&a)?;
    if let Some(n) = &a.run.run_name {
        rh_runtime::validate_run_name(n)?;
    }
    let c = cluster::open(&a.run.cluster)?;
    let mut req = CallRequest::new(rh_runtime::python::NAME, serde_json::Value::Null)
        .rerun(a.run.rerun)
        .retries(a.run.retries);
    if let Some(n) = &a.run.run_name {
        req = req.run_name(n.clone());
    }
    if let Some(f) = a.run.fuel {
        req = req.fuel(f);
    }
    let (memory, timeout) =
        super::call::parse_limits(a.run.memory.as_deref(), a.run.timeout.as_deref())?;
    req.memory = memory;
    req.timeout = timeout;
    req.tags = a.run.tags()?;
    let end = c
        .run_python(
            list,
            a.keep_going,
            req,
            super::call::terminal_observer(json),
        )
        .await?;
    if json {
        print_json(&end);
    }
    if end.completed() {
        return Ok(ExitCode::SUCCESS);
    }
    if !json {
        let message = end.error_message().unwrap_or("the Run failed");
        eprintln!("error: {message}");
    }
    Ok(ExitCode::from(code_for_kind(
        end.error_kind().unwrap_or("error"),
    )))
}
