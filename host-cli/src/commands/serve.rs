//! `serve`: parse the daemon's options, start logging, run it.

use crate::cli::ServeArgs;
use crate::config;
use crate::output::UsageError;
use crate::server::{self, ServeOptions};
use anyhow::{Context, Result};
use std::process::ExitCode;

pub async fn serve(a: ServeArgs) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let root = match a.root {
        Some(r) => r,
        None => std::path::PathBuf::from(
            std::env::var_os("HOME").context("HOME is not set; pass --root")?,
        )
        .join(".rh"),
    };
    let token = match &a.token_file {
        Some(f) => Some(config::read_token(f)?),
        None => None,
    };
    let size = |flag: &str, v: &str| {
        rh_runtime::parse_size(v).map_err(|e| UsageError(format!("--{flag} {e}")))
    };
    let grace =
        rh_runtime::parse_duration(&a.grace).map_err(|e| UsageError(format!("--grace {e}")))?;
    let name = a.name.unwrap_or_else(|| {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    });
    rh_runtime::validate_name("cluster", &name)?;
    server::serve(ServeOptions {
        addr: a.addr,
        root,
        token,
        users: a.users.clone(),
        name,
        grace,
        max_component: size("max-component", &a.max_component)?,
        max_request: size("max-request", &a.max_request)?,
        cache: a.cache,
        durable: a.durable,
        shared_store: match (&a.shared_store, &a.shared_store_key) {
            (Some(url), Some(key)) => Some(
                rh_runtime::RemoteStore::open(url, a.endpoint.as_deref())?
                    .signed_with(rh_runtime::TeamKey::read(key)?),
            ),
            (Some(_), None) => {
                return Err(UsageError(
                    "--shared-store needs --shared-store-key FILE, the team's secret \
                 (make one with `head -c 32 /dev/urandom > team.key`): a bucket the \
                 team can write is not trusted to hand out results unsigned"
                        .into(),
                )
                .into());
            }
            (None, _) => None,
        },
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
