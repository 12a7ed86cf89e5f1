//! Plan: what a call or an exec will do, settled before anything is
//! written. The function (or each command) is resolved, the caller's right
//! to run it (and to make Runs inside its scope) is checked, the arguments
//! are made canonical and the limits settled. The result is a [`Plan`]:
//! the Run's record to be, its inputs, its limits and its work.

use crate::access::{Access, Guard, ObjectKind};
use crate::call::{CallRequest, canonical_args};
use crate::config::{CmdRecord, FunctionRef, RunConfig, RunType};
use crate::exec::{CmdSpec, ExecRequest};
use crate::execute::host::OutputObserver;
use crate::functions::{ComponentKind, FunctionDesc, Loaded};
use crate::parts::Parts;
use crate::{Caller, Error, Limits, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The function a call resolves to: one of its component's functions.
pub(crate) struct Target {
    pub loaded: Arc<Loaded>,
    index: usize,
}

impl Target {
    /// What the function is: its name and parameters.
    pub fn desc(&self) -> &FunctionDesc {
        &self.loaded.info.functions[self.index]
    }
}

/// What a Run executes.
pub(crate) enum Work {
    /// A function, called with the plan's inputs.
    Function(Target),
    /// Commands, in order.
    Commands(Commands),
}

/// The resolved commands of a Run.
pub(crate) struct Commands {
    pub cmds: Vec<(CmdSpec, Arc<Loaded>)>,
    pub keep_going: bool,
}

/// A checked call or exec, ready to be claimed and executed.
pub(crate) struct Plan {
    /// The user the Run acts for, when users are checked.
    pub guard: Option<Guard>,
    /// The name asked for; `None` for an automatic one made from `stem`.
    pub run_name: Option<String>,
    pub stem: String,
    /// The record the Run starts with (its name is set when claimed).
    pub config: RunConfig,
    /// The canonical `inputs.json` (for a function, also its arguments).
    pub inputs: Vec<u8>,
    pub limits: Limits,
    pub observer: Option<OutputObserver>,
    /// Replace a finished Run of the same name.
    pub rerun: bool,
    /// Answer from the result cache when a completed Run can.
    pub cache: bool,
    /// How old (by its end) a Run that answers may be.
    pub cache_ttl: Option<std::time::Duration>,
    /// The result cache's key of a function call, hashed once.
    key: Option<String>,
    pub work: Work,
    /// Python statements run by the interpreter (`run_python`): recorded
    /// as a command Run, one command per statement.
    pub python: bool,
}

impl Plan {
    /// Plan a function call for `caller`.
    pub async fn call(parts: &Arc<Parts>, caller: &Caller, req: CallRequest) -> Result<Plan> {
        if let Some(name) = &req.run_name {
            crate::validate_run_name(name)?;
        }
        let guard = parts.guard(caller);
        let parent = inside(parts, caller, guard.as_ref())?;
        let (deployment, digest, target) = resolve(parts, &req.function, guard.as_ref()).await?;
        let inputs = canonical_args(target.desc(), &req.args)?;
        let limits = req.limits(&parts.opts.limits)?;
        parts.engine.check_memory(limits.memory)?;
        let mut config = record(parts, caller, parent, &inputs, &limits);
        config.tags = tags(req.tags)?;
        config.fn_name = Some(target.desc().name.clone());
        let input_digest = config.input_digest.as_deref().unwrap_or_default();
        let key = crate::cache::key(&digest, &target.desc().name, input_digest);
        config.function = Some(FunctionRef {
            name: deployment,
            digest,
        });
        Ok(Plan {
            guard,
            run_name: req.run_name,
            stem: target.desc().name.clone(),
            config,
            inputs,
            limits,
            observer: req.observer,
            rerun: req.rerun,
            // A refresh executes, and its Run becomes the newest answer.
            cache: req.cache.unwrap_or(parts.opts.cache) && !req.refresh_cache,
            cache_ttl: req.cache_ttl.or(parts.opts.cache_ttl),
            key: Some(key),
            work: Work::Function(target),
            python: false,
        })
    }

    /// Plan a Run of commands for `caller`.
    pub async fn exec(parts: &Arc<Parts>, caller: &Caller, req: ExecRequest) -> Result<Plan> {
        if req.cmds.is_empty() {
            return Err(Error::Invalid("exec needs at least one command".into()));
        }
        if let Some(name) = &req.run_name {
            crate::validate_run_name(name)?;
        }
        let guard = parts.guard(caller);
        let parent = inside(parts, caller, guard.as_ref())?;
        let limits = req.limits(&parts.opts.limits)?;
        parts.engine.check_memory(limits.memory)?;
        let mut cmds = Vec::with_capacity(req.cmds.len());
        let mut records = Vec::with_capacity(req.cmds.len());
        for spec in req.cmds {
            let digest = command_digest(parts, &spec, guard.as_ref())?;
            let loaded = load(parts, &digest).await?;
            if loaded.info.kind != ComponentKind::Command {
                return Err(Error::Invalid(format!(
                    "`{}` is a function component, not a command; call it with call",
                    spec.cmd
                )));
            }
            records.push(CmdRecord {
                cmd: spec.cmd.clone(),
                args: spec.args.clone(),
                exit_code: None,
                digest: Some(digest),
            });
            cmds.push((spec, loaded));
        }
        let inputs = serde_json::to_vec(&records).map_err(|e| Error::Invalid(e.to_string()))?;
        let mut config = record(parts, caller, parent, &inputs, &limits);
        config.tags = tags(req.tags)?;
        config.run_type = RunType::Command;
        config.cmds = records;
        Ok(Plan {
            guard,
            run_name: req.run_name,
            stem: "exec".into(),
            config,
            inputs,
            limits,
            observer: req.observer,
            rerun: req.rerun,
            cache: false,
            cache_ttl: None,
            key: None,
            work: Work::Commands(Commands {
                cmds,
                keep_going: req.keep_going,
            }),
            python: false,
        })
    }

    /// Plan a Run of Python statements: a call of the interpreter deployed
    /// as [`crate::python::NAME`], recorded as a command Run, never cached.
    pub async fn python(
        parts: &Arc<Parts>,
        caller: &Caller,
        statements: Vec<String>,
        keep_going: bool,
        mut req: CallRequest,
    ) -> Result<Plan> {
        crate::python::check_statements(&statements)?;
        req.function = format!("{}/run", crate::python::NAME);
        req.args = serde_json::json!([statements, keep_going]);
        req.cache = Some(false);
        let mut plan = match Plan::call(parts, caller, req).await {
            Err(Error::UnknownFunction { name, .. } | Error::NotFound { name, .. })
                if name == crate::python::NAME || name.starts_with("python/") =>
            {
                return Err(crate::python::not_installed());
            }
            other => other?,
        };
        plan.key = None;
        plan.cache = false;
        plan.python = true;
        // Its scratch folder is writable: it gets a command Run's limit.
        plan.limits.scratch = Some(
            parts
                .opts
                .limits
                .scratch
                .unwrap_or(crate::Limits::DEFAULT_SCRATCH),
        );
        plan.stem = "python".into();
        let digest = plan.config.function.as_ref().map(|f| f.digest.clone());
        plan.config.run_type = crate::config::RunType::Command;
        plan.config.cmds = statements
            .into_iter()
            .map(|s| crate::config::CmdRecord {
                cmd: crate::python::NAME.into(),
                args: vec![s],
                exit_code: None,
                digest: digest.clone(),
            })
            .collect();
        Ok(plan)
    }

    /// The same plan, never answered from the result cache.
    pub fn uncached(mut self) -> Plan {
        self.cache = false;
        self
    }

    /// The result cache's key of a function call.
    pub fn cache_key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The component digest, function and inputs of a function call.
    pub fn call_identity(&self) -> (&str, &str, &str) {
        let c = &self.config;
        (
            c.function.as_ref().map_or("", |f| f.digest.as_str()),
            c.fn_name.as_deref().unwrap_or_default(),
            c.input_digest.as_deref().unwrap_or_default(),
        )
    }

    /// Why an existing Run is not the one this call would make, if it is not.
    pub fn mismatch(&self, existing: &RunConfig) -> Option<String> {
        let (digest, fn_name, input_digest) = self.call_identity();
        let f = existing.function.as_ref();
        if f.map(|f| f.digest.as_str()) != Some(digest)
            || existing.fn_name.as_deref() != Some(fn_name)
        {
            return Some(format!(
                "by another function or version ({}{} {})",
                f.map(|f| f.name.as_str()).unwrap_or("?"),
                existing
                    .fn_name
                    .as_deref()
                    .map(|n| format!("/{n}"))
                    .unwrap_or_default(),
                f.map(|f| short(&f.digest)).unwrap_or("?"),
            ));
        }
        if existing.input_digest.as_deref() != Some(input_digest) {
            return Some("from other inputs".into());
        }
        None
    }
}

/// The record a planned Run starts with: what every kind of Run records of
/// its inputs, limits, parent and creator.
fn record(
    parts: &Parts,
    caller: &Caller,
    parent: Option<String>,
    inputs: &[u8],
    limits: &Limits,
) -> RunConfig {
    let mut config = RunConfig::function(String::new(), parts.opts.cluster.clone());
    config.input_digest = Some(crate::artifacts::digest_of(inputs));
    config.limits = Some(limits.clone());
    config.parent_run = parent;
    config.creator = caller.creator().map(str::to_string);
    config
}

/// A request's tags, once each is valid and there are not too many.
fn tags(tags: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    if tags.len() > crate::names::MAX_TAGS {
        return Err(Error::Invalid(format!(
            "a Run takes at most {} tags ({} given)",
            crate::names::MAX_TAGS,
            tags.len()
        )));
    }
    for (k, v) in &tags {
        crate::validate_tag(k, v)?;
    }
    Ok(tags)
}

/// The Run the caller acts inside (recorded as the parent), once the
/// caller is known to be allowed to make Runs inside it.
fn inside(parts: &Parts, caller: &Caller, guard: Option<&Guard>) -> Result<Option<String>> {
    let Some(parent) = caller.scope() else {
        return Ok(None);
    };
    crate::validate_run_name(parent)?;
    if let Some(g) = guard {
        parts.require_run(g, parent, Access::Write, "making Runs inside it")?;
    }
    Ok(Some(parent.to_string()))
}

/// The function a call names, for `guard`'s user when users are checked:
/// a deployed name they may not read answers exactly like a missing one,
/// before anything about it (its kind, its exports) shows. Returns the
/// deployed name, the component digest and the function.
pub(crate) async fn resolve(
    parts: &Arc<Parts>,
    function: &str,
    guard: Option<&Guard>,
) -> Result<(String, String, Target)> {
    let (dep_name, fn_name) = match function.split_once('/') {
        Some((d, f)) => (d, Some(f)),
        None => (function, None),
    };
    let dep = parts.functions.deployment(dep_name)?;
    if let Some(g) = guard {
        g.require(
            ObjectKind::Function,
            &dep.name,
            dep.creator.as_deref(),
            Access::Read,
            "calling it",
        )?;
    }
    if dep
        .info
        .as_ref()
        .is_some_and(|i| i.kind == ComponentKind::Command)
    {
        return Err(Error::Invalid(format!(
            "`{dep_name}` is a command component; run it with exec"
        )));
    }
    let digest = dep.digest().to_string();
    let loaded = load(parts, &digest).await?;
    let info = &loaded.info;
    let names = || {
        info.functions
            .iter()
            .map(|f| format!("{dep_name}/{}", f.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let position = |name: &str| info.functions.iter().position(|d| d.name == name);
    let index = match fn_name {
        Some(f) => position(f).ok_or_else(|| Error::UnknownFunction {
            name: function.to_string(),
            hint: format!("; `{dep_name}` exports {}", names()),
        })?,
        None if info.functions.len() == 1 => 0,
        None => position(dep_name).ok_or_else(|| Error::UnknownFunction {
            name: function.to_string(),
            hint: format!(
                "; `{dep_name}` exports several functions, call one of {}",
                names()
            ),
        })?,
    };
    Ok((
        dep.name.clone(),
        digest,
        Target {
            loaded: loaded.clone(),
            index,
        },
    ))
}

/// The digest of a command's component, once the user may run it: a
/// digest needs its bytes to have been uploaded by them, a deployed name
/// read access.
fn command_digest(parts: &Parts, spec: &CmdSpec, guard: Option<&Guard>) -> Result<String> {
    if spec.component.starts_with("sha256:") {
        if let Some(g) = guard {
            g.require(
                ObjectKind::Component,
                &spec.component,
                None,
                Access::Read,
                "",
            )?;
        }
        return Ok(spec.component.clone());
    }
    let dep = parts.functions.deployment(&spec.component)?;
    if let Some(g) = guard {
        g.require(
            ObjectKind::Function,
            &dep.name,
            dep.creator.as_deref(),
            Access::Read,
            "running it",
        )?;
    }
    Ok(dep.digest().to_string())
}

/// The component of a digest, ready to instantiate: from memory, else
/// loaded (from its precompiled copy, or compiled: seconds of CPU for a big
/// component) off the async workers.
async fn load(parts: &Arc<Parts>, digest: &str) -> Result<Arc<Loaded>> {
    if let Some(loaded) = parts.functions.cached(digest) {
        return Ok(loaded);
    }
    // The pooled blocking threads: no thread is made for it, and compiling
    // (rare: deploy leaves a precompiled copy) runs on the engine's own
    // lowered threads.
    let (p, digest) = (parts.clone(), digest.to_string());
    tokio::task::spawn_blocking(move || p.functions.load(&p.engine, &digest))
        .await
        .map_err(|e| Error::Engine(format!("loading a component: {e}")))?
}

fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}
