//! `call`, `get-or-call`, `run` and `get-or-run`.
//!
//! Synchronous calls run in this process: the guest's output is handed to
//! the terminal as it is written. Asynchronous ones on `local` run in a
//! detached worker process (`rh-wasm __worker`), so the Run outlives this
//! command; the worker answers with one JSON line once the Run is running.

use crate::cli::CallArgs;
use crate::client::Client;
use crate::cluster::{self, Target};
use crate::errors::UsageError;
use crate::output::print_json;
use crate::wire::{CallBody, CallMode, FRAME_END, FRAME_STDERR, FRAME_STDOUT, FrameReader};
use anyhow::{Context, Result};
use hyper::Method;
use rh_runtime::{CallRequest, OutputKind, Run};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Call,
    GetOrCall,
}

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

/// Hands the guest's output to this terminal as it is written; with
/// `--json`, stdout carries only the JSON answer, so all of it goes to
/// stderr.
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
    let mut req = CallRequest::new(a.function.clone(), parse_args(a)?).rerun(r.rerun);
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
    if a.cache {
        req = req.cache(true);
    } else if a.no_cache {
        req = req.cache(false);
    }
    Ok(req)
}

pub async fn call(a: CallArgs, mode: Mode, json: bool) -> Result<ExitCode> {
    let rt = match cluster::open(&a.run.cluster)? {
        Target::Local(rt) => rt,
        Target::Remote(c) => return call_remote(&c, &a, mode, json).await,
    };
    let req = request(&a)?.observer(terminal_observer(json));
    let me = cluster::caller(&a.run.cluster);
    let outcome = match mode {
        Mode::Call if req.cache.unwrap_or(rt.caches_by_default()) => rt.call(&me, req).await,
        // Ctrl-C cancels the Run, so it ends recorded as `cancelled`.
        Mode::Call => match rt.start(&me, req).await {
            Ok(h) => {
                let run = tokio::select! {
                    r = h.wait() => r,
                    _ = tokio::signal::ctrl_c() => h.cancel().await,
                };
                run.and_then(|run| match run.status() {
                    rh_runtime::RunStatus::Completed => Ok(run),
                    _ => Err(run.error()),
                })
            }
            Err(e) => Err(e),
        },
        Mode::GetOrCall => rt.get_or_call(&me, req).await,
    };
    match outcome {
        Ok(run) => {
            let result = run.result()?;
            if json {
                print_json(&answer(&run, Some(&result), None));
            } else {
                println!("{}", serde_json::to_string_pretty(&result)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let run = e.run().and_then(|n| rt.run(&me, n).ok());
            match (json, run) {
                (true, Some(run)) => {
                    print_json(&answer(&run, None, Some(&e)));
                    Ok(ExitCode::from(crate::errors::exit_code(&e.into())))
                }
                _ => Err(e.into()),
            }
        }
    }
}

pub fn answer(
    run: &Run,
    result: Option<&serde_json::Value>,
    error: Option<&rh_runtime::Error>,
) -> serde_json::Value {
    let c = run.config();
    let mut v = serde_json::json!({
        "run_name": c.name,
        "status": c.status,
        "path": run.path(),
    });
    if let Some(r) = result {
        v["result"] = r.clone();
    }
    if let Some(e) = error {
        v["error"] = serde_json::json!({ "kind": e.kind(), "message": e.to_string() });
    }
    v
}

/// The worker's one-line answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkerAnswer {
    pub run_name: Option<String>,
    pub status: Option<String>,
    pub error: Option<String>,
    pub exit_code: Option<u8>,
}

pub async fn start(a: CallArgs, get_or_run: bool, json: bool) -> Result<ExitCode> {
    // Open first so an unknown cluster fails here, not in the worker.
    let rt = cluster::open(&a.run.cluster)?;
    let req = request(&a)?;
    let me = cluster::caller(&a.run.cluster);
    let mode = if get_or_run {
        CallMode::GetOrRun
    } else {
        CallMode::Run
    };
    if let Target::Remote(c) = &rt {
        let body = CallBody::from_request(&req, &me, mode);
        let v = c
            .json(
                Method::POST,
                "/v1/calls",
                Some(&serde_json::to_value(&body)?),
            )
            .await?;
        if json {
            println!("{v}");
        } else {
            println!(
                "{} {}",
                v["run_name"].as_str().unwrap_or("?"),
                v["status"].as_str().unwrap_or("?")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let wreq = CallBody::from_request(&req, &me, mode);
    drop(rt);
    let exe = std::env::current_exe().context("finding the rh-wasm executable")?;
    let mut child = std::process::Command::new(exe)
        .arg("__worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C here does not reach the Run.
        .process_group(0)
        .spawn()
        .context("starting the worker process")?;
    {
        let mut stdin = child.stdin.take().context("worker stdin")?;
        stdin.write_all(&serde_json::to_vec(&wreq)?)?;
    }
    let stdout = child.stdout.take().context("worker stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the worker's answer")?;
    let ans: WorkerAnswer = serde_json::from_str(&line)
        .with_context(|| format!("the worker gave no answer (got {line:?})"))?;
    if let Some(err) = ans.error {
        if json {
            println!("{}", serde_json::json!({ "error": err }));
        } else {
            eprintln!("error: {err}");
        }
        return Ok(ExitCode::from(ans.exit_code.unwrap_or(3)));
    }
    let name = ans.run_name.unwrap_or_default();
    let status = ans.status.unwrap_or_default();
    if json {
        println!(
            "{}",
            serde_json::json!({ "run_name": name, "status": status })
        );
    } else {
        println!("{name} {status}");
    }
    Ok(ExitCode::SUCCESS)
}

use std::os::unix::process::CommandExt;

/// A call on a daemon: its output arrives in frames as the guest writes,
/// then the answer.
async fn call_remote(c: &Client, a: &CallArgs, mode: Mode, json: bool) -> Result<ExitCode> {
    let req = request(a)?;
    let me = cluster::caller(&a.run.cluster);
    let mode = match mode {
        Mode::Call => CallMode::Call,
        Mode::GetOrCall => CallMode::GetOrCall,
    };
    let body = CallBody::from_request(&req, &me, mode);
    let resp = c
        .send(
            Method::POST,
            "/v1/calls",
            crate::wire::full(serde_json::to_vec(&body)?),
            "application/json",
        )
        .await?;
    let end = read_stream(resp, json).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&end)?);
    }
    if end["status"] == "completed" {
        if !json {
            println!("{}", serde_json::to_string_pretty(&end["result"])?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let kind = end["error"]["kind"].as_str().unwrap_or("error");
    if !json {
        eprintln!(
            "error: {}",
            end["error"]["message"]
                .as_str()
                .unwrap_or("the call failed")
        );
    }
    Ok(ExitCode::from(crate::errors::code_for_kind(kind)))
}

/// Print a streaming answer's output frames as they come; the final answer.
pub async fn read_stream(
    resp: hyper::Response<hyper::body::Incoming>,
    json: bool,
) -> Result<serde_json::Value> {
    let mut incoming = resp.into_body();
    let mut frames = FrameReader::default();
    loop {
        let Some(frame) = http_body_util::BodyExt::frame(&mut incoming).await else {
            anyhow::bail!("the daemon closed the stream before answering");
        };
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        frames.push(&data);
        while let Some((kind, payload)) = frames.next_frame() {
            match kind {
                FRAME_STDOUT if !json => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&payload);
                    let _ = out.flush();
                }
                FRAME_STDOUT | FRAME_STDERR => {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(&payload);
                    let _ = err.flush();
                }
                FRAME_END => return Ok(serde_json::from_slice(&payload)?),
                _ => {}
            }
        }
    }
}
