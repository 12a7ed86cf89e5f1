//! What travels between the CLI and a daemon: the call request, the framed
//! stream a streaming call answers with, and a body type fed by a channel.
//!
//! A streaming call's response is a sequence of frames, each a one-byte
//! type, a four-byte big-endian length and the payload: `1` stdout bytes,
//! `2` stderr bytes, `3` the final answer as JSON. Frames keep the guest's
//! bytes exact (no text encoding), and the daemon writes each as the guest
//! writes, so the client prints output while the Run runs.

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// The body of `POST /v1/calls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallBody {
    pub function: String,
    #[serde(default = "empty_args")]
    pub args: serde_json::Value,
    #[serde(default)]
    pub run_name: Option<String>,
    #[serde(default)]
    pub fuel: Option<u64>,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub rerun: bool,
    /// `call`, `get_or_call`, `run` or `get_or_run`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Answer with frames carrying the output as it is written.
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub creator: Option<String>,
    /// Use the result cache (`null`: the daemon's default).
    #[serde(default)]
    pub cache: Option<bool>,
    /// The scope (or other Run) this call is made inside.
    #[serde(default)]
    pub parent_run: Option<String>,
}

impl CallBody {
    /// The body for a call request, in `mode`.
    pub fn from_request(
        req: &rh_runtime::CallRequest,
        caller: &rh_runtime::Caller,
        mode: &str,
    ) -> CallBody {
        CallBody {
            function: req.function.clone(),
            args: req.args.clone(),
            run_name: req.run_name.clone(),
            fuel: req.fuel,
            memory: req.memory,
            timeout_ms: req.timeout.map(|t| t.as_millis() as u64),
            rerun: req.rerun,
            mode: mode.into(),
            stream: matches!(mode, "call" | "get_or_call"),
            creator: caller.creator().map(str::to_string),
            cache: req.cache,
            parent_run: caller.scope().map(str::to_string),
        }
    }

    /// The call request this body asks for.
    pub fn to_request(&self) -> rh_runtime::CallRequest {
        let mut r = rh_runtime::CallRequest::new(self.function.clone(), self.args.clone())
            .rerun(self.rerun);
        if let Some(n) = &self.run_name {
            r = r.run_name(n.clone());
        }
        if let Some(f) = self.fuel {
            r = r.fuel(f);
        }
        if let Some(m) = self.memory {
            r = r.memory(m);
        }
        if let Some(t) = self.timeout_ms {
            r = r.timeout(std::time::Duration::from_millis(t));
        }
        if let Some(c) = self.cache {
            r = r.cache(c);
        }
        r
    }

    /// Who the call acts for: `user` when the daemon checks users (the
    /// body's `creator` is then ignored), else whom the client names.
    pub fn caller(&self, user: Option<&rh_runtime::User>) -> rh_runtime::Caller {
        caller_of(user, self.creator.as_deref(), self.parent_run.as_deref())
    }
}

/// The body of `POST /v1/exec`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecBody {
    pub cmds: Vec<ExecCmd>,
    #[serde(default)]
    pub run_name: Option<String>,
    #[serde(default)]
    pub keep_going: bool,
    #[serde(default)]
    pub rerun: bool,
    #[serde(default)]
    pub fuel: Option<u64>,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The scratch limit, in bytes.
    #[serde(default)]
    pub scratch: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub creator: Option<String>,
    #[serde(default)]
    pub parent_run: Option<String>,
}

/// One command: as recorded, the component (name or digest), its args.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecCmd {
    pub cmd: String,
    pub component: String,
    #[serde(default)]
    pub args: Vec<String>,
}

impl ExecBody {
    pub fn from_request(
        req: &rh_runtime::ExecRequest,
        caller: &rh_runtime::Caller,
        stream: bool,
    ) -> ExecBody {
        ExecBody {
            cmds: req
                .cmds
                .iter()
                .map(|c| ExecCmd {
                    cmd: c.cmd.clone(),
                    component: c.component.clone(),
                    args: c.args.clone(),
                })
                .collect(),
            run_name: req.run_name.clone(),
            keep_going: req.keep_going,
            rerun: req.rerun,
            fuel: req.fuel,
            memory: req.memory,
            timeout_ms: req.timeout.map(|t| t.as_millis() as u64),
            scratch: req.scratch,
            stream,
            creator: caller.creator().map(str::to_string),
            parent_run: caller.scope().map(str::to_string),
        }
    }

    pub fn to_request(&self) -> rh_runtime::ExecRequest {
        let cmds = self
            .cmds
            .iter()
            .map(|c| rh_runtime::CmdSpec {
                cmd: c.cmd.clone(),
                component: c.component.clone(),
                args: c.args.clone(),
            })
            .collect();
        let mut r = rh_runtime::ExecRequest::new(cmds)
            .keep_going(self.keep_going)
            .rerun(self.rerun);
        if let Some(n) = &self.run_name {
            r = r.run_name(n.clone());
        }
        if let Some(f) = self.fuel {
            r = r.fuel(f);
        }
        if let Some(m) = self.memory {
            r = r.memory(m);
        }
        if let Some(t) = self.timeout_ms {
            r = r.timeout(std::time::Duration::from_millis(t));
        }
        if let Some(s) = self.scratch {
            r = r.scratch(s);
        }
        r
    }

    /// Who the Run acts for; see [`CallBody::caller`].
    pub fn caller(&self, user: Option<&rh_runtime::User>) -> rh_runtime::Caller {
        caller_of(user, self.creator.as_deref(), self.parent_run.as_deref())
    }
}

/// A request's caller: the daemon's user when it has one, else the client's
/// own name for itself; inside `parent` when given.
fn caller_of(
    user: Option<&rh_runtime::User>,
    creator: Option<&str>,
    parent: Option<&str>,
) -> rh_runtime::Caller {
    let caller = match (user, creator) {
        (Some(u), _) => rh_runtime::Caller::for_user(u.clone()),
        (None, Some(c)) => rh_runtime::Caller::named(c),
        (None, None) => rh_runtime::Caller::host(),
    };
    caller.in_scope_opt(parent.map(str::to_string))
}

fn empty_args() -> serde_json::Value {
    serde_json::Value::Array(Vec::new())
}

fn default_mode() -> String {
    "call".into()
}

pub const FRAME_STDOUT: u8 = 1;
pub const FRAME_STDERR: u8 = 2;
pub const FRAME_END: u8 = 3;

pub fn frame(kind: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + payload.len());
    b.extend_from_slice(&[kind]);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(payload);
    b.freeze()
}

/// Splits a byte stream back into frames.
#[derive(Default)]
pub struct FrameReader {
    buf: BytesMut,
}

impl FrameReader {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_frame(&mut self) -> Option<(u8, Bytes)> {
        if self.buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return None;
        }
        let kind = self.buf[0];
        self.buf.advance(5);
        Some((kind, self.buf.split_to(len).freeze()))
    }
}

/// A body whose chunks arrive over a channel.
pub struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

pub fn full(b: impl Into<Bytes>) -> BoxBody {
    http_body_util::Full::new(b.into()).boxed()
}

pub fn channel(capacity: usize) -> (mpsc::Sender<Bytes>, BoxBody) {
    let (tx, rx) = mpsc::channel(capacity);
    (tx, ChannelBody(rx).boxed())
}
