//! The history of Runs: `runs` (search, a page at a time), `gc`,
//! `cache clear` and `reindex`.

use crate::cli::{GcArgs, SearchArgs};
use crate::cluster;
use crate::errors::UsageError;
use crate::output::{print_json, print_record};
use anyhow::Result;
use rh_runtime::{GcRequest, RunQuery, RunStatus, format_size};
use std::process::ExitCode;

fn usage(flag: &str, e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(format!("{flag}: {e}")).into()
}

/// The search the flags ask for, every filter checked here.
fn query(a: &SearchArgs) -> Result<RunQuery> {
    let mut q = RunQuery::default().limit(a.limit);
    if let Some(s) = &a.status {
        q.status
            .push(s.parse::<RunStatus>().map_err(|e| usage("--status", e))?);
    }
    q.function = a.function.clone();
    if let Some(t) = &a.since {
        q.since = Some(rh_runtime::parse_when(t).map_err(|e| usage("--since", e))?);
    }
    if let Some(t) = &a.until {
        q.until = Some(rh_runtime::parse_when(t).map_err(|e| usage("--until", e))?);
    }
    q.creator = a.creator.clone();
    for t in &a.tags {
        q.tags
            .push(crate::wire::parse_tag(t).map_err(|e| usage("--tag", e))?);
    }
    q.parent = a.parent.clone();
    q.cursor = a.cursor.clone();
    q.check().map_err(|e| usage("runs", e))?;
    Ok(q)
}

pub async fn search(a: &SearchArgs, json: bool) -> Result<ExitCode> {
    let name = a.cluster.as_deref().unwrap_or("local");
    let q = query(a)?;
    let page = cluster::open(name)?.search(&q).await?;
    if json {
        print_record(&page);
        return Ok(ExitCode::SUCCESS);
    }
    if page.runs.is_empty() {
        eprintln!("no runs on `{name}` match");
        return Ok(ExitCode::SUCCESS);
    }
    let w = page
        .runs
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:w$}  {:10}  {:27}  {:27}  FUNCTION",
        "NAME", "STATUS", "START", "END"
    );
    for r in &page.runs {
        let f = match (&r.function, &r.fn_name) {
            (Some(f), Some(n)) if f.name == *n => f.name.clone(),
            (Some(f), Some(n)) => format!("{}/{n}", f.name),
            _ => String::new(),
        };
        println!(
            "{:w$}  {:10}  {:27}  {:27}  {f}",
            r.name,
            r.status.as_str(),
            r.start_time.as_deref().unwrap_or("-"),
            r.end_time.as_deref().unwrap_or("-"),
        );
    }
    if let Some(c) = &page.next_cursor {
        println!("next page: --cursor {c}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn gc(a: &GcArgs, json: bool) -> Result<ExitCode> {
    let name = a.cluster.as_deref().unwrap_or("local");
    let req = GcRequest {
        older_than: match &a.older_than {
            Some(d) => Some(rh_runtime::parse_duration(d).map_err(|e| usage("--older-than", e))?),
            None => None,
        },
        keep_last: a.keep_last,
        status: a
            .status
            .iter()
            .map(|s| s.parse::<RunStatus>().map_err(|e| usage("--status", e)))
            .collect::<Result<_>>()?,
        function: a.function.clone(),
        dry_run: a.dry_run,
        artifacts: a.artifacts,
        components: a.components,
        include_producers: a.include_producers,
        pace: false,
    };
    req.check().map_err(|e| usage("gc", e))?;
    let report = cluster::open(name)?.gc(&req).await?;
    if json {
        print_json(&report);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if report.dry_run {
        for r in &report.runs {
            println!("{r}");
        }
    }
    println!(
        "{verb} {} Runs ({}){}",
        report.runs_removed,
        format_size(report.run_bytes),
        if report.producers_kept > 0 {
            format!(
                "; kept {} that made an artifact's current version (--include-producers)",
                report.producers_kept
            )
        } else {
            String::new()
        }
    );
    if a.artifacts || a.components {
        println!(
            "{verb} {} artifact versions and {} components ({})",
            report.artifact_versions_removed,
            report.components_removed,
            format_size(report.other_bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn cache_clear(
    cluster_name: Option<&str>,
    function: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let name = cluster_name.unwrap_or("local");
    let cleared = cluster::open(name)?.clear_cache(function).await?;
    if json {
        print_json(&cleared);
    } else {
        println!("forgot {} cached results", cleared.cleared);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn reindex(cluster_name: Option<&str>, json: bool) -> Result<ExitCode> {
    let name = cluster_name.unwrap_or("local");
    let r = cluster::open(name)?.reindex().await?;
    if json {
        print_json(&r);
    } else {
        println!("the index of `{name}` holds {} Runs", r.runs);
    }
    Ok(ExitCode::SUCCESS)
}
