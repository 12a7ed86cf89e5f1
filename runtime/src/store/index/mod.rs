//! The index of Runs: one SQLite database per cluster root (`index.sqlite`,
//! WAL), shared by every process that opens the root (the CLI, detached
//! workers, a daemon). It holds each Run's record fields, its tags, the
//! artifact versions it loaded and saved (the lineage edges) and, for a
//! completed function Run, its result-cache key. Search, lineage and the
//! result cache answer from it, so their cost follows the answer's size,
//! not the number of Runs held.
//!
//! The Run folders stay the source of truth; the index is derived from
//! them:
//!
//! - Rows are written off the call's path by one writer thread per process
//!   (`writer`), which batches whatever arrived while it committed the last
//!   batch into one transaction, folding a Run's start and end into one row
//!   write when both are in a batch.
//! - A crash between a folder's write and its row is repaired when the root
//!   is next opened: each host journals the Runs it starts and ends (see
//!   `runs::hosts`), the writer stores how far into its journal every line
//!   is indexed (a checkpoint), and recovery reconciles, from their
//!   folders, the Runs a dead host's journal names after its checkpoint.
//! - A missing, corrupt or half-built index file is rebuilt from the
//!   folders, with a log line; `reindex` does the same on request.

use crate::config::RunConfig;
use crate::{Error, Result};
use rusqlite::{Connection, OpenFlags, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

mod row;
pub(crate) mod search;
mod writer;

pub(crate) use row::{Row, micros};
pub use search::{RunPage, RunQuery};

/// The index file's name under the root.
pub(crate) const FILE: &str = "index.sqlite";
/// The layout this code reads and writes; another is rebuilt.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    run_type TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER,
    function TEXT,
    fn_full TEXT,
    digest TEXT,
    cache_key INTEGER,
    creator TEXT,
    parent TEXT,
    error_kind TEXT,
    what TEXT
);
CREATE INDEX IF NOT EXISTS runs_start ON runs(start_us);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, start_us);
CREATE INDEX IF NOT EXISTS runs_function ON runs(function, start_us);
CREATE INDEX IF NOT EXISTS runs_function_status ON runs(function, status, start_us);
CREATE INDEX IF NOT EXISTS runs_fn_full ON runs(fn_full, start_us) WHERE fn_full IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_creator ON runs(creator, start_us) WHERE creator IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent, start_us) WHERE parent IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_cache ON runs(cache_key, end_us) WHERE cache_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS tags(
    key TEXT NOT NULL, value TEXT NOT NULL, start_us INTEGER NOT NULL, run INTEGER NOT NULL,
    PRIMARY KEY(key, value, start_us, run)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_run ON tags(run);
CREATE TABLE IF NOT EXISTS edges(
    run INTEGER NOT NULL, dir INTEGER NOT NULL, pos INTEGER NOT NULL,
    name TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY(run, dir, pos)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_artifact ON edges(name, digest, dir);
CREATE TABLE IF NOT EXISTS checkpoints(
    host TEXT PRIMARY KEY, epoch INTEGER NOT NULL, offset INTEGER NOT NULL
) WITHOUT ROWID;
";

/// A line of a host's journal whose Run's row is not yet committed.
pub(crate) struct Mark {
    pub epoch: u64,
    pub offset: u64,
    pub journal: Arc<dyn Pending>,
}

impl Mark {
    /// The line's Run is indexed (or needs no row): its checkpoint moves on.
    pub fn settle(&self) -> Option<Checkpoint> {
        self.journal.settle(self.epoch, self.offset)
    }
}

/// A journal that knows which of its lines are indexed.
pub(crate) trait Pending: Send + Sync {
    /// The line at `offset` of generation `epoch` is indexed; the point
    /// before which every line of the journal is.
    fn settle(&self, epoch: u64, offset: u64) -> Option<Checkpoint>;
}

/// How far into a host's journal every line is indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub host: String,
    pub epoch: u64,
    pub offset: u64,
}

/// The index of one root, open in this process.
pub(crate) struct Index {
    path: PathBuf,
    writer: writer::Writer,
    readers: Mutex<Vec<Connection>>,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::Index {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Open a connection with the pragmas every user of the index wants.
pub(crate) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // A rebuild holds the write lock while it inserts every Run; writers
    // wait for it rather than fail.
    c.busy_timeout(std::time::Duration::from_secs(300))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.set_prepared_statement_cache_capacity(64);
    Ok(c)
}

impl Index {
    /// Open the index of `root`, whose Runs live in `runs_dir`, creating
    /// it, or rebuilding it from the folders when it is missing, corrupt,
    /// half built or of another layout.
    pub fn open(root: &Path, runs_dir: &Path) -> Result<Arc<Index>> {
        let path = root.join(FILE);
        let checked = Self::check(&path);
        if let Err(why) = checked {
            // One process rebuilds; the others wait for it, then find the
            // index whole.
            let lock_path = root.join("index.lock");
            let _lock = crate::store::files::lock(&lock_path)?;
            if let Err(why) = Self::check(&path).map_err(|_| why) {
                let n = Self::rebuild(&path, runs_dir)?;
                // A new root has no index and nothing to say about it.
                if !why.is_empty() || n > 0 {
                    let why = if why.is_empty() {
                        "missing".into()
                    } else {
                        why
                    };
                    tracing::warn!(
                        "the index of Runs {} is {why}: rebuilt it from the Run folders \
                         ({n} Runs)",
                        path.display()
                    );
                }
            }
        }
        let writer =
            writer::Writer::start(connect(&path).map_err(sql(&path))?, runs_dir.to_path_buf());
        Ok(Arc::new(Index {
            path,
            writer,
            readers: Mutex::new(Vec::new()),
        }))
    }

    /// Whether the file at `path` is a whole index of this layout; why
    /// not (empty when there is simply no file yet).
    fn check(path: &Path) -> std::result::Result<(), String> {
        if !path.exists() {
            return Err(String::new());
        }
        let unreadable = |e: rusqlite::Error| format!("unreadable ({e})");
        let c = connect(path).map_err(unreadable)?;
        let read = |key: &str| -> std::result::Result<Option<String>, String> {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(unreadable(e)),
                })
        };
        match (read("schema")?, read("complete")?) {
            (Some(v), Some(_)) if v == SCHEMA_VERSION.to_string() => Ok(()),
            (Some(v), _) if v != SCHEMA_VERSION.to_string() => Err(format!(
                "of layout {v} (this program reads {SCHEMA_VERSION})"
            )),
            _ => Err("half built".into()),
        }
    }

    /// Build the index at `path` afresh from the Run folders in `runs_dir`:
    /// a new file, filled, then renamed over the old one, so readers see
    /// the old index or the new one.
    fn rebuild(path: &Path, runs_dir: &Path) -> Result<usize> {
        let tmp = path.with_extension(format!("rebuild-{}", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
        }
        let mut c = connect(&tmp).map_err(sql(&tmp))?;
        c.execute_batch(SCHEMA).map_err(sql(&tmp))?;
        let configs = read_folders(runs_dir)?;
        let n = configs.len();
        let tx = c.transaction().map_err(sql(&tmp))?;
        for config in &configs {
            writer::put(&tx, &Row::of(config)).map_err(sql(&tmp))?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?1), ('complete', '1')",
            [SCHEMA_VERSION.to_string()],
        )
        .map_err(sql(&tmp))?;
        tx.commit().map_err(sql(&tmp))?;
        c.pragma_update(None, "journal_mode", "DELETE")
            .map_err(sql(&tmp))?;
        drop(c);
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))?;
        Ok(n)
    }

    /// Rebuild this index from the Run folders; how many Runs it holds.
    pub fn reindex(&self, root: &Path, runs_dir: &Path) -> Result<usize> {
        self.writer.sync();
        let _lock = crate::store::files::lock(&root.join("index.lock"))?;
        // Under a write transaction, so no row lands in between.
        let mut c = connect(&self.path).map_err(sql(&self.path))?;
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql(&self.path))?;
        let configs = read_folders(runs_dir)?;
        tx.execute_batch("DELETE FROM runs; DELETE FROM tags; DELETE FROM edges;")
            .map_err(sql(&self.path))?;
        for config in &configs {
            writer::put(&tx, &Row::of(config)).map_err(sql(&self.path))?;
        }
        tx.commit().map_err(sql(&self.path))?;
        Ok(configs.len())
    }

    /// Index (or re-index) a Run's record; `mark` is its journal line.
    /// Without one, nothing would repair a lost row, so the row is
    /// committed before this returns.
    pub fn put(&self, config: &RunConfig, mark: Option<Mark>) {
        let unmarked = mark.is_none();
        self.writer
            .send(writer::Op::Put(Box::new(config.clone()), mark));
        if unmarked {
            self.writer.sync();
        }
    }

    /// Put a Run's row without waiting for it to be committed (within the
    /// writer's window): a copy of a Run another host executes, whose
    /// folder is written already.
    pub fn put_lazy(&self, config: &RunConfig) {
        self.writer
            .send(writer::Op::Put(Box::new(config.clone()), None));
    }

    /// Forget the Run `name` that started at `start_us` (a later Run of
    /// the name stays), committed before this returns.
    pub fn forget(&self, names: Vec<(String, i64)>) {
        self.writer.send(writer::Op::Forget(names));
        self.writer.sync();
    }

    /// [`Index::forget`] within the writer's window (the rows sent after
    /// it, in order, are committed after it).
    pub fn forget_lazy(&self, names: Vec<(String, i64)>) {
        self.writer.send(writer::Op::Forget(names));
    }

    /// Wait until every row sent before now is committed.
    pub fn sync(&self) {
        self.writer.sync();
    }

    /// Make each named Run's row match its folder (or go, without one),
    /// now: the repair of rows a dead process may not have written.
    pub fn reconcile(
        &self,
        names: &[String],
        load: &dyn Fn(&str) -> Result<RunConfig>,
    ) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut c = connect(&self.path).map_err(sql(&self.path))?;
        // The write lock first, then the folders: no row committed between
        // a folder's read and its write is overwritten with older news.
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql(&self.path))?;
        for name in names {
            match load(name) {
                Ok(config) => writer::put(&tx, &Row::of(&config)).map(|_| ()),
                Err(Error::NotFound { .. } | Error::InvalidName { .. }) => {
                    writer::forget(&tx, &[(name.clone(), i64::MAX)])
                }
                Err(e) => {
                    tracing::warn!("re-indexing run {name}: {e}");
                    Ok(())
                }
            }
            .map_err(sql(&self.path))?;
        }
        tx.commit().map_err(sql(&self.path))
    }

    /// How far into host `host`'s journal every line is indexed.
    pub fn checkpoint(&self, host: &str) -> Option<(u64, u64)> {
        self.read(|c| {
            c.query_row(
                "SELECT epoch, offset FROM checkpoints WHERE host = ?1",
                [host],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
        })
        .ok()
    }

    /// Drop the checkpoint of a host whose journal is gone.
    pub fn forget_host(&self, host: &str) {
        let _ = self.read(|c| c.execute("DELETE FROM checkpoints WHERE host = ?1", [host]));
    }

    /// Run `f` on a connection of this process's pool.
    pub fn read<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R> {
        let pooled = self.readers.lock().expect("index readers poisoned").pop();
        let c = match pooled {
            Some(c) => c,
            None => connect(&self.path).map_err(sql(&self.path))?,
        };
        let out = f(&c).map_err(sql(&self.path));
        let mut pool = self.readers.lock().expect("index readers poisoned");
        if pool.len() < 8 {
            pool.push(c);
        }
        out
    }

    /// Completed function Runs that answered with cache key `key` and
    /// ended after `after_us`, newest first (at most 100).
    pub fn cache_candidates(&self, key: &str, after_us: i64) -> Vec<String> {
        let key = row::short_key(key);
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT name FROM runs WHERE cache_key = ?1 AND end_us > ?2 \
                 ORDER BY end_us DESC LIMIT 100",
            )?;
            let rows = st.query_map(params![key, after_us], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
        .unwrap_or_else(|e| {
            tracing::warn!("result cache lookup: {e}");
            Vec::new()
        })
    }

    /// Forget the result-cache entries of Runs that ended by `until_us`
    /// (of deployed name `function`, or all): how many.
    pub fn clear_cache(&self, function: Option<&str>, until_us: i64) -> Result<usize> {
        self.sync();
        self.read(|c| match function {
            Some(f) => c.execute(
                "UPDATE runs SET cache_key = NULL WHERE cache_key IS NOT NULL \
                 AND function = ?1 AND end_us <= ?2",
                params![f, until_us],
            ),
            None => c.execute(
                "UPDATE runs SET cache_key = NULL WHERE cache_key IS NOT NULL AND end_us <= ?1",
                params![until_us],
            ),
        })
    }
}

/// Every Run folder's record under `runs_dir`, oldest first, read in
/// parallel; a folder that does not read is skipped with a log line.
pub(crate) fn read_folders(runs_dir: &Path) -> Result<Vec<RunConfig>> {
    use rayon::prelude::*;
    let entries = match std::fs::read_dir(runs_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", runs_dir, e)),
    };
    let dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    let mut configs: Vec<RunConfig> = dirs
        .par_iter()
        .filter_map(|d| match crate::runs::load_config(d) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("skipping run folder {}: {e}", d.display());
                None
            }
        })
        .collect();
    configs.sort_by(|a, b| a.start_time.cmp(&b.start_time).then(a.name.cmp(&b.name)));
    Ok(configs)
}

#[cfg(test)]
mod tests;
