//! Lineage: what produced an artifact or a Run and what consumed it,
//! followed transitively through the Runs' `upstream_artifacts` and
//! `downstream_artifacts` and the artifact versions' producing Runs.
//!
//! The graph is walked in the index of Runs, which holds every Run's
//! loaded and saved artifact versions as edges: each step asks for the
//! Runs around one artifact version, so the cost follows the size of the
//! answer, not the number of Runs. Versions matter: a Run that loaded an
//! older version of an artifact is not a consumer of the current one.

use crate::artifacts::ArtifactStore;
use crate::config::{ArtifactRef, RunStatus};
use crate::store::index::Index;
use crate::store::index::search::Known;
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
    index: &'a Index,
    artifacts: &'a ArtifactStore,
    /// Whether the caller may see a Run (name, creator).
    sees: &'a dyn Fn(&str, Option<&str>) -> bool,
}

impl<'a> Graph<'a> {
    pub fn new(
        index: &'a Index,
        artifacts: &'a ArtifactStore,
        sees: &'a dyn Fn(&str, Option<&str>) -> bool,
    ) -> Self {
        Graph {
            index,
            artifacts,
            sees,
        }
    }

    fn visible(&self, runs: Vec<Known>) -> Vec<Known> {
        runs.into_iter()
            .filter(|k| (self.sees)(&k.name, k.creator.as_deref()))
            .collect()
    }

    /// The tree around an artifact (its current version) or, failing
    /// that, a Run.
    pub fn of(&self, name: &str) -> Result<LineageNode> {
        self.index.sync();
        if let Ok(art) = self.artifacts.get(name)
            && let Some(v) = art.versions.last()
        {
            let r = ArtifactRef {
                name: name.to_string(),
                digest: v.digest.clone(),
            };
            let up = self.artifact_node(&r, Dir::Up, &mut HashSet::new())?;
            let down = self.artifact_node(&r, Dir::Down, &mut HashSet::new())?;
            return Ok(LineageNode {
                upstream: up.upstream,
                downstream: down.downstream,
                ..up
            });
        }
        let run = self
            .index
            .known(name)?
            .filter(|k| (self.sees)(&k.name, k.creator.as_deref()));
        let Some(run) = run else {
            return Err(Error::NotFound {
                what: "artifact or run",
                name: name.to_string(),
            });
        };
        let up = self.run_node(&run, Dir::Up, &mut HashSet::new())?;
        let down = self.run_node(&run, Dir::Down, &mut HashSet::new())?;
        Ok(LineageNode {
            upstream: up.upstream,
            downstream: down.downstream,
            ..up
        })
    }

    fn run_node(&self, k: &Known, dir: Dir, seen: &mut HashSet<String>) -> Result<LineageNode> {
        let mut node = LineageNode {
            kind: "run",
            name: k.name.clone(),
            digest: None,
            what: Some(k.what.clone()),
            status: Some(k.status),
            upstream: Vec::new(),
            downstream: Vec::new(),
        };
        if !seen.insert(format!("run:{}", k.name)) {
            return Ok(node);
        }
        let edges = self.index.edges_of(k.id, matches!(dir, Dir::Up))?;
        let nodes = edges
            .iter()
            .map(|a| self.artifact_node(a, dir, seen))
            .collect::<Result<Vec<_>>>()?;
        match dir {
            Dir::Up => node.upstream = nodes,
            Dir::Down => node.downstream = nodes,
        }
        Ok(node)
    }

    fn artifact_node(
        &self,
        a: &ArtifactRef,
        dir: Dir,
        seen: &mut HashSet<String>,
    ) -> Result<LineageNode> {
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
            return Ok(node);
        }
        match dir {
            Dir::Up => {
                // The Run that saved this version, if a Run did.
                let producers = self.visible(self.index.runs_of(a, true)?);
                if let Some(p) = producers.first() {
                    node.upstream.push(self.run_node(p, dir, seen)?);
                }
            }
            Dir::Down => {
                let consumers = self.visible(self.index.runs_of(a, false)?);
                node.downstream = consumers
                    .iter()
                    .map(|r| self.run_node(r, dir, seen))
                    .collect::<Result<Vec<_>>>()?;
            }
        }
        Ok(node)
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Up,
    Down,
}
