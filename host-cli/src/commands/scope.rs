//! `scope NAME -- CMD..`: a context Run around a shell command. The command
//! gets `RH_WASM_SCOPE` and `RH_WASM_SCOPE_CLUSTER`, so the rh-wasm calls
//! and artifact puts and gets it makes on that cluster are recorded in the
//! scope; a scope opened inside another nests in it.

use crate::cluster;
use crate::errors::UsageError;
use crate::output::print_json;
use anyhow::Result;
use std::process::ExitCode;

pub async fn scope(
    name: &str,
    command: &[String],
    cluster_name: &str,
    json: bool,
) -> Result<ExitCode> {
    rh_runtime::validate_run_name(name)?;
    let Some((program, args)) = command.split_first() else {
        return Err(UsageError("scope needs a command after `--`".into()).into());
    };
    let c = cluster::open(cluster_name)?;
    c.open_scope(name).await?;
    let status = tokio::process::Command::new(program)
        .args(args)
        .env("RH_WASM_SCOPE", name)
        .env("RH_WASM_SCOPE_CLUSTER", cluster_name)
        .status()
        .await;
    let (outcome, code) = match &status {
        Ok(s) if s.success() => (Ok(()), 0),
        Ok(s) => (
            Err(format!(
                "`{program}` exited with {}",
                s.code()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "a signal".into())
            )),
            s.code().unwrap_or(1),
        ),
        Err(e) => (Err(format!("cannot run `{program}`: {e}")), 127),
    };
    let answer = c.end_scope(name, outcome).await?;
    if json {
        print_json(&answer);
    } else if let Err(e) = status.as_ref() {
        eprintln!("error: cannot run `{program}`: {e}");
    } else {
        eprintln!("scope {name} {}", answer.status);
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
