//! `serve`: parse the daemon's options, start logging, run it.

use crate::cli::ServeArgs;
use crate::config;
use crate::errors::UsageError;
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
    let connections = connection_limits(&a)?;
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
    let duration = |flag: &str, v: &str| {
        rh_runtime::parse_duration(v).map_err(|e| UsageError(format!("--{flag} {e}")))
    };
    let grace = duration("grace", &a.grace)?;
    let name = a.name.unwrap_or_else(|| {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    });
    rh_runtime::validate_name("cluster", &name)?;
    let memory_total = match &a.memory_total {
        Some(v) => {
            let total = size("memory-total", v)?;
            let call = rh_runtime::Limits::default().memory;
            if total < call {
                return Err(UsageError(format!(
                    "--memory-total {v} is below the memory limit a call gets by default \
                     ({call} bytes): no such call could run"
                ))
                .into());
            }
            Some(total)
        }
        None => None,
    };
    let nats = match &a.nats {
        Some(url) => Some(server::hosts::NatsOptions {
            url: url.clone(),
            creds: a.nats_creds.clone(),
            slots: match a.slots {
                Some(0) => return Err(UsageError("--slots must be at least 1".into()).into()),
                Some(n) => n,
                None => 64,
            },
            host: server::hosts::host_name(&root, a.host_name.as_deref())?,
            advertise: a.advertise.clone(),
        }),
        None => None,
    };
    server::serve(ServeOptions {
        nats,
        metrics_addr: a.metrics_addr,
        addr: a.addr,
        root,
        token,
        users: a.users.clone(),
        name,
        grace,
        max_component: size("max-component", &a.max_component)?,
        max_request: size("max-request", &a.max_request)?,
        scratch_limit: size("scratch-limit", &a.scratch_limit)?,
        disk_reserve: a
            .disk_reserve
            .as_deref()
            .map(|v| size("disk-reserve", v))
            .transpose()?,
        memory_total,
        cache: a.cache,
        cache_ttl: a
            .cache_ttl
            .as_deref()
            .map(|d| {
                rh_runtime::parse_duration(d)
                    .map_err(|e| crate::errors::UsageError(format!("--cache-ttl {e}")))
            })
            .transpose()?,
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
        connections,
        retain: match (&a.retain, a.retain_last) {
            (None, None) => None,
            (older, keep_last) => {
                let req = rh_runtime::GcRequest {
                    older_than: older
                        .as_deref()
                        .map(|d| duration("retain", d))
                        .transpose()?,
                    keep_last,
                    pace: true,
                    ..Default::default()
                };
                Some((req, duration("retain-every", &a.retain_every)?))
            }
        },
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// `--header-timeout`, `--idle-timeout` and `--max-connections`.
fn connection_limits(a: &ServeArgs) -> Result<server::Limits, UsageError> {
    let timeout = |flag: &str, v: &str| match rh_runtime::parse_duration(v) {
        Ok(d) if d.is_zero() => Err(UsageError(format!("--{flag} must be more than 0"))),
        Ok(d) => Ok(d),
        Err(e) => Err(UsageError(format!("--{flag} {e}"))),
    };
    let max_connections = match a.max_connections {
        Some(0) => return Err(UsageError("--max-connections must be at least 1".into())),
        Some(n) => n,
        None => server::default_max_connections(),
    };
    // Past the open-file limit, the cap is never reached: accepting fails
    // first (and backs off).
    if let Some(fds) = server::open_file_limit()
        && u64::try_from(max_connections).is_ok_and(|n| n >= fds)
    {
        tracing::warn!(
            "--max-connections {max_connections} is not below the open-file limit ({fds}): \
             the daemon may run out of descriptors before it reaches it"
        );
    }
    Ok(server::Limits {
        header_timeout: timeout("header-timeout", &a.header_timeout)?,
        idle_timeout: timeout("idle-timeout", &a.idle_timeout)?,
        max_connections,
    })
}
