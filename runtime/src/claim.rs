//! Claim: take a Run's name in the run store for a [`Plan`]. A new name
//! is claimed at once; a finished Run is replaced only when the plan says
//! so (a rerun) and the caller may write it; an existing Run is otherwise
//! reported, never touched. [`find_or_claim`] is the one path of
//! `get_or_call` and `get_or_run`: reuse the Run of that name when the same
//! call made it, wait on it while it runs, run it again when it failed.
//! A claimed Run is registered as in flight here before it is returned.

use crate::access::{Access, Guard, ObjectKind};
use crate::cached::Hit;
use crate::config::{RunConfig, RunStatus};
use crate::inflight::Live;
use crate::parts::Parts;
use crate::plan::Plan;
use crate::runs::ClaimError;
use crate::{Error, Result};

/// A Run this process has claimed and must now execute and record.
pub(crate) struct Claimed {
    pub config: RunConfig,
    /// The Run's folder.
    pub dir: std::path::PathBuf,
    /// Its stdout and stderr, open, until execution takes them.
    pub outputs: Option<(std::fs::File, std::fs::File)>,
    /// A completed Run that answers the call: copied, not executed.
    pub hit: Option<Hit>,
    pub live: Live,
    /// The result cache's lock on the call's key, held until the Run is
    /// recorded, so identical cached calls execute once.
    pub cache_lock: Option<std::fs::File>,
}

/// What claiming a name found.
pub(crate) enum Found {
    /// The name is this process's to execute.
    Claimed(Box<Claimed>),
    /// A Run of that name exists; its record.
    Existing(Box<RunConfig>),
}

/// Which existing Run a claim may replace.
#[derive(Clone)]
pub(crate) enum Replace {
    /// None: an existing name is reported.
    Never,
    /// A finished one (a rerun).
    Finished,
    /// The finished one that started at this time (a rerun of a Run just
    /// looked at, unless someone else replaced it first).
    Seen(Option<String>),
}

impl Replace {
    fn allows(&self, c: &RunConfig) -> bool {
        match self {
            Replace::Never => false,
            Replace::Finished => c.status.is_terminal(),
            Replace::Seen(start) => c.status.is_terminal() && c.start_time == *start,
        }
    }

    fn of(plan: &Plan) -> Replace {
        if plan.rerun {
            Replace::Finished
        } else {
            Replace::Never
        }
    }
}

/// Claim a new Run for `plan` (replacing a finished one on a rerun),
/// answered from the result cache when the plan allows and a completed Run
/// can. An existing Run is an error, `hint` saying what to do instead.
pub(crate) async fn new_run(parts: &Parts, plan: &Plan, hint: &str) -> Result<Claimed> {
    let (cache_lock, hit) = match plan.cache_key().filter(|_| plan.cache) {
        Some(key) => {
            let lock = parts.cache.lock(key).await?;
            (Some(lock), crate::cached::find(parts, plan, key).await)
        }
        None => (None, None),
    };
    match claim(parts, plan, Replace::of(plan), hit)? {
        Found::Claimed(mut c) => {
            c.cache_lock = cache_lock;
            Ok(*c)
        }
        Found::Existing(c) => Err(exists_error(&c, hint)),
    }
}

/// The Run the plan names when the same call made it, else a claim of the
/// name: see the module docs. A Run still running is returned as
/// existing (the caller waits on it); one made differently is an error
/// unless the plan is a rerun. Looking first keeps the common case (the
/// Run exists) to one read; the claim still settles races.
pub(crate) async fn find_or_claim(parts: &Parts, plan: &Plan) -> Result<Found> {
    let Some(name) = plan.run_name.as_deref() else {
        return Err(Error::Invalid("get-or-call needs a run name".into()));
    };
    loop {
        let existing = match parts.runs.load(name) {
            Ok(existing) => {
                if let Some(g) = &plan.guard {
                    may_use(g, &existing, Access::Read, "")?;
                }
                Box::new(existing)
            }
            Err(Error::NotFound { .. }) => {
                // A new Run: answered from a Run any cluster published for
                // the same call when there is one.
                let hit = match plan.cache_key() {
                    Some(key) if parts.opts.shared_store.is_some() => {
                        crate::cached::find(parts, plan, key).await
                    }
                    _ => None,
                };
                match claim(parts, plan, Replace::Never, hit)? {
                    Found::Claimed(c) => return Ok(Found::Claimed(c)),
                    Found::Existing(c) => c,
                }
            }
            Err(e) => return Err(e),
        };
        let mismatch = plan.mismatch(&existing);
        if let Some(reason) = &mismatch
            && !plan.rerun
        {
            return Err(Error::RunMismatch {
                run: name.to_string(),
                reason: reason.clone(),
            });
        }
        if !existing.status.is_terminal() {
            if mismatch.is_some() {
                return Err(exists_error(
                    &existing,
                    "; it is still running, cancel it first",
                ));
            }
            return Ok(Found::Existing(existing));
        }
        let failed = matches!(existing.status, RunStatus::Error | RunStatus::Cancelled);
        if !plan.rerun && !failed {
            return Ok(Found::Existing(existing));
        }
        // Replace it, unless someone else already has.
        let seen = Replace::Seen(existing.start_time.clone());
        if let Found::Claimed(c) = claim(parts, plan, seen, None)? {
            return Ok(Found::Claimed(c));
        }
    }
}

/// Claim a Run's folder for `plan` (a new name, or replacing a finished Run
/// when `replace` allows and the caller may write it) and register it as
/// in flight here.
pub(crate) fn claim(
    parts: &Parts,
    plan: &Plan,
    replace: Replace,
    hit: Option<Hit>,
) -> Result<Found> {
    // Before anything of the Run is made: a disk nearly full refuses it.
    parts.space.check()?;
    let guard = plan.guard.as_ref();
    // A Run is replaced only by a user who may write it.
    let may_replace = |c: &RunConfig| {
        replace.allows(c)
            && guard.is_none_or(|g| {
                g.has(
                    ObjectKind::Run,
                    &c.name,
                    c.creator.as_deref(),
                    Access::Write,
                )
            })
    };
    let mut attempts = 0;
    loop {
        let mut config = plan.config.clone();
        config.name = match &plan.run_name {
            Some(n) => n.clone(),
            None => crate::auto_run_name(&plan.stem),
        };
        let claimed = match replace {
            Replace::Never => parts
                .runs
                .claim(&mut config, Some(&plan.inputs))
                .map(|f| (f, None)),
            _ => parts
                .runs
                .replace(&mut config, Some(&plan.inputs), may_replace),
        };
        match claimed {
            Ok((folder, replaced)) => {
                // The replaced Run's owner, when that is someone else,
                // keeps write access to the new one.
                if let (Some(g), Some(owner)) =
                    (guard, replaced.as_ref().and_then(|r| r.creator.as_deref()))
                    && owner != g.user.name
                {
                    parts
                        .access
                        .grant(ObjectKind::Run, &config.name, owner, Access::Write)?;
                }
                let live = parts.inflight.register(&config.name, plan.limits.output);
                if let Some(w) = &parts.opts.watcher {
                    (w.0)(crate::RunEvent::Started(&config));
                }
                return Ok(Found::Claimed(Box::new(Claimed {
                    config,
                    dir: folder.dir,
                    outputs: Some((folder.stdout, folder.stderr)),
                    hit,
                    live,
                    cache_lock: None,
                })));
            }
            Err(ClaimError::Exists(_)) if plan.run_name.is_none() && attempts < 8 => {
                attempts += 1;
            }
            Err(ClaimError::Exists(existing)) => {
                if let Some(g) = guard {
                    let need =
                        if !matches!(replace, Replace::Never) && existing.status.is_terminal() {
                            Access::Write
                        } else {
                            Access::Read
                        };
                    may_use(g, &existing, need, "running it again")?;
                }
                return Ok(Found::Existing(existing));
            }
            Err(ClaimError::Other(e)) => return Err(e),
        }
    }
}

/// Claim the folder of a scope's Run (no execution behind it).
pub(crate) fn claim_scope(
    parts: &Parts,
    config: &mut RunConfig,
    guard: Option<&Guard>,
) -> Result<()> {
    parts.space.check()?;
    match parts.runs.claim(config, None) {
        Ok(_) => Ok(()),
        Err(ClaimError::Exists(c)) => {
            // Another user's Run says only that the name is taken.
            if let Some(g) = guard {
                may_use(g, &c, Access::Read, "")?;
            }
            Err(exists_error(&c, ""))
        }
        Err(ClaimError::Other(e)) => Err(e),
    }
}

/// The error for a name already taken by `existing`.
pub(crate) fn exists_error(existing: &RunConfig, hint: &str) -> Error {
    Error::RunExists {
        run: existing.name.clone(),
        status: existing.status,
        hint: hint.to_string(),
    }
}

/// Refuse to use an existing Run's name unless the user has `need` on it;
/// one they may not see is "taken", since names are the cluster's.
pub(crate) fn may_use(g: &Guard, existing: &RunConfig, need: Access, doing: &str) -> Result<()> {
    match g.require(
        ObjectKind::Run,
        &existing.name,
        existing.creator.as_deref(),
        need,
        doing,
    ) {
        Err(Error::NotFound { .. }) => Err(Error::Forbidden {
            message: format!(
                "the run name `{}` is taken by another user's Run; choose another",
                existing.name
            ),
        }),
        other => other,
    }
}
