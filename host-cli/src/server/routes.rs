//! The `/v1` routes. Each handler checks, calls the runtime, and answers
//! JSON (or a byte stream for logs, files and streaming calls). Documented in
//! `docs/http-api.md`.

use super::State;
use super::errors::{from_runtime, json_response, respond};
use crate::wire::{self, BoxBody, CallBody, FRAME_END, FRAME_STDERR, FRAME_STDOUT, frame, full};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use rh_runtime::{OutputKind, Run, RunHandle, RunStatus, Runtime};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

type Resp = Response<BoxBody>;

pub async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = if !authorized(&state, &req) {
        respond(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        )
    } else {
        route(&state, req).await
    };
    tracing::info!(
        %peer, %method, %path, status = resp.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0, "request"
    );
    Ok(resp)
}

fn authorized(state: &State, req: &Request<Incoming>) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    let given = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare in time independent of where they differ.
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn route(state: &State, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let m = req.method().clone();
    match (m, segs.as_slice()) {
        (Method::GET, ["v1", "health"]) => json_response(
            StatusCode::OK,
            &serde_json::json!({ "ok": true, "cluster": state.rt.cluster(), "version": env!("CARGO_PKG_VERSION") }),
        ),
        (Method::GET, ["v1", "functions"]) => match state.rt.deployments() {
            Ok(d) => json_response(
                StatusCode::OK,
                &serde_json::Value::Array(
                    d.iter().map(crate::commands::describe_deployment).collect(),
                ),
            ),
            Err(e) => from_runtime(&e),
        },
        (Method::POST, ["v1", "functions"]) => deploy(state, &query, req).await,
        (Method::POST, ["v1", "calls"]) => call(state, req).await,
        (Method::POST, ["v1", "components"]) => match body(req, state.max_component).await {
            Ok(bytes) => match state.rt.add_component(&bytes).await {
                Ok(info) => json_response(
                    StatusCode::OK,
                    &serde_json::to_value(info).unwrap_or_default(),
                ),
                Err(e) => from_runtime(&e),
            },
            Err(r) => r,
        },
        (Method::POST, ["v1", "exec"]) => exec(state, req).await,
        (Method::GET, ["v1", "artifacts"]) => match state.rt.artifacts() {
            Ok(a) => json_response(StatusCode::OK, &serde_json::to_value(a).unwrap_or_default()),
            Err(e) => from_runtime(&e),
        },
        (Method::GET, ["v1", "artifacts", name]) => match state.rt.artifact(name) {
            Ok(a) => json_response(StatusCode::OK, &serde_json::to_value(a).unwrap_or_default()),
            Err(e) => from_runtime(&e),
        },
        (Method::GET, ["v1", "artifacts", name, "data"]) => {
            match state.rt.artifact_bytes(name, param(&query, "version")) {
                Ok((b, _)) => Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/octet-stream")
                    .body(full(b))
                    .expect("a valid response"),
                Err(e) => from_runtime(&e),
            }
        }
        (Method::POST, ["v1", "artifacts", name]) => {
            let name = name.to_string();
            match body(req, state.max_component).await {
                Ok(bytes) => match state
                    .rt
                    .save_artifact_in(param(&query, "scope"), &name, &bytes)
                {
                    Ok(r) => {
                        json_response(StatusCode::OK, &serde_json::to_value(r).unwrap_or_default())
                    }
                    Err(e) => from_runtime(&e),
                },
                Err(r) => r,
            }
        }
        (Method::POST, ["v1", "scopes"]) => match body(req, state.max_request).await {
            Ok(b) => {
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                let Some(name) = v["name"].as_str() else {
                    return respond(StatusCode::BAD_REQUEST, "bad_input", "a scope needs a name");
                };
                match state.rt.open_scope(name, v["parent_run"].as_str()) {
                    Ok(s) => json_response(
                        StatusCode::OK,
                        &serde_json::json!({ "run_name": s.name(), "status": "running" }),
                    ),
                    Err(e) => from_runtime(&e),
                }
            }
            Err(r) => r,
        },
        (Method::POST, ["v1", "scopes", name, "end"]) => {
            let name = name.to_string();
            match body(req, state.max_request).await {
                Ok(b) => {
                    let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                    let outcome = match v["error"].as_str() {
                        Some(m) => Err(m.to_string()),
                        None => Ok(()),
                    };
                    match state.rt.end_scope(&name, outcome) {
                        Ok(run) => json_response(StatusCode::OK, &answer(&run)),
                        Err(e) => from_runtime(&e),
                    }
                }
                Err(r) => r,
            }
        }
        (Method::GET, ["v1", "lineage", name]) => match state.rt.lineage(name) {
            Ok(t) => json_response(StatusCode::OK, &serde_json::to_value(t).unwrap_or_default()),
            Err(e) => from_runtime(&e),
        },
        (Method::GET, ["v1", "runs"]) => match state.rt.runs() {
            Ok(r) => json_response(StatusCode::OK, &serde_json::to_value(r).unwrap_or_default()),
            Err(e) => from_runtime(&e),
        },
        (Method::GET, ["v1", "runs", name]) => match state.rt.run(name) {
            Ok(r) => json_response(
                StatusCode::OK,
                &serde_json::to_value(r.config()).unwrap_or_default(),
            ),
            Err(e) => from_runtime(&e),
        },
        (Method::GET, ["v1", "runs", name, "result"]) => match state.rt.run(name) {
            Ok(r) => json_response(StatusCode::OK, &answer(&r)),
            Err(e) => from_runtime(&e),
        },
        (Method::GET, ["v1", "runs", name, "wait"]) => match state.rt.wait(name).await {
            Ok(r) => json_response(StatusCode::OK, &answer(&r)),
            Err(e) => from_runtime(&e),
        },
        (Method::POST, ["v1", "runs", name, "cancel"]) => {
            let before = state.rt.run(name).map(|r| r.status());
            match (before, state.rt.cancel(name).await) {
                (Ok(before), Ok(r)) => {
                    let mut v = answer(&r);
                    v["was"] = serde_json::json!(before);
                    json_response(StatusCode::OK, &v)
                }
                (Err(e), _) | (_, Err(e)) => from_runtime(&e),
            }
        }
        (Method::GET, ["v1", "runs", name, "logs"]) => logs(state, name, &query),
        (Method::GET, ["v1", "runs", name, "files"]) => files(state, name),
        (Method::GET, ["v1", "runs", name, "files", rest @ ..]) if !rest.is_empty() => {
            file(state, name, &rest.join("/"))
        }
        (_, ["v1", ..]) => respond(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no route {path}"),
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no route {path} (the API is under /v1)"),
        ),
    }
}

fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

/// Read a request body up to `max` bytes; 413 past it.
async fn body(req: Request<Incoming>, max: u64) -> Result<Bytes, Resp> {
    if let Some(len) = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        return Err(too_large(max));
    }
    match Limited::new(req.into_body(), max as usize).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(max)),
        Err(e) => Err(respond(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("reading the body: {e}"),
        )),
    }
}

fn too_large(max: u64) -> Resp {
    respond(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        &format!("request body is over the limit of {max} bytes"),
    )
}

async fn deploy(state: &State, query: &str, req: Request<Incoming>) -> Resp {
    let Some(name) = param(query, "name").filter(|n| !n.is_empty()) else {
        return respond(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "deploy needs ?name=NAME",
        );
    };
    let name = name.to_string();
    let bytes = match body(req, state.max_component).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match state.rt.deploy(&bytes, &name).await {
        Ok(d) => json_response(StatusCode::OK, &crate::commands::describe_deployment(&d)),
        Err(e) => from_runtime(&e),
    }
}

/// The answer about a Run: name, status, and its result or error.
pub fn answer(run: &Run) -> serde_json::Value {
    let c = run.config();
    let mut v = serde_json::json!({ "run_name": c.name, "status": c.status });
    match run.status() {
        RunStatus::Completed => match run.result() {
            Ok(r) => v["result"] = r,
            Err(e) => {
                v["error"] = serde_json::json!({ "kind": e.kind(), "message": e.to_string() })
            }
        },
        RunStatus::Error | RunStatus::Cancelled => {
            let e = run.error();
            v["error"] = serde_json::json!({ "kind": e.kind(), "message": e.to_string() });
        }
        _ => {}
    }
    v
}

async fn call(state: &State, req: Request<Incoming>) -> Resp {
    let bytes = match body(req, state.max_request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let b: CallBody = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return respond(
                StatusCode::BAD_REQUEST,
                "bad_input",
                &format!("the call request is not valid JSON: {e}"),
            );
        }
    };
    let r = b.to_request();
    let rt = &state.rt;
    if b.mode == "call" && b.cache.unwrap_or(rt.caches_by_default()) {
        return cached_call(rt.clone(), r, b.stream).await;
    }
    // A plain synchronous call answers from the Run the runtime returns,
    // its record and result still in memory.
    if b.mode == "call" && !b.stream {
        return match rt.call(r).await {
            Ok(run) => json_response(StatusCode::OK, &answer(&run)),
            Err(e) => run_error(rt, &e),
        };
    }
    // Every mode starts (or finds) the Run first; synchronous modes then
    // wait for it, streaming what it writes when asked to.
    let handle = match b.mode.as_str() {
        "call" => rt.start(r),
        "run" => rt.start(r),
        "get_or_call" | "get_or_run" => rt.get_or_run(r).await,
        other => {
            return respond(
                StatusCode::BAD_REQUEST,
                "bad_input",
                &format!("unknown mode `{other}` (call, get_or_call, run, get_or_run)"),
            );
        }
    };
    let handle = match handle {
        Ok(h) => h,
        Err(e) => return from_runtime(&e),
    };
    if matches!(b.mode.as_str(), "run" | "get_or_run") {
        let status = handle.status().map(|s| s.to_string()).unwrap_or_default();
        return json_response(
            StatusCode::OK,
            &serde_json::json!({ "run_name": handle.name(), "status": status }),
        );
    }
    if !b.stream {
        return match handle.wait().await {
            Ok(run) => json_response(StatusCode::OK, &answer(&run)),
            Err(e) => from_runtime(&e),
        };
    }
    stream_call(rt.clone(), handle)
}

async fn exec(state: &State, req: Request<Incoming>) -> Resp {
    let bytes = match body(req, state.max_request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let b: crate::wire::ExecBody = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return respond(
                StatusCode::BAD_REQUEST,
                "bad_input",
                &format!("the exec request is not valid JSON: {e}"),
            );
        }
    };
    let handle = match state.rt.start_exec(b.to_request()) {
        Ok(h) => h,
        Err(e) => return from_runtime(&e),
    };
    if b.stream {
        return stream_call(state.rt.clone(), handle);
    }
    let status = handle.status().map(|s| s.to_string()).unwrap_or_default();
    json_response(
        StatusCode::OK,
        &serde_json::json!({ "run_name": handle.name(), "status": status }),
    )
}

/// A call through the result cache: the runtime holds the key's lock for
/// the whole call, so output reaches the client through the observer.
async fn cached_call(rt: Runtime, r: rh_runtime::CallRequest, stream: bool) -> Resp {
    if !stream {
        return match rt.call(r).await {
            Ok(run) => json_response(StatusCode::OK, &answer(&run)),
            Err(e) => run_error(&rt, &e),
        };
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
            let r = rt.call(r).await;
            (r, rt)
        });
        while let Some(f) = out_rx.recv().await {
            if tx.send(f).await.is_err() {
                break;
            }
        }
        let end = match call.await {
            Ok((Ok(run), _)) => answer(&run),
            // A Run that ran and failed answers with its record.
            Ok((Err(e), rt)) => match e.run().and_then(|n| rt.run(n).ok()) {
                Some(run) => answer(&run),
                None => super::errors::error_json(e.kind(), &e.to_string()),
            },
            Err(e) => super::errors::error_json("engine", &e.to_string()),
        };
        let _ = tx.send(end_frame(&end)).await;
    });
    frames_response(body)
}

fn end_frame(end: &serde_json::Value) -> Bytes {
    frame(FRAME_END, &serde_json::to_vec(end).unwrap_or_default())
}

fn frames_response(body: BoxBody) -> Resp {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/x-rh-frames")
        .body(body)
        .expect("a valid response")
}

fn run_error(rt: &Runtime, e: &rh_runtime::Error) -> Resp {
    match e.run().and_then(|n| rt.run(n).ok()) {
        Some(run) => json_response(StatusCode::OK, &answer(&run)),
        None => from_runtime(e),
    }
}

/// Frames of the Run's output as it is written, then the answer.
fn stream_call(rt: Runtime, handle: RunHandle) -> Resp {
    let (tx, body) = wire::channel(64);
    let name = handle.name().to_string();
    // A cache hit has nothing to stream: answer at once.
    let live = !matches!(handle.status(), Ok(s) if s.is_terminal());
    tokio::spawn(async move {
        if live {
            let out = pump(
                rt.clone(),
                name.clone(),
                OutputKind::Stdout,
                FRAME_STDOUT,
                tx.clone(),
            );
            let err = pump(
                rt.clone(),
                name.clone(),
                OutputKind::Stderr,
                FRAME_STDERR,
                tx.clone(),
            );
            let _ = tokio::join!(out, err);
        }
        let end = match handle.wait().await {
            Ok(run) => answer(&run),
            Err(e) => super::errors::error_json(e.kind(), &e.to_string()),
        };
        let _ = tx.send(end_frame(&end)).await;
    });
    frames_response(body)
}

async fn pump(
    rt: Runtime,
    name: String,
    kind: OutputKind,
    tag: u8,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let Ok(mut f) = rt.follow(&name, kind) else {
        return;
    };
    while let Ok(Some(chunk)) = f.next().await {
        if tx.send(frame(tag, &chunk)).await.is_err() {
            return; // the client went away; the Run goes on
        }
    }
}

fn logs(state: &State, name: &str, query: &str) -> Resp {
    let kind = match param(query, "stream") {
        Some("stderr") => OutputKind::Stderr,
        _ => OutputKind::Stdout,
    };
    let follow = matches!(param(query, "follow"), Some("1" | "true"));
    let mut f = match state.rt.follow(name, kind) {
        Ok(f) => f,
        Err(e) => return from_runtime(&e),
    };
    let (tx, body) = wire::channel(16);
    let rt = state.rt.clone();
    let name = name.to_string();
    tokio::spawn(async move {
        if follow {
            while let Ok(Some(chunk)) = f.next().await {
                if tx.send(Bytes::from(chunk)).await.is_err() {
                    return;
                }
            }
        } else if let Ok(run) = rt.run(&name) {
            let bytes = match kind {
                OutputKind::Stdout => run.stdout(),
                OutputKind::Stderr => run.stderr(),
            };
            if let Ok(b) = bytes {
                let _ = tx.send(Bytes::from(b)).await;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/octet-stream")
        .body(body)
        .expect("a valid response")
}

fn files(state: &State, name: &str) -> Resp {
    let run = match state.rt.run(name) {
        Ok(r) => r,
        Err(e) => return from_runtime(&e),
    };
    if !run.status().is_terminal() {
        return respond(
            StatusCode::CONFLICT,
            "not_finished",
            &format!(
                "run `{name}` is still {}; wait for it before pulling",
                run.status()
            ),
        );
    }
    match run.files() {
        Ok(list) => json_response(
            StatusCode::OK,
            &serde_json::json!({ "run_name": name, "files": list }),
        ),
        Err(e) => from_runtime(&e),
    }
}

fn file(state: &State, name: &str, path: &str) -> Resp {
    let run = match state.rt.run(name) {
        Ok(r) => r,
        Err(e) => return from_runtime(&e),
    };
    match run.read_file(path) {
        Ok(b) => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/octet-stream")
            .body(full(b))
            .expect("a valid response"),
        Err(e) => from_runtime(&e),
    }
}
