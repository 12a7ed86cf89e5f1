//! Executing one call in a fresh Store, under its limits, until it returns,
//! traps, runs out of something, or is cancelled.
//!
//! Cancellation and timeouts work by dropping the call's future: the Store
//! yields to the async executor every `fuel_yield_interval` units of fuel, so
//! even a guest spinning in a tight loop reaches a point where the future can
//! be dropped, and a dropped call never resumes. The output written before
//! that stays in the Run's files, since every guest write went straight to
//! them.

use super::engine::{CallError, RhEngine};
use super::host::{
    ArtifactCtx, MemoryLimitExceeded, OutputBudget, OutputKind, OutputLimitExceeded,
    OutputObserver, Sink,
};
use super::store::{StoreBuilder, fuel_used};
use crate::config::ArtifactRef;
use crate::functions::Loaded;
use crate::{Error, Limits};
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;
use wasmtime::Trap;

/// A cancel signal shared between a Run and whoever may cancel it.
#[derive(Default)]
pub(crate) struct Cancel {
    flag: AtomicBool,
    notify: Notify,
}

impl Cancel {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            if self.flag.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// How a call ended, and what it did on the way.
pub(crate) struct Outcome {
    pub result: Result<Vec<u8>, Error>,
    pub fuel_consumed: u64,
    pub upstream: Vec<ArtifactRef>,
    pub downstream: Vec<ArtifactRef>,
}

impl Outcome {
    /// A Run that ended before its guest ran.
    pub fn failed(e: Error) -> Outcome {
        Outcome {
            result: Err(e),
            fuel_consumed: 0,
            upstream: Vec::new(),
            downstream: Vec::new(),
        }
    }
}

/// What a Run's execution is given.
pub(crate) struct Job<'a> {
    pub run: &'a str,
    pub args: &'a [u8],
    pub limits: &'a Limits,
    pub stdout: File,
    pub stderr: File,
    pub observer: Option<OutputObserver>,
    pub budget: std::sync::Arc<OutputBudget>,
    pub artifacts: ArtifactCtx,
    /// A folder the guest sees as `/` (its working directory): a Python
    /// Run's `scratch/`; none for a function call.
    pub scratch: Option<std::path::PathBuf>,
}

/// Call function `fn_name` of `loaded` in a fresh Store.
pub(crate) async fn call_function(
    eng: &RhEngine,
    loaded: &Loaded,
    fn_name: &str,
    job: Job<'_>,
    cancel: &Cancel,
) -> Outcome {
    let Some(pre) = loaded.pre.as_ref() else {
        return Outcome::failed(Error::BadComponent {
            message: "this component is a command, not a function component".into(),
        });
    };
    let budget = job.budget;
    let fuel = job.limits.fuel.unwrap_or(u64::MAX);
    let (stdout, stderr) = (
        Sink::new(
            job.stdout,
            OutputKind::Stdout,
            budget.clone(),
            job.observer.clone(),
        ),
        Sink::new(job.stderr, OutputKind::Stderr, budget, job.observer),
    );
    let mut builder = StoreBuilder::new(eng, job.limits.memory)
        .outputs(stdout, stderr)
        .fuel(fuel);
    if let Some(dir) = &job.scratch {
        builder = match std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("create folder", dir, e))
            .and_then(|()| builder.preopen(dir))
        {
            Ok(b) => b,
            Err(e) => return Outcome::failed(e),
        };
    }
    let mut store = builder.build(job.artifacts);
    // A writable scratch folder is watched against the Run's limit.
    let watch = job
        .scratch
        .as_ref()
        .zip(job.limits.scratch)
        .map(|(dir, limit)| crate::disk::ScratchWatch::start(dir, limit));
    let over = async {
        match &watch {
            Some(w) => w.exceeded().await,
            None => std::future::pending().await,
        }
    };
    let call = async {
        let guest = pre.instantiate_async(&mut store).await?;
        guest
            .rh_wasm_function()
            .call_call(&mut store, fn_name, job.args)
            .await
    };
    let ended = tokio::select! {
        r = tokio::time::timeout(job.limits.timeout(), call) => match r {
            Ok(r) => Ok(r),
            Err(_) => Err(Error::Timeout { run: job.run.to_string(), timeout: job.limits.timeout() }),
        },
        () = cancel.cancelled() => Err(Error::Cancelled { run: job.run.to_string() }),
        () = over => Err(Error::DiskLimit {
            run: job.run.to_string(),
            limit: job.limits.scratch.unwrap_or_default(),
        }),
    };
    let ended = match (ended, &watch) {
        (Ok(r), Some(w)) if w.over_now().await => {
            drop(r);
            Err(Error::DiskLimit {
                run: job.run.to_string(),
                limit: job.limits.scratch.unwrap_or_default(),
            })
        }
        (other, _) => other,
    };
    let result = match ended {
        Ok(Ok(Ok(bytes))) => Ok(bytes),
        Ok(Ok(Err(call_error))) => Err(match call_error {
            CallError::UnknownFunction(name) => Error::UnknownFunction {
                name,
                hint: String::new(),
            },
            CallError::BadInput(message) => Error::BadInput { message },
            CallError::Failed(message) => Error::Failed {
                run: job.run.to_string(),
                message,
            },
        }),
        Ok(Err(trap)) => Err(classify(job.run, job.limits, trap)),
        Err(e) => Err(e),
    };
    let fuel_consumed = fuel_used(eng, &store, fuel);
    let art = &mut store.data_mut().artifacts;
    Outcome {
        result,
        fuel_consumed,
        upstream: std::mem::take(&mut art.upstream),
        downstream: std::mem::take(&mut art.downstream),
    }
}

/// Turn a Wasmtime error out of a guest call into the error kind it means.
pub(crate) fn classify(run: &str, limits: &Limits, e: wasmtime::Error) -> Error {
    let run = run.to_string();
    if let Some(Trap::OutOfFuel) = e.downcast_ref::<Trap>() {
        return Error::OutOfFuel {
            run,
            fuel: limits.fuel.unwrap_or(u64::MAX),
        };
    }
    if e.is::<MemoryLimitExceeded>() {
        return Error::MemoryLimit {
            run,
            limit: limits.memory,
        };
    }
    if let Some(w) = e.downcast_ref::<crate::execute::host::OutputWriteFailed>() {
        return Error::OutputWrite {
            run,
            message: w.to_string(),
        };
    }
    if e.is::<OutputLimitExceeded>() {
        return Error::OutputLimit {
            run,
            limit: limits.output,
        };
    }
    // The trap itself first, then where it happened (the first frames).
    let mut message = match e.downcast_ref::<Trap>() {
        Some(t) => t.to_string(),
        None => e.root_cause().to_string(),
    };
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        let frames: Vec<String> = bt
            .frames()
            .iter()
            .filter_map(|f| f.func_name().map(short_name))
            .take(3)
            .collect();
        if !frames.is_empty() {
            message.push_str(" (in ");
            message.push_str(&frames.join(" <- "));
            message.push(')');
        }
    }
    Error::Trap { run, message }
}

fn short_name(name: &str) -> String {
    name.chars().take(120).collect()
}

/// A call with no Run around it: fresh Store, instantiate, call. Output is
/// discarded. The reference the recorded path is measured against.
pub(crate) async fn bare_call(
    eng: &RhEngine,
    artifacts: &std::sync::Arc<crate::artifacts::ArtifactStore>,
    loaded: &Loaded,
    fn_name: &str,
    args: &[u8],
) -> Result<Vec<u8>, Error> {
    let pre = loaded
        .pre
        .as_ref()
        .ok_or_else(|| Error::Invalid("not a function".into()))?;
    let mut store = StoreBuilder::new(eng, eng.inspection_memory()).build(ArtifactCtx::new(
        artifacts.clone(),
        String::new(),
        None,
    ));
    let guest = pre
        .instantiate_async(&mut store)
        .await
        .map_err(Error::engine)?;
    match guest
        .rh_wasm_function()
        .call_call(&mut store, fn_name, args)
        .await
        .map_err(Error::engine)?
    {
        Ok(bytes) => Ok(bytes),
        Err(e) => Err(Error::Invalid(format!("{e:?}"))),
    }
}
