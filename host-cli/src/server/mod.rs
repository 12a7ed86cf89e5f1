//! `rh-wasm serve`: the host daemon, a thin HTTP layer over `rh-runtime`.
//!
//! HTTP/1.1 on hyper. Every request must carry a bearer token when the
//! daemon has one (`--token-file`) or has users (`--users`); one of them
//! must be set to listen beyond loopback. With users, the token says who
//! is asking, and the request acts as that user: the runtime checks what
//! they may do (the daemon itself checks nothing but the token). `SIGHUP`
//! reads the users file again. Connections are capped and timed out
//! (`conn`). On SIGTERM or ctrl-c the daemon stops accepting, lets running
//! Runs finish for a grace period, cancels what is left, and exits with
//! every Run terminal.
//!
//! - `routes`: the route table and one handler module per resource;
//! - `errors`: `ApiError`, runtime errors as statuses;
//! - `json`: JSON request bodies, bounded once parsed;
//! - `conn`: connection limits and timeouts.

mod conn;
mod dashboard;
mod errors;
pub mod hosts;
mod json;
mod metrics;
mod routes;

pub use conn::{Limits, default_max_connections, open_file_limit};

use crate::users::Users;
use anyhow::{Context, Result, bail};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use rh_runtime::{Runtime, RuntimeOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

/// How the daemon was started.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub root: PathBuf,
    pub token: Option<String>,
    /// The users file (`--users`), instead of one shared token.
    pub users: Option<PathBuf>,
    pub name: String,
    pub grace: Duration,
    pub max_component: u64,
    pub max_request: u64,
    /// A command Run's scratch limit: the default and the most it may ask.
    pub scratch_limit: u64,
    /// Free disk space to keep (`None`: the runtime's default).
    pub disk_reserve: Option<u64>,
    /// The memory budget of all running guests (`None`: the runtime's
    /// default, half of this machine's memory).
    pub memory_total: Option<u64>,
    pub cache: bool,
    /// The oldest a cached answer may be, unless a call says otherwise.
    pub cache_ttl: Option<std::time::Duration>,
    pub durable: bool,
    pub shared_store: Option<rh_runtime::RemoteStore>,
    /// Timeouts and the cap on connections.
    pub connections: Limits,
    /// Retention applied periodically (`--retain`, `--retain-last`), and
    /// how often.
    pub retain: Option<(rh_runtime::GcRequest, Duration)>,
    /// Join a cluster of several hosts through NATS.
    pub nats: Option<hosts::NatsOptions>,
    /// A second, loopback listener for `/metrics` (and `/healthz`) alone,
    /// without a token.
    pub metrics_addr: Option<SocketAddr>,
}

/// Apply a retention policy now and then every `every`, off the async
/// workers, logging what it removed.
async fn retention(
    rt: Runtime,
    req: rh_runtime::GcRequest,
    every: Duration,
    metrics: Arc<metrics::Metrics>,
) {
    loop {
        let (r, q) = (rt.clone(), req.clone());
        match rh_runtime::background::run(move || r.gc(&rh_runtime::Caller::host(), &q)).await {
            Ok(report) if report.runs_removed > 0 => {
                metrics.gc_removed(report.runs_removed);
                tracing::info!(
                    runs = report.runs_removed,
                    bytes = report.run_bytes,
                    producers_kept = report.producers_kept,
                    "retention removed {} Runs",
                    report.runs_removed
                )
            }
            Ok(_) => tracing::debug!("retention: nothing to remove"),
            Err(e) => tracing::warn!("retention: {e}"),
        }
        tokio::time::sleep(every).await;
    }
}

/// State shared by every request.
pub struct State {
    pub rt: Runtime,
    pub auth: Auth,
    pub max_component: u64,
    pub max_request: u64,
    /// How long a request body may stall: see `routes::body`.
    pub body_grace: Duration,
    /// This host's part in a cluster of several (`--nats`).
    pub cluster: Option<Arc<hosts::Cluster>>,
    /// The dashboard's signed-in browsers.
    pub sessions: dashboard::Sessions,
    /// The port this daemon listens on (names its session cookie).
    pub port: u16,
    /// What `/metrics` exports.
    pub metrics: Arc<metrics::Metrics>,
}

/// Who may send requests.
pub enum Auth {
    /// Anyone (loopback only).
    Open,
    /// Whoever has the one token: full access.
    Token(String),
    /// Users by token, each with their own access; the file to read again.
    Users(PathBuf, RwLock<Arc<Users>>),
}

pub async fn serve(opts: ServeOptions) -> Result<()> {
    if opts.token.is_none() && opts.users.is_none() && !opts.addr.ip().is_loopback() {
        bail!(
            "refusing to listen on {} without a token: pass --token-file or --users, or listen on 127.0.0.1",
            opts.addr
        );
    }
    let auth = match (&opts.users, &opts.token) {
        (Some(_), Some(_)) => bail!("--users and --token-file do not go together"),
        (Some(path), None) => {
            let users = Users::load(path)?;
            tracing::info!(users = users.len(), file = %path.display(), "users");
            Auth::Users(path.clone(), RwLock::new(Arc::new(users)))
        }
        (None, Some(t)) => Auth::Token(t.clone()),
        (None, None) => Auth::Open,
    };
    if let Some(m) = opts.metrics_addr
        && !m.ip().is_loopback()
    {
        bail!("--metrics-addr {m}: metrics are served without a token, on loopback only");
    }
    let metrics = metrics::Metrics::new();
    let mut ropts = RuntimeOptions::new(&opts.root).limits(rh_runtime::Limits {
        scratch: Some(opts.scratch_limit),
        ..Default::default()
    });
    if let Some(store) = opts.shared_store.clone() {
        ropts = ropts.shared_store(store);
    }
    if let Some(reserve) = opts.disk_reserve {
        ropts = ropts.disk_reserve(reserve);
    }
    if let Some(total) = opts.memory_total {
        ropts = ropts.memory_total(total);
    }
    if let Some(ttl) = opts.cache_ttl {
        ropts = ropts.cache_ttl(ttl);
    }
    let rt = Runtime::open_with(
        ropts
            .runs_dir(opts.root.join("logs"))
            .cluster(opts.name.clone())
            .cache(opts.cache)
            .durable(opts.durable)
            .watch(metrics.watcher()),
    )
    .with_context(|| format!("opening the daemon root {}", opts.root.display()))?;
    if let Some((req, every)) = opts.retain.clone() {
        tokio::spawn(retention(rt.clone(), req, every, metrics.clone()));
    }
    let listener = TcpListener::bind(opts.addr)
        .await
        .with_context(|| format!("listening on {}", opts.addr))?;
    let addr = listener.local_addr()?;
    // Watched from before the first line says where: a SIGTERM sent as
    // soon as that line is read is a graceful stop, not a kill.
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    // The first line on stdout says where: tools (and tests) read it.
    println!(
        "rh-wasm serve: listening on http://{addr} (root {})",
        opts.root.display()
    );
    use std::io::Write;
    std::io::stdout().flush()?;
    tracing::info!(%addr, root = %opts.root.display(), "listening");

    let cluster = match &opts.nats {
        Some(n) => {
            let store = opts.shared_store.as_ref().context(
                "a cluster of several hosts needs --shared-store s3://... (components, large bodies)",
            )?;
            let mut n = n.clone();
            n.advertise.get_or_insert_with(|| format!("http://{addr}"));
            Some(hosts::Cluster::join(&n, &opts.name, store, rt.clone()).await?)
        }
        None => None,
    };
    let state = Arc::new(State {
        rt: rt.clone(),
        auth,
        max_component: opts.max_component,
        max_request: opts.max_request,
        body_grace: opts.connections.header_timeout,
        cluster: cluster.clone(),
        sessions: Default::default(),
        port: addr.port(),
        metrics: metrics.clone(),
    });
    if let Some(m) = opts.metrics_addr {
        let l = TcpListener::bind(m)
            .await
            .with_context(|| format!("listening on --metrics-addr {m}"))?;
        tracing::info!(addr = %l.local_addr()?, "metrics listening");
        tokio::spawn(metrics_listener(l, state.clone()));
    }
    if let Some(c) = &cluster {
        c.start(&state).await?;
    }
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal(term));
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("watching for SIGHUP")?;
    let limits = opts.connections;
    let mut acceptor = conn::Acceptor::new(listener, limits.max_connections);
    loop {
        tokio::select! {
            _ = hangup.recv() => reload_users(&state),
            (stream, peer, slot) = acceptor.next() => {
                let _ = stream.set_nodelay(true);
                let timer = conn::Timer::new();
                let state = state.clone();
                let svc = {
                    let timer = timer.clone();
                    service_fn(move |req| {
                        let request = timer.begin();
                        let answer = routes::handle(state.clone(), peer, req);
                        async move {
                            let resp = answer.await?;
                            Ok::<_, std::convert::Infallible>(
                                resp.map(|body| conn::held(body, request)),
                            )
                        }
                    })
                };
                // A client may shut its side down once the request is sent
                // and still expects the answer (found by the http fuzz target).
                let conn = http1::Builder::new()
                    .half_close(true)
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    tokio::select! {
                        done = conn => if let Err(e) = done {
                            tracing::debug!("connection from {peer}: {e}");
                        },
                        () = timer.expired(limits) => {
                            tracing::debug!("connection from {peer}: timed out waiting for a request");
                        }
                    }
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(acceptor);
    tracing::info!("shutting down: no new connections");
    if let Some(c) = &cluster {
        c.stop_taking();
    }
    let active = rt.active_runs();
    if !active.is_empty() {
        tracing::info!(runs = active.len(), grace = ?opts.grace, "waiting for running Runs");
        if tokio::time::timeout(opts.grace, rt.wait_all())
            .await
            .is_err()
        {
            let left = rt.active_runs();
            tracing::warn!(runs = left.len(), "grace period over: cancelling");
            for name in left {
                let _ = rt.cancel(&rh_runtime::Caller::host(), &name).await;
            }
            rt.wait_all().await;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    if let Some(c) = &cluster {
        // Every Run here has ended and been told to the other hosts; then
        // they stop listing this one.
        c.drain(Duration::from_secs(10)).await;
        c.leave().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// `--metrics-addr`: `/metrics` and `/healthz`, nothing else, no token.
async fn metrics_listener(l: TcpListener, state: Arc<State>) {
    // A few scrapers at a time, each given 10 s: an idle connection
    // cannot hold a descriptor the daemon needs.
    let cap = Arc::new(tokio::sync::Semaphore::new(16));
    loop {
        let Ok(permit) = cap.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move {
                    let resp = match req.uri().path() {
                        "/metrics" => routes::metrics_page(&state),
                        "/healthz" => routes::respond(
                            hyper::StatusCode::OK,
                            "text/plain",
                            crate::wire::full(b"ok\n".to_vec()),
                        ),
                        _ => routes::respond(
                            hyper::StatusCode::NOT_FOUND,
                            "text/plain",
                            crate::wire::full(b"only /metrics and /healthz here\n".to_vec()),
                        ),
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let conn = http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
        });
    }
}

/// Read the users file again; a file with errors is reported and the
/// users known so far are kept.
fn reload_users(state: &State) {
    let Auth::Users(path, users) = &state.auth else {
        return;
    };
    match Users::load(path) {
        Ok(new) => {
            tracing::info!(users = new.len(), file = %path.display(), "users read again");
            *users.write().expect("users lock poisoned") = Arc::new(new);
        }
        Err(e) => tracing::error!("{e:#}; keeping the users read before"),
    }
}

async fn shutdown_signal(term: Option<tokio::signal::unix::Signal>) {
    let Some(mut term) = term else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
