//! The `local` cluster: the runtime embedded in this process, its data
//! under `./rh/`. Calls run here, their output handed to the terminal as
//! the guest writes it, and Ctrl-C cancels them; `run` and `get-or-run`
//! hand their Run to a worker process (`super::worker`).

use super::{Cluster, RunFolder, caller, deliver, open_local, worker, write_run_file};
use crate::errors::UsageError;
use crate::wire::{
    CacheCleared, CallBody, CallMode, DeploymentInfo, ErrorInfo, Lineage, Reindexed, RunAnswer,
    ShareBody, Started, Unshared,
};
use anyhow::{Result, bail};
use rh_runtime::{
    Artifact, ArtifactRef, CallRequest, Caller, ExecRequest, GcReport, GcRequest, ObjectKind,
    OutputKind, OutputObserver, Run, RunConfig, RunHandle, RunPage, RunQuery, RunStatus, Runtime,
    Share,
};
use std::io::Write;
use std::path::Path;

/// The name of the cluster.
pub const NAME: &str = "local";

pub struct Local {
    rt: Runtime,
    /// Who calls and commands act for: see [`super::caller`].
    me: Caller,
}

impl Local {
    pub fn open() -> Result<Local> {
        Ok(Local {
            rt: open_local()?,
            me: caller(NAME),
        })
    }

    /// The host itself, inside the current scope: how artifacts are saved
    /// and loaded and scopes opened.
    fn host_in_scope(&self) -> Caller {
        Caller::host().in_scope_opt(self.me.scope().map(str::to_string))
    }

    /// Wait for a started Run; Ctrl-C cancels it, so it ends recorded as
    /// `cancelled`.
    async fn until_ctrl_c(h: RunHandle) -> rh_runtime::Result<Run> {
        tokio::select! {
            r = h.wait() => r,
            _ = tokio::signal::ctrl_c() => h.cancel().await,
        }
    }
}

/// The answer about a Run a call on `local` made: the Run's folder with it.
impl Local {
    /// The answer about a Run that was waited for (with its result when it
    /// completed, if asked): a Run that ran and failed answers with its
    /// record and its error; anything else is an error.
    fn answer(&self, outcome: rh_runtime::Result<Run>, with_result: bool) -> Result<RunAnswer> {
        match outcome {
            Ok(run) => {
                let mut answer = called(&run);
                if with_result {
                    answer.result = Some(run.result()?);
                }
                Ok(answer)
            }
            Err(e) => match e.run().and_then(|n| self.rt.run(&self.me, n).ok()) {
                Some(run) => {
                    let mut answer = called(&run);
                    answer.error = Some(ErrorInfo::of(&e));
                    Ok(answer)
                }
                None => Err(e.into()),
            },
        }
    }
}

fn called(run: &Run) -> RunAnswer {
    let c = run.config();
    let mut answer = RunAnswer::new(c.name.clone(), c.status);
    answer.path = Some(run.path().to_path_buf());
    answer
}

/// How `local` words an error reading a completed Run's result: as it is.
fn as_is(e: &rh_runtime::Error) -> String {
    e.to_string()
}

#[async_trait::async_trait]
impl Cluster for Local {
    async fn deploy(&self, name: &str, component: Vec<u8>) -> Result<DeploymentInfo> {
        let d = self.rt.deploy(&Caller::host(), &component, name).await?;
        Ok(DeploymentInfo::from(&d))
    }

    async fn functions(&self) -> Result<Vec<DeploymentInfo>> {
        let deployed = self.rt.deployments(&Caller::host())?;
        Ok(deployed.iter().map(DeploymentInfo::from).collect())
    }

    async fn add_component(&self, component: Vec<u8>) -> Result<String> {
        Ok(self
            .rt
            .add_component(&Caller::host(), &component)
            .await?
            .digest)
    }

    async fn call(
        &self,
        req: CallRequest,
        mode: CallMode,
        out: OutputObserver,
    ) -> Result<RunAnswer> {
        let (rt, me) = (&self.rt, &self.me);
        let req = req.observer(out);
        let outcome = match mode {
            CallMode::GetOrCall | CallMode::GetOrRun => rt.get_or_call(me, req).await,
            _ if req.cache.unwrap_or(rt.caches_by_default()) => rt.call(me, req).await,
            // Ctrl-C cancels the Run, so it ends recorded as `cancelled`.
            _ => match rt.start(me, req).await {
                Ok(h) => Local::until_ctrl_c(h)
                    .await
                    .and_then(|run| match run.status() {
                        RunStatus::Completed => Ok(run),
                        _ => Err(run.error()),
                    }),
                Err(e) => Err(e),
            },
        };
        self.answer(outcome, true)
    }

    async fn start(&self, req: CallRequest, mode: CallMode) -> Result<Started> {
        worker::start(&CallBody::from_request(&req, &self.me, mode))
    }

    async fn exec(&self, req: ExecRequest, out: OutputObserver) -> Result<RunAnswer> {
        let h = self.rt.start_exec(&self.me, req.observer(out)).await?;
        let run = Local::until_ctrl_c(h).await?;
        Ok(RunAnswer::of(&run, as_is))
    }

    async fn run_python(
        &self,
        statements: Vec<String>,
        keep_going: bool,
        req: CallRequest,
        out: OutputObserver,
    ) -> Result<RunAnswer> {
        let req = req.observer(out);
        let outcome = self
            .rt
            .run_python(&self.me, statements, keep_going, req)
            .await;
        self.answer(outcome, false)
    }

    async fn search(&self, q: &RunQuery) -> Result<RunPage> {
        Ok(self.rt.search(&Caller::host(), q)?)
    }

    async fn gc(&self, req: &GcRequest) -> Result<GcReport> {
        Ok(self.rt.gc(&Caller::host(), req)?)
    }

    async fn clear_cache(&self, function: Option<&str>) -> Result<CacheCleared> {
        let n = self.rt.clear_cache(&Caller::host(), function)?;
        Ok(CacheCleared { cleared: n as u64 })
    }

    async fn reindex(&self) -> Result<Reindexed> {
        let n = self.rt.reindex(&Caller::host())?;
        Ok(Reindexed { runs: n as u64 })
    }

    async fn run(&self, name: &str) -> Result<RunConfig> {
        Ok(self.rt.run(&Caller::host(), name)?.config().clone())
    }

    async fn result(&self, name: &str) -> Result<RunAnswer> {
        Ok(RunAnswer::of(&self.rt.run(&Caller::host(), name)?, as_is))
    }

    async fn wait(&self, name: &str) -> Result<RunAnswer> {
        let run = self.rt.wait(&Caller::host(), name).await?;
        Ok(RunAnswer::of(&run, as_is))
    }

    async fn cancel(&self, name: &str) -> Result<RunAnswer> {
        let me = Caller::host();
        let before = self.rt.run(&me, name)?.status();
        let run = self.rt.cancel(&me, name).await?;
        let mut answer = RunAnswer::of(&run, as_is);
        answer.was = Some(before);
        Ok(answer)
    }

    async fn logs(
        &self,
        name: &str,
        kind: OutputKind,
        follow: bool,
        to: &mut (dyn Write + Send),
    ) -> Result<()> {
        let me = Caller::host();
        if follow {
            let mut f = self.rt.follow(&me, name, kind)?;
            while let Some(chunk) = f.next().await? {
                deliver(to, &chunk)?;
            }
            return Ok(());
        }
        let run = self.rt.run(&me, name)?;
        let bytes = match kind {
            OutputKind::Stdout => run.stdout()?,
            OutputKind::Stderr => run.stderr()?,
        };
        deliver(to, &bytes)
    }

    async fn copy_run(&self, name: &str, to: &Path) -> Result<Vec<String>> {
        let r = self.rt.run(&Caller::host(), name)?;
        if !r.status().is_terminal() {
            bail!(UsageError(format!(
                "run `{name}` is still {}; wait for it before pulling",
                r.status()
            )));
        }
        let mut names = Vec::new();
        for p in r.paths()? {
            write_run_file(to, &p, &r.read_file(&p)?)?;
            names.push(p);
        }
        Ok(names)
    }

    async fn finished_run(&self, name: &str) -> Result<RunFolder> {
        let r = self.rt.run(&Caller::host(), name)?;
        if !r.status().is_terminal() {
            bail!(UsageError(format!(
                "run `{name}` is still {}; only finished Runs are pushed",
                r.status()
            )));
        }
        Ok(RunFolder {
            path: r.path().to_path_buf(),
            staged: None,
        })
    }

    async fn delete(&self, kind: ObjectKind, name: &str) -> Result<()> {
        Ok(self.rt.delete(&Caller::host(), kind, name)?)
    }

    async fn open_scope(&self, name: &str) -> Result<()> {
        self.rt.open_scope(&self.host_in_scope(), name)?;
        Ok(())
    }

    async fn end_scope(
        &self,
        name: &str,
        outcome: std::result::Result<(), String>,
    ) -> Result<RunAnswer> {
        let run = self.rt.end_scope(&Caller::host(), name, outcome)?;
        Ok(RunAnswer::of(&run, as_is))
    }

    async fn put_artifact(&self, name: &str, data: Vec<u8>) -> Result<ArtifactRef> {
        Ok(self.rt.save_artifact(&self.host_in_scope(), name, &data)?)
    }

    async fn get_artifact(&self, name: &str, version: Option<&str>) -> Result<Vec<u8>> {
        Ok(self
            .rt
            .load_artifact(&self.host_in_scope(), name, version)?
            .0)
    }

    async fn artifacts(&self) -> Result<Vec<Artifact>> {
        Ok(self.rt.artifacts(&Caller::host())?)
    }

    async fn artifact(&self, name: &str) -> Result<Artifact> {
        Ok(self.rt.artifact(&Caller::host(), name)?)
    }

    async fn lineage(&self, name: &str) -> Result<Lineage> {
        Ok(Lineage::from(self.rt.lineage(&Caller::host(), name)?))
    }

    async fn share(&self, _: &ShareBody) -> Result<Share> {
        Err(no_users())
    }

    async fn unshare(&self, _: &ShareBody) -> Result<Unshared> {
        Err(no_users())
    }

    async fn shares(&self) -> Result<Vec<Share>> {
        Ok(Vec::new())
    }
}

fn no_users() -> anyhow::Error {
    UsageError(
        "the local cluster has no users to share with; share on a daemon started with --users"
            .into(),
    )
    .into()
}
