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

use crate::config::{RunConfig, RunError, RunStatus};
use crate::{Error, Result};
use rustix::fs::{FlockOperation, flock};
use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) const CONFIG: &str = "config.json";
pub(crate) const INPUTS: &str = "inputs.json";
pub(crate) const RESULT: &str = "result.json";
pub(crate) const STDOUT: &str = "stdout";
pub(crate) const STDERR: &str = "stderr";

/// The host identity of this process in one store, its lock and journal.
struct Host {
    id: String,
    journal: std::sync::Mutex<Journal>,
    spares: std::sync::Mutex<Spares>,
    /// Folders and files made ahead by a background thread, when enabled.
    ahead: Option<std::sync::Arc<crate::ahead::Ahead>>,
    _lock: File,
}

/// Files that hold a replaced `config.json`'s old contents, kept to be
/// written over and swapped in for the next one (see [`RunStore::write_config`]).
struct Spares {
    dir: PathBuf,
    free: VecDeque<(PathBuf, Instant)>,
    next: u64,
}

/// How long a swapped-out config file rests before it is written over, so
/// that a reader that opened it just before the swap still reads it whole.
const SPARE_REST: Duration = Duration::from_secs(1);

impl Spares {
    fn take(&mut self, ahead: Option<&crate::ahead::Ahead>) -> PathBuf {
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

    fn give_back(&mut self, path: PathBuf) {
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
}

/// The size past which a journal with no Run open starts afresh.
const JOURNAL_RESTART: u64 = 1 << 20;

impl Host {
    /// A spare file to write a record or result into, then rename in.
    fn take_spare(&self) -> PathBuf {
        self.spares
            .lock()
            .expect("spares poisoned")
            .take(self.ahead.as_deref())
    }

    /// Note that `run` starts (`+`) or ends (`-`). A host notes the end only
    /// of a Run it noted the start of: ending another process's Run (a scope
    /// it opened) must not count against this host's own open Runs.
    fn note(&self, sign: char, run: &str) {
        let mut j = self.journal.lock().expect("host journal poisoned");
        if sign == '+' {
            *j.open.entry(run.to_string()).or_default() += 1;
        } else {
            match j.open.get_mut(run) {
                None => return,
                Some(1) => {
                    j.open.remove(run);
                }
                Some(n) => *n -= 1,
            }
        }
        let line = format!("{sign}{run}\n");
        if let Err(e) = j.file.write_all(line.as_bytes()) {
            tracing::warn!("host journal: {e}");
        }
        j.len += line.len() as u64;
        // With nothing open the journal says nothing: once it has grown,
        // start it afresh, so a long-lived host's journal stays small.
        if j.open.is_empty() && j.len > JOURNAL_RESTART {
            match j.file.set_len(0) {
                Ok(()) => j.len = 0,
                Err(e) => tracing::warn!("host journal: {e}"),
            }
        }
    }
}

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

fn mkdir_all(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| Error::io("create folder", p, e))
}

impl RunStore {
    pub fn open(root: &Path, runs: PathBuf, durable: bool, ahead: usize) -> Result<Self> {
        let store = RunStore {
            hosts: root.join("hosts"),
            locks: root.join("locks"),
            cancels: root.join("cancel"),
            runs,
            host: OnceLock::new(),
            counter: AtomicU64::new(0),
            durable,
            ahead,
            same_fs: false,
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
        spread_subfolders(&store.runs);
        store.recover()?;
        Ok(store)
    }

    pub fn runs_dir(&self) -> &Path {
        &self.runs
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.runs.join(name)
    }

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
        flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err()
    }

    fn host(&self) -> Result<&Host> {
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
        flock(&lock, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| Error::io("lock", &tmp, e.into()))?;
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
                    crate::ahead::Ahead::start(dir.clone(), n)
                        .map_err(|e| Error::io("create folder", &dir, e))?,
                )
            }
        };
        let path = self.hosts.join(format!("{id}.lock"));
        fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
        let host = Host {
            ahead,
            id,
            journal: std::sync::Mutex::new(Journal {
                file: journal,
                open: HashMap::new(),
                len: 0,
            }),
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
            Some(dir) => dir.clone(),
            None => {
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                let tmp = self.runs.join(format!(".tmp-{}-{n}", host.id));
                fs::create_dir(&tmp).map_err(|e| Error::io("create folder", &tmp, e))?;
                tmp
            }
        };
        let built = (|| -> Result<(File, File)> {
            overwrite_file(&tmp.join(CONFIG), &to_json(config)?, false)?;
            if let Some(inputs) = inputs {
                overwrite_file(&tmp.join(INPUTS), inputs, false)?;
            }
            let stdout = create(&tmp.join(STDOUT))?;
            let stderr = create(&tmp.join(STDERR))?;
            Ok((stdout, stderr))
        })();
        let (stdout, stderr) = match built {
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
        // whose Run is missing or not ours, which recovery skips.
        host.note('+', &config.name);
        match fs::rename(&tmp, &dir) {
            Ok(()) => Ok(Folder {
                dir,
                stdout,
                stderr,
            }),
            Err(e) => {
                host.note('-', &config.name);
                match (prepared, &host.ahead) {
                    (Some(dir), Some(a)) => a.give_back_folder(dir),
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
        let lock_path = self.locks.join(&config.name);
        let lock = File::create(&lock_path).map_err(|e| Error::io("create", &lock_path, e))?;
        flock(&lock, FlockOperation::LockExclusive)
            .map_err(|e| Error::io("lock", &lock_path, e.into()))?;
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
                fs::rename(&dir, &trash).map_err(|e| Error::io("rename", &dir, e))?;
                (Some(trash), Some(Box::new(existing)))
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
        let lock_path = self.locks.join(name);
        let lock = File::create(&lock_path).map_err(|e| Error::io("create", &lock_path, e))?;
        flock(&lock, FlockOperation::LockExclusive)
            .map_err(|e| Error::io("lock", &lock_path, e.into()))?;
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
        fs::remove_dir_all(&trash).map_err(|e| Error::io("remove", &trash, e))
    }

    /// Record a Run's end: `config.json` replaced atomically, marker gone.
    pub fn finish(&self, config: &RunConfig) -> Result<()> {
        self.write_config(config)?;
        if let Some(host) = self.host.get() {
            host.note('-', &config.name);
        }
        let _ = fs::remove_file(self.cancels.join(&config.name));
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
    /// file renamed into place when there is one, so no inode is made here.
    pub fn write_result(&self, dir: &Path, bytes: &[u8]) -> Result<()> {
        let path = dir.join(RESULT);
        let Some(host) = self.host.get().filter(|_| self.same_fs) else {
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

    pub fn list(&self) -> Result<Vec<RunConfig>> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.runs).map_err(|e| Error::io("read", &self.runs, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            match load_config(&entry.path()) {
                Ok(c) => out.push(c),
                Err(e) => tracing::warn!("skipping run folder {name}: {e}"),
            }
        }
        out.sort_by(|a, b| a.start_time.cmp(&b.start_time).then(a.name.cmp(&b.name)));
        Ok(out)
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
            if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
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
            for run in open {
                if self.interrupt(run, id)? {
                    recovered += 1;
                }
            }
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

/// Ask ext4 to spread the folders made in `dir` over its block groups, as
/// it does for top-level folders (`chattr +T`). Each Run folder and its
/// files then go to a little-used group, away from groups where many files
/// were just deleted: on ext4 without a journal, allocating an inode there
/// first skips every inode freed in the last minutes, which measured up to
/// 7x the cost of a whole Run folder (BENCHMARKS.md). Other filesystems
/// refuse the flag; that is fine.
pub(crate) fn spread_subfolders(dir: &Path) {
    use rustix::fs::{IFlags, ioctl_getflags, ioctl_setflags};
    let Ok(f) = File::open(dir) else { return };
    if let Ok(flags) = ioctl_getflags(&f)
        && !flags.contains(IFlags::TOPDIR)
        && let Err(e) = ioctl_setflags(&f, flags | IFlags::TOPDIR)
    {
        tracing::debug!("{}: cannot spread Run folders: {e}", dir.display());
    }
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

/// Write `bytes` as the whole of `path`, reusing the file if it exists: its
/// blocks are written over rather than freed and allocated again.
fn overwrite_file(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("write", path, e))?;
    f.set_len(bytes.len() as u64)
        .map_err(|e| Error::io("write", path, e))?;
    if durable {
        f.sync_all().map_err(|e| Error::io("sync", path, e))?;
    }
    Ok(())
}

fn create(path: &Path) -> Result<File> {
    File::create(path).map_err(|e| Error::io("create", path, e))
}

pub(crate) fn write_file(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("write", path, e))?;
    if durable {
        f.sync_all().map_err(|e| Error::io("sync", path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;

    fn ino(p: &Path) -> u64 {
        fs::metadata(p).unwrap().ino()
    }

    fn entries(dir: &Path, prefix: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(prefix))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn claim_and_finish(store: &RunStore, name: &str) -> PathBuf {
        let mut c = RunConfig::function(name.into(), "local".into());
        let claimed = match store.claim(&mut c, Some(b"[1,2]")) {
            Ok(c) => c,
            Err(_) => panic!("claim of {name} failed"),
        };
        store.write_result(&claimed.dir, b"3").unwrap();
        c.status = RunStatus::Completed;
        store.finish(&c).unwrap();
        claimed.dir
    }

    /// Note about 1.3 MiB of Runs starting and ending on `store`'s host: past
    /// the size at which a journal with nothing open starts afresh.
    fn grow_journal(store: &RunStore) {
        let host = store.host.get().unwrap();
        let long = "f".repeat(100);
        for n in 0..6000 {
            let name = format!("{long}-{n}");
            host.note('+', &name);
            host.note('-', &name);
        }
    }

    /// Whether a store opened on `root` now marks `run` interrupted, as it
    /// does a Run left unfinished by a host that died.
    fn interrupted_after_restart(root: &Path, run: &str) -> bool {
        let store = RunStore::open(root, root.join("runs"), false, 0).unwrap();
        let c = store.load(run).unwrap();
        c.status == RunStatus::Error && c.error.is_some_and(|e| e.kind == "interrupted")
    }

    #[test]
    fn ending_another_hosts_run_keeps_this_hosts_open_runs_in_its_journal() {
        let d = tempfile::tempdir().unwrap();
        let open = || RunStore::open(d.path(), d.path().join("runs"), false, 0).unwrap();
        // Two processes on one root: host A opened a scope, host B runs a
        // Run of its own and ends A's scope (as `end_scope` from B does).
        let a = open();
        let b = open();
        let mut scope = RunConfig::function("scope".into(), "local".into());
        let _scope = a.claim(&mut scope, None).ok().unwrap();
        let mut mine = RunConfig::function("mine".into(), "local".into());
        let _mine = b.claim(&mut mine, Some(b"[1]")).ok().unwrap();
        scope.status = RunStatus::Completed;
        b.finish(&scope).unwrap();
        grow_journal(&b);
        let id = b.host_id().unwrap().to_string();
        let journal = fs::read_to_string(d.path().join(format!("hosts/{id}.runs"))).unwrap();
        assert!(journal.contains("+mine\n"), "B's open Run left its journal");
        assert!(
            !journal.contains("-scope\n"),
            "B ended a Run it did not start"
        );
        // B dies: its Run is recovered, A's scope is left as it was.
        drop(b);
        assert!(interrupted_after_restart(d.path(), "mine"));
        assert_eq!(a.load("scope").unwrap().status, RunStatus::Completed);
    }

    #[test]
    fn a_lost_claim_of_a_name_this_host_runs_keeps_that_run_open() {
        let d = tempfile::tempdir().unwrap();
        let b = RunStore::open(d.path(), d.path().join("runs"), false, 0).unwrap();
        let mut mine = RunConfig::function("mine".into(), "local".into());
        let _mine = b.claim(&mut mine, Some(b"[1]")).ok().unwrap();
        // A second claim of the name (two identical calls in one process)
        // notes it and takes it back: the first is still open.
        let mut again = RunConfig::function("mine".into(), "local".into());
        assert!(matches!(
            b.claim(&mut again, Some(b"[1]")),
            Err(ClaimError::Exists(_))
        ));
        grow_journal(&b);
        drop(b);
        assert!(interrupted_after_restart(d.path(), "mine"));
    }

    #[test]
    fn finishing_swaps_the_record_and_keeps_the_old_one_as_a_spare() {
        let d = tempfile::tempdir().unwrap();
        let store = RunStore::open(d.path(), d.path().join("runs"), false, 0).unwrap();
        let mut c = RunConfig::function("r1".into(), "local".into());
        let claimed = store.claim(&mut c, Some(b"[1,2]")).ok().unwrap();
        let running = ino(&claimed.dir.join(CONFIG));
        c.status = RunStatus::Completed;
        store.finish(&c).unwrap();
        let done = store.load("r1").unwrap();
        assert_eq!(done.status, RunStatus::Completed);
        assert_ne!(
            ino(&claimed.dir.join(CONFIG)),
            running,
            "a new file holds the new record"
        );
        // The running record was not freed: it is this host's spare now.
        let host = store.host.get().unwrap();
        let spares = entries(
            &d.path().join("hosts").join(format!("{}.spare", host.id)),
            "",
        );
        assert_eq!(spares.len(), 1, "{spares:?}");
        assert_eq!(ino(&spares[0]), running);
        let old: RunConfig = serde_json::from_slice(&fs::read(&spares[0]).unwrap()).unwrap();
        assert_eq!(old.status, RunStatus::Running);
        // Nothing temporary is left in the Run's folder.
        let mut files: Vec<_> = fs::read_dir(&claimed.dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(files, ["config.json", "inputs.json", "stderr", "stdout"]);
    }

    #[test]
    fn runs_take_folders_and_files_made_ahead() {
        let d = tempfile::tempdir().unwrap();
        let store = RunStore::open(d.path(), d.path().join("runs"), false, 4).unwrap();
        // The first claim starts the host, and with it the thread.
        claim_and_finish(&store, "first");
        let ahead = store.host.get().unwrap().ahead.clone().unwrap();
        wait_for("4 prepared folders and files", || {
            let (d, f) = ahead.ready();
            d.len() == 4 && f.len() == 4
        });
        let (d_ready, _) = ahead.ready();
        let folders: HashSet<u64> = d_ready.iter().map(|p| ino(p)).collect();
        // Every file this host holds ready: new spares, and the first Run's
        // old record once it has rested.
        let hosts = d.path().join("hosts");
        let mut spares = HashSet::new();
        for sub in entries(&hosts, "") {
            for f in entries(&sub, "") {
                if f.is_file() {
                    spares.insert(ino(&f));
                }
            }
        }
        let dir = claim_and_finish(&store, "second");
        assert!(
            folders.contains(&ino(&dir)),
            "the Run's folder was made ahead"
        );
        assert!(
            spares.contains(&ino(&dir.join(RESULT))),
            "result.json was a file made before the call"
        );
        let run = store.load("second").unwrap();
        assert_eq!(run.status, RunStatus::Completed);
        assert_eq!(fs::read(dir.join(INPUTS)).unwrap(), b"[1,2]");
        assert_eq!(fs::read(dir.join(RESULT)).unwrap(), b"3");
        assert_eq!(fs::read(dir.join(STDOUT)).unwrap(), b"");
        // The thread makes up what was taken.
        wait_for("the pool refilled", || ahead.ready().0.len() == 4);
    }

    #[test]
    fn a_lost_claim_gives_its_prepared_folder_back() {
        let d = tempfile::tempdir().unwrap();
        let store = RunStore::open(d.path(), d.path().join("runs"), false, 2).unwrap();
        claim_and_finish(&store, "taken");
        let ahead = store.host.get().unwrap().ahead.clone().unwrap();
        wait_for("2 prepared folders", || ahead.ready().0.len() == 2);
        let before: HashSet<u64> = ahead.ready().0.iter().map(|p| ino(p)).collect();
        let mut c = RunConfig::function("taken".into(), "local".into());
        match store.claim(&mut c, Some(b"[9]")) {
            Err(ClaimError::Exists(existing)) => assert_eq!(existing.status, RunStatus::Completed),
            _ => panic!("a second claim of one name must fail"),
        }
        let after: HashSet<u64> = ahead.ready().0.iter().map(|p| ino(p)).collect();
        // The thread may have made one more meanwhile; none may be lost.
        assert!(before.is_subset(&after), "{before:?} {after:?}");
        for dir in ahead.ready().0 {
            for f in crate::ahead::FOLDER_FILES {
                assert_eq!(fs::read(dir.join(f)).unwrap(), b"", "{dir:?}/{f} emptied");
            }
        }
        assert_eq!(
            fs::read(d.path().join("runs/taken").join(INPUTS)).unwrap(),
            b"[1,2]"
        );
    }

    #[test]
    fn a_dead_hosts_spares_prepared_folders_and_trash_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let id = {
            let store = RunStore::open(d.path(), d.path().join("runs"), false, 2).unwrap();
            claim_and_finish(&store, "one");
            let host = store.host.get().unwrap();
            let ahead = host.ahead.clone().unwrap();
            wait_for("prepared folders", || ahead.ready().0.len() == 2);
            assert!(!entries(&d.path().join("hosts"), &host.id).is_empty());
            host.id.clone()
        };
        // A Run this host was deleting when it died, and one another host is.
        let pid = id.split('-').next().unwrap();
        let ours = d.path().join(format!("runs/.trash-a-b-run-{pid}-7"));
        let theirs = d.path().join("runs/.trash-a-b-run-1-7");
        for t in [&ours, &theirs] {
            fs::create_dir_all(t).unwrap();
            fs::write(t.join(STDOUT), b"x").unwrap();
        }
        // The store is dropped, its lock with it: the host is dead.
        RunStore::open(d.path(), d.path().join("runs"), false, 0).unwrap();
        assert!(entries(&d.path().join("hosts"), &id).is_empty());
        assert!(!ours.exists(), "the dead host's trash is removed");
        assert!(theirs.exists(), "another host's is not");
        assert_eq!(
            load_config(&d.path().join("runs/one")).unwrap().status,
            RunStatus::Completed
        );
    }
}
