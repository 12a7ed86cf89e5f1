//! The worker process behind `run` / `get-or-run` on `local`: it starts the
//! Run, answers its parent with one JSON line, and keeps executing the Run
//! after the parent has exited.

use super::call::WorkerAnswer;
use crate::cluster;
use crate::errors::exit_code;
use crate::wire::{CallBody, CallMode};
use anyhow::{Context, Result};
use std::io::Read;
use std::process::ExitCode;

pub async fn worker() -> Result<ExitCode> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the request")?;
    let w: CallBody = serde_json::from_str(&input).context("decoding the request")?;
    let rt = cluster::open_local()?;
    let (req, me) = (w.to_request(), w.caller(&rh_runtime::Caller::host()));
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
            exit_code: None,
        },
        Err(e) => WorkerAnswer {
            run_name: None,
            status: None,
            error: Some(e.to_string()),
            exit_code: Some(exit_code(&e.into())),
        },
    };
    // One line: the parent reads exactly one.
    println!("{}", serde_json::to_string(&answer)?);
    // Nothing more may go to the parent's pipe; it is gone soon.
    rt.wait_all().await;
    Ok(ExitCode::SUCCESS)
}
