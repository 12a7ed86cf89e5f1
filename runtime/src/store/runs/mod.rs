//! The run store: one folder per Run, and the recovery of Runs whose host died.
//!
//! Layout under the runs directory (`rh/runs/` locally, `~/.rh/logs/` on a
//! daemon): `<name>/{config.json, inputs.json, result.json, stdout, stderr}`.
//!
//! A Run is *claimed* by building its folder under a private temporary name
//! and renaming it into place: `rename(2)` of a directory onto an existing,
//! non-empty one fails, so the folder appears whole (with `config.json`) or
//! not at all, and two callers racing for one name cannot both win. This is
//! what makes concurrent identical `get_or_call`s execute once, across
//! processes too, without a global lock.
//!
//! Recovery: each process that executes Runs holds an exclusive `flock` on
//! `hosts/<host>.lock` for its whole life and appends `+run` / `-run` lines
//! to its journal `hosts/<host>.runs` as the Runs it starts begin and end
//! (one `write` on an open file each, no file created per Run; ending a
//! scope another process opened notes nothing). The kernel drops the lock
//! when the process dies, even by `kill -9`, so opening the store finds dead
//! hosts by trying their locks, reads their journals, and marks the Runs
//! they left unfinished `error` / `interrupted`: no scan of every Run.

use crate::config::RunConfig;
use crate::store::files::{lock, overwrite_file, write_file};
use crate::store::index::Index;
use crate::{Error, Result};
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub(crate) use crate::config::{CONFIG, INPUTS, RESULT, STDERR, STDOUT};

pub(crate) struct RunStore {
    runs: PathBuf,
    hosts: PathBuf,
    locks: PathBuf,
    cancels: PathBuf,
    host: OnceLock<Host>,
    counter: AtomicU64,
    durable: bool,
    /// How many Run folders to keep made ahead (0: none).
    ahead: usize,
    /// Whether the runs directory and `hosts/` are on one filesystem, so a
    /// host's spare files and prepared folders can be renamed into Runs.
    same_fs: bool,
    /// Whether Runs live in memory (tmpfs), where making a file costs no
    /// more than writing over one: results are then written in place.
    in_memory: bool,
    /// The index of these Runs, kept in step with every folder written.
    index: Arc<Index>,
}

/// A Run folder this process has just claimed: the open output files.
pub(crate) struct Folder {
    pub dir: PathBuf,
    pub stdout: File,
    pub stderr: File,
}

/// Why a claim did not happen.
pub(crate) enum ClaimError {
    /// A Run of that name exists; its record.
    Exists(Box<RunConfig>),
    Other(Error),
}

impl From<Error> for ClaimError {
    fn from(e: Error) -> Self {
        ClaimError::Other(e)
    }
}

/// `statfs`'s type of a tmpfs (`linux/magic.h`).
const TMPFS_MAGIC: i64 = 0x0102_1994;

fn mkdir_all(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| Error::io("create folder", p, e))
}

impl RunStore {
    pub fn open(
        root: &Path,
        runs: PathBuf,
        durable: bool,
        ahead: usize,
        index: Arc<Index>,
    ) -> Result<Self> {
        let store = RunStore {
            index,
            hosts: root.join("hosts"),
            locks: root.join("locks"),
            cancels: root.join("cancel"),
            runs,
            host: OnceLock::new(),
            counter: AtomicU64::new(0),
            durable,
            ahead,
            same_fs: false,
            in_memory: false,
        };
        for d in [&store.runs, &store.hosts, &store.locks, &store.cancels] {
            mkdir_all(d)?;
        }
        let mut store = store;
        store.same_fs = {
            use std::os::unix::fs::MetadataExt;
            let dev = |p: &Path| fs::metadata(p).map(|m| m.dev()).ok();
            dev(&store.runs).is_some() && dev(&store.runs) == dev(&store.hosts)
        };
        if !store.same_fs {
            store.ahead = 0;
        }
        store.in_memory = rustix::fs::statfs(&store.runs).is_ok_and(|st| st.f_type == TMPFS_MAGIC);
        crate::store::files::spread_subfolders(&store.runs);
        store.recover()?;
        Ok(store)
    }

    pub fn runs_dir(&self) -> &Path {
        &self.runs
    }

    /// The index of these Runs.
    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.runs.join(name)
    }

    /// Build a Run folder privately and rename it into place.
    pub fn claim(
        &self,
        config: &mut RunConfig,
        inputs: Option<&[u8]>,
    ) -> std::result::Result<Folder, ClaimError> {
        let host = self.host()?;
        config.host = Some(host.id.clone());
        // A folder made ahead when there is one (function Runs: it holds an
        // inputs.json), else one made now; either way filled in privately.
        let prepared = match (inputs, &host.ahead) {
            (Some(_), Some(a)) => a.folder(),
            _ => None,
        };
        let tmp = match &prepared {
            Some(p) => p.dir.clone(),
            None => {
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                let tmp = self.runs.join(format!(".tmp-{}-{n}", host.id));
                fs::create_dir(&tmp).map_err(|e| Error::io("create folder", &tmp, e))?;
                tmp
            }
        };
        let built = (|| -> Result<Option<(File, File)>> {
            let record = to_json(config)?;
            if let Some(p) = &prepared {
                // Made ahead: its files are open and empty.
                use std::os::unix::fs::FileExt;
                let [c, i, ..] = &p.files;
                c.write_all_at(&record, 0)
                    .map_err(|e| Error::io("write", tmp.join(CONFIG), e))?;
                if let Some(inputs) = inputs {
                    i.write_all_at(inputs, 0)
                        .map_err(|e| Error::io("write", tmp.join(INPUTS), e))?;
                }
                return Ok(None);
            }
            write_file(&tmp.join(CONFIG), &record, false)?;
            if let Some(inputs) = inputs {
                write_file(&tmp.join(INPUTS), inputs, false)?;
            }
            let stdout = create(&tmp.join(STDOUT))?;
            let stderr = create(&tmp.join(STDERR))?;
            Ok(Some((stdout, stderr)))
        })();
        let made = match built {
            Ok(files) => files,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e.into());
            }
        };
        // A cancel request left over from an earlier Run of this name must
        // not reach the new one.
        let _ = fs::remove_file(self.cancels.join(&config.name));
        let dir = self.dir(&config.name);
        // In the journal before it exists: a crash in between leaves a name
        // whose Run is missing or not ours, which recovery skips (and
        // whose row it makes match the folder).
        let mark = host.note('+', &config.name);
        match fs::rename(&tmp, &dir) {
            Ok(()) => {
                self.index.put(config, mark);
                let (stdout, stderr) = match (made, prepared) {
                    (Some(files), _) => files,
                    (None, Some(p)) => {
                        let [_, _, stdout, stderr] = p.files;
                        (stdout, stderr)
                    }
                    (None, None) => unreachable!("a folder is made ahead or here"),
                };
                Ok(Folder {
                    dir,
                    stdout,
                    stderr,
                })
            }
            Err(e) => {
                // Nothing to index: the name is another Run's.
                for m in [mark, host.note('-', &config.name)].into_iter().flatten() {
                    m.settle();
                }
                match (prepared, &host.ahead) {
                    (Some(p), Some(a)) => a.give_back_folder(p),
                    _ => {
                        let _ = fs::remove_dir_all(&tmp);
                    }
                }
                if matches!(
                    e.kind(),
                    ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty
                ) {
                    match self.load(&config.name) {
                        Ok(existing) => Err(ClaimError::Exists(Box::new(existing))),
                        Err(err) => Err(err.into()),
                    }
                } else {
                    Err(Error::io("rename", &dir, e).into())
                }
            }
        }
    }

    /// Replace an existing Run (a rerun) when `may_replace` still holds for
    /// it under the name's lock, then claim the name. With the claimed
    /// folder, the record of the Run it replaced, if any.
    pub fn replace(
        &self,
        config: &mut RunConfig,
        inputs: Option<&[u8]>,
        may_replace: impl Fn(&RunConfig) -> bool,
    ) -> std::result::Result<(Folder, Option<Box<RunConfig>>), ClaimError> {
        let lock = lock(&self.locks.join(&config.name))?;
        let dir = self.dir(&config.name);
        let (trash, replaced) = match self.load(&config.name) {
            Ok(existing) if !may_replace(&existing) => {
                return Err(ClaimError::Exists(Box::new(existing)));
            }
            Ok(existing) => {
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                let trash =
                    self.runs
                        .join(format!(".trash-{}-{}-{n}", config.name, std::process::id()));
                match fs::rename(&dir, &trash) {
                    Ok(()) => (Some(trash), Some(Box::new(existing))),
                    // Removed by retention since it was read: nothing to replace.
                    Err(e) if e.kind() == ErrorKind::NotFound => (None, None),
                    Err(e) => return Err(Error::io("rename", &dir, e).into()),
                }
            }
            Err(Error::NotFound { .. }) => (None, None),
            Err(e) => return Err(e.into()),
        };
        let claimed = self.claim(config, inputs);
        drop(lock);
        if let Some(trash) = trash {
            let _ = fs::remove_dir_all(trash);
        }
        claimed.map(|folder| (folder, replaced))
    }

    /// Delete a finished Run's folder when `may_remove` allows it, under
    /// the name's lock: it leaves its name by one rename, so readers see
    /// the whole Run or none.
    pub fn remove(&self, name: &str, may_remove: &dyn Fn(&RunConfig) -> Result<()>) -> Result<()> {
        crate::validate_run_name(name)?;
        let lock = lock(&self.locks.join(name))?;
        let existing = self.load(name)?;
        if !existing.status.is_terminal() {
            return Err(Error::NotFinished {
                run: name.to_string(),
                status: existing.status,
            });
        }
        may_remove(&existing)?;
        let dir = self.dir(name);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let trash = self
            .runs
            .join(format!(".trash-{name}-{}-{n}", std::process::id()));
        fs::rename(&dir, &trash).map_err(|e| Error::io("rename", &dir, e))?;
        drop(lock);
        self.index
            .forget(vec![(name.to_string(), start_us(&existing))]);
        fs::remove_dir_all(&trash).map_err(|e| Error::io("remove", &trash, e))
    }

    /// Remove finished Runs (name, start) for retention; the Runs removed
    /// and the bytes each freed. Each leaves its name by one rename, so it
    /// is whole or gone; it is checked after that rename to still be the
    /// finished Run meant (a rerun may have taken the name), else put
    /// back. The names are written down first (`hosts/<host>.gc`), so if
    /// this process dies halfway, recovery makes their rows match what is
    /// left of them.
    pub fn remove_many(&self, runs: &[(String, i64)]) -> Result<Vec<(String, u64)>> {
        let host = self.host()?;
        let intent = self.hosts.join(format!("{}.gc", host.id));
        let list: String = runs.iter().map(|(n, _)| format!("{n}\n")).collect();
        write_file(&intent, list.as_bytes(), self.durable)?;
        let mut trash = Vec::new();
        let mut gone = Vec::new();
        for (i, (name, start)) in runs.iter().enumerate() {
            if i == runs.len() / 2 {
                crate::faults::crash_point("gc-removing");
            }
            if crate::validate_run_name(name).is_err() {
                continue;
            }
            let dir = self.dir(name);
            // Checked before it moves (a stale row may name a Run a rerun
            // has replaced, still running) and again after (in case one
            // did in between).
            match load_config(&dir) {
                Ok(c) if c.status.is_terminal() && start_us(&c) == *start => {}
                Ok(_) => continue,
                Err(_) => {
                    // Gone already: its row goes too.
                    gone.push((name.clone(), *start));
                    continue;
                }
            }
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let t = self
                .runs
                .join(format!(".trash-{name}-{}-{n}", std::process::id()));
            if fs::rename(&dir, &t).is_err() {
                gone.push((name.clone(), *start));
                continue;
            }
            match load_config(&t) {
                Ok(c) if c.status.is_terminal() && start_us(&c) == *start => {
                    trash.push((name.clone(), *start, t))
                }
                _ => {
                    if let Err(e) = fs::rename(&t, &dir) {
                        tracing::error!("putting back run {name} after a rerun took it: {e}");
                    }
                }
            }
        }
        gone.extend(trash.iter().map(|(n, s, _)| (n.clone(), *s)));
        self.index.forget(gone);
        // Deleted on the background pool (niced: calls keep their cores),
        // in parallel: on ext4 the unlinks are most of a removal's cost.
        use rayon::prelude::*;
        let removed = trash
            .into_par_iter()
            .map(|(name, _, t)| {
                let bytes = folder_bytes(&t);
                if let Err(e) = fs::remove_dir_all(&t) {
                    tracing::warn!("removing {}: {e}", t.display());
                }
                (name, bytes)
            })
            .collect();
        let _ = fs::remove_file(&intent);
        Ok(removed)
    }

    /// The bytes a Run's folder holds.
    pub fn size_of(&self, name: &str) -> u64 {
        folder_bytes(&self.dir(name))
    }

    /// Record a Run's end: `config.json` replaced atomically, marker gone.
    pub fn finish(&self, config: &RunConfig) -> Result<()> {
        self.write_config(config)?;
        let mark = self
            .host
            .get()
            .and_then(|host| host.note('-', &config.name));
        self.index.put(config, mark);
        // A request to cancel it is spent (one made for its name once it has
        // ended is removed when the name is next claimed).
        if config.status == crate::config::RunStatus::Cancelled {
            let _ = fs::remove_file(self.cancels.join(&config.name));
        }
        Ok(())
    }

    /// Replace `config.json` atomically: readers see the old record or the
    /// new one, whole, never a mix.
    ///
    /// The new record is written to a spare file of this host, which is then
    /// swapped with `config.json` in one `renameat2(RENAME_EXCHANGE)`; the
    /// spare now holds the old record and is written over for a later Run,
    /// after resting [`SPARE_REST`]. So finishing a Run frees no inode. This
    /// matters on ext4 without a journal (this project's test machines):
    /// there, allocating an inode skips every inode freed in the last
    /// minutes, one buffer lookup each, so a store that frees one inode per
    /// Run makes every later file creation slower (see BENCHMARKS.md).
    /// Where the swap is not supported, a temporary file and a plain rename
    /// do the same job.
    pub fn write_config(&self, config: &RunConfig) -> Result<()> {
        let dir = self.dir(&config.name);
        let path = dir.join(CONFIG);
        let bytes = to_json(config)?;
        let Some(host) = self.host.get().filter(|_| self.same_fs) else {
            let tmp = dir.join(".config.json.tmp");
            write_file(&tmp, &bytes, self.durable)?;
            fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))?;
            return self.sync_dir(&dir);
        };
        let spare = host.take_spare();
        overwrite_file(&spare, &bytes, self.durable)?;
        let swapped = rustix::fs::renameat_with(
            rustix::fs::CWD,
            &spare,
            rustix::fs::CWD,
            &path,
            rustix::fs::RenameFlags::EXCHANGE,
        );
        match swapped {
            Ok(()) => host
                .spares
                .lock()
                .expect("spares poisoned")
                .give_back(spare),
            Err(_) => fs::rename(&spare, &path).map_err(|e| Error::io("rename", &path, e))?,
        }
        self.sync_dir(&dir)
    }

    /// Write `result.json` into a Run folder of this host: through a spare
    /// file renamed into place when there is one, so no inode is made here
    /// (in memory, in place: there a new file is the cheaper).
    pub fn write_result(&self, dir: &Path, bytes: &[u8]) -> Result<()> {
        let path = dir.join(RESULT);
        let Some(host) = self.host.get().filter(|_| self.same_fs && !self.in_memory) else {
            write_file(&path, bytes, self.durable)?;
            return self.sync_dir(dir);
        };
        let spare = host.take_spare();
        overwrite_file(&spare, bytes, self.durable)?;
        fs::rename(&spare, &path).map_err(|e| Error::io("rename", &path, e))?;
        self.sync_dir(dir)
    }

    /// With `durable`, make a folder's new entries survive power loss.
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        if self.durable {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io("sync", dir, e))?;
        }
        Ok(())
    }

    pub fn load(&self, name: &str) -> Result<RunConfig> {
        crate::validate_run_name(name)?;
        let dir = self.dir(name);
        // A record that does not parse or names another Run was read across
        // a swap (see `write_config`): read again.
        let mut loaded = load_config(&dir);
        for _ in 0..3 {
            match &loaded {
                Ok(c) if c.name != name => {}
                Err(Error::Corrupt { .. }) => {}
                _ => break,
            }
            loaded = load_config(&dir);
        }
        loaded.map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == ErrorKind::NotFound => Error::NotFound {
                what: "run",
                name: name.to_string(),
            },
            e => e,
        })
    }

    /// Ask whichever process runs `name` to cancel it.
    pub fn request_cancel(&self, name: &str) -> Result<()> {
        let p = self.cancels.join(name);
        File::create(&p).map_err(|e| Error::io("create", &p, e))?;
        Ok(())
    }

    pub fn cancels_dir(&self) -> &Path {
        &self.cancels
    }
}

/// The bytes of the files in a folder (a Run folder has no subfolders but
/// its scratch, counted too).
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some(if m.is_dir() {
                folder_bytes(&e.path())
            } else {
                m.len()
            })
        })
        .sum()
}

/// When a Run started, as the index orders it.
pub(crate) fn start_us(c: &RunConfig) -> i64 {
    c.start_time
        .as_deref()
        .and_then(crate::store::index::micros)
        .unwrap_or(0)
}

pub(crate) fn load_config(dir: &Path) -> Result<RunConfig> {
    let path = dir.join(CONFIG);
    let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt { path, source })
}

pub(crate) fn to_json(config: &RunConfig) -> Result<Vec<u8>> {
    let mut v = serde_json::to_vec_pretty(config).map_err(|e| Error::Invalid(e.to_string()))?;
    v.push(b'\n');
    Ok(v)
}

fn create(path: &Path) -> Result<File> {
    File::create(path).map_err(|e| Error::io("create", path, e))
}

pub(crate) mod ahead;
pub(crate) mod folder;
mod hosts;
pub(crate) mod mirror;

use hosts::Host;

#[cfg(test)]
mod tests;
