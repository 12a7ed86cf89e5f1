//! `rh-wasm serve`: the host daemon, a thin HTTP layer over `rh-runtime`.
//!
//! HTTP/1.1 on hyper. Every request must carry a bearer token when the
//! daemon has one (`--token-file`) or has users (`--users`); one of them
//! must be set to listen beyond loopback. With users, the token says who
//! is asking, and each request is checked against what that user owns or
//! was given (see `rh_runtime::access`); `SIGHUP` reads the users file
//! again. On SIGTERM or
//! ctrl-c the daemon stops accepting, lets running Runs finish for a grace
//! period, cancels what is left, and exits with every Run terminal.

mod errors;
mod json;
mod routes;

pub use routes::answer;

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
    /// The memory budget of all running guests (`None`: the runtime's
    /// default, half of this machine's memory).
    pub memory_total: Option<u64>,
    pub cache: bool,
    pub durable: bool,
    pub shared_store: Option<rh_runtime::RemoteStore>,
}

/// State shared by every request.
pub struct State {
    pub rt: Runtime,
    pub auth: Auth,
    pub max_component: u64,
    pub max_request: u64,
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
    let mut ropts = RuntimeOptions::new(&opts.root);
    if let Some(store) = opts.shared_store.clone() {
        ropts = ropts.shared_store(store);
    }
    if let Some(total) = opts.memory_total {
        ropts = ropts.memory_total(total);
    }
    let rt = Runtime::open_with(
        ropts
            .runs_dir(opts.root.join("logs"))
            .cluster(opts.name.clone())
            .cache(opts.cache)
            .durable(opts.durable),
    )
    .with_context(|| format!("opening the daemon root {}", opts.root.display()))?;
    let listener = TcpListener::bind(opts.addr)
        .await
        .with_context(|| format!("listening on {}", opts.addr))?;
    let addr = listener.local_addr()?;
    // The first line on stdout says where: tools (and tests) read it.
    println!(
        "rh-wasm serve: listening on http://{addr} (root {})",
        opts.root.display()
    );
    use std::io::Write;
    std::io::stdout().flush()?;
    tracing::info!(%addr, root = %opts.root.display(), "listening");

    let state = Arc::new(State {
        rt: rt.clone(),
        auth,
        max_component: opts.max_component,
        max_request: opts.max_request,
    });
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("watching for SIGHUP")?;
    loop {
        tokio::select! {
            _ = hangup.recv() => reload_users(&state),
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => { tracing::warn!("accept: {e}"); continue; }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let svc = service_fn(move |req| routes::handle(state.clone(), peer, req));
                // A client may shut its side down once the request is sent
                // and still expects the answer (found by the http fuzz target).
                let conn = http1::Builder::new()
                    .half_close(true)
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections");
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
                let _ = rt.cancel(&name).await;
            }
            rt.wait_all().await;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    tracing::info!("stopped");
    Ok(())
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

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
