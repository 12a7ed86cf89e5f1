//! The command line, as clap types.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

mod history;

pub use history::{CacheCommand, GcArgs, PythonCommand, RunPythonArgs, SearchArgs};

/// Run WebAssembly functions in isolation and record every call as a Run.
#[derive(Debug, Parser)]
#[command(name = "rh-wasm", version, about, propagate_version = true)]
pub struct Cli {
    /// Machine-readable output (JSON).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate, precompile and store a component; print its functions.
    Deploy {
        /// The component (`.wasm`).
        file: PathBuf,
        /// Name to deploy under (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
        /// The cluster: `local`, or a name from `rh-wasm cluster add`.
        #[arg(long, default_value = "local")]
        cluster: String,
    },
    /// List deployed components and their functions.
    Functions {
        /// The cluster (default local).
        cluster: Option<String>,
    },
    /// Call a function and wait; its output streams here, the result last.
    Call(CallArgs),
    /// Start a call and return once its Run is running.
    Run(CallArgs),
    /// Return Run R's result if it was made by this call, else call.
    GetOrCall(CallArgs),
    /// Return Run R whatever its status, or start it.
    GetOrRun(CallArgs),
    /// Search Runs, newest first, a page at a time; prints the cursor of
    /// the next page.
    Runs(SearchArgs),
    /// Remove finished Runs that a retention policy does not keep (and,
    /// when asked, unreferenced artifact versions and components).
    Gc(GcArgs),
    /// The result cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Rebuild a cluster's index of Runs from its Run folders.
    Reindex {
        /// The cluster (default local).
        cluster: Option<String>,
    },
    /// Print a Run's config (RUN may be a Run folder's path, as
    /// `./rh/runs/my_run` or a pulled folder).
    Show(RunRef),
    /// Print a Run's result, or its error (RUN may be a folder's path).
    Result(RunRef),
    /// Print a Run's output (RUN may be a folder's path).
    Logs {
        #[command(flatten)]
        run: RunRef,
        /// Keep printing until the Run ends.
        #[arg(long, short)]
        follow: bool,
        /// Print stderr instead of stdout.
        #[arg(long)]
        stderr: bool,
    },
    /// Cancel a running Run.
    Cancel(RunRef),
    /// Wait until a Run ends; print its status.
    Wait(RunRef),
    /// Run WASI command components as one Run, recording each exit code.
    ///
    /// `exec --run-name R -- a.wasm ARGS.. -- b ARGS..`: each command is a
    /// component file or a deployed name; `--` separates commands.
    Exec(ExecArgs),
    /// Run a command inside a scope: a Run of type `context` that records
    /// the rh-wasm calls made inside it (as their parent) and the artifacts
    /// they put and get; it ends `error` if the command fails.
    Scope {
        /// The scope's Run name.
        name: String,
        /// The command (after `--`) and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
        /// The cluster: `local`, or a name from `rh-wasm cluster add`.
        #[arg(long, default_value = "local")]
        cluster: String,
    },
    /// Put, get, list and show artifacts.
    #[command(subcommand)]
    Artifacts(ArtifactsCommand),
    /// What produced an artifact or a Run, and what consumed it.
    Lineage(RunRef),
    /// Copy a Run's folder here (default ./rh/runs/RUN): `pull CLUSTER RUN`,
    /// or `pull s3://BUCKET/PREFIX/RUN` for a pushed one.
    Pull {
        /// A cluster, or the S3 address of a pushed Run.
        source: String,
        /// The Run (with a cluster).
        run: Option<String>,
        /// Where to put it.
        #[arg(long)]
        to: Option<PathBuf>,
        /// An S3-compatible server (default: AWS_ENDPOINT_URL, else AWS).
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Copy a finished Run to object storage: `push CLUSTER RUN s3://BUCKET/PREFIX`.
    /// Running it again after an interruption sends only what is missing.
    Push {
        cluster: String,
        run: String,
        /// Where: the Run goes to s3://BUCKET/PREFIX/RUN.
        dest: String,
        /// An S3-compatible server (default: AWS_ENDPOINT_URL, else AWS).
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Give a user of a daemon read or write access to a function, Run or
    /// artifact you own: `share cpu NAME --with bob --access read`.
    Share {
        /// The cluster (a daemon started with --users).
        cluster: String,
        /// The function, Run or artifact.
        name: String,
        /// The user (repeat for several).
        #[arg(long = "with", required = true, value_name = "USER")]
        with: Vec<String>,
        /// `read`: call the function, read the Run, load the artifact;
        /// `write`: also cancel, delete, redeploy, save new versions.
        #[arg(long, default_value = "read", value_parser = ["read", "write"])]
        access: String,
        /// Which kind of object, when NAME names more than one.
        #[arg(long, value_parser = ["function", "run", "artifact"])]
        kind: Option<String>,
    },
    /// Take back what `share` gave.
    Unshare {
        /// The cluster.
        cluster: String,
        /// The function, Run or artifact.
        name: String,
        /// The user (repeat for several).
        #[arg(long = "with", required = true, value_name = "USER")]
        with: Vec<String>,
        /// Which kind of object, when NAME names more than one.
        #[arg(long, value_parser = ["function", "run", "artifact"])]
        kind: Option<String>,
    },
    /// List what you shared and what was shared with you.
    Shares {
        /// The cluster.
        cluster: String,
    },
    /// Delete a finished Run, a deployed name or an artifact (the bytes
    /// that recorded Runs refer to stay).
    Delete {
        /// `[CLUSTER] NAME`
        #[arg(num_args = 1..=2, required = true, value_name = "[CLUSTER] NAME")]
        args: Vec<String>,
        /// The cluster: `local`, or a name from `rh-wasm cluster add`.
        #[arg(long, default_value = "local")]
        cluster: String,
        /// What NAME is.
        #[arg(long, default_value = "run", value_parser = ["function", "run", "artifact"])]
        kind: String,
    },
    /// Make the users file of a daemon (`serve --users FILE`).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Name, list and forget daemons.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Run the host daemon.
    Serve(Box<ServeArgs>),
    /// Run Python statements in order in the cluster's sandboxed
    /// interpreter, as one Run (`rh-wasm python install` puts it there).
    RunPython(RunPythonArgs),
    /// The cluster's Python interpreter.
    #[command(subcommand)]
    Python(PythonCommand),
    /// Start a function project (Rust or Python) that builds and deploys
    /// without edits; prints the two commands that do it.
    New {
        /// The function's name (also the project's folder).
        name: String,
        /// The language.
        #[arg(long, default_value = "rust", value_parser = ["rust", "python"])]
        lang: String,
    },
    /// Build a function component from a Python file whose functions are
    /// decorated `@function` (`from rh_guest import function`), with
    /// componentize-py (installed under ~/.cache/rh-wasm/py when missing).
    Build {
        /// The Python file.
        file: PathBuf,
        /// Where to write the component (default: NAME.wasm here).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Print a completion script for a shell: `rh-wasm completions bash >
    /// ~/.local/share/bash-completion/completions/rh-wasm`.
    Completions {
        /// The shell.
        shell: CompletionShell,
    },
    /// Executes an asynchronous Run (started by `run`); not for direct use.
    #[command(name = "__worker", hide = true)]
    Worker,
}

/// The shells `completions` writes a script for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct RunRef {
    /// `[CLUSTER] RUN`
    #[arg(num_args = 1..=2, required = true, value_name = "[CLUSTER] RUN")]
    pub args: Vec<String>,
    /// The cluster: `local`, or a name from `rh-wasm cluster add`.
    #[arg(long, default_value = "local")]
    pub cluster: String,
}

#[derive(Debug, Args, Clone)]
pub struct CallArgs {
    /// `NAME` or `NAME/FUNCTION`.
    pub function: String,
    /// Arguments, each a JSON value (`1`, `'"text"'`, `'{"k": 1}'`).
    #[arg(allow_negative_numbers = true)]
    pub args: Vec<String>,
    /// The whole argument list as one JSON array or object (`-` for stdin).
    #[arg(long, conflicts_with = "args")]
    pub input: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
    /// Answer from an earlier completed Run of the same call, if there is one.
    #[arg(long, conflicts_with = "no_cache")]
    pub cache: bool,
    /// Execute even when the cluster caches by default.
    #[arg(long)]
    pub no_cache: bool,
    /// Execute even when a cached answer exists; the new Run becomes the
    /// newest answer of its call.
    #[arg(long, conflicts_with = "no_cache")]
    pub refresh_cache: bool,
    /// Take no cached answer from a Run that ended longer ago (`10m`, `7d`).
    #[arg(long, value_name = "D")]
    pub cache_ttl: Option<String>,
}

/// What every verb that makes a Run takes.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Name the Run.
    #[arg(long)]
    pub run_name: Option<String>,
    /// The cluster: `local`, or a name from `rh-wasm cluster add`.
    #[arg(long, default_value = "local")]
    pub cluster: String,
    /// Fuel budget (units of Wasm work).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Memory limit (`64MiB`).
    #[arg(long)]
    pub memory: Option<String>,
    /// Wall-clock timeout (`30s`, `500ms`).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Replace an existing Run of that name.
    #[arg(long)]
    pub rerun: bool,
    /// Label the Run (`--tag team=search`; repeatable), recorded in its
    /// `tags`.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// On a cluster of several hosts: run it again on another host, at
    /// most N times, when the host executing it dies.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
}

impl RunArgs {
    /// The `--tag` labels, each checked.
    pub fn tags(&self) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        let mut tags = std::collections::BTreeMap::new();
        for t in &self.tags {
            let Some((k, v)) = t.split_once('=') else {
                return Err(
                    crate::errors::UsageError(format!("--tag {t}: expected KEY=VALUE")).into(),
                );
            };
            rh_runtime::validate_tag(k, v)
                .map_err(|e| crate::errors::UsageError(format!("--tag {t}: {e}")))?;
            tags.insert(k.to_string(), v.to_string());
        }
        Ok(tags)
    }
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Name a daemon: `rh-wasm cluster add cpu http://HOST:PORT --token-file F`.
    Add {
        name: String,
        url: String,
        /// A file holding the daemon's bearer token.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// List the clusters.
    List,
    /// Forget a cluster.
    Remove { name: String },
    /// The live hosts of a cluster of several hosts (`serve --nats`), with
    /// their slots in use, the queue's depth and their last heartbeat.
    Hosts { name: String },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user: `users add users.toml alice --token-file alice.token`.
    /// The token is read from the token file, or made and written there
    /// (readable by you only) when it does not exist; only its sha256 goes
    /// into the users file. A running daemon reads the file again on SIGHUP.
    Add {
        /// The users file (created if missing).
        file: PathBuf,
        /// The user's name.
        name: String,
        /// The user's token file.
        #[arg(long)]
        token_file: PathBuf,
        /// An administrator sees and may change everything.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub addr: std::net::SocketAddr,
    /// Where the daemon keeps its data (Runs under ROOT/logs/). Default ~/.rh
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// A file holding the bearer token clients must send.
    #[arg(long, conflicts_with = "users")]
    pub token_file: Option<PathBuf>,
    /// A users file (names and token hashes; see `rh-wasm users add`):
    /// each user sees and changes only what they own or was shared with
    /// them.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// The cluster's name, recorded in each Run (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// On shutdown, how long running Runs may go on before they are cancelled.
    #[arg(long, default_value = "10s")]
    pub grace: String,
    /// Largest component upload.
    #[arg(long, default_value = "256MiB")]
    pub max_component: String,
    /// Answer calls from the result cache unless they ask not to.
    #[arg(long)]
    pub cache: bool,
    /// Take no cached answer from a Run that ended longer ago (`7d`), unless
    /// a call sets its own.
    #[arg(long, value_name = "D")]
    pub cache_ttl: Option<String>,
    /// Remove finished Runs that ended longer ago than D, every few
    /// minutes (as `gc --older-than D`; logged).
    #[arg(long, value_name = "D")]
    pub retain: Option<String>,
    /// Keep the newest N Runs, removing older finished ones, every few
    /// minutes (as `gc --keep-last N`; logged).
    #[arg(long, value_name = "N")]
    pub retain_last: Option<usize>,
    /// How often `--retain` / `--retain-last` are applied.
    #[arg(long, value_name = "D", default_value = "1m")]
    pub retain_every: String,
    /// A store shared with other clusters (s3://BUCKET/PREFIX): completed
    /// Runs are published there, and cached calls are answered from Runs
    /// any attached cluster published.
    #[arg(long)]
    pub shared_store: Option<String>,
    /// The S3-compatible server of --shared-store (default:
    /// AWS_ENDPOINT_URL, else AWS).
    #[arg(long, requires = "shared_store")]
    pub endpoint: Option<String>,
    /// The team's secret for --shared-store (32 bytes or more, e.g. from
    /// `head -c 32 /dev/urandom > team.key`): published Runs are signed
    /// with it, and only Runs signed with it are taken as hits.
    #[arg(long, value_name = "FILE", requires = "shared_store")]
    pub shared_store_key: Option<PathBuf>,
    /// fsync each Run's final record and result (and its folder) before it
    /// counts as ended: Runs survive power loss, at a cost on every call.
    #[arg(long)]
    pub durable: bool,
    /// Largest other request (call arguments).
    #[arg(long, default_value = "16MiB")]
    pub max_request: String,
    /// How long a new connection may take to send its first request's
    /// headers before it is closed.
    #[arg(long, default_value = "10s")]
    pub header_timeout: String,
    /// How long a connection may wait between requests (after an answer
    /// ends, until the next request's headers are in) before it is closed.
    /// A request being answered is never cut.
    #[arg(long, default_value = "60s")]
    pub idle_timeout: String,
    /// Most connections open at once; more wait to be accepted (default:
    /// half the open-file limit, at most 512).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Disk space a command Run's scratch folder may take: the default, and
    /// the most an `exec` may ask for.
    #[arg(long, default_value = "1GiB")]
    pub scratch_limit: String,
    /// Free disk space to keep: no Run starts while less is free (default
    /// 1GiB, or 5% of a disk under 20GiB; 0: no check).
    #[arg(long)]
    pub disk_reserve: Option<String>,
    /// Memory all running guests may ask for together (the sum of their
    /// memory limits); a Run that does not fit waits. Default: half of this
    /// machine's memory.
    #[arg(long)]
    pub memory_total: Option<String>,
    /// Be one host of cluster --name, sharing its work and history with
    /// the other hosts through this NATS server (nats://HOST:PORT, with
    /// JetStream); needs --shared-store.
    #[arg(long, value_name = "URL", requires = "shared_store")]
    pub nats: Option<String>,
    /// The NATS credentials file (.creds) for --nats.
    #[arg(long, value_name = "FILE", requires = "nats")]
    pub nats_creds: Option<PathBuf>,
    /// Runs this host takes from the cluster's queue at once (default: 64).
    #[arg(long, requires = "nats")]
    pub slots: Option<usize>,
    /// This host's name in the cluster (default: kept in ROOT/cluster-host,
    /// made once from the machine's name).
    #[arg(long, requires = "nats")]
    pub host_name: Option<String>,
    /// Where the other hosts and clients reach this host's API (default:
    /// http://ADDR).
    #[arg(long, requires = "nats")]
    pub advertise: Option<String>,
    /// Also serve `/metrics` (and `/healthz`) without a token on this
    /// loopback address, for a Prometheus on the same machine.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args, Clone)]
pub struct ExecArgs {
    /// CMD [ARGS..], several separated by `--` (put a `--` before the first
    /// command when its arguments start with `-`).
    pub cmdline: Vec<String>,
    /// One more command line, as one string (repeatable).
    #[arg(long = "cmd")]
    pub cmds: Vec<String>,
    /// Run the later commands even after one fails.
    #[arg(long)]
    pub keep_going: bool,
    /// Disk space the Run's scratch folder may take (`32MiB`; at most, and
    /// by default, the cluster's limit).
    #[arg(long)]
    pub scratch_limit: Option<String>,
    /// Name, cluster and limits (fuel and timeout cover all the commands).
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// Store a file (or `-` for stdin) as a new version of an artifact.
    Put {
        /// `[CLUSTER] NAME FILE`
        #[arg(num_args = 2..=3, required = true, value_name = "[CLUSTER] NAME FILE")]
        args: Vec<String>,
        /// The cluster: `local`, or a name from `rh-wasm cluster add`.
        #[arg(long, default_value = "local")]
        cluster: String,
    },
    /// Write an artifact's current version (or `--version`) to stdout or `--to`.
    Get {
        #[command(flatten)]
        name: RunRef,
        /// A version's digest (or its start) instead of the current one.
        #[arg(long)]
        digest: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// List artifacts.
    List {
        /// The cluster (default local).
        cluster: Option<String>,
    },
    /// Show an artifact's versions.
    Show(RunRef),
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
