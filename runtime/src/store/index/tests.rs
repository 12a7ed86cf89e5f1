//! Tests of the index: rows follow records (a later Run of a name wins,
//! whatever order rows arrive in), and pages walk ties in start time
//! without losing or repeating a Run.

use super::search::Visible;
use super::*;
use crate::config::{RunConfig, RunStatus};

fn run(name: &str, start: &str, status: RunStatus) -> RunConfig {
    let mut c = RunConfig::function(name.into(), "local".into());
    c.start_time = Some(start.into());
    c.status = status;
    c
}

fn names(index: &Index, q: &RunQuery) -> (Vec<String>, Option<String>) {
    let (known, next) = index.page(q, &Visible::All).unwrap();
    (known.into_iter().map(|k| k.name).collect(), next)
}

#[test]
fn a_later_run_of_a_name_wins_whatever_order_its_rows_arrive_in() {
    let d = tempfile::tempdir().unwrap();
    let index = Index::open(d.path(), &d.path().join("runs")).unwrap();
    let old = run("r", "2026-01-01T00:00:00.000000Z", RunStatus::Completed);
    let new = run("r", "2026-01-02T00:00:00.000000Z", RunStatus::Running);
    index.put(&new, None);
    // The older Run's end, arriving late (a rerun replaced it meanwhile).
    index.put(&old, None);
    let known = index.known("r").unwrap().unwrap();
    assert_eq!(known.status, RunStatus::Running);
    // Forgetting the older Run leaves the later one.
    index.forget(vec![(
        "r".into(),
        super::micros("2026-01-01T00:00:00Z").unwrap(),
    )]);
    assert!(index.known("r").unwrap().is_some());
    index.forget(vec![("r".into(), i64::MAX)]);
    assert!(index.known("r").unwrap().is_none());
}

#[test]
fn pages_walk_runs_that_started_at_the_same_time_once_each() {
    let d = tempfile::tempdir().unwrap();
    let index = Index::open(d.path(), &d.path().join("runs")).unwrap();
    let same = "2026-03-04T05:06:07.000000Z";
    for i in 0..7 {
        let mut c = run(&format!("t{i}"), same, RunStatus::Completed);
        c.tags
            .insert("k".into(), if i % 2 == 0 { "even" } else { "odd" }.into());
        index.put(&c, None);
    }
    index.sync();
    for q in [
        RunQuery::default().limit(3),
        RunQuery::default().tag("k", "even").limit(2),
    ] {
        let mut all = Vec::new();
        let mut q = q;
        loop {
            let (page, next) = names(&index, &q);
            assert!(page.len() <= q.limit);
            all.extend(page);
            match next {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "a Run twice: {all:?}");
        let want = if q.tags.is_empty() { 7 } else { 4 };
        assert_eq!(all.len(), want, "{all:?}");
    }
}
