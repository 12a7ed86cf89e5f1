//! A cluster of several hosts (`serve --nats`): daemons that share one
//! cluster's work and history through NATS JetStream and the shared store.
//!
//! What lives where, for cluster `C`:
//!
//! - stream `RH_C_WORK` (subject `rh.C.work`, work-queue retention): the
//!   calls, `exec`s and `run-python`s accepted by any host, each taken by
//!   one host with a free slot through the shared pull consumer `workers`
//!   (`work`);
//! - stream `RH_C_EVENTS` (subject `rh.C.events`): every Run's records as
//!   it is queued, starts and ends (with its small files), and the
//!   requests that change what every host must hold alike (deploys,
//!   artifacts, shares, deletes), applied by every host in the stream's
//!   order; each host reads it through its own durable consumer
//!   (`events`);
//! - key-value buckets `rh_C_names` (a Run name's claim: names are unique
//!   cluster-wide), `rh_C_active` (each queued or running Run: who runs
//!   it, its attempt, its work) and `rh_C_hosts` (each host's heartbeat,
//!   slots and load) (`liveness`);
//! - core subjects `rh.C.cancel` and `rh.C.follow.HOST`: a cancel reaches
//!   the host executing the Run; a follower on any host reads output as
//!   the executing host writes it;
//! - the shared store (`--shared-store`), under `cluster/C/`: components
//!   and request bodies too large for a message, by digest.

mod events;
mod liveness;
mod reach;
mod take;
mod work;

pub use events::Applied;
pub use liveness::HostInfo;
pub use work::{Work, WorkKind};

use crate::server::State;
use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer, kv, stream};
use rh_runtime::{RemoteStore, Runtime};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{Semaphore, oneshot};

/// How `serve --nats` joins a cluster.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    pub url: String,
    pub creds: Option<std::path::PathBuf>,
    /// Runs this host executes at once.
    pub slots: usize,
    /// This host's name in the cluster.
    pub host: String,
    /// Where the other hosts reach this host's API (default: the address
    /// it listens on).
    pub advertise: Option<String>,
}

/// This host's part in a cluster of several.
pub struct Cluster {
    pub cluster: String,
    pub host: String,
    pub url: String,
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) names: kv::Store,
    pub(crate) active: kv::Store,
    pub(crate) hosts: kv::Store,
    pub(crate) store: RemoteStore,
    pub(crate) rt: Runtime,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) slots_total: usize,
    /// Runs this host has taken from the queue and not started yet.
    pub(crate) taken: Mutex<std::collections::HashSet<String>>,
    /// Cancels asked for Runs taken here before they started.
    pub(crate) pending_cancels: Mutex<std::collections::HashSet<String>>,
    /// Set when the daemon stops: no more work is taken.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// When each host's heartbeat last changed, by this host's clock.
    pub(crate) seen: Mutex<HashMap<String, (u64, std::time::Instant)>>,
    /// The queue's depth as last asked.
    pub(crate) queue_depth: AtomicU64,
    /// Runs this host is executing for the queue now.
    pub(crate) busy: std::sync::atomic::AtomicUsize,
    /// Waiting for Runs to end, by name (woken by the events stream).
    ended: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
    /// Waiting for this host's replicated requests to be applied, by id.
    applied: Mutex<HashMap<String, oneshot::Sender<Applied>>>,
    /// Monotonic millis since this process started when NATS last
    /// connected (0: not connected now).
    pub(crate) connected_at: Arc<AtomicU64>,
    /// The last sequence of the events stream this host has applied (a
    /// message delivered again at or below it is skipped).
    pub(crate) applied_seq: AtomicU64,
    pub(crate) started: std::time::Instant,
    /// When this host joined (milliseconds since the epoch).
    pub(crate) joined_ms: u64,
    /// The state that answers requests (replicated ones are applied
    /// through it); set once the daemon's state exists.
    state: std::sync::OnceLock<Weak<State>>,
    follows: reach::Follows,
}

/// How long a host may miss heartbeats before the others count it dead.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);
/// How long the marker of a Run's entry removed from the bucket of active
/// Runs lasts (then the key is gone: the bucket holds only active Runs).
pub const GONE_TTL: Duration = Duration::from_secs(600);

/// How often each host says it is alive.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

impl Cluster {
    /// Connect, make (or find) the cluster's streams and buckets.
    pub async fn join(
        opts: &NatsOptions,
        cluster: &str,
        store: &RemoteStore,
        rt: Runtime,
    ) -> Result<Arc<Cluster>> {
        if !cluster
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!(
                "--name `{cluster}`: a cluster of several hosts is named with letters, digits, `-` and `_` only"
            );
        }
        let started = std::time::Instant::now();
        let connected_at = Arc::new(AtomicU64::new(0));
        let flag = connected_at.clone();
        let mut o = async_nats::ConnectOptions::new()
            .name(format!("rh-wasm {cluster}/{}", opts.host))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |e| {
                let flag = flag.clone();
                async move {
                    match e {
                        async_nats::Event::Connected => {
                            let ms = started.elapsed().as_millis() as u64;
                            flag.store(ms.max(1), Ordering::SeqCst);
                            tracing::info!("NATS connected");
                        }
                        async_nats::Event::Disconnected => {
                            flag.store(0, Ordering::SeqCst);
                            tracing::warn!("NATS disconnected; reconnecting");
                        }
                        other => tracing::debug!("NATS: {other}"),
                    }
                }
            });
        if let Some(creds) = &opts.creds {
            o = o
                .credentials_file(creds)
                .await
                .with_context(|| format!("reading --nats-creds {}", creds.display()))?;
        }
        let client = tokio::time::timeout(Duration::from_secs(30), o.connect(opts.url.as_str()))
            .await
            .map_err(|_| anyhow::anyhow!("no NATS server answered at {} in 30s", opts.url))?
            .with_context(|| format!("connecting to NATS at {}", opts.url))?;
        if connected_at.load(Ordering::SeqCst) == 0 {
            connected_at.store(
                started.elapsed().as_millis().max(1) as u64,
                Ordering::SeqCst,
            );
        }
        let js = jetstream::new(client.clone());
        js.get_or_create_stream(stream::Config {
            name: format!("RH_{cluster}_WORK"),
            subjects: vec![format!("rh.{cluster}.work")],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .context("making the work stream (is JetStream on? nats-server -js)")?;
        js.get_or_create_stream(stream::Config {
            name: format!("RH_{cluster}_EVENTS"),
            subjects: vec![format!("rh.{cluster}.events")],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(30 * 24 * 3600),
            ..Default::default()
        })
        .await
        .context("making the events stream")?;
        let bucket = |name: &str, max_age: Duration| kv::Config {
            bucket: format!("rh_{cluster}_{name}"),
            history: 1,
            max_age,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        let names = kv_bucket(&js, bucket("names", Duration::ZERO)).await?;
        let active = kv_bucket(
            &js,
            kv::Config {
                limit_markers: Some(GONE_TTL),
                ..bucket("active", Duration::ZERO)
            },
        )
        .await?;
        let hosts = kv_bucket(&js, bucket("hosts", Duration::from_secs(600))).await?;
        let permits = opts.slots.max(1);
        let c = Arc::new(Cluster {
            cluster: cluster.to_string(),
            host: opts.host.clone(),
            url: opts.advertise.clone().unwrap_or_default(),
            client,
            js,
            names,
            active,
            hosts,
            store: store.sub(&format!("cluster/{cluster}")),
            rt,
            slots: Arc::new(Semaphore::new(permits)),
            slots_total: permits,
            busy: std::sync::atomic::AtomicUsize::new(0),
            queue_depth: AtomicU64::new(0),
            taken: Mutex::new(Default::default()),
            pending_cancels: Mutex::new(Default::default()),
            stopping: std::sync::atomic::AtomicBool::new(false),
            seen: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashMap::new()),
            applied: Mutex::new(HashMap::new()),
            connected_at: connected_at.clone(),
            applied_seq: AtomicU64::new(0),
            started,
            joined_ms: now_ms(),
            state: std::sync::OnceLock::new(),
            follows: reach::Follows::default(),
        });
        Ok(c)
    }

    /// Start this host's work: heartbeats, the events it applies, the
    /// queue it takes work from, cancels and followers it answers.
    pub async fn start(self: &Arc<Self>, state: &Arc<State>) -> Result<()> {
        let _ = self.state.set(Arc::downgrade(state));
        let workers = self
            .js
            .get_stream(format!("RH_{}_WORK", self.cluster))
            .await?
            .get_or_create_consumer(
                "workers",
                consumer::pull::Config {
                    durable_name: Some("workers".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 100_000,
                    ..Default::default()
                },
            )
            .await
            .context("making the work consumer")?;
        let durable = format!("host_{}", self.host);
        let events = self
            .js
            .get_stream(format!("RH_{}_EVENTS", self.cluster))
            .await?
            .get_or_create_consumer(
                &durable,
                consumer::pull::Config {
                    durable_name: Some(durable.clone()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    // Applied one by one, in order: a deploy that compiles
                    // must not see the events after it delivered again.
                    ack_wait: Duration::from_secs(600),
                    max_ack_pending: 256,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .context("making this host's events consumer")?;
        liveness::heartbeat_once(self).await;
        tokio::spawn(liveness::heartbeats(self.clone()));
        tokio::spawn(liveness::reaper(self.clone()));
        tokio::spawn(events::apply_events(self.clone(), events));
        tokio::spawn(reach::answer_cancels(self.clone()).await?);
        tokio::spawn(reach::answer_follows(self.clone()).await?);
        tokio::spawn(liveness::answer_pings(self.clone()).await?);
        tokio::spawn(take::take_work(self.clone(), workers));
        tracing::info!(
            cluster = %self.cluster,
            host = %self.host,
            slots = self.slots_total,
            "joined the cluster"
        );
        Ok(())
    }

    pub(crate) fn state(&self) -> Option<Arc<State>> {
        self.state.get().and_then(Weak::upgrade)
    }

    pub(crate) fn subject(&self, rest: &str) -> String {
        format!("rh.{}.{rest}", self.cluster)
    }

    /// Wait until the Run `name` has ended as this host sees it (its copy
    /// is terminal), at most `max`. Woken by the events stream; also looks
    /// at the copy now and then, so a missed wake costs a little time only.
    pub async fn wait_ended(&self, name: &str, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let (tx, rx) = oneshot::channel();
            {
                let mut ended = self.ended.lock().expect("waiters poisoned");
                let list = ended.entry(name.to_string()).or_default();
                // Waits that gave up leave closed senders behind.
                list.retain(|t| !t.is_closed());
                list.push(tx);
            }
            if self.is_terminal_here(name) {
                return true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(250)), rx).await;
        }
    }

    fn is_terminal_here(&self, name: &str) -> bool {
        self.rt
            .run(&rh_runtime::Caller::host(), name)
            .is_ok_and(|r| r.status().is_terminal())
    }

    pub(crate) fn wake(&self, name: &str) {
        if let Some(list) = self.ended.lock().expect("waiters poisoned").remove(name) {
            for tx in list {
                let _ = tx.send(());
            }
        }
    }

    pub(crate) fn expect_applied(&self, id: &str) -> oneshot::Receiver<Applied> {
        let (tx, rx) = oneshot::channel();
        self.applied
            .lock()
            .expect("waiters poisoned")
            .insert(id.to_string(), tx);
        rx
    }

    pub(crate) fn deliver_applied(&self, id: &str, a: Applied) {
        if let Some(tx) = self.applied.lock().expect("waiters poisoned").remove(id) {
            let _ = tx.send(a);
        }
    }

    /// Whether the NATS connection has been up for at least `d`.
    pub(crate) fn connected_for(&self, d: Duration) -> bool {
        let at = self.connected_at.load(Ordering::SeqCst);
        at != 0 && self.started.elapsed().as_millis() as u64 >= at + d.as_millis() as u64
    }
}

async fn kv_bucket(js: &jetstream::Context, config: kv::Config) -> Result<kv::Store> {
    match js.get_key_value(config.bucket.clone()).await {
        Ok(s) => Ok(s),
        Err(_) => {
            let name = config.bucket.clone();
            match js.create_key_value(config).await {
                Ok(s) => Ok(s),
                // Another host made it meanwhile.
                Err(_) => js
                    .get_key_value(name.clone())
                    .await
                    .with_context(|| format!("making the key-value bucket {name}")),
            }
        }
    }
}

/// A Run name as a key of a bucket or a subject token: as it is when it
/// is one already, else `=` and its hex (run names never hold `=`).
pub fn key_of(name: &str) -> String {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if plain && !name.contains('.') {
        name.to_string()
    } else {
        format!("={}", hex::encode(name))
    }
}

/// This host's name: `--host-name`, else the one kept in the root from an
/// earlier start (a host that comes back rejoins as itself), else a new
/// one from the machine's name.
pub fn host_name(root: &std::path::Path, given: Option<&str>) -> Result<String> {
    let valid = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let file = root.join("cluster-host");
    if let Some(n) = given {
        if !valid(n) {
            bail!("--host-name `{n}`: letters, digits, `-` and `_`, at most 64");
        }
        std::fs::create_dir_all(root)?;
        std::fs::write(&file, n)?;
        return Ok(n.to_string());
    }
    if let Ok(n) = std::fs::read_to_string(&file)
        && valid(n.trim())
    {
        return Ok(n.trim().to_string());
    }
    let machine: String = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    let n = format!("{machine}-{}", &random_id()[..6]);
    std::fs::create_dir_all(root)?;
    std::fs::write(&file, &n)?;
    Ok(n)
}

/// Fill `buf` from the system's random source; whether it could.
pub(crate) fn getrandom(buf: &mut [u8]) -> bool {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .is_ok()
}

/// A random id (hex), or `None` when there is no randomness to be had.
pub(crate) fn random_id_checked(bytes: usize) -> Option<String> {
    let mut b = vec![0u8; bytes];
    getrandom(&mut b).then(|| hex::encode(b))
}

/// A random id (hex) for messages and sessions of NATS requests, where a
/// repeat costs a retry at worst; with no randomness, the clock's.
pub(crate) fn random_id() -> String {
    random_id_checked(12).unwrap_or_else(|| {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{n:024x}")
    })
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
