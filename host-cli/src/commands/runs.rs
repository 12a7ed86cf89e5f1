//! `show` and `result`.

use super::{cluster_and_name, run_at_path};
use crate::cli::RunRef;
use crate::cluster;
use crate::errors::code_for_kind;
use crate::output::{print_json, print_record};
use anyhow::Result;
use std::process::ExitCode;

/// A Run's `config.json`, as it is stored (with or without `--json`).
pub async fn show(r: &RunRef, _json: bool) -> Result<ExitCode> {
    if let Some(run) = run_at_path(r)? {
        print_record(run.config());
        return Ok(ExitCode::SUCCESS);
    }
    let (c, name) = cluster_and_name(&r.args, &r.cluster)?;
    rh_runtime::validate_run_name(&name)?;
    let config = cluster::open(&c)?.run(&name).await?;
    print_record(&config);
    Ok(ExitCode::SUCCESS)
}

pub async fn result(r: &RunRef, json: bool) -> Result<ExitCode> {
    let answer = match run_at_path(r)? {
        Some(run) => crate::wire::RunAnswer::of(&run, |e| e.to_string()),
        None => {
            let (c, name) = cluster_and_name(&r.args, &r.cluster)?;
            rh_runtime::validate_run_name(&name)?;
            cluster::open(&c)?.result(&name).await?
        }
    };
    let name = &answer.run_name;
    if json {
        print_json(&answer);
    } else if answer.completed() {
        let result = answer.result.clone().unwrap_or_default();
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else if let Some(m) = answer.error_message() {
        eprintln!("error: {m}");
    } else {
        eprintln!(
            "error: run `{name}` has not finished (status {})",
            answer.status
        );
        return Ok(ExitCode::from(2));
    }
    Ok(if answer.completed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(code_for_kind(answer.error_kind().unwrap_or("not_finished")))
    })
}
