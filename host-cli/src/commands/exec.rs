//! `exec`: a command Run. Command files are stored by digest (on a daemon,
//! uploaded first); deployed names are used as they are.

use crate::cli::ExecArgs;
use crate::cluster;
use crate::errors::{UsageError, code_for_kind};
use crate::output::print_json;
use anyhow::Result;
use rh_runtime::{CmdSpec, ExecRequest};
use std::process::ExitCode;

/// Split `a.wasm x -- b y` and `--cmd "c z"` into command lines.
fn command_lines(a: &ExecArgs) -> Result<Vec<Vec<String>>> {
    let mut lines: Vec<Vec<String>> = Vec::new();
    for part in a.cmdline.split(|w| w == "--") {
        if !part.is_empty() {
            lines.push(part.to_vec());
        }
    }
    for c in &a.cmds {
        let words: Vec<String> = c.split_whitespace().map(str::to_string).collect();
        if !words.is_empty() {
            lines.push(words);
        }
    }
    if lines.is_empty() {
        return Err(
            UsageError("exec needs a command: exec --run-name R -- CMD [ARGS..]".into()).into(),
        );
    }
    Ok(lines)
}

fn is_file(cmd: &str) -> bool {
    cmd.ends_with(".wasm") || cmd.contains('/')
}

pub async fn exec(a: ExecArgs, json: bool) -> Result<ExitCode> {
    let lines = command_lines(&a)?;
    if let Some(n) = &a.run.run_name {
        rh_runtime::validate_run_name(n)?;
    }
    let c = cluster::open(&a.run.cluster)?;
    let mut specs = Vec::new();
    for line in &lines {
        let cmd = line[0].clone();
        let component = if is_file(&cmd) {
            let bytes =
                std::fs::read(&cmd).map_err(|e| UsageError(format!("cannot read {cmd}: {e}")))?;
            c.add_component(bytes).await?
        } else {
            cmd.clone()
        };
        specs.push(CmdSpec {
            cmd,
            component,
            args: line[1..].to_vec(),
        });
    }
    let mut req = ExecRequest::new(specs)
        .keep_going(a.keep_going)
        .rerun(a.run.rerun);
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
    if let Some(s) = &a.scratch_limit {
        let bytes =
            rh_runtime::parse_size(s).map_err(|e| UsageError(format!("--scratch-limit {e}")))?;
        req = req.scratch(bytes);
    }
    let end = c.exec(req, super::call::terminal_observer(json)).await?;
    if json {
        print_json(&end);
    }
    if end.completed() {
        if !json {
            println!("{}", end.result.unwrap_or_default());
        }
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
