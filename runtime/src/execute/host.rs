//! What a guest's Store holds: its WASI context, its limits, the sinks its
//! output goes to, and the host side of the `artifacts` interface.
//!
//! The WASI context starts closed (no files, env, args, network) and only
//! stdout and stderr are wired, each to the Run's file. The sink writes each
//! guest write straight to the file (no buffer, so `logs --follow` sees it at
//! once), counts bytes against the Run's output cap, and hands the bytes to
//! an optional observer (the CLI's terminal, a daemon's log stream).

use super::bindings::rh::wasm::artifacts;
use crate::access::{Access, ObjectKind};
use crate::artifacts::ArtifactStore;
use crate::config::ArtifactRef;
use bytes::Bytes;
use std::fs::File;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Which of a Run's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
}

/// A callback that sees every chunk of a Run's output as it is written.
pub type OutputObserver = Arc<dyn Fn(OutputKind, &[u8]) + Send + Sync>;

/// The guest tried to grow memory past its limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} bytes exceeded")]
pub(crate) struct MemoryLimitExceeded(pub u64);

/// The guest wrote more output than the cap.
#[derive(Debug, thiserror::Error)]
#[error("output limit of {0} bytes exceeded")]
pub(crate) struct OutputLimitExceeded(pub u64);

/// Writing the guest's output to the Run's file failed (a full disk, say):
/// the Run ends, rather than go on losing its output.
#[derive(Debug, thiserror::Error)]
#[error("could not write the Run's {stream}: {error}")]
pub(crate) struct OutputWriteFailed {
    pub stream: &'static str,
    pub error: String,
}

/// Why a write of guest output was refused.
pub(crate) enum OutputFault {
    Limit(OutputLimitExceeded),
    Write(OutputWriteFailed),
}

impl OutputFault {
    fn into_trap(self) -> wasmtime::Error {
        match self {
            OutputFault::Limit(e) => wasmtime::Error::new(e),
            OutputFault::Write(e) => wasmtime::Error::new(e),
        }
    }

    fn into_io(self) -> std::io::Error {
        match self {
            OutputFault::Limit(e) => std::io::Error::other(e),
            OutputFault::Write(e) => std::io::Error::other(e),
        }
    }
}

/// Byte budget shared by a Run's stdout and stderr, and the signal that
/// tells log followers there is more to read.
pub(crate) struct OutputBudget {
    written: AtomicU64,
    cap: u64,
    progress: tokio::sync::watch::Sender<u64>,
}

impl OutputBudget {
    /// The bytes written so far (past the cap included).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    pub fn new(cap: u64) -> (Arc<Self>, tokio::sync::watch::Receiver<u64>) {
        let (progress, rx) = tokio::sync::watch::channel(0);
        let budget = Arc::new(OutputBudget {
            written: AtomicU64::new(0),
            cap,
            progress,
        });
        (budget, rx)
    }
}

#[derive(Clone)]
pub(crate) struct Sink {
    file: Arc<File>,
    kind: OutputKind,
    budget: Arc<OutputBudget>,
    observer: Option<OutputObserver>,
}

impl Sink {
    pub fn new(
        file: File,
        kind: OutputKind,
        budget: Arc<OutputBudget>,
        observer: Option<OutputObserver>,
    ) -> Self {
        Sink {
            file: Arc::new(file),
            kind,
            budget,
            observer,
        }
    }

    /// Write what the budget allows; `Err` once the cap is passed.
    fn put(&self, bytes: &[u8]) -> Result<(), OutputFault> {
        let before = self
            .budget
            .written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let room = self.budget.cap.saturating_sub(before);
        let take = (bytes.len() as u64).min(room) as usize;
        if take > 0 {
            // A failed write to the Run's own file (disk full) ends the Run
            // with an error that says so: its record must not claim output
            // it lost.
            if let Err(e) = (&*self.file).write_all(&bytes[..take]) {
                return Err(OutputFault::Write(OutputWriteFailed {
                    stream: match self.kind {
                        OutputKind::Stdout => "stdout",
                        OutputKind::Stderr => "stderr",
                    },
                    error: e.to_string(),
                }));
            }
            if let Some(obs) = &self.observer {
                obs(self.kind, &bytes[..take]);
            }
            // Wake followers; they read the file, so a slow one costs the
            // guest nothing and misses nothing.
            self.budget.progress.send_replace(before + take as u64);
        }
        if take < bytes.len() {
            Err(OutputFault::Limit(OutputLimitExceeded(self.budget.cap)))
        } else {
            Ok(())
        }
    }
}

impl IsTerminal for Sink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Sink {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Sink {
    async fn ready(&mut self) {}
}

impl OutputStream for Sink {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.put(&bytes)
            .map_err(|e| StreamError::Trap(e.into_trap()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 20)
    }
}

impl tokio::io::AsyncWrite for Sink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(
            self.put(buf)
                .map(|()| buf.len())
                .map_err(OutputFault::into_io),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Memory limit over all of a Store's memories, reported as a typed error.
pub(crate) struct Limiter {
    limit: u64,
    inner: StoreLimits,
}

impl Limiter {
    pub fn new(limit: u64) -> Self {
        Limiter {
            limit,
            inner: StoreLimitsBuilder::new()
                .table_elements(1 << 20)
                .instances(64)
                .tables(64)
                .memories(16)
                .build(),
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded(self.limit)));
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// The calling Run's view of the artifact store.
pub(crate) struct ArtifactCtx {
    pub store: Arc<ArtifactStore>,
    pub run: String,
    pub upstream: Vec<ArtifactRef>,
    pub downstream: Vec<ArtifactRef>,
    /// The user the Run acts for, when users are checked.
    pub guard: Option<crate::access::Guard>,
}

impl ArtifactCtx {
    pub fn new(
        store: Arc<ArtifactStore>,
        run: String,
        guard: Option<crate::access::Guard>,
    ) -> Self {
        ArtifactCtx {
            store,
            run,
            upstream: Vec::new(),
            downstream: Vec::new(),
            guard,
        }
    }
}

/// Everything a guest's Store holds.
pub(crate) struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: Limiter,
    pub artifacts: ArtifactCtx,
}

/// The most handles (streams, files, pollables...) a guest may hold at
/// once. Each lives in host memory outside the guest's memory limit, so
/// without a cap a guest could grow the host by ~150 bytes a handle
/// (Wasmtime's default cap, 100,000, let one Run add 15 MiB).
pub(crate) const MAX_HANDLES: usize = 10_000;

impl HostState {
    pub fn new(wasi: WasiCtx, memory: u64, artifacts: ArtifactCtx) -> HostState {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        HostState {
            wasi,
            table,
            limiter: Limiter::new(memory),
            artifacts,
        }
    }

    /// A Store for one guest instance, its memory, tables and handles
    /// limited.
    pub fn into_store(self, engine: &wasmtime::Engine) -> wasmtime::Store<HostState> {
        let mut store = wasmtime::Store::new(engine, self);
        store.limiter(|s| &mut s.limiter);
        store.set_max_component_handles(MAX_HANDLES);
        store
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn push_unique(list: &mut Vec<ArtifactRef>, r: ArtifactRef) {
    if !list.contains(&r) {
        list.push(r);
    }
}

impl artifacts::Host for HostState {
    fn load(&mut self, name: String) -> Result<Vec<u8>, String> {
        // Bytes past the guest's memory limit could never be copied into
        // it: refuse them before the host reads them.
        let max = self.limiter.limit;
        let a = &mut self.artifacts;
        let allow = |art: &crate::Artifact| {
            crate::access::require_if(
                a.guard.as_ref(),
                ObjectKind::Artifact,
                &art.name,
                art.creator.as_deref(),
                Access::Read,
                "loading it",
            )
        };
        match a.store.load_within(&name, None, &allow, max) {
            Ok((bytes, r)) => {
                push_unique(&mut a.upstream, r);
                Ok(bytes)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn save(&mut self, name: String, data: Vec<u8>) -> Result<(), String> {
        let a = &mut self.artifacts;
        let guard = a.guard.clone();
        let allow = |art: &crate::Artifact| {
            crate::access::require_if(
                guard.as_ref(),
                ObjectKind::Artifact,
                &art.name,
                art.creator.as_deref(),
                Access::Write,
                "saving a new version",
            )
        };
        let creator = guard.as_ref().map(|g| g.user.name.as_str());
        match a.store.save(&name, &data, Some(&a.run), creator, &allow) {
            Ok(r) => {
                push_unique(&mut a.downstream, r);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}
