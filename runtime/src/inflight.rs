//! Runs in flight: the Runs this process is executing, each with its
//! cancel signal, its "done" channel and its output progress, so waiting
//! on, cancelling or following them (see `handle`) costs nothing. Cancel
//! requests from other processes arrive as files under `cancel/`, which a
//! thread started with the first Run watches.

use crate::execute::function::Cancel;
use crate::execute::host::OutputBudget;
use crate::run::Run;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How a Run in flight stands: `None` while it runs; once it has ended,
/// its recorded Run (when the record step could make one), so that those
/// waiting on it read nothing back from disk.
pub(crate) type Done = watch::Receiver<Option<Option<Run>>>;

struct Active {
    cancel: Arc<Cancel>,
    done: Done,
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
    done: watch::Sender<Option<Option<Run>>>,
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
        let (done, rx) = watch::channel(None);
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

    /// Run `name` has ended and is recorded: wake whoever waits on it,
    /// handing them `run()` (made only when someone waits).
    pub fn end(&self, name: &str, live: Live, run: impl FnOnce() -> Run) {
        self.table().remove(name);
        // The table's receiver is gone: any left is a waiter or follower.
        let waited = live.done.receiver_count() > 0;
        let _ = live.done.send(Some(waited.then(run)));
    }

    /// Whether Run `name` executes here.
    pub fn contains(&self, name: &str) -> bool {
        self.table().contains_key(name)
    }

    /// The cancel signal of Run `name`, when it executes here.
    pub fn cancel_signal(&self, name: &str) -> Option<Arc<Cancel>> {
        self.table().get(name).map(|a| a.cancel.clone())
    }

    /// The "done" channel of Run `name`, when it executes here.
    pub fn done(&self, name: &str) -> Option<Done> {
        self.table().get(name).map(|a| a.done.clone())
    }

    /// The output progress and "done" channels of Run `name`, when it
    /// executes here.
    pub fn progress(&self, name: &str) -> Option<(watch::Receiver<u64>, Done)> {
        self.table()
            .get(name)
            .map(|a| (a.progress.clone(), a.done.clone()))
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
                    let _ = rx.wait_for(Option::is_some).await;
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
    // The folder is read again when it has changed (a request added or
    // removed), while it holds requests, and every tenth look (a request
    // added within the same clock tick as the last read leaves the stamp
    // as it was): one `statx` a look otherwise.
    let mut seen: Option<crate::store::files::Stamp> = None;
    let mut pending = false;
    let mut looks: u32 = 0;
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let Some(table) = weak.upgrade() else { return };
        if table.lock().map(|a| a.is_empty()).unwrap_or(true) {
            continue;
        }
        let now = crate::store::files::stamp(dir);
        looks = looks.wrapping_add(1);
        if now.is_some() && now == seen && !pending && !looks.is_multiple_of(10) {
            continue;
        }
        seen = now;
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        pending = false;
        for e in entries.flatten() {
            pending = true;
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
