//! What a cluster of several hosts needs of each host's runtime: a call
//! checked and named without being made (it waits in the cluster's queue),
//! copies of the Runs other hosts execute, and the hand-over of a queued
//! Run's name to the host that takes it.

use super::Runtime;
use crate::access::{Access, ObjectKind};
use crate::call::CallRequest;
use crate::config::{RunConfig, RunStatus};
use crate::exec::ExecRequest;
use crate::plan::Plan;
use crate::{Caller, Result};

pub use crate::store::runs::mirror::Mirrored;

/// A call checked as it would be made, not made: the record its Run
/// starts with (`not_started`, named) and its canonical inputs.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The record, `not_started`, named.
    pub config: RunConfig,
    /// The canonical `inputs.json`.
    pub inputs: Vec<u8>,
}

impl Prepared {
    fn of(plan: Plan) -> Prepared {
        let mut config = plan.config;
        config.name = match plan.run_name {
            Some(n) => n,
            None => crate::auto_run_name(&plan.stem),
        };
        config.status = RunStatus::NotStarted;
        config.host = None;
        Prepared {
            config,
            inputs: plan.inputs,
        }
    }
}

impl Runtime {
    /// Check a call as [`Runtime::call`] would (the function, the caller's
    /// access, the arguments, the limits, the name) and return the record
    /// its Run would start with, `not_started`, without making the Run.
    pub async fn prepare(&self, caller: &Caller, req: CallRequest) -> Result<Prepared> {
        Ok(Prepared::of(Plan::call(&self.parts, caller, req).await?))
    }

    /// [`Runtime::prepare`] for a command Run.
    pub async fn prepare_exec(&self, caller: &Caller, req: ExecRequest) -> Result<Prepared> {
        Ok(Prepared::of(Plan::exec(&self.parts, caller, req).await?))
    }

    /// [`Runtime::prepare`] for Python statements.
    pub async fn prepare_python(
        &self,
        caller: &Caller,
        statements: Vec<String>,
        keep_going: bool,
        req: CallRequest,
    ) -> Result<Prepared> {
        let plan = Plan::python(&self.parts, caller, statements, keep_going, req).await?;
        Ok(Prepared::of(plan))
    }

    /// Whether the caller may write (replace, cancel) the Run `name`.
    pub fn check_write(&self, caller: &Caller, name: &str, doing: &str) -> Result<()> {
        self.parts
            .require(caller, ObjectKind::Run, name, Access::Write, doing)
    }

    /// Keep a copy of a Run another host executes (its record and the
    /// files given, from `inputs.json`, `result.json`, `stdout`,
    /// `stderr`), unless the copy held is as new. A Run executing here is
    /// never written over.
    pub fn mirror(&self, config: &RunConfig, files: &[(&str, &[u8])]) -> Result<Mirrored> {
        if self.parts.inflight.contains(&config.name) {
            return Ok(Mirrored::Stale);
        }
        self.parts.runs.mirror(config, files)
    }

    /// Remove the copy of a queued Run (still `not_started`) before this
    /// host executes it under its name. Whether there was one.
    pub fn drop_queued(&self, name: &str) -> Result<bool> {
        self.parts.runs.drop_queued(name)
    }

    /// Keep a copy of an artifact version another host's Run `run` saved
    /// (made by `creator`): added as that name's newest version unless the
    /// name already has this version from this Run.
    pub fn mirror_artifact(
        &self,
        name: &str,
        data: &[u8],
        run: Option<&str>,
        creator: Option<&str>,
    ) -> Result<()> {
        let digest = crate::artifacts::digest_of(data);
        if let Ok(a) = self.parts.artifacts.get(name)
            && a.versions
                .iter()
                .any(|v| v.digest == digest && v.run.as_deref() == run)
        {
            return Ok(());
        }
        self.parts
            .artifacts
            .save(name, data, run, creator, &|_| Ok(()))?;
        Ok(())
    }

    /// The bytes of an artifact's version (by digest), unchecked: for
    /// handing a Run's artifacts to the other hosts of its cluster.
    pub fn artifact_bytes(&self, name: &str, digest: &str) -> Result<Vec<u8>> {
        Ok(self
            .parts
            .artifacts
            .load(name, Some(digest), &|_| Ok(()))?
            .0)
    }

    /// Whether this process is executing the Run `name`.
    pub fn is_executing(&self, name: &str) -> bool {
        self.parts.inflight.contains(name)
    }
}
