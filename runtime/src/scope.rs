//! Context scopes: a Run of type `context` around a block of a host
//! program (the seed's `with rh.run(name=...) as r:`).
//!
//! Calls and commands made through the scope record it as their
//! `parent_run`; artifacts the host program loads or saves through it are
//! its upstream / downstream; it ends `completed`, or `error` with the
//! body's message. Scopes nest (a scope opened inside another names it as
//! parent). What a scope loaded and saved is journalled to
//! `scopes/<name>.jsonl` as it happens, so other processes (the CLI inside
//! `rh-wasm scope NAME -- ...`) can add to it, and it is folded into the
//! Run's `config.json` when the scope ends.

use crate::record::{ArtifactRef, RunConfig, RunError, RunStatus, RunType};
use crate::{CallRequest, Error, ExecRequest, Result, Run, Runtime};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// An open scope; see the module docs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Scope {
    inner: Arc<ScopeInner>,
}

#[derive(Debug)]
struct ScopeInner {
    runtime: Runtime,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    dir: String,
    name: String,
    digest: String,
}

pub(crate) fn journal(rt: &Runtime, name: &str) -> PathBuf {
    rt.root().join("scopes").join(format!("{name}.jsonl"))
}

/// Remove the journals of scopes that have ended without being ended
/// (their host died, and recovery marked them `interrupted`) or whose Run
/// is gone; an open scope's journal is kept.
pub(crate) fn sweep_journals(rt: &Runtime) {
    let Ok(entries) = std::fs::read_dir(rt.root().join("scopes")) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".jsonl")) else {
            continue;
        };
        let open = crate::validate_run_name(name).is_ok()
            && rt.run(name).is_ok_and(|r| !r.status().is_terminal());
        if !open {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Add what a scope loaded (`upstream`) or saved (`downstream`).
pub(crate) fn record(rt: &Runtime, scope: &str, dir: &str, r: &ArtifactRef) -> Result<()> {
    crate::validate_run_name(scope)?;
    let path = journal(rt, scope);
    if !path.exists() {
        return Err(Error::NotFound {
            what: "open scope",
            name: scope.to_string(),
        });
    }
    let line = serde_json::to_string(&Entry {
        dir: dir.to_string(),
        name: r.name.clone(),
        digest: r.digest.clone(),
    })
    .map_err(|e| Error::Invalid(e.to_string()))?;
    let mut f = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    f.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| Error::io("write", &path, e))
}

impl Runtime {
    /// Open a scope: a Run of type `context`, `running` until it ends.
    pub fn open_scope(&self, name: &str, parent: Option<&str>) -> Result<Scope> {
        self.open_scope_as(name, parent, None)
    }

    /// Open a scope as `user`, who owns it (and needs write access to its
    /// parent).
    pub fn open_scope_as(
        &self,
        name: &str,
        parent: Option<&str>,
        user: Option<&crate::User>,
    ) -> Result<Scope> {
        crate::validate_run_name(name)?;
        if let Some(p) = parent {
            crate::validate_run_name(p)?;
            self.require(
                user,
                crate::ObjectKind::Run,
                p,
                crate::Access::Write,
                "making Runs inside it",
            )?;
        }
        let dir = self.root().join("scopes");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create folder", &dir, e))?;
        let mut config = RunConfig::function(name.to_string(), self.cluster().to_string());
        config.run_type = RunType::Context;
        config.parent_run = parent.map(str::to_string);
        config.creator = user.map(|u| u.name.clone());
        self.claim_scope(&mut config, user)?;
        let path = journal(self, name);
        std::fs::write(&path, b"").map_err(|e| Error::io("create", &path, e))?;
        Ok(Scope {
            inner: Arc::new(ScopeInner {
                runtime: self.clone(),
                name: name.to_string(),
            }),
        })
    }

    /// End an open scope (from any process): `Ok` completes it, `Err`
    /// records the message and ends it in `error`.
    pub fn end_scope(&self, name: &str, outcome: std::result::Result<(), String>) -> Result<Run> {
        let mut run = self.run(name)?;
        let mut config = run.config().clone();
        if config.run_type != RunType::Context {
            return Err(Error::Invalid(format!("run `{name}` is not a scope")));
        }
        if config.status.is_terminal() {
            return Ok(run);
        }
        let path = journal(self, name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines() {
            let Ok(e) = serde_json::from_str::<Entry>(line) else {
                continue;
            };
            let r = ArtifactRef {
                name: e.name,
                digest: e.digest,
            };
            let list = if e.dir == "upstream" {
                &mut config.upstream_artifacts
            } else {
                &mut config.downstream_artifacts
            };
            if !list.contains(&r) {
                list.push(r);
            }
        }
        config.end_time = Some(crate::names::now_rfc3339());
        match outcome {
            Ok(()) => config.status = RunStatus::Completed,
            Err(message) => {
                config.status = RunStatus::Error;
                config.error = Some(RunError {
                    kind: "failed".into(),
                    message,
                });
            }
        }
        self.finish_scope(&config)?;
        let _ = std::fs::remove_file(&path);
        run = self.run(name)?;
        Ok(run)
    }

    /// Run `body` inside a new scope named `name`: it ends `completed` when
    /// the body returns `Ok`, `error` with the message when it returns
    /// `Err`, and the body's result is returned either way.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> rh_runtime::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let rt = rh_runtime::Runtime::open(dir.path())?;
    /// rt.save_artifact("my_existing_data", b"1,2,3")?;
    /// let n = rt
    ///     .in_scope("ctx_run", |r| async move {
    ///         let (bytes, _) = r.load_artifact("my_existing_data")?;
    ///         r.save_artifact("my_new_data", &bytes)?;
    ///         Ok::<_, rh_runtime::Error>(bytes.len())
    ///     })
    ///     .await?;
    /// assert_eq!(n, 5);
    /// let run = rt.run("ctx_run")?;
    /// assert_eq!(run.status(), rh_runtime::RunStatus::Completed);
    /// assert_eq!(run.config().upstream_artifacts[0].name, "my_existing_data");
    /// assert_eq!(run.config().downstream_artifacts[0].name, "my_new_data");
    /// # Ok(()) }
    /// ```
    pub async fn in_scope<F, Fut, T, E>(&self, name: &str, body: F) -> std::result::Result<T, E>
    where
        F: FnOnce(Scope) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
        E: std::fmt::Display + From<Error>,
    {
        let scope = self.open_scope(name, None)?;
        scope.run_body(body).await
    }
}

impl Scope {
    /// The scope's Run name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn rt(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// Call a function inside the scope.
    pub async fn call(&self, req: CallRequest) -> Result<Run> {
        self.rt().call(req.parent_run(self.name())).await
    }

    /// Run commands inside the scope.
    pub async fn exec(&self, mut req: ExecRequest) -> Result<Run> {
        req.parent_run = Some(self.name().to_string());
        self.rt().exec(req).await
    }

    /// Load an artifact's current version; recorded as upstream.
    pub fn load_artifact(&self, name: &str) -> Result<(Vec<u8>, ArtifactRef)> {
        let (bytes, r) = self.rt().load_artifact(name)?;
        record(self.rt(), self.name(), "upstream", &r)?;
        Ok((bytes, r))
    }

    /// Save an artifact; recorded as downstream.
    pub fn save_artifact(&self, name: &str, data: &[u8]) -> Result<ArtifactRef> {
        let r = self.rt().save_artifact(name, data)?;
        record(self.rt(), self.name(), "downstream", &r)?;
        Ok(r)
    }

    /// Run `body` in a scope nested in this one.
    pub async fn in_scope<F, Fut, T, E>(&self, name: &str, body: F) -> std::result::Result<T, E>
    where
        F: FnOnce(Scope) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
        E: std::fmt::Display + From<Error>,
    {
        let scope = self.rt().open_scope(name, Some(self.name()))?;
        scope.run_body(body).await
    }

    async fn run_body<F, Fut, T, E>(self, body: F) -> std::result::Result<T, E>
    where
        F: FnOnce(Scope) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
        E: std::fmt::Display + From<Error>,
    {
        let rt = self.rt().clone();
        let name = self.name().to_string();
        let out = body(self).await;
        let outcome = match &out {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        rt.end_scope(&name, outcome)?;
        out
    }

    /// End the scope now.
    pub fn end(self, outcome: std::result::Result<(), String>) -> Result<Run> {
        self.rt().end_scope(self.name(), outcome)
    }
}
