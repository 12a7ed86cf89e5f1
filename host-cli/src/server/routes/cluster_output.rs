//! A Run's output and its cancel on a host of a cluster of several: read
//! from, or sent to, whichever host executes it, else this host's copy.

use super::cluster::unavailable;
use super::{Ctx, Json, Resp, answer, json_bytes, respond};
use crate::server::errors::ApiError;
use crate::server::hosts::Cluster;
use crate::wire::{self, FRAME_END, FRAME_STDERR, FRAME_STDOUT, StreamEnd, frame};
use bytes::Bytes;
use hyper::StatusCode;
use rh_runtime::Caller;
use std::sync::Arc;
use std::time::Duration;

/// Frames of a queued Run's output as whichever host runs it writes it,
/// then its answer.
pub fn stream_run(c: Arc<Cluster>, name: String) -> Resp {
    let (tx, body) = wire::channel(64);
    tokio::spawn(async move {
        let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<(u8, Bytes)>(64);
        for (stderr, tag) in [(false, FRAME_STDOUT), (true, FRAME_STDERR)] {
            let (c, name, out_tx) = (c.clone(), name.clone(), out_tx.clone());
            tokio::spawn(async move {
                let (chunks, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
                let follow = tokio::spawn({
                    let (c, name) = (c.clone(), name.clone());
                    async move { follow_anywhere(&c, &name, stderr, &chunks, true).await }
                });
                while let Some(chunk) = rx.recv().await {
                    if out_tx.send((tag, chunk)).await.is_err() {
                        break;
                    }
                }
                // The client went away: the follower stops at its next send.
                drop(rx);
                let _ = follow.await;
            });
        }
        drop(out_tx);
        while let Some((tag, chunk)) = out_rx.recv().await {
            if tx.send(frame(tag, &chunk)).await.is_err() {
                return;
            }
        }
        while !c.wait_ended(&name, Duration::from_secs(3600)).await {}
        let end = match c.rt.run(&Caller::host(), &name) {
            Ok(run) => StreamEnd::Run(answer(&run)),
            Err(e) => StreamEnd::Failed(ApiError::from(e).body()),
        };
        let _ = tx.send(frame(FRAME_END, &json_bytes(&end))).await;
    });
    respond(StatusCode::OK, "application/x-rh-frames", body)
}

/// Send a Run's output to `tx` from wherever it is: the host executing it
/// (once one has taken it), this host, or this host's copy once it ended.
/// With `follow`, until it ends; else what there is now.
pub async fn follow_anywhere(
    c: &Arc<Cluster>,
    name: &str,
    stderr: bool,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
    follow: bool,
) {
    let kind = if stderr {
        rh_runtime::OutputKind::Stderr
    } else {
        rh_runtime::OutputKind::Stdout
    };
    // Bytes already sent from another host: not sent again from here.
    let mut sent = 0u64;
    loop {
        if c.rt.is_executing(name) || ended_here(c, name) {
            break;
        }
        match c.executing_host(name).await {
            Some(h) if h.is_empty() => {
                if !follow {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Some(h) if h == c.host => {
                // Taken here a moment ago: it is about to run.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Some(h) => {
                match c
                    .follow_remote(&h, name, stderr, tx, follow, &mut sent)
                    .await
                {
                    Ok(()) => return,
                    Err(e) => tracing::debug!("following {name} on {h}: {e}"),
                }
                // The host stopped answering: what this host knows of the
                // Run ends it once it is reaped.
                while follow && !c.wait_ended(name, Duration::from_secs(60)).await {}
                break;
            }
            None => {
                // Not active: ended (its record is on its way) or never
                // queued.
                c.wait_ended(name, Duration::from_secs(2)).await;
                break;
            }
        }
    }
    if !follow {
        // What there is now, here (read off the async workers).
        let (rt, owned) = (c.rt.clone(), name.to_string());
        let now = rh_runtime::background::run(move || {
            let run = rt.run(&Caller::host(), &owned)?;
            if stderr { run.stderr() } else { run.stdout() }
        })
        .await;
        if let Ok(bytes) = now {
            let _ = tx.send(Bytes::from(bytes)).await;
        }
        return;
    }
    let Ok(mut f) = c.rt.follow(&Caller::host(), name, kind) else {
        return;
    };
    while let Ok(Some(chunk)) = f.next().await {
        let mut chunk = Bytes::from(chunk);
        if sent > 0 {
            let skip = sent.min(chunk.len() as u64);
            sent -= skip;
            chunk = chunk.slice(skip as usize..);
        }
        if !chunk.is_empty() && tx.send(chunk).await.is_err() {
            return;
        }
    }
}

fn ended_here(c: &Cluster, name: &str) -> bool {
    c.rt.run(&Caller::host(), name)
        .is_ok_and(|r| r.status().is_terminal())
}

/// `GET /v1/runs/NAME/logs` of a Run that may run on another host.
pub fn logs(cx: &Ctx, c: &Arc<Cluster>, name: &str) -> Result<Resp, ApiError> {
    cx.rt.run(&cx.who, name)?;
    let stderr = matches!(cx.param("stream"), Some("stderr"));
    let follow = matches!(cx.param("follow"), Some("1" | "true"));
    let (tx, body) = wire::channel(16);
    let (c, name) = (c.clone(), name.to_string());
    tokio::spawn(async move {
        follow_anywhere(&c, &name, stderr, &tx, follow).await;
    });
    Ok(respond(StatusCode::OK, "application/octet-stream", body))
}

/// `POST /v1/runs/NAME/cancel` of a Run that may wait in the queue or run
/// on another host.
pub async fn cancel(
    cx: &Ctx<'_>,
    c: &Arc<Cluster>,
    name: &str,
) -> Result<Json<wire::RunAnswer>, ApiError> {
    let before = cx.rt.run(&cx.who, name)?.status();
    cx.rt.check_write(&cx.who, name, "cancelling it")?;
    if cx.rt.is_executing(name) {
        let run = cx.rt.cancel(&cx.who, name).await?;
        let mut a = answer(&run);
        a.was = Some(before);
        return Ok(Json(a));
    }
    for _ in 0..100 {
        if ended_here(c, name) {
            break;
        }
        if c.cancel_queued(name).await.map_err(unavailable)? {
            break;
        }
        match c.executing_host(name).await {
            Some(h) if !h.is_empty() => {
                if c.cancel_remote(name).await {
                    c.wait_ended(name, Duration::from_secs(30)).await;
                    break;
                }
            }
            Some(_) => {}
            None => {
                c.wait_ended(name, Duration::from_secs(5)).await;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let run = cx.rt.run(&cx.who, name)?;
    let mut a = answer(&run);
    a.was = Some(before);
    Ok(Json(a))
}
