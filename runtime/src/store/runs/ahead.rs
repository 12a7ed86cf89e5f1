//! Run folders and spare files made ahead of need by a background thread,
//! so that a call's path allocates no inode.
//!
//! Creating a folder and its files is most of what recording a Run costs
//! (BENCHMARKS.md): on this project's test disks, six inode allocations cost
//! several times the bare Wasmtime call. A long-lived host (a daemon, an
//! embedding service) has idle moments and a second core; this thread uses
//! them to keep a few empty Run folders (`config.json`, `inputs.json`,
//! `stdout`, `stderr`) and spare files ready under `hosts/<host>.ahead/`.
//! Claiming a Run then fills one in and renames it into place, exactly as a
//! folder built on the spot would be; a result is written to a spare file and
//! renamed in. When calls outrun the thread, the store makes what it needs on
//! the spot, as it would without it.
//!
//! Everything here is private to its host: the folders live beside the
//! host's lock, and a dead host's are removed with the rest of its files
//! when the store recovers.

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

/// The empty files of a prepared Run folder.
pub(crate) const FOLDER_FILES: [&str; 4] = [
    crate::config::CONFIG,
    crate::config::INPUTS,
    crate::config::STDOUT,
    crate::config::STDERR,
];

/// What spare files are made with: one byte, so that the filesystem gives
/// each its first block.
const SPARE_BYTES: usize = 1;

/// A Run folder made ahead, with its files open: claiming it writes and
/// hands over these, opening nothing.
pub(crate) struct Prepared {
    pub dir: PathBuf,
    /// `config.json`, `inputs.json`, `stdout` and `stderr`, in that order.
    pub files: [File; 4],
}

pub(crate) struct Ahead {
    dir: PathBuf,
    /// How many of each to keep ready.
    target: usize,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    folders: Vec<Prepared>,
    files: Vec<PathBuf>,
    next: u64,
}

impl Ahead {
    /// Start keeping `target` folders and files ready in `dir`.
    pub fn start(dir: PathBuf, target: usize) -> std::io::Result<Arc<Ahead>> {
        fs::create_dir_all(&dir)?;
        crate::store::files::spread_subfolders(&dir);
        let ahead = Arc::new(Ahead {
            dir,
            target,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let weak = Arc::downgrade(&ahead);
        std::thread::Builder::new()
            .name("rh-folders-ahead".into())
            .spawn(move || refill(weak))?;
        Ok(ahead)
    }

    /// A prepared, empty Run folder, if one is ready.
    pub fn folder(&self) -> Option<Prepared> {
        let mut st = self.state.lock().expect("prepared folders poisoned");
        let f = st.folders.pop();
        self.low(&st);
        f
    }

    /// Wake the thread once half of what it keeps is taken: it then makes
    /// several at a time, rather than being woken for every one.
    fn low(&self, st: &State) {
        let half = self.target.div_ceil(2);
        if st.folders.len() < half || st.files.len() < half {
            self.wake.notify_one();
        }
    }

    /// A folder taken but not used (its claim lost a race): ready again once
    /// its files are emptied, which costs no inode.
    pub fn give_back_folder(&self, p: Prepared) {
        if p.files.iter().any(|f| f.set_len(0).is_err()) {
            return;
        }
        self.state
            .lock()
            .expect("prepared folders poisoned")
            .folders
            .push(p);
    }

    /// A new, empty spare file, if one is ready.
    pub fn file(&self) -> Option<PathBuf> {
        let mut st = self.state.lock().expect("prepared folders poisoned");
        let f = st.files.pop();
        self.low(&st);
        f
    }

    /// Make one missing folder or file; false when nothing is missing.
    fn make_one(&self) -> std::io::Result<bool> {
        let (want_folder, want_file, n) = {
            let mut st = self.state.lock().expect("prepared folders poisoned");
            st.next += 1;
            (
                st.folders.len() < self.target,
                st.files.len() < self.target,
                st.next,
            )
        };
        if want_folder {
            // Made in place: nothing but this thread looks in the folder
            // until it is offered, and a dead host's are all removed.
            let dir = self.dir.join(format!("d{n}"));
            fs::create_dir(&dir)?;
            let make = |f: &str| {
                File::options()
                    .write(true)
                    .create_new(true)
                    .open(dir.join(f))
            };
            let files = [
                make(FOLDER_FILES[0])?,
                make(FOLDER_FILES[1])?,
                make(FOLDER_FILES[2])?,
                make(FOLDER_FILES[3])?,
            ];
            self.push(|st| st.folders.push(Prepared { dir, files }));
        }
        if want_file {
            // A block already allocated: a record or result written over it
            // needs no new space, so a Run can still be ended on a full disk.
            let path = self.dir.join(format!("f{n}"));
            fs::write(&path, [b' '; SPARE_BYTES])?;
            self.push(|st| st.files.push(path));
        }
        Ok(want_folder || want_file)
    }

    /// The folders and files ready now.
    #[cfg(test)]
    pub fn ready(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let st = self.state.lock().expect("prepared folders poisoned");
        let folders = st.folders.iter().map(|p| p.dir.clone()).collect();
        (folders, st.files.clone())
    }

    fn push(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().expect("prepared folders poisoned"));
    }

    fn full(&self, st: &State) -> bool {
        st.folders.len() >= self.target && st.files.len() >= self.target
    }
}

/// The thread: top the store up whenever it runs low; end with the store.
fn refill(weak: Weak<Ahead>) {
    loop {
        let Some(ahead) = weak.upgrade() else { return };
        match ahead.make_one() {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("preparing Run folders in {}: {e}", ahead.dir.display());
                // A full disk, say: try again later, calls make their own.
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        }
        let st = ahead.state.lock().expect("prepared folders poisoned");
        // Wake when something is taken; look again now and then so the
        // thread ends soon after its store is dropped.
        let _ = ahead
            .wake
            .wait_timeout_while(st, Duration::from_millis(500), |st| ahead.full(st));
    }
}
