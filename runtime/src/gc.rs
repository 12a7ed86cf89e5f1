//! Retention: removing the finished Runs a policy no longer keeps (by age
//! and/or by keeping the newest N), and, when asked, the artifact versions
//! and components nothing kept refers to.
//!
//! Candidates come from the index of Runs, oldest first, a batch at a time;
//! a Run still running is never one. Each is checked against the caller's
//! access (write access to the Run) and, unless `include_producers`, kept
//! when it made the current version of an artifact. The run store removes a
//! batch so that each Run is whole or gone, and a removal cut short by a
//! crash is finished by recovery (see `RunStore::remove_many`).

use crate::access::{Access, ObjectKind};
use crate::caller::Caller;
use crate::config::{ArtifactRef, RunStatus};
use crate::parts::Parts;
use crate::store::index::RunQuery;
use crate::store::index::search::to_micros;
use crate::{Error, Result};
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

/// What retention removes: finished Runs older than a duration and/or not
/// among the newest `keep_last`, narrowed by status and function.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcRequest {
    /// Remove Runs that ended longer ago than this.
    #[serde(default, with = "ms_opt", rename = "older_than_ms")]
    pub older_than: Option<Duration>,
    /// Keep the newest N matching Runs, remove the older ones.
    #[serde(default)]
    pub keep_last: Option<usize>,
    /// Only Runs with one of these (finished) statuses.
    #[serde(default)]
    pub status: Vec<RunStatus>,
    /// Only Runs of this function.
    #[serde(default)]
    pub function: Option<String>,
    /// Say what would go, remove nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Also remove artifact versions that are neither current nor
    /// referenced by a kept Run.
    #[serde(default)]
    pub artifacts: bool,
    /// Also remove stored components that no deployed name and no kept Run
    /// refers to.
    #[serde(default)]
    pub components: bool,
    /// Remove Runs that made the current version of an artifact too.
    #[serde(default)]
    pub include_producers: bool,
    /// After each batch, rest as long as it took: the disk and the cores
    /// go to calls at least half the time (periodic retention does this).
    #[serde(default)]
    pub pace: bool,
}

mod ms_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// What retention removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GcReport {
    /// Whether nothing was removed (a dry run).
    pub dry_run: bool,
    /// How many Runs.
    pub runs_removed: u64,
    /// The bytes their folders held.
    pub run_bytes: u64,
    /// The Runs' names, oldest first (the first [`GcReport::NAMES`]).
    pub runs: Vec<String>,
    /// Runs kept because they made an artifact's current version.
    pub producers_kept: u64,
    /// Artifact versions removed (`--artifacts`).
    pub artifact_versions_removed: u64,
    /// Components removed (`--components`).
    pub components_removed: u64,
    /// Bytes freed by artifact blobs and components.
    pub other_bytes: u64,
}

impl GcReport {
    /// How many names a report lists.
    pub const NAMES: usize = 1000;
}

/// How many Runs a batch removes.
const BATCH: usize = 500;
/// Components and blobs younger than this stay (a deploy or save may be
/// writing the name that will refer to them).
const YOUNG: Duration = Duration::from_secs(600);

impl GcRequest {
    /// Refuse a request that keeps everything or could remove a running Run.
    pub fn check(&self) -> Result<()> {
        if self.older_than.is_none() && self.keep_last.is_none() {
            return Err(Error::Invalid(
                "say which Runs to remove: --older-than D and/or --keep-last N".into(),
            ));
        }
        if let Some(s) = self.status.iter().find(|s| !s.is_terminal()) {
            return Err(Error::Invalid(format!(
                "a {s} Run is never removed: --status takes completed, error or cancelled"
            )));
        }
        Ok(())
    }
}

pub(crate) fn gc(parts: &Parts, caller: &Caller, req: &GcRequest) -> Result<GcReport> {
    req.check()?;
    let index = parts.runs.index();
    let guard = parts.guard(caller);
    // "The newest N" are the newest N the caller can see.
    let visible = parts.run_visibility(caller)?;
    let q = RunQuery {
        status: req.status.clone(),
        function: req.function.clone(),
        ..RunQuery::default()
    };
    let ended_before = req.older_than.map(|d| {
        to_micros(
            SystemTime::now()
                .checked_sub(d)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        )
    });
    let current: Vec<ArtifactRef> = if req.include_producers {
        Vec::new()
    } else {
        parts
            .artifacts
            .list()?
            .into_iter()
            .filter_map(|a| {
                a.versions.last().map(|v| ArtifactRef {
                    name: a.name.clone(),
                    digest: v.digest.clone(),
                })
            })
            .collect()
    };
    let mut report = GcReport {
        dry_run: req.dry_run,
        ..GcReport::default()
    };
    let mut after = (i64::MIN, i64::MIN);
    loop {
        let started = std::time::Instant::now();
        let batch = index.removable(&q, &visible, ended_before, req.keep_last, after, BATCH)?;
        let Some(last) = batch.last() else { break };
        after = (last.start_us, last.id);
        let mut chosen = Vec::new();
        for k in &batch {
            let may = guard.as_ref().is_none_or(|g| {
                g.has(
                    ObjectKind::Run,
                    &k.name,
                    k.creator.as_deref(),
                    Access::Write,
                )
            });
            if !may {
                continue;
            }
            if !current.is_empty() && index.produced_any(k.id, &current)? {
                report.producers_kept += 1;
                continue;
            }
            chosen.push((k.name.clone(), k.start_us));
        }
        // Grants go first, as for a delete: a crash in between leaves a Run
        // with no grants (closed), never grants for the next Run of its name.
        if !req.dry_run {
            for (name, _) in &chosen {
                parts.access.revoke(ObjectKind::Run, name, None)?;
            }
        }
        let removed = if req.dry_run {
            chosen
                .into_iter()
                .map(|(n, _)| {
                    let b = parts.runs.size_of(&n);
                    (n, b)
                })
                .collect()
        } else {
            parts.runs.remove_many(&chosen)?
        };
        for (name, bytes) in removed {
            report.runs_removed += 1;
            report.run_bytes += bytes;
            if report.runs.len() < GcReport::NAMES {
                report.runs.push(name);
            }
        }
        if batch.len() < BATCH {
            break;
        }
        if req.pace {
            std::thread::sleep(started.elapsed());
        }
    }
    if req.artifacts {
        artifacts(parts, req.dry_run, &mut report)?;
    }
    if req.components {
        components(parts, req.dry_run, &mut report)?;
    }
    Ok(report)
}

/// Old artifact versions no kept Run refers to, then blobs no version and
/// no Run refers to.
fn artifacts(parts: &Parts, dry_run: bool, report: &mut GcReport) -> Result<()> {
    let index = parts.runs.index();
    for art in parts.artifacts.list()? {
        // A version stays when a kept Run refers to it (or when that
        // cannot be told).
        let keep = |v: &crate::ArtifactVersion| {
            index
                .refers_to(&ArtifactRef {
                    name: art.name.clone(),
                    digest: v.digest.clone(),
                })
                .unwrap_or(true)
        };
        report.artifact_versions_removed += if dry_run {
            let current = art.versions.last().map(|v| &v.digest);
            art.versions
                .iter()
                .filter(|v| Some(&v.digest) != current && !keep(v))
                .count() as u64
        } else {
            parts.artifacts.prune(&art.name, &keep)?.len() as u64
        };
    }
    let mut used: HashSet<String> = index.edge_digests()?;
    for art in parts.artifacts.list()? {
        used.extend(art.versions.into_iter().map(|v| v.digest));
    }
    for (digest, size, age) in parts.artifacts.blobs()? {
        if used.contains(&digest) || age < YOUNG {
            continue;
        }
        report.other_bytes += if dry_run {
            size
        } else {
            parts.artifacts.remove_blob(&digest)
        };
    }
    Ok(())
}

/// Components no deployed name (any version) and no kept Run refers to.
fn components(parts: &Parts, dry_run: bool, report: &mut GcReport) -> Result<()> {
    let mut used: HashSet<String> = parts.runs.index().run_digests()?;
    for d in parts.functions.list()? {
        used.extend(d.versions.into_iter().map(|v| v.digest));
    }
    for (digest, size, age) in parts.functions.components()? {
        if used.contains(&digest) || age < YOUNG {
            continue;
        }
        report.components_removed += 1;
        report.other_bytes += if dry_run {
            size
        } else {
            parts.functions.remove_component(&digest)
        };
    }
    Ok(())
}
