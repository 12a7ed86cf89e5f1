//! `exec`: a command Run. Command files are stored by digest (on a daemon,
//! uploaded first); deployed names are used as they are.

use crate::cli::ExecArgs;
use crate::cluster::{self, Target};
use crate::errors::UsageError;
use crate::output::print_json;
use crate::wire::ExecBody;
use anyhow::Result;
use hyper::Method;
use rh_runtime::{CmdSpec, ExecRequest, RunStatus};
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
    let target = cluster::open(&a.run.cluster)?;
    let mut specs = Vec::new();
    for line in &lines {
        let cmd = line[0].clone();
        let component = if is_file(&cmd) {
            let bytes =
                std::fs::read(&cmd).map_err(|e| UsageError(format!("cannot read {cmd}: {e}")))?;
            match &target {
                Target::Local(rt) => {
                    rt.add_component(&rh_runtime::Caller::host(), &bytes)
                        .await?
                        .digest
                }
                Target::Remote(c) => {
                    let resp = c
                        .send(
                            Method::POST,
                            "/v1/components",
                            crate::wire::full(bytes),
                            "application/wasm",
                        )
                        .await?;
                    let b = http_body_util::BodyExt::collect(resp.into_body())
                        .await?
                        .to_bytes();
                    let v: serde_json::Value = serde_json::from_slice(&b)?;
                    v["digest"].as_str().unwrap_or_default().to_string()
                }
            }
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
    if let Some(s) = &a.scratch_limit {
        let bytes =
            rh_runtime::parse_size(s).map_err(|e| UsageError(format!("--scratch-limit {e}")))?;
        req = req.scratch(bytes);
    }
    let me = cluster::caller(&a.run.cluster);
    let end = match target {
        Target::Local(rt) => {
            let req = req.observer(super::call::terminal_observer(json));
            let h = rt.start_exec(&me, req).await?;
            let run = tokio::select! {
                r = h.wait() => r?,
                _ = tokio::signal::ctrl_c() => h.cancel().await?,
            };
            super::run_answer(&run)?
        }
        Target::Remote(c) => {
            let body = ExecBody::from_request(&req, &me, true);
            let resp = c
                .send(
                    Method::POST,
                    "/v1/exec",
                    crate::wire::full(serde_json::to_vec(&body)?),
                    "application/json",
                )
                .await?;
            super::call::read_stream(resp, json).await?
        }
    };
    if json {
        print_json(&end);
    }
    if end["status"] == RunStatus::Completed.as_str() {
        if !json {
            println!("{}", end["result"]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !json {
        eprintln!(
            "error: {}",
            end["error"]["message"].as_str().unwrap_or("the Run failed")
        );
    }
    Ok(ExitCode::from(crate::errors::code_for_kind(
        end["error"]["kind"].as_str().unwrap_or("error"),
    )))
}
