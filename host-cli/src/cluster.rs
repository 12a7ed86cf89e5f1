//! Which cluster a command talks to: `local`, the runtime embedded in this
//! process with its data under `./rh/`, or a daemon named in the config.

use crate::client::Client;
use crate::config;
use crate::errors::UsageError;
use anyhow::{Context, Result};
use rh_runtime::{Runtime, RuntimeOptions};
use std::path::PathBuf;

pub enum Target {
    Local(Runtime),
    Remote(Client),
}

/// The local cluster's root: `./rh`.
pub fn local_root() -> Result<PathBuf> {
    Ok(std::env::current_dir()
        .context("finding the working directory")?
        .join("rh"))
}

/// Open the local runtime.
pub fn open_local() -> Result<Runtime> {
    let root = local_root()?;
    // A CLI process records one Run or a few and exits: folders made ahead
    // would be wasted.
    let mut opts = RuntimeOptions::new(&root).cluster("local").folders_ahead(0);
    // The local cluster's shared store, when a team uses one, and the
    // team's key, without which its entries are not trusted.
    if let Ok(url) = std::env::var("RH_WASM_SHARED_STORE") {
        let key = std::env::var_os("RH_WASM_SHARED_STORE_KEY").ok_or_else(|| {
            UsageError(
                "RH_WASM_SHARED_STORE needs RH_WASM_SHARED_STORE_KEY=FILE, the team's \
                 secret (make one with `head -c 32 /dev/urandom > team.key`)"
                    .into(),
            )
        })?;
        let key = rh_runtime::TeamKey::read(key.as_ref())?;
        opts = opts
            .shared_store(rh_runtime::RemoteStore::open(&url, None)?.signed_with(key))
            .publish_in_background(false);
    }
    Runtime::open_with(opts)
        .with_context(|| format!("opening the local cluster at {}", root.display()))
}

/// Connect to a cluster by name.
pub fn open(name: &str) -> Result<Target> {
    if name == "local" {
        return Ok(Target::Local(open_local()?));
    }
    let cfg = config::load()?;
    let Some(entry) = cfg.clusters.get(name) else {
        let mut known: Vec<&str> = vec!["local"];
        known.extend(cfg.clusters.keys().map(String::as_str));
        return Err(UsageError(format!(
            "unknown cluster `{name}` (known clusters: {}; add one with rh-wasm cluster add)",
            known.join(", ")
        ))
        .into());
    };
    let token = match &entry.token_file {
        Some(f) => Some(config::read_token(f)?),
        None => None,
    };
    Ok(Target::Remote(Client::new(name, &entry.url, token)?))
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

/// Who the CLI acts for on `cluster` of its own machine: the user it runs
/// as (recorded as the creator of its Runs), inside the scope of
/// `rh-wasm scope NAME -- ...` when there is one.
pub fn caller(cluster: &str) -> rh_runtime::Caller {
    let caller = match creator() {
        Some(c) => rh_runtime::Caller::named(c),
        None => rh_runtime::Caller::host(),
    };
    caller.in_scope_opt(current_scope(cluster))
}

/// The scope a command runs inside (`rh-wasm scope NAME -- ...` exports it),
/// when it is on `cluster`.
pub fn current_scope(cluster: &str) -> Option<String> {
    let scope = std::env::var("RH_WASM_SCOPE")
        .ok()
        .filter(|s| !s.is_empty())?;
    let on = std::env::var("RH_WASM_SCOPE_CLUSTER").unwrap_or_else(|_| "local".into());
    (on == cluster).then_some(scope)
}
