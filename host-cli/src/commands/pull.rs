//! `pull CLUSTER RUN [--to DIR]`: copy a finished Run's folder here, every
//! file checked against the digest the cluster gave, and put in place only
//! once whole (built under a temporary name, then renamed).
//!
//! `push CLUSTER RUN s3://BUCKET/PREFIX` and `pull s3://BUCKET/PREFIX/RUN`
//! move Runs through object storage (`rh_runtime::RemoteStore`).

use crate::cluster::{self, Target};
use crate::errors::UsageError;
use crate::output::print_json;
use anyhow::{Context, Result, bail};
use hyper::Method;
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
/// cluster first when it is a daemon) to object storage.
pub async fn push(
    cluster_name: &str,
    run: &str,
    dest: &str,
    endpoint: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    rh_runtime::validate_run_name(run)?;
    let store = rh_runtime::RemoteStore::open(dest, endpoint)?;
    let mut staged = None;
    let dir = match cluster::open(cluster_name)? {
        Target::Local(rt) => {
            let r = rt.run(&rh_runtime::Caller::host(), run)?;
            if !r.status().is_terminal() {
                bail!(UsageError(format!(
                    "run `{run}` is still {}; only finished Runs are pushed",
                    r.status()
                )));
            }
            r.path().to_path_buf()
        }
        Target::Remote(_) => {
            let stage = tempfile_dir()?;
            let dir = stage.join(run);
            staged = Some(stage);
            std::fs::create_dir(&dir)?;
            if let Err(e) = copy(cluster_name, run, &dir).await {
                let _ = std::fs::remove_dir_all(staged.as_deref().unwrap_or(&dir));
                return Err(e);
            }
            dir
        }
    };
    let pushed = store.push(&dir, &progress_bar("uploading")).await;
    if let Some(stage) = staged {
        let _ = std::fs::remove_dir_all(stage);
    }
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

/// A private folder to stage a daemon's Run in before it goes up. Staging
/// folders that a killed push left behind (their process is gone) are
/// removed first.
fn tempfile_dir() -> Result<PathBuf> {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(STAGE))
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            if !process_alive(pid) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let d = tmp.join(format!(
        "{STAGE}{}-{}",
        std::process::id(),
        rh_runtime::auto_run_name("stage")
    ));
    // A new folder of our own (0700): never one someone made ahead of us
    // in a shared temp dir.
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&d)
        .with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

/// The prefix of push staging folders in the temp dir.
const STAGE: &str = "rh-wasm-push-";

fn process_alive(pid: i32) -> bool {
    rustix::process::Pid::from_raw(pid).is_some_and(|p| {
        !matches!(
            rustix::process::test_kill_process(p),
            Err(rustix::io::Errno::SRCH)
        )
    })
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
    let copied = copy(cluster_name, run, &tmp).await;
    let files = match copied {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &dest)
        .with_context(|| format!("moving the Run to {}", dest.display()))?;
    if json {
        print_json(&serde_json::json!({ "run_name": run, "path": dest, "files": files }));
    } else {
        println!("pulled {run} to {} ({} files)", dest.display(), files.len());
    }
    Ok(ExitCode::SUCCESS)
}

async fn copy(cluster_name: &str, run: &str, tmp: &std::path::Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut put = |rel: &str, bytes: &[u8]| -> Result<()> {
        let dest = tmp.join(rel);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&dest, bytes).with_context(|| format!("writing {}", dest.display()))?;
        names.push(rel.to_string());
        Ok(())
    };
    match cluster::open(cluster_name)? {
        Target::Local(rt) => {
            let r = rt.run(&rh_runtime::Caller::host(), run)?;
            if !r.status().is_terminal() {
                bail!(UsageError(format!(
                    "run `{run}` is still {}; wait for it before pulling",
                    r.status()
                )));
            }
            for p in r.paths()? {
                put(&p, &r.read_file(&p)?)?;
            }
        }
        Target::Remote(c) => {
            let list = c
                .json(Method::GET, &format!("/v1/runs/{run}/files"), None)
                .await?;
            let files: Vec<rh_runtime::RunFile> = serde_json::from_value(list["files"].clone())?;
            for f in files {
                // Paths come from the cluster: take only plain relative ones.
                if !rh_runtime::is_plain_relative(&f.path) {
                    bail!(
                        "the cluster named a file `{}`, which is not a Run file",
                        f.path
                    );
                }
                let bytes = c.bytes(&format!("/v1/runs/{run}/files/{}", f.path)).await?;
                let digest = rh_runtime::digest_of(&bytes);
                if digest != f.digest {
                    bail!(
                        "{} changed or was damaged in transit (digest {digest}, expected {})",
                        f.path,
                        f.digest
                    );
                }
                put(&f.path, &bytes)?;
            }
        }
    }
    Ok(names)
}
