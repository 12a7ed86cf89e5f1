//! `runs`, `show` and `result`.

use crate::cli::RunRef;
use crate::cluster::{self, Target};
use crate::errors::code_for_kind;
use crate::output::print_json;
use anyhow::Result;
use hyper::Method;
use rh_runtime::RunConfig;
use std::process::ExitCode;

pub async fn list(cluster_name: &str, json: bool) -> Result<ExitCode> {
    let runs: Vec<RunConfig> = match cluster::open(cluster_name)? {
        Target::Local(rt) => rt.runs(&rh_runtime::Caller::host())?,
        Target::Remote(c) => serde_json::from_value(c.json(Method::GET, "/v1/runs", None).await?)?,
    };
    if json {
        print_json(&runs);
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

pub async fn show(r: &RunRef, _json: bool) -> Result<ExitCode> {
    let (c, name) = cluster::cluster_and_run(&r.args, &r.cluster)?;
    rh_runtime::validate_run_name(&name)?;
    let config: RunConfig = match cluster::open(&c)? {
        Target::Local(rt) => rt.run(&rh_runtime::Caller::host(), &name)?.config().clone(),
        Target::Remote(c) => serde_json::from_value(
            c.json(Method::GET, &format!("/v1/runs/{name}"), None)
                .await?,
        )?,
    };
    print_json(&config);
    Ok(ExitCode::SUCCESS)
}

/// The answer about a Run (name, status, result or error), from anywhere.
pub async fn answer(target: &Target, name: &str, path: &str) -> Result<serde_json::Value> {
    match target {
        Target::Local(rt) => {
            let run = if path == "wait" {
                rt.wait(&rh_runtime::Caller::host(), name).await?
            } else {
                rt.run(&rh_runtime::Caller::host(), name)?
            };
            super::run_answer(&run)
        }
        Target::Remote(c) => {
            c.json(Method::GET, &format!("/v1/runs/{name}/{path}"), None)
                .await
        }
    }
}

pub async fn result(r: &RunRef, json: bool) -> Result<ExitCode> {
    let (c, name) = cluster::cluster_and_run(&r.args, &r.cluster)?;
    rh_runtime::validate_run_name(&name)?;
    let v = answer(&cluster::open(&c)?, &name, "result").await?;
    if json {
        print_json(&v);
    } else if v["status"] == "completed" {
        println!("{}", serde_json::to_string_pretty(&v["result"])?);
    } else if let Some(m) = v["error"]["message"].as_str() {
        eprintln!("error: {m}");
    } else {
        eprintln!(
            "error: run `{name}` has not finished (status {})",
            v["status"].as_str().unwrap_or("?")
        );
        return Ok(ExitCode::from(2));
    }
    Ok(match v["status"].as_str() {
        Some("completed") => ExitCode::SUCCESS,
        _ => ExitCode::from(code_for_kind(
            v["error"]["kind"].as_str().unwrap_or("not_finished"),
        )),
    })
}
