//! One module per verb; `dispatch` sends a parsed command to its module.
//!
//! A verb parses its arguments, opens the cluster it names
//! ([`crate::cluster::open`]), calls it and prints: one path, whatever
//! the cluster. Printing for people is here; `--json` goes through
//! [`crate::output`].

mod artifacts;
mod build;
mod call;
mod cancel;
mod clusters;
mod completions;
mod deploy;
mod exec;
mod history;
mod logs;
mod new;
mod pull;
mod python;
mod runs;
mod scope;
mod serve;
mod share;

use crate::cli::{CacheCommand, Cli, Command, PythonCommand, RunRef};
use crate::errors::UsageError;
use crate::wire::CallMode;
use anyhow::Result;
use std::process::ExitCode;

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let json = cli.json;
    match cli.command {
        Command::Deploy {
            file,
            name,
            cluster,
        } => deploy::deploy(&file, name.as_deref(), &cluster, json).await,
        Command::Functions { cluster } => {
            deploy::functions(cluster.as_deref().unwrap_or("local"), json).await
        }
        Command::Call(a) => call::call(a, CallMode::Call, json).await,
        Command::GetOrCall(a) => call::call(a, CallMode::GetOrCall, json).await,
        Command::Run(a) => call::start(a, CallMode::Run, json).await,
        Command::GetOrRun(a) => call::start(a, CallMode::GetOrRun, json).await,
        Command::Runs(a) => history::search(&a, json).await,
        Command::Gc(a) => history::gc(&a, json).await,
        Command::Cache(CacheCommand::Clear { cluster, function }) => {
            history::cache_clear(cluster.as_deref(), function.as_deref(), json).await
        }
        Command::Reindex { cluster } => history::reindex(cluster.as_deref(), json).await,
        Command::Show(r) => runs::show(&r, json).await,
        Command::Result(r) => runs::result(&r, json).await,
        Command::Logs {
            run,
            follow,
            stderr,
        } => logs::logs(&run, follow, stderr).await,
        Command::Cancel(r) => cancel::cancel(&r, json).await,
        Command::Wait(r) => cancel::wait(&r, json).await,
        Command::Exec(a) => exec::exec(a, json).await,
        Command::Scope {
            name,
            command,
            cluster,
        } => scope::scope(&name, &command, &cluster, json).await,
        Command::Artifacts(c) => artifacts::artifacts(c, json).await,
        Command::Lineage(r) => artifacts::lineage(&r, json).await,
        Command::Pull {
            source,
            run,
            to,
            endpoint,
        } => pull::pull_any(&source, run.as_deref(), to, endpoint.as_deref(), json).await,
        Command::Push {
            cluster,
            run,
            dest,
            endpoint,
        } => pull::push(&cluster, &run, &dest, endpoint.as_deref(), json).await,
        Command::Share {
            cluster,
            name,
            with,
            access,
            kind,
        } => share::share(&cluster, &name, &with, Some(&access), kind.as_deref(), json).await,
        Command::Unshare {
            cluster,
            name,
            with,
            kind,
        } => share::share(&cluster, &name, &with, None, kind.as_deref(), json).await,
        Command::Shares { cluster } => share::list(&cluster, json).await,
        Command::Delete {
            args,
            cluster,
            kind,
        } => share::delete(&args, &cluster, &kind, json).await,
        Command::Users(crate::cli::UsersCommand::Add {
            file,
            name,
            token_file,
            admin,
        }) => share::add_user(&file, &name, &token_file, admin, json),
        Command::Cluster(crate::cli::ClusterCommand::Hosts { name }) => {
            clusters::hosts(&name, json).await
        }
        Command::Cluster(c) => clusters::cluster(c, json),
        Command::Serve(a) => serve::serve(*a).await,
        Command::Completions { shell } => completions::completions(shell),
        Command::Build { file, output } => build::build(&file, output, json).await,
        Command::New { name, lang } => new::new(&name, &lang),
        Command::RunPython(a) => python::run_python(a, json).await,
        Command::Python(PythonCommand::Install { cluster }) => {
            python::install(&cluster, json).await
        }
        // The other half of `run` on `local`: see `cluster::worker`.
        Command::Worker => crate::cluster::worker::serve().await,
    }
}

/// Split `[CLUSTER] NAME` positionals; the cluster is `cluster` (from
/// `--cluster`, default `local`) when not given.
pub fn cluster_and_name(args: &[String], cluster: &str) -> Result<(String, String)> {
    match args {
        [name] => Ok((cluster.to_string(), name.clone())),
        [c, name] => Ok((c.clone(), name.clone())),
        _ => Err(UsageError("expected [CLUSTER] RUN".into()).into()),
    }
}

/// The Run a `RunRef` names by its folder's path rather than by name on a
/// cluster: a single argument with a `/` in it (`./rh/runs/my_run`, a
/// pulled folder), loaded as it is on disk.
pub fn run_at_path(r: &RunRef) -> Result<Option<rh_runtime::Run>> {
    match r.args.as_slice() {
        [path] if path.contains('/') => rh_runtime::Run::open(path)
            .map(Some)
            .map_err(|e| UsageError(format!("{path} is not a Run folder: {e}")).into()),
        _ => Ok(None),
    }
}

/// A digest as lists show it: `sha256:` and the first 12 hex digits.
pub fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}
