//! The content-addressed result cache: a completed function Run answers any
//! later call of the same component digest, function and canonical inputs,
//! under any Run name, as long as the artifact versions it loaded are still
//! current.
//!
//! The index of Runs holds each completed function Run's key (`key` =
//! sha256 of digest, function and input digest), so a lookup asks it for
//! the newest Runs with the key. A lookup re-checks every candidate against
//! its own `config.json` and files, so a reused name, a deleted Run or a
//! changed artifact is a miss, never a wrong answer. Concurrent identical
//! cached calls take the key's `flock` in turn (`cache/<key>.lock`): the
//! first executes, the rest find its Run. `cache clear` writes down up to
//! when entries are forgotten (`cache/cleared.json`).

use crate::artifacts::digest_of;
use crate::config::{RunConfig, RunStatus};
use crate::{Error, Result};
use std::fs::File;
use std::path::PathBuf;

pub(crate) struct Cache {
    dir: PathBuf,
    /// `cleared.json` as last read, with its file's stamp.
    cleared: std::sync::Mutex<Option<(crate::store::files::Stamp, std::sync::Arc<Cleared>)>>,
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
        Ok(Cache {
            dir,
            cleared: std::sync::Mutex::new(None),
        })
    }

    /// Hold the key's lock until the returned file is dropped.
    pub async fn lock(&self, key: &str) -> Result<File> {
        let path = self.dir.join(format!("{key}.lock"));
        tokio::task::spawn_blocking(move || crate::store::files::lock(&path))
            .await
            .map_err(|e| Error::Engine(format!("cache lock task: {e}")))?
    }

    /// Forget the entries of Runs that ended by now (of deployed name
    /// `function`, or all): written down first, so a rebuilt index forgets
    /// them too.
    pub fn clear(&self, function: Option<&str>, now_us: i64) -> Result<()> {
        let path = self.dir.join(CLEARED);
        let _lock = crate::store::files::lock(&self.dir.join(format!("{CLEARED}.lock")))?;
        let mut cleared = Cleared::clone(&self.cleared_file());
        match function {
            Some(f) => {
                cleared.functions.insert(f.to_string(), now_us);
            }
            None => {
                cleared.all = now_us;
                cleared.functions.clear();
            }
        }
        let bytes =
            serde_json::to_vec_pretty(&cleared).map_err(|e| Error::Invalid(e.to_string()))?;
        crate::store::files::write_atomic(&path, &bytes)
    }

    /// The time (µs) up to which entries of Runs of `function` are
    /// forgotten (0: none are).
    pub fn cleared_until(&self, function: &str) -> i64 {
        let c = self.cleared_file();
        c.functions.get(function).copied().unwrap_or(0).max(c.all)
    }

    /// `cleared.json`, read again only when the file changed (a lookup
    /// of each cached call asks).
    fn cleared_file(&self) -> std::sync::Arc<Cleared> {
        let path = self.dir.join(CLEARED);
        let Some(stamp) = crate::store::files::stamp(&path) else {
            return Default::default();
        };
        let mut memo = self.cleared.lock().expect("cleared poisoned");
        if let Some((s, c)) = memo.as_ref()
            && *s == stamp
        {
            return c.clone();
        }
        let c: std::sync::Arc<Cleared> = std::sync::Arc::new(
            std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default(),
        );
        *memo = Some((stamp, c.clone()));
        c
    }
}

/// The file that says which entries `cache clear` forgot.
const CLEARED: &str = "cleared.json";

/// What `cache clear` forgot: entries of Runs that ended by these times.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Cleared {
    /// For every function (µs since the epoch).
    all: i64,
    /// Per deployed name.
    functions: std::collections::BTreeMap<String, i64>,
}

/// Whether `c` can answer a call with this digest, function and inputs.
pub(crate) fn same_call(c: &RunConfig, digest: &str, fn_name: &str, input_digest: &str) -> bool {
    c.status == RunStatus::Completed
        && c.function.as_ref().map(|f| f.digest.as_str()) == Some(digest)
        && c.fn_name.as_deref() == Some(fn_name)
        && c.input_digest.as_deref() == Some(input_digest)
}
