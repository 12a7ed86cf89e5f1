//! Runs in flight: the Runs this process is executing, each with its
//! cancel signal, its "done" channel and its output progress, so waiting
//! on, cancelling or following them costs nothing.
//!
//! Runs executed by another process sharing the root (a CLI worker, another
//! CLI call) are waited on by reading their `config.json`, cancelled through
//! a request file under `cancel/` that their process watches (a thread
//! started with the first Run), and followed by re-reading their files.

use crate::execute::function::Cancel;
use crate::execute::host::{OutputBudget, OutputKind};
use crate::runtime::Parts;
use crate::{Error, Result, Run};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::watch;

struct Active {
    cancel: Arc<Cancel>,
    done: watch::Receiver<bool>,
    progress: watch::Receiver<u64>,
}

type Table = Mutex<HashMap<String, Active>>;

/// The Runs this process executes; see the module docs.
pub(crate) struct InFlight {
    active: Arc<Table>,
    cancels: PathBuf,
    watcher: OnceLock<()>,
}

/// What a Run being executed holds of its entry: its cancel signal, its
/// output budget (which wakes followers) and the sender of "done".
pub(crate) struct Live {
    pub cancel: Arc<Cancel>,
    pub budget: Arc<OutputBudget>,
    done: watch::Sender<bool>,
}

impl InFlight {
    pub fn new(cancels: PathBuf) -> InFlight {
        InFlight {
            active: Arc::default(),
            cancels,
            watcher: OnceLock::new(),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        self.active.lock().expect("runs in flight poisoned")
    }

    /// Register Run `name` as executing here, its output capped at `cap`.
    pub fn register(&self, name: &str, cap: u64) -> Live {
        let (done, rx) = watch::channel(false);
        let cancel = Arc::new(Cancel::default());
        let (budget, progress) = OutputBudget::new(cap);
        self.table().insert(
            name.to_string(),
            Active {
                cancel: cancel.clone(),
                done: rx,
                progress,
            },
        );
        self.ensure_cancel_watcher();
        Live {
            cancel,
            budget,
            done,
        }
    }

    /// Run `name` has ended and is recorded: wake whoever waits on it.
    pub fn end(&self, name: &str, live: Live) {
        self.table().remove(name);
        let _ = live.done.send(true);
    }

    /// The names of the Runs executing here, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.table().keys().cloned().collect();
        v.sort();
        v
    }

    /// Wait until every Run executing here has ended.
    pub async fn wait_all(&self) {
        loop {
            let next = self.table().values().next().map(|a| a.done.clone());
            match next {
                Some(mut rx) => {
                    let _ = rx.wait_for(|done| *done).await;
                    tokio::task::yield_now().await;
                }
                None => return,
            }
        }
    }

    /// Watch `cancel/` for requests from other processes while this
    /// process runs anything.
    fn ensure_cancel_watcher(&self) {
        self.watcher.get_or_init(|| {
            let weak: Weak<Table> = Arc::downgrade(&self.active);
            let dir = self.cancels.clone();
            let spawned = std::thread::Builder::new()
                .name("rh-cancel-watch".into())
                .spawn(move || watch_cancels(&weak, &dir));
            if let Err(e) = spawned {
                tracing::warn!("cannot watch for cancel requests: {e}");
            }
        });
    }
}

fn watch_cancels(weak: &Weak<Table>, dir: &std::path::Path) {
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let Some(table) = weak.upgrade() else { return };
        if table.lock().map(|a| a.is_empty()).unwrap_or(true) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let n = e.file_name();
            let Some(name) = n.to_str() else { continue };
            let cancel = table
                .lock()
                .ok()
                .and_then(|a| a.get(name).map(|x| x.cancel.clone()));
            if let Some(c) = cancel {
                c.cancel();
            }
        }
    }
}

/// Wait until Run `name` ends.
pub(crate) async fn wait(parts: &Parts, name: &str) -> Result<Run> {
    let mut polls: u32 = 0;
    loop {
        let rx = parts.inflight.table().get(name).map(|a| a.done.clone());
        let here = rx.is_some();
        if let Some(mut rx) = rx {
            let _ = rx.wait_for(|done| *done).await;
        }
        let run = parts.run(name)?;
        if run.status().is_terminal() {
            return Ok(run);
        }
        polls += 1;
        if !here && polls.is_multiple_of(200) {
            // Another process runs it; if that process died, recover.
            parts.runs.recover()?;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Cancel Run `name` and wait until it has ended. A Run that has already
/// ended is returned as it is.
pub(crate) async fn cancel(parts: &Parts, name: &str) -> Result<Run> {
    let signal = parts.inflight.table().get(name).map(|a| a.cancel.clone());
    match signal {
        Some(c) => c.cancel(),
        None => {
            let run = parts.run(name)?;
            if run.status().is_terminal() {
                return Ok(run);
            }
            parts.runs.request_cancel(name)?;
        }
    }
    wait(parts, name).await
}

/// Follow one of Run `name`'s output streams from its start.
pub(crate) fn follow(parts: &Arc<Parts>, name: &str, kind: OutputKind) -> Result<LogFollower> {
    let run = parts.run(name)?;
    let path = run.file(match kind {
        OutputKind::Stdout => crate::runs::STDOUT,
        OutputKind::Stderr => crate::runs::STDERR,
    });
    let file = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
    let live = parts
        .inflight
        .table()
        .get(name)
        .map(|a| (a.progress.clone(), a.done.clone()));
    Ok(LogFollower {
        parts: parts.clone(),
        name: name.to_string(),
        file,
        pos: 0,
        live,
        ended: run.status().is_terminal(),
    })
}

/// Reads a Run's output as it is written; see [`crate::Runtime::follow`].
pub struct LogFollower {
    parts: Arc<Parts>,
    name: String,
    file: std::fs::File,
    pos: u64,
    live: Option<(watch::Receiver<u64>, watch::Receiver<bool>)>,
    ended: bool,
}

impl std::fmt::Debug for LogFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFollower")
            .field("run", &self.name)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl LogFollower {
    /// The next bytes written, or `None` when the Run has ended and
    /// everything has been read.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        use std::io::Read;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            // Whatever is in the file now comes first.
            let n = self
                .file
                .read(&mut buf)
                .map_err(|e| Error::io("read", self.parts.runs.dir(&self.name), e))?;
            if n > 0 {
                self.pos += n as u64;
                buf.truncate(n);
                return Ok(Some(buf));
            }
            if self.ended {
                return Ok(None);
            }
            match &mut self.live {
                Some((progress, done)) => {
                    tokio::select! {
                        r = progress.changed() => { if r.is_err() { self.ended = true; } }
                        r = done.wait_for(|d| *d) => { let _ = r; self.ended = true; }
                    }
                }
                None => {
                    // Executed by another process: look again shortly.
                    if self.parts.run(&self.name)?.status().is_terminal() {
                        self.ended = true;
                    } else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }
}
