//! A Run as seen after the fact ([`Run`]), and a Run being executed
//! ([`RunHandle`]).

use crate::folder::RunDir;
use crate::record::{RunConfig, RunStatus};
use crate::runs::{self, INPUTS, RESULT, STDERR, STDOUT};
use crate::{Error, Result, Runtime};
use std::path::{Path, PathBuf};

/// A Run's folder and record, loaded from disk.
#[derive(Debug, Clone)]
pub struct Run {
    dir: PathBuf,
    config: RunConfig,
    /// `result.json` as this process wrote it, when it executed the Run:
    /// answering the caller then reads nothing back from disk.
    result: Option<std::sync::Arc<[u8]>>,
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

    pub(crate) fn with_result(mut self, bytes: Vec<u8>) -> Run {
        self.result = Some(bytes.into());
        self
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
                Some(bytes) => Ok(bytes.to_vec()),
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
        if let (RunStatus::Completed, Some(bytes)) = (self.config.status, &self.result) {
            return serde_json::from_slice(bytes).map_err(|source| Error::Corrupt {
                path: self.dir.join(RESULT),
                source,
            });
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

/// A Run started asynchronously: ask for its status, wait for it, cancel it.
#[derive(Debug, Clone)]
pub struct RunHandle {
    pub(crate) runtime: Runtime,
    pub(crate) name: String,
}

impl RunHandle {
    /// The Run's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Run as it is now.
    pub fn run(&self) -> Result<Run> {
        self.runtime.run(&self.name)
    }

    /// The Run's current status.
    pub fn status(&self) -> Result<RunStatus> {
        Ok(self.runtime.run(&self.name)?.status())
    }

    /// Wait until the Run ends; then the Run.
    pub async fn wait(&self) -> Result<Run> {
        self.runtime.wait(&self.name).await
    }

    /// Cancel the Run and wait until it has ended.
    pub async fn cancel(&self) -> Result<Run> {
        self.runtime.cancel(&self.name).await
    }

    /// The guest's stdout so far.
    pub fn stdout(&self) -> Result<Vec<u8>> {
        self.run()?.stdout()
    }

    /// The guest's stderr so far.
    pub fn stderr(&self) -> Result<Vec<u8>> {
        self.run()?.stderr()
    }

    /// The result, if the Run completed (`NotFinished` while it runs).
    pub fn result(&self) -> Result<serde_json::Value> {
        self.run()?.result()
    }
}
