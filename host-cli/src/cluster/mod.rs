//! The cluster a command acts on, behind one interface: [`Cluster`], with
//! two implementations. `local` is the runtime embedded in this process,
//! its data under `./rh/`; `remote` is a daemon named in the config,
//! reached through [`crate::client`]. A verb under `commands/` parses its
//! arguments, [`open`]s the cluster it names, calls it and prints: it never
//! asks which kind of cluster it has.
//!
//! Why a trait object: which cluster a command talks to is known only from
//! its arguments, at run time, so commands hold a `Box<dyn Cluster>`.
//! `async fn` in a trait cannot be called through `dyn` yet, so the trait's
//! methods return boxed futures, written as plain `async fn`s with
//! `async_trait` (the boxing costs nothing next to a Run). An enum with one
//! method per verb would have put both implementations of every verb side
//! by side in one `match` again.
//!
//! What differs stays inside the implementations. On `local`, `run` and
//! `get-or-run` hand the Run to a detached worker process (`worker`) so it
//! outlives the command, a call's output reaches the terminal through an
//! observer, and Ctrl-C cancels the Run; a daemon streams the output in
//! frames, and `push` stages a daemon's Run in a temporary folder first.
//!
//! Who acts: on `local`, calls and commands act for the user this process
//! runs as, inside the scope of `rh-wasm scope NAME -- ...` ([`caller`]);
//! the other verbs act as the host itself (the CLI on its own machine may
//! do anything), inside that scope for artifacts and scopes. A daemon is
//! sent the same creator and scope, and knows who asks from the token.

mod local;
mod remote;
pub mod worker;

use crate::client::Client;
use crate::config;
use crate::errors::UsageError;
use crate::wire::{
    CacheCleared, CallMode, DeploymentInfo, Lineage, Reindexed, RunAnswer, ShareBody, Started,
    Unshared,
};
use anyhow::{Context, Result};
use rh_runtime::{
    Artifact, ArtifactRef, CallRequest, ExecRequest, GcReport, GcRequest, ObjectKind, OutputKind,
    OutputObserver, RunConfig, RunPage, RunQuery, Runtime, RuntimeOptions, Share,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A cluster: every verb the CLI has, the same on `local` and on a daemon.
#[async_trait::async_trait]
pub trait Cluster: Send + Sync {
    // Functions.

    /// Validate, compile and store a component under `name`.
    async fn deploy(&self, name: &str, component: Vec<u8>) -> Result<DeploymentInfo>;

    /// Every deployed name.
    async fn functions(&self) -> Result<Vec<DeploymentInfo>>;

    /// Store a command component by its digest, without a name (how `exec`
    /// runs a file); the digest.
    async fn add_component(&self, component: Vec<u8>) -> Result<String>;

    // Calls and commands.

    /// A call that waits (`mode` `Call` or `GetOrCall`): the guest's output
    /// goes to `out` as it is written, and the answer comes once the Run has
    /// ended. A Run that failed is an answer with its error; an `Err` means
    /// no Run was made (or none could be read).
    async fn call(
        &self,
        req: CallRequest,
        mode: CallMode,
        out: OutputObserver,
    ) -> Result<RunAnswer>;

    /// A call that does not wait (`mode` `Run` or `GetOrRun`): answers once
    /// the Run is running; it goes on after this process has ended.
    async fn start(&self, req: CallRequest, mode: CallMode) -> Result<Started>;

    /// A command Run, waited for as [`Cluster::call`] waits.
    async fn exec(&self, req: ExecRequest, out: OutputObserver) -> Result<RunAnswer>;

    /// Python statements run by the cluster's interpreter as one command
    /// Run (settings from `req`), waited for as [`Cluster::exec`] waits.
    async fn run_python(
        &self,
        statements: Vec<String>,
        keep_going: bool,
        req: CallRequest,
        out: OutputObserver,
    ) -> Result<RunAnswer>;

    // Runs.

    /// One page of a search of Runs, newest first.
    async fn search(&self, q: &RunQuery) -> Result<RunPage>;

    /// Remove the finished Runs a retention policy does not keep.
    async fn gc(&self, req: &GcRequest) -> Result<GcReport>;

    /// Forget result-cache entries (of one deployed name, or all).
    async fn clear_cache(&self, function: Option<&str>) -> Result<CacheCleared>;

    /// Rebuild the index of Runs from the Run folders.
    async fn reindex(&self) -> Result<Reindexed>;

    /// A Run's record (its `config.json`).
    async fn run(&self, name: &str) -> Result<RunConfig>;

    /// The answer about a Run, now.
    async fn result(&self, name: &str) -> Result<RunAnswer>;

    /// The answer about a Run, once it has ended.
    async fn wait(&self, name: &str) -> Result<RunAnswer>;

    /// Cancel a Run and wait until it has ended; the answer says what its
    /// status was before (`was`).
    async fn cancel(&self, name: &str) -> Result<RunAnswer>;

    /// Write a Run's stdout or stderr to `to` as it comes, flushing each
    /// chunk; with `follow`, until the Run ends. An error writing to `to`
    /// is returned as the `std::io::Error` itself.
    async fn logs(
        &self,
        name: &str,
        kind: OutputKind,
        follow: bool,
        to: &mut (dyn Write + Send),
    ) -> Result<()>;

    /// Copy every file of a finished Run into the folder `to`; the files'
    /// paths, relative to it.
    async fn copy_run(&self, name: &str, to: &Path) -> Result<Vec<String>>;

    /// A finished Run's folder on this machine, for `push`.
    async fn finished_run(&self, name: &str) -> Result<RunFolder>;

    /// Delete a finished Run, a deployed name or an artifact.
    async fn delete(&self, kind: ObjectKind, name: &str) -> Result<()>;

    // Scopes.

    /// Open the scope `name`, inside the current scope if any.
    async fn open_scope(&self, name: &str) -> Result<()>;

    /// End the scope `name`: `Ok` completes it, `Err` ends it in `error`.
    async fn end_scope(
        &self,
        name: &str,
        outcome: std::result::Result<(), String>,
    ) -> Result<RunAnswer>;

    // Artifacts and lineage.

    /// Save a new version of an artifact (recorded in the current scope).
    async fn put_artifact(&self, name: &str, data: Vec<u8>) -> Result<ArtifactRef>;

    /// An artifact's current version's bytes, or those of the version
    /// whose digest starts with `version` (recorded in the current scope).
    async fn get_artifact(&self, name: &str, version: Option<&str>) -> Result<Vec<u8>>;

    /// Every artifact, with its versions.
    async fn artifacts(&self) -> Result<Vec<Artifact>>;

    /// One artifact, with its versions.
    async fn artifact(&self, name: &str) -> Result<Artifact>;

    /// What produced an artifact or a Run, and what consumed it.
    async fn lineage(&self, name: &str) -> Result<Lineage>;

    // Sharing (a daemon's users; `local` has none).

    /// Give `share.user` `share.access` to an object.
    async fn share(&self, share: &ShareBody) -> Result<Share>;

    /// Take back what `share.user` was given on an object.
    async fn unshare(&self, share: &ShareBody) -> Result<Unshared>;

    /// The grants on what the caller owns, and those given to them.
    async fn shares(&self) -> Result<Vec<Share>>;
}

/// Connect to a cluster by name.
pub fn open(name: &str) -> Result<Box<dyn Cluster>> {
    if name == local::NAME {
        return Ok(Box::new(local::Local::open()?));
    }
    let cfg = config::load()?;
    let Some(entry) = cfg.clusters.get(name) else {
        let mut known: Vec<&str> = vec![local::NAME];
        known.extend(cfg.clusters.keys().map(String::as_str));
        return Err(UsageError(format!(
            "unknown cluster `{name}` (known clusters: {}; add one with rh-wasm cluster add)",
            known.join(", ")
        ))
        .into());
    };
    let token = match &entry.token_file {
        Some(f) => Some(config::read_token(f)?),
        None => None,
    };
    let client = Client::new(name, &entry.url, token)?;
    Ok(Box::new(remote::Remote::new(name, client)))
}

/// The local cluster's root: `./rh`.
pub fn local_root() -> Result<PathBuf> {
    Ok(std::env::current_dir()
        .context("finding the working directory")?
        .join("rh"))
}

/// Open the local cluster's runtime.
pub fn open_local() -> Result<Runtime> {
    let root = local_root()?;
    // A CLI process records one Run or a few and exits: folders made ahead
    // would be wasted.
    let mut opts = RuntimeOptions::new(&root)
        .cluster(local::NAME)
        .folders_ahead(0);
    // The local cluster's shared store, when a team uses one, and the
    // team's key, without which its entries are not trusted.
    if let Ok(url) = std::env::var("RH_WASM_SHARED_STORE") {
        let key = std::env::var_os("RH_WASM_SHARED_STORE_KEY").ok_or_else(|| {
            UsageError(
                "RH_WASM_SHARED_STORE needs RH_WASM_SHARED_STORE_KEY=FILE, the team's \
                 secret (make one with `head -c 32 /dev/urandom > team.key`)"
                    .into(),
            )
        })?;
        let key = rh_runtime::TeamKey::read(key.as_ref())?;
        opts = opts
            .shared_store(rh_runtime::RemoteStore::open(&url, None)?.signed_with(key))
            .publish_in_background(false);
    }
    Runtime::open_with(opts)
        .with_context(|| format!("opening the local cluster at {}", root.display()))
}

/// Who is making calls (recorded as the Run's creator).
pub fn creator() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .or_else(|| Some(format!("uid:{}", rustix::process::getuid().as_raw())))
}

/// Who the CLI acts for on `cluster` of its own machine: the user it runs
/// as (recorded as the creator of its Runs), inside the scope of
/// `rh-wasm scope NAME -- ...` when there is one.
pub fn caller(cluster: &str) -> rh_runtime::Caller {
    let caller = match creator() {
        Some(c) => rh_runtime::Caller::named(c),
        None => rh_runtime::Caller::host(),
    };
    caller.in_scope_opt(current_scope(cluster))
}

/// The scope a command runs inside (`rh-wasm scope NAME -- ...` exports it),
/// when it is on `cluster`.
pub fn current_scope(cluster: &str) -> Option<String> {
    let scope = std::env::var("RH_WASM_SCOPE")
        .ok()
        .filter(|s| !s.is_empty())?;
    let on = std::env::var("RH_WASM_SCOPE_CLUSTER").unwrap_or_else(|_| local::NAME.into());
    (on == cluster).then_some(scope)
}

/// A finished Run's folder on this machine: on `local` the Run's own
/// folder; for a daemon a copy, staged in a private temporary folder that
/// is removed when this is dropped.
pub struct RunFolder {
    path: PathBuf,
    staged: Option<PathBuf>,
}

impl RunFolder {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunFolder {
    fn drop(&mut self) {
        if let Some(stage) = &self.staged {
            let _ = std::fs::remove_dir_all(stage);
        }
    }
}

/// Write one file of a Run being copied into `dir`, at `rel`.
fn write_run_file(dir: &Path, rel: &str, bytes: &[u8]) -> Result<()> {
    let dest = dir.join(rel);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&dest, bytes).with_context(|| format!("writing {}", dest.display()))
}

/// Hand a chunk of output to `to`, flushed; an error is the `io::Error`
/// itself, so that a reader gone away (`| head`) can be told apart.
fn deliver(to: &mut (dyn Write + Send), chunk: &[u8]) -> Result<()> {
    to.write_all(chunk)?;
    to.flush()?;
    Ok(())
}
