//! The Run record: what `config.json` holds.
//!
//! Field names are part of the user-visible contract (SPEC "Runs"), so they
//! are spelled here once and every reader and writer goes through
//! [`RunConfig`]. Optional fields are written as `null` rather than left out,
//! so a reader sees the whole shape of a Run in every file.

use crate::Limits;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The files of a Run folder, named once for every reader and writer.
/// The Run's record.
pub const CONFIG: &str = "config.json";
/// Its inputs.
pub const INPUTS: &str = "inputs.json";
/// Its result.
pub const RESULT: &str = "result.json";
/// The guest's stdout.
pub const STDOUT: &str = "stdout";
/// The guest's stderr.
pub const STDERR: &str = "stderr";

/// Where a Run is in its life. A terminal status never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, not yet executing.
    NotStarted,
    /// Executing.
    Running,
    /// Ended with a result.
    Completed,
    /// Ended with an error (see `error`).
    Error,
    /// Ended because it was cancelled.
    Cancelled,
}

impl RunStatus {
    /// Whether the Run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Error | RunStatus::Cancelled
        )
    }

    /// The name used in `config.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::NotStarted => "not_started",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Error => "error",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for RunStatus {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<RunStatus> {
        Ok(match s {
            "not_started" => RunStatus::NotStarted,
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "error" => RunStatus::Error,
            "cancelled" => RunStatus::Cancelled,
            other => {
                return Err(crate::Error::Invalid(format!(
                    "unknown status `{other}` (one of not_started, running, completed, error, cancelled)"
                )));
            }
        })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What made the Run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunType {
    /// A call of a function component.
    Function,
    /// One or more WASI commands.
    Command,
    /// A scope opened by a host program.
    Context,
}

/// The deployed function a Run called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRef {
    /// The deployed name (`summer`), not including the function.
    pub name: String,
    /// The component's content digest (`sha256:...`).
    pub digest: String,
}

/// One version of an artifact that a Run loaded or saved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// The artifact's name.
    pub name: String,
    /// The content digest of the version (`sha256:...`).
    pub digest: String,
}

/// A command run inside a command Run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmdRecord {
    /// The command (file or deployed name).
    pub cmd: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its exit code, once it has exited.
    pub exit_code: Option<i32>,
    /// The digest of the component that ran.
    #[serde(default)]
    pub digest: Option<String>,
}

/// Why a Run ended in `error` (or `cancelled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    /// Machine-readable kind: `out_of_fuel`, `memory_limit`, `timeout`,
    /// `trap`, `failed`, `bad_input`, `output_limit`, `disk_limit`,
    /// `interrupted`, ...
    pub kind: String,
    /// A one-line message for people.
    pub message: String,
}

/// The contents of a Run's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The Run's name (also its folder's name).
    pub name: String,
    /// Where it is in its life.
    pub status: RunStatus,
    /// What made it.
    pub run_type: RunType,
    /// When it started (RFC 3339, UTC).
    pub start_time: Option<String>,
    /// When it ended (RFC 3339, UTC).
    pub end_time: Option<String>,
    /// The function called (`summer`, or `text/word_count`).
    pub fn_name: Option<String>,
    /// The deployed component it ran.
    pub function: Option<FunctionRef>,
    /// `sha256:` digest of the canonical `inputs.json` bytes.
    pub input_digest: Option<String>,
    /// Commands of a command Run.
    #[serde(default)]
    pub cmds: Vec<CmdRecord>,
    /// Artifact versions the Run loaded.
    #[serde(default)]
    pub upstream_artifacts: Vec<ArtifactRef>,
    /// Artifact versions the Run saved.
    #[serde(default)]
    pub downstream_artifacts: Vec<ArtifactRef>,
    /// Why it failed, when it did.
    pub error: Option<RunError>,
    /// Fuel the guest burned.
    pub fuel_consumed: Option<u64>,
    /// The limits it ran under.
    pub limits: Option<Limits>,
    /// The Run it was started inside, if any.
    pub parent_run: Option<String>,
    /// The cluster it ran on.
    pub cluster: String,
    /// Who started it.
    pub creator: Option<String>,
    /// Labels given by whoever started it (`--tag k=v`), for search.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// The Run whose result this one reused (a cache hit), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit: Option<String>,
    /// The host process that ran it (used to recover Runs of dead hosts).
    #[serde(default)]
    pub host: Option<String>,
    /// How many times a cluster of several hosts started it (present when
    /// it was run again after its host died: see `--retries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl RunConfig {
    /// A fresh record for a function call.
    pub(crate) fn function(name: String, cluster: String) -> Self {
        RunConfig {
            name,
            status: RunStatus::Running,
            run_type: RunType::Function,
            start_time: Some(crate::names::now_rfc3339()),
            end_time: None,
            fn_name: None,
            function: None,
            input_digest: None,
            cmds: Vec::new(),
            upstream_artifacts: Vec::new(),
            downstream_artifacts: Vec::new(),
            error: None,
            fuel_consumed: None,
            limits: None,
            parent_run: None,
            cluster,
            creator: None,
            tags: Default::default(),
            cache_hit: None,
            host: None,
            attempts: None,
        }
    }
}
