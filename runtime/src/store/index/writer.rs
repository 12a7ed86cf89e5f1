//! The index's writer: one thread per process that owns the write
//! connection. Callers hand it rows and go on; it gathers what arrives for
//! up to [`WINDOW`] (less when someone waits on it: a search, a cache
//! lookup, a removal) and commits it in one transaction, writing a Run
//! once when its start and end are both in the batch. A commit writes
//! every B-tree page it touched to the WAL, so one per Run would cost more
//! than the Run; one per window costs a few microseconds a Run. Then it
//! settles the journal lines of the rows it committed, and stores how far
//! into each host's journal every line is indexed.

use super::{Checkpoint, Mark, Row};
use crate::config::RunConfig;
use rusqlite::{Connection, Transaction, params};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};

pub(super) enum Op {
    /// Index a Run's record, with its journal line if it has one. Its row
    /// is derived here, on the writer's thread, not on the call's.
    Put(Box<RunConfig>, Option<Mark>),
    /// Forget Runs (name, start) that are gone.
    Forget(Vec<(String, i64)>),
    /// Someone waits: commit now.
    Flush,
    Stop,
}

/// How many operations a batch takes at most.
const BATCH: usize = 4096;
/// How long a batch gathers operations before it is committed, unless
/// someone waits on it.
pub(super) const WINDOW: std::time::Duration = std::time::Duration::from_millis(10);

pub(super) struct Writer {
    tx: Mutex<Sender<(u64, Op)>>,
    shared: Arc<Shared>,
    /// The writer thread, to wake when someone waits.
    waker: std::thread::Thread,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What callers and the thread share: operations sent and committed.
struct Shared {
    sent: Mutex<u64>,
    committed: Mutex<u64>,
    done: Condvar,
    /// Someone waits on the batch being gathered.
    flush: std::sync::atomic::AtomicBool,
}

impl Writer {
    pub fn start(conn: Connection, runs: std::path::PathBuf) -> Writer {
        let (tx, rx) = channel();
        let shared = Arc::new(Shared {
            sent: Mutex::new(0),
            committed: Mutex::new(0),
            done: Condvar::new(),
            flush: std::sync::atomic::AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rh-index".into())
            .spawn(move || run(conn, rx, &s, &runs))
            .expect("spawn the index writer");
        Writer {
            tx: Mutex::new(tx),
            shared,
            waker: thread.thread().clone(),
            thread: Mutex::new(Some(thread)),
        }
    }

    pub fn send(&self, op: Op) {
        let mut sent = self.shared.sent.lock().expect("index sent poisoned");
        *sent += 1;
        let seq = *sent;
        // Sent under the counter's lock, so sequence numbers arrive in order.
        let _ = self
            .tx
            .lock()
            .expect("index sender poisoned")
            .send((seq, op));
    }

    /// Wait until every operation sent before now is committed (or given
    /// up on: the writer logs what it could not write).
    pub fn sync(&self) {
        let sent = *self.shared.sent.lock().expect("index sent poisoned");
        if *self
            .shared
            .committed
            .lock()
            .expect("index committed poisoned")
            >= sent
        {
            return;
        }
        // Someone waits: the batch is committed now, not at its window's end.
        self.send(Op::Flush);
        self.shared
            .flush
            .store(true, std::sync::atomic::Ordering::Release);
        self.waker.unpark();
        let target = *self.shared.sent.lock().expect("index sent poisoned");
        let mut committed = self
            .shared
            .committed
            .lock()
            .expect("index committed poisoned");
        while *committed < target {
            let gone = match &*self.thread.lock().expect("index thread poisoned") {
                None => true,
                Some(t) => t.is_finished(),
            };
            if gone {
                return;
            }
            let (c, _) = self
                .shared
                .done
                .wait_timeout(committed, std::time::Duration::from_millis(100))
                .expect("index committed poisoned");
            committed = c;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.send(Op::Stop);
        self.shared
            .flush
            .store(true, std::sync::atomic::Ordering::Release);
        self.waker.unpark();
        if let Some(t) = self.thread.lock().expect("index thread poisoned").take() {
            let _ = t.join();
        }
    }
}

fn run(mut conn: Connection, rx: Receiver<(u64, Op)>, shared: &Shared, runs: &std::path::Path) {
    let mut checkpoints: HashMap<String, Checkpoint> = HashMap::new();
    loop {
        let Ok(first) = rx.recv() else { return };
        // Gather for a window, asleep: a send does not wake this thread
        // (only a wait on it does), so a window costs one wake-up.
        if !matches!(first.1, Op::Flush | Op::Stop) {
            let deadline = std::time::Instant::now() + WINDOW;
            loop {
                if shared
                    .flush
                    .swap(false, std::sync::atomic::Ordering::AcqRel)
                {
                    break;
                }
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::park_timeout(left);
            }
        }
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let last = batch.last().map_or(0, |(seq, _)| *seq);
        let stop = batch.iter().any(|(_, op)| matches!(op, Op::Stop));
        let ops: Vec<Op> = batch.into_iter().map(|(_, op)| op).collect();
        let marks = commit(&mut conn, ops, &mut checkpoints, runs);
        // The lines of rows now committed are settled; the next batch
        // stores how far that moved each host's checkpoint.
        for m in marks {
            if let Some(cp) = m.settle() {
                checkpoints.insert(cp.host.clone(), cp);
            }
        }
        *shared.committed.lock().expect("index committed poisoned") = last;
        shared.done.notify_all();
        if stop {
            let _ = write_checkpoints(&conn, &checkpoints);
            return;
        }
    }
}

/// Commit one batch; the marks of what it wrote (or could not: a row that
/// fails to write is logged, and its Run is re-indexed by the next repair
/// or `reindex`).
fn commit(
    conn: &mut Connection,
    ops: Vec<Op>,
    checkpoints: &mut HashMap<String, Checkpoint>,
    runs: &std::path::Path,
) -> Vec<Mark> {
    // A Run put twice in one batch is written once, as it was last.
    let mut last_put: HashMap<&str, usize> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Op::Put(config, _) = op {
            last_put.insert(config.name.as_str(), i);
        }
    }
    // The rows to write: a Run's last put of the batch, unless it ended and
    // was removed since (a delete, a gc), which is not written back.
    let rows: Vec<Option<Row>> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| match op {
            Op::Put(config, _) if last_put.get(config.name.as_str()) == Some(&i) => {
                let ended_and_gone = config.end_time.is_some()
                    && std::fs::symlink_metadata(runs.join(&config.name)).is_err();
                (!ended_and_gone).then(|| Row::of(config))
            }
            _ => None,
        })
        .collect();
    drop(last_put);
    let marks = |ops: Vec<Op>| -> Vec<Mark> {
        ops.into_iter()
            .filter_map(|op| match op {
                Op::Put(_, mark) => mark,
                _ => None,
            })
            .collect()
    };
    if !ops
        .iter()
        .any(|op| matches!(op, Op::Put(..) | Op::Forget(_)))
        && checkpoints.is_empty()
    {
        return marks(ops);
    }
    if ops
        .iter()
        .any(|op| matches!(op, Op::Put(config, _) if config.end_time.is_some()))
    {
        crate::faults::crash_point("index-commit");
    }
    let attempt = |conn: &mut Connection| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        write_checkpoints(&tx, checkpoints)?;
        for (op, row) in ops.iter().zip(&rows) {
            match (op, row) {
                (Op::Put(..), Some(row)) => {
                    put(&tx, row)?;
                }
                (Op::Forget(names), _) => forget(&tx, names)?,
                _ => {}
            }
        }
        tx.commit()
    };
    let result = attempt(conn).or_else(|e| {
        tracing::warn!("writing the index of Runs: {e}; trying again");
        std::thread::sleep(std::time::Duration::from_millis(100));
        attempt(conn)
    });
    match result {
        Ok(()) => {
            checkpoints.clear();
            marks(ops)
        }
        Err(e) => {
            // Its journal lines stay unsettled: the checkpoint stays before
            // them, and the next recovery of this host re-indexes them.
            tracing::error!("writing the index of Runs: {e}; `rh-wasm reindex` rebuilds it");
            Vec::new()
        }
    }
}

fn write_checkpoints(
    c: &Connection,
    checkpoints: &HashMap<String, Checkpoint>,
) -> rusqlite::Result<()> {
    let mut st = c.prepare_cached(
        "INSERT INTO checkpoints(host, epoch, offset) VALUES (?1, ?2, ?3) \
         ON CONFLICT(host) DO UPDATE SET epoch = excluded.epoch, offset = excluded.offset",
    )?;
    for cp in checkpoints.values() {
        st.execute(params![cp.host, cp.epoch as i64, cp.offset as i64])?;
    }
    Ok(())
}

/// Write a Run's row (its tags and edges too), unless the index already
/// holds a later Run of that name. Whether it was written.
pub(super) fn put(tx: &Transaction<'_>, r: &Row) -> rusqlite::Result<bool> {
    let id: Option<i64> = {
        let mut st = tx.prepare_cached(
            "INSERT INTO runs(name, status, run_type, start_us, end_us, function, fn_full, digest, \
             cache_key, creator, parent, error_kind, what) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
             ON CONFLICT(name) DO UPDATE SET status = excluded.status, run_type = excluded.run_type, \
             start_us = excluded.start_us, end_us = excluded.end_us, function = excluded.function, \
             fn_full = excluded.fn_full, digest = excluded.digest, \
             cache_key = excluded.cache_key, creator = excluded.creator, parent = excluded.parent, \
             error_kind = excluded.error_kind, what = excluded.what \
             WHERE excluded.start_us >= runs.start_us \
             RETURNING id",
        )?;
        let mut rows = st.query(params![
            r.name,
            r.status,
            r.run_type,
            r.start_us,
            r.end_us,
            r.function,
            r.fn_full,
            r.digest,
            r.cache_key,
            r.creator,
            r.parent,
            r.error_kind,
            r.what,
        ])?;
        match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        }
    };
    let Some(id) = id else { return Ok(false) };
    tx.prepare_cached("DELETE FROM tags WHERE run = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM edges WHERE run = ?1")?
        .execute([id])?;
    if !r.tags.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO tags(key, value, start_us, run) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (k, v) in &r.tags {
            st.execute(params![k, v, r.start_us, id])?;
        }
    }
    if !r.upstream.is_empty() || !r.downstream.is_empty() {
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO edges(run, dir, pos, name, digest) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (dir, list) in [(0, &r.upstream), (1, &r.downstream)] {
            for (pos, a) in list.iter().enumerate() {
                st.execute(params![id, dir, pos as i64, a.name, a.digest])?;
            }
        }
    }
    Ok(true)
}

/// Remove the rows of Runs (name, start) that are gone, leaving a later
/// Run of the same name (`i64::MAX`: whatever Run has the name).
pub(super) fn forget(tx: &Transaction<'_>, names: &[(String, i64)]) -> rusqlite::Result<()> {
    let mut st =
        tx.prepare_cached("DELETE FROM runs WHERE name = ?1 AND start_us <= ?2 RETURNING id")?;
    let mut tags = tx.prepare_cached("DELETE FROM tags WHERE run = ?1")?;
    let mut edges = tx.prepare_cached("DELETE FROM edges WHERE run = ?1")?;
    for (name, start) in names {
        let ids: Vec<i64> = st
            .query_map(params![name, start], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in ids {
            tags.execute([id])?;
            edges.execute([id])?;
        }
    }
    Ok(())
}
