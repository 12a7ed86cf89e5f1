//! The HTTP client for a daemon: one keep-alive connection, bearer token,
//! JSON in and out, and errors that read like the daemon's.

use crate::errors::{RemoteError, UsageError};
use crate::wire::{BoxBody, full};
use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

pub struct Client {
    /// `host:port`
    authority: String,
    token: Option<String>,
    cluster: String,
    conn: Mutex<Option<SendRequest<BoxBody>>>,
}

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
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let kind = v["error"]["kind"].as_str().unwrap_or("error").to_string();
        let message = v["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(anyhow!(RemoteError { kind, message }))
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let b = match body {
            Some(v) => full(serde_json::to_vec(v)?),
            None => full(Bytes::new()),
        };
        let resp = self.send(method, path, b, "application/json").await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        serde_json::from_slice(&bytes).context("the daemon's answer is not JSON")
    }

    pub async fn bytes(&self, path: &str) -> Result<Bytes> {
        let resp = self
            .send(Method::GET, path, full(Bytes::new()), "application/json")
            .await?;
        Ok(resp.into_body().collect().await?.to_bytes())
    }
}
