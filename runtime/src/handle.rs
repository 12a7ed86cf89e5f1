//! Following a Run: waiting on it, cancelling it, reading its output as it
//! is written; and [`RunHandle`], a started Run's handle. A Run executing
//! in this process is followed through its entry in `inflight`; one that
//! another process sharing the root executes (a CLI worker, another CLI
//! call) is waited on by reading its `config.json`, cancelled through a
//! request file under `cancel/`, and followed by re-reading its files.

use crate::config::RunStatus;
use crate::execute::host::OutputKind;
use crate::parts::Parts;
use crate::run::Run;
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A Run started asynchronously: ask for its status, wait for it, cancel it.
/// The caller it was made for could read it, so its verbs check nothing.
#[derive(Clone)]
pub struct RunHandle {
    pub(crate) parts: Arc<Parts>,
    pub(crate) name: String,
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RunHandle {
    /// The Run's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Run as it is now.
    pub fn run(&self) -> Result<Run> {
        self.parts.run(&self.name)
    }

    /// The Run's current status (read from nothing while this process
    /// executes it).
    pub fn status(&self) -> Result<RunStatus> {
        if self.parts.inflight.contains(&self.name) {
            return Ok(RunStatus::Running);
        }
        Ok(self.run()?.status())
    }

    /// Wait until the Run ends; then the Run.
    pub async fn wait(&self) -> Result<Run> {
        wait(&self.parts, &self.name).await
    }

    /// Cancel the Run and wait until it has ended.
    pub async fn cancel(&self) -> Result<Run> {
        cancel(&self.parts, &self.name).await
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

/// Wait until Run `name` ends.
pub(crate) async fn wait(parts: &Parts, name: &str) -> Result<Run> {
    let mut polls: u32 = 0;
    loop {
        let rx = parts.inflight.done(name);
        let here = rx.is_some();
        if let Some(mut rx) = rx
            && let Ok(ended) = rx.wait_for(Option::is_some).await
            && let Some(Some(run)) = &*ended
        {
            return Ok(run.clone());
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
    let signal = parts.inflight.cancel_signal(name);
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
    let file_name = match kind {
        OutputKind::Stdout => crate::runs::STDOUT,
        OutputKind::Stderr => crate::runs::STDERR,
    };
    // A Run executing here is followed through its progress, its record
    // unread; any other is read first (it may have ended).
    let live = parts.inflight.progress(name);
    let ended = match &live {
        Some(_) => false,
        None => parts.run(name)?.status().is_terminal(),
    };
    let path = parts.runs.dir(name).join(file_name);
    let file = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
    Ok(LogFollower {
        parts: parts.clone(),
        name: name.to_string(),
        file,
        pos: 0,
        live,
        ended,
    })
}

/// Reads a Run's output as it is written; see [`crate::Runtime::follow`].
pub struct LogFollower {
    parts: Arc<Parts>,
    name: String,
    file: std::fs::File,
    pos: u64,
    live: Option<(watch::Receiver<u64>, crate::inflight::Done)>,
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
                        r = done.wait_for(Option::is_some) => { let _ = r; self.ended = true; }
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
