//! The events stream: Runs' records as they change, and the requests every
//! host applies, in the stream's order.
//!
//! A Run event's headers say what it carries (`Rh-Kind: run`, `Rh-Origin`,
//! `Rh-Files: name:len,...`, `Rh-Blobs: name=digest,...`); its payload is
//! the record's JSON then the files' bytes. Files too large for a message
//! go to the shared store by digest and are checked against it when read.
//! A request event carries a request's method, path, query and user in its
//! headers and its body as the payload (or by digest in the store).

use super::Cluster;
use crate::server::routes::{ReqBody, route_with};
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::PullConsumer;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use rh_runtime::RunConfig;
use std::sync::Arc;
use std::time::Duration;

/// Files of a Run event larger than this (together) go by the store.
const INLINE_MAX: usize = 512 << 10;
/// The most a copied Run's file may be.
const FILE_MAX: u64 = 1 << 30;
/// The most a replicated request's body may be.
const BODY_MAX: u64 = 1 << 30;

/// A replicated request as this host applied it.
#[derive(Debug, Clone)]
pub struct Applied {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

pub(super) fn header(h: Option<&HeaderMap>, name: &str) -> Option<String> {
    h.and_then(|h| h.get(name)).map(|v| v.as_str().to_string())
}

impl Cluster {
    /// Publish a Run's record and files to every host: retried until the
    /// stream has it (a NATS server restarting loses nothing accepted).
    /// The event's sequence in the stream.
    pub(crate) async fn publish_run(
        &self,
        config: &RunConfig,
        files: Vec<(&'static str, Vec<u8>)>,
    ) -> u64 {
        let Ok(record) = serde_json::to_vec(config) else {
            return 0;
        };
        let total: usize = files.iter().map(|(_, b)| b.len()).sum();
        let mut payload = record.clone();
        let mut inline = Vec::new();
        let mut blobs = Vec::new();
        for (name, bytes) in files {
            if total > INLINE_MAX && bytes.len() > 4096 {
                match self.store.put_blob(&bytes).await {
                    Ok(d) => blobs.push(format!("{name}={d}")),
                    Err(e) => tracing::warn!("storing {name} of {}: {e}", config.name),
                }
            } else {
                inline.push(format!("{name}:{}", bytes.len()));
                payload.extend_from_slice(&bytes);
            }
        }
        let mut h = HeaderMap::new();
        h.insert("Rh-Kind", "run");
        h.insert("Rh-Origin", self.host.as_str());
        h.insert("Rh-Record", record.len().to_string().as_str());
        h.insert("Rh-Files", inline.join(",").as_str());
        h.insert("Rh-Blobs", blobs.join(",").as_str());
        self.publish_event(h, Bytes::from(payload)).await
    }

    /// Publish an event, retrying (with a rest) until JetStream has it;
    /// its sequence.
    pub(crate) async fn publish_event(&self, h: HeaderMap, payload: Bytes) -> u64 {
        let subject = self.subject("events");
        let mut rest = Duration::from_millis(50);
        loop {
            let sent = match self
                .js
                .publish_with_headers(subject.clone(), h.clone(), payload.clone())
                .await
            {
                Ok(ack) => ack.await.map(|a| a.sequence).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(seq) => return seq,
                Err(e) => {
                    tracing::warn!("publishing an event: {e}; trying again in {rest:?}");
                    tokio::time::sleep(rest).await;
                    rest = (rest * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Publish a request every host applies; answers with this host's own
    /// application of it.
    pub async fn replicate(
        &self,
        user: Option<&str>,
        method: &hyper::Method,
        path: &str,
        query: &str,
        body: Bytes,
    ) -> anyhow::Result<Applied> {
        let id = super::random_id();
        let mut h = HeaderMap::new();
        h.insert("Rh-Kind", "request");
        h.insert("Rh-Origin", self.host.as_str());
        h.insert("Rh-Id", id.as_str());
        h.insert("Rh-Method", method.as_str());
        h.insert("Rh-Path", path);
        h.insert("Rh-Query", query);
        if let Some(u) = user {
            h.insert("Rh-User", u);
        }
        let payload = if body.len() > INLINE_MAX {
            let digest = self.store.put_blob(&body).await?;
            h.insert("Rh-Blob", digest.as_str());
            Bytes::new()
        } else {
            body
        };
        h.insert("Nats-Msg-Id", id.as_str());
        let rx = self.expect_applied(&id);
        let mut sent = Err(anyhow::anyhow!("not sent"));
        for rest in [0, 50, 200, 1000] {
            tokio::time::sleep(Duration::from_millis(rest)).await;
            sent = match self
                .js
                .publish_with_headers(self.subject("events"), h.clone(), payload.clone())
                .await
            {
                // One id: a retry of a request the stream has is dropped.
                Ok(ack) => ack.await.map(|_| ()).map_err(anyhow::Error::from),
                Err(e) => Err(e.into()),
            };
            if sent.is_ok() {
                break;
            }
        }
        if let Err(e) = sent {
            self.applied.lock().expect("waiters poisoned").remove(&id);
            return Err(e);
        }
        Ok(tokio::time::timeout(Duration::from_secs(600), rx).await??)
    }

    /// Wait (at most `max`) until this host has applied the events stream
    /// up to `seq`. Whether it has.
    pub async fn wait_applied(&self, seq: u64, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        while self.applied_seq.load(std::sync::atomic::Ordering::SeqCst) < seq {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }

    /// Wait until this host has applied every event published so far (a
    /// deploy made through another host a moment ago).
    /// Not while NATS is away: answered from what this host has then.
    pub async fn catch_up(&self, max: Duration) -> bool {
        if !self.connected_for(Duration::ZERO) {
            return false;
        }
        let stream = format!("RH_{}_EVENTS", self.cluster);
        let last = tokio::time::timeout(Duration::from_millis(500), async {
            let mut s = self.js.get_stream(stream).await.ok()?;
            s.info().await.ok().map(|i| i.state.last_sequence)
        })
        .await;
        match last {
            Ok(Some(last)) => self.wait_applied(last, max).await,
            _ => false,
        }
    }
}

/// Apply the events stream, in order, for as long as the daemon runs.
pub(super) async fn apply_events(c: Arc<Cluster>, consumer: PullConsumer) {
    loop {
        let mut msgs = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("reading events: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        while let Some(m) = msgs.next().await {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!("reading events: {e}");
                    break;
                }
            };
            // Delivered again (its ack came too late): applied already.
            let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            if seq != 0 && seq <= c.applied_seq.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = m.ack().await;
                continue;
            }
            match header(m.headers.as_ref(), "Rh-Kind").as_deref() {
                Some("run") => apply_run(&c, &m).await,
                Some("request") => apply_request(&c, &m).await,
                other => tracing::warn!("an event of unknown kind {other:?} skipped"),
            }
            if let Ok(info) = m.info() {
                c.applied_seq
                    .fetch_max(info.stream_sequence, std::sync::atomic::Ordering::SeqCst);
            }
            if let Err(e) = m.ack().await {
                tracing::debug!("acking an event: {e}");
            }
        }
    }
}

async fn apply_run(c: &Arc<Cluster>, m: &async_nats::jetstream::Message) {
    let h = m.headers.as_ref();
    let origin = header(h, "Rh-Origin").unwrap_or_default();
    let record_len: usize = header(h, "Rh-Record")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let payload = &m.payload;
    let Some(config) = payload
        .get(..record_len)
        .and_then(|r| serde_json::from_slice::<RunConfig>(r).ok())
    else {
        tracing::warn!("a Run event without a record skipped");
        return;
    };
    if origin == c.host {
        if config.status.is_terminal() {
            c.wake(&config.name);
        }
        return;
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut at = record_len;
    for part in header(h, "Rh-Files").unwrap_or_default().split(',') {
        let Some((name, len)) = part.split_once(':') else {
            continue;
        };
        let Ok(len) = len.parse::<usize>() else {
            return;
        };
        let Some(bytes) = at.checked_add(len).and_then(|end| payload.get(at..end)) else {
            tracing::warn!("a Run event shorter than it says skipped");
            return;
        };
        at += len;
        files.push((name.to_string(), bytes.to_vec()));
    }
    for part in header(h, "Rh-Blobs").unwrap_or_default().split(',') {
        let Some((name, digest)) = part.split_once('=') else {
            continue;
        };
        match c.store.get_blob(digest, FILE_MAX).await {
            Ok(bytes) => files.push((name.to_string(), bytes)),
            Err(e) => tracing::warn!("fetching {name} of {}: {e}", config.name),
        }
    }
    // The versions it saved, before its record says it saved them.
    if config.status.is_terminal() {
        for a in &config.downstream_artifacts {
            match c.store.get_blob(&a.digest, FILE_MAX).await {
                Ok(bytes) => {
                    let (rt, a, run, creator) = (
                        c.rt.clone(),
                        a.clone(),
                        config.name.clone(),
                        config.creator.clone(),
                    );
                    let art = a.name.clone();
                    let kept = rh_runtime::background::run(move || {
                        rt.mirror_artifact(&a.name, &bytes, Some(&run), creator.as_deref())
                    })
                    .await;
                    if let Err(e) = kept {
                        tracing::warn!("keeping a copy of artifact {art}: {e}");
                    }
                }
                Err(e) => tracing::warn!("fetching artifact {} of {}: {e}", a.name, config.name),
            }
        }
    }
    let rt = c.rt.clone();
    let name = config.name.clone();
    let terminal = config.status.is_terminal();
    let done = rh_runtime::background::run(move || {
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        rt.mirror(&config, &refs)
    })
    .await;
    if let Err(e) = done {
        tracing::warn!("keeping a copy of Run {name}: {e}");
    }
    if terminal {
        c.wake(&name);
    }
}

async fn apply_request(c: &Arc<Cluster>, m: &async_nats::jetstream::Message) {
    let h = m.headers.as_ref();
    let id = header(h, "Rh-Id").unwrap_or_default();
    let origin = header(h, "Rh-Origin").unwrap_or_default();
    let Some(state) = c.state() else {
        return;
    };
    let method = header(h, "Rh-Method")
        .and_then(|m| m.parse::<hyper::Method>().ok())
        .unwrap_or(hyper::Method::GET);
    let path = header(h, "Rh-Path").unwrap_or_default();
    let query = header(h, "Rh-Query").unwrap_or_default();
    let body = match header(h, "Rh-Blob") {
        Some(d) if !d.is_empty() => match c.store.get_blob(&d, BODY_MAX).await {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                let applied = failed(500, &format!("reading the request's body: {e}"));
                if origin == c.host {
                    c.deliver_applied(&id, applied);
                }
                return;
            }
        },
        _ => m.payload.clone(),
    };
    let user = match header(h, "Rh-User") {
        Some(name) => match state.user_named(&name) {
            Some(u) => Some(u),
            None => {
                tracing::warn!("a request of user `{name}`, unknown here, skipped");
                if origin == c.host {
                    c.deliver_applied(&id, failed(403, "unknown user"));
                }
                return;
            }
        },
        // A host with users applies nothing for no one.
        None if matches!(state.auth, crate::server::Auth::Users(..)) => {
            tracing::warn!("a request that names no user skipped: this host has users");
            if origin == c.host {
                c.deliver_applied(
                    &id,
                    failed(403, "this host has users; the request names none"),
                );
            }
            return;
        }
        None => None,
    };
    let resp = route_with(
        &state,
        user,
        method,
        &path,
        &query,
        ReqBody::Given(body),
        true,
    )
    .await;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if origin == c.host {
        c.deliver_applied(
            &id,
            Applied {
                status,
                content_type,
                body,
            },
        );
    } else if status >= 400 {
        tracing::warn!(
            %path, status, "a request from host {origin} failed here: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

fn failed(status: u16, message: &str) -> Applied {
    Applied {
        status,
        content_type: "application/json".into(),
        body: Bytes::from(
            serde_json::json!({"error": {"kind": "cluster", "message": message}}).to_string(),
        ),
    }
}
