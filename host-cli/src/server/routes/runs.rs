//! `/v1/runs`: Runs' records, answers, output and files. Files and logs are
//! streamed in chunks from the descriptor the runtime opened and checked,
//! off the async workers.

use super::{Ctx, Json, ReqBody, Resp, answer, blocking, respond};
use crate::server::errors::ApiError;
use crate::wire::{self, RunAnswer, RunFiles};
use bytes::Bytes;
use hyper::StatusCode;
use rh_runtime::{GcReport, GcRequest, OutputKind, RunConfig, RunPage};

/// A page of the Runs the caller may see, matching the query's filters:
/// a query of the index and a read of each Run's record, off the async
/// workers.
pub async fn list(cx: &Ctx<'_>) -> Result<Json<RunPage>, ApiError> {
    let q = wire::from_params(cx.query).map_err(bad_request)?;
    let (rt, who) = (cx.rt.clone(), cx.who.clone());
    Ok(Json(blocking(move || rt.search(&who, &q)).await?))
}

/// Retention on request: remove what the body's policy does not keep.
pub async fn gc(cx: &Ctx<'_>, req: ReqBody) -> Result<Json<GcReport>, ApiError> {
    let body: GcRequest = cx.json_body(req, "a gc request").await?;
    let (rt, who) = (cx.rt.clone(), cx.who.clone());
    let report = blocking(move || rt.gc(&who, &body)).await?;
    if !body_dry(&report) {
        cx.state.metrics.gc_removed(report.runs_removed);
    }
    Ok(Json(report))
}

fn body_dry(r: &GcReport) -> bool {
    r.dry_run
}

/// What the caller may do to a Run: `{"read": true, "write": bool}` (the
/// dashboard shows a cancel button only to those who may).
pub fn access(cx: &Ctx, name: &str) -> Result<Json<serde_json::Value>, ApiError> {
    cx.rt.run(&cx.who, name)?;
    let write = cx.rt.check_write(&cx.who, name, "cancelling it").is_ok();
    Ok(Json(serde_json::json!({"read": true, "write": write})))
}

/// Forget result-cache entries; the Runs stay.
pub async fn clear_cache(cx: &Ctx<'_>, req: ReqBody) -> Result<Json<wire::CacheCleared>, ApiError> {
    let body: wire::CacheClearBody = cx.json_body(req, "a cache clear request").await?;
    let (rt, who) = (cx.rt.clone(), cx.who.clone());
    let n = blocking(move || rt.clear_cache(&who, body.function.as_deref())).await?;
    Ok(Json(wire::CacheCleared { cleared: n as u64 }))
}

/// Rebuild the index of Runs from the Run folders (administrators).
pub async fn reindex(cx: &Ctx<'_>) -> Result<Json<wire::Reindexed>, ApiError> {
    let (rt, who) = (cx.rt.clone(), cx.who.clone());
    let n = blocking(move || rt.reindex(&who)).await?;
    Ok(Json(wire::Reindexed { runs: n as u64 }))
}

fn bad_request(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
}

pub fn get(cx: &Ctx, name: &str) -> Result<Json<RunConfig>, ApiError> {
    Ok(Json(cx.rt.run(&cx.who, name)?.config().clone()))
}

pub fn result(cx: &Ctx, name: &str) -> Result<Json<RunAnswer>, ApiError> {
    Ok(Json(answer(&cx.rt.run(&cx.who, name)?)))
}

pub async fn wait(cx: &Ctx<'_>, name: &str) -> Result<Json<RunAnswer>, ApiError> {
    Ok(Json(answer(&cx.rt.wait(&cx.who, name).await?)))
}

/// Cancel, and answer with the status the Run had before.
pub async fn cancel(cx: &Ctx<'_>, name: &str) -> Result<Json<RunAnswer>, ApiError> {
    // The status before the cancel, once the caller may cancel it.
    let before = cx.rt.run(&cx.who, name).map(|r| r.status());
    let after = cx.rt.cancel(&cx.who, name).await;
    let (before, run) = (before?, after?);
    let mut a = answer(&run);
    a.was = Some(before);
    Ok(Json(a))
}

/// A Run's stdout or stderr (`?stream=`), all of it, or (`?follow=1`) as
/// the guest writes it until the Run ends.
pub fn logs(cx: &Ctx, name: &str) -> Result<Resp, ApiError> {
    let kind = match cx.param("stream") {
        Some("stderr") => OutputKind::Stderr,
        _ => OutputKind::Stdout,
    };
    let follow = matches!(cx.param("follow"), Some("1" | "true"));
    let mut f = cx.rt.follow(&cx.who, name, kind)?;
    let (tx, body) = wire::channel(16);
    let (rt, who) = (cx.rt.clone(), cx.who.clone());
    let name = name.to_string();
    tokio::spawn(async move {
        if follow {
            while let Ok(Some(chunk)) = f.next().await {
                if tx.send(Bytes::from(chunk)).await.is_err() {
                    return;
                }
            }
        } else if let Ok(run) = rt.run(&who, &name) {
            // Up to the output cap: read in chunks on the blocking pool.
            let file = run.file(match kind {
                OutputKind::Stdout => "stdout",
                OutputKind::Stderr => "stderr",
            });
            if let Ok(f) = std::fs::File::open(file) {
                send_chunks(f, u64::MAX, tx);
            }
        }
    });
    Ok(respond(StatusCode::OK, "application/octet-stream", body))
}

/// A finished Run's files with their sizes and digests.
pub async fn files(cx: &Ctx<'_>, name: &str) -> Result<Json<RunFiles>, ApiError> {
    let (rt, who, owned) = (cx.rt.clone(), cx.who.clone(), name.to_string());
    let list = blocking(move || rt.run_files(&who, &owned))
        .await
        .map_err(not_finished)?;
    Ok(Json(RunFiles {
        run_name: name.to_string(),
        files: list.to_vec(),
    }))
}

/// One file, streamed in chunks from the descriptor that was checked: no
/// symlink is followed, and a Run still running is `409 not_finished`.
pub async fn file(cx: &Ctx<'_>, name: &str, path: &str) -> Result<Resp, ApiError> {
    let run = cx.rt.run(&cx.who, name)?;
    let owned = path.to_string();
    let (f, len) = blocking(move || run.open_file(&owned))
        .await
        .map_err(not_finished)?;
    let (tx, body) = wire::channel(4);
    send_chunks(f, len, tx);
    let mut resp = respond(StatusCode::OK, "application/octet-stream", body);
    resp.headers_mut()
        .insert(hyper::header::CONTENT_LENGTH, len.into());
    Ok(resp)
}

/// A Run file asked for while the Run runs: its guest may be changing it.
fn not_finished(e: rh_runtime::Error) -> ApiError {
    match e {
        rh_runtime::Error::NotFinished { run, status } => ApiError::new(
            StatusCode::CONFLICT,
            "not_finished",
            format!("run `{run}` is still {status}; wait for it before pulling"),
        ),
        e => e.into(),
    }
}

/// Send up to `len` bytes of `f` down a response body, in chunks, from a
/// background thread. Stops when the client goes away, or when it has read
/// nothing for [`STALLED`]: a client that never reads must not hold the
/// thread and the file open for good.
fn send_chunks(f: std::fs::File, len: u64, tx: tokio::sync::mpsc::Sender<Bytes>) {
    use std::io::Read;
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rh_runtime::background::spawn(move || {
        let mut f = f.take(len);
        loop {
            let mut buf = vec![0u8; 256 << 10];
            match f.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.truncate(n);
                    // The timer is made inside block_on, in the runtime's context.
                    let chunk = Bytes::from(buf);
                    let sent = handle
                        .block_on(async { tokio::time::timeout(STALLED, tx.send(chunk)).await });
                    if !matches!(sent, Ok(Ok(()))) {
                        return;
                    }
                }
            }
        }
    });
}

/// How long a streamed file waits for a client that reads nothing.
const STALLED: std::time::Duration = std::time::Duration::from_secs(60);
