//! `POST /v1/calls` and `POST /v1/exec`: a Run made, then answered once it
//! runs (`run`, `get_or_run`, `exec` without `stream`), once it ends, or as
//! a stream of frames carrying its output as it is written, then the
//! answer (`wire::frames`).

use super::{Ctx, Json, Reply, ReqBody, Resp, answer, json_bytes, respond};
use crate::server::errors::ApiError;
use crate::wire::{
    self, BoxBody, CallBody, CallMode, ErrorBody, ErrorInfo, ExecBody, FRAME_END, FRAME_STDERR,
    FRAME_STDOUT, Started, StreamEnd, frame,
};
use bytes::Bytes;
use hyper::StatusCode;
use rh_runtime::{CallRequest, Caller, OutputKind, RunHandle, Runtime};
use std::sync::Arc;

pub async fn call(cx: &Ctx<'_>, req: ReqBody) -> Result<Resp, ApiError> {
    let mut b: CallBody = cx.json_body(req, "call").await?;
    // The arguments move into the request: a copy would double the largest
    // part of the body.
    let args = std::mem::take(&mut b.args);
    let mut r = b.to_request();
    r.args = args;
    let who = b.caller(&cx.who);
    let rt = cx.rt;
    if b.mode == CallMode::Call && b.cache.unwrap_or(rt.caches_by_default()) {
        return Ok(cached_call(rt.clone(), who, r, b.stream).await);
    }
    // A plain synchronous call answers from the Run the runtime returns,
    // its record and result still in memory.
    if b.mode == CallMode::Call && !b.stream {
        return Ok(finished(rt, &who, rt.call(&who, r).await).into_response());
    }
    // Every mode starts (or finds) the Run first; synchronous modes then
    // wait for it, streaming what it writes when asked to.
    let handle = if b.mode.reuses() {
        rt.get_or_run(&who, r).await?
    } else {
        rt.start(&who, r).await?
    };
    if !b.mode.waits() {
        return Ok(Json(started(&handle)).into_response());
    }
    if !b.stream {
        return Ok(Json(answer(&handle.wait().await?)).into_response());
    }
    Ok(stream_call(rt.clone(), who, handle))
}

pub async fn exec(cx: &Ctx<'_>, req: ReqBody) -> Result<Resp, ApiError> {
    let b: ExecBody = cx.json_body(req, "exec").await?;
    let who = b.caller(&cx.who);
    let handle = cx.rt.start_exec(&who, b.to_request()).await?;
    if b.stream {
        return Ok(stream_call(cx.rt.clone(), who, handle));
    }
    Ok(Json(started(&handle)).into_response())
}

/// Python statements for the interpreter deployed as `python`: one command
/// Run, streamed as `exec` is, or answered once it is running.
pub async fn python(cx: &Ctx<'_>, req: ReqBody) -> Result<Resp, ApiError> {
    let b: wire::PythonBody = cx.json_body(req, "python").await?;
    let who = b.caller(&cx.who);
    let handle = cx
        .rt
        .start_python(&who, b.statements.clone(), b.keep_going, b.to_request())
        .await?;
    if b.stream {
        return Ok(stream_call(cx.rt.clone(), who, handle));
    }
    Ok(Json(started(&handle)).into_response())
}

/// A Run just started (or found).
fn started(handle: &RunHandle) -> Started {
    Started {
        run_name: handle.name().to_string(),
        status: handle.status().map(|s| s.to_string()).unwrap_or_default(),
    }
}

/// A call that ended: its Run's answer, also when the Run failed; an error
/// only when no Run was made.
fn finished(
    rt: &Runtime,
    who: &Caller,
    r: rh_runtime::Result<rh_runtime::Run>,
) -> Result<Json<wire::RunAnswer>, ApiError> {
    match r {
        Ok(run) => Ok(Json(answer(&run))),
        Err(e) => match e.run().and_then(|n| rt.run(who, n).ok()) {
            Some(run) => Ok(Json(answer(&run))),
            None => Err(e.into()),
        },
    }
}

/// A call through the result cache: the runtime holds the key's lock for
/// the whole call, so output reaches the client through the observer.
async fn cached_call(rt: Runtime, who: Caller, r: CallRequest, stream: bool) -> Resp {
    if !stream {
        let done = rt.call(&who, r).await;
        return finished(&rt, &who, done).into_response();
    }
    let (tx, body) = wire::channel(64);
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let r = r.observer(Arc::new(move |kind, bytes: &[u8]| {
        let tag = match kind {
            OutputKind::Stdout => FRAME_STDOUT,
            OutputKind::Stderr => FRAME_STDERR,
        };
        let _ = out_tx.send(frame(tag, bytes));
    }));
    tokio::spawn(async move {
        let call = tokio::spawn(async move {
            let r = rt.call(&who, r).await;
            (r, rt, who)
        });
        while let Some(f) = out_rx.recv().await {
            if tx.send(f).await.is_err() {
                break;
            }
        }
        let end = match call.await {
            Ok((done, rt, who)) => match finished(&rt, &who, done) {
                Ok(Json(a)) => StreamEnd::Run(a),
                Err(e) => StreamEnd::Failed(e.body()),
            },
            Err(e) => StreamEnd::Failed(ErrorBody {
                error: ErrorInfo::new("engine", e.to_string()),
            }),
        };
        let _ = tx.send(end_frame(&end)).await;
    });
    frames_response(body)
}

fn end_frame(end: &StreamEnd) -> Bytes {
    frame(FRAME_END, &json_bytes(end))
}

fn frames_response(body: BoxBody) -> Resp {
    respond(StatusCode::OK, "application/x-rh-frames", body)
}

/// Frames of the Run's output as it is written, then the answer.
fn stream_call(rt: Runtime, who: Caller, handle: RunHandle) -> Resp {
    let (tx, body) = wire::channel(64);
    let name = handle.name().to_string();
    // A cache hit has nothing to stream: answer at once.
    let live = !matches!(handle.status(), Ok(s) if s.is_terminal());
    tokio::spawn(async move {
        if live {
            let out = pump(
                rt.clone(),
                who.clone(),
                name.clone(),
                OutputKind::Stdout,
                FRAME_STDOUT,
                tx.clone(),
            );
            let err = pump(
                rt.clone(),
                who,
                name.clone(),
                OutputKind::Stderr,
                FRAME_STDERR,
                tx.clone(),
            );
            let _ = tokio::join!(out, err);
        }
        let end = match handle.wait().await {
            Ok(run) => StreamEnd::Run(answer(&run)),
            Err(e) => StreamEnd::Failed(ApiError::from(e).body()),
        };
        let _ = tx.send(end_frame(&end)).await;
    });
    frames_response(body)
}

async fn pump(
    rt: Runtime,
    who: Caller,
    name: String,
    kind: OutputKind,
    tag: u8,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let Ok(mut f) = rt.follow(&who, &name, kind) else {
        return;
    };
    while let Ok(Some(chunk)) = f.next().await {
        if tx.send(frame(tag, &chunk)).await.is_err() {
            return; // the client went away; the Run goes on
        }
    }
}
