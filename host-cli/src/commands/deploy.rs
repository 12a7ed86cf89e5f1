//! `deploy` and `functions`.

use crate::cluster::{self, Target};
use crate::errors::UsageError;
use crate::output::print_json;
use crate::wire::DeploymentInfo;
use anyhow::{Context, Result};
use bytes::Bytes;
use hyper::Method;
use rh_runtime::Deployment;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

pub async fn deploy(
    file: &Path,
    name: Option<&str>,
    cluster: &str,
    json: bool,
) -> Result<ExitCode> {
    let target = cluster::open(cluster)?;
    let bytes = std::fs::read(file)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .replace('-', "_");
    let name = name.unwrap_or(&stem);
    let described = match target {
        Target::Local(rt) => {
            let dep = rt
                .deploy(&rh_runtime::Caller::host(), &bytes, name)
                .await
                .with_context(|| format!("deploying {}", file.display()))?;
            describe_deployment(&dep)
        }
        Target::Remote(c) => {
            rh_runtime::validate_name("function", name)?;
            let total = bytes.len();
            let (tx, body) = crate::wire::channel(4);
            let show = total > 4 << 20 && std::io::stderr().is_terminal();
            let bytes = Bytes::from(bytes);
            tokio::spawn(async move {
                let mut sent = 0;
                for chunk in bytes.chunks(256 << 10) {
                    if tx.send(bytes.slice_ref(chunk)).await.is_err() {
                        return;
                    }
                    sent += chunk.len();
                    if show {
                        eprint!("\ruploading {} / {} KiB", sent >> 10, total >> 10);
                        let _ = std::io::stderr().flush();
                    }
                }
                if show {
                    eprintln!();
                }
            });
            let resp = c
                .send(
                    Method::POST,
                    &format!("/v1/functions?name={name}"),
                    body,
                    "application/wasm",
                )
                .await
                .with_context(|| format!("deploying {}", file.display()))?;
            let b = http_body_util::BodyExt::collect(resp.into_body())
                .await?
                .to_bytes();
            serde_json::from_slice(&b)?
        }
    };
    if json {
        print_json(&described);
    } else {
        print_described(&described, true);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn functions(cluster: &str, json: bool) -> Result<ExitCode> {
    let list: Vec<serde_json::Value> = match cluster::open(cluster)? {
        Target::Local(rt) => rt
            .deployments(&rh_runtime::Caller::host())?
            .iter()
            .map(describe_deployment)
            .collect(),
        Target::Remote(c) => {
            serde_json::from_value(c.json(Method::GET, "/v1/functions", None).await?)?
        }
    };
    if json {
        print_json(&list);
    } else if list.is_empty() {
        eprintln!("nothing deployed on `{cluster}` yet (rh-wasm deploy FILE.wasm)");
    } else {
        for d in &list {
            print_described(d, false);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A deployment as JSON, the same from `local` and from a daemon.
fn describe_deployment(d: &Deployment) -> serde_json::Value {
    serde_json::to_value(DeploymentInfo::from(d)).unwrap_or_default()
}

fn print_described(d: &serde_json::Value, deployed: bool) {
    let name = d["name"].as_str().unwrap_or("?");
    let digest = d["digest"].as_str().unwrap_or("");
    let short = &digest[..digest.len().min(19)];
    let verb = if deployed { "deployed " } else { "" };
    let kind = if d["kind"] == "command" {
        " (command)"
    } else {
        ""
    };
    println!("{verb}{name} {short} v{}{kind}", d["versions"]);
    let fns = d["functions"].as_array().cloned().unwrap_or_default();
    let single = fns.len() == 1;
    for f in &fns {
        let fname = f["name"].as_str().unwrap_or("?");
        let call_as = if single {
            name.to_string()
        } else {
            format!("{name}/{fname}")
        };
        let params: Vec<&str> = f["params"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p.as_str()).collect())
            .unwrap_or_default();
        let doc = f["doc"]
            .as_str()
            .and_then(|d| d.lines().next())
            .map(|l| format!("  {l}"))
            .unwrap_or_default();
        println!("  {call_as}({}){doc}", params.join(", "));
    }
}
