//! `pull CLUSTER RUN [--to DIR]`: copy a finished Run's folder here, every
//! file checked against the digest the cluster gave, and put in place only
//! once whole (built under a temporary name, then renamed).

use crate::cluster::{self, Target};
use crate::output::{UsageError, print_json};
use anyhow::{Context, Result, bail};
use hyper::Method;
use std::path::PathBuf;
use std::process::ExitCode;

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
            let r = rt.run(run)?;
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
                let ok = !f.path.is_empty()
                    && f.path
                        .split('/')
                        .all(|c| !c.is_empty() && c != "." && c != "..");
                if !ok {
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
