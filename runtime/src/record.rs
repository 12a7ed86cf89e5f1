//! Record: how a Run ended, written down. The result (checked to be JSON)
//! goes to `result.json`, the record's status, times, error, fuel and
//! lineage to `config.json` (which also ends the Run in this host's
//! journal and sends its row to the index of Runs, where the result cache
//! finds it); then a completed function Run is published to the shared
//! store, and whoever waits on it is woken.

use crate::claim::Claimed;
use crate::config::{RunConfig, RunError, RunStatus};
use crate::execute::function::Outcome;
use crate::parts::Parts;
use crate::plan::Plan;
use crate::{Error, Result, Run};

/// Record the end of a claimed Run; the completed Run, or the error it
/// ended with.
pub(crate) async fn finish(
    parts: &Parts,
    plan: &Plan,
    claimed: Claimed,
    outcome: Outcome,
) -> Result<Run> {
    let Claimed {
        mut config,
        dir,
        outputs: _,
        hit,
        live,
        cache_lock,
    } = claimed;
    config.fuel_consumed = Some(outcome.fuel_consumed);
    config.upstream_artifacts = outcome.upstream;
    config.downstream_artifacts = outcome.downstream;
    config.cache_hit = hit.as_ref().map(|h| h.source());
    let mut result = outcome.result.and_then(|bytes| {
        let value =
            serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| Error::Trap {
                run: config.name.clone(),
                message: format!("the function returned bytes that are not JSON: {e}"),
            })?;
        if plan.python {
            // A command Run: each statement's exit code; no result.
            crate::python::statements_ended(&mut config, &value)?;
            return Ok((bytes, value));
        }
        parts.runs.write_result(&dir, &bytes)?;
        Ok((bytes, value))
    });
    end(&mut config, result.as_ref().map(|_| ()));
    if let Err(e) = parts.runs.finish(&config) {
        tracing::error!("recording the end of run {}: {e}", config.name);
        if result.is_ok() {
            result = Err(e);
        }
    }
    if result.is_ok()
        && hit.is_none()
        && let Some(key) = plan.cache_key()
    {
        crate::cached::publish(parts, &dir, key).await;
    }
    // The hit's copy from the shared store, and the cache key's lock, go
    // once the Run is recorded, in the index too: whoever takes the lock
    // next, in any process, finds it.
    if cache_lock.is_some() {
        parts.runs.index().sync();
    }
    drop((hit, cache_lock));
    if let Some(w) = &parts.opts.watcher {
        (w.0)(crate::RunEvent::Ended {
            config: &config,
            cached: plan.cache,
            output_bytes: live.budget.written(),
        });
    }
    let mut run = Run::from_parts(dir, config);
    let result = result.map(|(bytes, value)| run.set_result(bytes, value));
    parts.inflight.end(run.name(), live, || run.clone());
    result.map(|()| run)
}

/// Set the record's end: its time, its status, and why it failed.
fn end(config: &mut RunConfig, result: std::result::Result<(), &Error>) {
    config.end_time = Some(crate::names::now_rfc3339());
    let e = match result {
        Ok(()) => {
            config.status = RunStatus::Completed;
            return;
        }
        Err(e) => e,
    };
    config.status = if matches!(e, Error::Cancelled { .. }) {
        RunStatus::Cancelled
    } else {
        RunStatus::Error
    };
    let message = match e {
        Error::Failed { message, .. }
        | Error::PythonException { message, .. }
        | Error::ExitCode { message, .. }
        | Error::Trap { message, .. }
        | Error::OutputWrite { message, .. }
        | Error::BadInput { message } => message.clone(),
        Error::Cancelled { .. } => "cancelled on request".into(),
        // The record is read by clients: no host path in it.
        Error::Io { op, source, .. } => {
            format!("the host failed to {op} one of its files ({source})")
        }
        other => other.to_string(),
    };
    config.error = Some(RunError {
        kind: e.kind().to_string(),
        message,
    });
}
