//! [`Parts`]: what a [`crate::Runtime`] ties together, opened once: the
//! engine, the stores, the Runs in flight. Every step of a call, and the
//! access policy, works on them.

use crate::artifacts::ArtifactStore;
use crate::execute::engine::RhEngine;
use crate::functions::FunctionStore;
use crate::inflight::InFlight;
use crate::options::RuntimeOptions;
use crate::run::Run;
use crate::runs::RunStore;
use crate::store::grants::AccessStore;
use crate::{Error, Result};
use std::sync::Arc;

/// The parts a [`Runtime`] ties together; the steps of a call work on them.
pub(crate) struct Parts {
    pub opts: RuntimeOptions,
    pub engine: RhEngine,
    pub functions: FunctionStore,
    pub runs: RunStore,
    pub artifacts: Arc<ArtifactStore>,
    pub access: Arc<AccessStore>,
    pub cache: crate::cache::Cache,
    pub inflight: InFlight,
    pub file_lists: crate::run::FileLists,
    pub space: crate::disk::SpaceCheck,
}

impl Parts {
    /// Open (creating if needed) what lives under `opts.root`. Runs left
    /// running by a host process that has since died are marked `error` /
    /// `interrupted`.
    pub fn open(opts: RuntimeOptions) -> Result<Parts> {
        let root = opts.root.clone();
        if opts.shared_store.as_ref().is_some_and(|s| !s.is_signed()) {
            return Err(Error::Invalid(
                "a shared store needs the team's key: entries anyone who can write \
                 the bucket could have put are never taken as results"
                    .into(),
            ));
        }
        std::fs::create_dir_all(&root).map_err(|e| Error::io("create folder", &root, e))?;
        let runs_dir = opts.runs_dir.clone().unwrap_or_else(|| root.join("runs"));
        let engine = RhEngine::new(opts.engine.clone())?;
        let index = crate::store::index::Index::open(&root, &runs_dir)?;
        let runs = RunStore::open(&root, runs_dir, opts.durable, opts.folders_ahead, index)?;
        let space = crate::disk::SpaceCheck::new(runs.runs_dir(), &root, opts.disk_reserve);
        // A default no call could run under is a mistake to say at once.
        engine.check_memory(opts.limits.memory)?;
        let parts = Parts {
            functions: FunctionStore::open(&root)?,
            inflight: InFlight::new(runs.cancels_dir().to_path_buf()),
            runs,
            artifacts: Arc::new(ArtifactStore::open(&root)?),
            access: Arc::new(AccessStore::open(&root)?),
            cache: crate::cache::Cache::open(&root)?,
            engine,
            opts,
            file_lists: Default::default(),
            space,
        };
        // Copies of shared Runs that processes which died were using.
        crate::shared::sweep(&root.join("shared"), &|host| parts.runs.host_alive(host));
        Ok(parts)
    }

    /// Load a Run by name, unchecked.
    pub fn run(&self, name: &str) -> Result<Run> {
        let config = self.runs.load(name)?;
        Ok(Run::from_parts(self.runs.dir(name), config))
    }
}
