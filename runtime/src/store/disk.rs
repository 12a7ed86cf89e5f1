//! Disk space: the reserve a host keeps free before it starts a Run, and the
//! watch that holds a command Run's `scratch/` folder to its limit.
//!
//! WASI gives the host no hook on a guest's file writes, so the scratch limit
//! is enforced by watching: a thread per command Run sums what the folder's
//! tree costs (see [`usage`]) every [`SCRATCH_INTERVAL`] and ends the Run
//! (`disk_limit`) once the sum is over the limit; the sum is taken once more
//! when each command ends, so a burst between two looks cannot escape. A Run
//! may overshoot by what it writes in one interval, plus one write call
//! (whose size the guest's memory limit bounds): the guest's file writes go
//! through the host's blocking pool, and the Run is dropped at the next one.
//!
//! The reserve is checked with one `statvfs` per filesystem, and a passing
//! answer is reused for [`RESERVE_TTL`], so the per-call path pays for it
//! only a few times a second; a refusal is never reused, so Runs start again
//! as soon as space is freed.

use crate::execute::function::Cancel;
use crate::{Error, Result};
use rustix::fs::{AtFlags, FileType, Mode};
use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a running command Run's scratch folder is measured.
pub(crate) const SCRATCH_INTERVAL: Duration = Duration::from_millis(10);

/// How long a passing free-space check is trusted.
const RESERVE_TTL: Duration = Duration::from_millis(100);

/// The default reserve: 1 GiB, but no more than 5% of the filesystem. The
/// gigabyte leaves room for the records of the Runs still running, the
/// daemon's own files and the system; the 5% keeps a small disk (a VM's,
/// a tmpfs) usable at all, where a flat gigabyte could be most of it.
fn default_reserve(fs_bytes: u64) -> u64 {
    (1u64 << 30).min(fs_bytes / 20)
}

/// Refuses new Runs while a filesystem holding the cluster's data has less
/// free space than the reserve.
pub(crate) struct SpaceCheck {
    /// One folder per filesystem: the Run folders', and the root's when it is
    /// another.
    dirs: Vec<PathBuf>,
    /// Bytes to keep free; `None`: [`default_reserve`].
    reserve: Option<u64>,
    /// Until when the last passing check holds.
    passed_until: Mutex<Option<Instant>>,
}

impl SpaceCheck {
    pub(crate) fn new(runs_dir: &Path, root: &Path, reserve: Option<u64>) -> SpaceCheck {
        let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
        let mut dirs = vec![runs_dir.to_path_buf()];
        if dev(root).is_none() || dev(root) != dev(runs_dir) {
            dirs.push(root.to_path_buf());
        }
        SpaceCheck {
            dirs,
            reserve,
            passed_until: Mutex::new(None),
        }
    }

    /// `Ok` when every filesystem has at least the reserve free.
    pub(crate) fn check(&self) -> Result<()> {
        if self.reserve == Some(0) {
            return Ok(());
        }
        let now = Instant::now();
        let mut passed = self.passed_until.lock().expect("space check poisoned");
        if passed.is_some_and(|until| now < until) {
            return Ok(());
        }
        for dir in &self.dirs {
            let st = rustix::fs::statvfs(dir)
                .map_err(|e| Error::io("check the free space of", dir, e.into()))?;
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            let reserve = self
                .reserve
                .unwrap_or_else(|| default_reserve(st.f_blocks.saturating_mul(st.f_frsize)));
            if free < reserve {
                *passed = None;
                return Err(Error::DiskFull {
                    path: dir.clone(),
                    free,
                    reserve,
                });
            }
        }
        *passed = Some(now + RESERVE_TTL);
        Ok(())
    }
}

/// What one inode costs at least: the filesystem's block. Without it, empty
/// files would be free, and a guest could run the disk out of inodes.
const INODE_COST: u64 = 4096;

/// How deep the walk goes. A deeper tree counts as over any limit: each
/// level holds a descriptor while it is read, and a guest that nests
/// folders without end must not get the rest of its tree counted as free.
const MAX_DEPTH: usize = 256;

/// The disk space a folder's contents take, as charged to a Run: for each
/// inode under it (counted once, however many links it has) the larger of
/// its allocated bytes, its length (a sparse file is charged as long as it
/// says it is: reading, hashing or copying it costs that much) and
/// [`INODE_COST`]. The tree is walked through descriptors with
/// `O_NOFOLLOW`, as `RunDir` reads it, so no path length limit hides a
/// subtree and a folder swapped for a symlink is never followed. Entries
/// that vanish while it looks are skipped; a tree deeper than
/// [`MAX_DEPTH`] is `u64::MAX`.
pub(crate) fn usage(dir: &Path) -> u64 {
    let Ok(top) = rustix::fs::open(dir, crate::folder::dir_flags(), Mode::empty()) else {
        return 0;
    };
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut total: u64 = 0;
    walk(top, 0, &mut seen, &mut total);
    total
}

fn walk(dir: OwnedFd, depth: usize, seen: &mut HashSet<(u64, u64)>, total: &mut u64) {
    if depth >= MAX_DEPTH {
        *total = u64::MAX;
        return;
    }
    let mut subdirs = Vec::new();
    let Ok(entries) = rustix::fs::Dir::read_from(&dir) else {
        return;
    };
    for entry in entries {
        let Ok(entry) = entry else { break };
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let Ok(st) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if !is_dir && st.st_nlink > 1 && !seen.insert((st.st_dev, st.st_ino)) {
            continue;
        }
        let allocated = (st.st_blocks as u64).saturating_mul(512);
        let cost = allocated.max(st.st_size as u64).max(INODE_COST);
        *total = total.saturating_add(cost);
        if is_dir {
            subdirs.push(name.to_owned());
        }
    }
    for name in subdirs {
        if *total == u64::MAX {
            return;
        }
        let flags = crate::folder::dir_flags();
        if let Ok(sub) = rustix::fs::openat(&dir, name.as_c_str(), flags, Mode::empty()) {
            walk(sub, depth + 1, seen, total);
        }
    }
}

/// Watches a command Run's scratch folder while the Run lasts; dropping it
/// stops the watch.
pub(crate) struct ScratchWatch {
    shared: Arc<Shared>,
    thread: Option<std::thread::Thread>,
}

struct Shared {
    dir: PathBuf,
    limit: u64,
    over: Cancel,
    stop: AtomicBool,
    /// The last size measured, in bytes.
    used: AtomicU64,
}

impl ScratchWatch {
    /// Start watching `dir` against `limit` bytes.
    pub(crate) fn start(dir: &Path, limit: u64) -> ScratchWatch {
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            limit,
            over: Cancel::default(),
            stop: AtomicBool::new(false),
            used: AtomicU64::new(0),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rh-scratch".into())
            .spawn(move || {
                while !s.stop.load(Ordering::SeqCst) {
                    let began = Instant::now();
                    if s.measure() {
                        return;
                    }
                    // A tree so large that walking it is slow is walked less
                    // often: the watch takes at most a fifth of a core.
                    std::thread::park_timeout(SCRATCH_INTERVAL.max(began.elapsed() * 4));
                }
            })
            .map(|h| h.thread().clone());
        if let Err(e) = &thread {
            // Without the thread the limit still holds at each command's end.
            tracing::warn!("cannot start the scratch watch of {}: {e}", dir.display());
        }
        ScratchWatch {
            shared,
            thread: thread.ok(),
        }
    }

    /// Resolves once the folder has been seen over the limit.
    pub(crate) async fn exceeded(&self) {
        self.shared.over.cancelled().await
    }

    /// Measure now (a walk of the whole tree: on the blocking pool, not
    /// on the worker running the Run); whether the folder is over the limit.
    pub(crate) async fn over_now(&self) -> bool {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.measure())
            .await
            .unwrap_or(true)
    }

    /// The last size measured, in bytes.
    pub(crate) fn used(&self) -> u64 {
        self.shared.used.load(Ordering::SeqCst)
    }
}

impl Shared {
    fn measure(&self) -> bool {
        let used = usage(&self.dir);
        self.used.store(used, Ordering::SeqCst);
        let over = used > self.limit;
        if over {
            self.over.cancel();
        }
        over
    }
}

impl Drop for ScratchWatch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = &self.thread {
            t.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_allocated_bytes_each_inode_once_and_follows_no_link() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a"), vec![1u8; 256 << 10]).unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::hard_link(d.join("a"), d.join("sub/a-again")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), vec![1u8; 4 << 20]).unwrap();
        std::os::unix::fs::symlink(outside.path().join("big"), d.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.join("dir-link")).unwrap();
        let used = usage(d);
        // The file once (not twice), the folder and the links themselves,
        // never the 4 MiB the links point at.
        assert!(used >= 256 << 10, "{used}");
        assert!(used < 512 << 10, "{used}");
        // A sparse file is charged its length: reading or copying it costs
        // that much.
        let f = std::fs::File::create(d.join("sparse")).unwrap();
        f.set_len(1 << 30).unwrap();
        assert!(usage(d) >= 1 << 30);
        std::fs::remove_file(d.join("sparse")).unwrap();
        // Empty files are not free: each inode costs a block.
        for i in 0..100 {
            std::fs::write(d.join(format!("e{i}")), "").unwrap();
        }
        assert!(usage(d) >= (256 << 10) + 100 * INODE_COST);
        // A tree deeper than the walk goes counts as over any limit.
        let mut deep = d.join("deep");
        for _ in 0..MAX_DEPTH {
            deep = deep.join("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(usage(d), u64::MAX);
    }

    #[test]
    fn a_reserve_above_the_free_space_refuses_and_zero_never_does() {
        let dir = tempfile::tempdir().unwrap();
        let st = rustix::fs::statvfs(dir.path()).unwrap();
        let free = st.f_bavail * st.f_frsize;
        let check = SpaceCheck::new(dir.path(), dir.path(), Some(free + (1 << 30)));
        assert_eq!(check.dirs.len(), 1);
        match check.check() {
            Err(Error::DiskFull { reserve, .. }) => assert_eq!(reserve, free + (1 << 30)),
            other => panic!("{other:?}"),
        }
        assert!(
            SpaceCheck::new(dir.path(), dir.path(), Some(0))
                .check()
                .is_ok()
        );
        assert!(
            SpaceCheck::new(dir.path(), dir.path(), Some(1))
                .check()
                .is_ok()
        );
    }

    #[test]
    fn the_default_reserve_is_a_gigabyte_or_a_twentieth_of_a_small_disk() {
        assert_eq!(default_reserve(1 << 40), 1 << 30);
        assert_eq!(default_reserve(100 << 20), 5 << 20);
    }
}
