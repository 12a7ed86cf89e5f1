//! `cancel` and `wait`.

use super::cluster_and_name;
use crate::cli::RunRef;
use crate::cluster;
use crate::output::print_json;
use anyhow::Result;
use std::process::ExitCode;

pub async fn cancel(r: &RunRef, json: bool) -> Result<ExitCode> {
    let (c, name) = cluster_and_name(&r.args, &r.cluster)?;
    rh_runtime::validate_run_name(&name)?;
    let answer = cluster::open(&c)?.cancel(&name).await?;
    let was = answer.was.map(|s| s.to_string()).unwrap_or_default();
    let status = answer.status.to_string();
    let already = matches!(was.as_str(), "completed" | "error" | "cancelled");
    if json {
        print_json(&serde_json::json!({ "run_name": name, "status": status, "was": was }));
    } else if already {
        println!("{name} had already ended ({status})");
    } else {
        println!("{name} {status}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn wait(r: &RunRef, json: bool) -> Result<ExitCode> {
    let (c, name) = cluster_and_name(&r.args, &r.cluster)?;
    rh_runtime::validate_run_name(&name)?;
    let answer = cluster::open(&c)?.wait(&name).await?;
    if json {
        print_json(&answer);
    } else {
        println!("{name} {}", answer.status);
    }
    Ok(if answer.completed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
