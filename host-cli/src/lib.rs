//! The `rh-wasm` command line and host daemon, as a library: the binary is
//! [`run`]; the fuzz targets drive the daemon's request handling through
//! [`serve_for_fuzzing`].
//!
//! The crate's parts. Each imports only parts listed below it, so no two
//! import each other:
//!
//! ```text
//! commands   one module per verb: parse its arguments, call the cluster,
//!            print
//! cli        the command line, as clap types (argument parsing only)
//! cluster    the Cluster trait, every verb once, and its two
//!            implementations: local (rh_runtime::Runtime in this process,
//!            with the `__worker` process behind `run` on local) and
//!            remote (a daemon, through the client)
//! client     the HTTP client for a daemon: typed JSON in and out, streams
//! server     `rh-wasm serve`, the daemon: routes (the route table and one
//!            handler module per resource), errors (ApiError: runtime
//!            errors as statuses), json (bounded bodies), conn
//!            (connection limits and timeouts)
//! wire       what travels between the client and the daemon: request
//!            bodies, answers (RunAnswer, DeploymentInfo...), stream frames
//! users      a daemon's users file (names and token hashes)
//! config     the client's list of clusters
//! output     `--json` printing
//! errors     the CLI's errors (UsageError, RemoteError) and exit codes
//! ```
//!
//! `main.rs` only calls [`run`], which parses, dispatches to `commands`
//! and maps errors to exit codes.
#![forbid(unsafe_code)]

mod cli;
mod client;
mod cluster;
mod commands;
mod config;
mod errors;
mod output;
mod server;
mod users;
mod wire;

use clap::Parser;
use std::process::ExitCode;

/// Parse the command line, dispatch, and map errors to exit codes: 0 on
/// success, 1 when a Run ended in error or was cancelled, 2 for a bad
/// request (bad input, unknown name, invalid component), 3 for anything else.
pub fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    let json = cli.json;
    // The daemon sets up its own log; a command says only what is wrong
    // (`RH_LOG=info` for more).
    if !matches!(cli.command, cli::Command::Serve(_)) {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("RH_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_writer(std::io::stderr)
            .without_time()
            .with_target(false)
            .init();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match rt.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            let code = errors::exit_code(&e);
            if json {
                let v = serde_json::json!({ "error": format!("{e:#}"), "kind": errors::error_kind(&e) });
                println!("{v}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(code)
        }
    }
}

/// Serve the daemon's API on `addr` with a root at `root` and the users
/// `(name, token, admin)`, until the process ends. For the fuzz targets,
/// which send it arbitrary requests in-process.
#[doc(hidden)]
pub async fn serve_for_fuzzing(
    addr: std::net::SocketAddr,
    root: std::path::PathBuf,
    users: &[(&str, &str, bool)],
) -> anyhow::Result<()> {
    let dir = root.with_extension("users");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("users.toml");
    for (name, token, admin) in users {
        let token_file = dir.join(format!("{name}.token"));
        std::fs::write(&token_file, token)?;
        users::add(&file, name, &token_file, *admin)?;
    }
    server::serve(server::ServeOptions {
        addr,
        root,
        token: None,
        users: Some(file),
        name: "fuzz".into(),
        grace: std::time::Duration::from_secs(1),
        max_component: 64 << 20,
        max_request: 1 << 20,
        scratch_limit: rh_runtime::Limits::DEFAULT_SCRATCH,
        disk_reserve: None,
        memory_total: None,
        cache: false,
        cache_ttl: None,
        durable: false,
        shared_store: None,
        connections: server::Limits {
            header_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: server::default_max_connections(),
        },
        retain: None,
        nats: None,
        metrics_addr: None,
    })
    .await
}
