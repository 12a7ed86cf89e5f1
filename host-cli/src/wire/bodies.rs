//! Request bodies: a call, an `exec`, a scope's opening and end, a share.
//! The daemon parses them (bounded: see `server::json`); the client builds
//! them from the runtime's own request types, so a remote call asks for
//! exactly what a local one would.

use rh_runtime::Caller;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a call asks for: wait for the Run (`call`, `get_or_call`), or
/// answer once it is running (`run`, `get_or_run`); the `get_or_*` modes
/// reuse the Run of the same name when the same call made it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallMode {
    /// Make a Run and wait for it.
    #[default]
    Call,
    /// The completed Run of this call, else make it and wait.
    GetOrCall,
    /// Start a Run.
    Run,
    /// The Run of this call whatever its status, else start it.
    GetOrRun,
}

impl CallMode {
    /// Whether the caller waits for the Run to end.
    pub fn waits(self) -> bool {
        matches!(self, CallMode::Call | CallMode::GetOrCall)
    }

    /// Whether an existing Run of the same call is reused.
    pub fn reuses(self) -> bool {
        matches!(self, CallMode::GetOrCall | CallMode::GetOrRun)
    }
}

/// A request with the settings every Run body carries: its name, its
/// limits, whether it replaces a finished Run.
macro_rules! with_settings {
    ($body:expr, $req:expr) => {{
        let b = $body;
        let mut r = $req.rerun(b.rerun);
        if let Some(n) = &b.run_name {
            r = r.run_name(n.clone());
        }
        if let Some(f) = b.fuel {
            r = r.fuel(f);
        }
        if let Some(m) = b.memory {
            r = r.memory(m);
        }
        if let Some(t) = b.timeout_ms {
            r = r.timeout(std::time::Duration::from_millis(t));
        }
        r.tags = b.tags.clone();
        r
    }};
}

/// The body of `POST /v1/calls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallBody {
    pub function: String,
    #[serde(default = "empty_args")]
    pub args: serde_json::Value,
    #[serde(default)]
    pub run_name: Option<String>,
    #[serde(default)]
    pub fuel: Option<u64>,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub rerun: bool,
    #[serde(default)]
    pub mode: CallMode,
    /// Answer with frames carrying the output as it is written.
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub creator: Option<String>,
    /// Use the result cache (`null`: the daemon's default).
    #[serde(default)]
    pub cache: Option<bool>,
    /// Execute even when a cached answer exists.
    #[serde(default)]
    pub refresh_cache: bool,
    /// The oldest a cached answer may be, in milliseconds.
    #[serde(default)]
    pub cache_ttl_ms: Option<u64>,
    /// The scope (or other Run) this call is made inside.
    #[serde(default)]
    pub parent_run: Option<String>,
    /// Labels recorded in the Run's `tags`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// On a cluster of several hosts, how many times to run it again
    /// elsewhere when its host dies.
    #[serde(default)]
    pub retries: u32,
}

impl CallBody {
    /// The body for a call request, in `mode`, made by `caller` (its
    /// creator and scope go with it); a call that waits streams its output.
    pub fn from_request(
        req: &rh_runtime::CallRequest,
        caller: &Caller,
        mode: CallMode,
    ) -> CallBody {
        CallBody {
            function: req.function.clone(),
            args: req.args.clone(),
            run_name: req.run_name.clone(),
            fuel: req.fuel,
            memory: req.memory,
            timeout_ms: req.timeout.map(|t| t.as_millis() as u64),
            rerun: req.rerun,
            mode,
            stream: mode.waits(),
            creator: caller.creator().map(str::to_string),
            cache: req.cache,
            refresh_cache: req.refresh_cache,
            cache_ttl_ms: req.cache_ttl.map(|t| t.as_millis() as u64),
            parent_run: caller.scope().map(str::to_string),
            tags: req.tags.clone(),
            retries: req.retries,
        }
    }

    /// The call request this body asks for.
    pub fn to_request(&self) -> rh_runtime::CallRequest {
        let r = rh_runtime::CallRequest::new(self.function.clone(), self.args.clone());
        let mut r = with_settings!(self, r);
        if let Some(c) = self.cache {
            r = r.cache(c);
        }
        r = r.refresh_cache(self.refresh_cache).retries(self.retries);
        if let Some(t) = self.cache_ttl_ms {
            r = r.cache_ttl(std::time::Duration::from_millis(t));
        }
        r
    }

    /// Who the call acts for, the request being made by `who`: `who` when
    /// it is a user the daemon checks (the body's `creator` is then
    /// ignored), else whom the client names; inside `parent_run`.
    pub fn caller(&self, who: &Caller) -> Caller {
        acting(who, self.creator.as_deref(), self.parent_run.as_deref())
    }
}

/// The body of `POST /v1/exec`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecBody {
    pub cmds: Vec<ExecCmd>,
    #[serde(default)]
    pub run_name: Option<String>,
    #[serde(default)]
    pub keep_going: bool,
    #[serde(default)]
    pub rerun: bool,
    #[serde(default)]
    pub fuel: Option<u64>,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The scratch limit, in bytes.
    #[serde(default)]
    pub scratch: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub creator: Option<String>,
    #[serde(default)]
    pub parent_run: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// See [`CallBody::retries`].
    #[serde(default)]
    pub retries: u32,
}

/// One command: as recorded, the component (name or digest), its args.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecCmd {
    pub cmd: String,
    pub component: String,
    #[serde(default)]
    pub args: Vec<String>,
}

impl ExecBody {
    /// The body for a command Run, made by `caller`.
    pub fn from_request(req: &rh_runtime::ExecRequest, caller: &Caller, stream: bool) -> ExecBody {
        ExecBody {
            cmds: req
                .cmds
                .iter()
                .map(|c| ExecCmd {
                    cmd: c.cmd.clone(),
                    component: c.component.clone(),
                    args: c.args.clone(),
                })
                .collect(),
            run_name: req.run_name.clone(),
            keep_going: req.keep_going,
            rerun: req.rerun,
            fuel: req.fuel,
            memory: req.memory,
            timeout_ms: req.timeout.map(|t| t.as_millis() as u64),
            scratch: req.scratch,
            stream,
            creator: caller.creator().map(str::to_string),
            parent_run: caller.scope().map(str::to_string),
            tags: req.tags.clone(),
            retries: 0,
        }
    }

    /// The command Run this body asks for.
    pub fn to_request(&self) -> rh_runtime::ExecRequest {
        let cmds = self
            .cmds
            .iter()
            .map(|c| rh_runtime::CmdSpec {
                cmd: c.cmd.clone(),
                component: c.component.clone(),
                args: c.args.clone(),
            })
            .collect();
        let r = rh_runtime::ExecRequest::new(cmds).keep_going(self.keep_going);
        let mut r = with_settings!(self, r);
        if let Some(s) = self.scratch {
            r = r.scratch(s);
        }
        r
    }

    /// Who the Run acts for; see [`CallBody::caller`].
    pub fn caller(&self, who: &Caller) -> Caller {
        acting(who, self.creator.as_deref(), self.parent_run.as_deref())
    }
}

/// The body of `POST /v1/python`: Python statements for the interpreter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonBody {
    pub statements: Vec<String>,
    #[serde(default)]
    pub keep_going: bool,
    #[serde(default)]
    pub run_name: Option<String>,
    #[serde(default)]
    pub rerun: bool,
    #[serde(default)]
    pub fuel: Option<u64>,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub creator: Option<String>,
    #[serde(default)]
    pub parent_run: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// See [`CallBody::retries`].
    #[serde(default)]
    pub retries: u32,
}

impl PythonBody {
    /// The body for `statements`, with the Run's settings from `req`.
    pub fn new(
        statements: Vec<String>,
        keep_going: bool,
        req: &rh_runtime::CallRequest,
        caller: &Caller,
        stream: bool,
    ) -> PythonBody {
        PythonBody {
            statements,
            keep_going,
            run_name: req.run_name.clone(),
            rerun: req.rerun,
            fuel: req.fuel,
            memory: req.memory,
            timeout_ms: req.timeout.map(|t| t.as_millis() as u64),
            stream,
            creator: caller.creator().map(str::to_string),
            parent_run: caller.scope().map(str::to_string),
            tags: req.tags.clone(),
            retries: req.retries,
        }
    }

    /// The Run's settings (its function and arguments are the runtime's).
    pub fn to_request(&self) -> rh_runtime::CallRequest {
        let r = rh_runtime::CallRequest::new(rh_runtime::python::NAME, empty_args());
        with_settings!(self, r)
    }

    /// Who the Run acts for; see [`CallBody::caller`].
    pub fn caller(&self, who: &Caller) -> Caller {
        acting(who, self.creator.as_deref(), self.parent_run.as_deref())
    }
}

/// A request's caller: a checked user as they are, else the client's own
/// name for itself; inside `parent` when given.
fn acting(who: &Caller, creator: Option<&str>, parent: Option<&str>) -> Caller {
    let caller = match (who.user(), creator) {
        (Some(_), _) => who.clone(),
        (None, Some(c)) => Caller::named(c),
        (None, None) => Caller::host(),
    };
    caller.in_scope_opt(parent.map(str::to_string))
}

fn empty_args() -> serde_json::Value {
    serde_json::Value::Array(Vec::new())
}

/// The body of `POST /v1/scopes`: `{"name", "parent_run"?}` (the client
/// sends `parent_run: null` outside a scope).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub parent_run: Option<String>,
}

/// The body of `POST /v1/scopes/{name}/end`: `{}` completes the scope,
/// `{"error": "<message>"}` ends it in `error`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndScopeBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl EndScopeBody {
    /// The body ending a scope with `outcome`.
    pub fn new(outcome: &Result<(), String>) -> EndScopeBody {
        EndScopeBody {
            error: outcome.as_ref().err().cloned(),
        }
    }

    /// How the scope ends.
    pub fn outcome(self) -> Result<(), String> {
        match self.error {
            Some(m) => Err(m),
            None => Ok(()),
        }
    }
}

/// The body of `POST /v1/shares` (with `access`, default `read`) and of
/// `POST /v1/shares/remove` (without). `kind` and `access` stay text here:
/// the daemon words what is wrong with them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}
