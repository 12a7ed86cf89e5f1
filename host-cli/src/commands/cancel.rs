//! `cancel` and `wait`.

use crate::cli::RunRef;
use crate::cluster;
use crate::output::print_json;
use anyhow::Result;
use rh_runtime::RunStatus;
use std::process::ExitCode;

pub async fn cancel(r: &RunRef, json: bool) -> Result<ExitCode> {
    let (c, name) = cluster::cluster_and_run(&r.args, &r.cluster)?;
    let rt = cluster::open(&c)?;
    let before = rt.run(&name)?.status();
    let run = rt.cancel(&name).await?;
    if json {
        print_json(&serde_json::json!({ "run_name": name, "status": run.status() }));
    } else if before.is_terminal() {
        println!("{name} had already ended ({})", run.status());
    } else {
        println!("{name} {}", run.status());
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn wait(r: &RunRef, json: bool) -> Result<ExitCode> {
    let (c, name) = cluster::cluster_and_run(&r.args, &r.cluster)?;
    let rt = cluster::open(&c)?;
    let run = rt.wait(&name).await?;
    if json {
        print_json(
            &serde_json::json!({ "run_name": name, "status": run.status(), "error": run.config().error }),
        );
    } else {
        println!("{name} {}", run.status());
    }
    Ok(if run.status() == RunStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
