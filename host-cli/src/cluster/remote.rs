//! A daemon, through the HTTP client: each verb one request (or a few),
//! typed with the `wire` types. Calls and `exec` stream their output in
//! frames; components and artifacts go up as raw bytes; `pull` and `push`
//! copy a Run's files one by one, each checked against its digest.

use super::{Cluster, RunFolder, caller, deliver, write_run_file};
use crate::client::Client;
use crate::wire::{
    self, CacheClearBody, CacheCleared, CallBody, CallMode, Deleted, DeploymentInfo, EndScopeBody,
    ExecBody, Lineage, Reindexed, RunAnswer, RunFiles, ScopeBody, ShareBody, Started, Unshared,
    full,
};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use rh_runtime::{
    Artifact, ArtifactRef, CallRequest, Caller, ComponentInfo, ExecRequest, GcReport, GcRequest,
    ObjectKind, OutputKind, OutputObserver, RunConfig, RunPage, RunQuery, Share,
};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

pub struct Remote {
    client: Client,
    /// Whom calls and commands name as their creator, and the scope they
    /// are made in: see [`super::caller`].
    me: Caller,
}

impl Remote {
    pub fn new(name: &str, client: Client) -> Remote {
        Remote {
            client,
            me: caller(name),
        }
    }

    /// `?scope=S` (or `&scope=S` after other parameters) when in a scope.
    fn scope_param(&self, first: bool) -> String {
        match self.me.scope() {
            Some(s) => format!("{}scope={s}", if first { '?' } else { '&' }),
            None => String::new(),
        }
    }
}

#[async_trait::async_trait]
impl Cluster for Remote {
    async fn deploy(&self, name: &str, component: Vec<u8>) -> Result<DeploymentInfo> {
        rh_runtime::validate_name("function", name)?;
        let body = upload_with_progress(Bytes::from(component));
        let path = format!("/v1/functions?name={name}");
        self.client
            .request(Method::POST, &path, body, "application/wasm")
            .await
    }

    async fn functions(&self) -> Result<Vec<DeploymentInfo>> {
        self.client.get("/v1/functions").await
    }

    async fn add_component(&self, component: Vec<u8>) -> Result<String> {
        let info: ComponentInfo = self
            .client
            .request(
                Method::POST,
                "/v1/components",
                full(component),
                "application/wasm",
            )
            .await?;
        Ok(info.digest)
    }

    async fn call(
        &self,
        req: CallRequest,
        mode: CallMode,
        out: OutputObserver,
    ) -> Result<RunAnswer> {
        let body = CallBody::from_request(&req, &self.me, mode);
        self.client.stream("/v1/calls", &body, &out).await
    }

    async fn start(&self, req: CallRequest, mode: CallMode) -> Result<Started> {
        let body = CallBody::from_request(&req, &self.me, mode);
        self.client.post("/v1/calls", &body).await
    }

    async fn exec(&self, req: ExecRequest, out: OutputObserver) -> Result<RunAnswer> {
        let body = ExecBody::from_request(&req, &self.me, true);
        self.client.stream("/v1/exec", &body, &out).await
    }

    async fn run_python(
        &self,
        statements: Vec<String>,
        keep_going: bool,
        req: CallRequest,
        out: OutputObserver,
    ) -> Result<RunAnswer> {
        let body = wire::PythonBody::new(statements, keep_going, &req, &self.me, true);
        self.client.stream("/v1/python", &body, &out).await
    }

    async fn search(&self, q: &RunQuery) -> Result<RunPage> {
        self.client
            .get(&format!("/v1/runs?{}", wire::to_params(q)))
            .await
    }

    async fn gc(&self, req: &GcRequest) -> Result<GcReport> {
        self.client.post("/v1/gc", req).await
    }

    async fn clear_cache(&self, function: Option<&str>) -> Result<CacheCleared> {
        let body = CacheClearBody {
            function: function.map(str::to_string),
        };
        self.client.post("/v1/cache/clear", &body).await
    }

    async fn reindex(&self) -> Result<Reindexed> {
        self.client.post_empty("/v1/reindex").await
    }

    async fn run(&self, name: &str) -> Result<RunConfig> {
        self.client.get(&format!("/v1/runs/{name}")).await
    }

    async fn result(&self, name: &str) -> Result<RunAnswer> {
        self.client.get(&format!("/v1/runs/{name}/result")).await
    }

    async fn wait(&self, name: &str) -> Result<RunAnswer> {
        self.client.get(&format!("/v1/runs/{name}/wait")).await
    }

    async fn cancel(&self, name: &str) -> Result<RunAnswer> {
        self.client
            .post_empty(&format!("/v1/runs/{name}/cancel"))
            .await
    }

    async fn logs(
        &self,
        name: &str,
        kind: OutputKind,
        follow: bool,
        to: &mut (dyn Write + Send),
    ) -> Result<()> {
        let stream = match kind {
            OutputKind::Stdout => "stdout",
            OutputKind::Stderr => "stderr",
        };
        let path = format!(
            "/v1/runs/{name}/logs?stream={stream}&follow={}",
            u8::from(follow)
        );
        let resp = self
            .client
            .send(Method::GET, &path, full(""), "application/json")
            .await?;
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                deliver(to, &data)?;
            }
        }
        Ok(())
    }

    async fn copy_run(&self, name: &str, to: &Path) -> Result<Vec<String>> {
        let list: RunFiles = self.client.get(&format!("/v1/runs/{name}/files")).await?;
        let mut names = Vec::new();
        for f in list.files {
            // Paths come from the cluster: take only plain relative ones.
            if !rh_runtime::is_plain_relative(&f.path) {
                bail!(
                    "the cluster named a file `{}`, which is not a Run file",
                    f.path
                );
            }
            let bytes = self
                .client
                .bytes(&format!("/v1/runs/{name}/files/{}", f.path))
                .await?;
            let digest = rh_runtime::digest_of(&bytes);
            if digest != f.digest {
                bail!(
                    "{} changed or was damaged in transit (digest {digest}, expected {})",
                    f.path,
                    f.digest
                );
            }
            write_run_file(to, &f.path, &bytes)?;
            names.push(f.path);
        }
        Ok(names)
    }

    async fn finished_run(&self, name: &str) -> Result<RunFolder> {
        let stage = staging_folder()?;
        let folder = RunFolder {
            path: stage.join(name),
            staged: Some(stage),
        };
        std::fs::create_dir(folder.path())?;
        // Dropped on error: the staged copy goes with it.
        self.copy_run(name, folder.path()).await?;
        Ok(folder)
    }

    async fn delete(&self, kind: ObjectKind, name: &str) -> Result<()> {
        rh_runtime::validate_name("object", name)?;
        let route = match kind {
            ObjectKind::Function => "functions",
            ObjectKind::Artifact => "artifacts",
            _ => "runs",
        };
        let _: Deleted = self.client.delete(&format!("/v1/{route}/{name}")).await?;
        Ok(())
    }

    async fn open_scope(&self, name: &str) -> Result<()> {
        let body = ScopeBody {
            name: Some(name.to_string()),
            parent_run: self.me.scope().map(str::to_string),
        };
        let _: Started = self.client.post("/v1/scopes", &body).await?;
        Ok(())
    }

    async fn end_scope(
        &self,
        name: &str,
        outcome: std::result::Result<(), String>,
    ) -> Result<RunAnswer> {
        let body = EndScopeBody::new(&outcome);
        self.client
            .post(&format!("/v1/scopes/{name}/end"), &body)
            .await
    }

    async fn put_artifact(&self, name: &str, data: Vec<u8>) -> Result<ArtifactRef> {
        let path = format!("/v1/artifacts/{name}{}", self.scope_param(true));
        self.client
            .request(Method::POST, &path, full(data), "application/octet-stream")
            .await
    }

    async fn get_artifact(&self, name: &str, version: Option<&str>) -> Result<Vec<u8>> {
        let path = match version {
            Some(v) => format!(
                "/v1/artifacts/{name}/data?version={v}{}",
                self.scope_param(false)
            ),
            None => format!("/v1/artifacts/{name}/data{}", self.scope_param(true)),
        };
        Ok(self.client.bytes(&path).await?.to_vec())
    }

    async fn artifacts(&self) -> Result<Vec<Artifact>> {
        self.client.get("/v1/artifacts").await
    }

    async fn artifact(&self, name: &str) -> Result<Artifact> {
        self.client.get(&format!("/v1/artifacts/{name}")).await
    }

    async fn lineage(&self, name: &str) -> Result<Lineage> {
        self.client.get(&format!("/v1/lineage/{name}")).await
    }

    async fn share(&self, share: &ShareBody) -> Result<Share> {
        self.client.post("/v1/shares", share).await
    }

    async fn unshare(&self, share: &ShareBody) -> Result<Unshared> {
        self.client.post("/v1/shares/remove", share).await
    }

    async fn shares(&self) -> Result<Vec<Share>> {
        self.client.get("/v1/shares").await
    }
}

/// A component's bytes as a request body sent in chunks, with progress on
/// a terminal for uploads over 4 MiB.
fn upload_with_progress(bytes: Bytes) -> wire::BoxBody {
    let total = bytes.len();
    let (tx, body) = wire::channel(4);
    let show = total > 4 << 20 && std::io::stderr().is_terminal();
    tokio::spawn(async move {
        let mut sent = 0;
        for chunk in bytes.chunks(256 << 10) {
            if tx.send(bytes.slice_ref(chunk)).await.is_err() {
                return;
            }
            sent += chunk.len();
            if show {
                eprint!("\ruploading {} / {} KiB", sent >> 10, total >> 10);
                let _ = std::io::stderr().flush();
            }
        }
        if show {
            eprintln!();
        }
    });
    body
}

/// The prefix of push staging folders in the temp dir.
const STAGE: &str = "rh-wasm-push-";

/// A private folder to stage a daemon's Run in before it goes up. Staging
/// folders that a killed push left behind (their process is gone) are
/// removed first.
fn staging_folder() -> Result<PathBuf> {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(STAGE))
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            if !process_alive(pid) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let d = tmp.join(format!(
        "{STAGE}{}-{}",
        std::process::id(),
        rh_runtime::auto_run_name("stage")
    ));
    // A new folder of our own (0700): never one someone made ahead of us
    // in a shared temp dir.
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&d)
        .with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

fn process_alive(pid: i32) -> bool {
    rustix::process::Pid::from_raw(pid).is_some_and(|p| {
        !matches!(
            rustix::process::test_kill_process(p),
            Err(rustix::io::Errno::SRCH)
        )
    })
}
