//! Hosts: each process that executes Runs in a store registers as a host,
//! holds an exclusive `flock` on `hosts/<host>.lock` for its whole life and
//! journals the Runs it starts and ends to `hosts/<host>.runs`. Its spare
//! files (for swapping records in without freeing inodes) and the folders
//! made ahead for it live under `hosts/` too. Recovery finds dead hosts by
//! their unlocked locks and marks the Runs their journals left open
//! `error` / `interrupted`.

use super::{RunStore, mkdir_all};
use crate::config::{RunError, RunStatus};
use crate::store::files::try_lock;
use crate::store::index::{Checkpoint, Mark, Pending};
use crate::{Error, Result};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The host identity of this process in one store, its lock and journal.
pub(super) struct Host {
    pub(super) id: String,
    journal: Arc<HostJournal>,
    pub(super) spares: std::sync::Mutex<Spares>,
    /// Folders and files made ahead by a background thread, when enabled.
    pub(super) ahead: Option<std::sync::Arc<super::ahead::Ahead>>,
    _lock: File,
}

/// Files that hold a replaced `config.json`'s old contents, kept to be
/// written over and swapped in for the next one (see [`RunStore::write_config`]).
pub(super) struct Spares {
    dir: PathBuf,
    free: VecDeque<(PathBuf, Instant)>,
    next: u64,
}

/// How long a swapped-out config file rests before it is written over, so
/// that a reader that opened it just before the swap still reads it whole.
const SPARE_REST: Duration = Duration::from_secs(1);

impl Spares {
    fn take(&mut self, ahead: Option<&super::ahead::Ahead>) -> PathBuf {
        if let Some((_, since)) = self.free.front()
            && since.elapsed() >= SPARE_REST
            && let Some((path, _)) = self.free.pop_front()
        {
            return path;
        }
        if let Some(path) = ahead.and_then(|a| a.file()) {
            return path;
        }
        self.next += 1;
        self.dir.join(self.next.to_string())
    }

    pub(super) fn give_back(&mut self, path: PathBuf) {
        self.free.push_back((path, Instant::now()));
    }
}

/// The Runs a host has started and not yet ended, on disk.
struct Journal {
    file: File,
    /// The Runs noted `+` and not yet `-`, by name, with how many times
    /// (a lost claim of a name this host runs notes it twice).
    open: HashMap<String, usize>,
    len: u64,
    /// How many times the journal started afresh; its first line says so
    /// (`#<epoch>`), so that an offset is never read in the wrong one.
    epoch: u64,
    /// Offsets of the lines whose Runs' rows the index has not committed.
    pending: BTreeSet<u64>,
}

/// A host's journal, shared with the index writer that settles its lines.
pub(super) struct HostJournal {
    host: String,
    inner: std::sync::Mutex<Journal>,
}

impl Pending for HostJournal {
    fn settle(&self, epoch: u64, offset: u64) -> Option<Checkpoint> {
        let mut j = self.inner.lock().expect("host journal poisoned");
        if epoch == j.epoch {
            j.pending.remove(&offset);
        }
        Some(Checkpoint {
            host: self.host.clone(),
            epoch: j.epoch,
            offset: j.pending.first().copied().unwrap_or(j.len),
        })
    }
}

/// The Run names a dead host's journal holds past `checkpoint` (all of
/// them when the journal started afresh since, or there is none).
pub(super) fn names_after(text: &str, checkpoint: Option<(u64, u64)>) -> Vec<String> {
    let epoch = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix('#'))
        .and_then(|g| g.parse::<u64>().ok())
        .unwrap_or(0);
    let from = match checkpoint {
        Some((g, offset)) if g == epoch => usize::try_from(offset).unwrap_or(usize::MAX),
        _ => 0,
    };
    let tail = text.get(from.min(text.len())..).unwrap_or_default();
    let mut names: Vec<String> = tail
        .lines()
        .filter_map(|l| l.strip_prefix('+').or_else(|| l.strip_prefix('-')))
        .map(str::to_string)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The size past which a journal with no Run open starts afresh.
const JOURNAL_RESTART: u64 = 1 << 20;

impl Host {
    /// A spare file to write a record or result into, then rename in.
    pub(super) fn take_spare(&self) -> PathBuf {
        self.spares
            .lock()
            .expect("spares poisoned")
            .take(self.ahead.as_deref())
    }

    /// Note that `run` starts (`+`) or ends (`-`): the line's mark, which
    /// the index settles once the Run's row is committed. A host notes the
    /// end only of a Run it noted the start of: ending another process's
    /// Run (a scope it opened) must not count against this host's own open
    /// Runs.
    pub(super) fn note(&self, sign: char, run: &str) -> Option<Mark> {
        let mut j = self.journal.inner.lock().expect("host journal poisoned");
        if sign == '+' {
            *j.open.entry(run.to_string()).or_default() += 1;
        } else {
            match j.open.get_mut(run) {
                None => return None,
                Some(1) => {
                    j.open.remove(run);
                }
                Some(n) => *n -= 1,
            }
        }
        // With nothing open and every line indexed the journal says
        // nothing: once it has grown, start it afresh, so a long-lived
        // host's journal stays small.
        if j.open.is_empty() && j.pending.is_empty() && j.len > JOURNAL_RESTART {
            let epoch = j.epoch + 1;
            let header = format!("#{epoch}\n");
            match j
                .file
                .set_len(0)
                .and_then(|()| j.file.write_all(header.as_bytes()))
            {
                Ok(()) => {
                    j.len = header.len() as u64;
                    j.epoch = epoch;
                }
                Err(e) => tracing::warn!("host journal: {e}"),
            }
        }
        let line = format!("{sign}{run}\n");
        if let Err(e) = j.file.write_all(line.as_bytes()) {
            tracing::warn!("host journal: {e}");
        }
        let offset = j.len;
        j.len += line.len() as u64;
        j.pending.insert(offset);
        Some(Mark {
            epoch: j.epoch,
            offset,
            journal: self.journal.clone(),
        })
    }
}

impl RunStore {
    /// This process's host id, registered on first use: it names what the
    /// process leaves on disk, so that others can tell whether it is in use.
    pub(crate) fn host_id(&self) -> Result<&str> {
        Ok(&self.host()?.id)
    }

    /// Whether host `id` is alive: this process's, or one holding its lock.
    pub(crate) fn host_alive(&self, id: &str) -> bool {
        if self.host.get().is_some_and(|h| h.id == id) {
            return true;
        }
        let Ok(lock) = File::open(self.hosts.join(format!("{id}.lock"))) else {
            return false;
        };
        !try_lock(&lock)
    }

    pub(super) fn host(&self) -> Result<&Host> {
        if let Some(h) = self.host.get() {
            return Ok(h);
        }
        let id = format!(
            "{}-{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000_000
        );
        // Lock under a temporary name, then rename: a recovering process can
        // never find this host's lock file unlocked.
        let tmp = self.hosts.join(format!(".{id}.lock.tmp"));
        let lock = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        if !try_lock(&lock) {
            return Err(Error::io(
                "lock",
                &tmp,
                std::io::Error::from(std::io::ErrorKind::WouldBlock),
            ));
        }
        let jpath = self.hosts.join(format!("{id}.runs"));
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&jpath)
            .map_err(|e| Error::io("create", &jpath, e))?;
        let spare_dir = self.hosts.join(format!("{id}.spare"));
        mkdir_all(&spare_dir)?;
        let ahead = match self.ahead {
            0 => None,
            n => {
                let dir = self.hosts.join(format!("{id}.ahead"));
                Some(
                    super::ahead::Ahead::start(dir.clone(), n)
                        .map_err(|e| Error::io("create folder", &dir, e))?,
                )
            }
        };
        let path = self.hosts.join(format!("{id}.lock"));
        fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
        let journal = Arc::new(HostJournal {
            host: id.clone(),
            inner: std::sync::Mutex::new(Journal {
                file: journal,
                open: HashMap::new(),
                len: 0,
                epoch: 0,
                pending: BTreeSet::new(),
            }),
        });
        let host = Host {
            ahead,
            id,
            journal,
            spares: std::sync::Mutex::new(Spares {
                dir: spare_dir,
                free: VecDeque::new(),
                next: 0,
            }),
            _lock: lock,
        };
        let _ = self.host.set(host);
        Ok(self.host.get().expect("host was just set"))
    }

    /// Mark the unfinished Runs of dead hosts `error` / `interrupted`.
    pub fn recover(&self) -> Result<usize> {
        let mut recovered = 0;
        let Ok(entries) = fs::read_dir(&self.hosts) else {
            return Ok(0);
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(id) = file.to_str().and_then(|n| n.strip_suffix(".lock")) else {
                continue;
            };
            if id.starts_with('.') {
                continue;
            }
            if self.host.get().is_some_and(|h| h.id == id) {
                continue;
            }
            let Ok(lock) = File::open(entry.path()) else {
                continue;
            };
            if !try_lock(&lock) {
                continue; // alive
            }
            let jpath = self.hosts.join(format!("{id}.runs"));
            let text = fs::read_to_string(&jpath).unwrap_or_default();
            let mut open: Vec<&str> = Vec::new();
            for line in text.lines() {
                if let Some(run) = line.strip_prefix('+') {
                    open.push(run);
                } else if let Some(run) = line.strip_prefix('-')
                    && let Some(i) = open.iter().position(|r| *r == run)
                {
                    // One end for one start: a name noted twice is open still.
                    open.swap_remove(i);
                }
            }
            open.sort_unstable();
            open.dedup();
            let mut touched = names_after(&text, self.index.checkpoint(id));
            for run in open {
                if self.interrupt(run, id)? {
                    recovered += 1;
                }
                // Ended or not, its row is made to match: a host that died
                // between a Run's end and its journal line left it open.
                touched.push(run.to_string());
            }
            // Rows the dead host may not have committed: made to match
            // their folders before its journal goes.
            // And the Runs it was removing for retention.
            let gc = self.hosts.join(format!("{id}.gc"));
            if let Ok(names) = fs::read_to_string(&gc) {
                touched.extend(names.lines().map(str::to_string));
            }
            touched.sort_unstable();
            touched.dedup();
            self.index.reconcile(&touched, &|name| self.load(name))?;
            self.index.forget_host(id);
            let _ = fs::remove_file(&gc);
            let _ = fs::remove_file(&jpath);
            let _ = fs::remove_dir_all(self.hosts.join(format!("{id}.spare")));
            let _ = fs::remove_dir_all(self.hosts.join(format!("{id}.ahead")));
            self.remove_temp_folders(id);
            let _ = fs::remove_file(entry.path());
        }
        Ok(recovered)
    }

    fn interrupt(&self, run: &str, host: &str) -> Result<bool> {
        let mut cfg = match self.load(run) {
            Ok(c) => c,
            Err(Error::NotFound { .. } | Error::InvalidName { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        if cfg.status.is_terminal() || cfg.host.as_deref() != Some(host) {
            return Ok(false);
        }
        cfg.status = RunStatus::Error;
        cfg.end_time = Some(crate::names::now_rfc3339());
        cfg.error = Some(RunError {
            kind: "interrupted".into(),
            message: "the host running this Run stopped before it ended".into(),
        });
        self.write_config(&cfg)?;
        tracing::info!("run {run} of dead host {host} marked interrupted");
        Ok(true)
    }

    /// Remove a dead host's half-made folders (`.tmp-<host>-…`) and the
    /// Runs it was deleting or replacing (`.trash-<run>-<pid>-<n>`).
    fn remove_temp_folders(&self, host: &str) {
        let prefix = format!(".tmp-{host}-");
        let pid = host.split('-').next().unwrap_or_default();
        let trash_of_host = |n: &str| {
            n.strip_prefix(".trash-").is_some_and(|rest| {
                let mut parts = rest.rsplitn(3, '-');
                let (_n, p) = (parts.next(), parts.next());
                p == Some(pid)
            })
        };
        if let Ok(entries) = fs::read_dir(&self.runs) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&prefix) || trash_of_host(n))
                {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
}
