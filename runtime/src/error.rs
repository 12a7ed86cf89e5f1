//! The runtime's error type.
//!
//! Callers match on [`Error`] to tell a timeout from a trap from a bad
//! argument, so every way a call or a Run can fail has its own variant. Errors
//! that end a Run carry the Run's name; I/O errors carry the path they were
//! about. Wasmtime's own error type is not a `std::error::Error`, so it is
//! kept as a boxed source.

use std::path::PathBuf;
use std::time::Duration;

/// Result type of the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Run used up its fuel budget.
    #[error("run `{run}` ran out of fuel (budget {fuel})")]
    OutOfFuel {
        /// The Run.
        run: String,
        /// The budget it had.
        fuel: u64,
    },
    /// The guest tried to grow its memory past the limit.
    #[error("run `{run}` hit the memory limit of {limit} bytes")]
    MemoryLimit {
        /// The Run.
        run: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The Run did not finish within its wall-clock timeout.
    #[error("run `{run}` timed out after {}", crate::limits::format_duration(*timeout))]
    Timeout {
        /// The Run.
        run: String,
        /// The timeout it had.
        timeout: Duration,
    },
    /// The Run was cancelled.
    #[error("run `{run}` was cancelled")]
    Cancelled {
        /// The Run.
        run: String,
    },
    /// The guest wrote more output than the per-Run cap allows.
    #[error("run `{run}` wrote more than {limit} bytes of output")]
    OutputLimit {
        /// The Run.
        run: String,
        /// The cap, in bytes.
        limit: u64,
    },
    /// A command Run's scratch folder grew past its limit.
    #[error("run `{run}` took more than {} of scratch space", crate::limits::format_size(*limit))]
    DiskLimit {
        /// The Run.
        run: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The guest's output could not be written to the Run's files (a full
    /// disk, say).
    #[error("run `{run}`: {message}")]
    OutputWrite {
        /// The Run.
        run: String,
        /// What failed.
        message: String,
    },
    /// The guest trapped (a panic, an `unreachable`, a bad memory access...).
    #[error("run `{run}` trapped: {message}")]
    Trap {
        /// The Run.
        run: String,
        /// What the trap said.
        message: String,
    },
    /// The function ran and returned an error.
    #[error("run `{run}` failed: {message}")]
    Failed {
        /// The Run.
        run: String,
        /// The function's error message.
        message: String,
    },
    /// A command of a command Run exited with a non-zero code.
    #[error("run `{run}`: {message}")]
    ExitCode {
        /// The Run.
        run: String,
        /// Which command, and its code.
        message: String,
    },
    /// A Python statement of a `run_python` Run raised an exception.
    #[error("run `{run}`: {message}")]
    PythonException {
        /// The Run.
        run: String,
        /// The statement and the exception's one-line summary.
        message: String,
    },
    /// The host that ran the Run died before it ended.
    #[error("run `{run}` was interrupted: {message}")]
    Interrupted {
        /// The Run.
        run: String,
        /// What happened.
        message: String,
    },
    /// The arguments did not decode (on the host, or in the guest).
    #[error("bad input: {message}")]
    BadInput {
        /// What was wrong.
        message: String,
    },
    /// The component has no function of that name.
    #[error("unknown function `{name}`{hint}")]
    UnknownFunction {
        /// The name asked for.
        name: String,
        /// What is there instead, ready to print after the name.
        hint: String,
    },
    /// The bytes are not a usable component.
    #[error("not a usable component: {message}")]
    BadComponent {
        /// Why.
        message: String,
    },
    /// A Run, artifact or function name breaks the naming rules.
    #[error("invalid {what} name `{name}`: {reason}")]
    InvalidName {
        /// Run, artifact or function.
        what: &'static str,
        /// The name given (escaped for printing).
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// Nothing of that name exists.
    #[error("no {what} named `{name}`")]
    NotFound {
        /// Run, function or artifact.
        what: &'static str,
        /// The name looked up.
        name: String,
    },
    /// A Run of that name exists already and may not be replaced.
    #[error("run `{run}` already exists ({status}){hint}")]
    RunExists {
        /// The Run.
        run: String,
        /// Its status.
        status: crate::RunStatus,
        /// How to go on, ready to print after the status.
        hint: String,
    },
    /// A Run of that name was made by another function or from other inputs.
    #[error("run `{run}` was made {reason}; pass rerun to replace it")]
    RunMismatch {
        /// The Run.
        run: String,
        /// What differs.
        reason: String,
    },
    /// The Run has not ended, so it has no result yet.
    #[error("run `{run}` has not finished (status {status})")]
    NotFinished {
        /// The Run.
        run: String,
        /// Its status.
        status: crate::RunStatus,
    },
    /// The caller may see the object but not do this to it (a user with
    /// read access asking to cancel, say), or the name is another user's.
    #[error("{message}")]
    Forbidden {
        /// What was refused, and why.
        message: String,
    },
    /// A request the runtime cannot honour (bad limit, full pool...).
    #[error("{0}")]
    Invalid(String),
    /// No new Run may start: the disk that holds Runs has less free space
    /// than the cluster keeps in reserve.
    /// (The message leaves the path out: clients of a daemon see it.)
    #[error(
        "the host's disk is nearly full ({} free, under the reserve of {}); no new Run starts until space is freed",
        crate::limits::format_size(*free),
        crate::limits::format_size(*reserve)
    )]
    DiskFull {
        /// A folder on that disk.
        path: PathBuf,
        /// The bytes free.
        free: u64,
        /// The bytes the cluster keeps free.
        reserve: u64,
    },
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The index of Runs could not be read or written.
    #[error("the index of Runs {}: {message}", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A stored JSON file did not parse.
    #[error("corrupt file {}: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Wasmtime failed in a way that is not the guest's doing.
    #[error("engine error: {0}")]
    Engine(String),
    /// Object storage (S3) failed or holds something unusable.
    #[error("{0}")]
    Remote(String),
}

impl Error {
    /// The `error.kind` recorded in a Run's `config.json` for this error.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::OutOfFuel { .. } => "out_of_fuel",
            Error::MemoryLimit { .. } => "memory_limit",
            Error::Timeout { .. } => "timeout",
            Error::Cancelled { .. } => "cancelled",
            Error::OutputLimit { .. } => "output_limit",
            Error::DiskLimit { .. } => "disk_limit",
            Error::OutputWrite { .. } => "output_write",
            Error::Trap { .. } => "trap",
            Error::Failed { .. } => "failed",
            Error::ExitCode { .. } => "exit_code",
            Error::Interrupted { .. } => "interrupted",
            Error::PythonException { .. } => "python_exception",
            Error::BadInput { .. } => "bad_input",
            Error::UnknownFunction { .. } => "unknown_function",
            Error::BadComponent { .. } => "bad_component",
            Error::InvalidName { .. } => "invalid_name",
            Error::NotFound { .. } => "not_found",
            Error::RunExists { .. } => "run_exists",
            Error::RunMismatch { .. } => "run_mismatch",
            Error::NotFinished { .. } => "not_finished",
            Error::Forbidden { .. } => "forbidden",
            Error::Invalid(_) => "invalid",
            Error::DiskFull { .. } => "disk_full",
            Error::Io { .. } => "io",
            Error::Corrupt { .. } => "corrupt",
            Error::Index { .. } => "index",
            Error::Engine(_) => "engine",
            Error::Remote(_) => "remote",
        }
    }

    /// The Run this error ended, when it ended one that was recorded.
    pub fn run(&self) -> Option<&str> {
        match self {
            Error::OutOfFuel { run, .. }
            | Error::MemoryLimit { run, .. }
            | Error::Timeout { run, .. }
            | Error::Cancelled { run }
            | Error::OutputLimit { run, .. }
            | Error::DiskLimit { run, .. }
            | Error::OutputWrite { run, .. }
            | Error::Trap { run, .. }
            | Error::Failed { run, .. }
            | Error::ExitCode { run, .. }
            | Error::Interrupted { run, .. }
            | Error::PythonException { run, .. } => Some(run),
            _ => None,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn engine(e: wasmtime::Error) -> Self {
        Error::Engine(format!("{e:#}"))
    }

    /// Rebuild the error a finished Run recorded, so that loading a failed
    /// Run gives the same variant the call gave.
    pub(crate) fn from_record(run: &str, err: &crate::RunError, limits: &crate::Limits) -> Self {
        let run = run.to_string();
        let message = err.message.clone();
        match err.kind.as_str() {
            "out_of_fuel" => Error::OutOfFuel {
                run,
                fuel: limits.fuel.unwrap_or(u64::MAX),
            },
            "memory_limit" => Error::MemoryLimit {
                run,
                limit: limits.memory,
            },
            "timeout" => Error::Timeout {
                run,
                timeout: limits.timeout(),
            },
            "cancelled" => Error::Cancelled { run },
            "output_limit" => Error::OutputLimit {
                run,
                limit: limits.output,
            },
            "disk_limit" => Error::DiskLimit {
                run,
                limit: limits.scratch.unwrap_or_default(),
            },
            "output_write" => Error::OutputWrite { run, message },
            "trap" => Error::Trap { run, message },
            "interrupted" => Error::Interrupted { run, message },
            "exit_code" => Error::ExitCode { run, message },
            "python_exception" => Error::PythonException { run, message },
            "bad_input" => Error::BadInput { message },
            "unknown_function" => Error::UnknownFunction {
                name: message,
                hint: String::new(),
            },
            _ => Error::Failed { run, message },
        }
    }
}
