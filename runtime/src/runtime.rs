//! [`Runtime`]: the embeddable entry point, a thin façade. Each verb takes
//! the [`Caller`] it acts for and hands over to the parts (see the crate
//! docs): plan → claim → execute → record for calls and commands, the
//! stores and the access policy for everything else.

use crate::access::{Access, ObjectKind, Share};
use crate::artifacts::Artifact;
use crate::call::CallRequest;
use crate::caller::User;
use crate::claim::{Found, find_or_claim, new_run};
use crate::config::{ArtifactRef, RunStatus};
use crate::exec::ExecRequest;
use crate::execute::host::OutputKind;
use crate::functions::{ComponentInfo, Deployment};
use crate::handle::{LogFollower, RunHandle};
use crate::options::RuntimeOptions;
use crate::parts::Parts;
use crate::plan::Plan;
use crate::run::{Run, RunFile};
use crate::{Caller, Error, Limits, Result, execute};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod cluster;
mod history;
mod python;

pub use cluster::{Mirrored, Prepared};

/// The runtime of one cluster: deploy components, call functions, and find
/// the Runs they made. Every verb takes the [`Caller`] it acts for.
///
/// Cheap to clone; clones share everything. Calls need a Tokio runtime.
#[derive(Clone)]
pub struct Runtime {
    parts: Arc<Parts>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("root", &self.parts.opts.root)
            .field("cluster", &self.parts.opts.cluster)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Open (creating if needed) the runtime rooted at `root`, with default
    /// options. Runs left running by a host process that has since died are
    /// marked `error` / `interrupted`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Runtime> {
        Self::open_with(RuntimeOptions::new(root))
    }

    /// Open with options.
    pub fn open_with(opts: RuntimeOptions) -> Result<Runtime> {
        let parts = Parts::open(opts)?;
        crate::scope::sweep_journals(&parts);
        Ok(Runtime {
            parts: Arc::new(parts),
        })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.parts.opts.root
    }

    /// Where Run folders are.
    pub fn runs_dir(&self) -> &Path {
        self.parts.runs.runs_dir()
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.parts.opts.cluster
    }

    /// Whether calls use the result cache unless they say otherwise.
    pub fn caches_by_default(&self) -> bool {
        self.parts.opts.cache
    }

    /// How many guest instances may run at once here.
    pub fn instance_slots(&self) -> u32 {
        self.parts.opts.engine.max_concurrent
    }

    /// How many guest instances run now (Runs waiting for a slot not
    /// counted).
    pub fn instances_in_use(&self) -> u32 {
        let free = self.parts.engine.slots.available_permits() as u32;
        self.instance_slots().saturating_sub(free)
    }

    /// The default limits.
    pub fn default_limits(&self) -> &Limits {
        &self.parts.opts.limits
    }

    // Calls and commands: plan → claim → execute → record.

    /// Call a function and wait for it to end. `Ok` holds the completed Run;
    /// a Run that failed is recorded and its error returned (`OutOfFuel`,
    /// `Timeout`, `Trap`, `Failed`, `Cancelled`...). With the result cache
    /// on, a completed Run of the same call answers it.
    pub async fn call(&self, caller: &Caller, req: CallRequest) -> Result<Run> {
        let plan = Plan::call(&self.parts, caller, req).await?;
        let hint = "; use get-or-call to reuse it, or rerun to replace it";
        let claimed = new_run(&self.parts, &plan, hint).await?;
        execute::run_to_end(&self.parts, plan, claimed).await
    }

    /// Start a call and return at once with a handle on its Run (which is
    /// `running` by then).
    pub async fn start(&self, caller: &Caller, req: CallRequest) -> Result<RunHandle> {
        let plan = Plan::call(&self.parts, caller, req).await?.uncached();
        let hint = "; use get-or-run to reuse it, or rerun to replace it";
        let claimed = new_run(&self.parts, &plan, hint).await?;
        let handle = self.handle_of(&claimed.config.name);
        execute::start(&self.parts, plan, claimed)?;
        Ok(handle)
    }

    /// The completed Run named in `req` if it was made by the same function
    /// version and inputs; else call (once, however many ask at the same
    /// time). A Run still running is waited for; one that ended in `error`
    /// or `cancelled` is run again; one made differently is an error unless
    /// `req.rerun`.
    pub async fn get_or_call(&self, caller: &Caller, req: CallRequest) -> Result<Run> {
        if req.run_name.is_none() {
            return Err(Error::Invalid("get-or-call needs a run name".into()));
        }
        let plan = Plan::call(&self.parts, caller, req).await?;
        match find_or_claim(&self.parts, &plan).await? {
            Found::Claimed(claimed) => execute::run_to_end(&self.parts, plan, *claimed).await,
            Found::Existing(c) if c.status.is_terminal() => {
                Ok(Run::from_parts(self.parts.runs.dir(&c.name), *c))
            }
            Found::Existing(c) => {
                let run = crate::handle::wait(&self.parts, &c.name).await?;
                match run.status() {
                    RunStatus::Completed => Ok(run),
                    _ => Err(run.error()),
                }
            }
        }
    }

    /// Like [`Runtime::get_or_call`], but returns a handle at once: on the
    /// existing Run whatever its status, or on a newly started one.
    pub async fn get_or_run(&self, caller: &Caller, req: CallRequest) -> Result<RunHandle> {
        if req.run_name.is_none() {
            return Err(Error::Invalid("get-or-run needs a run name".into()));
        }
        let plan = Plan::call(&self.parts, caller, req).await?;
        match find_or_claim(&self.parts, &plan).await? {
            Found::Claimed(claimed) => {
                let handle = self.handle_of(&claimed.config.name);
                execute::start(&self.parts, plan, *claimed)?;
                Ok(handle)
            }
            Found::Existing(c) => Ok(self.handle_of(&c.name)),
        }
    }

    /// Run commands and wait for them to end. `Ok` holds the completed Run
    /// (every command exited 0); otherwise the Run's error, `ExitCode` for
    /// a command that exited non-zero.
    pub async fn exec(&self, caller: &Caller, req: ExecRequest) -> Result<Run> {
        let plan = Plan::exec(&self.parts, caller, req).await?;
        let claimed = new_run(&self.parts, &plan, "; rerun to replace it").await?;
        execute::run_to_end(&self.parts, plan, claimed).await
    }

    /// Start commands and return at once with a handle on their Run.
    pub async fn start_exec(&self, caller: &Caller, req: ExecRequest) -> Result<RunHandle> {
        let plan = Plan::exec(&self.parts, caller, req).await?;
        let claimed = new_run(&self.parts, &plan, "; rerun to replace it").await?;
        let handle = self.handle_of(&claimed.config.name);
        execute::start(&self.parts, plan, claimed)?;
        Ok(handle)
    }

    /// Instantiate and call a function in a fresh Store without recording a
    /// Run: the bare cost of Wasmtime that a recorded call is measured
    /// against. For benchmarks.
    #[doc(hidden)]
    pub async fn bare_call(&self, function: &str, args: &serde_json::Value) -> Result<Vec<u8>> {
        let p = &self.parts;
        let (_, _, target) = crate::plan::resolve(p, function, None).await?;
        let args = crate::call::canonical_args(target.desc(), args)?;
        let _admitted = p.engine.admit_inspection().await?;
        let f = &target.desc().name;
        execute::function::bare_call(&p.engine, &p.artifacts, &target.loaded, f, &args).await
    }

    // Runs.

    /// A Run the caller may read.
    pub fn run(&self, caller: &Caller, name: &str) -> Result<Run> {
        self.readable(caller, name)?;
        self.parts.run(name)
    }

    /// A handle on an existing Run the caller may read.
    pub fn handle(&self, caller: &Caller, name: &str) -> Result<RunHandle> {
        self.run(caller, name)?;
        Ok(self.handle_of(name))
    }

    fn handle_of(&self, name: &str) -> RunHandle {
        RunHandle {
            parts: self.parts.clone(),
            name: name.to_string(),
        }
    }

    /// Every file of the finished Run `name` with its size and digest
    /// ([`Run::files`]), read and hashed once and then remembered: a
    /// finished Run's files do not change. `NotFinished` while it runs.
    /// This reads whole files: call it off the async workers.
    pub fn run_files(&self, caller: &Caller, name: &str) -> Result<Arc<Vec<RunFile>>> {
        let run = self.run(caller, name)?;
        self.parts.file_lists.of(&run)
    }

    /// Wait until the Run ends.
    pub async fn wait(&self, caller: &Caller, name: &str) -> Result<Run> {
        self.readable(caller, name)?;
        crate::handle::wait(&self.parts, name).await
    }

    /// Cancel a Run (which needs write access) and wait until it has ended.
    /// A Run that has already ended is returned as it is.
    pub async fn cancel(&self, caller: &Caller, name: &str) -> Result<Run> {
        let p = &self.parts;
        p.require(
            caller,
            ObjectKind::Run,
            name,
            Access::Write,
            "cancelling it",
        )?;
        crate::handle::cancel(p, name).await
    }

    /// Follow one of a Run's output streams from its start: each
    /// [`LogFollower::next`] gives what the guest has written since, waiting
    /// for more while the Run runs, and `None` once it has ended and all is
    /// read. A Run executing in this process wakes its followers as it
    /// writes; one executing elsewhere is watched by re-reading its files.
    pub fn follow(&self, caller: &Caller, name: &str, kind: OutputKind) -> Result<LogFollower> {
        self.readable(caller, name)?;
        crate::handle::follow(&self.parts, name, kind)
    }

    /// The Runs this process is executing now.
    pub fn active_runs(&self) -> Vec<String> {
        self.parts.inflight.names()
    }

    /// Wait until every Run this process is executing has ended.
    pub async fn wait_all(&self) {
        self.parts.inflight.wait_all().await
    }

    /// Mark Runs of dead host processes `error` / `interrupted` now (also
    /// done on open). Returns how many.
    pub fn recover(&self) -> Result<usize> {
        let n = self.parts.runs.recover()?;
        crate::scope::sweep_journals(&self.parts);
        Ok(n)
    }

    fn readable(&self, caller: &Caller, name: &str) -> Result<()> {
        self.parts
            .require(caller, ObjectKind::Run, name, Access::Read, "")
    }

    // Functions.

    /// Validate, compile and store a component under `name`. Redeploying a
    /// name with other bytes makes a new version. A new name becomes the
    /// caller's; redeploying an existing one needs write access to it.
    pub async fn deploy(&self, caller: &Caller, bytes: &[u8], name: &str) -> Result<Deployment> {
        crate::deploy::deploy(&self.parts, caller, bytes, name).await
    }

    /// Deploy a file, named by `name` or else by the file's stem.
    pub async fn deploy_file(
        &self,
        caller: &Caller,
        path: &Path,
        name: Option<&str>,
    ) -> Result<Deployment> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .replace('-', "_");
        self.deploy(caller, &bytes, name.unwrap_or(&stem)).await
    }

    /// Validate, compile and store a component by its digest without naming
    /// it (for commands given as files); the caller may then run it by
    /// digest.
    pub async fn add_component(&self, caller: &Caller, bytes: &[u8]) -> Result<ComponentInfo> {
        crate::deploy::add_component(&self.parts, caller, bytes).await
    }

    /// Every deployed name the caller may see.
    pub fn deployments(&self, caller: &Caller) -> Result<Vec<Deployment>> {
        let sees = self.parts.visibility(caller)?;
        let mut all = self.parts.functions.list()?;
        all.retain(|d| sees(ObjectKind::Function, &d.name, d.creator.as_deref()));
        Ok(all)
    }

    /// One deployed name the caller may see.
    pub fn deployment(&self, caller: &Caller, name: &str) -> Result<Deployment> {
        let p = &self.parts;
        p.require(caller, ObjectKind::Function, name, Access::Read, "")?;
        p.functions.deployment(name).map(|d| Deployment::clone(&d))
    }

    /// What the component of a digest is.
    pub fn component(&self, digest: &str) -> Result<ComponentInfo> {
        self.parts.functions.info(digest)
    }

    // Artifacts.

    /// Save an artifact: a new name becomes the caller's; a new version of
    /// an existing one needs write access. Inside a scope, recorded as the
    /// scope's downstream (which needs write access to its Run).
    pub fn save_artifact(&self, caller: &Caller, name: &str, data: &[u8]) -> Result<ArtifactRef> {
        crate::scope::save_artifact(&self.parts, caller, name, data)
    }

    /// Load an artifact's current version, or the version of a digest; it
    /// needs read access. Inside a scope, recorded as the scope's upstream.
    pub fn load_artifact(
        &self,
        caller: &Caller,
        name: &str,
        version: Option<&str>,
    ) -> Result<(Vec<u8>, ArtifactRef)> {
        crate::scope::load_artifact(&self.parts, caller, name, version)
    }

    /// Every artifact the caller may see, with its versions.
    pub fn artifacts(&self, caller: &Caller) -> Result<Vec<Artifact>> {
        let sees = self.parts.visibility(caller)?;
        let mut all = self.parts.artifacts.list()?;
        all.retain(|a| sees(ObjectKind::Artifact, &a.name, a.creator.as_deref()));
        Ok(all)
    }

    /// One artifact the caller may see, with its versions.
    pub fn artifact(&self, caller: &Caller, name: &str) -> Result<Artifact> {
        let p = &self.parts;
        p.require(caller, ObjectKind::Artifact, name, Access::Read, "")?;
        p.artifacts.get(name)
    }

    /// What produced an artifact (its current version) or a Run, and what
    /// consumed it, transitively, as far as the caller may see.
    pub fn lineage(&self, caller: &Caller, name: &str) -> Result<crate::LineageNode> {
        self.parts.lineage(caller, name)
    }

    // Scopes.

    /// Open a scope: a Run of type `context`, `running` until it ends,
    /// owned by the caller and made inside the caller's scope, if any.
    pub fn open_scope(&self, caller: &Caller, name: &str) -> Result<Scope> {
        crate::scope::open(&self.parts, caller, name)?;
        Ok(Scope::new(self.clone(), caller.unscoped().in_scope(name)))
    }

    /// End an open scope (from any process; it needs write access): `Ok`
    /// completes it, `Err` records the message and ends it in `error`.
    pub fn end_scope(
        &self,
        caller: &Caller,
        name: &str,
        outcome: std::result::Result<(), String>,
    ) -> Result<Run> {
        let p = &self.parts;
        p.require(caller, ObjectKind::Run, name, Access::Write, "ending it")?;
        crate::scope::end(p, name, outcome)
    }

    /// Run `body` inside a new scope named `name`: it ends `completed` when
    /// the body returns `Ok`, `error` with the message when it returns
    /// `Err`, and the body's result is returned either way.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> rh_runtime::Result<()> {
    /// use rh_runtime::{Caller, Runtime, RunStatus};
    /// let dir = tempfile::tempdir().unwrap();
    /// let rt = Runtime::open(dir.path())?;
    /// let me = Caller::host();
    /// rt.save_artifact(&me, "my_existing_data", b"1,2,3")?;
    /// let n = rt
    ///     .in_scope(&me, "ctx_run", |r| async move {
    ///         let (bytes, _) = r.load_artifact("my_existing_data")?;
    ///         r.save_artifact("my_new_data", &bytes)?;
    ///         Ok::<_, rh_runtime::Error>(bytes.len())
    ///     })
    ///     .await?;
    /// assert_eq!(n, 5);
    /// let run = rt.run(&me, "ctx_run")?;
    /// assert_eq!(run.status(), RunStatus::Completed);
    /// assert_eq!(run.config().upstream_artifacts[0].name, "my_existing_data");
    /// assert_eq!(run.config().downstream_artifacts[0].name, "my_new_data");
    /// # Ok(()) }
    /// ```
    pub async fn in_scope<F, Fut, T, E>(
        &self,
        caller: &Caller,
        name: &str,
        body: F,
    ) -> std::result::Result<T, E>
    where
        F: FnOnce(Scope) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
        E: std::fmt::Display + From<Error>,
    {
        self.open_scope(caller, name)?.run_body(body).await
    }

    // Owners and shares.

    /// The owner (`creator`) of an object; `NotFound` when there is none
    /// of that name. Objects made without a user have no owner: only
    /// administrators reach them when users are checked.
    pub fn owner(&self, kind: ObjectKind, name: &str) -> Result<Option<String>> {
        self.parts.owner(kind, name)
    }

    /// What `user` may do to an object: `None` when they may not see it.
    pub fn access(&self, user: &User, kind: ObjectKind, name: &str) -> Result<Option<Access>> {
        let owner = self.parts.owner(kind, name)?;
        let g = crate::access::Guard {
            user: user.clone(),
            access: self.parts.access.clone(),
        };
        g.level(kind, name, owner.as_deref())
    }

    /// Grant `with` access to an object. Only its owner (or an
    /// administrator, or the embedding program) may.
    pub fn share(
        &self,
        caller: &Caller,
        kind: ObjectKind,
        name: &str,
        with: &str,
        access: Access,
    ) -> Result<()> {
        self.parts.share(caller, kind, name, with, access)
    }

    /// Take back what `with` was granted on an object; whether they had
    /// anything. Only its owner (or an administrator) may.
    pub fn unshare(
        &self,
        caller: &Caller,
        kind: ObjectKind,
        name: &str,
        with: &str,
    ) -> Result<bool> {
        self.parts.unshare(caller, kind, name, with)
    }

    /// The grants the caller may know of: those on what they own and those
    /// given to them (every grant for an administrator or the embedding
    /// program).
    pub fn shares(&self, caller: &Caller) -> Result<Vec<Share>> {
        self.parts.shares(caller)
    }

    /// The named kinds of object called `name` that the caller may see.
    pub fn kinds_of(&self, caller: &Caller, name: &str) -> Vec<ObjectKind> {
        self.parts.kinds_of(caller, name)
    }

    /// Delete a finished Run, a deployed name or an artifact; needs write
    /// access. A Run still running is refused (cancel it first). Deleting
    /// a name keeps the component and artifact bytes the recorded Runs
    /// refer to; it removes every grant on the object.
    pub fn delete(&self, caller: &Caller, kind: ObjectKind, name: &str) -> Result<()> {
        self.parts.delete(caller, kind, name)
    }
}

/// An open scope: a [`Caller`] acting inside its Run, with the verbs a
/// host program uses there. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Scope {
    runtime: Runtime,
    caller: Caller,
}

impl Scope {
    pub(crate) fn new(runtime: Runtime, caller: Caller) -> Scope {
        Scope { runtime, caller }
    }

    /// The scope's Run name.
    pub fn name(&self) -> &str {
        self.caller.scope().unwrap_or_default()
    }

    /// The caller acting inside this scope.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Call a function inside the scope.
    pub async fn call(&self, req: CallRequest) -> Result<Run> {
        self.runtime.call(&self.caller, req).await
    }

    /// Run commands inside the scope.
    pub async fn exec(&self, req: ExecRequest) -> Result<Run> {
        self.runtime.exec(&self.caller, req).await
    }

    /// Load an artifact's current version; recorded as upstream.
    pub fn load_artifact(&self, name: &str) -> Result<(Vec<u8>, ArtifactRef)> {
        self.runtime.load_artifact(&self.caller, name, None)
    }

    /// Save an artifact; recorded as downstream.
    pub fn save_artifact(&self, name: &str, data: &[u8]) -> Result<ArtifactRef> {
        self.runtime.save_artifact(&self.caller, name, data)
    }

    /// Run `body` in a scope nested in this one.
    pub async fn in_scope<F, Fut, T, E>(&self, name: &str, body: F) -> std::result::Result<T, E>
    where
        F: FnOnce(Scope) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
        E: std::fmt::Display + From<Error>,
    {
        self.runtime.in_scope(&self.caller, name, body).await
    }

    pub(crate) async fn run_body<F, Fut, T, E>(self, body: F) -> std::result::Result<T, E>
    where
        F: FnOnce(Scope) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
        E: std::fmt::Display + From<Error>,
    {
        let rt = self.runtime.clone();
        let (caller, name) = (self.caller.unscoped(), self.name().to_string());
        let out = body(self).await;
        let outcome = match &out {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        rt.end_scope(&caller, &name, outcome)?;
        out
    }

    /// End the scope now.
    pub fn end(self, outcome: std::result::Result<(), String>) -> Result<Run> {
        self.runtime
            .end_scope(&self.caller.unscoped(), self.name(), outcome)
    }
}
