//! Lineage: what produced an artifact or a Run and what consumed it,
//! followed transitively through the Runs' `upstream_artifacts` and
//! `downstream_artifacts` and the artifact versions' producing Runs.
//!
//! The graph is built from the Run records on demand (one read of each
//! `config.json`), so it is always what the records say, with no second
//! copy to keep in step. Versions matter: a Run that loaded an older version
//! of an artifact is not a consumer of the current one.

use crate::artifacts::ArtifactStore;
use crate::config::{ArtifactRef, RunConfig, RunStatus};
use crate::{Error, Result};
use serde::Serialize;
use std::collections::HashSet;

/// One node of a lineage tree: a Run or an artifact version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineageNode {
    /// `run` or `artifact`.
    pub kind: &'static str,
    /// The Run's or the artifact's name.
    pub name: String,
    /// The artifact version's digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// For a Run: the function or commands it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    /// For a Run: its status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// What it came from: for an artifact its producing Run (none when it
    /// was put from outside any Run), for a Run the artifacts it loaded.
    pub upstream: Vec<LineageNode>,
    /// What came from it: for an artifact the Runs that loaded this
    /// version, for a Run the artifacts it saved.
    pub downstream: Vec<LineageNode>,
}

pub(crate) struct Graph<'a> {
    runs: Vec<RunConfig>,
    artifacts: &'a ArtifactStore,
}

fn what(c: &RunConfig) -> Option<String> {
    match (&c.function, &c.fn_name) {
        (Some(f), Some(n)) if &f.name == n => Some(f.name.clone()),
        (Some(f), Some(n)) => Some(format!("{}/{n}", f.name)),
        _ if !c.cmds.is_empty() => Some(
            c.cmds
                .iter()
                .map(|x| x.cmd.rsplit('/').next().unwrap_or(&x.cmd).to_string())
                .collect::<Vec<_>>()
                .join(" && "),
        ),
        _ => Some(format!("{:?}", c.run_type).to_lowercase()),
    }
}

impl<'a> Graph<'a> {
    pub fn new(runs: Vec<RunConfig>, artifacts: &'a ArtifactStore) -> Self {
        Graph { runs, artifacts }
    }

    /// The tree around an artifact (its current version) or, failing
    /// that, a Run.
    pub fn of(&self, name: &str) -> Result<LineageNode> {
        if let Ok(art) = self.artifacts.get(name)
            && let Some(v) = art.versions.last()
        {
            let r = ArtifactRef {
                name: name.to_string(),
                digest: v.digest.clone(),
            };
            let up = self.artifact_node(&r, Dir::Up, &mut HashSet::new());
            let down = self.artifact_node(&r, Dir::Down, &mut HashSet::new());
            return Ok(LineageNode {
                upstream: up.upstream,
                downstream: down.downstream,
                ..up
            });
        }
        let Some(run) = self.runs.iter().find(|r| r.name == name) else {
            return Err(Error::NotFound {
                what: "artifact or run",
                name: name.to_string(),
            });
        };
        let up = self.run_node(run, Dir::Up, &mut HashSet::new());
        let down = self.run_node(run, Dir::Down, &mut HashSet::new());
        Ok(LineageNode {
            upstream: up.upstream,
            downstream: down.downstream,
            ..up
        })
    }

    fn run_node(&self, c: &RunConfig, dir: Dir, seen: &mut HashSet<String>) -> LineageNode {
        let mut node = LineageNode {
            kind: "run",
            name: c.name.clone(),
            digest: None,
            what: what(c),
            status: Some(c.status),
            upstream: Vec::new(),
            downstream: Vec::new(),
        };
        if !seen.insert(format!("run:{}", c.name)) {
            return node;
        }
        match dir {
            Dir::Up => {
                node.upstream = c
                    .upstream_artifacts
                    .iter()
                    .map(|a| self.artifact_node(a, dir, seen))
                    .collect()
            }
            Dir::Down => {
                node.downstream = c
                    .downstream_artifacts
                    .iter()
                    .map(|a| self.artifact_node(a, dir, seen))
                    .collect()
            }
        }
        node
    }

    fn artifact_node(&self, a: &ArtifactRef, dir: Dir, seen: &mut HashSet<String>) -> LineageNode {
        let mut node = LineageNode {
            kind: "artifact",
            name: a.name.clone(),
            digest: Some(a.digest.clone()),
            what: None,
            status: None,
            upstream: Vec::new(),
            downstream: Vec::new(),
        };
        if !seen.insert(format!("artifact:{}:{}", a.name, a.digest)) {
            return node;
        }
        match dir {
            Dir::Up => {
                // The Run that saved this version, if a Run did.
                let producer = self
                    .runs
                    .iter()
                    .filter(|r| r.downstream_artifacts.contains(a))
                    .max_by(|x, y| x.end_time.cmp(&y.end_time));
                if let Some(p) = producer {
                    node.upstream.push(self.run_node(p, dir, seen));
                }
            }
            Dir::Down => {
                let mut consumers: Vec<&RunConfig> = self
                    .runs
                    .iter()
                    .filter(|r| r.upstream_artifacts.contains(a))
                    .collect();
                consumers.sort_by(|x, y| x.start_time.cmp(&y.start_time));
                node.downstream = consumers
                    .into_iter()
                    .map(|r| self.run_node(r, dir, seen))
                    .collect();
            }
        }
        node
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Up,
    Down,
}
