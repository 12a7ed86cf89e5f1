//! `share`, `unshare`, `shares`, `delete` and `users add`.

use super::cluster_and_name;
use crate::cluster;
use crate::output::{print_json, print_record};
use crate::wire::ShareBody;
use anyhow::Result;
use rh_runtime::ObjectKind;
use std::path::Path;
use std::process::ExitCode;

/// Grant (`access` Some) or take back (None) access for each user.
pub async fn share(
    cluster_name: &str,
    name: &str,
    with: &[String],
    access: Option<&str>,
    kind: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let c = cluster::open(cluster_name)?;
    let mut out = Vec::new();
    for user in with {
        let body = ShareBody {
            name: name.to_string(),
            kind: kind.map(str::to_string),
            user: user.clone(),
            access: access.map(str::to_string),
        };
        let done = match access {
            Some(a) => {
                let granted = c.share(&body).await?;
                if !json {
                    println!("{user} has {a} access to {} `{name}`", granted.kind);
                }
                serde_json::to_value(granted)?
            }
            None => {
                let taken = c.unshare(&body).await?;
                let what = format!("{} `{name}`", taken.kind);
                if !json && taken.removed {
                    println!("{user} no longer has access to {what}");
                } else if !json {
                    println!("{user} had no access to {what} given by share");
                }
                serde_json::to_value(taken)?
            }
        };
        out.push(done);
    }
    if json {
        print_json(&out);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(cluster_name: &str, json: bool) -> Result<ExitCode> {
    let shares: Vec<_> = cluster::open(cluster_name)?
        .shares()
        .await?
        .into_iter()
        .filter(|s| s.kind != ObjectKind::Component)
        .collect();
    if json {
        print_record(&shares);
        return Ok(ExitCode::SUCCESS);
    }
    if shares.is_empty() {
        eprintln!("nothing shared on `{cluster_name}`");
        return Ok(ExitCode::SUCCESS);
    }
    let w = shares
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:8}  {:w$}  {:16}  ACCESS", "KIND", "NAME", "USER");
    for s in &shares {
        println!(
            "{:8}  {:w$}  {:16}  {}",
            s.kind.to_string(),
            s.name,
            s.user,
            s.access
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn delete(args: &[String], cluster: &str, kind: &str, json: bool) -> Result<ExitCode> {
    let (c, name) = cluster_and_name(args, cluster)?;
    let kind: ObjectKind = kind.parse()?;
    cluster::open(&c)?.delete(kind, &name).await?;
    if json {
        print_json(&serde_json::json!({ "deleted": name, "kind": kind }));
    } else {
        println!("deleted {kind} `{name}` from `{c}`");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn add_user(
    file: &Path,
    name: &str,
    token_file: &Path,
    admin: bool,
    json: bool,
) -> Result<ExitCode> {
    let existed = token_file.exists();
    crate::users::add(file, name, token_file, admin)?;
    if json {
        print_json(&serde_json::json!({
            "user": name, "admin": admin, "users_file": file, "token_file": token_file,
        }));
    } else {
        let how = if existed {
            "its token"
        } else {
            "a new token, written to"
        };
        println!(
            "added {name}{} to {} with {how} {}",
            if admin { " (admin)" } else { "" },
            file.display(),
            token_file.display()
        );
        println!(
            "give {name} the token file; they run: rh-wasm cluster add NAME http://HOST:PORT --token-file {}",
            token_file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
