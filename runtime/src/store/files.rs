//! The file habits every store shares, written once: whole-file writes,
//! atomic replacement, exclusive locks and file stamps.
//!
//! - [`write_atomic`] replaces a file so that readers see the old contents
//!   or the new, whole: a temporary file next to it (a name no other thread
//!   or process uses), then `rename(2)`.
//! - [`lock`] holds an exclusive `flock` on a lock file until the returned
//!   file is dropped; it excludes other processes and other threads alike
//!   (each takes it through a descriptor of its own), and the kernel drops
//!   it when a process dies, even by `kill -9`.
//! - [`stamp`] says which version of a file is on disk: files are replaced
//!   by rename, so a new version has a new inode, and the time and length
//!   catch the rest.

use crate::{Error, Result};
use rustix::fs::{FlockOperation, flock};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Write `bytes` as the whole of `path`; with `durable`, synced to disk.
pub(crate) fn write_file(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    write_all(f, path, bytes, durable)
}

/// Write `bytes` as the whole of `path`, reusing the file if it exists: its
/// blocks are written over rather than freed and allocated again.
pub(crate) fn overwrite_file(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    f.set_len(bytes.len() as u64)
        .map_err(|e| Error::io("write", path, e))?;
    write_all(f, path, bytes, durable)
}

fn write_all(mut f: File, path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    f.write_all(bytes)
        .map_err(|e| Error::io("write", path, e))?;
    if durable {
        f.sync_all().map_err(|e| Error::io("sync", path, e))?;
    }
    Ok(())
}

/// A temporary name next to `path` that no other writer uses: hidden (it
/// starts with `.`, so listings skip it), with this process's id and a
/// number of its own.
pub(crate) fn temp_beside(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Replace `path` with `bytes` atomically; see the module docs.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_beside(path);
    let written = write_file(&tmp, bytes, false)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Hold an exclusive lock on `path` (made if missing) until the returned
/// file is dropped, waiting for whoever holds it.
pub(crate) fn lock(path: &Path) -> Result<File> {
    let f = File::create(path).map_err(|e| Error::io("create", path, e))?;
    flock(&f, FlockOperation::LockExclusive).map_err(|e| Error::io("lock", path, e.into()))?;
    Ok(f)
}

/// Take an exclusive lock on an open file if no one holds it: whether it
/// was taken (its holder, if any, is alive).
pub(crate) fn try_lock(f: &File) -> bool {
    flock(f, FlockOperation::NonBlockingLockExclusive).is_ok()
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

/// A file's inode, modification time (s, ns) and length.
pub(crate) type Stamp = (u64, i64, i64, u64);

/// The stamp of the file at `path`, if there is one.
pub(crate) fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.mtime(), m.mtime_nsec(), m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_leaves_no_temporary_file_and_a_lock_excludes_a_second_taker() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        write_atomic(&p, b"one").unwrap();
        let first = stamp(&p).unwrap();
        write_atomic(&p, b"two!").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two!");
        assert_ne!(stamp(&p).unwrap(), first, "a new version has a new stamp");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");

        let held = lock(&d.path().join(".x.lock")).unwrap();
        let other = File::open(d.path().join(".x.lock")).unwrap();
        assert!(!try_lock(&other), "held by another descriptor");
        drop(held);
        assert!(try_lock(&other), "free once dropped");
    }
}
