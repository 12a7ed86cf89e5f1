//! Host-side access to a Run folder that never follows a symlink.
//!
//! A command Run's guest writes inside its `scratch/` folder while the host
//! reads the same tree to list, serve, push, pull and copy its files. The
//! guest can make symlinks there (`d -> ../../..`) and swap them with real
//! folders at any moment, so any check on a path followed by a read of that
//! path races with it. [`RunDir`] closes the race at the root: it holds the
//! Run folder open and resolves every path one component at a time with
//! `openat(.., O_NOFOLLOW)`, so a symlink anywhere in a path ends the lookup
//! instead of being followed, and what is read is the file that was opened,
//! never a path looked up again. `.` and `..` components are refused before
//! any lookup. Only regular files are listed or opened: symlinks, FIFOs,
//! sockets and devices are skipped.
//!
//! Why not `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: it is one call
//! per path instead of one per component, but not every kernel or sandbox
//! offers it, and Run paths are two or three components deep.

use crate::{Error, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// How deep a listing descends into `scratch/`: a guest can nest folders
/// without end, and each level holds one descriptor while it is read.
pub(crate) const MAX_DEPTH: usize = 64;

/// The Run files, in the order they are listed.
const RUN_FILES: [&str; 5] = [
    crate::config::CONFIG,
    crate::config::INPUTS,
    crate::config::RESULT,
    crate::config::STDOUT,
    crate::config::STDERR,
];

/// An open Run folder; see the module header.
#[derive(Debug)]
pub struct RunDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// How every folder of a Run is opened: read-only, a folder, never through
/// a symlink.
pub(crate) fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn not_a_file(rel: &str) -> Error {
    Error::NotFound {
        what: "file of this run",
        name: rel.to_string(),
    }
}

impl RunDir {
    /// Open the Run folder at `path` (itself not a symlink).
    pub fn open(path: &Path) -> Result<RunDir> {
        let fd = rustix::fs::open(path, dir_flags(), Mode::empty())
            .map_err(|e| Error::io("open", path, e.into()))?;
        Ok(RunDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The folder's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open the regular file `rel` (`stdout`, `scratch/out.txt`) for
    /// reading. A path with a symlink in any component, a `.` or `..`, or
    /// naming anything but a regular file is `NotFound`.
    pub fn open_file(&self, rel: &str) -> Result<File> {
        if !crate::is_plain_relative(rel) {
            return Err(not_a_file(rel));
        }
        // A missing part, a symlink (ELOOP) or a file where a folder
        // should be is simply not a file of this Run.
        let lookup = |e: rustix::io::Errno| match e {
            rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP => {
                not_a_file(rel)
            }
            e => Error::io("open", self.path.join(rel), e.into()),
        };
        let (folders, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let mut dir: Option<OwnedFd> = None;
        for part in folders.split('/').filter(|p| !p.is_empty()) {
            let at = dir.as_ref().map_or(self.fd.as_fd(), |d| d.as_fd());
            dir = Some(rustix::fs::openat(at, part, dir_flags(), Mode::empty()).map_err(lookup)?);
        }
        let at = dir.as_ref().map_or(self.fd.as_fd(), |d| d.as_fd());
        // NONBLOCK: opening a FIFO must not wait for a writer; the type
        // check below refuses it anyway.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rustix::fs::openat(at, name, flags, Mode::empty()).map_err(lookup)?;
        let st =
            rustix::fs::fstat(&fd).map_err(|e| Error::io("stat", self.path.join(rel), e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(not_a_file(rel));
        }
        rustix::fs::fcntl_setfl(&fd, OFlags::empty())
            .map_err(|e| Error::io("open", self.path.join(rel), e.into()))?;
        Ok(File::from(fd))
    }

    /// The bytes of the regular file `rel`; see [`RunDir::open_file`].
    pub fn read(&self, rel: &str) -> Result<Vec<u8>> {
        let mut f = self.open_file(rel)?;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut out)
            .map_err(|e| Error::io("read", self.path.join(rel), e))?;
        Ok(out)
    }

    /// The regular files of the folder, relative to it: the Run files that
    /// exist, then a command Run's `scratch/` tree, sorted. Symlinks and
    /// anything else that is not a regular file or a folder are left out,
    /// and so is what lies deeper than 64 folders.
    pub fn files(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = RUN_FILES
            .into_iter()
            .filter(|f| self.kind(self.fd.as_fd(), f) == Some(FileType::RegularFile))
            .map(str::to_string)
            .collect();
        let mut found = Vec::new();
        if let Ok(scratch) = rustix::fs::openat(&self.fd, "scratch", dir_flags(), Mode::empty()) {
            self.walk(scratch, "scratch", 0, &mut found)?;
        }
        found.sort();
        out.extend(found);
        Ok(out)
    }

    fn kind(&self, at: std::os::fd::BorrowedFd<'_>, name: &str) -> Option<FileType> {
        rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|st| FileType::from_raw_mode(st.st_mode))
    }

    fn walk(&self, dir: OwnedFd, rel: &str, depth: usize, out: &mut Vec<String>) -> Result<()> {
        let mut subdirs = Vec::new();
        {
            let entries = rustix::fs::Dir::read_from(&dir)
                .map_err(|e| Error::io("read", self.path.join(rel), e.into()))?;
            for entry in entries {
                let Ok(entry) = entry else { break };
                let Ok(name) = entry.file_name().to_str() else {
                    continue;
                };
                if name == "." || name == ".." {
                    continue;
                }
                let kind = match entry.file_type() {
                    FileType::Unknown => self.kind(dir.as_fd(), name),
                    k => Some(k),
                };
                match kind {
                    Some(FileType::RegularFile) => out.push(format!("{rel}/{name}")),
                    Some(FileType::Directory) => subdirs.push(name.to_string()),
                    _ => {}
                }
            }
        }
        if depth + 1 >= MAX_DEPTH {
            return Ok(());
        }
        for name in subdirs {
            // Swapped for a symlink since it was read: NOFOLLOW refuses it.
            if let Ok(sub) = rustix::fs::openat(&dir, name.as_str(), dir_flags(), Mode::empty()) {
                self.walk(sub, &format!("{rel}/{name}"), depth + 1, out)?;
            }
        }
        Ok(())
    }
}

/// Size and `sha256:` digest of what `file` holds, read in chunks.
pub fn hash_reader(mut file: impl std::io::Read, path: &Path) -> Result<(u64, String)> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = file
            .read(&mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, format!("sha256:{}", hex::encode(h.finalize()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_are_never_followed_listed_or_opened() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("secret");
        std::fs::write(&outside, "secret").unwrap();
        let run = d.path().join("run");
        std::fs::create_dir_all(run.join("scratch/real")).unwrap();
        std::fs::write(run.join("stdout"), "out").unwrap();
        std::fs::write(run.join("scratch/real/f"), "inside").unwrap();
        symlink("../..", run.join("scratch/up")).unwrap();
        symlink("../secret", run.join("stderr")).unwrap();
        symlink("real/f", run.join("scratch/alias")).unwrap();
        let dir = RunDir::open(&run).unwrap();
        assert_eq!(dir.files().unwrap(), ["stdout", "scratch/real/f"]);
        assert_eq!(dir.read("scratch/real/f").unwrap(), b"inside");
        for bad in [
            "stderr",
            "scratch/up/secret",
            "scratch/alias",
            "scratch/real/../../stdout",
            "./stdout",
            "/etc/passwd",
            "scratch",
            "",
        ] {
            assert!(
                matches!(dir.read(bad), Err(Error::NotFound { .. })),
                "{bad} was opened"
            );
        }
        // The folder itself may not be a symlink either.
        symlink(&run, d.path().join("alias")).unwrap();
        assert!(RunDir::open(&d.path().join("alias")).is_err());
    }

    #[test]
    fn a_listing_stops_at_the_depth_bound() {
        let d = tempfile::tempdir().unwrap();
        let mut p = d.path().join("scratch");
        for _ in 0..(MAX_DEPTH + 5) {
            p = p.join("d");
        }
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("deep"), "x").unwrap();
        std::fs::write(d.path().join("scratch/top"), "x").unwrap();
        let files = RunDir::open(d.path()).unwrap().files().unwrap();
        assert_eq!(files, ["scratch/top"]);
    }
}
