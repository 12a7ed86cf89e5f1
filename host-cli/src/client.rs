//! The HTTP client for a daemon: one keep-alive connection, bearer token,
//! typed JSON in and out (the `wire` types), framed streams, and errors
//! that read like the daemon's ([`RemoteError`]).

use crate::errors::{RemoteError, UsageError};
use crate::wire::{
    BoxBody, ErrorBody, FRAME_END, FRAME_STDERR, FRAME_STDOUT, FrameReader, RunAnswer, StreamEnd,
    full,
};
use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use rh_runtime::{OutputKind, OutputObserver};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

pub struct Client {
    /// `host:port`
    authority: String,
    token: Option<String>,
    cluster: String,
    conn: Mutex<Option<SendRequest<BoxBody>>>,
}

const JSON: &str = "application/json";

impl Client {
    pub fn new(cluster: &str, url: &str, token: Option<String>) -> Result<Client> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            UsageError(format!(
                "cluster `{cluster}`: only http:// URLs are supported ({url})"
            ))
        })?;
        let authority = rest.trim_end_matches('/').to_string();
        Ok(Client {
            authority,
            token,
            cluster: cluster.to_string(),
            conn: Mutex::new(None),
        })
    }

    async fn sender(&self) -> Result<SendRequest<BoxBody>> {
        let mut guard = self.conn.lock().await;
        if let Some(s) = guard.as_mut()
            && s.ready().await.is_ok()
        {
            // One request at a time per connection: hand this one out
            // and open another for anyone else meanwhile.
            return Ok(guard.take().expect("checked"));
        }
        drop(guard);
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .with_context(|| {
                format!(
                    "connecting to cluster `{}` at {}",
                    self.cluster, self.authority
                )
            })?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Send a request; any status but 2xx becomes a [`RemoteError`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: BoxBody,
        content_type: &str,
    ) -> Result<Response<Incoming>> {
        let mut sender = self.sender().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, content_type);
        if let Some(t) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = sender
            .send_request(req.body(body)?)
            .await
            .with_context(|| format!("talking to cluster `{}`", self.cluster))?;
        *self.conn.lock().await = Some(sender);
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let error = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => RemoteError {
                kind: b.error.kind,
                message: b.error.message,
            },
            Err(_) => RemoteError {
                kind: "error".into(),
                message: format!("HTTP {status}"),
            },
        };
        Err(anyhow!(error))
    }

    /// Send `body` (of `content_type`) and read the JSON answer as `T`.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: BoxBody,
        content_type: &str,
    ) -> Result<T> {
        let resp = self.send(method, path, body, content_type).await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        serde_json::from_slice(&bytes).context("the daemon's answer is not what the API says")
    }

    /// `GET path`, answered with JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.request(Method::GET, path, full(Bytes::new()), JSON)
            .await
    }

    /// `POST path` with a JSON body, answered with JSON.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        let body = full(serde_json::to_vec(body)?);
        self.request(Method::POST, path, body, JSON).await
    }

    /// `POST path` with no body, answered with JSON.
    pub async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.request(Method::POST, path, full(Bytes::new()), JSON)
            .await
    }

    /// `DELETE path`, answered with JSON.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.request(Method::DELETE, path, full(Bytes::new()), JSON)
            .await
    }

    /// `GET path`, answered with bytes.
    pub async fn bytes(&self, path: &str) -> Result<Bytes> {
        let resp = self
            .send(Method::GET, path, full(Bytes::new()), JSON)
            .await?;
        Ok(resp.into_body().collect().await?.to_bytes())
    }

    /// `POST path` with a JSON body asking for a stream: each output frame
    /// goes to `out` as it comes, and the last frame is the answer. An
    /// error in its place is a [`RemoteError`].
    pub async fn stream(
        &self,
        path: &str,
        body: &impl Serialize,
        out: &OutputObserver,
    ) -> Result<RunAnswer> {
        let body = full(serde_json::to_vec(body)?);
        let resp = self.send(Method::POST, path, body, JSON).await?;
        let mut incoming = resp.into_body();
        let mut frames = FrameReader::default();
        loop {
            let Some(frame) = incoming.frame().await else {
                anyhow::bail!("the daemon closed the stream before answering");
            };
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            frames.push(&data);
            while let Some((kind, payload)) = frames.next_frame() {
                match kind {
                    FRAME_STDOUT => out(OutputKind::Stdout, &payload),
                    FRAME_STDERR => out(OutputKind::Stderr, &payload),
                    FRAME_END => {
                        return match serde_json::from_slice(&payload)? {
                            StreamEnd::Run(answer) => Ok(answer),
                            StreamEnd::Failed(b) => Err(anyhow!(RemoteError {
                                kind: b.error.kind,
                                message: b.error.message,
                            })),
                        };
                    }
                    _ => {}
                }
            }
        }
    }
}
