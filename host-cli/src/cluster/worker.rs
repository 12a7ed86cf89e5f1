//! The worker process behind `run` and `get-or-run` on `local`: how a Run
//! started on `local` outlives the command that started it, as one started
//! on a daemon does.
//!
//! [`start`] runs `rh-wasm __worker` (hidden) detached, in its own process
//! group so a Ctrl-C of the command does not reach the Run, and writes it
//! the call as a `wire::CallBody`. The worker ([`serve`]) starts the Run,
//! answers with one JSON line once it is running, and keeps executing it
//! after the command has read that line and exited.

use super::open_local;
use crate::errors::RemoteError;
use crate::wire::{CallBody, CallMode, ErrorInfo, Started};
use anyhow::{Context, Result};
use rh_runtime::Caller;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{ExitCode, Stdio};

/// The worker's one-line answer: the Run, or why it could not start.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerAnswer {
    run_name: Option<String>,
    status: Option<String>,
    error: Option<ErrorInfo>,
}

/// Start `body`'s Run in a worker process; its answer, or the error it
/// gave (a [`RemoteError`] of the runtime error's kind).
pub fn start(body: &CallBody) -> Result<Started> {
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
        stdin.write_all(&serde_json::to_vec(body)?)?;
    }
    let stdout = child.stdout.take().context("worker stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the worker's answer")?;
    let answer: WorkerAnswer = serde_json::from_str(&line)
        .with_context(|| format!("the worker gave no answer (got {line:?})"))?;
    if let Some(e) = answer.error {
        return Err(RemoteError {
            kind: e.kind,
            message: e.message,
        }
        .into());
    }
    Ok(Started {
        run_name: answer.run_name.unwrap_or_default(),
        status: answer.status.unwrap_or_default(),
    })
}

/// The worker: read the call, start its Run, answer, and execute the Run
/// to its end.
pub async fn serve() -> Result<ExitCode> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the request")?;
    let w: CallBody = serde_json::from_str(&input).context("decoding the request")?;
    let rt = open_local()?;
    let (req, me) = (w.to_request(), w.caller(&Caller::host()));
    let started = if w.mode == CallMode::GetOrRun {
        rt.get_or_run(&me, req).await
    } else {
        rt.start(&me, req).await
    };
    let answer = match started {
        Ok(h) => WorkerAnswer {
            run_name: Some(h.name().to_string()),
            status: h.status().ok().map(|s| s.to_string()),
            error: None,
        },
        Err(e) => WorkerAnswer {
            run_name: None,
            status: None,
            error: Some(ErrorInfo::of(&e)),
        },
    };
    // One line: the parent reads exactly one.
    println!("{}", serde_json::to_string(&answer)?);
    // Nothing more may go to the parent's pipe; it is gone soon.
    rt.wait_all().await;
    Ok(ExitCode::SUCCESS)
}
