//! Reaching the host that executes a Run, over core NATS: cancels
//! (`rh.C.cancel`, answered by the host executing the Run, or kept for a
//! Run taken and not yet started), followers of its output
//! (`rh.C.follow.HOST`, one session per follower), and, from the buckets,
//! which host runs a Run and the cancel of one still queued.

use super::events::header;
use super::{Cluster, key_of};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use rh_runtime::{Caller, OutputKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
/// Cancel the Runs this host executes when any host asks.
pub(super) async fn answer_cancels(
    c: Arc<Cluster>,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut sub = c.client.subscribe(c.subject("cancel")).await?;
    Ok(async move {
        while let Some(m) = sub.next().await {
            let Ok(name) = std::str::from_utf8(&m.payload).map(str::to_string) else {
                continue;
            };
            if !c.rt.is_executing(&name) {
                // Taken here, not started yet: cancelled as it starts.
                if c.taken.lock().expect("taken poisoned").contains(&name) {
                    c.pending_cancels
                        .lock()
                        .expect("cancels poisoned")
                        .insert(name.clone());
                    if let Some(reply) = m.reply {
                        let _ = c.client.publish(reply, Bytes::from_static(b"ok")).await;
                    }
                }
                continue;
            }
            let rt = c.rt.clone();
            tokio::spawn(async move {
                let _ = rt.cancel(&Caller::host(), &name).await;
            });
            if let Some(reply) = m.reply {
                let _ = c.client.publish(reply, Bytes::from_static(b"ok")).await;
            }
        }
    })
}

/// The output of the Runs this host executes, for followers elsewhere:
/// one session per follower, each request answered with what was written
/// since the last (waiting up to a second for more), `Rh-End` at the end.
#[derive(Default)]
pub(super) struct Follows {
    sessions: Mutex<HashMap<String, Session>>,
}

struct Session {
    follower: Arc<tokio::sync::Mutex<rh_runtime::LogFollower>>,
    used: std::time::Instant,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FollowAsk {
    session: String,
    run: String,
    stderr: bool,
}

pub(super) async fn answer_follows(
    c: Arc<Cluster>,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut sub = c
        .client
        .subscribe(c.subject(&format!("follow.{}", c.host)))
        .await?;
    Ok(async move {
        while let Some(m) = sub.next().await {
            let Some(reply) = m.reply.clone() else {
                continue;
            };
            let Ok(ask) = serde_json::from_slice::<FollowAsk>(&m.payload) else {
                continue;
            };
            let c = c.clone();
            tokio::spawn(async move {
                let (bytes, end) = next_output(&c, &ask).await;
                let mut h = HeaderMap::new();
                if end {
                    h.insert("Rh-End", "1");
                }
                let _ = c.client.publish_with_headers(reply, h, bytes).await;
            });
        }
    })
}

async fn next_output(c: &Cluster, ask: &FollowAsk) -> (Bytes, bool) {
    // Taken here but maybe not started yet: its folder is about to be made
    // (a copy of the queued Run may still be there).
    let ready = c.rt.is_executing(&ask.run)
        || c.rt
            .run(&Caller::host(), &ask.run)
            .is_ok_and(|r| r.status().is_terminal());
    let follower = {
        let mut s = c.follows.sessions.lock().expect("follows poisoned");
        s.retain(|_, v| v.used.elapsed() < Duration::from_secs(120));
        match s.get_mut(&ask.session) {
            Some(v) => {
                v.used = std::time::Instant::now();
                Some(v.follower.clone())
            }
            None if !ready => None,
            None => {
                let kind = if ask.stderr {
                    OutputKind::Stderr
                } else {
                    OutputKind::Stdout
                };
                match c.rt.follow(&Caller::host(), &ask.run, kind) {
                    Ok(f) => {
                        let f = Arc::new(tokio::sync::Mutex::new(f));
                        s.insert(
                            ask.session.clone(),
                            Session {
                                follower: f.clone(),
                                used: std::time::Instant::now(),
                            },
                        );
                        Some(f)
                    }
                    Err(_) => return (Bytes::new(), true),
                }
            }
        }
    };
    let Some(follower) = follower else {
        tokio::time::sleep(Duration::from_millis(5)).await;
        return (Bytes::new(), false);
    };
    let mut f = follower.lock().await;
    match tokio::time::timeout(Duration::from_secs(1), f.next()).await {
        Err(_) => (Bytes::new(), false),
        Ok(Ok(Some(chunk))) => (Bytes::from(chunk), false),
        Ok(Ok(None)) | Ok(Err(_)) => {
            c.follows
                .sessions
                .lock()
                .expect("follows poisoned")
                .remove(&ask.session);
            (Bytes::new(), true)
        }
    }
}

impl Cluster {
    /// Follow the output of Run `run` executing on host `host`, sending
    /// each chunk to `tx` (counted in `sent`) until the Run ends, or, when
    /// not following, until what it has written so far is sent (`Ok`); or
    /// until the host stops answering (`Err`).
    pub async fn follow_remote(
        &self,
        host: &str,
        run: &str,
        stderr: bool,
        tx: &tokio::sync::mpsc::Sender<Bytes>,
        follow: bool,
        sent: &mut u64,
    ) -> anyhow::Result<()> {
        let ask = serde_json::to_vec(&FollowAsk {
            session: super::random_id(),
            run: run.to_string(),
            stderr,
        })?;
        let subject = self.subject(&format!("follow.{host}"));
        loop {
            let m = tokio::time::timeout(
                Duration::from_secs(5),
                self.client
                    .request(subject.clone(), Bytes::from(ask.clone())),
            )
            .await??;
            let len = m.payload.len() as u64;
            if len > 0 && tx.send(m.payload.clone()).await.is_err() {
                return Ok(());
            }
            *sent += len;
            if header(m.headers.as_ref(), "Rh-End").is_some() || (!follow && len == 0) {
                return Ok(());
            }
        }
    }

    /// Cancel Run `name` if it still waits in the queue: it ends
    /// `cancelled` on every host, and no host will take it. Whether it did.
    pub async fn cancel_queued(&self, name: &str) -> anyhow::Result<bool> {
        let key = key_of(name);
        let Some(e) = self.active.entry(key.clone()).await? else {
            return Ok(false);
        };
        if e.operation != async_nats::jetstream::kv::Operation::Put {
            return Ok(false);
        }
        let a: super::work::ActiveEntry = serde_json::from_slice(&e.value)?;
        if !a.host.is_empty()
            || self
                .active
                .purge_expect_revision_with_ttl(&key, e.revision, super::GONE_TTL)
                .await
                .is_err()
        {
            return Ok(false);
        }
        let mut config = self
            .rt
            .run(&Caller::host(), name)
            .map(|r| r.config().clone())
            .unwrap_or(a.work.queued);
        config.status = rh_runtime::RunStatus::Cancelled;
        config.end_time = Some(rh_runtime::now_rfc3339());
        config.error = Some(rh_runtime::RunError {
            kind: "cancelled".into(),
            message: "cancelled while it waited in the queue".into(),
        });
        let (rt, cfg) = (self.rt.clone(), config.clone());
        rh_runtime::background::run(move || rt.mirror(&cfg, &[])).await?;
        self.publish_run(&config, vec![]).await;
        self.wake(name);
        Ok(true)
    }

    /// Ask whichever host executes Run `name` to cancel it. Whether one
    /// answered.
    pub async fn cancel_remote(&self, name: &str) -> bool {
        let ask = self
            .client
            .request(self.subject("cancel"), Bytes::from(name.to_string()));
        matches!(
            tokio::time::timeout(Duration::from_secs(2), ask).await,
            Ok(Ok(_))
        )
    }

    /// The host executing Run `name` now ("" while queued), from the
    /// bucket of active Runs; `None` once it is not active.
    pub async fn executing_host(&self, name: &str) -> Option<String> {
        let e = self.active.entry(key_of(name)).await.ok()??;
        if e.operation != async_nats::jetstream::kv::Operation::Put {
            return None;
        }
        serde_json::from_slice::<super::work::ActiveEntry>(&e.value)
            .ok()
            .map(|a| a.host)
    }
}
