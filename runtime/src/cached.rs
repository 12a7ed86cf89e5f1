//! The result cache in a call's path: finding a completed Run that can
//! answer a planned call (this cluster's first, then one any cluster
//! published to the shared store), copying it into the new Run, and
//! publishing completed Runs. The stores themselves are `cache` (the local
//! index) and `shared` (the signed shared store).

use crate::access::{Access, ObjectKind};
use crate::execute::function::Outcome;
use crate::execute::host::{OutputKind, OutputObserver};
use crate::parts::Parts;
use crate::plan::Plan;
use crate::runs::{RESULT, STDERR, STDOUT};
use crate::{Error, Result, Run};
use std::path::{Path, PathBuf};

/// A completed Run that can answer a call.
pub(crate) struct Hit {
    pub run: Run,
    /// Its address in the shared store, when another cluster made it.
    pub origin: Option<String>,
    /// Its copy under `<root>/shared/`, removed once the hit is recorded.
    pub _copy: Option<crate::shared::Copy>,
}

impl Hit {
    /// What the new Run records as the Run it reused.
    pub fn source(&self) -> String {
        self.origin
            .clone()
            .unwrap_or_else(|| self.run.name().to_string())
    }
}

/// A completed Run that can answer `plan`: one of this cluster's, else one
/// published to the shared store.
pub(crate) async fn find(parts: &Parts, plan: &Plan, key: &str) -> Option<Hit> {
    match local(parts, plan, key) {
        Some(run) => Some(Hit {
            run,
            origin: None,
            _copy: None,
        }),
        None => shared(parts, plan, key).await,
    }
}

/// One of this cluster's Runs that can answer `plan`.
fn local(parts: &Parts, plan: &Plan, key: &str) -> Option<Run> {
    let index = parts.runs.index();
    // Rows this process has sent are committed (another process's Run of
    // the key was committed before it let go of the key's lock).
    index.sync();
    let function = plan
        .config
        .function
        .as_ref()
        .map_or("", |f| f.name.as_str());
    index
        .cache_candidates(key, parts.cache.cleared_until(function))
        .into_iter()
        .filter_map(|name| parts.run(&name).ok())
        .find(|run| can_answer(parts, run, plan))
}

/// Whether `run` can answer `plan`: completed by the same component
/// digest, function and inputs, with its files, and the artifact versions
/// it loaded still current here and readable by the caller (a hit gives
/// only what they could have computed themselves).
fn can_answer(parts: &Parts, run: &Run, plan: &Plan) -> bool {
    let c = run.config();
    let (digest, fn_name, input_digest) = plan.call_identity();
    if !crate::cache::same_call(c, digest, fn_name, input_digest) {
        return false;
    }
    if let Some(ttl) = plan.cache_ttl
        && !ended_within(c.end_time.as_deref(), ttl)
    {
        return false;
    }
    let files = [RESULT, STDOUT, STDERR];
    if !files
        .iter()
        .all(|f| std::fs::symlink_metadata(run.file(f)).is_ok_and(|m| m.is_file()))
    {
        return false;
    }
    c.upstream_artifacts.iter().all(|a| {
        parts.artifacts.get(&a.name).ok().is_some_and(|art| {
            art.versions.last().is_some_and(|v| v.digest == a.digest)
                && plan.guard.as_ref().is_none_or(|g| {
                    g.has(
                        ObjectKind::Artifact,
                        &art.name,
                        art.creator.as_deref(),
                        Access::Read,
                    )
                })
        })
    })
}

/// Whether a Run that ended at `end` (RFC 3339) ended at most `ttl` ago.
fn ended_within(end: Option<&str>, ttl: std::time::Duration) -> bool {
    let Some(end) = end.and_then(|e| {
        time::OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339).ok()
    }) else {
        return false;
    };
    let age = time::OffsetDateTime::now_utc() - end;
    age <= time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX)
}

/// A Run published to the shared store that can answer `plan` (signed
/// with the team's key, no bigger than `plan` could have made), copied
/// here (verified) under `<root>/shared/` until the hit is recorded.
/// Anything else is a miss.
async fn shared(parts: &Parts, plan: &Plan, key: &str) -> Option<Hit> {
    let store = parts
        .opts
        .shared_store
        .as_ref()?
        .sub(&format!("cache/{key}"));
    let host = match parts.runs.host_id() {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("shared store: {e}");
            return None;
        }
    };
    let bounds = crate::shared::Bounds {
        output: plan.limits.output,
        result: plan.limits.memory,
        inputs: plan.inputs.len() as u64,
    };
    let dir = parts.opts.root.join("shared");
    let answers = |run: &Run| can_answer(parts, run, plan);
    let (run, url, copy) = crate::shared::lookup(&store, &dir, host, &bounds, &answers).await?;
    Some(Hit {
        run,
        origin: Some(url),
        _copy: Some(copy),
    })
}

/// Publish a completed function Run to the shared store, in the background
/// unless the options say otherwise: a cache, so a failure is logged and
/// nothing else.
pub(crate) async fn publish(parts: &Parts, dir: &Path, key: &str) {
    let Some(store) = &parts.opts.shared_store else {
        return;
    };
    let store = store.sub(&format!("cache/{key}"));
    let dir = dir.to_path_buf();
    let job = async move {
        if let Err(e) = store.push(&dir, &|_, _| {}).await {
            tracing::warn!("publishing {} to the shared store: {e}", dir.display());
        }
    };
    if parts.opts.publish_in_background {
        tokio::spawn(job);
    } else {
        job.await;
    }
}

/// The new Run's files of a cache hit, each with where it goes.
pub(crate) struct Dest {
    pub dir: PathBuf,
    pub stdout: std::fs::File,
    pub stderr: std::fs::File,
}

/// Answer a call from `source`: its output copied into the new Run's
/// files (and shown to the observer), its result, its lineage.
pub(crate) fn copy(source: &Run, mut dest: Dest, observer: Option<&OutputObserver>) -> Outcome {
    // Streamed in chunks, through a descriptor that follows no symlink:
    // the source may be large, and may come from another cluster.
    let copy = |from: &str, to: &mut std::fs::File, kind: OutputKind| -> Result<()> {
        use std::io::{Read, Write};
        let (mut f, _) = source.open_file(from)?;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| Error::io("read", source.file(from), e))?;
            if n == 0 {
                return Ok(());
            }
            to.write_all(&buf[..n])
                .map_err(|e| Error::io("write", dest.dir.join(from), e))?;
            if let Some(obs) = observer {
                obs(kind, &buf[..n]);
            }
        }
    };
    let result = copy(STDOUT, &mut dest.stdout, OutputKind::Stdout)
        .and_then(|()| copy(STDERR, &mut dest.stderr, OutputKind::Stderr))
        .and_then(|()| source.result_bytes());
    Outcome {
        result,
        fuel_consumed: 0,
        upstream: source.config().upstream_artifacts.clone(),
        downstream: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RunConfig, RunStatus};

    #[test]
    fn a_cache_hit_that_cannot_write_names_the_new_runs_file() {
        let d = tempfile::tempdir().unwrap();
        // The source: a completed Run with output and a result.
        let src = d.path().join("source");
        std::fs::create_dir(&src).unwrap();
        let mut c = RunConfig::function("source".into(), "local".into());
        c.status = RunStatus::Completed;
        std::fs::write(
            src.join(crate::runs::CONFIG),
            crate::runs::to_json(&c).unwrap(),
        )
        .unwrap();
        std::fs::write(src.join(STDOUT), b"some output\n").unwrap();
        std::fs::write(src.join(STDERR), b"").unwrap();
        std::fs::write(src.join(RESULT), b"3").unwrap();
        let source = Run::open(&src).unwrap();
        // The new Run's files, open for reading only: every write fails.
        let dir = d.path().join("hit");
        std::fs::create_dir(&dir).unwrap();
        for f in [STDOUT, STDERR] {
            std::fs::write(dir.join(f), b"").unwrap();
        }
        let open = |f: &str| std::fs::File::open(dir.join(f)).unwrap();
        let dest = Dest {
            dir: dir.clone(),
            stdout: open(STDOUT),
            stderr: open(STDERR),
        };
        match copy(&source, dest, None).result {
            Err(Error::Io { op, path, .. }) => {
                assert_eq!(op, "write");
                assert_eq!(path, dir.join(STDOUT));
            }
            other => panic!("expected a write error, got {other:?}"),
        }
    }
}
