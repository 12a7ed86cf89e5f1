//! `cancel` and `wait`.

use crate::cli::RunRef;
use crate::cluster::{self, Target};
use crate::output::print_json;
use anyhow::Result;
use hyper::Method;
use std::process::ExitCode;

pub async fn cancel(r: &RunRef, json: bool) -> Result<ExitCode> {
    let (c, name) = cluster::cluster_and_run(&r.args, &r.cluster)?;
    rh_runtime::validate_run_name(&name)?;
    let (was, status) = match cluster::open(&c)? {
        Target::Local(rt) => {
            let me = rh_runtime::Caller::host();
            let before = rt.run(&me, &name)?.status();
            let run = rt.cancel(&me, &name).await?;
            (before.to_string(), run.status().to_string())
        }
        Target::Remote(c) => {
            let v = c
                .json(Method::POST, &format!("/v1/runs/{name}/cancel"), None)
                .await?;
            (
                v["was"].as_str().unwrap_or("").to_string(),
                v["status"].as_str().unwrap_or("").to_string(),
            )
        }
    };
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
    let (c, name) = cluster::cluster_and_run(&r.args, &r.cluster)?;
    rh_runtime::validate_run_name(&name)?;
    let v = super::runs::answer(&cluster::open(&c)?, &name, "wait").await?;
    if json {
        print_json(&v);
    } else {
        println!("{name} {}", v["status"].as_str().unwrap_or("?"));
    }
    Ok(if v["status"] == "completed" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
