//! A Run as seen after the fact ([`Run`]), and a Run being executed
//! ([`RunHandle`]).

use crate::config::{RunConfig, RunStatus};
use crate::folder::RunDir;
use crate::runs::{self, INPUTS, RESULT, STDERR, STDOUT};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A Run's folder and record, loaded from disk.
#[derive(Debug, Clone)]
pub struct Run {
    dir: PathBuf,
    config: RunConfig,
    /// `result.json` as this process wrote it, and its value, when it
    /// executed the Run: answering the caller then reads nothing back from
    /// disk and parses nothing again.
    result: Option<Arc<(Vec<u8>, serde_json::Value)>>,
}

/// Read one of the Run files the host writes (never through a symlink).
fn read(path: PathBuf) -> Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| Error::io("read", &path, e))?;
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut out).map_err(|e| Error::io("read", path, e))?;
    Ok(out)
}

impl Run {
    /// Load the Run whose folder is `path` (any folder with a `config.json`,
    /// for instance one pulled from a cluster).
    pub fn open(path: impl AsRef<Path>) -> Result<Run> {
        let dir = path.as_ref().to_path_buf();
        let config = runs::load_config(&dir)?;
        Ok(Run {
            dir,
            config,
            result: None,
        })
    }

    pub(crate) fn from_parts(dir: PathBuf, config: RunConfig) -> Run {
        Run {
            dir,
            config,
            result: None,
        }
    }

    pub(crate) fn set_result(&mut self, bytes: Vec<u8>, value: serde_json::Value) {
        self.result = Some(Arc::new((bytes, value)));
    }

    /// The Run's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The Run's status when it was loaded.
    pub fn status(&self) -> RunStatus {
        self.config.status
    }

    /// The Run's record (`config.json`).
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The Run's folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The path of one of the Run's files (`config.json`, `stdout`, ...).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The result's JSON bytes, as stored in `result.json`; for a Run that
    /// did not complete, the error it ended with.
    pub fn result_bytes(&self) -> Result<Vec<u8>> {
        match self.config.status {
            RunStatus::Completed => match &self.result {
                Some(r) => Ok(r.0.clone()),
                None => read(self.dir.join(RESULT)),
            },
            RunStatus::NotStarted | RunStatus::Running => Err(Error::NotFinished {
                run: self.config.name.clone(),
                status: self.config.status,
            }),
            RunStatus::Cancelled => Err(Error::Cancelled {
                run: self.config.name.clone(),
            }),
            RunStatus::Error => Err(self.error()),
        }
    }

    /// The result, decoded as JSON.
    pub fn result(&self) -> Result<serde_json::Value> {
        if let (RunStatus::Completed, Some(r)) = (self.config.status, &self.result) {
            return Ok(r.1.clone());
        }
        let bytes = self.result_bytes()?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt {
            path: self.dir.join(RESULT),
            source,
        })
    }

    /// The error a failed Run ended with, as the variant the call gave.
    pub fn error(&self) -> Error {
        match &self.config.error {
            Some(err) => Error::from_record(
                &self.config.name,
                err,
                &self.config.limits.clone().unwrap_or_default(),
            ),
            None => Error::Failed {
                run: self.config.name.clone(),
                message: format!("ended {}", self.config.status),
            },
        }
    }

    /// The inputs (`inputs.json`).
    pub fn inputs(&self) -> Result<Vec<u8>> {
        read(self.dir.join(INPUTS))
    }

    /// The guest's stdout so far.
    pub fn stdout(&self) -> Result<Vec<u8>> {
        read(self.dir.join(STDOUT))
    }

    /// The guest's stderr so far.
    pub fn stderr(&self) -> Result<Vec<u8>> {
        read(self.dir.join(STDERR))
    }

    /// Every file of the Run with its size and digest; see [`Run::paths`].
    /// Each file is read in chunks through the same descriptor that was
    /// checked, so the digest is of the file listed. This reads every byte:
    /// [`Runtime::run_files`](crate::Runtime::run_files) remembers the
    /// answer for a finished Run.
    pub fn files(&self) -> Result<Vec<RunFile>> {
        let dir = RunDir::open(&self.dir)?;
        dir.files()?
            .into_iter()
            .map(|p| {
                let f = dir.open_file(&p)?;
                let (size, digest) = crate::folder::hash_reader(f, &self.dir.join(&p))?;
                Ok(RunFile {
                    size,
                    digest,
                    path: p,
                })
            })
            .collect()
    }

    /// The paths of the Run's files, relative to its folder: the five Run
    /// files that exist, then a command Run's `scratch/` tree, sorted. Only
    /// regular files count, and no symlink is followed anywhere in a path
    /// (see [`RunDir`]), so nothing outside the folder is ever listed.
    pub fn paths(&self) -> Result<Vec<String>> {
        RunDir::open(&self.dir)?.files()
    }

    /// Open one of [`Run::paths`] for reading, with its size. A path through
    /// a symlink, or to anything but a regular file, is `NotFound`; so is
    /// every file of a Run still running (`NotFinished`), whose guest may be
    /// changing them.
    pub fn open_file(&self, rel: &str) -> Result<(std::fs::File, u64)> {
        if !self.config.status.is_terminal() {
            return Err(Error::NotFinished {
                run: self.config.name.clone(),
                status: self.config.status,
            });
        }
        let f = RunDir::open(&self.dir)?.open_file(rel)?;
        let len = f
            .metadata()
            .map_err(|e| Error::io("stat", self.dir.join(rel), e))?
            .len();
        Ok((f, len))
    }

    /// The bytes of one of [`Run::paths`]; see [`Run::open_file`].
    pub fn read_file(&self, rel: &str) -> Result<Vec<u8>> {
        let (mut f, len) = self.open_file(rel)?;
        let mut out = Vec::with_capacity(len.min(64 << 20) as usize);
        std::io::Read::read_to_end(&mut f, &mut out)
            .map_err(|e| Error::io("read", self.dir.join(rel), e))?;
        Ok(out)
    }

    /// Read the record again from disk.
    pub fn reload(&self) -> Result<Run> {
        Ok(Run::from_parts(
            self.dir.clone(),
            runs::load_config(&self.dir)?,
        ))
    }
}

/// Whether `path` is a plain relative path inside a Run folder (`stdout`,
/// `scratch/out.txt`): no empty, `.` or `..` component, not absolute. Paths
/// that come from elsewhere (a cluster, a manifest) are checked with this
/// before anything is written.
pub fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// One file of a Run folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunFile {
    /// Its path relative to the Run folder (`stdout`, `scratch/out.txt`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its content digest (`sha256:...`).
    pub digest: String,
}

/// Which Run a remembered file list belongs to: a Run replaced or deleted
/// and made again under the same name has another folder or other times.
type FolderStamp = (u64, u64, Option<String>, Option<String>);

/// A finished Run's files, and which Run they are of.
type FileList = (FolderStamp, Arc<Vec<RunFile>>);

/// How many finished Runs' file lists are remembered.
const FILE_LISTS: usize = 4096;

/// The files of finished Runs, hashed once: a finished Run's files do not
/// change.
#[derive(Default)]
pub(crate) struct FileLists {
    lists: Mutex<HashMap<String, FileList>>,
}

impl FileLists {
    /// Every file of the finished `run` with its size and digest.
    /// `NotFinished` while it runs.
    pub fn of(&self, run: &Run) -> Result<Arc<Vec<RunFile>>> {
        let name = run.name();
        if !run.status().is_terminal() {
            return Err(Error::NotFinished {
                run: name.to_string(),
                status: run.status(),
            });
        }
        let meta =
            std::fs::symlink_metadata(run.path()).map_err(|e| Error::io("stat", run.path(), e))?;
        let stamp: FolderStamp = {
            use std::os::unix::fs::MetadataExt;
            (
                meta.dev(),
                meta.ino(),
                run.config().start_time.clone(),
                run.config().end_time.clone(),
            )
        };
        if let Some((s, list)) = self.lists.lock().expect("file lists").get(name)
            && *s == stamp
        {
            return Ok(list.clone());
        }
        let list = Arc::new(run.files()?);
        let mut lists = self.lists.lock().expect("file lists");
        if lists.len() >= FILE_LISTS {
            lists.clear();
        }
        lists.insert(name.to_string(), (stamp, list.clone()));
        Ok(list)
    }
}
