//! Connections: how many the daemon holds at once, how long each may keep
//! a slot without asking anything, and how accepting rides out a shortage
//! of file descriptors.
//!
//! - **A cap** (`--max-connections`). Each connection holds a permit of one
//!   semaphore, taken *before* `accept`: at the cap the daemon stops
//!   accepting and new clients wait in the kernel's backlog until a slot
//!   frees. The timeouts below make sure one does.
//! - **Two timeouts**, kept by a [`Timer`] raced against each connection. A
//!   new connection must deliver its first request head within
//!   `--header-timeout`; a connection with no request in flight is closed
//!   `--idle-timeout` after its last answer ended (its next request head
//!   must be in by then). A request in flight is never cut, however long
//!   its answer runs (a long call, a streamed call, `logs --follow`): the
//!   answer's body holds an [`InFlight`] guard until hyper drops it.
//!   hyper's own `header_read_timeout` is not used because it restarts
//!   after every answer, so it would also close idle keep-alive
//!   connections at the header timeout.
//! - **Accept errors** other than a client's own (out of descriptors:
//!   EMFILE, ENFILE; out of memory) back off, 10 ms doubling to 1 s, and
//!   are logged at most once a second, each line counting the ones not
//!   logged: a daemon out of descriptors would otherwise spin on `accept`
//!   and fill its log.

use crate::wire::BoxBody;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

/// The first wait after an accept error, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one log line about accept errors per this long.
const LOG_EVERY: Duration = Duration::from_secs(1);
/// The default cap when the open-file limit allows more.
const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// How long connections may wait, and how many there may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// The default cap: half the soft open-file limit, at most 512. The other
/// half stays for what Runs open (their files, components, the store), so
/// connections alone never run the daemon out of descriptors; 512 idle
/// connections cost a few tens of MiB of buffers at most.
pub fn default_max_connections() -> usize {
    match open_file_limit() {
        Some(n) => usize::try_from(n / 2)
            .unwrap_or(usize::MAX)
            .clamp(1, DEFAULT_MAX_CONNECTIONS),
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

/// The soft limit on open files, if there is one.
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Hands out accepted connections, each with its slot under the cap.
pub struct Acceptor {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    backoff: Duration,
    log: ErrorLog,
}

impl Acceptor {
    pub fn new(listener: TcpListener, max_connections: usize) -> Acceptor {
        Acceptor {
            listener,
            slots: Arc::new(Semaphore::new(max_connections)),
            backoff: FIRST_BACKOFF,
            log: ErrorLog::default(),
        }
    }

    /// The next connection and its slot (dropping the slot frees it).
    /// Waits for a free slot first. Cancel-safe: dropped early, it takes
    /// nothing.
    pub async fn next(&mut self) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    self.backoff = FIRST_BACKOFF;
                    self.log.recovered();
                    return (stream, peer, slot);
                }
                // One client's trouble says nothing about the daemon.
                Err(e) if clients_own(&e) => tracing::debug!("accept: {e}"),
                Err(e) => {
                    self.log.failed(&e, self.backoff);
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

fn clients_own(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Accept errors, logged at most once per [`LOG_EVERY`].
#[derive(Default)]
struct ErrorLog {
    last: Option<std::time::Instant>,
    unlogged: u64,
}

impl ErrorLog {
    fn due(&self) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= LOG_EVERY)
    }

    fn failed(&mut self, e: &io::Error, wait: Duration) {
        if !self.due() {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(
            not_logged = self.unlogged,
            "accepting a connection failed: {e}; trying again in {wait:?}"
        );
        self.last = Some(std::time::Instant::now());
        self.unlogged = 0;
    }

    fn recovered(&mut self) {
        if self.unlogged > 0 && self.due() {
            tracing::info!(not_logged = self.unlogged, "accepting connections again");
            self.last = Some(std::time::Instant::now());
            self.unlogged = 0;
        }
    }
}

/// What one connection is doing, as its [`Timer`] needs to know.
#[derive(Debug, Clone, Copy)]
struct Phase {
    /// Requests whose answer hyper has not finished sending.
    in_flight: usize,
    /// Since when nothing has been in flight.
    since: Instant,
    /// Whether a request was answered: then the idle timeout applies,
    /// else the header timeout.
    answered: bool,
}

/// One connection's deadline, moved by the requests it serves.
pub struct Timer {
    phase: watch::Sender<Phase>,
}

impl Timer {
    pub fn new() -> Arc<Timer> {
        Arc::new(Timer {
            phase: watch::Sender::new(Phase {
                in_flight: 0,
                since: Instant::now(),
                answered: false,
            }),
        })
    }

    /// A request's head has arrived: no timeout until its answer is sent.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.phase.send_modify(|p| p.in_flight += 1);
        InFlight(self.clone())
    }

    /// Resolves when the connection has waited too long for a request.
    pub async fn expired(&self, limits: Limits) {
        let mut phase = self.phase.subscribe();
        loop {
            let p = *phase.borrow_and_update();
            let changed = phase.changed();
            if p.in_flight > 0 {
                // The sender lives as long as `self`: this cannot fail.
                let _ = changed.await;
                continue;
            }
            let wait = if p.answered {
                limits.idle_timeout
            } else {
                limits.header_timeout
            };
            tokio::select! {
                () = tokio::time::sleep_until(p.since + wait) => return,
                _ = changed => {}
            }
        }
    }
}

/// A request in flight on a connection; dropping it ends it.
pub struct InFlight(Arc<Timer>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.phase.send_modify(|p| {
            p.in_flight -= 1;
            if p.in_flight == 0 {
                p.since = Instant::now();
                p.answered = true;
            }
        });
    }
}

/// An answer's body that keeps its request in flight until hyper has sent
/// it all (or given up) and drops it.
pub fn held(body: BoxBody, request: InFlight) -> BoxBody {
    Held {
        body,
        _request: request,
    }
    .boxed()
}

struct Held {
    body: BoxBody,
    _request: InFlight,
}

impl Body for Held {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
