//! Questions the index answers: a page of Runs matching filters (newest
//! first, with a cursor for the next page), the Runs around an artifact
//! version for lineage, and the Runs retention may remove. Each query walks
//! an index in the order of its answer and stops when it has enough.

use super::Index;
use crate::config::{ArtifactRef, RunConfig, RunStatus};
use crate::{Error, Result};
use rusqlite::types::Value;
use std::time::{Duration, SystemTime};

/// A search of Runs: filters that all hold (AND), a page size and where
/// the page starts.
///
/// ```
/// use rh_runtime::{RunQuery, RunStatus};
/// let q = RunQuery::default().status(RunStatus::Error).function("summer").limit(20);
/// assert!(q.check().is_ok());
/// assert!(RunQuery::default().limit(0).check().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct RunQuery {
    /// Any of these statuses (none: any status).
    pub status: Vec<RunStatus>,
    /// The deployed name called (`summer`), or `name/function`.
    pub function: Option<String>,
    /// Started at or after.
    pub since: Option<SystemTime>,
    /// Started at or before.
    pub until: Option<SystemTime>,
    /// Started by this user.
    pub creator: Option<String>,
    /// Carries every one of these tags.
    pub tags: Vec<(String, String)>,
    /// Made inside this Run.
    pub parent: Option<String>,
    /// Runs per page, 1 to [`MAX_PAGE`].
    pub limit: usize,
    /// Where the page starts: a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// The largest page a search answers.
pub const MAX_PAGE: usize = 1000;

impl Default for RunQuery {
    fn default() -> Self {
        RunQuery {
            status: Vec::new(),
            function: None,
            since: None,
            until: None,
            creator: None,
            tags: Vec::new(),
            parent: None,
            limit: 50,
            cursor: None,
        }
    }
}

/// One page of a search: Runs newest first, and where the next page starts
/// (none after the last).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunPage {
    /// The Runs' records, newest first.
    pub runs: Vec<RunConfig>,
    /// The cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

impl RunQuery {
    /// Only Runs with this status (again for any of several).
    pub fn status(mut self, s: RunStatus) -> Self {
        self.status.push(s);
        self
    }
    /// Only Runs of this function.
    pub fn function(mut self, f: impl Into<String>) -> Self {
        self.function = Some(f.into());
        self
    }
    /// Only Runs started at or after `t`.
    pub fn since(mut self, t: SystemTime) -> Self {
        self.since = Some(t);
        self
    }
    /// Only Runs started at or before `t`.
    pub fn until(mut self, t: SystemTime) -> Self {
        self.until = Some(t);
        self
    }
    /// Only Runs started by `user`.
    pub fn creator(mut self, user: impl Into<String>) -> Self {
        self.creator = Some(user.into());
        self
    }
    /// Only Runs tagged `key=value` (again for several, all required).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }
    /// Only Runs made inside Run `run`.
    pub fn parent(mut self, run: impl Into<String>) -> Self {
        self.parent = Some(run.into());
        self
    }
    /// Runs per page.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }
    /// Start after a previous page.
    pub fn cursor(mut self, c: impl Into<String>) -> Self {
        self.cursor = Some(c.into());
        self
    }

    /// Refuse a query that cannot be answered: a page size out of range, a
    /// cursor no page gave, a bad tag.
    pub fn check(&self) -> Result<()> {
        if self.limit == 0 || self.limit > MAX_PAGE {
            return Err(Error::Invalid(format!(
                "limit {} is out of range: a page holds 1 to {MAX_PAGE} Runs",
                self.limit
            )));
        }
        if let Some(c) = &self.cursor {
            parse_cursor(c)?;
        }
        for (k, v) in &self.tags {
            crate::validate_tag(k, v)?;
        }
        Ok(())
    }
}

/// A time given as a duration before now (`1h`, `7d`) or an RFC 3339 time.
///
/// ```
/// let t = rh_runtime::parse_when("2026-01-02T03:04:05Z").unwrap();
/// let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
/// assert_eq!(secs, 1_767_323_045);
/// assert!(rh_runtime::parse_when("1h").unwrap() < std::time::SystemTime::now());
/// assert!(rh_runtime::parse_when("yesterday").is_err());
/// ```
pub fn parse_when(text: &str) -> std::result::Result<SystemTime, String> {
    if let Ok(d) = crate::parse_duration(text) {
        return SystemTime::now()
            .checked_sub(d)
            .ok_or_else(|| format!("`{text}` reaches back before any time"));
    }
    let us = super::micros(text.trim()).ok_or_else(|| {
        format!(
            "`{text}` is neither a duration (1h, 7d) nor an RFC 3339 time (2026-01-02T03:04:05Z)"
        )
    })?;
    Ok(from_micros(us))
}

/// A time as RFC 3339 (UTC, microseconds), as [`parse_when`] reads it.
pub fn format_when(t: SystemTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    // Out of the calendar's range (far past or future): its nearest end.
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(to_micros(t)) * 1000)
        .unwrap_or(if to_micros(t) < 0 {
            time::PrimitiveDateTime::MIN.assume_utc()
        } else {
            time::PrimitiveDateTime::MAX.assume_utc()
        });
    t.format(FORMAT).unwrap_or_default()
}

pub(crate) fn to_micros(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

fn from_micros(us: i64) -> SystemTime {
    if us >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_micros(us as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_micros(us.unsigned_abs())
    }
}

fn parse_cursor(c: &str) -> Result<(i64, i64)> {
    let bad = || {
        Error::Invalid(format!(
            "`{c}` is not a cursor: pass the next_cursor of a previous page"
        ))
    };
    let (a, b) = c.split_once('.').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

/// Whose Runs a search may return.
pub(crate) enum Visible {
    All,
    /// A user's own Runs and those shared with them.
    User {
        name: String,
        shared: Vec<String>,
    },
}

/// A Run as the index knows it.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub id: i64,
    pub name: String,
    pub status: RunStatus,
    pub start_us: i64,
    pub creator: Option<String>,
    pub what: String,
}

const KNOWN: &str = "r.id, r.name, r.status, r.start_us, r.creator, r.what";

fn known(r: &rusqlite::Row<'_>) -> rusqlite::Result<Known> {
    let status: String = r.get(2)?;
    Ok(Known {
        id: r.get(0)?,
        name: r.get(1)?,
        status: status.parse().unwrap_or(RunStatus::Error),
        start_us: r.get(3)?,
        creator: r.get(4)?,
        what: r.get(5)?,
    })
}

/// The WHERE conditions of a query's filters, with their values.
fn filters(q: &RunQuery, visible: &Visible) -> (Vec<String>, Vec<Value>) {
    let mut conds = Vec::new();
    let mut vals: Vec<Value> = Vec::new();
    let mut bind = |conds: &mut Vec<String>, cond: &str, v: Value| {
        vals.push(v);
        conds.push(cond.replace('?', &format!("?{}", vals.len())));
    };
    match q.status.as_slice() {
        [] => {}
        [one] => bind(&mut conds, "r.status = ?", Value::Text(one.as_str().into())),
        many => {
            let list: Vec<String> = many.iter().map(|s| format!("'{}'", s.as_str())).collect();
            conds.push(format!("r.status IN ({})", list.join(", ")));
        }
    }
    if let Some(f) = &q.function {
        // `name/fn` of a multi-function component; `name` (or `name/name`)
        // for the deployed name's own function, or all its functions.
        match f.split_once('/') {
            Some((n, func)) if n == func => {
                bind(&mut conds, "r.function = ?", Value::Text(n.to_string()));
                conds.push("r.fn_full IS NULL".into());
            }
            Some(_) => bind(&mut conds, "r.fn_full = ?", Value::Text(f.clone())),
            None => bind(&mut conds, "r.function = ?", Value::Text(f.clone())),
        }
    }
    if let Some(t) = q.since {
        bind(&mut conds, "r.start_us >= ?", Value::Integer(to_micros(t)));
    }
    if let Some(t) = q.until {
        bind(&mut conds, "r.start_us <= ?", Value::Integer(to_micros(t)));
    }
    if let Some(c) = &q.creator {
        bind(&mut conds, "r.creator = ?", Value::Text(c.clone()));
    }
    if let Some(p) = &q.parent {
        bind(&mut conds, "r.parent = ?", Value::Text(p.clone()));
    }
    // The first tag drives the walk (see `page`); the others are checks.
    for (k, v) in q.tags.iter().skip(1) {
        vals.push(Value::Text(k.clone()));
        vals.push(Value::Text(v.clone()));
        let n = vals.len();
        conds.push(format!(
            "EXISTS (SELECT 1 FROM tags x WHERE x.key = ?{} AND x.value = ?{n} AND x.run = r.id)",
            n - 1
        ));
    }
    if let Visible::User { name, shared } = visible {
        vals.push(Value::Text(name.clone()));
        vals.push(Value::Text(
            serde_json::to_string(shared).unwrap_or_else(|_| "[]".into()),
        ));
        let n = vals.len();
        conds.push(format!(
            "(r.creator = ?{} OR r.name IN (SELECT value FROM json_each(?{n})))",
            n - 1
        ));
    }
    (conds, vals)
}

impl Index {
    /// The Runs of one page of `q` as the index knows them, newest first,
    /// and the cursor of the next page.
    pub(crate) fn page(
        &self,
        q: &RunQuery,
        visible: &Visible,
    ) -> Result<(Vec<Known>, Option<String>)> {
        q.check()?;
        self.sync();
        let (mut conds, mut vals) = filters(q, visible);
        // With a tag, walk that tag's entries in time order; else the Runs'.
        let (from, order) = match q.tags.first() {
            Some((k, v)) => {
                vals.push(Value::Text(k.clone()));
                vals.push(Value::Text(v.clone()));
                let n = vals.len();
                conds.push(format!("t.key = ?{} AND t.value = ?{n}", n - 1));
                (
                    "tags t JOIN runs r ON r.id = t.run",
                    ("t.start_us", "t.run"),
                )
            }
            None => ("runs r", ("r.start_us", "r.id")),
        };
        if let Some(c) = &q.cursor {
            let (us, id) = parse_cursor(c)?;
            vals.push(Value::Integer(us));
            vals.push(Value::Integer(id));
            let n = vals.len();
            let (ts, tid) = order;
            conds.push(format!(
                "{ts} <= ?{a} AND ({ts} < ?{a} OR {tid} < ?{n})",
                a = n - 1
            ));
        }
        let sql = format!(
            "SELECT {KNOWN} FROM {from} {} ORDER BY {} DESC, {} DESC LIMIT {}",
            if conds.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conds.join(" AND "))
            },
            order.0,
            order.1,
            q.limit + 1
        );
        let mut rows = self.read(|c| {
            let mut st = c.prepare_cached(&sql)?;
            st.query_map(rusqlite::params_from_iter(vals.iter()), known)?
                .collect::<rusqlite::Result<Vec<Known>>>()
        })?;
        let next = if rows.len() > q.limit {
            rows.truncate(q.limit);
            rows.last().map(|k| format!("{}.{}", k.start_us, k.id))
        } else {
            None
        };
        Ok((rows, next))
    }

    /// A Run by name, as the index knows it.
    pub(crate) fn known(&self, name: &str) -> Result<Option<Known>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached(&format!("SELECT {KNOWN} FROM runs r WHERE r.name = ?1"))?;
            let mut rows = st.query_map([name], known)?;
            rows.next().transpose()
        })
    }

    /// The artifact versions a Run loaded (`up`) or saved, in its record's
    /// order.
    pub(crate) fn edges_of(&self, run: i64, up: bool) -> Result<Vec<ArtifactRef>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT name, digest FROM edges WHERE run = ?1 AND dir = ?2 ORDER BY pos",
            )?;
            st.query_map(rusqlite::params![run, if up { 0 } else { 1 }], |r| {
                Ok(ArtifactRef {
                    name: r.get(0)?,
                    digest: r.get(1)?,
                })
            })?
            .collect()
        })
    }

    /// The Runs that saved (`produced`) or loaded an artifact version:
    /// producers latest-ended first, consumers in start order.
    pub(crate) fn runs_of(&self, a: &ArtifactRef, produced: bool) -> Result<Vec<Known>> {
        let sql = format!(
            "SELECT {KNOWN} FROM edges e JOIN runs r ON r.id = e.run \
             WHERE e.name = ?1 AND e.digest = ?2 AND e.dir = ?3 ORDER BY {}",
            if produced {
                "r.end_us DESC, r.id DESC"
            } else {
                "r.start_us, r.id"
            }
        );
        self.read(|c| {
            let mut st = c.prepare_cached(&sql)?;
            st.query_map(
                rusqlite::params![a.name, a.digest, if produced { 1 } else { 0 }],
                known,
            )?
            .collect()
        })
    }

    /// Finished Runs matching `q`'s filters that retention may consider,
    /// oldest first, after `after` (start, id), at most `n`: those that
    /// ended before `ended_before` and, with `keep_last`, are not among
    /// the `keep_last` newest matching Runs.
    pub(crate) fn removable(
        &self,
        q: &RunQuery,
        visible: &Visible,
        ended_before: Option<i64>,
        keep_last: Option<usize>,
        after: (i64, i64),
        n: usize,
    ) -> Result<Vec<Known>> {
        self.sync();
        let (mut conds, mut vals) = filters(q, visible);
        if let Some(keep) = keep_last.filter(|k| *k > 0) {
            // The boundary: the keep-th newest matching Run.
            let sql = format!(
                "SELECT r.start_us, r.id FROM runs r {} ORDER BY r.start_us DESC, r.id DESC \
                 LIMIT 1 OFFSET {}",
                where_of(&conds),
                keep - 1
            );
            let edge: Option<(i64, i64)> = self.read(|c| {
                let mut st = c.prepare(&sql)?;
                let mut rows = st.query_map(rusqlite::params_from_iter(vals.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
                rows.next().transpose()
            })?;
            let Some((us, id)) = edge else {
                return Ok(Vec::new());
            };
            vals.push(Value::Integer(us));
            vals.push(Value::Integer(id));
            let k = vals.len();
            conds.push(format!(
                "r.start_us <= ?{a} AND (r.start_us < ?{a} OR r.id < ?{k})",
                a = k - 1
            ));
        }
        conds.push("r.status IN ('completed', 'error', 'cancelled')".into());
        if let Some(before) = ended_before {
            vals.push(Value::Integer(before));
            let k = vals.len();
            conds.push(format!("r.start_us < ?{k} AND r.end_us < ?{k}"));
        }
        vals.push(Value::Integer(after.0));
        vals.push(Value::Integer(after.1));
        let k = vals.len();
        conds.push(format!(
            "r.start_us >= ?{a} AND (r.start_us > ?{a} OR r.id > ?{k})",
            a = k - 1
        ));
        let sql = format!(
            "SELECT {KNOWN} FROM runs r {} ORDER BY r.start_us, r.id LIMIT {n}",
            where_of(&conds)
        );
        self.read(|c| {
            let mut st = c.prepare(&sql)?;
            st.query_map(rusqlite::params_from_iter(vals.iter()), known)?
                .collect()
        })
    }

    /// Whether any Run in the index loaded or saved this artifact version.
    pub(crate) fn refers_to(&self, a: &ArtifactRef) -> Result<bool> {
        self.read(|c| {
            c.prepare_cached("SELECT 1 FROM edges WHERE name = ?1 AND digest = ?2 LIMIT 1")?
                .exists(rusqlite::params![a.name, a.digest])
        })
    }

    /// Every artifact digest a Run in the index loaded or saved.
    pub(crate) fn edge_digests(&self) -> Result<std::collections::HashSet<String>> {
        self.read(|c| {
            c.prepare("SELECT DISTINCT digest FROM edges")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
    }

    /// Every component digest a Run in the index ran.
    pub(crate) fn run_digests(&self) -> Result<std::collections::HashSet<String>> {
        let lists: Vec<String> = self.read(|c| {
            c.prepare("SELECT DISTINCT digest FROM runs WHERE digest IS NOT NULL")?
                .query_map([], |r| r.get(0))?
                .collect()
        })?;
        Ok(lists
            .iter()
            .flat_map(|l| l.split(','))
            .map(str::to_string)
            .collect())
    }

    /// Whether a Run produced (saved) any of these artifact versions.
    pub(crate) fn produced_any(&self, run: i64, versions: &[ArtifactRef]) -> Result<bool> {
        Ok(self
            .edges_of(run, false)?
            .iter()
            .any(|a| versions.contains(a)))
    }
}

fn where_of(conds: &[String]) -> String {
    if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    }
}
