//! `scope NAME -- CMD..`: a context Run around a shell command. The command
//! gets `RH_WASM_SCOPE` and `RH_WASM_SCOPE_CLUSTER`, so the rh-wasm calls
//! and artifact puts and gets it makes on that cluster are recorded in the
//! scope; a scope opened inside another nests in it.

use crate::cluster::{self, Target};
use crate::errors::UsageError;
use crate::output::print_json;
use anyhow::Result;
use hyper::Method;
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
    let parent = cluster::current_scope(cluster_name);
    let target = cluster::open(cluster_name)?;
    match &target {
        Target::Local(rt) => {
            let me = rh_runtime::Caller::host().in_scope_opt(parent.clone());
            rt.open_scope(&me, name)?;
        }
        Target::Remote(c) => {
            c.json(
                Method::POST,
                "/v1/scopes",
                Some(&serde_json::json!({ "name": name, "parent_run": parent })),
            )
            .await?;
        }
    }
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
    let answer = match &target {
        Target::Local(rt) => {
            super::run_answer(&rt.end_scope(&rh_runtime::Caller::host(), name, outcome)?)?
        }
        Target::Remote(c) => {
            let body = match &outcome {
                Ok(()) => serde_json::json!({}),
                Err(m) => serde_json::json!({ "error": m }),
            };
            c.json(Method::POST, &format!("/v1/scopes/{name}/end"), Some(&body))
                .await?
        }
    };
    if json {
        print_json(&answer);
    } else if let Err(e) = status.as_ref() {
        eprintln!("error: cannot run `{program}`: {e}");
    } else {
        eprintln!("scope {name} {}", answer["status"].as_str().unwrap_or("?"));
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
