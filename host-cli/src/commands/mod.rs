//! One module per verb; `dispatch` sends a parsed command to its module.

mod artifacts;
mod call;
mod cancel;
mod clusters;
mod completions;
mod deploy;
mod exec;
mod logs;
mod pull;
mod runs;
mod scope;
mod serve;
mod share;
mod worker;

use crate::cli::{Cli, Command};
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
        Command::Call(a) => call::call(a, call::Mode::Call, json).await,
        Command::GetOrCall(a) => call::call(a, call::Mode::GetOrCall, json).await,
        Command::Run(a) => call::start(a, false, json).await,
        Command::GetOrRun(a) => call::start(a, true, json).await,
        Command::Runs { cluster } => runs::list(cluster.as_deref().unwrap_or("local"), json).await,
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
        Command::Cluster(c) => clusters::cluster(c, json),
        Command::Serve(a) => serve::serve(*a).await,
        Command::Completions { shell } => completions::completions(shell),
        Command::Worker => worker::worker().await,
    }
}

/// The answer about a Run on `local`, as a daemon gives it.
pub fn run_answer(run: &rh_runtime::Run) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(crate::wire::RunAnswer::of(
        run,
        |e| e.to_string(),
    ))?)
}
