//! `artifacts put | get | list | show` and `lineage`.

use crate::cli::{ArtifactsCommand, RunRef};
use crate::cluster::{self, Target};
use crate::errors::UsageError;
use crate::output::print_json;
use anyhow::{Context, Result};
use hyper::Method;
use rh_runtime::{Artifact, Caller};
use std::io::{Read, Write};
use std::process::ExitCode;

pub async fn artifacts(c: ArtifactsCommand, json: bool) -> Result<ExitCode> {
    match c {
        ArtifactsCommand::Put { args, cluster } => {
            let (c, name, file) = match args.as_slice() {
                [n, f] => (cluster, n.clone(), f.clone()),
                [c, n, f] => (c.clone(), n.clone(), f.clone()),
                _ => return Err(UsageError("expected [CLUSTER] NAME FILE".into()).into()),
            };
            rh_runtime::validate_name("artifact", &name)?;
            let bytes = if file == "-" {
                let mut b = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut b)
                    .context("reading stdin")?;
                b
            } else {
                std::fs::read(&file).map_err(|e| UsageError(format!("cannot read {file}: {e}")))?
            };
            let scope = cluster::current_scope(&c);
            let q = scope
                .as_deref()
                .map(|s| format!("?scope={s}"))
                .unwrap_or_default();
            let r = match cluster::open(&c)? {
                Target::Local(rt) => serde_json::to_value(rt.save_artifact(
                    &Caller::host().in_scope_opt(scope.clone()),
                    &name,
                    &bytes,
                )?)?,
                Target::Remote(cl) => {
                    let resp = cl
                        .send(
                            Method::POST,
                            &format!("/v1/artifacts/{name}{q}"),
                            crate::wire::full(bytes),
                            "application/octet-stream",
                        )
                        .await?;
                    serde_json::from_slice(
                        &http_body_util::BodyExt::collect(resp.into_body())
                            .await?
                            .to_bytes(),
                    )?
                }
            };
            if json {
                print_json(&r);
            } else {
                println!("{name} {}", r["digest"].as_str().unwrap_or("?"));
            }
        }
        ArtifactsCommand::Get { name, digest, to } => {
            let (c, n) = cluster::cluster_and_run(&name.args, &name.cluster)?;
            rh_runtime::validate_name("artifact", &n)?;
            let scope = cluster::current_scope(&c);
            let bytes = match cluster::open(&c)? {
                Target::Local(rt) => {
                    rt.load_artifact(
                        &Caller::host().in_scope_opt(scope.clone()),
                        &n,
                        digest.as_deref(),
                    )?
                    .0
                }
                Target::Remote(cl) => {
                    let mut q: Vec<String> = Vec::new();
                    if let Some(v) = digest {
                        q.push(format!("version={v}"));
                    }
                    if let Some(s) = scope {
                        q.push(format!("scope={s}"));
                    }
                    let q = if q.is_empty() {
                        String::new()
                    } else {
                        format!("?{}", q.join("&"))
                    };
                    cl.bytes(&format!("/v1/artifacts/{n}/data{q}"))
                        .await?
                        .to_vec()
                }
            };
            match to {
                Some(p) => std::fs::write(&p, &bytes)
                    .with_context(|| format!("writing {}", p.display()))?,
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes)?;
                    out.flush()?;
                }
            }
        }
        ArtifactsCommand::List { cluster: c } => {
            let list: Vec<Artifact> = match cluster::open(c.as_deref().unwrap_or("local"))? {
                Target::Local(rt) => rt.artifacts(&Caller::host())?,
                Target::Remote(cl) => {
                    serde_json::from_value(cl.json(Method::GET, "/v1/artifacts", None).await?)?
                }
            };
            if json {
                print_json(&list);
            } else {
                for a in &list {
                    let v = a.versions.last();
                    println!(
                        "{}  {}  {} bytes  {} version{}",
                        a.name,
                        v.map(|v| &v.digest[..v.digest.len().min(19)])
                            .unwrap_or("-"),
                        v.map(|v| v.size).unwrap_or(0),
                        a.versions.len(),
                        if a.versions.len() == 1 { "" } else { "s" }
                    );
                }
            }
        }
        ArtifactsCommand::Show(r) => {
            let (c, n) = cluster::cluster_and_run(&r.args, &r.cluster)?;
            rh_runtime::validate_name("artifact", &n)?;
            let a: Artifact = match cluster::open(&c)? {
                Target::Local(rt) => rt.artifact(&Caller::host(), &n)?,
                Target::Remote(cl) => serde_json::from_value(
                    cl.json(Method::GET, &format!("/v1/artifacts/{n}"), None)
                        .await?,
                )?,
            };
            if json {
                print_json(&a);
            } else {
                println!("{}", a.name);
                for v in &a.versions {
                    let by = v
                        .run
                        .as_deref()
                        .map(|r| format!("run {r}"))
                        .unwrap_or_else(|| "put (no run)".into());
                    println!("  {}  {} bytes  {}  {by}", v.digest, v.size, v.created);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn lineage(r: &RunRef, json: bool) -> Result<ExitCode> {
    let (c, n) = cluster::cluster_and_run(&r.args, &r.cluster)?;
    rh_runtime::validate_name("artifact or run", &n)?;
    let tree: serde_json::Value = match cluster::open(&c)? {
        Target::Local(rt) => serde_json::to_value(rt.lineage(&Caller::host(), &n)?)?,
        Target::Remote(cl) => {
            cl.json(Method::GET, &format!("/v1/lineage/{n}"), None)
                .await?
        }
    };
    if json {
        print_json(&tree);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", label(&tree));
    if tree["upstream"].as_array().is_some_and(|a| !a.is_empty()) || tree["kind"] == "artifact" {
        println!("  made from:");
        print_tree(&tree, "upstream", 2);
    }
    if tree["downstream"].as_array().is_some_and(|a| !a.is_empty()) {
        println!("  used by:");
        print_tree(&tree, "downstream", 2);
    }
    Ok(ExitCode::SUCCESS)
}

fn label(n: &serde_json::Value) -> String {
    let name = n["name"].as_str().unwrap_or("?");
    if n["kind"] == "artifact" {
        let d = n["digest"].as_str().unwrap_or("");
        format!("artifact {name} {}", &d[..d.len().min(19)])
    } else {
        format!(
            "run {name} ({}, {})",
            n["what"].as_str().unwrap_or("?"),
            n["status"].as_str().unwrap_or("?")
        )
    }
}

fn print_tree(n: &serde_json::Value, dir: &str, depth: usize) {
    let kids = n[dir].as_array().cloned().unwrap_or_default();
    if kids.is_empty() && n["kind"] == "artifact" && dir == "upstream" {
        println!("{:w$}put from outside any run", "", w = depth * 2);
    }
    for k in &kids {
        println!("{:w$}{}", "", label(k), w = depth * 2);
        print_tree(k, dir, depth + 1);
    }
}
