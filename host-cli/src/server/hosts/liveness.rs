//! Hosts alive and dead: each host puts its heartbeat (slots, load, the
//! queue's depth) in the hosts bucket every [`HEARTBEAT`]; a host whose
//! heartbeat is older than [`DEAD_AFTER`] is dead. Every host reaps the
//! active Runs of dead hosts (and its own, left from before it restarted):
//! each ends `error` / `interrupted`, or goes back in the queue when its
//! call asked for retries. Reaping is a compare-and-set on the Run's entry,
//! so however many hosts reap at once, each Run ends (or is queued again)
//! once. A host reaps only after its own connection has been up for a
//! while: one that has just come back cannot yet tell who is alive.

use super::work::{ActiveEntry, end_as_error};
use super::{Cluster, DEAD_AFTER, HEARTBEAT, now_ms};
use async_nats::jetstream::kv::Operation;
use bytes::Bytes;
use futures_util::StreamExt;
use rh_runtime::Caller;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A host as its heartbeat describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInfo {
    pub name: String,
    /// Where its API answers.
    pub url: String,
    pub slots: usize,
    pub slots_in_use: usize,
    /// Runs waiting in the cluster's queue (as this host last saw it).
    pub queue_depth: u64,
    /// When it last said it is alive (milliseconds since the epoch).
    pub heartbeat_ms: u64,
    /// When it joined (milliseconds since the epoch).
    pub joined_ms: u64,
}

pub(super) async fn heartbeat_once(c: &Arc<Cluster>) {
    let queue_depth = match c
        .js
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            "workers",
            format!("RH_{}_WORK", c.cluster),
        )
        .await
    {
        Ok(mut consumer) => consumer
            .info()
            .await
            .map(|i| i.num_pending)
            .unwrap_or_default(),
        Err(_) => 0,
    };
    let info = HostInfo {
        name: c.host.clone(),
        url: c.url.clone(),
        slots: c.slots_total,
        slots_in_use: c.busy.load(std::sync::atomic::Ordering::SeqCst),
        queue_depth,
        heartbeat_ms: now_ms(),
        joined_ms: c.joined_ms,
    };
    if let Ok(v) = serde_json::to_vec(&info)
        && let Err(e) = c.hosts.put(&c.host, Bytes::from(v)).await
    {
        tracing::debug!("heartbeat: {e}");
    }
}

pub(super) async fn heartbeats(c: Arc<Cluster>) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        heartbeat_once(&c).await;
    }
}

impl Cluster {
    /// The hosts whose heartbeat is recent, by name.
    pub async fn live_hosts(&self) -> anyhow::Result<Vec<HostInfo>> {
        let mut keys = self.hosts.keys().await?;
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            names.push(k?);
        }
        let now = now_ms();
        let mut live = Vec::new();
        for n in names {
            if let Ok(Some(v)) = self.hosts.get(&n).await
                && let Ok(info) = serde_json::from_slice::<HostInfo>(&v)
                && now.saturating_sub(info.heartbeat_ms) <= DEAD_AFTER.as_millis() as u64
            {
                live.push(info);
            }
        }
        live.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(live)
    }

    /// Leave the cluster: the other hosts stop listing this one at once.
    pub async fn leave(&self) {
        let _ = self.hosts.delete(&self.host).await;
    }
}

pub(super) async fn reaper(c: Arc<Cluster>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !c.connected_for(DEAD_AFTER + HEARTBEAT * 2) {
            continue;
        }
        if let Err(e) = reap_once(&c).await {
            tracing::debug!("reaping: {e}");
        }
    }
}

async fn reap_once(c: &Arc<Cluster>) -> anyhow::Result<()> {
    let live: HashMap<String, HostInfo> = c
        .live_hosts()
        .await?
        .into_iter()
        .map(|h| (h.name.clone(), h))
        .collect();
    let mut keys = c.active.keys().await?;
    let mut all = Vec::new();
    while let Some(k) = keys.next().await {
        all.push(k?);
    }
    for key in all {
        let Some(e) = c.active.entry(&key).await? else {
            continue;
        };
        if e.operation != Operation::Put {
            continue;
        }
        let Ok(a) = serde_json::from_slice::<ActiveEntry>(&e.value) else {
            continue;
        };
        if a.host.is_empty() {
            continue;
        }
        let dead = if a.host == c.host {
            // Ours from before this process started, and not running here.
            let at = e.created.unix_timestamp_nanos() / 1_000_000;
            at < c.joined_ms as i128 && !c.rt.is_executing(&a.work.run)
        } else {
            !live.contains_key(&a.host)
        };
        if dead {
            reap(c, a, e.revision).await;
        }
    }
    Ok(())
}

async fn reap(c: &Arc<Cluster>, a: ActiveEntry, revision: u64) {
    let name = a.work.run.clone();
    let host = a.host.clone();
    if a.work.attempt <= a.work.retries {
        match c.requeue(a.work, revision).await {
            Ok(true) => tracing::warn!(run = %name, %host, "host died: Run queued again"),
            Ok(false) => {}
            Err(e) => tracing::warn!(run = %name, "queueing again: {e}"),
        }
        return;
    }
    if c.active
        .delete_expect_revision(super::key_of(&name), Some(revision))
        .await
        .is_err()
    {
        return; // another host reaped it, or it ended
    }
    // The record as last heard of, else as it was queued.
    let mut config =
        c.rt.run(&Caller::host(), &name)
            .map(|r| r.config().clone())
            .unwrap_or_else(|_| a.work.queued.clone());
    if config.status.is_terminal() {
        // Ended here (this host came back and found it unfinished): the
        // others learn how.
        c.publish_run(&config, vec![]).await;
        c.wake(&name);
        return;
    }
    end_as_error(
        &mut config,
        "interrupted",
        &format!("host {host} stopped while it ran this Run"),
        &host,
    );
    if a.work.attempt > 1 {
        config.attempts = Some(a.work.attempt);
    }
    let (rt, cfg) = (c.rt.clone(), config.clone());
    let _ = rh_runtime::background::run(move || rt.mirror(&cfg, &[])).await;
    c.publish_run(&config, vec![]).await;
    c.wake(&name);
    tracing::warn!(run = %name, %host, "host died: Run ended interrupted");
}
