//! The worker process behind `run` / `get-or-run` on `local`: it starts the
//! Run, answers its parent with one JSON line, and keeps executing the Run
//! after the parent has exited.

use super::call::{WorkerAnswer, WorkerRequest};
use crate::cluster;
use crate::output::exit_code;
use anyhow::{Context, Result};
use rh_runtime::CallRequest;
use std::io::Read;
use std::process::ExitCode;

pub async fn worker() -> Result<ExitCode> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the request")?;
    let w: WorkerRequest = serde_json::from_str(&input).context("decoding the request")?;
    let rt = cluster::open_local()?;
    let mut req = CallRequest::new(w.function, w.args).rerun(w.rerun);
    if let Some(n) = w.run_name {
        req = req.run_name(n);
    }
    if let Some(f) = w.fuel {
        req = req.fuel(f);
    }
    if let Some(m) = w.memory {
        req = req.memory(m);
    }
    if let Some(t) = w.timeout_ms {
        req = req.timeout(std::time::Duration::from_millis(t));
    }
    if let Some(c) = w.creator {
        req = req.creator(c);
    }
    let started = if w.get_or_run {
        rt.get_or_run(req).await
    } else {
        rt.start(req)
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
