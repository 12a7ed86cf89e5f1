//! [`Runtime`]: the embeddable entry point. It ties the engine, the function
//! store, the run store and the artifact store together and owns the life of
//! each Run: claim its folder, execute it, record how it ended.
//!
//! Runs executing in this process are tracked in memory (their cancel signal
//! and a "done" channel), so waiting on or cancelling them costs nothing.
//! Runs executed by another process sharing the root (a CLI worker, another
//! CLI call) are waited on by reading their `config.json`, and cancelled
//! through a request file under `cancel/` that their process watches.

use crate::access::{Access, Guard, ObjectKind, User, require_if};
use crate::artifacts::{Artifact, ArtifactStore};
use crate::call::{CallRequest, canonical_args};
use crate::commands::ExecRequest;
use crate::engine::{EngineOptions, RhEngine};
use crate::executor::{self, Cancel, Job};
use crate::functions::{
    ComponentInfo, ComponentKind, Deployment, FunctionDesc, FunctionStore, Loaded,
};
use crate::host::{ArtifactCtx, OutputBudget, OutputKind, OutputObserver};
use crate::record::{ArtifactRef, CmdRecord, FunctionRef, RunConfig, RunError, RunStatus, RunType};
use crate::run::{Run, RunFile, RunHandle};
use crate::runs::{ClaimError, Claimed, RESULT, RunStore};
use crate::{Error, Limits, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How to open a [`Runtime`].
///
/// ```
/// use rh_runtime::RuntimeOptions;
/// let dir = tempfile::tempdir().unwrap();
/// let opts = RuntimeOptions::new(dir.path())
///     .cluster("cpu")
///     .runs_dir(dir.path().join("logs"));
/// assert_eq!(opts.cluster, "cpu");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeOptions {
    /// Where the cluster keeps its data.
    pub root: PathBuf,
    /// Where Run folders go (default `<root>/runs`).
    pub runs_dir: Option<PathBuf>,
    /// The cluster's name, recorded in each Run.
    pub cluster: String,
    /// Limits of calls that do not set their own.
    pub limits: Limits,
    /// Engine settings.
    pub engine: EngineOptions,
    /// Answer calls from the result cache unless they say otherwise.
    pub cache: bool,
    /// `fsync` a Run's final `config.json` and `result.json` before they are
    /// renamed into place, and its folder after. Off by default: the rename
    /// already guarantees whole files after a process crash (`kill -9`);
    /// syncing adds power-loss durability at the cost of a few disk flushes
    /// per Run (`rh-wasm serve --durable`; BENCHMARKS.md).
    pub durable: bool,
    /// How many empty Run folders a background thread keeps ready, so that
    /// a call's path creates no file (default 16; 0 for a short-lived
    /// process, which would waste them). See BENCHMARKS.md.
    pub folders_ahead: usize,
    /// A store shared by a team's clusters: completed function Runs are
    /// published there, and cached calls (`call --cache`, `get-or-call` of a
    /// new name) are answered from Runs published by any cluster. It must be
    /// [`crate::RemoteStore::signed_with`] the team's key: entries are taken
    /// only when signed with it.
    pub shared_store: Option<crate::RemoteStore>,
    /// Publish to the shared store in the background (a long-lived host),
    /// or before the call returns (a process about to exit).
    pub publish_in_background: bool,
    /// Free disk space to keep: no Run starts while the filesystem of the
    /// Run folders (or of the root) has less, so Runs are refused up front
    /// instead of failing mid-write. `None`: 1 GiB, or 5% of a filesystem
    /// smaller than 20 GiB; `Some(0)`: no check.
    pub disk_reserve: Option<u64>,
}

impl RuntimeOptions {
    /// Options for a runtime rooted at `root`, with defaults otherwise.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RuntimeOptions {
            root: root.into(),
            runs_dir: None,
            cluster: "local".into(),
            limits: Limits::default(),
            engine: EngineOptions::default(),
            durable: false,
            cache: false,
            folders_ahead: 16,
            shared_store: None,
            publish_in_background: true,
            disk_reserve: None,
        }
    }

    /// Keep `bytes` of disk free (0: start Runs whatever the free space).
    pub fn disk_reserve(mut self, bytes: u64) -> Self {
        self.disk_reserve = Some(bytes);
        self
    }

    /// Whether publishing to the shared store happens after the call
    /// returns (default) or before.
    pub fn publish_in_background(mut self, background: bool) -> Self {
        self.publish_in_background = background;
        self
    }

    /// Publish completed Runs to, and take cache hits from, `store` (signed
    /// with the team's key).
    pub fn shared_store(mut self, store: crate::RemoteStore) -> Self {
        self.shared_store = Some(store);
        self
    }

    /// Keep `n` Run folders made ahead of need (0: make each on the spot).
    pub fn folders_ahead(mut self, n: usize) -> Self {
        self.folders_ahead = n;
        self
    }

    /// Answer calls from the result cache by default.
    pub fn cache(mut self, cache: bool) -> Self {
        self.cache = cache;
        self
    }

    /// Put Run folders in `dir`.
    pub fn runs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runs_dir = Some(dir.into());
        self
    }

    /// Name the cluster.
    pub fn cluster(mut self, name: impl Into<String>) -> Self {
        self.cluster = name.into();
        self
    }

    /// Default limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The memory all running guests may ask for together, in bytes (see
    /// [`EngineOptions::memory_total`]).
    pub fn memory_total(mut self, bytes: u64) -> Self {
        self.engine.memory_total = Some(bytes);
        self
    }

    /// Engine settings.
    pub fn engine(mut self, engine: EngineOptions) -> Self {
        self.engine = engine;
        self
    }

    /// Sync `config.json` to disk before each replace.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }
}

/// The runtime of one cluster: deploy components, call functions, and find
/// the Runs they made.
///
/// Cheap to clone; clones share everything. Calls need a Tokio runtime.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("root", &self.inner.opts.root)
            .field("cluster", &self.inner.opts.cluster)
            .finish_non_exhaustive()
    }
}

struct Active {
    cancel: Arc<Cancel>,
    done: watch::Receiver<bool>,
    progress: watch::Receiver<u64>,
}

struct Inner {
    opts: RuntimeOptions,
    engine: RhEngine,
    functions: FunctionStore,
    runs: RunStore,
    artifacts: Arc<ArtifactStore>,
    access: Arc<crate::access::AccessStore>,
    cache: crate::cache::Cache,
    active: Mutex<HashMap<String, Active>>,
    watcher: OnceLock<()>,
    /// The files of finished Runs, hashed once: see [`Runtime::run_files`].
    file_lists: Mutex<HashMap<String, FileList>>,
    space: crate::disk::SpaceCheck,
}

/// Which Run a remembered file list belongs to: a Run replaced or deleted
/// and made again under the same name has another folder or other times.
type FolderStamp = (u64, u64, Option<String>, Option<String>);

/// A finished Run's files, and which Run they are of.
type FileList = (FolderStamp, Arc<Vec<RunFile>>);

/// How many finished Runs' file lists are remembered.
const FILE_LISTS: usize = 4096;

/// The function a call resolves to.
#[derive(Clone)]
struct Target {
    deployment: String,
    desc: FunctionDesc,
    digest: String,
    loaded: Arc<Loaded>,
}

/// A claimed Run, ready to execute.
struct Started {
    config: RunConfig,
    claimed: Claimed,
    work: Work,
    limits: Limits,
    observer: Option<OutputObserver>,
    cancel: Arc<Cancel>,
    done: watch::Sender<bool>,
    budget: Arc<OutputBudget>,
    /// The user the Run acts for, when users are checked.
    guard: Option<Guard>,
}

/// What a claimed Run will execute.
enum Work {
    Function {
        target: Target,
        args: Vec<u8>,
    },
    Commands(crate::commands::Commands),
    /// Nothing: copy a completed Run's result and output (a cache hit).
    /// The source, where it came from when not this cluster, and its local
    /// copy, removed once the hit is recorded.
    CacheHit(Box<Run>, Option<String>, Option<crate::shared::Copy>),
}

/// A completed Run that can answer a call.
struct Hit {
    run: Run,
    /// Its address in the shared store, when another cluster made it.
    origin: Option<String>,
    /// Its copy under `<root>/shared/`, when it came from there.
    copy: Option<crate::shared::Copy>,
}

enum Begun {
    Started(Box<Started>),
    Exists(Box<RunConfig>),
}

/// What a call needs once its arguments are checked.
#[derive(Clone)]
struct Prepared {
    target: Target,
    /// The user the call acts for, when users are checked.
    guard: Option<Guard>,
    args: Vec<u8>,
    input_digest: String,
    limits: Limits,
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
        let runs = RunStore::open(&root, runs_dir, opts.durable, opts.folders_ahead)?;
        let space = crate::disk::SpaceCheck::new(runs.runs_dir(), &root, opts.disk_reserve);
        // A default no call could run under is a mistake to say at once.
        engine.check_memory(opts.limits.memory)?;
        let inner = Inner {
            functions: FunctionStore::open(&root)?,
            runs,
            artifacts: Arc::new(ArtifactStore::open(&root)?),
            access: Arc::new(crate::access::AccessStore::open(&root)?),
            cache: crate::cache::Cache::open(&root)?,
            engine,
            opts,
            active: Mutex::new(HashMap::new()),
            watcher: OnceLock::new(),
            file_lists: Mutex::new(HashMap::new()),
            space,
        };
        // Copies of shared Runs that processes which died were using.
        crate::shared::sweep(&root.join("shared"), &|host| inner.runs.host_alive(host));
        let rt = Runtime {
            inner: Arc::new(inner),
        };
        crate::scope::sweep_journals(&rt);
        Ok(rt)
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.inner.opts.root
    }

    /// Where Run folders are.
    pub fn runs_dir(&self) -> &Path {
        self.inner.runs.runs_dir()
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.inner.opts.cluster
    }

    /// Whether calls use the result cache unless they say otherwise.
    pub fn caches_by_default(&self) -> bool {
        self.inner.opts.cache
    }

    /// The default limits.
    pub fn default_limits(&self) -> &Limits {
        &self.inner.opts.limits
    }

    /// Validate, compile and store a component under `name`. Redeploying a
    /// name with other bytes makes a new version.
    pub async fn deploy(&self, bytes: &[u8], name: &str) -> Result<Deployment> {
        self.deploy_as(bytes, name, None).await
    }

    /// Deploy as `user`: a new name becomes theirs; redeploying an existing
    /// one needs write access to it.
    pub async fn deploy_as(
        &self,
        bytes: &[u8],
        name: &str,
        user: Option<&User>,
    ) -> Result<Deployment> {
        let i = &self.inner;
        let guard = self.guard(user);
        let allow = |d: &Deployment| {
            require_if(
                guard.as_ref(),
                ObjectKind::Function,
                &d.name,
                d.creator.as_deref(),
                Access::Write,
                "redeploying it",
            )
            .map_err(|e| crate::access::taken(e, ObjectKind::Function, &d.name))
        };
        let creator = user.map(|u| u.name.as_str());
        i.functions
            .deploy(&i.engine, &i.artifacts, bytes, name, creator, &allow)
            .await
    }

    /// Deploy a file, named by `name` or else by the file's stem.
    pub async fn deploy_file(&self, path: &Path, name: Option<&str>) -> Result<Deployment> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let stem;
        let name = match name {
            Some(n) => n,
            None => {
                stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .replace('-', "_");
                &stem
            }
        };
        self.deploy(&bytes, name).await
    }

    /// Every deployed name.
    pub fn deployments(&self) -> Result<Vec<Deployment>> {
        self.inner.functions.list()
    }

    /// One deployed name.
    pub fn deployment(&self, name: &str) -> Result<Deployment> {
        self.inner.functions.deployment(name)
    }

    /// What the component of a digest is.
    pub fn component(&self, digest: &str) -> Result<ComponentInfo> {
        self.inner.functions.info(digest)
    }

    /// The function a call names, for `guard`'s user when users are
    /// checked: a deployed name they may not read answers exactly like a
    /// missing one, before anything about it (its kind, its exports) shows.
    fn resolve(&self, function: &str, guard: Option<&Guard>) -> Result<Target> {
        let (dep_name, fn_name) = match function.split_once('/') {
            Some((d, f)) => (d, Some(f)),
            None => (function, None),
        };
        let dep = self.inner.functions.deployment(dep_name)?;
        if let Some(g) = guard {
            g.require(
                ObjectKind::Function,
                &dep.name,
                dep.creator.as_deref(),
                Access::Read,
                "calling it",
            )?;
        }
        let info = dep.info.clone().expect("deployment carries its info");
        if info.kind == ComponentKind::Command {
            return Err(Error::Invalid(format!(
                "`{dep_name}` is a command component; run it with exec"
            )));
        }
        let names = || {
            info.functions
                .iter()
                .map(|f| format!("{dep_name}/{}", f.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let desc = match fn_name {
            Some(f) => info.functions.iter().find(|d| d.name == f).ok_or_else(|| {
                Error::UnknownFunction {
                    name: function.to_string(),
                    hint: format!("; `{dep_name}` exports {}", names()),
                }
            })?,
            None if info.functions.len() == 1 => &info.functions[0],
            None => info
                .functions
                .iter()
                .find(|d| d.name == dep_name)
                .ok_or_else(|| Error::UnknownFunction {
                    name: function.to_string(),
                    hint: format!(
                        "; `{dep_name}` exports several functions, call one of {}",
                        names()
                    ),
                })?,
        };
        let digest = dep.digest().to_string();
        let loaded = self.inner.functions.load(&self.inner.engine, &digest)?;
        Ok(Target {
            deployment: dep.name.clone(),
            desc: desc.clone(),
            digest,
            loaded,
        })
    }

    fn prepare(&self, req: &CallRequest) -> Result<Prepared> {
        if let Some(name) = &req.run_name {
            crate::validate_run_name(name)?;
        }
        if let Some(parent) = &req.parent_run {
            crate::validate_run_name(parent)?;
        }
        let guard = self.guard(req.user.as_ref());
        let target = self.resolve(&req.function, guard.as_ref())?;
        if let (Some(g), Some(parent)) = (&guard, &req.parent_run) {
            self.require_run(g, parent, Access::Write, "making Runs inside it")?;
        }
        let args = canonical_args(&target.desc, &req.args)?;
        let limits = req.limits(&self.inner.opts.limits)?;
        self.inner.engine.check_memory(limits.memory)?;
        Ok(Prepared {
            guard,
            input_digest: crate::artifacts::digest_of(&args),
            target,
            args,
            limits,
        })
    }

    fn config_for(&self, req: &CallRequest, p: &Prepared, name: String) -> RunConfig {
        let mut c = RunConfig::function(name, self.inner.opts.cluster.clone());
        c.fn_name = Some(p.target.desc.name.clone());
        c.function = Some(FunctionRef {
            name: p.target.deployment.clone(),
            digest: p.target.digest.clone(),
        });
        c.input_digest = Some(p.input_digest.clone());
        c.limits = Some(p.limits.clone());
        c.parent_run = req.parent_run.clone();
        c.creator = req.creator.clone();
        c
    }

    /// Claim the Run's folder for a function call.
    fn begin(
        &self,
        req: &CallRequest,
        p: Prepared,
        replace: Option<&dyn Fn(&RunConfig) -> bool>,
    ) -> Result<Begun> {
        let make = |name: String| self.config_for(req, &p, name);
        self.begin_with(
            req.run_name.as_deref(),
            &p.target.desc.name,
            &make,
            &p.args,
            &p.limits,
            req.observer.clone(),
            Work::Function {
                target: p.target.clone(),
                args: p.args.clone(),
            },
            replace,
            p.guard.as_ref(),
        )
    }

    /// The Run already under `req`'s name, or, when there is none, that
    /// name claimed for a new Run. Looking first keeps the common case (the
    /// Run exists) to one read; the claim still settles races. With a shared
    /// store, a new Run is answered from a Run that any cluster published
    /// for the same call when there is one.
    async fn find_or_begin(&self, req: &CallRequest, p: &Prepared) -> Result<Begun> {
        let name = req.run_name.as_deref().unwrap_or_default();
        match self.inner.runs.load(name) {
            Ok(existing) => {
                if let Some(g) = &p.guard {
                    self.may_use(g, &existing, Access::Read, "")?;
                }
                return Ok(Begun::Exists(Box::new(existing)));
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        if self.inner.opts.shared_store.is_some() {
            let key = crate::cache::key(&p.target.digest, &p.target.desc.name, &p.input_digest);
            if let Some(source) = self.answer_source(&key, p).await {
                return self.begin_hit(req, p, source, None);
            }
        }
        self.begin(req, p.clone(), None)
    }

    /// Claim the Run's folder for a call answered by copying `source` (a
    /// completed Run, and where it came from when not this cluster).
    fn begin_hit(
        &self,
        req: &CallRequest,
        p: &Prepared,
        hit: Hit,
        replace: Option<&dyn Fn(&RunConfig) -> bool>,
    ) -> Result<Begun> {
        let make = |name: String| self.config_for(req, p, name);
        self.begin_with(
            req.run_name.as_deref(),
            &p.target.desc.name,
            &make,
            &p.args,
            &p.limits,
            req.observer.clone(),
            Work::CacheHit(Box::new(hit.run), hit.origin, hit.copy),
            replace,
            p.guard.as_ref(),
        )
    }

    /// A completed Run that can answer `p`: one of this cluster's, else one
    /// published to the shared store (with its address).
    async fn answer_source(&self, key: &str, p: &Prepared) -> Option<Hit> {
        match self.cache_source(key, p) {
            Some(run) => Some(Hit {
                run,
                origin: None,
                copy: None,
            }),
            None => self.shared_source(key, p).await,
        }
    }

    /// Claim a Run's folder (a new name, or replacing a finished Run when
    /// `replace` allows) and register it as executing in this process.
    #[allow(
        clippy::too_many_arguments,
        reason = "one private call site per kind of Run"
    )]
    fn begin_with(
        &self,
        run_name: Option<&str>,
        stem: &str,
        make_config: &dyn Fn(String) -> RunConfig,
        inputs: &[u8],
        limits: &Limits,
        observer: Option<OutputObserver>,
        work: Work,
        replace: Option<&dyn Fn(&RunConfig) -> bool>,
        guard: Option<&Guard>,
    ) -> Result<Begun> {
        // Before anything of the Run is made: a disk nearly full refuses it.
        self.inner.space.check()?;
        let mut attempts = 0;
        // A Run is replaced only by a user who may write it; its owner,
        // when that is someone else, keeps write access to the new one.
        let replaced_owner = std::cell::RefCell::new(None);
        let may_replace = |c: &RunConfig| {
            let allowed = replace.is_some_and(|pred| pred(c))
                && guard.is_none_or(|g| {
                    g.has(
                        ObjectKind::Run,
                        &c.name,
                        c.creator.as_deref(),
                        Access::Write,
                    )
                });
            if allowed {
                *replaced_owner.borrow_mut() = c.creator.clone();
            }
            allowed
        };
        loop {
            let name = match run_name {
                Some(n) => n.to_string(),
                None => crate::auto_run_name(stem),
            };
            let mut config = make_config(name);
            let claimed = match replace {
                Some(_) => self
                    .inner
                    .runs
                    .replace(&mut config, Some(inputs), may_replace),
                None => self.inner.runs.claim(&mut config, Some(inputs)),
            };
            match claimed {
                Ok(claimed) => {
                    if let (Some(g), Some(owner)) = (guard, replaced_owner.borrow().as_deref())
                        && owner != g.user.name
                    {
                        self.inner.access.grant(
                            ObjectKind::Run,
                            &config.name,
                            owner,
                            Access::Write,
                        )?;
                    }
                    let (done, rx) = watch::channel(false);
                    let cancel = Arc::new(Cancel::default());
                    let (budget, progress) = OutputBudget::new(limits.output);
                    self.inner
                        .active
                        .lock()
                        .expect("active runs poisoned")
                        .insert(
                            config.name.clone(),
                            Active {
                                cancel: cancel.clone(),
                                done: rx,
                                progress,
                            },
                        );
                    self.ensure_cancel_watcher();
                    return Ok(Begun::Started(Box::new(Started {
                        config,
                        claimed,
                        work,
                        limits: limits.clone(),
                        observer,
                        cancel,
                        done,
                        budget,
                        guard: guard.cloned(),
                    })));
                }
                Err(ClaimError::Exists(existing)) if run_name.is_none() && attempts < 8 => {
                    drop(existing);
                    attempts += 1;
                }
                Err(ClaimError::Exists(existing)) => {
                    if let Some(g) = guard {
                        let need = if replace.is_some() && existing.status.is_terminal() {
                            Access::Write
                        } else {
                            Access::Read
                        };
                        self.may_use(g, &existing, need, "running it again")?;
                    }
                    return Ok(Begun::Exists(existing));
                }
                Err(ClaimError::Other(e)) => return Err(e),
            }
        }
    }

    /// Execute a claimed Run in a task of its own and wait for it: a caller
    /// that goes away (a dropped future, a client that disconnects) cannot
    /// leave the Run half-recorded; it runs to its end regardless.
    async fn execute(&self, s: Started) -> Result<Run> {
        let rt = self.clone();
        match tokio::spawn(async move { rt.execute_here(s).await }).await {
            Ok(r) => r,
            Err(e) => Err(Error::Engine(format!("the Run's task failed: {e}"))),
        }
    }

    /// Execute a claimed Run to its end and record how it ended.
    async fn execute_here(&self, s: Started) -> Result<Run> {
        let Started {
            mut config,
            claimed,
            work,
            limits,
            observer,
            cancel,
            done,
            budget,
            guard,
        } = s;
        let eng = &self.inner.engine;
        let artifacts = ArtifactCtx::new(self.inner.artifacts.clone(), config.name.clone(), guard);
        // A Run that executes guest code waits for its memory limit's share
        // of the budget and a free instance slot (its timeout starts once
        // it has them); a cancel ends the wait.
        let slot = match &work {
            Work::CacheHit(..) => Ok(None),
            _ => tokio::select! {
                biased;
                () = cancel.cancelled() => Err(Error::Cancelled { run: config.name.clone() }),
                admitted = eng.admit(limits.memory) => admitted.map(Some),
            },
        };
        let outcome = match (&work, slot) {
            (_, Err(e)) => executor::Outcome {
                result: Err(e),
                fuel_consumed: 0,
                upstream: Vec::new(),
                downstream: Vec::new(),
            },
            (Work::Function { target, args }, Ok(_slot)) => {
                let job = Job {
                    run: &config.name,
                    fn_name: &target.desc.name,
                    args,
                    limits: &limits,
                    stdout: claimed.stdout,
                    stderr: claimed.stderr,
                    observer,
                    budget,
                    artifacts,
                };
                executor::call_function(eng, &target.loaded, job, &cancel).await
            }
            (Work::Commands(cmds), Ok(_slot)) => {
                let name = config.name.clone();
                let job = Job {
                    run: &name,
                    fn_name: "",
                    args: &[],
                    limits: &limits,
                    stdout: claimed.stdout,
                    stderr: claimed.stderr,
                    observer,
                    budget,
                    artifacts,
                };
                crate::commands::run(eng, cmds, &claimed.dir, job, &cancel, &mut config.cmds).await
            }
            (Work::CacheHit(source, origin, _copy), Ok(_)) => {
                config.cache_hit =
                    Some(origin.clone().unwrap_or_else(|| source.name().to_string()));
                // Up to the output cap of file copying: off the workers, on
                // the blocking pool (no thread made per hit).
                let (src, obs) = ((**source).clone(), observer.clone());
                let (dir, out, err) = (claimed.dir.clone(), claimed.stdout, claimed.stderr);
                tokio::task::spawn_blocking(move || copy_hit(&src, &dir, out, err, obs.as_ref()))
                    .await
                    .unwrap_or_else(|e| executor::Outcome {
                        result: Err(Error::Engine(format!("cache copy task: {e}"))),
                        fuel_consumed: 0,
                        upstream: Vec::new(),
                        downstream: Vec::new(),
                    })
            }
        };
        config.fuel_consumed = Some(outcome.fuel_consumed);
        config.upstream_artifacts = outcome.upstream;
        config.downstream_artifacts = outcome.downstream;
        let mut result = outcome.result.and_then(|bytes| {
            serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(|e| Error::Trap {
                run: config.name.clone(),
                message: format!("the function returned bytes that are not JSON: {e}"),
            })?;
            self.inner.runs.write_result(&claimed.dir, &bytes)?;
            Ok(bytes)
        });
        self.end(&mut config, result.as_ref().map(|_| ()));
        if let Err(e) = self.inner.runs.finish(&config) {
            tracing::error!("recording the end of run {}: {e}", config.name);
            if result.is_ok() {
                result = Err(e);
            }
        }
        if result.is_ok()
            && matches!(work, Work::Function { .. })
            && let (Some(f), Some(n), Some(i)) =
                (&config.function, &config.fn_name, &config.input_digest)
        {
            let key = crate::cache::key(&f.digest, n, i);
            if let Err(e) = self.inner.cache.record(&key, &config.name) {
                tracing::warn!("indexing run {} for the cache: {e}", config.name);
            }
            if config.cache_hit.is_none() {
                self.publish(&claimed.dir, &key).await;
            }
        }
        self.inner
            .active
            .lock()
            .expect("active runs poisoned")
            .remove(&config.name);
        let _ = done.send(true);
        result.map(|bytes| Run::from_parts(claimed.dir, config).with_result(bytes))
    }

    fn end(&self, config: &mut RunConfig, result: std::result::Result<(), &Error>) {
        config.end_time = Some(crate::names::now_rfc3339());
        match result {
            Ok(()) => config.status = RunStatus::Completed,
            Err(e) => {
                config.status = if matches!(e, Error::Cancelled { .. }) {
                    RunStatus::Cancelled
                } else {
                    RunStatus::Error
                };
                let message = match e {
                    Error::Failed { message, .. }
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
        }
    }

    fn start_started(&self, s: Started) -> Result<RunHandle> {
        let name = s.config.name.clone();
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Invalid("starting a Run needs a Tokio runtime".into()))?;
        let rt = self.clone();
        handle.spawn(async move {
            let _ = rt.execute_here(s).await;
        });
        Ok(RunHandle {
            runtime: self.clone(),
            name,
        })
    }

    fn exists_error(&self, existing: &RunConfig, hint: &str) -> Error {
        Error::RunExists {
            run: existing.name.clone(),
            status: existing.status,
            hint: hint.to_string(),
        }
    }

    /// Call a function and wait for it to end. `Ok` holds the completed Run;
    /// a Run that failed is recorded and its error returned (`OutOfFuel`,
    /// `Timeout`, `Trap`, `Failed`, `Cancelled`...).
    pub async fn call(&self, req: CallRequest) -> Result<Run> {
        if req.cache.unwrap_or(self.inner.opts.cache) {
            return self.cached_call(req).await;
        }
        let p = self.prepare(&req)?;
        let replace = |c: &RunConfig| c.status.is_terminal();
        let replace: Option<&dyn Fn(&RunConfig) -> bool> = req.rerun.then_some(&replace);
        match self.begin(&req, p, replace)? {
            Begun::Started(s) => self.execute(*s).await,
            Begun::Exists(c) => {
                Err(self.exists_error(&c, "; use get-or-call to reuse it, or rerun to replace it"))
            }
        }
    }

    /// Validate, compile and store a component by its digest without naming
    /// it (for commands given as files).
    pub async fn add_component(&self, bytes: &[u8]) -> Result<ComponentInfo> {
        self.add_component_as(bytes, None).await
    }

    /// Add a component as `user`, who may then run it by digest.
    pub async fn add_component_as(
        &self,
        bytes: &[u8],
        user: Option<&User>,
    ) -> Result<ComponentInfo> {
        let i = &self.inner;
        let info = i
            .functions
            .store(&i.engine, &i.artifacts, bytes)
            .await?
            .info
            .clone();
        if let Some(u) = user
            && i.access
                .granted(ObjectKind::Component, &info.digest, &u.name)?
                .is_none()
        {
            i.access
                .grant(ObjectKind::Component, &info.digest, &u.name, Access::Read)?;
        }
        Ok(info)
    }

    fn begin_exec(
        &self,
        req: &ExecRequest,
        replace: Option<&dyn Fn(&RunConfig) -> bool>,
    ) -> Result<Begun> {
        if req.cmds.is_empty() {
            return Err(Error::Invalid("exec needs at least one command".into()));
        }
        if let Some(name) = &req.run_name {
            crate::validate_run_name(name)?;
        }
        if let Some(parent) = &req.parent_run {
            crate::validate_run_name(parent)?;
        }
        let guard = self.guard(req.user.as_ref());
        if let (Some(g), Some(parent)) = (&guard, &req.parent_run) {
            self.require_run(g, parent, Access::Write, "making Runs inside it")?;
        }
        let limits = req.limits(&self.inner.opts.limits)?;
        self.inner.engine.check_memory(limits.memory)?;
        let mut cmds = Vec::with_capacity(req.cmds.len());
        let mut records = Vec::with_capacity(req.cmds.len());
        for spec in &req.cmds {
            let digest = if spec.component.starts_with("sha256:") {
                // A component by digest: whoever uploaded its bytes may run it.
                if let Some(g) = &guard {
                    g.require(
                        ObjectKind::Component,
                        &spec.component,
                        None,
                        Access::Read,
                        "",
                    )?;
                }
                spec.component.clone()
            } else {
                let dep = self.inner.functions.deployment(&spec.component)?;
                if let Some(g) = &guard {
                    g.require(
                        ObjectKind::Function,
                        &dep.name,
                        dep.creator.as_deref(),
                        Access::Read,
                        "running it",
                    )?;
                }
                dep.digest().to_string()
            };
            let loaded = self.inner.functions.load(&self.inner.engine, &digest)?;
            if loaded.info.kind != ComponentKind::Command {
                return Err(Error::Invalid(format!(
                    "`{}` is a function component, not a command; call it with call",
                    spec.cmd
                )));
            }
            records.push(CmdRecord {
                cmd: spec.cmd.clone(),
                args: spec.args.clone(),
                exit_code: None,
                digest: Some(digest),
            });
            cmds.push((spec.clone(), loaded));
        }
        let inputs = serde_json::to_vec(&records).map_err(|e| Error::Invalid(e.to_string()))?;
        let input_digest = crate::artifacts::digest_of(&inputs);
        let make = |name: String| {
            let mut c = RunConfig::function(name, self.inner.opts.cluster.clone());
            c.run_type = RunType::Command;
            c.cmds = records.clone();
            c.input_digest = Some(input_digest.clone());
            c.limits = Some(limits.clone());
            c.parent_run = req.parent_run.clone();
            c.creator = req.creator.clone();
            c
        };
        self.begin_with(
            req.run_name.as_deref(),
            "exec",
            &make,
            &inputs,
            &limits,
            req.observer.clone(),
            Work::Commands(crate::commands::Commands {
                cmds,
                keep_going: req.keep_going,
            }),
            replace,
            guard.as_ref(),
        )
    }

    /// Run commands and wait for them to end. `Ok` holds the completed Run
    /// (every command exited 0); otherwise the Run's error, `ExitCode` for
    /// a command that exited non-zero.
    pub async fn exec(&self, req: ExecRequest) -> Result<Run> {
        let replace = |c: &RunConfig| c.status.is_terminal();
        let replace: Option<&dyn Fn(&RunConfig) -> bool> = req.rerun.then_some(&replace);
        match self.begin_exec(&req, replace)? {
            Begun::Started(s) => self.execute(*s).await,
            Begun::Exists(c) => Err(self.exists_error(&c, "; rerun to replace it")),
        }
    }

    /// Start commands and return at once with a handle on their Run.
    pub fn start_exec(&self, req: ExecRequest) -> Result<RunHandle> {
        let replace = |c: &RunConfig| c.status.is_terminal();
        let replace: Option<&dyn Fn(&RunConfig) -> bool> = req.rerun.then_some(&replace);
        match self.begin_exec(&req, replace)? {
            Begun::Started(s) => self.start_started(*s),
            Begun::Exists(c) => Err(self.exists_error(&c, "; rerun to replace it")),
        }
    }

    /// A call answered from the result cache when it can be; otherwise
    /// executed (once, however many ask at the same time) and indexed.
    async fn cached_call(&self, req: CallRequest) -> Result<Run> {
        let p = self.prepare(&req)?;
        let key = crate::cache::key(&p.target.digest, &p.target.desc.name, &p.input_digest);
        let _lock = self.inner.cache.lock(&key).await?;
        let source = self.answer_source(&key, &p).await;
        let replace = |c: &RunConfig| c.status.is_terminal();
        let replace: Option<&dyn Fn(&RunConfig) -> bool> = req.rerun.then_some(&replace);
        let begun = match source {
            Some(source) => self.begin_hit(&req, &p, source, replace)?,
            None => self.begin(&req, p, replace)?,
        };
        match begun {
            Begun::Started(s) => self.execute(*s).await,
            Begun::Exists(c) => {
                Err(self.exists_error(&c, "; use get-or-call to reuse it, or rerun to replace it"))
            }
        }
    }

    /// A completed Run that can answer this call: same digest, function and
    /// inputs, its files all there, and the artifacts it loaded unchanged.
    fn cache_source(&self, key: &str, p: &Prepared) -> Option<Run> {
        self.inner
            .cache
            .candidates(key)
            .into_iter()
            .filter_map(|name| self.run(&name).ok())
            .find(|run| self.can_answer(run, p))
    }

    /// Whether `run` can answer the call `p`: completed by the same
    /// component digest, function and inputs, with its files, and the
    /// artifact versions it loaded still current here.
    fn can_answer(&self, run: &Run, p: &Prepared) -> bool {
        let c = run.config();
        if !crate::cache::same_call(c, &p.target.digest, &p.target.desc.name, &p.input_digest) {
            return false;
        }
        let files = [RESULT, crate::runs::STDOUT, crate::runs::STDERR];
        if !files
            .iter()
            .all(|f| std::fs::symlink_metadata(run.file(f)).is_ok_and(|m| m.is_file()))
        {
            return false;
        }
        // The caller, when users are checked, must be able to read every
        // artifact the Run loaded: a hit gives only what they could have
        // computed themselves.
        c.upstream_artifacts.iter().all(|a| {
            self.inner.artifacts.get(&a.name).ok().is_some_and(|art| {
                art.versions.last().is_some_and(|v| v.digest == a.digest)
                    && p.guard.as_ref().is_none_or(|g| {
                        g.has(
                            ObjectKind::Artifact,
                            &art.name,
                            art.creator.as_deref(),
                            Access::Read,
                        )
                    })
            })
        })
    }

    /// A Run published to the shared store by any cluster that can answer
    /// `p` (signed with the team's key, no bigger than `p` could have made),
    /// copied here (verified) under `<root>/shared/` until the hit is
    /// recorded; with its address. Anything else is a miss.
    async fn shared_source(&self, key: &str, p: &Prepared) -> Option<Hit> {
        let i = &self.inner;
        let store = i.opts.shared_store.as_ref()?.sub(&format!("cache/{key}"));
        let host = match i.runs.host_id() {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("shared store: {e}");
                return None;
            }
        };
        let bounds = crate::shared::Bounds {
            output: p.limits.output,
            result: p.limits.memory,
            inputs: p.args.len() as u64,
        };
        let shared = i.opts.root.join("shared");
        let answers = |run: &Run| self.can_answer(run, p);
        let (run, url, copy) =
            crate::shared::lookup(&store, &shared, host, &bounds, &answers).await?;
        Some(Hit {
            run,
            origin: Some(url),
            copy: Some(copy),
        })
    }

    /// Publish a completed function Run to the shared store, in the
    /// background unless the options say otherwise: a cache, so a failure is
    /// logged and nothing else.
    async fn publish(&self, dir: &Path, key: &str) {
        let Some(store) = &self.inner.opts.shared_store else {
            return;
        };
        let store = store.sub(&format!("cache/{key}"));
        let dir = dir.to_path_buf();
        let job = async move {
            if let Err(e) = store.push(&dir, &|_, _| {}).await {
                tracing::warn!("publishing {} to the shared store: {e}", dir.display());
            }
        };
        if self.inner.opts.publish_in_background {
            tokio::spawn(job);
        } else {
            job.await;
        }
    }

    /// Start a call and return at once with a handle on its Run (which is
    /// `running` by then).
    pub fn start(&self, req: CallRequest) -> Result<RunHandle> {
        let p = self.prepare(&req)?;
        let replace = |c: &RunConfig| c.status.is_terminal();
        let replace: Option<&dyn Fn(&RunConfig) -> bool> = req.rerun.then_some(&replace);
        match self.begin(&req, p, replace)? {
            Begun::Started(s) => self.start_started(*s),
            Begun::Exists(c) => {
                Err(self.exists_error(&c, "; use get-or-run to reuse it, or rerun to replace it"))
            }
        }
    }

    /// Why an existing Run is not the one this call would make, if it is not.
    fn mismatch(existing: &RunConfig, p: &Prepared) -> Option<String> {
        let f = existing.function.as_ref();
        if f.map(|f| f.digest.as_str()) != Some(p.target.digest.as_str())
            || existing.fn_name.as_deref() != Some(p.target.desc.name.as_str())
        {
            return Some(format!(
                "by another function or version ({}{} {})",
                f.map(|f| f.name.as_str()).unwrap_or("?"),
                existing
                    .fn_name
                    .as_deref()
                    .map(|n| format!("/{n}"))
                    .unwrap_or_default(),
                f.map(|f| short(&f.digest)).unwrap_or("?"),
            ));
        }
        if existing.input_digest.as_deref() != Some(p.input_digest.as_str()) {
            return Some("from other inputs".into());
        }
        None
    }

    /// The completed Run named in `req` if it was made by the same function
    /// version and inputs; else call (once, however many ask at the same
    /// time). A Run still running is waited for; one that ended in `error`
    /// or `cancelled` is run again; one made differently is an error unless
    /// `req.rerun`.
    pub async fn get_or_call(&self, req: CallRequest) -> Result<Run> {
        let Some(name) = req.run_name.clone() else {
            return Err(Error::Invalid("get-or-call needs a run name".into()));
        };
        let p = self.prepare(&req)?;
        loop {
            let existing = match self.find_or_begin(&req, &p).await? {
                Begun::Started(s) => return self.execute(*s).await,
                Begun::Exists(c) => c,
            };
            let mismatch = Self::mismatch(&existing, &p);
            let rerun = req.rerun
                || (mismatch.is_none()
                    && matches!(existing.status, RunStatus::Error | RunStatus::Cancelled));
            if let Some(reason) = &mismatch
                && !req.rerun
            {
                return Err(Error::RunMismatch {
                    run: name,
                    reason: reason.clone(),
                });
            }
            if !existing.status.is_terminal() {
                if mismatch.is_some() {
                    return Err(
                        self.exists_error(&existing, "; it is still running, cancel it first")
                    );
                }
                let run = self.wait(&name).await?;
                return match run.status() {
                    RunStatus::Completed => Ok(run),
                    _ => Err(run.error()),
                };
            }
            if !rerun {
                return Ok(Run::from_parts(self.inner.runs.dir(&name), *existing));
            }
            // Replace it, unless someone else already has.
            let seen = existing.start_time.clone();
            let pred = move |c: &RunConfig| c.status.is_terminal() && c.start_time == seen;
            match self.begin(&req, p.clone(), Some(&pred))? {
                Begun::Started(s) => return self.execute(*s).await,
                Begun::Exists(_) => continue,
            }
        }
    }

    /// Like [`Runtime::get_or_call`], but returns a handle at once: on the
    /// existing Run whatever its status, or on a newly started one.
    pub async fn get_or_run(&self, req: CallRequest) -> Result<RunHandle> {
        let Some(name) = req.run_name.clone() else {
            return Err(Error::Invalid("get-or-run needs a run name".into()));
        };
        let p = self.prepare(&req)?;
        loop {
            let existing = match self.find_or_begin(&req, &p).await? {
                Begun::Started(s) => return self.start_started(*s),
                Begun::Exists(c) => c,
            };
            let mismatch = Self::mismatch(&existing, &p);
            if let Some(reason) = &mismatch
                && !req.rerun
            {
                return Err(Error::RunMismatch {
                    run: name,
                    reason: reason.clone(),
                });
            }
            let rerun =
                req.rerun || matches!(existing.status, RunStatus::Error | RunStatus::Cancelled);
            if !existing.status.is_terminal() || !rerun {
                if mismatch.is_some() {
                    return Err(
                        self.exists_error(&existing, "; it is still running, cancel it first")
                    );
                }
                return Ok(RunHandle {
                    runtime: self.clone(),
                    name,
                });
            }
            let seen = existing.start_time.clone();
            let pred = move |c: &RunConfig| c.status.is_terminal() && c.start_time == seen;
            match self.begin(&req, p.clone(), Some(&pred))? {
                Begun::Started(s) => return self.start_started(*s),
                Begun::Exists(_) => continue,
            }
        }
    }

    /// Refuse unless the guard's user has `need` on Run `name`.
    fn require_run(&self, g: &Guard, name: &str, need: Access, doing: &str) -> Result<()> {
        let run = self.inner.runs.load(name)?;
        g.require(ObjectKind::Run, name, run.creator.as_deref(), need, doing)
    }

    /// Refuse to use an existing Run's name unless the user has `need` on
    /// it; one they may not see is "taken", since names are the cluster's.
    fn may_use(&self, g: &Guard, existing: &RunConfig, need: Access, doing: &str) -> Result<()> {
        match g.require(
            ObjectKind::Run,
            &existing.name,
            existing.creator.as_deref(),
            need,
            doing,
        ) {
            Err(Error::NotFound { .. }) => Err(Error::Forbidden {
                message: format!(
                    "the run name `{}` is taken by another user's Run; choose another",
                    existing.name
                ),
            }),
            other => other,
        }
    }

    pub(crate) fn artifact_store(&self) -> &ArtifactStore {
        &self.inner.artifacts
    }

    pub(crate) fn access_store(&self) -> &Arc<crate::access::AccessStore> {
        &self.inner.access
    }

    /// Remove a finished Run, a deployed name or an artifact's name, when
    /// `check` allows it for the object's owner.
    pub(crate) fn remove_object(
        &self,
        kind: ObjectKind,
        name: &str,
        check: &dyn Fn(Option<&str>) -> Result<()>,
    ) -> Result<()> {
        let i = &self.inner;
        match kind {
            ObjectKind::Run => i
                .runs
                .remove(name, &|c: &RunConfig| check(c.creator.as_deref())),
            ObjectKind::Function => i
                .functions
                .remove(name, &|d: &Deployment| check(d.creator.as_deref())),
            ObjectKind::Artifact => i
                .artifacts
                .remove(name, &|a: &Artifact| check(a.creator.as_deref())),
            ObjectKind::Component => {
                Err(Error::Invalid("components are not deleted by name".into()))
            }
        }
    }

    /// Load a Run by name.
    pub fn run(&self, name: &str) -> Result<Run> {
        let config = self.inner.runs.load(name)?;
        Ok(Run::from_parts(self.inner.runs.dir(name), config))
    }

    /// Every file of the finished Run `name` with its size and digest
    /// ([`Run::files`]), read and hashed once and then remembered: a
    /// finished Run's files do not change. `NotFinished` while it runs.
    /// This reads whole files: call it off the async workers.
    pub fn run_files(&self, name: &str) -> Result<Arc<Vec<RunFile>>> {
        let run = self.run(name)?;
        if !run.status().is_terminal() {
            return Err(Error::NotFinished {
                run: name.to_string(),
                status: run.status(),
            });
        }
        let meta =
            std::fs::symlink_metadata(run.path()).map_err(|e| Error::io("stat", run.path(), e))?;
        let stamp: FolderStamp = {
            use std::os::unix::fs::MetadataExt;
            (
                meta.dev(),
                meta.ino(),
                run.config().start_time.clone(),
                run.config().end_time.clone(),
            )
        };
        let lists = &self.inner.file_lists;
        if let Some((s, list)) = lists.lock().expect("file lists").get(name)
            && *s == stamp
        {
            return Ok(list.clone());
        }
        let list = Arc::new(run.files()?);
        let mut lists = lists.lock().expect("file lists");
        if lists.len() >= FILE_LISTS {
            lists.clear();
        }
        lists.insert(name.to_string(), (stamp, list.clone()));
        Ok(list)
    }

    /// A handle on an existing Run.
    pub fn handle(&self, name: &str) -> Result<RunHandle> {
        self.inner.runs.load(name)?;
        Ok(RunHandle {
            runtime: self.clone(),
            name: name.to_string(),
        })
    }

    /// Every Run's record, oldest first.
    pub fn runs(&self) -> Result<Vec<RunConfig>> {
        self.inner.runs.list()
    }

    /// Wait until the Run ends.
    pub async fn wait(&self, name: &str) -> Result<Run> {
        let mut polls: u32 = 0;
        loop {
            let rx = self
                .inner
                .active
                .lock()
                .expect("active runs poisoned")
                .get(name)
                .map(|a| a.done.clone());
            if let Some(mut rx) = rx {
                let _ = rx.wait_for(|done| *done).await;
            }
            let run = self.run(name)?;
            if run.status().is_terminal() {
                return Ok(run);
            }
            if rx_is_none_and_poll(&mut polls) {
                // Another process runs it; if that process died, recover.
                self.inner.runs.recover()?;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Cancel a Run and wait until it has ended. A Run that has already
    /// ended is returned as it is.
    pub async fn cancel(&self, name: &str) -> Result<Run> {
        let cancel = self
            .inner
            .active
            .lock()
            .expect("active runs poisoned")
            .get(name)
            .map(|a| a.cancel.clone());
        match cancel {
            Some(c) => c.cancel(),
            None => {
                let run = self.run(name)?;
                if run.status().is_terminal() {
                    return Ok(run);
                }
                self.inner.runs.request_cancel(name)?;
            }
        }
        self.wait(name).await
    }

    /// Instantiate and call a function in a fresh Store without recording a
    /// Run: the bare cost of Wasmtime that a recorded call is measured
    /// against. For benchmarks.
    #[doc(hidden)]
    pub async fn bare_call(&self, function: &str, args: &serde_json::Value) -> Result<Vec<u8>> {
        let target = self.resolve(function, None)?;
        let args = canonical_args(&target.desc, args)?;
        let _admitted = self.inner.engine.admit_inspection().await?;
        executor::bare_call(
            &self.inner.engine,
            &self.inner.artifacts,
            &target.loaded,
            &target.desc.name,
            &args,
        )
        .await
    }

    /// Follow one of a Run's output streams from its start: each
    /// [`LogFollower::next`] gives what the guest has written since, waiting
    /// for more while the Run runs, and `None` once it has ended and all is
    /// read. A Run executing in this process wakes its followers as it
    /// writes; one executing elsewhere is watched by re-reading its files.
    pub fn follow(&self, name: &str, kind: OutputKind) -> Result<LogFollower> {
        let run = self.run(name)?;
        let path = run.file(match kind {
            OutputKind::Stdout => crate::runs::STDOUT,
            OutputKind::Stderr => crate::runs::STDERR,
        });
        let file = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let live = self
            .inner
            .active
            .lock()
            .expect("active runs poisoned")
            .get(name)
            .map(|a| (a.progress.clone(), a.done.clone()));
        Ok(LogFollower {
            runtime: self.clone(),
            name: name.to_string(),
            file,
            pos: 0,
            live,
            ended: run.status().is_terminal(),
        })
    }

    /// The Runs this process is executing now.
    pub fn active_runs(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .active
            .lock()
            .expect("active runs poisoned")
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Wait until every Run this process is executing has ended.
    pub async fn wait_all(&self) {
        loop {
            let next = self
                .inner
                .active
                .lock()
                .expect("active runs poisoned")
                .values()
                .next()
                .map(|a| a.done.clone());
            match next {
                Some(mut rx) => {
                    let _ = rx.wait_for(|done| *done).await;
                    tokio::task::yield_now().await;
                }
                None => return,
            }
        }
    }

    /// Save an artifact from the host program (a version made by no Run).
    pub fn save_artifact(&self, name: &str, data: &[u8]) -> Result<ArtifactRef> {
        self.inner
            .artifacts
            .save(name, data, None, None, &|_: &Artifact| Ok(()))
    }

    /// Load an artifact's current version.
    pub fn load_artifact(&self, name: &str) -> Result<(Vec<u8>, ArtifactRef)> {
        self.artifact_bytes(name, None)
    }

    /// Claim the folder of a scope's Run (no execution behind it).
    pub(crate) fn claim_scope(&self, config: &mut RunConfig, user: Option<&User>) -> Result<()> {
        self.inner.space.check()?;
        match self.inner.runs.claim(config, None) {
            Ok(_) => Ok(()),
            Err(ClaimError::Exists(c)) => {
                // Another user's Run says only that the name is taken.
                if let Some(g) = self.guard(user) {
                    self.may_use(&g, &c, Access::Read, "")?;
                }
                Err(self.exists_error(&c, ""))
            }
            Err(ClaimError::Other(e)) => Err(e),
        }
    }

    /// Record a scope's end.
    pub(crate) fn finish_scope(&self, config: &RunConfig) -> Result<()> {
        self.inner.runs.finish(config)
    }

    /// Save an artifact from the host program inside a scope (by name, from
    /// any process), recorded as the scope's downstream.
    pub fn save_artifact_in(
        &self,
        scope: Option<&str>,
        name: &str,
        data: &[u8],
    ) -> Result<ArtifactRef> {
        self.save_artifact_as(scope, name, data, None)
    }

    /// Save an artifact as `user`: a new name becomes theirs; a new version
    /// of an existing one needs write access (and the scope, write access
    /// to its Run).
    pub fn save_artifact_as(
        &self,
        scope: Option<&str>,
        name: &str,
        data: &[u8],
        user: Option<&User>,
    ) -> Result<ArtifactRef> {
        let guard = self.guard(user);
        if let (Some(g), Some(s)) = (&guard, scope) {
            self.require_run(g, s, Access::Write, "saving inside it")?;
        }
        let allow = |a: &Artifact| {
            require_if(
                guard.as_ref(),
                ObjectKind::Artifact,
                &a.name,
                a.creator.as_deref(),
                Access::Write,
                "saving a new version",
            )
            .map_err(|e| crate::access::taken(e, ObjectKind::Artifact, &a.name))
        };
        let creator = user.map(|u| u.name.as_str());
        let r = self
            .inner
            .artifacts
            .save(name, data, None, creator, &allow)?;
        if let Some(s) = scope {
            crate::scope::record(self, s, "downstream", &r)?;
        }
        Ok(r)
    }

    /// Load an artifact inside a scope, recorded as the scope's upstream.
    pub fn load_artifact_in(
        &self,
        scope: Option<&str>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(Vec<u8>, ArtifactRef)> {
        self.load_artifact_as(scope, name, version, None)
    }

    /// Load an artifact as `user`: it needs read access to the artifact
    /// (and the scope, write access to its Run).
    pub fn load_artifact_as(
        &self,
        scope: Option<&str>,
        name: &str,
        version: Option<&str>,
        user: Option<&User>,
    ) -> Result<(Vec<u8>, ArtifactRef)> {
        let guard = self.guard(user);
        let allow = |a: &Artifact| match &guard {
            Some(g) => {
                g.require(
                    ObjectKind::Artifact,
                    name,
                    a.creator.as_deref(),
                    Access::Read,
                    "",
                )?;
                match scope {
                    Some(s) => self.require_run(g, s, Access::Write, "loading inside it"),
                    None => Ok(()),
                }
            }
            None => Ok(()),
        };
        let out = self.inner.artifacts.load(name, version, &allow)?;
        if let Some(s) = scope {
            crate::scope::record(self, s, "upstream", &out.1)?;
        }
        Ok(out)
    }

    /// Every artifact and its versions.
    pub fn artifacts(&self) -> Result<Vec<Artifact>> {
        self.inner.artifacts.list()
    }

    /// One artifact and its versions.
    pub fn artifact(&self, name: &str) -> Result<Artifact> {
        self.inner.artifacts.get(name)
    }

    /// The bytes of one version of an artifact (by digest), or of its
    /// current version.
    pub fn artifact_bytes(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(Vec<u8>, ArtifactRef)> {
        self.inner.artifacts.load(name, version, &|_| Ok(()))
    }

    /// What produced an artifact (its current version) or a Run, and what
    /// consumed it, transitively.
    pub fn lineage(&self, name: &str) -> Result<crate::lineage::LineageNode> {
        crate::lineage::Graph::new(self.runs()?, &self.inner.artifacts).of(name)
    }

    /// Mark Runs of dead host processes `error` / `interrupted` now (also
    /// done on open). Returns how many.
    pub fn recover(&self) -> Result<usize> {
        let n = self.inner.runs.recover()?;
        crate::scope::sweep_journals(self);
        Ok(n)
    }

    /// Watch `cancel/` for requests from other processes while this process
    /// runs anything.
    fn ensure_cancel_watcher(&self) {
        self.inner.watcher.get_or_init(|| {
            let weak: Weak<Inner> = Arc::downgrade(&self.inner);
            let dir = self.inner.runs.cancels_dir().to_path_buf();
            let spawned = std::thread::Builder::new()
                .name("rh-cancel-watch".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_millis(10));
                        let Some(inner) = weak.upgrade() else { return };
                        if inner.active.lock().map(|a| a.is_empty()).unwrap_or(true) {
                            continue;
                        }
                        let Ok(entries) = std::fs::read_dir(&dir) else {
                            continue;
                        };
                        for e in entries.flatten() {
                            let n = e.file_name();
                            let Some(name) = n.to_str() else { continue };
                            if let Some(a) = inner
                                .active
                                .lock()
                                .ok()
                                .and_then(|a| a.get(name).map(|x| x.cancel.clone()))
                            {
                                a.cancel();
                            }
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot watch for cancel requests: {e}");
            }
        });
    }
}

fn rx_is_none_and_poll(polls: &mut u32) -> bool {
    *polls += 1;
    (*polls).is_multiple_of(200)
}

fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

/// Reads a Run's output as it is written; see [`Runtime::follow`].
pub struct LogFollower {
    runtime: Runtime,
    name: String,
    file: std::fs::File,
    pos: u64,
    live: Option<(watch::Receiver<u64>, watch::Receiver<bool>)>,
    ended: bool,
}

impl std::fmt::Debug for LogFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFollower")
            .field("run", &self.name)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl LogFollower {
    /// The next bytes written, or `None` when the Run has ended and
    /// everything has been read.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        use std::io::Read;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            // Whatever is in the file now comes first.
            let n = self
                .file
                .read(&mut buf)
                .map_err(|e| Error::io("read", self.runtime.inner.runs.dir(&self.name), e))?;
            if n > 0 {
                self.pos += n as u64;
                buf.truncate(n);
                return Ok(Some(buf));
            }
            if self.ended {
                return Ok(None);
            }
            match &mut self.live {
                Some((progress, done)) => {
                    tokio::select! {
                        r = progress.changed() => { if r.is_err() { self.ended = true; } }
                        r = done.wait_for(|d| *d) => { let _ = r; self.ended = true; }
                    }
                }
                None => {
                    // Executed by another process: look again shortly.
                    if self.runtime.run(&self.name)?.status().is_terminal() {
                        self.ended = true;
                    } else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }
}

/// The outcome of a cache hit: the source's output copied into the new
/// Run's files (`stdout` and `stderr` of its folder `dest`, and shown to the
/// observer), its result, its lineage.
fn copy_hit(
    source: &Run,
    dest: &Path,
    mut stdout: std::fs::File,
    mut stderr: std::fs::File,
    observer: Option<&OutputObserver>,
) -> executor::Outcome {
    // Streamed in chunks, through a descriptor that follows no symlink:
    // the source may be large, and may come from another cluster.
    let copy = |from: &str, to: &mut std::fs::File, kind: OutputKind| -> Result<()> {
        use std::io::{Read, Write};
        let (mut f, _) = source.open_file(from)?;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| Error::io("read", source.file(from), e))?;
            if n == 0 {
                return Ok(());
            }
            // The new Run's file of the same name failed, not the source's.
            to.write_all(&buf[..n])
                .map_err(|e| Error::io("write", dest.join(from), e))?;
            if let Some(obs) = observer {
                obs(kind, &buf[..n]);
            }
        }
    };
    let result = copy(crate::runs::STDOUT, &mut stdout, OutputKind::Stdout)
        .and_then(|()| copy(crate::runs::STDERR, &mut stderr, OutputKind::Stderr))
        .and_then(|()| source.result_bytes());
    executor::Outcome {
        result,
        fuel_consumed: 0,
        upstream: source.config().upstream_artifacts.clone(),
        downstream: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::{STDERR, STDOUT};

    #[test]
    fn a_cache_hit_that_cannot_write_names_the_new_runs_file() {
        let d = tempfile::tempdir().unwrap();
        // The source: a completed Run with output and a result.
        let src = d.path().join("source");
        std::fs::create_dir(&src).unwrap();
        let mut c = RunConfig::function("source".into(), "local".into());
        c.status = RunStatus::Completed;
        std::fs::write(
            src.join(crate::runs::CONFIG),
            crate::runs::to_json(&c).unwrap(),
        )
        .unwrap();
        std::fs::write(src.join(STDOUT), b"some output\n").unwrap();
        std::fs::write(src.join(STDERR), b"").unwrap();
        std::fs::write(src.join(RESULT), b"3").unwrap();
        let source = Run::open(&src).unwrap();
        // The new Run's files, open for reading only: every write fails.
        let dest = d.path().join("hit");
        std::fs::create_dir(&dest).unwrap();
        for f in [STDOUT, STDERR] {
            std::fs::write(dest.join(f), b"").unwrap();
        }
        let open = |f: &str| std::fs::File::open(dest.join(f)).unwrap();
        let outcome = copy_hit(&source, &dest, open(STDOUT), open(STDERR), None);
        match outcome.result {
            Err(Error::Io { op, path, .. }) => {
                assert_eq!(op, "write");
                assert_eq!(path, dest.join(STDOUT));
            }
            other => panic!("expected a write error, got {other:?}"),
        }
    }
}
