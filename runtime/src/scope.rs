//! Context scopes: a Run of type `context` around a block of a host
//! program (the seed's `with rh.run(name=...) as r:`).
//!
//! Calls and commands made through the scope record it as their
//! `parent_run`; artifacts the host program loads or saves through it are
//! its upstream / downstream; it ends `completed`, or `error` with the
//! body's message. Scopes nest (a scope opened inside another names it as
//! parent). What a scope loaded and saved is journalled to
//! `scopes/<name>.jsonl` as it happens, so other processes (the CLI inside
//! `rh-wasm scope NAME -- ...`) can add to it, and it is folded into the
//! Run's `config.json` when the scope ends.

use crate::access::{Access, ObjectKind, require_if};
use crate::artifacts::Artifact;
use crate::claim::claim_scope;
use crate::config::{ArtifactRef, RunConfig, RunError, RunStatus, RunType};
use crate::parts::Parts;
use crate::{Caller, Error, Result, Run};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

#[derive(Serialize, Deserialize)]
struct Entry {
    dir: String,
    name: String,
    digest: String,
}

fn journal(parts: &Parts, name: &str) -> PathBuf {
    parts.opts.root.join("scopes").join(format!("{name}.jsonl"))
}

/// Remove the journals of scopes that have ended without being ended
/// (their host died, and recovery marked them `interrupted`) or whose Run
/// is gone; an open scope's journal is kept.
pub(crate) fn sweep_journals(parts: &Parts) {
    let Ok(entries) = std::fs::read_dir(parts.opts.root.join("scopes")) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".jsonl")) else {
            continue;
        };
        let open = crate::validate_run_name(name).is_ok()
            && parts.runs.load(name).is_ok_and(|c| !c.status.is_terminal());
        if !open {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Add what a scope loaded (`upstream`) or saved (`downstream`).
fn record(parts: &Parts, scope: &str, dir: &str, r: &ArtifactRef) -> Result<()> {
    crate::validate_run_name(scope)?;
    let path = journal(parts, scope);
    if !path.exists() {
        return Err(Error::NotFound {
            what: "open scope",
            name: scope.to_string(),
        });
    }
    let line = serde_json::to_string(&Entry {
        dir: dir.to_string(),
        name: r.name.clone(),
        digest: r.digest.clone(),
    })
    .map_err(|e| Error::Invalid(e.to_string()))?;
    let mut f = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    f.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| Error::io("write", &path, e))
}

/// Open scope `name` for `caller`, who owns it, inside the caller's scope
/// (which needs write access to it).
pub(crate) fn open(parts: &Parts, caller: &Caller, name: &str) -> Result<()> {
    crate::validate_run_name(name)?;
    if let Some(p) = caller.scope() {
        crate::validate_run_name(p)?;
        parts.require(
            caller,
            ObjectKind::Run,
            p,
            Access::Write,
            "making Runs inside it",
        )?;
    }
    let dir = parts.opts.root.join("scopes");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create folder", &dir, e))?;
    let mut config = RunConfig::function(name.to_string(), parts.opts.cluster.clone());
    config.run_type = RunType::Context;
    config.parent_run = caller.scope().map(str::to_string);
    config.creator = caller.creator().map(str::to_string);
    claim_scope(parts, &mut config, parts.guard(caller).as_ref())?;
    let path = journal(parts, name);
    std::fs::write(&path, b"").map_err(|e| Error::io("create", &path, e))
}

/// End an open scope: fold its journal into its record, and record how it
/// ended.
pub(crate) fn end(
    parts: &Parts,
    name: &str,
    outcome: std::result::Result<(), String>,
) -> Result<Run> {
    let mut config = parts.runs.load(name)?;
    if config.run_type != RunType::Context {
        return Err(Error::Invalid(format!("run `{name}` is not a scope")));
    }
    if config.status.is_terminal() {
        return parts.run(name);
    }
    let path = journal(parts, name);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<Entry>(line) else {
            continue;
        };
        let r = ArtifactRef {
            name: e.name,
            digest: e.digest,
        };
        let list = if e.dir == "upstream" {
            &mut config.upstream_artifacts
        } else {
            &mut config.downstream_artifacts
        };
        if !list.contains(&r) {
            list.push(r);
        }
    }
    config.end_time = Some(crate::names::now_rfc3339());
    match outcome {
        Ok(()) => config.status = RunStatus::Completed,
        Err(message) => {
            config.status = RunStatus::Error;
            config.error = Some(RunError {
                kind: "failed".into(),
                message,
            });
        }
    }
    parts.runs.finish(&config)?;
    let _ = std::fs::remove_file(&path);
    parts.run(name)
}

/// Save an artifact for `caller` (inside their scope, when they are in
/// one): a new name becomes theirs; a new version of an existing one needs
/// write access (and the scope, write access to its Run).
pub(crate) fn save_artifact(
    parts: &Parts,
    caller: &Caller,
    name: &str,
    data: &[u8],
) -> Result<ArtifactRef> {
    let guard = parts.guard(caller);
    if let (Some(g), Some(s)) = (&guard, caller.scope()) {
        parts.require_run(g, s, Access::Write, "saving inside it")?;
    }
    let allow = |a: &Artifact| {
        require_if(
            guard.as_ref(),
            ObjectKind::Artifact,
            &a.name,
            a.creator.as_deref(),
            Access::Write,
            "saving a new version",
        )
        .map_err(|e| crate::access::taken(e, ObjectKind::Artifact, &a.name))
    };
    let r = parts
        .artifacts
        .save(name, data, None, caller.creator(), &allow)?;
    if let Some(s) = caller.scope() {
        record(parts, s, "downstream", &r)?;
    }
    Ok(r)
}

/// Load an artifact for `caller`: it needs read access to the artifact
/// (and, inside a scope, write access to the scope's Run).
pub(crate) fn load_artifact(
    parts: &Parts,
    caller: &Caller,
    name: &str,
    version: Option<&str>,
) -> Result<(Vec<u8>, ArtifactRef)> {
    let guard = parts.guard(caller);
    let scope = caller.scope();
    let allow = |a: &Artifact| match &guard {
        Some(g) => {
            g.require(
                ObjectKind::Artifact,
                name,
                a.creator.as_deref(),
                Access::Read,
                "",
            )?;
            match scope {
                Some(s) => parts.require_run(g, s, Access::Write, "loading inside it"),
                None => Ok(()),
            }
        }
        None => Ok(()),
    };
    let out = parts.artifacts.load(name, version, &allow)?;
    if let Some(s) = scope {
        record(parts, s, "upstream", &out.1)?;
    }
    Ok(out)
}
