//! The cluster's queue: a Run accepted by any host (named, checked, its
//! name claimed cluster-wide, `not_started` on every host) waits in the
//! work stream until a host with a free slot takes it.
//!
//! Taking is a compare-and-set on the Run's entry in the bucket of active
//! Runs (from no host to this one), made before the message is acked: a
//! message delivered twice (an ack that came late, a redelivery) finds the
//! entry taken and is dropped, so each Run executes once.

use super::{Cluster, key_of};
use crate::server::State;
use crate::wire::{CallBody, ExecBody, PythonBody};
use anyhow::Result;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::kv::Operation;
use bytes::Bytes;
use futures_util::StreamExt;
use rh_runtime::{Caller, Run, RunConfig, RunError, RunStatus};
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
const BODY_MAX: u64 = 1 << 30;

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

/// Take work for as long as the daemon runs: as many messages as this host
/// has free slots, never more.
pub(super) async fn take_work(c: Arc<Cluster>, consumer: PullConsumer) {
    loop {
        if c.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let Ok(first) = c.slots.clone().acquire_owned().await else {
            return;
        };
        let mut permits = vec![first];
        while let Ok(p) = c.slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        let batch = consumer
            .batch()
            .max_messages(permits.len())
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("taking work: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        while let Some(m) = batch.next().await {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!("taking work: {e}");
                    break;
                }
            };
            let stopping = c.stopping.load(std::sync::atomic::Ordering::SeqCst);
            let Some(permit) = permits.pop().filter(|_| !stopping) else {
                // More came than asked for: leave it for later.
                let _ = m.ack_with(async_nats::jetstream::AckKind::Nak(None)).await;
                continue;
            };
            let c = c.clone();
            tokio::spawn(async move {
                take(&c, m).await;
                drop(permit);
            });
        }
    }
}

async fn take(c: &Arc<Cluster>, m: async_nats::jetstream::Message) {
    let Ok(work) = serde_json::from_slice::<Work>(&m.payload) else {
        tracing::warn!("a work message that does not parse dropped");
        let _ = m.ack_with(async_nats::jetstream::AckKind::Term).await;
        return;
    };
    let key = key_of(&work.run);
    // Taken as queued, in one step: the entry is as the message says.
    if work.entry_rev != 0 {
        let mut queued = work.clone();
        queued.entry_rev = 0;
        let mine = ActiveEntry {
            host: c.host.clone(),
            work: queued,
        };
        if let Ok(v) = serde_json::to_vec(&mine)
            && let Ok(revision) = c.active.update(&key, Bytes::from(v), work.entry_rev).await
        {
            let _ = m.ack().await;
            let mut mine = mine.work;
            mine.after = work.after;
            return run_taken(c, mine, revision).await;
        }
    }
    let entry = match c.active.entry(&key).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("looking up Run {}: {e}", work.run);
            let _ = m
                .ack_with(async_nats::jetstream::AckKind::Nak(Some(
                    Duration::from_millis(200),
                )))
                .await;
            return;
        }
    };
    let taken = match entry {
        Some(e) if e.operation == Operation::Put => {
            match serde_json::from_slice::<ActiveEntry>(&e.value) {
                // The same Run (start and attempt), still waiting.
                Ok(a)
                    if a.host.is_empty()
                        && a.work.attempt == work.attempt
                        && a.work.queued.start_time == work.queued.start_time =>
                {
                    let mine = ActiveEntry {
                        host: c.host.clone(),
                        work: a.work,
                    };
                    match serde_json::to_vec(&mine) {
                        Ok(v) => c
                            .active
                            .update(&key, Bytes::from(v), e.revision)
                            .await
                            .ok()
                            .map(|rev| (rev, mine.work)),
                        Err(_) => None,
                    }
                }
                _ => None,
            }
        }
        // Cancelled while queued, or ended: nothing to do.
        _ => None,
    };
    let _ = m.ack().await;
    let Some((revision, mut mine)) = taken else {
        return;
    };
    // What the entry says is run; the message only says when.
    mine.after = mine.after.max(work.after);
    run_taken(c, mine, revision).await;
}

/// Execute a Run this host has just taken (its entry at `revision`),
/// counted as taken until it starts and as busy until it has ended.
async fn run_taken(c: &Arc<Cluster>, work: Work, revision: u64) {
    c.taken
        .lock()
        .expect("taken poisoned")
        .insert(work.run.clone());
    c.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    execute(c, work, revision).await;
    c.busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
}

/// Execute a Run taken from the queue and tell every host how it went.
async fn execute(c: &Arc<Cluster>, work: Work, revision: u64) {
    let name = work.run.clone();
    let run = match start(c, &work).await {
        Ok(run) => run,
        Err(e) => {
            c.taken.lock().expect("taken poisoned").remove(&name);
            if c.holds(&name, revision).await {
                fail(c, &work, e.kind(), &e.to_string()).await;
            }
            c.let_go(&name, revision).await;
            return;
        }
    };
    let mut config = run.config().clone();
    if work.attempt > 1 {
        config.attempts = Some(work.attempt);
        let (rt, cfg) = (c.rt.clone(), config.clone());
        let _ = rh_runtime::background::run(move || rt.mirror(&cfg, &[])).await;
    }
    // Reaped while it ran (this host taken for dead), the record the
    // reaper published stands on every host: it came first, and of two
    // ends of one Run the first stands (see the runtime's copies).
    // The artifact versions it saved, for the other hosts to fetch.
    for a in &config.downstream_artifacts {
        let (rt, a2) = (c.rt.clone(), a.clone());
        match rh_runtime::background::run(move || rt.artifact_bytes(&a2.name, &a2.digest)).await {
            Ok(bytes) => {
                if let Err(e) = c.store.put_blob(&bytes).await {
                    tracing::warn!("storing artifact {} of {name}: {e}", a.name);
                }
            }
            Err(e) => tracing::warn!("reading artifact {} of {name}: {e}", a.name),
        }
    }
    let files = {
        let dir = run.path().to_path_buf();
        rh_runtime::background::run(move || {
            let mut files = Vec::new();
            for f in [
                rh_runtime::INPUTS,
                rh_runtime::RESULT,
                rh_runtime::STDOUT,
                rh_runtime::STDERR,
            ] {
                if let Ok(b) = std::fs::read(dir.join(f)) {
                    files.push((f, b));
                }
            }
            Ok(files)
        })
        .await
        .unwrap_or_default()
    };
    tokio::join!(c.publish_run(&config, files), c.let_go(&name, revision));
    c.wake(&name);
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

/// Start the Run here and wait for its end; its `running` record goes to
/// every host as soon as it runs.
async fn start(c: &Arc<Cluster>, work: &Work) -> rh_runtime::Result<Run> {
    let state = c
        .state()
        .ok_or_else(|| rh_runtime::Error::Invalid("the host is stopping".into()))?;
    let who = match &work.user {
        Some(name) => Caller::of(Some(state.user_named(name).ok_or_else(|| {
            rh_runtime::Error::Forbidden {
                message: format!("user `{name}` is not known on host {}", c.host),
            }
        })?)),
        // A host with users runs nothing for no one.
        None if matches!(state.auth, crate::server::Auth::Users(..)) => {
            return Err(rh_runtime::Error::Forbidden {
                message: format!("host {} has users, and this Run names none", c.host),
            });
        }
        None => Caller::of(None),
    };
    let mut work = work.clone();
    if let Some(d) = work.body_blob.take() {
        let bytes = c.store.get_blob(&d, BODY_MAX).await?;
        work.body = serde_json::from_slice(&bytes)
            .map_err(|e| rh_runtime::Error::Invalid(format!("queued work: {e}")))?;
    }
    let work = &work;
    // What the caller saw is here before the Run starts.
    if !c.wait_applied(work.after, Duration::from_secs(30)).await {
        tracing::warn!(run = %work.run, "starting before this host has caught up with the cluster");
    }
    let rt = c.rt.clone();
    // The copy of the queued Run goes, then the Run takes its name; a copy
    // put back in between (its event applied late) is removed again.
    let mut tries = 0;
    let handle = loop {
        let (n, r2) = (work.run.clone(), rt.clone());
        rh_runtime::background::run(move || r2.drop_queued(&n)).await?;
        match start_kind(&rt, work, &who).await {
            Err(rh_runtime::Error::RunExists {
                status: RunStatus::NotStarted,
                ..
            }) if tries < 20 => tries += 1,
            Err(e) => return Err(e),
            Ok(Started::Done(run)) => {
                c.taken.lock().expect("taken poisoned").remove(&work.run);
                return Ok(*run);
            }
            Ok(Started::Running(h)) => break h,
        }
    };
    c.taken.lock().expect("taken poisoned").remove(&work.run);
    // A cancel that came between taking it and starting it.
    if c.pending_cancels
        .lock()
        .expect("cancels poisoned")
        .remove(&work.run)
    {
        return handle.cancel().await;
    }
    if let Ok(run) = handle.run()
        && !run.status().is_terminal()
    {
        let mut config = run.config().clone();
        if work.attempt > 1 {
            config.attempts = Some(work.attempt);
        }
        // Told to every host while it runs; its end waits for nothing.
        let c = c.clone();
        tokio::spawn(async move { c.publish_run(&config, vec![]).await });
    }
    handle.wait().await
}

enum Started {
    Running(rh_runtime::RunHandle),
    /// Answered at its end (a call through the result cache).
    Done(Box<Run>),
}

async fn start_kind(
    rt: &rh_runtime::Runtime,
    work: &Work,
    who: &Caller,
) -> rh_runtime::Result<Started> {
    let bad = |e: serde_json::Error| rh_runtime::Error::Invalid(format!("queued work: {e}"));
    Ok(match work.kind {
        WorkKind::Call => {
            let mut b: CallBody = serde_json::from_value(work.body.clone()).map_err(bad)?;
            b.run_name = Some(work.run.clone());
            b.rerun = true;
            let who = b.caller(who);
            if b.cache.unwrap_or(rt.caches_by_default()) {
                // Through the result cache: answered at the end.
                return match rt.call(&who, b.to_request()).await {
                    Ok(run) => Ok(Started::Done(Box::new(run))),
                    Err(e @ rh_runtime::Error::RunExists { .. }) => Err(e),
                    Err(e) => match e.run() {
                        Some(n) => Ok(Started::Done(Box::new(rt.run(&Caller::host(), n)?))),
                        None => Err(e),
                    },
                };
            }
            Started::Running(rt.start(&who, b.to_request()).await?)
        }
        WorkKind::Exec => {
            let mut b: ExecBody = serde_json::from_value(work.body.clone()).map_err(bad)?;
            b.run_name = Some(work.run.clone());
            b.rerun = true;
            let who = b.caller(who);
            Started::Running(rt.start_exec(&who, b.to_request()).await?)
        }
        WorkKind::Python => {
            let mut b: PythonBody = serde_json::from_value(work.body.clone()).map_err(bad)?;
            b.run_name = Some(work.run.clone());
            b.rerun = true;
            let who = b.caller(who);
            Started::Running(
                rt.start_python(&who, b.statements.clone(), b.keep_going, b.to_request())
                    .await?,
            )
        }
    })
}

/// End a queued Run that could not start: `error`, on every host.
pub(crate) async fn fail(c: &Cluster, work: &Work, kind: &str, message: &str) {
    let mut config = work.queued.clone();
    end_as_error(&mut config, kind, message, &c.host);
    let (rt, cfg) = (c.rt.clone(), config.clone());
    let _ = rh_runtime::background::run(move || rt.mirror(&cfg, &[])).await;
    c.publish_run(&config, vec![]).await;
    c.wake(&work.run);
}

/// Mark a record ended in `error` now.
pub(crate) fn end_as_error(config: &mut RunConfig, kind: &str, message: &str, host: &str) {
    config.status = RunStatus::Error;
    config.end_time = Some(rh_runtime::now_rfc3339());
    config.error = Some(RunError {
        kind: kind.to_string(),
        message: message.to_string(),
    });
    if config.host.is_none() {
        config.host = Some(host.to_string());
    }
}

impl State {
    /// The user of this name in the users file, if the daemon has users.
    pub fn user_named(&self, name: &str) -> Option<rh_runtime::User> {
        match &self.auth {
            crate::server::Auth::Users(_, users) => users
                .read()
                .expect("users lock poisoned")
                .by_name(name)
                .cloned(),
            _ => None,
        }
    }
}
