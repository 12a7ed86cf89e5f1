//! The `/v1` routes, documented in `docs/http-api.md`: who is asking (the
//! token), which handler answers (the route table), and what handlers share
//! (their context [`Ctx`], request bodies, JSON answers).
//!
//! A handler maps a request to runtime calls and returns `Result<T,
//! ApiError>`: `T` is a [`Json`] wire type, or a response of its own for
//! streams and bytes. There are no access checks here: [`route`] builds
//! the one [`Caller`] a request acts as, and the runtime checks what that
//! caller may do. One handler module per resource: `functions` (and
//! components), `calls` (calls and `exec`, streamed or not), `runs`,
//! `artifacts` (and lineage), `scopes`, `shares`.
//!
//! Answers are written through `serde_json::Value`, so their keys come
//! sorted at every level, as the daemon has always written them.

mod artifacts;
mod calls;
mod cluster;
mod cluster_output;
mod functions;
mod runs;
mod scopes;
mod shares;

use super::errors::{ApiError, client_message};
use super::{Auth, State};
use crate::wire::{BoxBody, Deleted, Health, RunAnswer, full};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use rh_runtime::{Caller, ObjectKind, Run, Runtime, User};
use serde::Serialize;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type Resp = Response<BoxBody>;

pub async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (resp, who) = if path == "/metrics" {
        match authenticate(&state, &req) {
            // Figures of every user's functions: for an administrator.
            Ok(Some(u)) if !u.admin => (
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "only an administrator reads /metrics (or use --metrics-addr)",
                )
                .into_response(),
                None,
            ),
            Ok(_) => (metrics_page(&state), None),
            Err(e) => (e.into_response(), None),
        }
    } else if path != "/v1" && !path.starts_with("/v1/") {
        (super::dashboard::handle(&state, req).await, None)
    } else {
        match authenticate(&state, &req) {
            Err(e) => (e.into_response(), None),
            Ok(user) => {
                let who = user.as_ref().map(|u| u.name.clone());
                (route(&state, user, req).await, who)
            }
        }
    };
    let took = started.elapsed();
    state.metrics.request(
        method.as_str(),
        &super::metrics::route_of(&path),
        resp.status().as_u16(),
        took.as_secs_f64(),
    );
    tracing::info!(
        %peer, user = who.as_deref().unwrap_or("-"), %method, %path, status = resp.status().as_u16(),
        ms = took.as_secs_f64() * 1000.0, "request"
    );
    Ok(resp)
}

/// `GET /metrics`: the Prometheus text format, gauges read now.
pub fn metrics_page(state: &State) -> Resp {
    let running = state.rt.active_runs().len() as i64;
    let queued = state
        .cluster
        .as_ref()
        .map(|c| c.queue_depth.load(std::sync::atomic::Ordering::SeqCst) as i64)
        .unwrap_or(0);
    let body = state.metrics.render(
        running,
        queued,
        running,
        i64::from(state.rt.instance_slots()),
    );
    respond(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        full(body.into_bytes()),
    )
}

/// Who is asking, by bearer token or by the dashboard's session cookie:
/// `Ok(None)` for full access (no users on this daemon), `Ok(Some(user))`
/// for a user, whose access the runtime checks. A session changes
/// nothing without its CSRF token.
fn authenticate(state: &State, req: &Request<Incoming>) -> Result<Option<User>, ApiError> {
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        )
    };
    if bearer.is_none()
        && let Some((_, s, user)) = super::dashboard::session_of(state, req)
    {
        let reads = matches!(*req.method(), Method::GET | Method::HEAD);
        if !reads && !super::dashboard::csrf_ok(req, &s) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "a request with the session cookie that changes something needs its X-RH-CSRF token",
            ));
        }
        return Ok(user);
    }
    user_of_token(state, bearer.unwrap_or("")).ok_or_else(unauthorized)
}

/// Whom a token names: `Some(None)` for full access (the daemon's token,
/// or any on a daemon without one), `Some(Some(user))` for a user, `None`
/// for a token not known here.
pub fn user_of_token(state: &State, given: &str) -> Option<Option<User>> {
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

/// What every handler is given.
pub struct Ctx<'a> {
    pub state: &'a State,
    pub rt: &'a Runtime,
    /// Who acts: the daemon's user, or (with no users) the daemon itself.
    pub who: Caller,
    /// The request's query string (`""` when it has none).
    pub query: &'a str,
}

impl Ctx<'_> {
    /// A query parameter's value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then_some(v)
        })
    }

    /// A component or artifact upload, at most `--max-component` bytes.
    pub async fn upload(&self, req: ReqBody) -> Result<Bytes, ApiError> {
        body(req, self.state.max_component, self.state.body_grace).await
    }

    /// A JSON request body up to `--max-request` bytes, and no more JSON
    /// values than that allows (see [`super::json`]).
    pub async fn json_body<T: serde::de::DeserializeOwned>(
        &self,
        req: ReqBody,
        what: &str,
    ) -> Result<T, ApiError> {
        let max = self.state.max_request;
        let bytes = body(req, max, self.state.body_grace).await?;
        super::json::parse(&bytes, max, what)
    }
}

/// A request's body: the one arriving (read when a handler asks for it,
/// bounded and timed), or one already read (a request replicated to every
/// host of a cluster).
pub enum ReqBody {
    Live(Incoming, Option<u64>),
    Given(Bytes),
}

async fn route(state: &State, user: Option<User>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let (parts, incoming) = req.into_parts();
    let len = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    route_with(
        state,
        user,
        parts.method,
        &path,
        &query,
        ReqBody::Live(incoming, len),
        false,
    )
    .await
}

/// Answer a request given by its parts. On a host of a cluster of
/// several, `local` answers it here alone (a request every host applies,
/// being applied).
pub async fn route_with(
    state: &State,
    user: Option<User>,
    m: Method,
    path: &str,
    query: &str,
    req: ReqBody,
    local: bool,
) -> Resp {
    let cx = Ctx {
        state,
        rt: &state.rt,
        who: Caller::of(user),
        query,
    };
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let Some(c) = state.cluster.as_ref().filter(|_| !local) {
        if cluster::replicated(&m, &segs) {
            return cluster::replicate(&cx, c, m, path, req)
                .await
                .into_response();
        }
        match (&m, segs.as_slice()) {
            (&Method::POST, ["v1", "calls"]) => {
                return cluster::call(&cx, c, req).await.into_response();
            }
            (&Method::POST, ["v1", "exec"]) => {
                return cluster::exec(&cx, c, req).await.into_response();
            }
            (&Method::POST, ["v1", "python"]) => {
                return cluster::python(&cx, c, req).await.into_response();
            }
            (&Method::POST, ["v1", "runs", name, "cancel"]) => {
                return cluster_output::cancel(&cx, c, name).await.into_response();
            }
            (&Method::GET, ["v1", "runs", name, "logs"]) => {
                return cluster_output::logs(&cx, c, name).into_response();
            }
            (&Method::GET, ["v1", "hosts"]) => return cluster::hosts(c).await.into_response(),
            // A read sees everything the cluster had done when it came:
            // a Run that ended on another host a moment ago has ended here.
            (&Method::GET, _) => {
                c.catch_up(std::time::Duration::from_secs(2)).await;
            }
            _ => {}
        }
    }
    match (m, segs.as_slice()) {
        (Method::GET, ["v1", "hosts"]) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_a_cluster",
            "this daemon is one host alone: hosts are listed by a cluster of several (serve --nats)",
        )
        .into_response(),
        (Method::GET, ["v1", "health"]) => health(&cx).into_response(),
        (Method::GET, ["v1", "functions"]) => functions::list(&cx).await.into_response(),
        (Method::POST, ["v1", "functions"]) => functions::deploy(&cx, req).await.into_response(),
        (Method::DELETE, ["v1", "functions", name]) => {
            delete(&cx, ObjectKind::Function, name).into_response()
        }
        (Method::POST, ["v1", "components"]) => functions::add(&cx, req).await.into_response(),
        (Method::POST, ["v1", "calls"]) => calls::call(&cx, req).await.into_response(),
        (Method::POST, ["v1", "exec"]) => calls::exec(&cx, req).await.into_response(),
        (Method::POST, ["v1", "python"]) => calls::python(&cx, req).await.into_response(),
        (Method::GET, ["v1", "artifacts"]) => artifacts::list(&cx).await.into_response(),
        (Method::GET, ["v1", "artifacts", name]) => artifacts::get(&cx, name).into_response(),
        (Method::GET, ["v1", "artifacts", name, "data"]) => {
            artifacts::data(&cx, name).await.into_response()
        }
        (Method::POST, ["v1", "artifacts", name]) => {
            artifacts::save(&cx, name, req).await.into_response()
        }
        (Method::DELETE, ["v1", "artifacts", name]) => {
            delete(&cx, ObjectKind::Artifact, name).into_response()
        }
        (Method::GET, ["v1", "lineage", name]) => {
            artifacts::lineage(&cx, name).await.into_response()
        }
        (Method::POST, ["v1", "scopes"]) => scopes::open(&cx, req).await.into_response(),
        (Method::POST, ["v1", "scopes", name, "end"]) => {
            scopes::end(&cx, name, req).await.into_response()
        }
        (Method::GET, ["v1", "runs"]) => runs::list(&cx).await.into_response(),
        (Method::POST, ["v1", "gc"]) => runs::gc(&cx, req).await.into_response(),
        (Method::POST, ["v1", "cache", "clear"]) => {
            runs::clear_cache(&cx, req).await.into_response()
        }
        (Method::POST, ["v1", "reindex"]) => runs::reindex(&cx).await.into_response(),
        (Method::GET, ["v1", "runs", name]) => runs::get(&cx, name).into_response(),
        (Method::GET, ["v1", "runs", name, "result"]) => runs::result(&cx, name).into_response(),
        (Method::GET, ["v1", "runs", name, "wait"]) => runs::wait(&cx, name).await.into_response(),
        (Method::POST, ["v1", "runs", name, "cancel"]) => {
            runs::cancel(&cx, name).await.into_response()
        }
        (Method::DELETE, ["v1", "runs", name]) => {
            delete(&cx, ObjectKind::Run, name).into_response()
        }
        (Method::GET, ["v1", "runs", name, "logs"]) => runs::logs(&cx, name).into_response(),
        (Method::GET, ["v1", "runs", name, "access"]) => runs::access(&cx, name).into_response(),
        (Method::GET, ["v1", "runs", name, "files"]) => {
            runs::files(&cx, name).await.into_response()
        }
        (Method::GET, ["v1", "runs", name, "files", rest @ ..]) if !rest.is_empty() => {
            runs::file(&cx, name, &rest.join("/")).await.into_response()
        }
        (Method::GET, ["v1", "shares"]) => shares::list(&cx).into_response(),
        (Method::POST, ["v1", "shares"]) => shares::share(&cx, req, true).await.into_response(),
        (Method::POST, ["v1", "shares", "remove"]) => {
            shares::share(&cx, req, false).await.into_response()
        }
        (_, ["v1", ..]) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route {path}"),
        )
        .into_response(),
        _ => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route {path} (the API is under /v1)"),
        )
        .into_response(),
    }
}

fn health(cx: &Ctx) -> Json<Health> {
    let user = cx.who.user();
    Json(Health {
        ok: true,
        cluster: cx.rt.cluster().to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        user: user.map(|u| u.name.clone()),
        admin: user.map(|u| u.admin),
    })
}

/// Delete a function, Run or artifact; answers what was deleted.
fn delete(cx: &Ctx, kind: ObjectKind, name: &str) -> Result<Json<Deleted>, ApiError> {
    cx.rt.delete(&cx.who, kind, name)?;
    Ok(Json(Deleted {
        deleted: name.to_string(),
        kind,
    }))
}

/// The daemon's answer about a Run (see [`RunAnswer::of`]).
pub fn answer(run: &Run) -> RunAnswer {
    RunAnswer::of(run, client_message)
}

/// What a handler answers with.
pub trait Reply {
    fn into_response(self) -> Resp;
}

/// A `200` JSON answer.
pub struct Json<T>(pub T);

impl<T: Serialize> Reply for Json<T> {
    fn into_response(self) -> Resp {
        json_response(StatusCode::OK, &self.0)
    }
}

impl Reply for Resp {
    fn into_response(self) -> Resp {
        self
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Resp {
        json_response(self.status, &self.body())
    }
}

impl<T: Reply> Reply for Result<T, ApiError> {
    fn into_response(self) -> Resp {
        match self {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

/// JSON as the daemon writes it: through `serde_json::Value`, keys sorted.
pub fn json_bytes(v: &impl Serialize) -> Vec<u8> {
    serde_json::to_value(v)
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_default()
}

fn json_response(status: StatusCode, v: &impl Serialize) -> Resp {
    let mut body = json_bytes(v);
    body.push(b'\n');
    respond(status, "application/json", full(body))
}

/// A response of `content_type` with `body`.
pub fn respond(status: StatusCode, content_type: &str, body: BoxBody) -> Resp {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// The slowest a request body may come, once `grace` has passed: a client
/// that sends its headers in time and then trickles its body would
/// otherwise hold its connection for as long as it likes.
const MIN_BODY_RATE: u64 = 16 << 10;

/// A request body, at most `max` bytes (`413` past it), coming at least at
/// [`MIN_BODY_RATE`] bytes a second after `grace` (`408` otherwise).
async fn body(req: ReqBody, max: u64, grace: Duration) -> Result<Bytes, ApiError> {
    let (incoming, len) = match req {
        ReqBody::Given(b) if b.len() as u64 > max => return Err(too_large(max)),
        ReqBody::Given(b) => return Ok(b),
        ReqBody::Live(incoming, len) => (incoming, len),
    };
    if len.is_some_and(|len| len > max) {
        return Err(too_large(max));
    }
    let started = tokio::time::Instant::now();
    let mut incoming = Limited::new(incoming, max as usize);
    let mut got = bytes::BytesMut::new();
    loop {
        let due =
            started + grace + Duration::from_secs_f64(got.len() as f64 / MIN_BODY_RATE as f64);
        let frame = match tokio::time::timeout_at(due, incoming.frame()).await {
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!(
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
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("reading the body: {e}"),
                ));
            }
        }
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("request body is over the limit of {max} bytes"),
    )
}

/// Work that reads or hashes whole files runs on lowered background
/// threads, never on the async workers that answer every other request.
use rh_runtime::background::run as blocking;
