//! The cluster's queue: a Run accepted by any host (named, checked, its
//! name claimed cluster-wide, `not_started` on every host) waits in the
//! work stream until a host with a free slot takes it (`take`); its entry
//! in the bucket of active Runs says who runs it.

use super::{Cluster, key_of};
use anyhow::Result;
use async_nats::HeaderMap;
use async_nats::jetstream::kv::Operation;
use bytes::Bytes;
use rh_runtime::{Caller, RunConfig, RunStatus};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// What a queued Run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    Call,
    Exec,
    Python,
}

/// A queued Run: the request's body as it came (its name set), who asked,
/// the record it was queued with, its attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Work {
    pub run: String,
    pub kind: WorkKind,
    pub body: serde_json::Value,
    pub user: Option<String>,
    pub attempt: u32,
    pub retries: u32,
    pub queued: RunConfig,
    /// The events a host must have applied before it executes this
    /// (the functions, artifacts and Runs the caller saw when asking).
    #[serde(default)]
    pub after: u64,
    /// The body's digest in the shared store, when it is too large for a
    /// message (`body` is then null).
    #[serde(default)]
    pub body_blob: Option<String>,
    /// In the work message: the revision of the Run's entry as queued, so
    /// the host that takes it needs one compare-and-set, not a read first.
    #[serde(default)]
    pub entry_rev: u64,
}

/// Bodies larger than this go by the shared store.
const BODY_INLINE_MAX: usize = 256 << 10;
/// The most a queued body may be when read back.
pub(super) const BODY_MAX: u64 = 1 << 30;

/// A Run's entry in the bucket of active Runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ActiveEntry {
    /// The host executing it; empty while it waits.
    pub host: String,
    pub work: Work,
}

impl Cluster {
    /// Claim a Run name cluster-wide: `Ok(None)` when it was free and is
    /// now this host's; `Ok(Some(revision))` when it is taken (the
    /// revision to replace it with [`Cluster::reclaim`]).
    pub async fn claim_name(&self, name: &str) -> Result<Option<u64>> {
        let key = key_of(name);
        match self
            .names
            .create(&key, Bytes::from(self.host.clone()))
            .await
        {
            Ok(_) => Ok(None),
            Err(e) => match self.names.entry(&key).await? {
                Some(entry) if entry.operation == Operation::Put => Ok(Some(entry.revision)),
                Some(entry) => {
                    // Deleted: take it over by revision.
                    self.names
                        .update(&key, Bytes::from(self.host.clone()), entry.revision)
                        .await
                        .map_err(|_| anyhow::anyhow!("run name `{name}`: {e}"))?;
                    Ok(None)
                }
                None => Err(anyhow::anyhow!("claiming the run name `{name}`: {e}")),
            },
        }
    }

    /// Single flight of identical cached calls across hosts: while another
    /// host's Run of the same call (`key`) runs, wait for it; then this
    /// call `run` goes on, and the result cache answers it from that Run.
    pub async fn cache_flight(&self, key: &str, run: &str) -> Result<()> {
        let k = format!("cache.{key}");
        let mine = Bytes::from(run.to_string());
        let started = tokio::time::Instant::now();
        loop {
            if self.names.create(&k, mine.clone()).await.is_ok() {
                return Ok(());
            }
            let Some(e) = self.names.entry(&k).await? else {
                continue;
            };
            let other = String::from_utf8_lossy(&e.value).to_string();
            let done = e.operation != Operation::Put
                || match self.rt.run(&Caller::host(), &other) {
                    Ok(r) => r.status().is_terminal(),
                    // Claimed elsewhere a moment ago, or long gone.
                    Err(_) => started.elapsed() > Duration::from_secs(10),
                };
            if done {
                if self
                    .names
                    .update(&k, mine.clone(), e.revision)
                    .await
                    .is_ok()
                {
                    return Ok(());
                }
                continue;
            }
            self.wait_ended(&other, Duration::from_secs(1)).await;
        }
    }

    /// Take a claimed name for a new Run of it (a rerun), unless someone
    /// else took it since `revision`.
    pub async fn reclaim(&self, name: &str, revision: u64) -> bool {
        self.names
            .update(key_of(name), Bytes::from(self.host.clone()), revision)
            .await
            .is_ok()
    }

    /// Queue a Run whose name this host has claimed: its entry, its copy
    /// here (`not_started`), its record to every host, its work. `false`
    /// when a Run of the name is still queued or running (a rerun that
    /// lost a race): nothing was queued.
    pub async fn enqueue(self: &Arc<Self>, mut work: Work, inputs: Vec<u8>) -> Result<bool> {
        let key = key_of(&work.run);
        let body = serde_json::to_vec(&work.body)?;
        if body.len() > BODY_INLINE_MAX {
            work.body_blob = Some(self.store.put_blob(&body).await?);
            work.body = serde_json::Value::Null;
        }
        let entry = ActiveEntry {
            host: String::new(),
            work: work.clone(),
        };
        let value = Bytes::from(serde_json::to_vec(&entry)?);
        let rev = match self.active.create(&key, value.clone()).await {
            Ok(rev) => rev,
            Err(_) => match self.active.entry(&key).await? {
                // A Run of the name is still active.
                Some(e) if e.operation == Operation::Put => return Ok(false),
                Some(e) => {
                    // Deleted: take the key back by revision.
                    match self.active.update(&key, value, e.revision).await {
                        Ok(rev) => rev,
                        Err(_) => return Ok(false),
                    }
                }
                None => anyhow::bail!("the bucket of active Runs did not take {}", work.run),
            },
        };
        work.entry_rev = rev;
        let (rt, config, ins) = (self.rt.clone(), work.queued.clone(), inputs.clone());
        rh_runtime::background::run(move || rt.mirror(&config, &[(rh_runtime::INPUTS, &ins)]))
            .await?;
        // What the caller saw is what this host has applied; the host that
        // takes the Run waits until it has applied as much.
        work.after = self.applied_seq.load(std::sync::atomic::Ordering::SeqCst);
        // The queued record goes to the other hosts meanwhile (the host
        // that takes the Run does not need it).
        let (c, queued) = (self.clone(), work.queued.clone());
        tokio::spawn(async move {
            c.publish_run(&queued, vec![(rh_runtime::INPUTS, inputs)])
                .await
        });
        self.publish_work(&work).await?;
        Ok(true)
    }

    /// Forget a name this host claimed for a Run it then could not queue.
    pub async fn release_name(&self, name: &str) {
        let _ = self.names.delete(key_of(name)).await;
    }

    /// Publish a Run's work, retried a few times under one message id (a
    /// duplicate is dropped by the stream, or by the taking host's
    /// compare-and-set).
    pub(crate) async fn publish_work(&self, work: &Work) -> Result<()> {
        let id = format!(
            "{}:{}:{}",
            work.run,
            work.queued.start_time.as_deref().unwrap_or(""),
            work.attempt
        );
        let payload = Bytes::from(serde_json::to_vec(work)?);
        let mut last = None;
        for rest in [0, 50, 200, 1000, 2000] {
            tokio::time::sleep(Duration::from_millis(rest)).await;
            let mut h = HeaderMap::new();
            h.insert("Nats-Msg-Id", id.as_str());
            match self
                .js
                .publish_with_headers(self.subject("work"), h, payload.clone())
                .await
            {
                Ok(ack) => match ack.await {
                    Ok(_) => return Ok(()),
                    Err(e) => last = Some(e.to_string()),
                },
                Err(e) => last = Some(e.to_string()),
            }
        }
        anyhow::bail!(
            "publishing the work of {}: {}",
            work.run,
            last.unwrap_or_default()
        )
    }

    /// Queue a Run again after its host died (`--retries`).
    pub(crate) async fn requeue(&self, mut work: Work, revision: u64) -> Result<bool> {
        work.attempt += 1;
        work.queued.start_time = Some(rh_runtime::now_rfc3339());
        work.queued.status = RunStatus::NotStarted;
        work.queued.attempts = Some(work.attempt);
        let entry = ActiveEntry {
            host: String::new(),
            work: work.clone(),
        };
        let key = key_of(&work.run);
        match self
            .active
            .update(&key, Bytes::from(serde_json::to_vec(&entry)?), revision)
            .await
        {
            Ok(rev) => work.entry_rev = rev,
            Err(_) => return Ok(false),
        }
        let (rt, config) = (self.rt.clone(), work.queued.clone());
        let _ = rh_runtime::background::run(move || rt.mirror(&config, &[])).await;
        work.after = self.publish_run(&work.queued, vec![]).await;
        self.publish_work(&work).await?;
        Ok(true)
    }
}

impl Cluster {
    /// Whether this host still holds Run `name`'s entry (taken at
    /// `revision`). An answer that does not come counts as held.
    pub(crate) async fn holds(&self, name: &str, revision: u64) -> bool {
        match self.active.entry(key_of(name)).await {
            Ok(Some(e)) => e.operation == Operation::Put && e.revision == revision,
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Drop Run `name`'s entry (taken at `revision`) once it has ended:
    /// retried, since an entry left behind would keep its name busy.
    pub(crate) async fn let_go(&self, name: &str, revision: u64) {
        for rest in [0, 100, 500, 2000, 5000] {
            tokio::time::sleep(Duration::from_millis(rest)).await;
            match self
                .active
                .purge_expect_revision_with_ttl(key_of(name), revision, super::GONE_TTL)
                .await
            {
                Ok(()) => return,
                // Someone else changed it (a reaper): not ours to drop.
                Err(e) if e.to_string().contains("wrong last sequence") => return,
                Err(e) => tracing::debug!("dropping the entry of {name}: {e}"),
            }
        }
    }
}
