//! `call`, `get-or-call`, `run` and `get-or-run`.
//!
//! `call` and `get-or-call` wait: the guest's output reaches the terminal as
//! it is written, then the result. `run` and `get-or-run` answer once the
//! Run is running, and the Run goes on after this command ends (on `local`
//! in a worker process: see `cluster::worker`).

use crate::cli::CallArgs;
use crate::cluster;
use crate::errors::{UsageError, code_for_kind};
use crate::output::print_json;
use crate::wire::CallMode;
use anyhow::{Context, Result};
use rh_runtime::{CallRequest, OutputKind};
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

/// Turn the command line's arguments into one JSON array or object.
pub fn parse_args(a: &CallArgs) -> Result<serde_json::Value> {
    if let Some(input) = &a.input {
        let text = if input == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading arguments from stdin")?;
            s
        } else {
            std::fs::read_to_string(input).with_context(|| format!("reading {input}"))?
        };
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| UsageError(format!("--input {input}: not JSON: {e}")))?;
        if !v.is_array() && !v.is_object() {
            return Err(UsageError(format!(
                "--input {input}: expected a JSON array or object of arguments"
            ))
            .into());
        }
        return Ok(v);
    }
    let mut out = Vec::with_capacity(a.args.len());
    for (i, raw) in a.args.iter().enumerate() {
        let v = serde_json::from_str(raw).map_err(|e| {
            UsageError(format!(
                "argument {} `{raw}` is not JSON ({e}); quote strings, e.g. '\"{raw}\"'",
                i + 1
            ))
        })?;
        out.push(v);
    }
    Ok(serde_json::Value::Array(out))
}

/// `--memory` and `--timeout` as the runtime takes them.
pub fn parse_limits(
    memory: Option<&str>,
    timeout: Option<&str>,
) -> Result<(Option<u64>, Option<std::time::Duration>)> {
    let memory = memory
        .map(|m| rh_runtime::parse_size(m).map_err(|e| UsageError(format!("--memory {e}"))))
        .transpose()?;
    let timeout = timeout
        .map(|t| rh_runtime::parse_duration(t).map_err(|e| UsageError(format!("--timeout {e}"))))
        .transpose()?;
    Ok((memory, timeout))
}

/// Hands the guest's output to this terminal as it is written, from
/// whichever cluster; with `--json`, stdout carries only the JSON answer,
/// so all of it goes to stderr.
pub fn terminal_observer(json: bool) -> rh_runtime::OutputObserver {
    Arc::new(move |kind, bytes: &[u8]| {
        if kind == OutputKind::Stdout && !json {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(bytes);
            let _ = out.flush();
        } else {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(bytes);
            let _ = err.flush();
        }
    })
}

pub fn request(a: &CallArgs) -> Result<CallRequest> {
    let r = &a.run;
    let mut req = CallRequest::new(a.function.clone(), parse_args(a)?)
        .rerun(r.rerun)
        .retries(r.retries);
    if let Some(n) = &r.run_name {
        rh_runtime::validate_run_name(n)?;
        req = req.run_name(n.clone());
    }
    if let Some(f) = r.fuel {
        req = req.fuel(f);
    }
    let (memory, timeout) = parse_limits(r.memory.as_deref(), r.timeout.as_deref())?;
    req.memory = memory;
    req.timeout = timeout;
    req.tags = r.tags()?;
    req.refresh_cache = a.refresh_cache;
    if let Some(d) = &a.cache_ttl {
        req = req.cache_ttl(
            rh_runtime::parse_duration(d).map_err(|e| UsageError(format!("--cache-ttl {e}")))?,
        );
    }
    if a.cache {
        req = req.cache(true);
    } else if a.no_cache {
        req = req.cache(false);
    }
    Ok(req)
}

pub async fn call(a: CallArgs, mode: CallMode, json: bool) -> Result<ExitCode> {
    let c = cluster::open(&a.run.cluster)?;
    let req = request(&a)?;
    let answer = c.call(req, mode, terminal_observer(json)).await?;
    if json {
        print_json(&answer);
    }
    if answer.completed() {
        if !json {
            let result = answer.result.unwrap_or_default();
            println!("{}", serde_json::to_string_pretty(&result)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !json {
        let message = answer.error_message().unwrap_or("the call failed");
        eprintln!("error: {message}");
    }
    Ok(ExitCode::from(code_for_kind(
        answer.error_kind().unwrap_or("error"),
    )))
}

pub async fn start(a: CallArgs, mode: CallMode, json: bool) -> Result<ExitCode> {
    // Open first so an unknown cluster fails here, not in a worker.
    let c = cluster::open(&a.run.cluster)?;
    let req = request(&a)?;
    let started = c.start(req, mode).await?;
    if json {
        println!("{}", serde_json::to_string(&started)?);
    } else {
        println!("{} {}", started.run_name, started.status);
    }
    Ok(ExitCode::SUCCESS)
}
