//! `pull CLUSTER RUN [--to DIR]`: copy a finished Run's folder here, every
//! file checked against the digest the cluster gave, and put in place only
//! once whole (built under a temporary name, then renamed).
//!
//! `push CLUSTER RUN s3://BUCKET/PREFIX` and `pull s3://BUCKET/PREFIX/RUN`
//! move Runs through object storage (`rh_runtime::RemoteStore`).

use crate::cluster;
use crate::errors::UsageError;
use crate::output::print_json;
use anyhow::{Context, Result};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// `pull` from a cluster or from S3.
pub async fn pull_any(
    source: &str,
    run: Option<&str>,
    to: Option<PathBuf>,
    endpoint: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    if source.starts_with("s3://") {
        if run.is_some() {
            return Err(
                UsageError("pull s3://BUCKET/PREFIX/RUN takes no second name".into()).into(),
            );
        }
        return pull_s3(source, to, endpoint, json).await;
    }
    let Some(run) = run else {
        return Err(UsageError(format!(
            "pull {source} needs a Run: pull CLUSTER RUN, or pull s3://BUCKET/PREFIX/RUN"
        ))
        .into());
    };
    if endpoint.is_some() {
        return Err(UsageError("--endpoint is for pulling from s3://".into()).into());
    }
    pull(source, run, to, json).await
}

/// Shows a copy's progress on a terminal, for copies over 4 MiB.
fn progress_bar(verb: &'static str) -> impl Fn(u64, u64) + Sync {
    let show = std::io::stderr().is_terminal();
    move |done: u64, total: u64| {
        if show && total > 4 << 20 {
            eprint!("\r{verb} {} / {} KiB", done >> 10, total >> 10);
            if done >= total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    }
}

async fn pull_s3(
    url: &str,
    to: Option<PathBuf>,
    endpoint: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let trimmed = url.trim_end_matches('/');
    let (store_url, run) = trimmed
        .rsplit_once('/')
        .filter(|(s, _)| *s != "s3:/")
        .ok_or_else(|| UsageError(format!("`{url}` names no Run: s3://BUCKET/PREFIX/RUN")))?;
    rh_runtime::validate_run_name(run)?;
    let store = rh_runtime::RemoteStore::open(store_url, endpoint)?;
    let dest = match to {
        Some(d) => d,
        None => cluster::local_root()?.join("runs").join(run),
    };
    let t = store
        .pull(run, &dest, &progress_bar("downloading"))
        .await
        .with_context(|| format!("pulling {url}"))?;
    index_if_local(run, &dest)?;
    if json {
        print_json(
            &serde_json::json!({ "run_name": run, "path": dest, "files": t.files, "bytes": t.bytes }),
        );
    } else {
        println!(
            "pulled {run} to {} ({} files, {} bytes, all digests checked)",
            dest.display(),
            t.files,
            t.bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `push CLUSTER RUN s3://BUCKET/PREFIX`: the Run's folder (copied from the
/// cluster first when it is a daemon: see `Cluster::finished_run`) to
/// object storage.
pub async fn push(
    cluster_name: &str,
    run: &str,
    dest: &str,
    endpoint: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    rh_runtime::validate_run_name(run)?;
    let store = rh_runtime::RemoteStore::open(dest, endpoint)?;
    let folder = cluster::open(cluster_name)?.finished_run(run).await?;
    let pushed = store.push(folder.path(), &progress_bar("uploading")).await;
    drop(folder);
    let (m, t) = pushed.with_context(|| format!("pushing {run} to {dest}"))?;
    let url = store.run_url(run);
    if json {
        print_json(&serde_json::json!({
            "run_name": run, "url": url, "files": m.files.len(),
            "uploaded": t.files, "bytes": t.bytes, "already_there": t.skipped,
        }));
    } else {
        println!(
            "pushed {run} to {url} ({} files; {} uploaded, {} bytes; {} already there)",
            m.files.len(),
            t.files,
            t.bytes,
            t.skipped
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A Run pulled into the `local` cluster's runs folder joins its index,
/// so search and lineage find it there.
fn index_if_local(run: &str, dest: &std::path::Path) -> Result<()> {
    let runs = cluster::local_root()?.join("runs");
    let here = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    if dest
        .parent()
        .and_then(here)
        .is_some_and(|p| Some(p) == here(&runs))
    {
        cluster::open_local()?.index_run(run)?;
    }
    Ok(())
}

pub async fn pull(
    cluster_name: &str,
    run: &str,
    to: Option<PathBuf>,
    json: bool,
) -> Result<ExitCode> {
    rh_runtime::validate_run_name(run)?;
    let dest = match to {
        Some(d) => d,
        None => cluster::local_root()?.join("runs").join(run),
    };
    if dest.exists() {
        return Err(UsageError(format!(
            "{} already exists; remove it or pull --to another folder",
            dest.display()
        ))
        .into());
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = parent.join(format!(".pull-{run}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let copied = match cluster::open(cluster_name) {
        Ok(c) => c.copy_run(run, &tmp).await,
        Err(e) => Err(e),
    };
    let files = match copied {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &dest)
        .with_context(|| format!("moving the Run to {}", dest.display()))?;
    index_if_local(run, &dest)?;
    if json {
        print_json(&serde_json::json!({ "run_name": run, "path": dest, "files": files }));
    } else {
        println!("pulled {run} to {} ({} files)", dest.display(), files.len());
    }
    Ok(ExitCode::SUCCESS)
}
