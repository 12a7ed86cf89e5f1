//! A Run as seen after the fact ([`Run`]), and a Run being executed
//! ([`RunHandle`]).

use crate::record::{RunConfig, RunStatus};
use crate::runs::{self, INPUTS, RESULT, STDERR, STDOUT};
use crate::{Error, Result, Runtime};
use std::path::{Path, PathBuf};

/// A Run's folder and record, loaded from disk.
#[derive(Debug, Clone)]
pub struct Run {
    dir: PathBuf,
    config: RunConfig,
}

fn read(path: PathBuf) -> Result<Vec<u8>> {
    std::fs::read(&path).map_err(|e| Error::io("read", path, e))
}

impl Run {
    /// Load the Run whose folder is `path` (any folder with a `config.json`,
    /// for instance one pulled from a cluster).
    pub fn open(path: impl AsRef<Path>) -> Result<Run> {
        let dir = path.as_ref().to_path_buf();
        let config = runs::load_config(&dir)?;
        Ok(Run { dir, config })
    }

    pub(crate) fn from_parts(dir: PathBuf, config: RunConfig) -> Run {
        Run { dir, config }
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
            RunStatus::Completed => read(self.dir.join(RESULT)),
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

    /// Read the record again from disk.
    pub fn reload(&self) -> Result<Run> {
        Ok(Run {
            dir: self.dir.clone(),
            config: runs::load_config(&self.dir)?,
        })
    }
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
