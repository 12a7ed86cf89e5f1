//! Execute: run a claimed Run's work to its end. A Run that executes guest
//! code first waits for its memory limit's share of the budget and a free
//! instance slot (its timeout starts once it has them; a cancel ends the
//! wait); then its function is called, or its commands run, in Stores made
//! by [`store::StoreBuilder`], under its limits. A cache hit executes
//! nothing: the completed Run's output is copied. The outcome goes to the
//! record step.
//!
//! - `engine`: the Wasmtime engine, its linker, and admission (slots and
//!   the memory budget); `bindings`: the WIT world's host bindings.
//! - `store`: the one builder of guest Stores.
//! - `host`: what a Store holds (WASI, limits, output sinks, artifacts).
//! - `function`, `command`: a function call, a Run of commands.

pub(crate) mod bindings;
pub(crate) mod command;
pub(crate) mod engine;
pub(crate) mod function;
pub(crate) mod host;
pub(crate) mod store;

use crate::claim::Claimed;
use crate::execute::function::{Job, Outcome};
use crate::execute::host::ArtifactCtx;
use crate::parts::Parts;
use crate::plan::{Plan, Work};
use crate::{Error, Result, Run};
use std::sync::Arc;

/// Execute and record a claimed Run in a task of its own, and wait for it:
/// a caller that goes away (a dropped future, a client that disconnects)
/// cannot leave the Run half-recorded; it runs to its end regardless.
pub(crate) async fn run_to_end(parts: &Arc<Parts>, plan: Plan, claimed: Claimed) -> Result<Run> {
    let parts = parts.clone();
    match tokio::spawn(async move { execute_and_record(&parts, plan, claimed).await }).await {
        Ok(r) => r,
        Err(e) => Err(Error::Engine(format!("the Run's task failed: {e}"))),
    }
}

/// Execute and record a claimed Run in the background.
pub(crate) fn start(parts: &Arc<Parts>, plan: Plan, claimed: Claimed) -> Result<()> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| Error::Invalid("starting a Run needs a Tokio runtime".into()))?;
    let parts = parts.clone();
    handle.spawn(async move {
        let _ = execute_and_record(&parts, plan, claimed).await;
    });
    Ok(())
}

async fn execute_and_record(parts: &Parts, plan: Plan, mut claimed: Claimed) -> Result<Run> {
    let outcome = execute(parts, &plan, &mut claimed).await;
    crate::record::finish(parts, &plan, claimed, outcome).await
}

/// Run the work to its end: the outcome, whatever it is.
async fn execute(parts: &Parts, plan: &Plan, c: &mut Claimed) -> Outcome {
    let Some((stdout, stderr)) = c.outputs.take() else {
        return Outcome::failed(Error::Engine("the Run's output files are gone".into()));
    };
    if let Some(hit) = &c.hit {
        // Up to the output cap of file copying: off the workers, on the
        // blocking pool (no thread made per hit).
        let (source, observer) = (hit.run.clone(), plan.observer.clone());
        let dest = crate::cached::Dest {
            dir: c.dir.clone(),
            stdout,
            stderr,
        };
        return tokio::task::spawn_blocking(move || {
            crate::cached::copy(&source, dest, observer.as_ref())
        })
        .await
        .unwrap_or_else(|e| Outcome::failed(Error::Engine(format!("cache copy task: {e}"))));
    }
    let eng = &parts.engine;
    let cancel = c.live.cancel.clone();
    let name = c.config.name.clone();
    let _slot = tokio::select! {
        biased;
        () = cancel.cancelled() => return Outcome::failed(Error::Cancelled { run: name }),
        admitted = eng.admit(plan.limits.memory) => match admitted {
            Ok(slot) => slot,
            Err(e) => return Outcome::failed(e),
        },
    };
    let artifacts = ArtifactCtx::new(parts.artifacts.clone(), name.clone(), plan.guard.clone());
    let job = Job {
        run: &name,
        args: &plan.inputs,
        limits: &plan.limits,
        stdout,
        stderr,
        observer: plan.observer.clone(),
        budget: c.live.budget.clone(),
        artifacts,
        scratch: plan.python.then(|| c.dir.join("scratch")),
    };
    match &plan.work {
        Work::Function(target) => {
            function::call_function(eng, &target.loaded, &target.desc().name, job, &cancel).await
        }
        Work::Commands(cmds) => {
            command::run(eng, cmds, &c.dir, job, &cancel, &mut c.config.cmds).await
        }
    }
}
