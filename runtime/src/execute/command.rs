//! Command Runs: WASI command components (`wasi:cli/command`, any `fn
//! main()` built for `wasm32-wasip2`) run one after another in one Run.
//!
//! Each command gets a fresh Store, its arguments, the Run's stdout and
//! stderr (one output cap for the whole Run), and one directory of the host:
//! the Run's own `scratch/`, preopened as `/`, shared by the Run's commands
//! so one can leave files for the next. The Run's fuel budget and timeout
//! cover all of its commands together, and so does its scratch limit: the
//! folder is watched while the commands run (see `disk`), and a Run whose
//! folder grows past the limit ends in `error` (kind `disk_limit`), its
//! files kept as they were. A non-zero exit ends the Run in `error` (kind
//! `exit_code`) and skips the rest, unless `keep_going`.

use super::function::{Cancel, Job, Outcome, classify};
use super::host::{ArtifactCtx, OutputKind, Sink};
use super::store::{StoreBuilder, fuel_used};
use crate::Error;
use crate::config::CmdRecord;
use crate::disk::ScratchWatch;
use crate::plan::Commands;
use std::path::Path;
use wasmtime_wasi::I32Exit;

/// Run the commands in order; record each exit code in `records`.
pub(crate) async fn run(
    eng: &crate::execute::engine::RhEngine,
    commands: &Commands,
    dir: &Path,
    job: Job<'_>,
    cancel: &Cancel,
    records: &mut [CmdRecord],
) -> Outcome {
    let scratch = dir.join("scratch");
    let out = Sink::new(
        job.stdout,
        OutputKind::Stdout,
        job.budget.clone(),
        job.observer.clone(),
    );
    let err = Sink::new(job.stderr, OutputKind::Stderr, job.budget, job.observer);
    let mut artifacts = job.artifacts;
    let limits = job.limits;
    let deadline = tokio::time::Instant::now() + limits.timeout();
    let budget = limits.fuel.unwrap_or(u64::MAX);
    let mut consumed: u64 = 0;
    let mut codes: Vec<Option<i32>> = vec![None; commands.cmds.len()];
    let mut failed: Vec<String> = Vec::new();
    let finish = |result, consumed, artifacts: ArtifactCtx| Outcome {
        result,
        fuel_consumed: consumed,
        upstream: artifacts.upstream,
        downstream: artifacts.downstream,
    };
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        return finish(Err(Error::io("create folder", &scratch, e)), 0, artifacts);
    }
    let watch = limits
        .scratch
        .map(|limit| ScratchWatch::start(&scratch, limit));
    let disk_limit = || Error::DiskLimit {
        run: job.run.to_string(),
        limit: limits.scratch.unwrap_or_default(),
    };
    for (i, (spec, loaded)) in commands.cmds.iter().enumerate() {
        let Some(pre) = loaded.command.as_ref() else {
            return finish(
                Err(Error::Invalid(format!(
                    "`{}` is not a command component",
                    spec.cmd
                ))),
                consumed,
                artifacts,
            );
        };
        let mut argv = vec![spec.cmd.clone()];
        argv.extend(spec.args.iter().cloned());
        let left = budget.saturating_sub(consumed);
        let built = StoreBuilder::new(eng, limits.memory)
            .outputs(out.clone(), err.clone())
            .args(&argv)
            .fuel(left)
            .preopen(&scratch);
        let mut store = match built {
            Ok(b) => b.build(artifacts_for_next(&mut artifacts)),
            Err(e) => return finish(Err(e), consumed, artifacts),
        };
        let call = async {
            let cmd = pre.instantiate_async(&mut store).await?;
            cmd.wasi_cli_run().call_run(&mut store).await
        };
        let ended = tokio::select! {
            r = tokio::time::timeout_at(deadline, call) => r.map_err(|_| Error::Timeout {
                run: job.run.to_string(),
                timeout: limits.timeout(),
            }),
            () = cancel.cancelled() => Err(Error::Cancelled { run: job.run.to_string() }),
            () = over_limit(watch.as_ref()) => Err(disk_limit()),
        };
        consumed += fuel_used(eng, &store, left);
        artifacts = artifacts_for_next(&mut store.data_mut().artifacts);
        // A command that ended by itself is measured once more: what it
        // wrote since the watch last looked counts too.
        let stopped = matches!(
            ended,
            Err(Error::Timeout { .. } | Error::Cancelled { .. } | Error::DiskLimit { .. })
        );
        let over = match &watch {
            Some(_) if matches!(ended, Err(Error::DiskLimit { .. })) => true,
            Some(w) if !stopped => w.over_now().await,
            _ => false,
        };
        if let Some(w) = &watch
            && over
        {
            tracing::info!(
                "run {} stopped at {} bytes of scratch space",
                job.run,
                w.used()
            );
            return finish(Err(disk_limit()), consumed, artifacts);
        }
        let code = match ended {
            Ok(Ok(Ok(()))) => 0,
            Ok(Ok(Err(()))) => 1,
            Ok(Err(e)) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => exit.0,
                None => return finish(Err(classify(job.run, limits, e)), consumed, artifacts),
            },
            Err(e) => return finish(Err(e), consumed, artifacts),
        };
        codes[i] = Some(code);
        if let Some(r) = records.get_mut(i) {
            r.exit_code = Some(code);
        }
        if code != 0 {
            failed.push(format!(
                "command {} (`{}`) exited with {code}",
                i + 1,
                spec.cmd
            ));
            if !commands.keep_going {
                break;
            }
        }
    }
    let result = if failed.is_empty() {
        serde_json::to_vec(&codes).map_err(|e| Error::Invalid(e.to_string()))
    } else {
        Err(Error::ExitCode {
            run: job.run.to_string(),
            message: failed.join("; "),
        })
    };
    finish(result, consumed, artifacts)
}

/// Resolves when the watched folder is over its limit; never without a
/// watch.
async fn over_limit(watch: Option<&ScratchWatch>) {
    match watch {
        Some(w) => w.exceeded().await,
        None => std::future::pending().await,
    }
}

/// Take what a command's Store recorded of the artifacts it used, leaving
/// an empty view in its place: the next command starts where it ended.
fn artifacts_for_next(ctx: &mut ArtifactCtx) -> ArtifactCtx {
    let empty = ArtifactCtx::new(ctx.store.clone(), ctx.run.clone(), ctx.guard.clone());
    std::mem::replace(ctx, empty)
}
