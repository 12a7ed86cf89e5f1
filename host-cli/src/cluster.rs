//! Which cluster a command talks to. `local` is the runtime embedded in this
//! process, with its data under `./rh/` of the working directory.

use crate::output::UsageError;
use anyhow::{Context, Result};
use rh_runtime::{Runtime, RuntimeOptions};
use std::path::PathBuf;

/// The local cluster's root: `./rh`.
pub fn local_root() -> Result<PathBuf> {
    Ok(std::env::current_dir()
        .context("finding the working directory")?
        .join("rh"))
}

/// Open the runtime of a cluster.
pub fn open(name: &str) -> Result<Runtime> {
    if name != "local" {
        return Err(UsageError(format!("unknown cluster `{name}` (known clusters: local)")).into());
    }
    let root = local_root()?;
    let rt = Runtime::open_with(RuntimeOptions::new(&root).cluster("local"))
        .with_context(|| format!("opening the local cluster at {}", root.display()))?;
    Ok(rt)
}

/// Split `[CLUSTER] RUN` positionals.
pub fn cluster_and_run(args: &[String], cluster: &str) -> Result<(String, String)> {
    match args {
        [run] => Ok((cluster.to_string(), run.clone())),
        [c, run] => Ok((c.clone(), run.clone())),
        _ => Err(UsageError("expected [CLUSTER] RUN".into()).into()),
    }
}

/// Who is making calls (recorded as the Run's creator).
pub fn creator() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .or_else(|| Some(format!("uid:{}", rustix::process::getuid().as_raw())))
}
