//! Slow host work (compiling a component, hashing or streaming large Run
//! files) on threads of their own, at a lower CPU priority than the async
//! workers that answer requests and run guests.
//!
//! Moving such work off the async workers is not enough on a small machine:
//! two compiles and four 1 GiB reads keep every core busy, and a worker
//! woken for `GET /v1/health` then waits its turn behind them. At nice
//! [`NICE`] the kernel hands a waking worker the core at once, so the slow
//! work only takes what is left. Linux applies a nice value to one thread
//! (`setpriority(PRIO_PROCESS, 0)`), and an unprivileged thread cannot raise
//! its priority back, so each job gets a fresh thread rather than a pooled
//! one, which would stay lowered. Wasmtime compiles functions in parallel
//! on rayon's global pool: its threads are lowered too, when the engine
//! builds that pool.

use crate::{Error, Result};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// The nice value of background threads (0 is normal, 19 the lowest).
pub const NICE: i32 = 10;

/// Background jobs at once; more wait for a turn.
const JOBS: usize = 64;

fn permits() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(Semaphore::new(JOBS)))
}

/// Lower the calling thread's CPU priority to [`NICE`]. Best effort: a
/// system that refuses leaves the thread as it was.
pub fn lower_priority() {
    let _ = rustix::process::setpriority_process(None, NICE);
}

/// Build rayon's global pool (where Wasmtime compiles in parallel) with
/// lowered threads, unless something built it already.
pub(crate) fn lower_compile_threads() {
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("rh-compile-{i}"))
        .start_handler(|_| lower_priority())
        .build_global();
}

/// Run `f` on a lowered thread of its own and wait for its answer.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let permit = permits()
        .clone()
        .acquire_owned()
        .await
        .expect("the background permits are never closed");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("rh-background".into())
        .spawn(move || {
            let _permit = permit;
            lower_priority();
            let _ = tx.send(f());
        })
        .map_err(|e| Error::Engine(format!("starting a background thread: {e}")))?;
    rx.await
        .map_err(|_| Error::Engine("a background job panicked".into()))?
}

/// Start `f` on a lowered thread of its own without waiting for it (a
/// stream that feeds a response body at the client's pace). It takes no
/// turn among the [`run`] jobs, so slow clients cannot hold up compiles
/// or listings; streams are bounded by the daemon's connections, and a
/// stream must give up on a client that stops reading.
pub fn spawn(f: impl FnOnce() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("rh-background".into())
        .spawn(move || {
            lower_priority();
            f();
        });
    if let Err(e) = spawned {
        tracing::warn!("starting a background thread: {e}");
    }
}
