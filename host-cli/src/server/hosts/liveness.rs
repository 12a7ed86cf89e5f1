//! Hosts alive and dead: each host puts its heartbeat (slots, load, the
//! queue's depth) in the hosts bucket every [`HEARTBEAT`]; a host whose
//! heartbeat has not changed for [`DEAD_AFTER`] (by the watching host's
//! clock: hosts' clocks need not agree) and that does not answer a ping
//! either is dead. Every host reaps the
//! active Runs of dead hosts (and its own, left from before it restarted):
//! each ends `error` / `interrupted`, or goes back in the queue when its
//! call asked for retries. Reaping is a compare-and-set on the Run's entry,
//! so however many hosts reap at once, each Run ends (or is queued again)
//! once. A host reaps only after its own connection has been up for a
//! while: one that has just come back cannot yet tell who is alive.

use super::take::end_as_error;
use super::work::ActiveEntry;
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
    // The heartbeat first: nothing slow may delay it.
    let info = HostInfo {
        name: c.host.clone(),
        url: c.url.clone(),
        slots: c.slots_total,
        slots_in_use: c.busy.load(std::sync::atomic::Ordering::SeqCst),
        queue_depth: c.queue_depth.load(std::sync::atomic::Ordering::SeqCst),
        heartbeat_ms: now_ms(),
        joined_ms: c.joined_ms,
    };
    if let Ok(v) = serde_json::to_vec(&info)
        && let Err(e) = c.hosts.put(&c.host, Bytes::from(v)).await
    {
        tracing::debug!("heartbeat: {e}");
    }
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
        Err(_) => return,
    };
    c.queue_depth
        .store(queue_depth, std::sync::atomic::Ordering::SeqCst);
}

pub(super) async fn heartbeats(c: Arc<Cluster>) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        // Each beat on its own: one slow answer does not delay the next.
        let c = c.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(HEARTBEAT * 4, heartbeat_once(&c)).await;
        });
    }
}

/// Answer other hosts asking whether this one is alive (a second opinion
/// before they reap its Runs: core NATS answers even when JetStream is
/// slow).
pub(super) async fn answer_pings(
    c: Arc<Cluster>,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut sub = c
        .client
        .subscribe(c.subject(&format!("ping.{}", c.host)))
        .await?;
    Ok(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply {
                let _ = c.client.publish(reply, Bytes::from_static(b"alive")).await;
            }
        }
    })
}

impl Cluster {
    /// Whether host `host` answers a ping within a second.
    async fn answers(&self, host: &str) -> bool {
        let ask = self
            .client
            .request(self.subject(&format!("ping.{host}")), Bytes::new());
        matches!(
            tokio::time::timeout(Duration::from_secs(1), ask).await,
            Ok(Ok(_))
        )
    }
}

impl Cluster {
    /// The hosts whose heartbeat has changed within [`DEAD_AFTER`], by
    /// this host's clock (the hosts' clocks need not agree). Any lookup
    /// that fails fails the whole answer: a host is never taken for dead
    /// because a question about it went unanswered.
    pub async fn live_hosts(&self) -> anyhow::Result<Vec<HostInfo>> {
        let mut keys = self.hosts.keys().await?;
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            names.push(k?);
        }
        let mut infos = Vec::new();
        for n in names {
            if let Some(v) = self.hosts.get(&n).await?
                && let Ok(info) = serde_json::from_slice::<HostInfo>(&v)
            {
                infos.push(info);
            }
        }
        let now = std::time::Instant::now();
        let mut seen = self.seen.lock().expect("seen poisoned");
        let mut live = Vec::new();
        for info in infos {
            let e = seen
                .entry(info.name.clone())
                .or_insert((info.heartbeat_ms, now));
            if e.0 != info.heartbeat_ms {
                *e = (info.heartbeat_ms, now);
            }
            if now.duration_since(e.1) <= DEAD_AFTER {
                live.push(info);
            }
        }
        live.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(live)
    }

    /// Wait (at most `max`) until the Runs this host took from the queue
    /// have ended and their ends are published.
    pub async fn drain(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        while self.busy.load(std::sync::atomic::Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Take no more work (the daemon is stopping); heartbeats go on until
    /// [`Cluster::leave`], so the Runs still running are not reaped.
    pub fn stop_taking(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Leave the cluster: the other hosts stop listing this one at once.
    pub async fn leave(&self) {
        let _ = self.hosts.delete(&self.host).await;
    }
}

pub(super) async fn reaper(c: Arc<Cluster>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Hosts reconnect at different times after NATS comes back (the
        // client backs off up to 4 s): wait that out before judging.
        if !c.connected_for(DEAD_AFTER + HEARTBEAT * 2 + Duration::from_secs(5)) {
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
    let mut answered: HashMap<String, bool> = HashMap::new();
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
            // Waiting: if long, its work message may have been lost (the
            // host that queued it died before publishing it): again, with
            // the entry touched so it is not sent again for a while. A
            // duplicate is dropped by the taking host's compare-and-set.
            let age = now_ms() as i128 - e.created.unix_timestamp_nanos() / 1_000_000;
            if age > 60_000
                && c.active
                    .update(&key, e.value.clone(), e.revision)
                    .await
                    .is_ok()
            {
                let _ = c.publish_work(&a.work).await;
            }
            continue;
        }
        let dead = if a.host == c.host {
            // Ours from before this process started, and not running here.
            let at = e.created.unix_timestamp_nanos() / 1_000_000;
            at < c.joined_ms as i128 && !c.rt.is_executing(&a.work.run)
        } else if live.contains_key(&a.host) {
            false
        } else {
            // Silent for a while: dead unless it answers now.
            let answers = match answered.get(&a.host) {
                Some(v) => *v,
                None => {
                    let v = c.answers(&a.host).await;
                    answered.insert(a.host.clone(), v);
                    v
                }
            };
            !answers
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
    let ended = c.rt.run(&Caller::host(), &name).is_ok_and(|r| {
        r.status().is_terminal() && r.config().start_time >= a.work.queued.start_time
    });
    if a.work.attempt <= a.work.retries && !ended {
        match c.requeue(a.work, revision).await {
            Ok(true) => tracing::warn!(run = %name, %host, "host died: Run queued again"),
            Ok(false) => {}
            Err(e) => tracing::warn!(run = %name, "queueing again: {e}"),
        }
        return;
    }
    if c.active
        .purge_expect_revision_with_ttl(super::key_of(&name), revision, super::GONE_TTL)
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
