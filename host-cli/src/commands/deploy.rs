//! `deploy` and `functions`.

use crate::cluster;
use crate::output::{UsageError, print_json};
use anyhow::{Context, Result};
use rh_runtime::{ComponentKind, Deployment};
use std::path::Path;
use std::process::ExitCode;

pub async fn deploy(
    file: &Path,
    name: Option<&str>,
    cluster: &str,
    json: bool,
) -> Result<ExitCode> {
    let rt = cluster::open(cluster)?;
    let bytes = std::fs::read(file)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?;
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .replace('-', "_");
    let dep = rt
        .deploy(&bytes, name.unwrap_or(&stem))
        .await
        .with_context(|| format!("deploying {}", file.display()))?;
    if json {
        print_json(&describe(&dep));
    } else {
        print_deployment(&dep, true);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn functions(cluster: &str, json: bool) -> Result<ExitCode> {
    let rt = cluster::open(cluster)?;
    let deps = rt.deployments()?;
    if json {
        print_json(&deps.iter().map(describe).collect::<Vec<_>>());
    } else if deps.is_empty() {
        eprintln!("nothing deployed on `{cluster}` yet (rh-wasm deploy FILE.wasm)");
    } else {
        for d in &deps {
            print_deployment(d, false);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(d: &Deployment) -> serde_json::Value {
    let info = d.info.as_ref();
    serde_json::json!({
        "name": d.name,
        "digest": d.digest(),
        "versions": d.versions.len(),
        "kind": info.map(|i| i.kind),
        "functions": info.map(|i| i.functions.clone()).unwrap_or_default(),
    })
}

fn print_deployment(d: &Deployment, deployed: bool) {
    let Some(info) = &d.info else { return };
    let digest = d.digest();
    let short = &digest[..digest.len().min(19)];
    let verb = if deployed { "deployed " } else { "" };
    let kind = match info.kind {
        ComponentKind::Function => "",
        ComponentKind::Command => " (command)",
    };
    println!("{verb}{} {short} v{}{kind}", d.name, d.versions.len());
    let single = info.functions.len() == 1;
    for f in &info.functions {
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
