//! Copies of Runs that another host of the cluster executes: each host of
//! a cluster of several keeps every Run's folder (its record, inputs,
//! result and, once it has ended, its output), so that any host answers
//! `show`, `result`, `logs`, search and lineage for the whole cluster.
//!
//! What arrives is trusted no further than its shape: the name is checked,
//! only the four files a Run folder holds are written (never a path a
//! message names), each bounded by the caller. A copy never goes back in
//! time: a record older than the one held (an earlier start, or the same
//! start but not ended where the held one has) is dropped.

use super::{INPUTS, RESULT, RunStore, STDERR, STDOUT, start_us, to_json};
use crate::config::{CONFIG, RunConfig, RunStatus};
use crate::store::files::{lock, write_file};
use crate::{Error, Result};
use std::fs;
use std::sync::atomic::Ordering;

/// The files a copied Run may carry.
pub(crate) const MIRRORED: [&str; 4] = [INPUTS, RESULT, STDOUT, STDERR];

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mirrored {
    /// Written (a new Run, or a newer record of one held).
    Written,
    /// Dropped: the copy held is as new or newer.
    Stale,
}

impl RunStore {
    /// Install `config` (and `files`, named from [`MIRRORED`]) as the Run
    /// of its name, unless the Run held here is as new or newer. A Run of
    /// the name that started at another time is replaced whole.
    pub fn mirror(&self, config: &RunConfig, files: &[(&str, &[u8])]) -> Result<Mirrored> {
        crate::validate_run_name(&config.name)?;
        for (name, _) in files {
            if !MIRRORED.contains(name) {
                return Err(Error::Invalid(format!(
                    "a copied Run carries no file `{name}`"
                )));
            }
        }
        let _lock = lock(&self.locks.join(&config.name))?;
        let dir = self.dir(&config.name);
        let held = match self.load(&config.name) {
            Ok(c) => Some(c),
            Err(Error::NotFound { .. }) => None,
            // A record that does not parse: the folder is replaced whole.
            Err(Error::Corrupt { .. }) => Some(corrupt_placeholder(&config.name)),
            Err(e) => return Err(e),
        };
        if let Some(h) = &held
            && !newer(config, h)
        {
            return Ok(Mirrored::Stale);
        }
        let in_place = held
            .as_ref()
            .is_some_and(|h| start_us(h) == start_us(config));
        if in_place {
            for (name, bytes) in files {
                let tmp = dir.join(format!(".{name}.mirror"));
                write_file(&tmp, bytes, self.durable)?;
                let path = dir.join(name);
                fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))?;
            }
            let tmp = dir.join(".config.json.mirror");
            write_file(&tmp, &to_json(config)?, self.durable)?;
            let path = dir.join(CONFIG);
            fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))?;
        } else {
            // Built privately, then renamed in: readers see one Run whole.
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let tmp = self.runs.join(format!(
                ".mirror-{}-{}-{n}",
                config.name,
                std::process::id()
            ));
            let built = (|| -> Result<()> {
                fs::create_dir(&tmp).map_err(|e| Error::io("create folder", &tmp, e))?;
                for (name, bytes) in files {
                    write_file(&tmp.join(name), bytes, self.durable)?;
                }
                for name in [STDOUT, STDERR] {
                    if !files.iter().any(|(f, _)| *f == name) {
                        write_file(&tmp.join(name), b"", false)?;
                    }
                }
                write_file(&tmp.join(CONFIG), &to_json(config)?, self.durable)
            })();
            if let Err(e) = built {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
            let trash = held.is_some().then(|| {
                let t =
                    self.runs
                        .join(format!(".trash-{}-{}-{n}", config.name, std::process::id()));
                fs::rename(&dir, &t).ok().map(|_| t)
            });
            if let Err(e) = fs::rename(&tmp, &dir) {
                let _ = fs::remove_dir_all(&tmp);
                return Err(Error::io("rename", &dir, e));
            }
            if let Some(Some(t)) = trash {
                let _ = fs::remove_dir_all(t);
            }
            if let Some(h) = &held {
                self.index.forget_lazy(vec![(h.name.clone(), start_us(h))]);
            }
        }
        // Within the writer's window: the folder is the truth meanwhile.
        self.index.put_lazy(config);
        Ok(Mirrored::Written)
    }

    /// Remove the Run `name` when it is still `not_started` (a copy of a
    /// queued Run that this host is about to execute). Whether it did.
    pub fn drop_queued(&self, name: &str) -> Result<bool> {
        crate::validate_run_name(name)?;
        let _lock = lock(&self.locks.join(name))?;
        match self.load(name) {
            Ok(c) if c.status == RunStatus::NotStarted => {
                let dir = self.dir(name);
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                let trash = self
                    .runs
                    .join(format!(".trash-{name}-{}-{n}", std::process::id()));
                fs::rename(&dir, &trash).map_err(|e| Error::io("rename", &dir, e))?;
                let _ = fs::remove_dir_all(&trash);
                self.index
                    .forget_lazy(vec![(name.to_string(), start_us(&c))]);
                Ok(true)
            }
            Ok(_) | Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A held record that does not parse, as the oldest record of its name:
/// any copy replaces it (whole, since no start time matches).
fn corrupt_placeholder(name: &str) -> RunConfig {
    let mut c = RunConfig::function(name.to_string(), String::new());
    c.status = RunStatus::Completed;
    c.start_time = None;
    c
}

/// Whether `incoming` is a later state of the Run than `held`. Records of
/// one Run come from different hosts (queued by one, run by another), whose
/// clocks need not agree: start times are compared only where a new Run of
/// the name replaces another (a rerun of a finished Run, a Run queued
/// again after its host died), never to order the states of one Run.
/// Of two ends of one Run the first stands (a host taken for dead whose
/// Run still ended), unless the later only adds to it (the same status).
fn newer(incoming: &RunConfig, held: &RunConfig) -> bool {
    let (a, b) = (start_us(incoming), start_us(held));
    match (rank(held.status), rank(incoming.status)) {
        // A new Run of the name, queued or running, after one that ended.
        (2, 0 | 1) => a > b,
        // Both ended: the same end again, or a later Run's end.
        (2, 2) if a == b => incoming.status == held.status,
        (2, 2) => a > b,
        // Queued, then running or ended: the same Run going on.
        (0, 1 | 2) => true,
        // Queued again (after its host died) or a later attempt.
        (0, 0) | (1, 0) => a > b,
        (1, 1) => a != b,
        (1, 2) => true,
        _ => false,
    }
}

fn rank(s: RunStatus) -> u8 {
    match s {
        RunStatus::NotStarted => 0,
        RunStatus::Running => 1,
        _ => 2,
    }
}
