//! The routes of a host of a cluster of several (`serve --nats`): calls,
//! `exec` and `run-python` go through the cluster's queue; cancels and
//! followers reach the host executing the Run (`cluster_output`); requests that change what
//! every host holds (deploys, artifacts, shares, deletes, gc) are applied
//! by every host in one order; everything else is answered from this
//! host's copy of the cluster's Runs, as on a single daemon.

use super::{Ctx, Json, Reply, ReqBody, Resp, answer, respond};
use crate::server::errors::ApiError;
use crate::server::hosts::{Cluster, HostInfo, Work, WorkKind};
use crate::wire::{self, CallBody, ExecBody, PythonBody, Started};
use hyper::{Method, StatusCode};
use rh_runtime::{Caller, Error, Prepared, RunConfig, RunStatus};
use std::sync::Arc;
use std::time::Duration;

/// Whether a request is one every host applies.
pub fn replicated(m: &Method, segs: &[&str]) -> bool {
    matches!(
        (m, segs),
        (&Method::POST, ["v1", "functions"])
            | (&Method::DELETE, ["v1", "functions", _])
            | (&Method::POST, ["v1", "components"])
            | (&Method::POST, ["v1", "artifacts", _])
            | (&Method::DELETE, ["v1", "artifacts", _])
            | (&Method::POST, ["v1", "shares"])
            | (&Method::POST, ["v1", "shares", "remove"])
            | (&Method::DELETE, ["v1", "runs", _])
            | (&Method::POST, ["v1", "cache", "clear"])
            | (&Method::POST, ["v1", "gc"])
    )
}

/// Apply a request on every host; answer with this host's outcome.
pub async fn replicate(
    cx: &Ctx<'_>,
    c: &Arc<Cluster>,
    m: Method,
    path: &str,
    req: ReqBody,
) -> Result<Resp, ApiError> {
    let big = path.starts_with("/v1/functions")
        || path.starts_with("/v1/components")
        || path.starts_with("/v1/artifacts");
    let body = if big {
        cx.upload(req).await?
    } else {
        let max = cx.state.max_request;
        super::body(req, max, cx.state.body_grace).await?
    };
    let user = cx.who.user().map(|u| u.name.clone());
    let applied = c
        .replicate(user.as_deref(), &m, path, cx.query, body)
        .await
        .map_err(unavailable)?;
    let status = StatusCode::from_u16(applied.status).unwrap_or(StatusCode::OK);
    Ok(respond(
        status,
        &applied.content_type,
        wire::full(applied.body.to_vec()),
    ))
}

pub(super) fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "cluster_unavailable",
        format!("the cluster's queue did not take the request: {e}"),
    )
}

/// `GET /v1/hosts`: the cluster's live hosts.
pub async fn hosts(c: &Arc<Cluster>) -> Result<Json<Vec<HostInfo>>, ApiError> {
    Ok(Json(c.live_hosts().await.map_err(unavailable)?))
}

/// `POST /v1/calls`: queued, then answered as on a single daemon.
pub async fn call(cx: &Ctx<'_>, c: &Arc<Cluster>, req: ReqBody) -> Result<Resp, ApiError> {
    let mut b: CallBody = cx.json_body(req, "call").await?;
    let who = b.caller(&cx.who);
    let p = prepared(c, || cx.rt.prepare(&who, b.to_request())).await?;
    b.run_name = Some(p.config.name.clone());
    let (mode, stream, retries) = (b.mode, b.stream, b.retries);
    let cached = b.cache.unwrap_or(cx.rt.caches_by_default()) && !b.refresh_cache;
    if mode == wire::CallMode::Call && cached {
        c.cache_flight(&cache_key(&p.config), &p.config.name)
            .await
            .map_err(unavailable)?;
    }
    let body = serde_json::to_value(&b).map_err(|e| ApiError::bad_input(e.to_string()))?;
    let work = work_of(cx, WorkKind::Call, body, retries, &p);
    let name = if mode.reuses() {
        match get_or_queue(cx, c, &who, work, p, b.rerun).await? {
            Reused::Existing(config) if !mode.waits() => {
                return Ok(Json(Started {
                    run_name: config.name.clone(),
                    status: config.status.to_string(),
                })
                .into_response());
            }
            Reused::Existing(config) => config.name,
            Reused::Queued(name) => name,
        }
    } else {
        queue_new(cx, c, &who, work, p, b.rerun).await?
    };
    answer_queued(cx, c, name, mode.waits(), stream).await
}

/// `POST /v1/exec`: a command Run, queued.
pub async fn exec(cx: &Ctx<'_>, c: &Arc<Cluster>, req: ReqBody) -> Result<Resp, ApiError> {
    let mut b: ExecBody = cx.json_body(req, "exec").await?;
    let who = b.caller(&cx.who);
    let p = prepared(c, || cx.rt.prepare_exec(&who, b.to_request())).await?;
    b.run_name = Some(p.config.name.clone());
    let body = serde_json::to_value(&b).map_err(|e| ApiError::bad_input(e.to_string()))?;
    let work = work_of(cx, WorkKind::Exec, body, b.retries, &p);
    let name = queue_new(cx, c, &who, work, p, b.rerun).await?;
    answer_queued(cx, c, name, false, b.stream).await
}

/// `POST /v1/python`: Python statements, queued.
pub async fn python(cx: &Ctx<'_>, c: &Arc<Cluster>, req: ReqBody) -> Result<Resp, ApiError> {
    let mut b: PythonBody = cx.json_body(req, "python").await?;
    let who = b.caller(&cx.who);
    let p = prepared(c, || {
        cx.rt
            .prepare_python(&who, b.statements.clone(), b.keep_going, b.to_request())
    })
    .await?;
    b.run_name = Some(p.config.name.clone());
    let body = serde_json::to_value(&b).map_err(|e| ApiError::bad_input(e.to_string()))?;
    let work = work_of(cx, WorkKind::Python, body, b.retries, &p);
    let name = queue_new(cx, c, &who, work, p, b.rerun).await?;
    answer_queued(cx, c, name, false, b.stream).await
}

fn work_of(cx: &Ctx, kind: WorkKind, body: serde_json::Value, retries: u32, p: &Prepared) -> Work {
    Work {
        run: p.config.name.clone(),
        kind,
        body,
        user: cx.who.user().map(|u| u.name.clone()),
        attempt: 1,
        retries,
        queued: p.config.clone(),
        after: 0,
        body_blob: None,
        entry_rev: 0,
    }
}

/// Check a request as this host knows the cluster; when it names what
/// this host has not heard of yet (a deploy through another host a moment
/// ago), once more after catching up with the events stream.
async fn prepared<F, Fut>(c: &Cluster, prepare: F) -> rh_runtime::Result<Prepared>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = rh_runtime::Result<Prepared>>,
{
    match prepare().await {
        Err(e)
            if matches!(e.kind(), "unknown_function" | "not_found")
                && c.catch_up(Duration::from_secs(5)).await =>
        {
            prepare().await
        }
        other => other,
    }
}

/// Claim the Run's name cluster-wide (replacing a finished Run on a
/// rerun the caller may make) and queue it. Its name.
async fn queue_new(
    cx: &Ctx<'_>,
    c: &Arc<Cluster>,
    who: &Caller,
    mut work: Work,
    p: Prepared,
    rerun: bool,
) -> Result<String, ApiError> {
    for _ in 0..8 {
        match c.claim_name(&work.run).await.map_err(unavailable)? {
            None => {
                // Ours; unless a Run of the name is here whose claim was
                // dropped (it was deleted and its name taken back).
                if let Ok(r) = cx.rt.run(&Caller::host(), &work.run)
                    && !rerun
                {
                    return Err(exists(&work.run, Some(r.status())));
                }
                match c.enqueue(work.clone(), p.inputs.clone()).await {
                    Ok(true) => return Ok(work.run),
                    Ok(false) => return Err(exists(&work.run, Some(RunStatus::Running))),
                    Err(e) => {
                        c.release_name(&work.run).await;
                        return Err(unavailable(e));
                    }
                }
            }
            Some(rev) => {
                let existing = match cx.rt.run(&Caller::host(), &work.run) {
                    Ok(r) => Some(r),
                    Err(_) if c.executing_host(&work.run).await.is_none() => {
                        // Claimed, and neither active nor known here once
                        // caught up: a claim left by a Run since removed.
                        c.catch_up(Duration::from_secs(2)).await;
                        match cx.rt.run(&Caller::host(), &work.run) {
                            Ok(r) => Some(r),
                            Err(_) => {
                                if c.reclaim(&work.run, rev).await {
                                    match c.enqueue(work.clone(), p.inputs.clone()).await {
                                        Ok(true) => return Ok(work.run),
                                        Ok(false) => {}
                                        Err(e) => return Err(unavailable(e)),
                                    }
                                }
                                continue;
                            }
                        }
                    }
                    Err(_) => None,
                };
                let status = existing.as_ref().map(|r| r.status());
                let may = rerun && status.is_some_and(RunStatus::is_terminal);
                if !may {
                    // Another user's Run says only that the name is taken.
                    if existing.is_some() {
                        cx.rt.run(who, &work.run).map_err(|_| {
                            ApiError::from(Error::Forbidden {
                                message: format!(
                                    "the run name `{}` is taken by another user's Run; choose another",
                                    work.run
                                ),
                            })
                        })?;
                    }
                    return Err(exists(&work.run, status));
                }
                cx.rt.check_write(who, &work.run, "running it again")?;
                if c.reclaim(&work.run, rev).await {
                    match c.enqueue(work.clone(), p.inputs.clone()).await {
                        Ok(true) => return Ok(work.run),
                        Ok(false) => return Err(exists(&work.run, Some(RunStatus::Running))),
                        Err(e) => return Err(unavailable(e)),
                    }
                }
                // Someone else replaced it meanwhile: look again.
                work.queued.start_time = Some(rh_runtime::now_rfc3339());
            }
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "run_exists",
        format!("run `{}` is being replaced by another call", work.run),
    ))
}

/// The error for a name taken by a Run of `status` (`None`: not known
/// here yet, so still running).
fn exists(run: &str, status: Option<RunStatus>) -> ApiError {
    let running = status.is_none_or(|s| !s.is_terminal());
    Error::RunExists {
        run: run.to_string(),
        status: status.unwrap_or(RunStatus::Running),
        hint: if running {
            "; it is still running, cancel it first".into()
        } else {
            "; use get-or-call to reuse it, or rerun to replace it".into()
        },
    }
    .into()
}

enum Reused {
    /// A Run of that name made by the same call.
    Existing(Box<RunConfig>),
    /// Queued now.
    Queued(String),
}

/// `get_or_call` / `get_or_run` across hosts: the Run of that name when
/// the same call made it (waited on while it runs), else queued once,
/// however many hosts are asked at the same time.
async fn get_or_queue(
    cx: &Ctx<'_>,
    c: &Arc<Cluster>,
    who: &Caller,
    work: Work,
    p: Prepared,
    rerun: bool,
) -> Result<Reused, ApiError> {
    let name = work.run.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let Some(rev) = c.claim_name(&name).await.map_err(unavailable)? else {
            if cx.rt.run(&Caller::host(), &name).is_err() {
                match c.enqueue(work.clone(), p.inputs.clone()).await {
                    Ok(true) => return Ok(Reused::Queued(name)),
                    Ok(false) => continue,
                    Err(e) => {
                        c.release_name(&name).await;
                        return Err(unavailable(e));
                    }
                }
            }
            // A Run of the name whose claim was dropped: as if claimed.
            continue;
        };
        let existing = match cx.rt.run(&Caller::host(), &name) {
            Ok(r) => r.config().clone(),
            Err(Error::NotFound { .. }) if tokio::time::Instant::now() < deadline => {
                // Claimed on another host a moment ago: its record is on
                // its way here.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            Err(Error::NotFound { .. }) if c.executing_host(&name).await.is_none() => {
                // A claim left by a Run since removed.
                if c.reclaim(&name, rev).await {
                    match c.enqueue(work.clone(), p.inputs.clone()).await {
                        Ok(true) => return Ok(Reused::Queued(name)),
                        Ok(false) => {}
                        Err(e) => return Err(unavailable(e)),
                    }
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        cx.rt.run(who, &name)?;
        let mismatch = differs(&p.config, &existing);
        if let Some(reason) = &mismatch
            && !rerun
        {
            return Err(Error::RunMismatch {
                run: name,
                reason: reason.clone(),
            }
            .into());
        }
        if !existing.status.is_terminal() {
            if mismatch.is_some() {
                return Err(Error::RunExists {
                    run: name,
                    status: existing.status,
                    hint: "; it is still running, cancel it first".into(),
                }
                .into());
            }
            return Ok(Reused::Existing(Box::new(existing)));
        }
        let failed = matches!(existing.status, RunStatus::Error | RunStatus::Cancelled);
        if !rerun && !failed {
            return Ok(Reused::Existing(Box::new(existing)));
        }
        cx.rt.check_write(who, &name, "running it again")?;
        if c.reclaim(&name, rev).await {
            match c.enqueue(work.clone(), p.inputs.clone()).await {
                Ok(true) => return Ok(Reused::Queued(name)),
                // Queued again by another host a moment ago: look again.
                Ok(false) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
    }
}

/// What identifies a call for the result cache: the component, the
/// function, the inputs.
fn cache_key(c: &RunConfig) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [
        c.function.as_ref().map_or("", |f| f.digest.as_str()),
        c.fn_name.as_deref().unwrap_or(""),
        c.input_digest.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// Why an existing Run is not the one this call would make.
fn differs(want: &RunConfig, have: &RunConfig) -> Option<String> {
    let digest = |c: &RunConfig| c.function.as_ref().map(|f| f.digest.clone());
    if digest(want) != digest(have) || want.fn_name != have.fn_name {
        return Some("it was made by another function or version".into());
    }
    if want.input_digest != have.input_digest {
        return Some("it was made from other inputs".into());
    }
    None
}

/// Answer for a queued Run: at once (`run`), once it has ended, or as
/// frames of its output from whichever host executes it, then its answer.
async fn answer_queued(
    cx: &Ctx<'_>,
    c: &Arc<Cluster>,
    name: String,
    waits: bool,
    stream: bool,
) -> Result<Resp, ApiError> {
    if stream {
        return Ok(super::cluster_output::stream_run(c.clone(), name));
    }
    if !waits {
        let status = cx
            .rt
            .run(&Caller::host(), &name)
            .map(|r| r.status().to_string())
            .unwrap_or_else(|_| "not_started".into());
        return Ok(Json(Started {
            run_name: name,
            status,
        })
        .into_response());
    }
    while !c.wait_ended(&name, Duration::from_secs(3600)).await {}
    let run = cx.rt.run(&Caller::host(), &name)?;
    Ok(Json(answer(&run)).into_response())
}
