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
    }
    Ok(ExitCode::SUCCESS)
}
