//! `artifacts put | get | list | show` and `lineage`.

use super::{cluster_and_name, short_digest};
use crate::cli::{ArtifactsCommand, RunRef};
use crate::cluster;
use crate::errors::UsageError;
use crate::output::{print_json, print_record};
use crate::wire::Lineage;
use anyhow::{Context, Result};
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
            let saved = cluster::open(&c)?.put_artifact(&name, bytes).await?;
            if json {
                print_json(&saved);
            } else {
                println!("{name} {}", saved.digest);
            }
        }
        ArtifactsCommand::Get { name, digest, to } => {
            let (c, n) = cluster_and_name(&name.args, &name.cluster)?;
            rh_runtime::validate_name("artifact", &n)?;
            let bytes = cluster::open(&c)?
                .get_artifact(&n, digest.as_deref())
                .await?;
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
            let list = cluster::open(c.as_deref().unwrap_or("local"))?
                .artifacts()
                .await?;
            if json {
                print_record(&list);
            } else {
                for a in &list {
                    let v = a.versions.last();
                    println!(
                        "{}  {}  {} bytes  {} version{}",
                        a.name,
                        v.map(|v| short_digest(&v.digest)).unwrap_or("-"),
                        v.map(|v| v.size).unwrap_or(0),
                        a.versions.len(),
                        if a.versions.len() == 1 { "" } else { "s" }
                    );
                }
            }
        }
        ArtifactsCommand::Show(r) => {
            let (c, n) = cluster_and_name(&r.args, &r.cluster)?;
            rh_runtime::validate_name("artifact", &n)?;
            let a = cluster::open(&c)?.artifact(&n).await?;
            if json {
                print_record(&a);
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
    let (c, n) = cluster_and_name(&r.args, &r.cluster)?;
    rh_runtime::validate_name("artifact or run", &n)?;
    let tree = cluster::open(&c)?.lineage(&n).await?;
    if json {
        print_json(&tree);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", label(&tree));
    if !tree.upstream.is_empty() || tree.is_artifact() {
        println!("  made from:");
        print_tree(&tree, true, 2);
    }
    if !tree.downstream.is_empty() {
        println!("  used by:");
        print_tree(&tree, false, 2);
    }
    Ok(ExitCode::SUCCESS)
}

fn label(n: &Lineage) -> String {
    if n.is_artifact() {
        let d = n.digest.as_deref().unwrap_or("");
        format!("artifact {} {}", n.name, short_digest(d))
    } else {
        format!(
            "run {} ({}, {})",
            n.name,
            n.what.as_deref().unwrap_or("?"),
            n.status.map(|s| s.as_str()).unwrap_or("?")
        )
    }
}

/// The nodes `n` came from (`upstream`) or that came from it, each
/// followed by its own the same way.
fn print_tree(n: &Lineage, upstream: bool, depth: usize) {
    let kids = if upstream { &n.upstream } else { &n.downstream };
    if kids.is_empty() && n.is_artifact() && upstream {
        println!("{:w$}put from outside any run", "", w = depth * 2);
    }
    for k in kids {
        println!("{:w$}{}", "", label(k), w = depth * 2);
        print_tree(k, upstream, depth + 1);
    }
}
