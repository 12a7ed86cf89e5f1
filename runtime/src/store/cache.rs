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
use crate::config::{RunConfig, RunStatus};
use crate::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
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
        tokio::task::spawn_blocking(move || crate::store::files::lock(&path))
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

    /// Candidate source Runs for `key`, newest first: the last
    /// [`TAIL`] bytes of its index. A key called often lists thousands of
    /// Runs; the newest few are what a lookup needs, and an answer the tail
    /// misses is a miss, never a wrong result. An index grown past
    /// [`COMPACT_AT`] is rewritten to its tail (an append racing with that
    /// can be lost: a later miss, nothing worse).
    pub fn candidates(&self, key: &str) -> Vec<String> {
        let path = self.dir.join(key);
        let Ok(mut f) = File::open(&path) else {
            return Vec::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(TAIL);
        let mut text = String::new();
        if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_string(&mut text).is_err() {
            return Vec::new();
        }
        let mut lines: Vec<&str> = text.lines().collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // cut mid-line
        }
        if len > COMPACT_AT {
            let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let _ = crate::store::files::write_atomic(&path, body.as_bytes());
        }
        let mut v: Vec<String> = lines.into_iter().rev().map(str::to_string).collect();
        v.dedup();
        v
    }
}

/// How much of a key's index a lookup reads (about 100 Run names).
const TAIL: u64 = 8 << 10;
/// An index larger than this is cut back to its tail.
const COMPACT_AT: u64 = 256 << 10;

/// Whether `c` can answer a call with this digest, function and inputs.
pub(crate) fn same_call(c: &RunConfig, digest: &str, fn_name: &str, input_digest: &str) -> bool {
    c.status == RunStatus::Completed
        && c.function.as_ref().map(|f| f.digest.as_str()) == Some(digest)
        && c.fn_name.as_deref() == Some(fn_name)
        && c.input_digest.as_deref() == Some(input_digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hot_keys_index_is_read_from_its_tail_and_kept_small() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path()).unwrap();
        for i in 0..20_000 {
            cache.record("k", &format!("summer_run_{i:06}")).unwrap();
        }
        let size = |c: &Cache| std::fs::metadata(c.dir.join("k")).unwrap().len();
        assert!(
            size(&cache) > COMPACT_AT,
            "the test must grow the index past the bound"
        );
        let c = cache.candidates("k");
        assert_eq!(c[0], "summer_run_019999", "newest first");
        assert_eq!(c[1], "summer_run_019998");
        assert!(c.len() < 500, "only the tail is read: {}", c.len());
        assert!(
            c.iter().all(|n| n.len() == "summer_run_000000".len()),
            "no line cut in the middle"
        );
        // The lookup cut the index back to its tail; appends go on after it.
        assert!(size(&cache) <= TAIL, "{}", size(&cache));
        cache.record("k", "summer_run_020000").unwrap();
        assert_eq!(cache.candidates("k")[0], "summer_run_020000");
        assert!(cache.candidates("nothing").is_empty());
    }
}
