//! `cluster add | list | remove`.

use crate::cli::ClusterCommand;
use crate::config::{self, ClusterEntry};
use crate::errors::UsageError;
use crate::output::print_json;
use anyhow::Result;
use std::process::ExitCode;

pub fn cluster(c: ClusterCommand, json: bool) -> Result<ExitCode> {
    let mut cfg = config::load()?;
    match c {
        ClusterCommand::Add {
            name,
            url,
            token_file,
        } => {
            rh_runtime::validate_name("cluster", &name)?;
            if name == "local" {
                return Err(
                    UsageError("`local` is built in and cannot be redefined".into()).into(),
                );
            }
            if !url.starts_with("http://") {
                return Err(UsageError(format!("`{url}`: the URL must start with http://")).into());
            }
            let token_file = match token_file {
                Some(f) => {
                    config::read_token(&f)?;
                    Some(std::fs::canonicalize(&f)?)
                }
                None => None,
            };
            cfg.clusters.insert(
                name.clone(),
                ClusterEntry {
                    url: url.clone(),
                    token_file,
                },
            );
            config::save(&cfg)?;
            if !json {
                println!("added cluster {name} at {url}");
            }
        }
        ClusterCommand::Remove { name } => {
            if cfg.clusters.remove(&name).is_none() {
                return Err(UsageError(format!("no cluster named `{name}`")).into());
            }
            config::save(&cfg)?;
            if !json {
                println!("removed cluster {name}");
            }
        }
        ClusterCommand::List => {
            if json {
                let mut v = serde_json::json!({ "local": { "url": null } });
                for (n, e) in &cfg.clusters {
                    v[n] = serde_json::to_value(e)?;
                }
                print_json(&v);
            } else {
                println!("local  (built in, ./rh)");
                for (n, e) in &cfg.clusters {
                    let auth = if e.token_file.is_some() {
                        " (token)"
                    } else {
                        ""
                    };
                    println!("{n}  {}{auth}", e.url);
                }
            }
        }
        ClusterCommand::Hosts { .. } => unreachable!("answered by `hosts`"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `cluster hosts NAME`: ask any host of the cluster.
pub async fn hosts(name: &str, json: bool) -> Result<ExitCode> {
    let cfg = config::load()?;
    let Some(e) = cfg.clusters.get(name) else {
        return Err(UsageError(format!(
            "no cluster named `{name}` (add one with `rh-wasm cluster add {name} URL`)"
        ))
        .into());
    };
    let token = match &e.token_file {
        Some(f) => Some(config::read_token(f)?),
        None => None,
    };
    let client = crate::client::Client::new(name, &e.url, token)?;
    let hosts: Vec<crate::server::hosts::HostInfo> = client.get("/v1/hosts").await?;
    if json {
        print_json(&hosts);
        return Ok(ExitCode::SUCCESS);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    println!("HOST  URL  SLOTS IN USE  QUEUED  LAST HEARTBEAT");
    for h in &hosts {
        println!(
            "{}  {}  {}/{}  {}  {} ms ago",
            h.name,
            h.url,
            h.slots_in_use,
            h.slots,
            h.queue_depth,
            now.saturating_sub(h.heartbeat_ms)
        );
    }
    Ok(ExitCode::SUCCESS)
}
