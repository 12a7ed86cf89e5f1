//! A search of Runs as query parameters (`GET /v1/runs?status=error&tag=k%3Dv`),
//! written by the client and read by the daemon, and the small bodies of
//! the history verbs (`cache clear`, `reindex`). Values are percent-encoded;
//! times travel as RFC 3339 (a duration such as `1h` is read relative to
//! the daemon's clock).

use rh_runtime::{RunQuery, RunStatus};
use serde::{Deserialize, Serialize};

/// `POST /v1/cache/clear`'s body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheClearBody {
    /// Only this deployed name's entries.
    #[serde(default)]
    pub function: Option<String>,
}

/// How many result-cache entries were forgotten.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheCleared {
    pub cleared: u64,
}

/// How many Runs a rebuilt index holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reindexed {
    pub runs: u64,
}

/// The query string of a search (without `?`).
pub fn to_params(q: &RunQuery) -> String {
    let mut p: Vec<(&str, String)> = Vec::new();
    for s in &q.status {
        p.push(("status", s.as_str().to_string()));
    }
    if let Some(f) = &q.function {
        p.push(("function", f.clone()));
    }
    if let Some(t) = q.since {
        p.push(("since", rh_runtime::format_when(t)));
    }
    if let Some(t) = q.until {
        p.push(("until", rh_runtime::format_when(t)));
    }
    if let Some(c) = &q.creator {
        p.push(("creator", c.clone()));
    }
    for (k, v) in &q.tags {
        p.push(("tag", format!("{k}={v}")));
    }
    if let Some(r) = &q.parent {
        p.push(("parent", r.clone()));
    }
    p.push(("limit", q.limit.to_string()));
    if let Some(c) = &q.cursor {
        p.push(("cursor", c.clone()));
    }
    p.iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The search a query string asks for; a clear message for a bad filter.
pub fn from_params(query: &str) -> Result<RunQuery, String> {
    let mut q = RunQuery::default();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = decode(v).ok_or_else(|| format!("`{k}`: bad percent-encoding"))?;
        match k {
            "status" => q
                .status
                .push(v.parse::<RunStatus>().map_err(|e| e.to_string())?),
            "function" => q.function = Some(v),
            "since" => q.since = Some(rh_runtime::parse_when(&v)?),
            "until" => q.until = Some(rh_runtime::parse_when(&v)?),
            "creator" => q.creator = Some(v),
            "tag" => q.tags.push(parse_tag(&v)?),
            "parent" => q.parent = Some(v),
            "limit" => {
                q.limit = v
                    .parse()
                    .map_err(|_| format!("limit `{v}` is not a number"))?
            }
            "cursor" => q.cursor = Some(v),
            other => return Err(format!("unknown search parameter `{other}`")),
        }
    }
    q.check().map_err(|e| e.to_string())?;
    Ok(q)
}

/// `k=v` as a tag.
pub fn parse_tag(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("tag `{text}` is not KEY=VALUE"))?;
    rh_runtime::validate_tag(k, v).map_err(|e| e.to_string())?;
    Ok((k.to_string(), v.to_string()))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_survives_the_trip_through_a_query_string() {
        let q = RunQuery::default()
            .status(RunStatus::Error)
            .function("text/word_count")
            .tag("team", "a b&c=d")
            .tag("exp", "7")
            .creator("ann")
            .parent("outer")
            .limit(7)
            .cursor("12.34");
        let back = from_params(&to_params(&q)).unwrap();
        assert_eq!(back.status, q.status);
        assert_eq!(back.function, q.function);
        assert_eq!(back.tags, q.tags);
        assert_eq!((back.creator, back.parent), (q.creator, q.parent));
        assert_eq!((back.limit, back.cursor), (7, q.cursor));
        for bad in [
            "status=done",
            "limit=0",
            "limit=1001",
            "since=soon",
            "cursor=x",
            "tag=k",
            "nope=1",
        ] {
            assert!(from_params(bad).is_err(), "{bad}");
        }
    }
}
