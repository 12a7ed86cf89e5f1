//! Cache hits from the shared store: a Run that another cluster published
//! for the same call, taken only when it is signed by the team and no
//! bigger than the call itself could have made, and copied here only for
//! as long as the hit takes.
//!
//! Entries live under `<store>/cache/<key>/<run>/` (see the remote module),
//! where anyone who can write the bucket can put anything. So before any
//! blob of an entry is downloaded, its manifest must be small (at most
//! [`MAX_MANIFEST`] bytes), signed with the team key (the store is
//! [`crate::RemoteStore::signed_with`] one; the runtime refuses a shared
//! store without), and list exactly the files of a completed function Run,
//! with `stdout` and `stderr` together within the caller's output cap, the
//! result within its memory limit (a result comes out of guest memory) and
//! the inputs no larger than the caller's. Anything else is a miss, logged.
//! At most [`MAX_LISTED`] objects are listed and [`MAX_TRIED`] entries
//! tried under one key: planted entries can cost a call a few reads, then
//! the call is computed.
//!
//! The copy goes to `<root>/shared/<host>-<n>/`, where `<host>` is this
//! process's host id in the run store: a [`Copy`] removes it when dropped,
//! which is once the hit has been recorded, or at once when the entry is
//! refused. Several processes may share a root (the local cluster), so
//! [`sweep`], when a runtime opens, removes only the copies of hosts that
//! are no longer alive (and any other leftover, such as the one-folder-per-
//! key layout of older versions).

use crate::manifest::Manifest;
use crate::runs::{CONFIG, INPUTS, RESULT, STDERR, STDOUT};
use crate::{RemoteStore, Run};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest manifest of a shared entry; a function Run's is about 1 KiB.
pub(crate) const MAX_MANIFEST: u64 = 1 << 20;
/// The largest `config.json` of a shared entry.
const MAX_CONFIG: u64 = 1 << 20;
/// Objects listed under one cache key (one page of an S3 listing).
const MAX_LISTED: usize = 1000;
/// Entries tried under one cache key, newest first.
const MAX_TRIED: usize = 8;

/// What the call being answered could have made itself.
pub(crate) struct Bounds {
    /// Its output cap: `stdout` and `stderr` together.
    pub output: u64,
    /// Its memory limit, which bounds its result.
    pub result: u64,
    /// The size of its inputs.
    pub inputs: u64,
}

/// A folder under `<root>/shared/` owned by this process; removed on drop.
pub(crate) struct Copy {
    dir: PathBuf,
}

impl Copy {
    fn new(shared: &Path, host: &str) -> crate::Result<Copy> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = shared.join(format!("{host}-{n}"));
        std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io("create folder", &dir, e))?;
        Ok(Copy { dir })
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("removing {}: {e}", self.dir.display());
        }
    }
}

/// A Run published under `store` (one cache key's folder) that `answers`
/// the call, copied under `shared`: the Run, its address, and the copy to
/// drop once the hit is recorded. Every refusal is a miss.
pub(crate) async fn lookup(
    store: &RemoteStore,
    shared: &Path,
    host: &str,
    bounds: &Bounds,
    answers: &(dyn Fn(&Run) -> bool + Sync),
) -> Option<(Run, String, Copy)> {
    let names = match store.runs_within(MAX_LISTED).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("shared store: {e}");
            return None;
        }
    };
    let mut copy = None;
    for name in names
        .into_iter()
        .filter(|n| crate::validate_run_name(n).is_ok())
        .take(MAX_TRIED)
    {
        let url = store.run_url(&name);
        let m = match store.manifest_within(&name, MAX_MANIFEST).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("shared store: {url} is not usable: {e}");
                continue;
            }
        };
        if let Err(why) = fits(&m, bounds) {
            tracing::warn!("shared store: {url} is not usable: {why}");
            continue;
        }
        let dir = match copy.take() {
            Some(c) => c,
            None => match Copy::new(shared, host) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("shared store: {e}");
                    return None;
                }
            },
        };
        let local = dir.dir.join(&name);
        let pulled = store.pull_manifest(&m, &local, &|_, _| {}).await;
        match pulled.and_then(|_| Run::open(&local)) {
            Ok(run) if answers(&run) => return Some((run, url, dir)),
            // Another artifact version, say: not this call's Run.
            Ok(_) => {}
            Err(e) => tracing::warn!("shared store: {url} is not usable: {e}"),
        }
        let _ = std::fs::remove_dir_all(&local);
        copy = Some(dir);
    }
    None
}

/// Why the entry `m` describes is not one this call can take, if it is not:
/// the files of a completed function Run, each no bigger than the call
/// could have made.
fn fits(m: &Manifest, b: &Bounds) -> Result<(), String> {
    let size = |path: &str| m.files.iter().find(|f| f.path == path).map(|f| f.size);
    let wanted = [CONFIG, INPUTS, RESULT, STDOUT, STDERR];
    let (Some(config), Some(inputs), Some(result), Some(stdout), Some(stderr)) = (
        size(CONFIG),
        size(INPUTS),
        size(RESULT),
        size(STDOUT),
        size(STDERR),
    ) else {
        return Err("it is not a completed function Run (a file is missing)".into());
    };
    // `check` refused any file listed twice, so five means these five.
    if m.files.len() != wanted.len() {
        return Err("it holds files a function Run does not have".into());
    }
    let output = stdout.saturating_add(stderr);
    if output > b.output {
        return Err(format!(
            "its output is {output} bytes, over this call's cap of {}",
            b.output
        ));
    }
    if result > b.result {
        return Err(format!(
            "its result is {result} bytes, over this call's memory limit of {}",
            b.result
        ));
    }
    if inputs > b.inputs {
        return Err(format!(
            "its inputs are {inputs} bytes, this call's {}",
            b.inputs
        ));
    }
    if config > MAX_CONFIG {
        return Err(format!("its {CONFIG} is {config} bytes, over {MAX_CONFIG}"));
    }
    Ok(())
}

/// Remove from `shared` every copy but those of hosts still `alive`:
/// copies of processes that died, and anything else left there.
pub(crate) fn sweep(shared: &Path, alive: &dyn Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(shared) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let owner = name.to_str().and_then(owner);
        if owner.is_some_and(alive) {
            continue;
        }
        let path = e.path();
        let gone = match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        match gone {
            Ok(()) => tracing::info!("removed {}, a copy no process uses", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("removing {}: {e}", path.display()),
        }
    }
}

/// The host that made the copy named `name` (`<pid>-<t>-<n>`).
fn owner(name: &str) -> Option<&str> {
    let (host, n) = name.rsplit_once('-')?;
    let (pid, t) = host.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(t) && digits(n)).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ManifestFile;

    fn entry(sizes: &[(&str, u64)]) -> Manifest {
        Manifest {
            format: 1,
            run: "r".into(),
            files: sizes
                .iter()
                .map(|(p, size)| ManifestFile {
                    path: p.to_string(),
                    size: *size,
                    sha256: "0a".repeat(32),
                })
                .collect(),
        }
    }

    const B: Bounds = Bounds {
        output: 100,
        result: 10,
        inputs: 5,
    };

    fn run(stdout: u64, extra: Option<&str>) -> Manifest {
        let mut files = vec![
            (CONFIG, 500),
            (INPUTS, 5),
            (RESULT, 2),
            (STDOUT, stdout),
            (STDERR, 10),
        ];
        if let Some(p) = extra {
            files.push((p, 1));
        }
        entry(&files)
    }

    #[test]
    fn an_entry_fits_only_within_what_the_call_could_make() {
        fits(&run(90, None), &B).unwrap();
        let e = fits(&run(91, None), &B).unwrap_err();
        assert!(e.contains("101 bytes") && e.contains("cap of 100"), "{e}");
        assert!(fits(&run(1, Some("scratch/x")), &B).is_err());
        assert!(fits(&entry(&[(CONFIG, 1), (RESULT, 1)]), &B).is_err());
        let mut big = run(1, None);
        big.files[2].size = 11;
        assert!(fits(&big, &B).unwrap_err().contains("result"));
        big = run(1, None);
        big.files[1].size = 6;
        assert!(fits(&big, &B).unwrap_err().contains("inputs"));
        big = run(1, None);
        big.files[3].size = u64::MAX;
        assert!(fits(&big, &B).is_err(), "no overflow");
    }

    #[test]
    fn a_sweep_keeps_the_copies_of_live_hosts_only() {
        let d = tempfile::tempdir().unwrap();
        for n in ["11-22-0", "11-22-1", "33-44-0", "ab12cd", ".pull-x-1"] {
            std::fs::create_dir(d.path().join(n)).unwrap();
            std::fs::write(d.path().join(n).join("stdout"), b"x").unwrap();
        }
        std::fs::write(d.path().join("stray"), b"x").unwrap();
        sweep(d.path(), &|host| host == "11-22");
        let mut left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["11-22-0", "11-22-1"]);
    }

    #[test]
    fn a_copy_is_removed_when_dropped() {
        let d = tempfile::tempdir().unwrap();
        let c = Copy::new(d.path(), "1-2").unwrap();
        std::fs::write(c.dir.join("stdout"), b"x").unwrap();
        assert_eq!(
            owner(c.dir.file_name().unwrap().to_str().unwrap()),
            Some("1-2")
        );
        drop(c);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
