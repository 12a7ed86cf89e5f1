//! A Run's row in the index: the fields of its record that questions about
//! history filter, order and join on, derived from its `config.json`.

use crate::config::{ArtifactRef, RunConfig, RunStatus, RunType};

/// What the index holds of one Run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub name: String,
    pub status: &'static str,
    pub run_type: &'static str,
    /// Start time, microseconds since the epoch (0 when unknown).
    pub start_us: i64,
    pub end_us: Option<i64>,
    /// The deployed name called.
    pub function: Option<String>,
    /// `name/function` when the function is not the deployed name's own.
    pub fn_full: Option<String>,
    pub digest: Option<String>,
    /// The result-cache key (its first 64 bits: see [`short_key`]), for a
    /// completed function Run.
    pub cache_key: Option<i64>,
    pub creator: Option<String>,
    pub parent: Option<String>,
    pub error_kind: Option<String>,
    /// What it ran, as lineage shows it.
    pub what: String,
    pub tags: Vec<(String, String)>,
    pub upstream: Vec<ArtifactRef>,
    pub downstream: Vec<ArtifactRef>,
}

/// Microseconds since the epoch of an RFC 3339 time.
pub(crate) fn micros(rfc3339: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// The first 64 bits of a cache key (hex sha256), as the index keeps it: a
/// small integer keeps its B-tree small, and a collision costs a lookup
/// one more candidate, which is checked against its own record anyway.
pub(crate) fn short_key(key: &str) -> i64 {
    u64::from_str_radix(key.get(..16).unwrap_or(key), 16).unwrap_or(0) as i64
}

/// What a Run ran, in a word: its function, or its commands.
pub(crate) fn what(c: &RunConfig) -> String {
    match (&c.function, &c.fn_name) {
        (Some(f), Some(n)) if &f.name == n => f.name.clone(),
        (Some(f), Some(n)) => format!("{}/{n}", f.name),
        _ if !c.cmds.is_empty() => c
            .cmds
            .iter()
            .map(|x| x.cmd.rsplit('/').next().unwrap_or(&x.cmd).to_string())
            .collect::<Vec<_>>()
            .join(" && "),
        _ => format!("{:?}", c.run_type).to_lowercase(),
    }
}

impl Row {
    pub fn of(c: &RunConfig) -> Row {
        let function = c.function.as_ref().map(|f| f.name.clone());
        let fn_full = match (&c.function, &c.fn_name) {
            (Some(f), Some(n)) if &f.name != n => Some(format!("{}/{n}", f.name)),
            _ => None,
        };
        let cache_key = match (&c.function, &c.fn_name, &c.input_digest) {
            (Some(f), Some(n), Some(i))
                if c.status == RunStatus::Completed && c.run_type == RunType::Function =>
            {
                Some(short_key(&crate::cache::key(&f.digest, n, i)))
            }
            _ => None,
        };
        Row {
            name: c.name.clone(),
            status: c.status.as_str(),
            run_type: match c.run_type {
                RunType::Function => "function",
                RunType::Command => "command",
                RunType::Context => "context",
            },
            start_us: crate::runs::start_us(c),
            end_us: c.end_time.as_deref().and_then(micros),
            fn_full,
            // The component(s) it ran: a command Run's, comma-separated.
            digest: match &c.function {
                Some(f) => Some(f.digest.clone()),
                None => {
                    let d: Vec<&str> = c.cmds.iter().filter_map(|x| x.digest.as_deref()).collect();
                    (!d.is_empty()).then(|| d.join(","))
                }
            },
            cache_key,
            creator: c.creator.clone(),
            parent: c.parent_run.clone(),
            error_kind: c.error.as_ref().map(|e| e.kind.clone()),
            what: what(c),
            tags: c.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            upstream: c.upstream_artifacts.clone(),
            downstream: c.downstream_artifacts.clone(),
            function,
        }
    }
}
