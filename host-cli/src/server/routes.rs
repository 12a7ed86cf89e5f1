//! The `/v1` routes. Each handler checks, calls the runtime, and answers
//! JSON (or a byte stream for logs, files and streaming calls). Documented in
//! `docs/http-api.md`.

use super::errors::{from_runtime, json_response, respond};
use super::{Auth, State};
use crate::wire::{self, BoxBody, CallBody, FRAME_END, FRAME_STDERR, FRAME_STDOUT, frame, full};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use rh_runtime::{
    Access, Caller, ObjectKind, OutputKind, Run, RunHandle, RunStatus, Runtime, User,
};
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
    let (resp, who) = match authenticate(&state, &req) {
        None => (
            respond(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token",
            ),
            None,
        ),
        Some(user) => {
            let who = user.as_ref().map(|u| u.name.clone());
            (route(&state, user.as_ref(), req).await, who)
        }
    };
    tracing::info!(
        %peer, user = who.as_deref().unwrap_or("-"), %method, %path, status = resp.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0, "request"
    );
    Ok(resp)
}

/// Who is asking: `None` when the token is missing or wrong; `Some(None)`
/// for full access (no users on this daemon); `Some(Some(user))` for a
/// user, whose access is checked.
fn authenticate(state: &State, req: &Request<Incoming>) -> Option<Option<User>> {
    let given = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    match &state.auth {
        Auth::Open => Some(None),
        Auth::Token(token) => {
            // Compare in time independent of where they differ.
            let (a, b) = (given.as_bytes(), token.as_bytes());
            let same =
                a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
            same.then_some(None)
        }
        // Looked up by the token's sha256: nothing to learn from timing.
        Auth::Users(_, users) => users
            .read()
            .expect("users lock poisoned")
            .find(given)
            .map(|u| Some(u.clone())),
    }
}

/// A JSON answer from a runtime result.
fn answer_json<T: serde::Serialize>(r: rh_runtime::Result<T>) -> Resp {
    match r {
        Ok(v) => json_response(StatusCode::OK, &serde_json::to_value(v).unwrap_or_default()),
        Err(e) => from_runtime(&e),
    }
}

async fn route(state: &State, user: Option<&User>, req: Request<Incoming>) -> Resp {
    // Who acts: the daemon's user, or (with no users) the daemon itself.
    let who = &Caller::of(user.cloned());
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let m = req.method().clone();
    let rt = &state.rt;
    match (m, segs.as_slice()) {
        (Method::GET, ["v1", "health"]) => json_response(
            StatusCode::OK,
            &serde_json::json!({
                "ok": true, "cluster": rt.cluster(), "version": env!("CARGO_PKG_VERSION"),
                "user": user.map(|u| &u.name), "admin": user.map(|u| u.admin),
            }),
        ),
        (Method::GET, ["v1", "functions"]) => match rt.deployments(who) {
            Ok(d) => json_response(
                StatusCode::OK,
                &serde_json::Value::Array(
                    d.iter().map(crate::commands::describe_deployment).collect(),
                ),
            ),
            Err(e) => from_runtime(&e),
        },
        (Method::POST, ["v1", "functions"]) => deploy(state, who, &query, req).await,
        (Method::DELETE, ["v1", "functions", name]) => deleted(rt, who, ObjectKind::Function, name),
        (Method::POST, ["v1", "calls"]) => call(state, user, req).await,
        (Method::POST, ["v1", "components"]) => {
            match body(req, state.max_component, state.body_grace).await {
                Ok(bytes) => answer_json(rt.add_component(who, &bytes).await),
                Err(r) => r,
            }
        }
        (Method::POST, ["v1", "exec"]) => exec(state, user, req).await,
        (Method::GET, ["v1", "artifacts"]) => answer_json(rt.artifacts(who)),
        (Method::GET, ["v1", "artifacts", name]) => answer_json(rt.artifact(who, name)),
        (Method::GET, ["v1", "artifacts", name, "data"]) => {
            // Reading and hashing an artifact is file work: off the workers.
            let (rt2, scope, version) = (
                rt.clone(),
                owned(param(&query, "scope")),
                owned(param(&query, "version")),
            );
            let (name, who) = (name.to_string(), who.clone().in_scope_opt(scope));
            let loaded = blocking(move || rt2.load_artifact(&who, &name, version.as_deref())).await;
            match loaded {
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
            match body(req, state.max_component, state.body_grace).await {
                Ok(bytes) => {
                    let scope = owned(param(&query, "scope"));
                    let (rt2, who) = (rt.clone(), who.clone().in_scope_opt(scope));
                    answer_json(blocking(move || rt2.save_artifact(&who, &name, &bytes)).await)
                }
                Err(r) => r,
            }
        }
        (Method::DELETE, ["v1", "artifacts", name]) => deleted(rt, who, ObjectKind::Artifact, name),
        (Method::POST, ["v1", "scopes"]) => {
            let b: ScopeBody = match scope_body(state, req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let Some(name) = b.name else {
                return respond(StatusCode::BAD_REQUEST, "bad_input", "a scope needs a name");
            };
            match rt.open_scope(&who.clone().in_scope_opt(b.parent_run), &name) {
                Ok(s) => json_response(
                    StatusCode::OK,
                    &serde_json::json!({ "run_name": s.name(), "status": "running" }),
                ),
                Err(e) => from_runtime(&e),
            }
        }
        (Method::POST, ["v1", "scopes", name, "end"]) => {
            let name = name.to_string();
            let b: EndScopeBody = match scope_body(state, req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let outcome = match b.error {
                Some(m) => Err(m),
                None => Ok(()),
            };
            match rt.end_scope(who, &name, outcome) {
                Ok(run) => json_response(StatusCode::OK, &answer(&run)),
                Err(e) => from_runtime(&e),
            }
        }
        (Method::GET, ["v1", "lineage", name]) => answer_json(rt.lineage(who, name)),
        (Method::GET, ["v1", "runs"]) => answer_json(rt.runs(who)),
        (Method::GET, ["v1", "runs", name]) => {
            answer_json(rt.run(who, name).map(|r| r.config().clone()))
        }
        (Method::GET, ["v1", "runs", name, "result"]) => match rt.run(who, name) {
            Ok(r) => json_response(StatusCode::OK, &answer(&r)),
            Err(e) => from_runtime(&e),
        },
        (Method::GET, ["v1", "runs", name, "wait"]) => match rt.wait(who, name).await {
            Ok(r) => json_response(StatusCode::OK, &answer(&r)),
            Err(e) => from_runtime(&e),
        },
        (Method::POST, ["v1", "runs", name, "cancel"]) => {
            // Status before the cancel, once the caller may cancel it.
            let before = rt.run(who, name).map(|r| r.status());
            match (before, rt.cancel(who, name).await) {
                (Ok(before), Ok(r)) => {
                    let mut v = answer(&r);
                    v["was"] = serde_json::json!(before);
                    json_response(StatusCode::OK, &v)
                }
                (Err(e), _) | (_, Err(e)) => from_runtime(&e),
            }
        }
        (Method::DELETE, ["v1", "runs", name]) => deleted(rt, who, ObjectKind::Run, name),
        (Method::GET, ["v1", "runs", name, "logs"]) => logs(state, who, name, &query),
        (Method::GET, ["v1", "runs", name, "files"]) => files(state, who, name).await,
        (Method::GET, ["v1", "runs", name, "files", rest @ ..]) if !rest.is_empty() => {
            file(state, who, name, &rest.join("/")).await
        }
        (Method::GET, ["v1", "shares"]) => answer_json(rt.shares(who)),
        (Method::POST, ["v1", "shares"]) => share(state, who, req, true).await,
        (Method::POST, ["v1", "shares", "remove"]) => share(state, who, req, false).await,
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

/// Delete an object; answers what was deleted.
fn deleted(rt: &Runtime, who: &Caller, kind: ObjectKind, name: &str) -> Resp {
    match rt.delete(who, kind, name) {
        Ok(()) => json_response(
            StatusCode::OK,
            &serde_json::json!({ "deleted": name, "kind": kind }),
        ),
        Err(e) => from_runtime(&e),
    }
}

/// The body of `POST /v1/scopes`: `{"name", "parent_run"?}`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScopeBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    parent_run: Option<String>,
}

/// The body of `POST /v1/scopes/{name}/end`: `{}` completes the scope,
/// `{"error": "<message>"}` ends it in `error`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EndScopeBody {
    #[serde(default)]
    error: Option<String>,
}

/// A scope request's body: an empty one is `{}`; one that is not a JSON
/// object of the shape `T` is refused (400 `bad_input`) before anything
/// changes (serde would take a struct from an array as well).
async fn scope_body<T: serde::de::DeserializeOwned + Default>(
    state: &State,
    req: Request<Incoming>,
) -> Result<T, Resp> {
    let max = state.max_request;
    let bytes = body(req, max, state.body_grace).await?;
    if bytes.is_empty() {
        return Ok(T::default());
    }
    let v: serde_json::Value = super::json::parse(&bytes, max, "scope").map_err(|r| *r)?;
    let bad = |why: String| {
        respond(
            StatusCode::BAD_REQUEST,
            "bad_input",
            &format!("the scope request is not valid: {why}"),
        )
    };
    if !v.is_object() {
        return Err(bad("it is not a JSON object".into()));
    }
    serde_json::from_value(v).map_err(|e| bad(e.to_string()))
}

/// The body of `POST /v1/shares` and `/v1/shares/remove`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    user: String,
    #[serde(default)]
    access: Option<String>,
}

/// Grant (or, with `grant` false, take back) a user's access to an object.
async fn share(state: &State, who: &Caller, req: Request<Incoming>, grant: bool) -> Resp {
    let Auth::Users(_, users) = &state.auth else {
        return respond(
            StatusCode::BAD_REQUEST,
            "no_users",
            "this daemon has no users to share with: start it with --users FILE",
        );
    };
    let b: ShareBody = match json_body(state, req, "share").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let rt = &state.rt;
    if let Err(e) = rh_runtime::validate_name("user", &b.user) {
        return from_runtime(&e);
    }
    let known = users.read().expect("users lock poisoned").has(&b.user);
    if grant && !known {
        return respond(
            StatusCode::BAD_REQUEST,
            "unknown_user",
            &format!("no user `{}` on this cluster", b.user),
        );
    }
    let kind = match which_kind(rt, who, &b.name, b.kind.as_deref()) {
        Ok(k) => k,
        Err(e) => return from_runtime(&e),
    };
    let done = if grant {
        let access = match b.access.as_deref().unwrap_or("read").parse::<Access>() {
            Ok(a) => a,
            Err(e) => return from_runtime(&e),
        };
        rt.share(who, kind, &b.name, &b.user, access)
            .map(|()| serde_json::json!({ "kind": kind, "name": b.name, "user": b.user, "access": access }))
    } else {
        rt.unshare(who, kind, &b.name, &b.user).map(
            |had| serde_json::json!({ "kind": kind, "name": b.name, "user": b.user, "removed": had }),
        )
    };
    answer_json(done)
}

/// The kind of object `name` is: as given, or the one kind of that name
/// the user may see.
fn which_kind(
    rt: &Runtime,
    who: &Caller,
    name: &str,
    given: Option<&str>,
) -> rh_runtime::Result<ObjectKind> {
    if let Some(k) = given {
        return k.parse();
    }
    match rt.kinds_of(who, name).as_slice() {
        [] => Err(rh_runtime::Error::NotFound {
            what: "function, run or artifact",
            name: name.to_string(),
        }),
        [k] => Ok(*k),
        several => Err(rh_runtime::Error::Invalid(format!(
            "`{name}` names a {}; say which with --kind",
            several
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(" and a ")
        ))),
    }
}

fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

/// Read a request body up to `max` bytes; 413 past it.
/// The slowest a request body may come, once `grace` has passed: a client
/// that sends its headers in time and then trickles its body would
/// otherwise hold its connection for as long as it likes.
const MIN_BODY_RATE: u64 = 16 << 10;

/// A request body, at most `max` bytes, coming at least at
/// [`MIN_BODY_RATE`] bytes a second after `grace` (`408` otherwise).
async fn body(req: Request<Incoming>, max: u64, grace: std::time::Duration) -> Result<Bytes, Resp> {
    if let Some(len) = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        return Err(too_large(max));
    }
    let started = tokio::time::Instant::now();
    let mut incoming = Limited::new(req.into_body(), max as usize);
    let mut got = bytes::BytesMut::new();
    loop {
        let due = started
            + grace
            + std::time::Duration::from_secs_f64(got.len() as f64 / MIN_BODY_RATE as f64);
        let frame = match tokio::time::timeout_at(due, incoming.frame()).await {
            Err(_) => {
                return Err(respond(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    &format!(
                        "the request body came too slowly (at least {} KiB/s after {grace:?})",
                        MIN_BODY_RATE >> 10
                    ),
                ));
            }
            Ok(None) => return Ok(got.freeze()),
            Ok(Some(f)) => f,
        };
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    got.extend_from_slice(&data);
                }
            }
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large(max)),
            Err(e) => {
                return Err(respond(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("reading the body: {e}"),
                ));
            }
        }
    }
}

/// A JSON request body up to `max` bytes, and no more JSON values than
/// `max` allows (see [`super::json`]), or the answer refusing it.
async fn json_body<T: serde::de::DeserializeOwned>(
    state: &State,
    req: Request<Incoming>,
    what: &str,
) -> Result<T, Resp> {
    let max = state.max_request;
    let bytes = body(req, max, state.body_grace).await?;
    super::json::parse(&bytes, max, what).map_err(|r| *r)
}

fn too_large(max: u64) -> Resp {
    respond(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        &format!("request body is over the limit of {max} bytes"),
    )
}

async fn deploy(state: &State, who: &Caller, query: &str, req: Request<Incoming>) -> Resp {
    let Some(name) = param(query, "name").filter(|n| !n.is_empty()) else {
        return respond(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "deploy needs ?name=NAME",
        );
    };
    let name = name.to_string();
    let bytes = match body(req, state.max_component, state.body_grace).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match state.rt.deploy(who, &bytes, &name).await {
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
                v["error"] = serde_json::json!({ "kind": e.kind(), "message": super::errors::client_message(&e) })
            }
        },
        RunStatus::Error | RunStatus::Cancelled => {
            // The record's own words (kept free of host paths when it ended).
            let e = run.error();
            v["error"] = serde_json::json!({ "kind": e.kind(), "message": e.to_string() });
        }
        _ => {}
    }
    v
}

async fn call(state: &State, user: Option<&User>, req: Request<Incoming>) -> Resp {
    let mut b: CallBody = match json_body(state, req, "call").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // The arguments move into the request: a copy would double the largest
    // part of the body.
    let args = std::mem::take(&mut b.args);
    let mut r = b.to_request();
    r.args = args;
    let who = b.caller(user);
    let rt = &state.rt;
    if b.mode == "call" && b.cache.unwrap_or(rt.caches_by_default()) {
        return cached_call(rt.clone(), who, r, b.stream).await;
    }
    // A plain synchronous call answers from the Run the runtime returns,
    // its record and result still in memory.
    if b.mode == "call" && !b.stream {
        return match rt.call(&who, r).await {
            Ok(run) => json_response(StatusCode::OK, &answer(&run)),
            Err(e) => run_error(rt, &who, &e),
        };
    }
    // Every mode starts (or finds) the Run first; synchronous modes then
    // wait for it, streaming what it writes when asked to.
    let handle = match b.mode.as_str() {
        "call" | "run" => rt.start(&who, r).await,
        "get_or_call" | "get_or_run" => rt.get_or_run(&who, r).await,
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
    stream_call(rt.clone(), who, handle)
}

async fn exec(state: &State, user: Option<&User>, req: Request<Incoming>) -> Resp {
    let b: crate::wire::ExecBody = match json_body(state, req, "exec").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let who = b.caller(user);
    let handle = match state.rt.start_exec(&who, b.to_request()).await {
        Ok(h) => h,
        Err(e) => return from_runtime(&e),
    };
    if b.stream {
        return stream_call(state.rt.clone(), who, handle);
    }
    let status = handle.status().map(|s| s.to_string()).unwrap_or_default();
    json_response(
        StatusCode::OK,
        &serde_json::json!({ "run_name": handle.name(), "status": status }),
    )
}

/// A call through the result cache: the runtime holds the key's lock for
/// the whole call, so output reaches the client through the observer.
async fn cached_call(rt: Runtime, who: Caller, r: rh_runtime::CallRequest, stream: bool) -> Resp {
    if !stream {
        return match rt.call(&who, r).await {
            Ok(run) => json_response(StatusCode::OK, &answer(&run)),
            Err(e) => run_error(&rt, &who, &e),
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
            let r = rt.call(&who, r).await;
            (r, rt, who)
        });
        while let Some(f) = out_rx.recv().await {
            if tx.send(f).await.is_err() {
                break;
            }
        }
        let end = match call.await {
            Ok((Ok(run), _, _)) => answer(&run),
            // A Run that ran and failed answers with its record.
            Ok((Err(e), rt, who)) => match e.run().and_then(|n| rt.run(&who, n).ok()) {
                Some(run) => answer(&run),
                None => super::errors::error_json(e.kind(), &super::errors::client_message(&e)),
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

fn run_error(rt: &Runtime, who: &Caller, e: &rh_runtime::Error) -> Resp {
    match e.run().and_then(|n| rt.run(who, n).ok()) {
        Some(run) => json_response(StatusCode::OK, &answer(&run)),
        None => from_runtime(e),
    }
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
            Ok(run) => answer(&run),
            Err(e) => super::errors::error_json(e.kind(), &super::errors::client_message(&e)),
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

fn logs(state: &State, who: &Caller, name: &str, query: &str) -> Resp {
    let kind = match param(query, "stream") {
        Some("stderr") => OutputKind::Stderr,
        _ => OutputKind::Stdout,
    };
    let follow = matches!(param(query, "follow"), Some("1" | "true"));
    let mut f = match state.rt.follow(who, name, kind) {
        Ok(f) => f,
        Err(e) => return from_runtime(&e),
    };
    let (tx, body) = wire::channel(16);
    let (rt, who) = (state.rt.clone(), who.clone());
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
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/octet-stream")
        .body(body)
        .expect("a valid response")
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

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

/// Work that reads or hashes whole files runs on lowered background
/// threads, never on the async workers that answer every other request.
use rh_runtime::background::run as blocking;

/// A Run file asked for while the Run runs: its guest may be changing it.
fn not_finished(e: &rh_runtime::Error) -> Resp {
    match e {
        rh_runtime::Error::NotFinished { run, status } => respond(
            StatusCode::CONFLICT,
            "not_finished",
            &format!("run `{run}` is still {status}; wait for it before pulling"),
        ),
        e => from_runtime(e),
    }
}

async fn files(state: &State, who: &Caller, name: &str) -> Resp {
    let (rt, who) = (state.rt.clone(), who.clone());
    let owned = name.to_string();
    match blocking(move || rt.run_files(&who, &owned)).await {
        Ok(list) => json_response(
            StatusCode::OK,
            &serde_json::json!({ "run_name": name, "files": *list }),
        ),
        Err(e) => not_finished(&e),
    }
}

/// One file, streamed in chunks from the descriptor that was checked: no
/// symlink is followed, and a Run still running is `409 not_finished`.
async fn file(state: &State, who: &Caller, name: &str, path: &str) -> Resp {
    let run = match state.rt.run(who, name) {
        Ok(r) => r,
        Err(e) => return from_runtime(&e),
    };
    let owned = path.to_string();
    let (f, len) = match blocking(move || run.open_file(&owned)).await {
        Ok(x) => x,
        Err(e) => return not_finished(&e),
    };
    let (tx, body) = wire::channel(4);
    send_chunks(f, len, tx);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/octet-stream")
        .header("content-length", len)
        .body(body)
        .expect("a valid response")
}
