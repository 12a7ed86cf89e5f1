//! `runs`, `show` and `result`.

use super::{cluster_and_name, run_at_path};
use crate::cli::RunRef;
use crate::cluster;
use crate::errors::code_for_kind;
use crate::output::{print_json, print_record};
use anyhow::Result;
use std::process::ExitCode;

pub async fn list(cluster_name: &str, json: bool) -> Result<ExitCode> {
    let runs = cluster::open(cluster_name)?.runs().await?;
    if json {
        print_record(&runs);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        eprintln!("no runs on `{cluster_name}` yet");
        return Ok(ExitCode::SUCCESS);
    }
    let w = runs.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:w$}  {:10}  {:27}  {:27}  FUNCTION",
        "NAME", "STATUS", "START", "END"
    );
    for r in &runs {
        let f = match (&r.function, &r.fn_name) {
            (Some(f), Some(n)) if f.name == *n => f.name.clone(),
            (Some(f), Some(n)) => format!("{}/{n}", f.name),
            _ => String::new(),
        };
        println!(
            "{:w$}  {:10}  {:27}  {:27}  {f}",
            r.name,
            r.status.as_str(),
            r.start_time.as_deref().unwrap_or("-"),
            r.end_time.as_deref().unwrap_or("-"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

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
