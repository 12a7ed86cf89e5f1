//! Taking work from the cluster's queue and executing it: a host asks for
//! as many messages as it has free slots. Taking is a compare-and-set on
//! the Run's entry in the bucket of active Runs (from no host to this
//! one), made before the message is acked: a message delivered twice (an
//! ack that came late, a redelivery) finds the entry taken and is
//! dropped, so each Run executes once.

use super::work::{ActiveEntry, BODY_MAX, Work, WorkKind};
use super::{Cluster, key_of};
use crate::server::State;
use crate::wire::{CallBody, ExecBody, PythonBody};
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::kv::Operation;
use bytes::Bytes;
use futures_util::StreamExt;
use rh_runtime::{Caller, Run, RunConfig, RunError, RunStatus};
use std::sync::Arc;
use std::time::Duration;

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
