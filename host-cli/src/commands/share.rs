//! `share`, `unshare`, `shares`, `delete` and `users add`.

use crate::cluster::{self, Target};
use crate::errors::UsageError;
use crate::output::print_json;
use anyhow::Result;
use hyper::Method;
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
    let Target::Remote(c) = cluster::open(cluster_name)? else {
        return Err(UsageError(
            "the local cluster has no users to share with; share on a daemon started with --users"
                .into(),
        )
        .into());
    };
    let mut out = Vec::new();
    for user in with {
        let mut body = serde_json::json!({ "name": name, "user": user });
        if let Some(k) = kind {
            body["kind"] = k.into();
        }
        let path = match access {
            Some(a) => {
                body["access"] = a.into();
                "/v1/shares"
            }
            None => "/v1/shares/remove",
        };
        let v = c.json(Method::POST, path, Some(&body)).await?;
        if !json {
            let what = format!("{} `{}`", v["kind"].as_str().unwrap_or("?"), name);
            match access {
                Some(a) => println!("{user} has {a} access to {what}"),
                None if v["removed"] == true => println!("{user} no longer has access to {what}"),
                None => println!("{user} had no access to {what} given by share"),
            }
        }
        out.push(v);
    }
    if json {
        print_json(&out);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(cluster_name: &str, json: bool) -> Result<ExitCode> {
    let shares: Vec<rh_runtime::Share> = match cluster::open(cluster_name)? {
        Target::Local(_) => Vec::new(),
        Target::Remote(c) => {
            serde_json::from_value(c.json(Method::GET, "/v1/shares", None).await?)?
        }
    };
    let shares: Vec<_> = shares
        .into_iter()
        .filter(|s| s.kind != ObjectKind::Component)
        .collect();
    if json {
        print_json(&shares);
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
    let (c, name) = cluster::cluster_and_run(args, cluster)?;
    let kind: ObjectKind = kind.parse()?;
    match cluster::open(&c)? {
        Target::Local(rt) => rt.delete(&rh_runtime::Caller::host(), kind, &name)?,
        Target::Remote(client) => {
            rh_runtime::validate_name("object", &name)?;
            let route = match kind {
                ObjectKind::Function => "functions",
                ObjectKind::Artifact => "artifacts",
                _ => "runs",
            };
            client
                .json(Method::DELETE, &format!("/v1/{route}/{name}"), None)
                .await?;
        }
    }
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
