//! The content-addressed result cache: a completed function Run answers any
//! later call of the same component digest, function and canonical inputs,
//! under any Run name, as long as the artifact versions it loaded are still
//! current.
//!
//! `cache/<key>` lists, one per line, the Runs that completed with that key
//! (`key` = sha256 of digest, function and input digest); a line is appended
//! when such a Run completes, so the hot path pays one append. A lookup
//! re-checks every candidate against its own `config.json` and files, so a
//! reused name, a deleted Run or a changed artifact is a miss, never a wrong
//! answer. Concurrent identical cached calls take the key's `flock` in turn:
//! the first executes, the rest find its Run.

use crate::artifacts::digest_of;
use crate::record::{RunConfig, RunStatus};
use crate::{Error, Result};
use rustix::fs::{FlockOperation, flock};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

pub(crate) struct Cache {
    dir: PathBuf,
}

/// The cache key of a function call.
pub(crate) fn key(digest: &str, fn_name: &str, input_digest: &str) -> String {
    digest_of(format!("{digest}\n{fn_name}\n{input_digest}").as_bytes())
        .trim_start_matches("sha256:")
        .to_string()
}

impl Cache {
    pub fn open(root: &std::path::Path) -> Result<Cache> {
        let dir = root.join("cache");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create folder", &dir, e))?;
        Ok(Cache { dir })
    }

    /// Hold the key's lock until the returned file is dropped.
    pub async fn lock(&self, key: &str) -> Result<File> {
        let path = self.dir.join(format!("{key}.lock"));
        tokio::task::spawn_blocking(move || {
            let f = File::create(&path).map_err(|e| Error::io("create", &path, e))?;
            flock(&f, FlockOperation::LockExclusive)
                .map_err(|e| Error::io("lock", &path, e.into()))?;
            Ok(f)
        })
        .await
        .map_err(|e| Error::Engine(format!("cache lock task: {e}")))?
    }

    /// Remember that `run` completed with `key`.
    pub fn record(&self, key: &str, run: &str) -> Result<()> {
        let path = self.dir.join(key);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        f.write_all(format!("{run}\n").as_bytes())
            .map_err(|e| Error::io("write", &path, e))
    }

    /// Candidate source Runs for `key`, newest first.
    pub fn candidates(&self, key: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join(key)).unwrap_or_default();
        let mut v: Vec<String> = text.lines().map(str::to_string).collect();
        v.reverse();
        v.dedup();
        v
    }
}

/// Whether `c` can answer a call with this digest, function and inputs.
pub(crate) fn same_call(c: &RunConfig, digest: &str, fn_name: &str, input_digest: &str) -> bool {
    c.status == RunStatus::Completed
        && c.function.as_ref().map(|f| f.digest.as_str()) == Some(digest)
        && c.fn_name.as_deref() == Some(fn_name)
        && c.input_digest.as_deref() == Some(input_digest)
}
