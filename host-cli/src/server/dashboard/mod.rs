//! The dashboard at `/`: a page app (assets embedded in the binary, nothing
//! fetched from elsewhere) over the daemon's own `/v1` API, and the
//! sessions it signs in with.
//!
//! Signing in (`POST /signin`) takes the daemon's token or a user's token
//! and sets `rh_session`, an HttpOnly, SameSite=Strict cookie naming a
//! session held in memory (12 hours). A request with that cookie acts as
//! its user through the same access rules as a bearer token; one that
//! changes anything must also carry the session's CSRF token
//! (`X-RH-CSRF`, or the `csrf` field of the sign-out form), which only the
//! daemon's own pages can read (`GET /ui/session`). No page but the
//! sign-in form is served without a session. `GET /healthz` answers `ok`
//! to anyone and says nothing else.

use super::routes::{Reply, Resp, respond};
use super::{Auth, State};
use crate::wire::full;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use rh_runtime::User;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INDEX: &str = include_str!("assets/index.html");
const SIGNIN: &str = include_str!("assets/signin.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// How long a session lasts.
const SESSION_LIFE: Duration = Duration::from_secs(12 * 3600);
/// The most sessions held for one token; its oldest go first.
const MAX_SESSIONS_PER_TOKEN: usize = 64;
/// The most sessions held in all.
const MAX_SESSIONS: usize = 10_000;

/// A signed-in browser. Its user is looked up again by its token's hash at
/// every request: a token taken out of the users file (or a user's rights
/// changed), once read again, holds for its sessions too.
#[derive(Clone)]
pub struct Session {
    token_sha: [u8; 32],
    pub csrf: String,
    made: Instant,
}

/// The sessions signed in, by id.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for the token of this hash; `None` when there is no
    /// randomness to make its id with.
    fn open(&self, token_sha: [u8; 32]) -> Option<String> {
        let id = super::hosts::random_id_checked(24)?;
        let csrf = super::hosts::random_id_checked(24)?;
        let mut m = self.by_id.lock().expect("sessions poisoned");
        let mine: Vec<(String, Instant)> = m
            .iter()
            .filter(|(_, s)| s.token_sha == token_sha)
            .map(|(k, s)| (k.clone(), s.made))
            .collect();
        if mine.len() >= MAX_SESSIONS_PER_TOKEN
            && let Some((oldest, _)) = mine.iter().min_by_key(|(_, t)| *t)
        {
            m.remove(oldest);
        }
        if m.len() >= MAX_SESSIONS {
            m.retain(|_, s| s.made.elapsed() < SESSION_LIFE);
        }
        if m.len() >= MAX_SESSIONS {
            return None;
        }
        m.insert(
            id.clone(),
            Session {
                token_sha,
                csrf,
                made: Instant::now(),
            },
        );
        Some(id)
    }

    fn get(&self, id: &str) -> Option<Session> {
        let m = self.by_id.lock().expect("sessions poisoned");
        m.get(id)
            .filter(|s| s.made.elapsed() < SESSION_LIFE)
            .cloned()
    }

    fn close(&self, id: &str) {
        self.by_id.lock().expect("sessions poisoned").remove(id);
    }
}

/// The session a request's cookie names, if any, and whom it acts for now
/// (`None` for full access): its token must still be known here.
pub fn session_of<B>(state: &State, req: &Request<B>) -> Option<(String, Session, Option<User>)> {
    let id = cookie(req, &cookie_name(state))?;
    let s = state.sessions.get(&id)?;
    let user = match &state.auth {
        Auth::Open => None,
        Auth::Token(t) => {
            if !same(&crate::users::token_hash(t), &s.token_sha) {
                return None;
            }
            None
        }
        Auth::Users(_, users) => Some(
            users
                .read()
                .expect("users lock poisoned")
                .by_hash(&s.token_sha)?
                .clone(),
        ),
    };
    Some((id, s, user))
}

/// The session cookie's name: one per daemon address (cookies do not keep
/// ports apart, and two daemons on one machine must not share one).
fn cookie_name(state: &State) -> String {
    format!("rh_session_{}", state.port)
}

/// Whether a form post comes from this daemon's own pages (browsers say
/// where a request comes from in `Sec-Fetch-Site`; a client without it is
/// not a browser another site drives).
fn same_site<B>(req: &Request<B>) -> bool {
    match req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(v) => v == "same-origin" || v == "none",
    }
}

fn cookie<B>(req: &Request<B>, name: &str) -> Option<String> {
    req.headers()
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// Whether a request may change something: a bearer token (no cookie
/// involved), or a session whose CSRF token it carries.
pub fn csrf_ok<B>(req: &Request<B>, s: &Session) -> bool {
    let given = req
        .headers()
        .get("x-rh-csrf")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    same(given.as_bytes(), s.csrf.as_bytes())
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Headers every page and asset carries.
fn guarded(mut resp: Resp) -> Resp {
    let h = resp.headers_mut();
    for (k, v) in [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        if let Ok(v) = hyper::header::HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    }
    resp
}

fn page(status: StatusCode, ctype: &str, body: String) -> Resp {
    guarded(respond(status, ctype, full(body.into_bytes())))
}

fn redirect(to: &str, cookie: Option<String>) -> Resp {
    let mut resp = respond(StatusCode::SEE_OTHER, "text/plain", full(Vec::new()));
    if let Ok(v) = hyper::header::HeaderValue::from_str(to) {
        resp.headers_mut().insert(hyper::header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| hyper::header::HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(hyper::header::SET_COOKIE, c);
    }
    guarded(resp)
}

/// A local path to go back to after signing in (never another site).
fn safe_next(next: &str) -> String {
    // Visible ASCII only: a browser drops tabs and newlines from a URL,
    // which would turn `/<TAB>/host` into `//host`.
    let plain = next.bytes().all(|b| (0x21..0x7f).contains(&b));
    if plain && next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/".into()
    }
}

fn signin_page(status: StatusCode, message: Option<&str>, next: &str) -> Resp {
    let msg = message
        .map(|m| {
            format!(
                "<p class=\"error-box\" id=\"signin-error\">{}</p>",
                escape(m)
            )
        })
        .unwrap_or_default();
    let body = SIGNIN
        .replace("<!--MESSAGE-->", &msg)
        .replace("<!--NEXT-->", &escape(&safe_next(next)));
    page(status, "text/html; charset=utf-8", body)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `application/x-www-form-urlencoded` fields.
fn form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Option<String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Everything outside `/v1`: pages, assets, sign-in and out, health.
pub async fn handle(state: &State, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, "/healthz") => {
            respond(StatusCode::OK, "text/plain", full(b"ok\n".to_vec()))
        }
        (&Method::GET, "/assets/app.css") => {
            page(StatusCode::OK, "text/css; charset=utf-8", APP_CSS.into())
        }
        (&Method::GET, "/signin") => {
            let next = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("next="))
                .and_then(decode)
                .unwrap_or_else(|| "/".into());
            signin_page(StatusCode::OK, None, &next)
        }
        (&Method::POST, "/signin") => signin(state, req).await,
        (&Method::POST, "/signout") => signout(state, req).await,
        _ => {
            let Some((_, s, user)) = session_of(state, &req) else {
                if method == Method::GET
                    && !path.starts_with("/assets/")
                    && !path.starts_with("/ui/")
                {
                    let next = if query.is_empty() {
                        path.clone()
                    } else {
                        format!("{path}?{query}")
                    };
                    return redirect(&format!("/signin?next={}", percent(&next)), None);
                }
                return super::errors::ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "sign in first",
                )
                .into_response();
            };
            match (&method, path.as_str()) {
                (&Method::GET, "/assets/app.js") => page(
                    StatusCode::OK,
                    "text/javascript; charset=utf-8",
                    APP_JS.into(),
                ),
                (&Method::GET, "/ui/session") => {
                    let v = serde_json::json!({
                        "user": user.as_ref().map(|u| u.name.clone()),
                        "admin": user.as_ref().is_none_or(|u| u.admin),
                        "csrf": s.csrf,
                        "cluster": state.rt.cluster(),
                    });
                    page(StatusCode::OK, "application/json", v.to_string())
                }
                (&Method::GET, p)
                    if p == "/"
                        || p == "/functions"
                        || p == "/artifacts"
                        || p == "/hosts"
                        || p.starts_with("/runs/")
                        || p.starts_with("/lineage/") =>
                {
                    page(StatusCode::OK, "text/html; charset=utf-8", INDEX.into())
                }
                _ => page(
                    StatusCode::NOT_FOUND,
                    "text/plain; charset=utf-8",
                    "no such page\n".into(),
                ),
            }
        }
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn small_body(req: Request<Incoming>) -> Option<bytes::Bytes> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(req.into_body(), 16 << 10);
    tokio::time::timeout(Duration::from_secs(10), limited.collect())
        .await
        .ok()?
        .ok()
        .map(|b| b.to_bytes())
}

async fn signin(state: &State, req: Request<Incoming>) -> Resp {
    if !same_site(&req) {
        return page(
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            "sign in from this daemon's own page\n".into(),
        );
    }
    let Some(body) = small_body(req).await else {
        return signin_page(
            StatusCode::BAD_REQUEST,
            Some("the form did not come whole"),
            "/",
        );
    };
    let f = form(&body);
    let next = f.get("next").cloned().unwrap_or_else(|| "/".into());
    let token = f.get("token").map(String::as_str).unwrap_or("");
    if super::routes::user_of_token(state, token).is_none() {
        return signin_page(
            StatusCode::UNAUTHORIZED,
            Some("That token is not known here."),
            &next,
        );
    }
    let Some(id) = state.sessions.open(crate::users::token_hash(token)) else {
        return signin_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("No session can be made now; try again."),
            &next,
        );
    };
    let cookie = format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        cookie_name(state),
        SESSION_LIFE.as_secs()
    );
    redirect(&safe_next(&next), Some(cookie))
}

async fn signout(state: &State, req: Request<Incoming>) -> Resp {
    let Some((id, s, _)) = session_of(state, &req) else {
        return redirect("/signin", None);
    };
    if !same_site(&req) {
        return page(
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            "sign out from this daemon's own page\n".into(),
        );
    }
    let header_ok = csrf_ok(&req, &s);
    let body = small_body(req).await.unwrap_or_default();
    let field_ok = form(&body)
        .get("csrf")
        .is_some_and(|c| same(c.as_bytes(), s.csrf.as_bytes()));
    if !header_ok && !field_ok {
        return page(
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            "missing CSRF token\n".into(),
        );
    }
    state.sessions.close(&id);
    redirect(
        "/signin",
        Some(format!(
            "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
            cookie_name(state)
        )),
    )
}
