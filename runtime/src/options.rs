//! [`RuntimeOptions`]: how a [`crate::Runtime`] is opened.

use crate::Limits;
use crate::execute::engine::EngineOptions;
use std::path::PathBuf;

/// How to open a [`crate::Runtime`].
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
    /// A completed Run older than this (by its end) answers no cached call,
    /// unless the call sets its own; `None`: any age.
    pub cache_ttl: Option<std::time::Duration>,
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
    /// Sees every Run this runtime starts and ends (metrics). Called on the
    /// call's path: it must be quick.
    pub watcher: Option<RunWatcher>,
}

/// A function that sees Runs start and end: see [`RunEvent`].
#[derive(Clone)]
pub struct RunWatcher(pub std::sync::Arc<dyn Fn(RunEvent<'_>) + Send + Sync>);

impl std::fmt::Debug for RunWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunWatcher")
    }
}

/// What a [`RunWatcher`] is told.
#[derive(Debug, Clone, Copy)]
pub enum RunEvent<'a> {
    /// A Run was claimed here and is about to execute.
    Started(&'a crate::RunConfig),
    /// A Run this runtime executed has ended and is recorded.
    Ended {
        /// Its final record.
        config: &'a crate::RunConfig,
        /// Whether the call could be answered from the result cache (a hit
        /// has `cache_hit`; one without was a miss).
        cached: bool,
        /// The bytes the guest wrote to stdout and stderr.
        output_bytes: u64,
    },
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
            cache_ttl: None,
            folders_ahead: 16,
            shared_store: None,
            publish_in_background: true,
            disk_reserve: None,
            watcher: None,
        }
    }

    /// Tell `watcher` about every Run that starts and ends here.
    pub fn watch(mut self, watcher: RunWatcher) -> Self {
        self.watcher = Some(watcher);
        self
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

    /// Take no cached answer older than `ttl` unless a call says otherwise.
    pub fn cache_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.cache_ttl = Some(ttl);
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
