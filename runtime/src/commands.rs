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

use crate::disk::ScratchWatch;
use crate::executor::{Cancel, Job, Outcome, classify, meter};
use crate::functions::Loaded;
use crate::host::{HostState, OutputKind, OutputObserver, Sink};
use crate::record::CmdRecord;
use crate::{Error, Limits};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx};

/// One command of a command Run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdSpec {
    /// How the command is recorded in `config.json` (the file or name given).
    pub cmd: String,
    /// The component to run: a deployed name, or a digest (`sha256:...`)
    /// of a component added with [`crate::Runtime::add_component`].
    pub component: String,
    /// Its arguments (not including the command itself).
    pub args: Vec<String>,
}

/// A Run of one or more commands.
#[derive(Clone)]
#[non_exhaustive]
pub struct ExecRequest {
    /// The commands, run in order.
    pub cmds: Vec<CmdSpec>,
    /// The Run's name; an automatic one when `None`.
    pub run_name: Option<String>,
    /// Fuel budget for all the commands together.
    pub fuel: Option<u64>,
    /// Memory limit of each command, in bytes.
    pub memory: Option<u64>,
    /// Wall-clock timeout for all the commands together.
    pub timeout: Option<Duration>,
    /// Cap on the disk space of the Run's scratch folder, in bytes; at most
    /// the cluster's (its default).
    pub scratch: Option<u64>,
    /// Run the later commands even after one exits non-zero.
    pub keep_going: bool,
    /// Replace a finished Run of the same name.
    pub rerun: bool,
    /// The Run this one is made inside of.
    pub parent_run: Option<String>,
    /// Who runs it.
    pub creator: Option<String>,
    /// The user the Run acts for, whose access is checked (see
    /// [`crate::User`]); `None`: the embedding program, which may do all.
    pub user: Option<crate::User>,
    /// Sees the output as it is written.
    pub observer: Option<OutputObserver>,
}

impl std::fmt::Debug for ExecRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecRequest")
            .field("cmds", &self.cmds)
            .field("run_name", &self.run_name)
            .field("keep_going", &self.keep_going)
            .finish_non_exhaustive()
    }
}

impl ExecRequest {
    /// A Run of `cmds`.
    pub fn new(cmds: Vec<CmdSpec>) -> Self {
        ExecRequest {
            cmds,
            run_name: None,
            fuel: None,
            memory: None,
            timeout: None,
            scratch: None,
            keep_going: false,
            rerun: false,
            parent_run: None,
            creator: None,
            user: None,
            observer: None,
        }
    }

    /// Name the Run.
    pub fn run_name(mut self, name: impl Into<String>) -> Self {
        self.run_name = Some(name.into());
        self
    }

    /// Go on after a command fails.
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.keep_going = keep_going;
        self
    }

    /// Set the fuel budget.
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.fuel = Some(fuel);
        self
    }

    /// Set the memory limit, in bytes.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// Set the wall-clock timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Set the scratch limit, in bytes.
    pub fn scratch(mut self, bytes: u64) -> Self {
        self.scratch = Some(bytes);
        self
    }

    /// Replace a finished Run of the same name.
    pub fn rerun(mut self, rerun: bool) -> Self {
        self.rerun = rerun;
        self
    }

    /// Record who runs it.
    pub fn creator(mut self, creator: impl Into<String>) -> Self {
        self.creator = Some(creator.into());
        self
    }

    /// Act for `user`: their access is checked (the function, the Run's
    /// name, a parent Run, the artifacts its guest loads and saves) and
    /// they are recorded as the creator.
    pub fn user(mut self, user: crate::User) -> Self {
        self.creator = Some(user.name.clone());
        self.user = Some(user);
        self
    }

    /// Watch the output as it is written.
    pub fn observer(mut self, observer: OutputObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    pub(crate) fn limits(&self, defaults: &Limits) -> crate::Result<Limits> {
        defaults
            .with(self.fuel, self.memory, self.timeout)?
            .with_scratch(self.scratch)
    }
}

/// The resolved commands of a Run.
#[derive(Clone)]
pub(crate) struct Commands {
    pub cmds: Vec<(CmdSpec, Arc<Loaded>)>,
    pub keep_going: bool,
}

/// Run the commands in order; record each exit code in `records`.
pub(crate) async fn run(
    eng: &crate::engine::RhEngine,
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
    let finish = |result, consumed, artifacts: crate::host::ArtifactCtx| Outcome {
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
        let mut wasi = WasiCtx::builder();
        let mut argv = vec![spec.cmd.clone()];
        argv.extend(spec.args.iter().cloned());
        wasi.stdout(out.clone())
            .stderr(err.clone())
            .args(&argv)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Err(e) = wasi.preopened_dir(&scratch, "/", FsPerms::ReadWrite) {
            return finish(Err(Error::engine(e)), consumed, artifacts);
        }
        let mut store =
            HostState::new(wasi.build(), limits.memory, artifacts).into_store(&eng.engine);
        let left = budget.saturating_sub(consumed);
        let setup = meter(eng, &mut store, left);
        let ended = match setup {
            Err(e) => Err(Error::engine(e)),
            Ok(()) => {
                let call = async {
                    let cmd = pre.instantiate_async(&mut store).await?;
                    cmd.wasi_cli_run().call_run(&mut store).await
                };
                tokio::select! {
                    r = tokio::time::timeout_at(deadline, call) => r.map_err(|_| Error::Timeout {
                        run: job.run.to_string(),
                        timeout: limits.timeout(),
                    }),
                    () = cancel.cancelled() => Err(Error::Cancelled { run: job.run.to_string() }),
                    () = over_limit(watch.as_ref()) => Err(disk_limit()),
                }
            }
        };
        if eng.options.metering {
            consumed += left.saturating_sub(store.get_fuel().unwrap_or(left));
        }
        let shared = store.data().artifacts.store.clone();
        artifacts = std::mem::replace(
            &mut store.data_mut().artifacts,
            crate::host::ArtifactCtx::new(shared, String::new(), None),
        );
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
