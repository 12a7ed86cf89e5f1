//! Answers: what the daemon sends back, and what the CLI prints with
//! `--json` from any cluster.
//!
//! [`RunAnswer`] is the one answer about a Run: `call`, `wait`, `result`,
//! `cancel`, a scope's end and the last frame of a stream all give it, built
//! by [`RunAnswer::of`] on both sides.

use rh_runtime::{ComponentKind, Deployment, FunctionDesc, ObjectKind, Run, RunFile, RunStatus};
use serde::{Deserialize, Deserializer, Serialize};
use std::path::PathBuf;

/// An error's kind and message: what an error body holds, and a failed
/// Run's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub kind: String,
    pub message: String,
}

impl ErrorInfo {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// A runtime error, in its own words.
    pub fn of(e: &rh_runtime::Error) -> ErrorInfo {
        ErrorInfo::new(e.kind(), e.to_string())
    }
}

/// Every error answer: `{"error": {"kind", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorInfo,
}

/// The answer about a Run: `{"run_name", "status"}`, with `result` once it
/// completed or `error` once it failed or was cancelled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunAnswer {
    pub run_name: String,
    pub status: RunStatus,
    /// The Run's result (`null` included: a result may be `null`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// For a cancel: the status the Run had before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<RunStatus>,
    /// The Run's folder on this machine: given on `local` only, by `call`
    /// and `get-or-call`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

impl RunAnswer {
    /// A Run's name and status, nothing more yet.
    pub fn new(run_name: impl Into<String>, status: RunStatus) -> RunAnswer {
        RunAnswer {
            run_name: run_name.into(),
            status,
            result: None,
            error: None,
            was: None,
            path: None,
        }
    }

    /// The answer about `run`: its result once completed; once failed or
    /// cancelled, the error in its record's own words (kept free of host
    /// paths when it ended). `unreadable` words an error reading a
    /// completed Run's result: the daemon keeps host paths out of it.
    pub fn of(run: &Run, unreadable: impl FnOnce(&rh_runtime::Error) -> String) -> RunAnswer {
        let c = run.config();
        let mut answer = RunAnswer::new(c.name.clone(), c.status);
        match run.status() {
            RunStatus::Completed => match run.result() {
                Ok(r) => answer.result = Some(r),
                Err(e) => answer.error = Some(ErrorInfo::new(e.kind(), unreadable(&e))),
            },
            RunStatus::Error | RunStatus::Cancelled => {
                answer.error = Some(ErrorInfo::of(&run.error()));
            }
            _ => {}
        }
        answer
    }

    pub fn completed(&self) -> bool {
        self.status == RunStatus::Completed
    }

    /// The error's kind, if the Run has one.
    pub fn error_kind(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.kind.as_str())
    }

    /// The error's message, if the Run has one.
    pub fn error_message(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.message.as_str())
    }
}

/// A field that is there, `null` or not: `Some(Value::Null)` for `null`,
/// where `Option`'s own reading would make it `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// The last frame of a stream: the Run's answer, or the error that kept
/// the daemon from giving one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StreamEnd {
    Run(RunAnswer),
    Failed(ErrorBody),
}

/// A Run started, or found by `get_or_run`: `{"run_name", "status"}`. The
/// status is empty when it could not be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    pub run_name: String,
    pub status: String,
}

/// A deployed name: `{"name", "digest", "versions", "kind", "functions"}`;
/// `kind` is `null` when its component could not be described.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploymentInfo {
    pub name: String,
    pub digest: String,
    /// How many versions the name has had.
    pub versions: usize,
    pub kind: Option<ComponentKind>,
    #[serde(default)]
    pub functions: Vec<FunctionDesc>,
}

impl From<&Deployment> for DeploymentInfo {
    fn from(d: &Deployment) -> DeploymentInfo {
        let info = d.info.as_ref();
        DeploymentInfo {
            name: d.name.clone(),
            digest: d.digest().to_string(),
            versions: d.versions.len(),
            kind: info.map(|i| i.kind),
            functions: info.map(|i| i.functions.clone()).unwrap_or_default(),
        }
    }
}

/// One node of a lineage tree, as `rh_runtime::LineageNode` writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lineage {
    /// `run` or `artifact`.
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub upstream: Vec<Lineage>,
    #[serde(default)]
    pub downstream: Vec<Lineage>,
}

impl Lineage {
    pub fn is_artifact(&self) -> bool {
        self.kind == "artifact"
    }
}

impl From<rh_runtime::LineageNode> for Lineage {
    fn from(n: rh_runtime::LineageNode) -> Lineage {
        Lineage {
            kind: n.kind.to_string(),
            name: n.name,
            digest: n.digest,
            what: n.what,
            status: n.status,
            upstream: n.upstream.into_iter().map(Lineage::from).collect(),
            downstream: n.downstream.into_iter().map(Lineage::from).collect(),
        }
    }
}

/// What a delete removed: `{"deleted": "<name>", "kind"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deleted {
    pub deleted: String,
    pub kind: ObjectKind,
}

/// What `POST /v1/shares/remove` did: whether the user had a grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unshared {
    pub kind: ObjectKind,
    pub name: String,
    pub user: String,
    pub removed: bool,
}

/// A finished Run's files: `{"run_name", "files": [{"path", "size", "digest"}]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFiles {
    pub run_name: String,
    pub files: Vec<RunFile>,
}

/// `GET /v1/health`: `user` and `admin` are `null` on a daemon without
/// users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub cluster: String,
    pub version: String,
    pub user: Option<String>,
    pub admin: Option<bool>,
}
