//! [`ExecRequest`]: a Run of one or more WASI commands, as asked for.
//! How the commands run is `execute::command`.

use crate::Limits;
use crate::execute::host::OutputObserver;
use std::time::Duration;

/// The settings every Run request has, as builder methods: its name, its
/// limits, whether it replaces a finished Run, who watches its output.
macro_rules! run_settings {
    () => {
        /// Name the Run.
        pub fn run_name(mut self, name: impl Into<String>) -> Self {
            self.run_name = Some(name.into());
            self
        }

        /// Set the fuel budget.
        pub fn fuel(mut self, fuel: u64) -> Self {
            self.fuel = Some(fuel);
            self
        }

        /// Set the memory limit, in bytes.
        pub fn memory(mut self, bytes: u64) -> Self {
            self.memory = Some(bytes);
            self
        }

        /// Set the wall-clock timeout.
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.timeout = Some(timeout);
            self
        }

        /// Replace a finished Run of the same name.
        pub fn rerun(mut self, rerun: bool) -> Self {
            self.rerun = rerun;
            self
        }

        /// Watch the guest's output as it is written.
        pub fn observer(mut self, observer: crate::OutputObserver) -> Self {
            self.observer = Some(observer);
            self
        }

        /// Record the label `key` = `value` in the Run's `tags`.
        pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            self.tags.insert(key.into(), value.into());
            self
        }
    };
}
pub(crate) use run_settings;

/// One command of a command Run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdSpec {
    /// How the command is recorded in `config.json` (the file or name given).
    pub cmd: String,
    /// The component to run: a deployed name, or a digest (`sha256:...`)
    /// of a component added with [`crate::Runtime::add_component`].
    pub component: String,
    /// Its arguments (not including the command itself).
    pub args: Vec<String>,
}

/// A Run of one or more commands.
#[derive(Clone)]
#[non_exhaustive]
pub struct ExecRequest {
    /// The commands, run in order.
    pub cmds: Vec<CmdSpec>,
    /// The Run's name; an automatic one when `None`.
    pub run_name: Option<String>,
    /// Fuel budget for all the commands together.
    pub fuel: Option<u64>,
    /// Memory limit of each command, in bytes.
    pub memory: Option<u64>,
    /// Wall-clock timeout for all the commands together.
    pub timeout: Option<Duration>,
    /// Cap on the disk space of the Run's scratch folder, in bytes; at most
    /// the cluster's (its default).
    pub scratch: Option<u64>,
    /// Run the later commands even after one exits non-zero.
    pub keep_going: bool,
    /// Replace a finished Run of the same name.
    pub rerun: bool,
    /// Sees the output as it is written.
    pub observer: Option<OutputObserver>,
    /// Labels recorded in the Run's `tags` (see [`crate::validate_tag`]).
    pub tags: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for ExecRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecRequest")
            .field("cmds", &self.cmds)
            .field("run_name", &self.run_name)
            .field("keep_going", &self.keep_going)
            .finish_non_exhaustive()
    }
}

impl ExecRequest {
    /// A Run of `cmds`.
    pub fn new(cmds: Vec<CmdSpec>) -> Self {
        ExecRequest {
            cmds,
            run_name: None,
            fuel: None,
            memory: None,
            timeout: None,
            scratch: None,
            keep_going: false,
            rerun: false,
            observer: None,
            tags: Default::default(),
        }
    }

    /// Go on after a command fails.
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.keep_going = keep_going;
        self
    }

    /// Set the scratch limit, in bytes.
    pub fn scratch(mut self, bytes: u64) -> Self {
        self.scratch = Some(bytes);
        self
    }

    run_settings!();

    pub(crate) fn limits(&self, defaults: &Limits) -> crate::Result<Limits> {
        defaults
            .with(self.fuel, self.memory, self.timeout)?
            .with_scratch(self.scratch)
    }
}
