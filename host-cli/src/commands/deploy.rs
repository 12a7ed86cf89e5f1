//! `deploy` and `functions`.

use crate::cluster;
use crate::errors::UsageError;
use crate::output::print_json;
use crate::wire::DeploymentInfo;
use anyhow::{Context, Result};
use rh_runtime::ComponentKind;
use std::path::Path;
use std::process::ExitCode;

pub async fn deploy(
    file: &Path,
    name: Option<&str>,
    cluster: &str,
    json: bool,
) -> Result<ExitCode> {
    let c = cluster::open(cluster)?;
    let bytes = std::fs::read(file)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .replace('-', "_");
    let name = name.unwrap_or(&stem);
    let deployed = c
        .deploy(name, bytes)
        .await
        .with_context(|| format!("deploying {}", file.display()))?;
    if json {
        print_json(&deployed);
    } else {
        print_deployment(&deployed, true);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn functions(cluster: &str, json: bool) -> Result<ExitCode> {
    let list = cluster::open(cluster)?.functions().await?;
    if json {
        print_json(&list);
    } else if list.is_empty() {
        eprintln!("nothing deployed on `{cluster}` yet (rh-wasm deploy FILE.wasm)");
    } else {
        for d in &list {
            print_deployment(d, false);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_deployment(d: &DeploymentInfo, deployed: bool) {
    let short = super::short_digest(&d.digest);
    let verb = if deployed { "deployed " } else { "" };
    let kind = if d.kind == Some(ComponentKind::Command) {
        " (command)"
    } else {
        ""
    };
    println!("{verb}{} {short} v{}{kind}", d.name, d.versions);
    let single = d.functions.len() == 1;
    for f in &d.functions {
        let call_as = if single {
            d.name.clone()
        } else {
            format!("{}/{}", d.name, f.name)
        };
        let doc = f
            .doc
            .as_deref()
            .and_then(|d| d.lines().next())
            .map(|l| format!("  {l}"))
            .unwrap_or_default();
        println!("  {call_as}({}){doc}", f.params.join(", "));
    }
}
