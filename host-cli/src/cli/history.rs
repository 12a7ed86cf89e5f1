//! The arguments of the history verbs (`runs`, `gc`, `cache`) and of
//! Python (`run-python`, `python`).

use super::RunArgs;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `runs`: filters (all must hold), a page size and where the page starts.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The cluster (default local).
    pub cluster: Option<String>,
    /// Only Runs with this status (not_started, running, completed, error,
    /// cancelled).
    #[arg(long)]
    pub status: Option<String>,
    /// Only Runs of this function (`NAME` or `NAME/FUNCTION`).
    #[arg(long)]
    pub function: Option<String>,
    /// Only Runs started since D: a duration before now (`1h`, `7d`) or an
    /// RFC 3339 time.
    #[arg(long, value_name = "D")]
    pub since: Option<String>,
    /// Only Runs started until D (as `--since`).
    #[arg(long, value_name = "D")]
    pub until: Option<String>,
    /// Only Runs started by this user.
    #[arg(long, value_name = "USER")]
    pub creator: Option<String>,
    /// Only Runs with this tag (repeatable: all of them).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Only Runs made inside this Run.
    #[arg(long, value_name = "RUN")]
    pub parent: Option<String>,
    /// Runs per page (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Where the page starts: the cursor a previous page printed.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// `run-python`: the statements, from the command line, a file or stdin.
#[derive(Debug, Args)]
pub struct RunPythonArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Run the statements after one that raised, too.
    #[arg(long)]
    pub keep_going: bool,
    /// A script, run as one statement (`-` for stdin).
    #[arg(long, value_name = "FILE", conflicts_with = "statements")]
    pub file: Option<PathBuf>,
    /// The statements, each one argument (`-` alone: read them from stdin,
    /// as one script).
    #[arg(last = true, value_name = "STATEMENT")]
    pub statements: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum PythonCommand {
    /// Build the sandboxed interpreter and deploy it on a cluster as
    /// `python` (componentize-py installed under ~/.cache/rh-wasm/py when
    /// missing).
    Install {
        /// The cluster: `local`, or a name from `rh-wasm cluster add`.
        #[arg(long, default_value = "local")]
        cluster: String,
    },
}

/// `gc`: which finished Runs go.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// The cluster (default local).
    pub cluster: Option<String>,
    /// Remove Runs that ended longer ago than D (`30d`, `12h`).
    #[arg(long, value_name = "D")]
    pub older_than: Option<String>,
    /// Keep the newest N matching Runs; remove the older ones.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Only Runs with this status (repeatable): completed, error, cancelled.
    #[arg(long)]
    pub status: Vec<String>,
    /// Only Runs of this function (`NAME` or `NAME/FUNCTION`).
    #[arg(long)]
    pub function: Option<String>,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove artifact versions that are neither current nor
    /// referenced by a kept Run.
    #[arg(long)]
    pub artifacts: bool,
    /// Also remove stored components no deployed name and no kept Run
    /// refers to.
    #[arg(long)]
    pub components: bool,
    /// Remove Runs that made the current version of an artifact too.
    #[arg(long)]
    pub include_producers: bool,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Forget result-cache entries; the Runs stay.
    Clear {
        /// The cluster (default local).
        cluster: Option<String>,
        /// Only this deployed name's entries.
        #[arg(long)]
        function: Option<String>,
    },
}
