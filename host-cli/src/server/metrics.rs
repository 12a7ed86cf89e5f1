//! `GET /metrics`: the daemon's figures in the OpenMetrics text format,
//! which Prometheus reads (`prometheus-client`). Runs are counted as the
//! runtime sees them start and end ([`rh_runtime::RunWatcher`]: on the
//! call's path, a few label lookups, counters and one histogram
//! observation; the bench shows what it costs); gauges are read when
//! scraped. Labels are bounded: a function's deployed
//! name and function (or `exec` / `python` for command Runs), a status, a
//! route template; never a Run's name.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use rh_runtime::{RunConfig, RunEvent, RunType};
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabel {
    function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndLabels {
    function: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn run_buckets() -> Histogram {
    // 100 µs to about 55 min.
    Histogram::new(exponential_buckets(0.0001, 2.0, 25))
}

fn http_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

/// Every figure the daemon exports.
pub struct Metrics {
    registry: Registry,
    started: Family<FunctionLabel, Counter>,
    ended: Family<EndLabels, Counter>,
    duration: Histograms<FunctionLabel>,
    fuel: Family<FunctionLabel, Counter>,
    output: Counter,
    hits: Family<CacheLabels, Counter>,
    misses: Counter,
    gc_removed: Counter,
    http: Family<HttpLabels, Counter>,
    http_duration: Histograms<RouteLabel>,
    running: Gauge,
    queued: Gauge,
    slots_in_use: Gauge,
    slots: Gauge,
}

/// A Run's function label: `NAME/FN` of a function Run, `exec` or
/// `python` for command Runs (each command would be unbounded).
fn function_of(c: &RunConfig) -> String {
    match (&c.run_type, &c.function, &c.fn_name) {
        (RunType::Function, Some(f), Some(n)) => format!("{}/{n}", f.name),
        (RunType::Command, Some(f), _) if f.name == rh_runtime::python::NAME => "python".into(),
        (RunType::Command, _, _) if c.cmds.iter().all(|x| x.cmd == "python") => "python".into(),
        (RunType::Command, _, _) => "exec".into(),
        _ => "other".into(),
    }
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut r = Registry::default();
        let started = Family::<FunctionLabel, Counter>::default();
        r.register(
            "rh_runs_started",
            "Runs started on this host, by function",
            started.clone(),
        );
        let ended = Family::<EndLabels, Counter>::default();
        r.register(
            "rh_runs",
            "Runs ended on this host, by function and status",
            ended.clone(),
        );
        let duration: Histograms<FunctionLabel> = Family::new_with_constructor(run_buckets);
        r.register_with_unit(
            "rh_run_duration",
            "How long Runs took, start to end, by function",
            Unit::Seconds,
            duration.clone(),
        );
        let fuel = Family::<FunctionLabel, Counter>::default();
        r.register(
            "rh_fuel_consumed",
            "Fuel consumed by guests, by function",
            fuel.clone(),
        );
        let output = Counter::default();
        r.register_with_unit(
            "rh_output",
            "Bytes guests wrote to stdout and stderr",
            Unit::Bytes,
            output.clone(),
        );
        let hits = Family::<CacheLabels, Counter>::default();
        r.register(
            "rh_cache_hits",
            "Calls answered from the result cache, by where the answer was (local, shared)",
            hits.clone(),
        );
        let misses = Counter::default();
        r.register(
            "rh_cache_misses",
            "Calls that could use the result cache and executed",
            misses.clone(),
        );
        let gc_removed = Counter::default();
        r.register(
            "rh_gc_removed_runs",
            "Runs removed by gc and retention",
            gc_removed.clone(),
        );
        let http = Family::<HttpLabels, Counter>::default();
        r.register(
            "rh_http_requests",
            "HTTP requests answered, by method, route and status",
            http.clone(),
        );
        let http_duration: Histograms<RouteLabel> = Family::new_with_constructor(http_buckets);
        r.register_with_unit(
            "rh_http_request_duration",
            "How long requests took to answer (a stream: until its head), by route",
            Unit::Seconds,
            http_duration.clone(),
        );
        let running = Gauge::default();
        r.register(
            "rh_runs_running",
            "Runs executing on this host now",
            running.clone(),
        );
        let queued = Gauge::default();
        r.register(
            "rh_runs_queued",
            "Runs waiting in the cluster's queue (0 on a single daemon)",
            queued.clone(),
        );
        let slots_in_use = Gauge::default();
        r.register(
            "rh_instance_slots_in_use",
            "Guest instance slots in use on this host",
            slots_in_use.clone(),
        );
        let slots = Gauge::default();
        r.register(
            "rh_instance_slots",
            "Guest instance slots on this host",
            slots.clone(),
        );
        Arc::new(Metrics {
            registry: r,
            started,
            ended,
            duration,
            fuel,
            output,
            hits,
            misses,
            gc_removed,
            http,
            http_duration,
            running,
            queued,
            slots_in_use,
            slots,
        })
    }

    /// The watcher the runtime calls as Runs start and end.
    pub fn watcher(self: &Arc<Self>) -> rh_runtime::RunWatcher {
        let m = self.clone();
        rh_runtime::RunWatcher(Arc::new(move |e| m.observe(e)))
    }

    fn observe(&self, e: RunEvent<'_>) {
        match e {
            RunEvent::Started(c) => {
                self.started
                    .get_or_create(&FunctionLabel {
                        function: function_of(c),
                    })
                    .inc();
            }
            RunEvent::Ended {
                config,
                cached,
                output_bytes,
            } => {
                let function = function_of(config);
                self.ended
                    .get_or_create(&EndLabels {
                        function: function.clone(),
                        status: config.status.to_string(),
                    })
                    .inc();
                let f = FunctionLabel { function };
                if let Some(s) = seconds(config) {
                    self.duration.get_or_create(&f).observe(s);
                }
                if let Some(fuel) = config.fuel_consumed {
                    self.fuel.get_or_create(&f).inc_by(fuel);
                }
                self.output.inc_by(output_bytes);
                match (&config.cache_hit, cached) {
                    (Some(src), _) => {
                        let source = if src.starts_with("s3://") {
                            "shared"
                        } else {
                            "local"
                        };
                        self.hits
                            .get_or_create(&CacheLabels {
                                source: source.into(),
                            })
                            .inc();
                    }
                    (None, true) => {
                        self.misses.inc();
                    }
                    (None, false) => {}
                }
            }
        }
    }

    /// Runs removed by gc or retention.
    pub fn gc_removed(&self, n: u64) {
        self.gc_removed.inc_by(n);
    }

    /// A request answered.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        // Any token is a method to HTTP: only the known ones are labels.
        let method = match method {
            "GET" | "POST" | "DELETE" | "PUT" | "HEAD" | "OPTIONS" | "PATCH" => method,
            _ => "other",
        };
        self.http
            .get_or_create(&HttpLabels {
                method: method.into(),
                route: route.into(),
                status: status.to_string(),
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabel {
                route: route.into(),
            })
            .observe(seconds);
    }

    /// The text exposition, gauges read now.
    pub fn render(&self, running: i64, queued: i64, slots_in_use: i64, slots: i64) -> String {
        self.running.set(running);
        self.queued.set(queued);
        self.slots_in_use.set(slots_in_use);
        self.slots.set(slots);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A Run's duration, from its record's times.
fn seconds(c: &RunConfig) -> Option<f64> {
    let start = rh_runtime::parse_when(c.start_time.as_deref()?).ok()?;
    let end = rh_runtime::parse_when(c.end_time.as_deref()?).ok()?;
    end.duration_since(start).ok().map(|d| d.as_secs_f64())
}

/// The route template of a path (no names in it): `/v1/runs/{run}/logs`.
pub fn route_of(path: &str) -> String {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let t = match segs.as_slice() {
        [""] => "/",
        ["metrics"] => "/metrics",
        ["healthz"] => "/healthz",
        ["assets", ..] => "/assets",
        ["v1", "runs", _, "files", ..] => "/v1/runs/{run}/files",
        ["v1", "runs", _, rest] => {
            return format!("/v1/runs/{{run}}/{}", known(rest));
        }
        ["v1", "runs", _] => "/v1/runs/{run}",
        ["v1", "scopes", _, "end"] => "/v1/scopes/{name}/end",
        ["v1", "artifacts", _, "data"] => "/v1/artifacts/{name}/data",
        ["v1", kind, _] if matches!(*kind, "functions" | "artifacts" | "lineage") => {
            return format!("/v1/{kind}/{{name}}");
        }
        ["v1", rest @ ..] if rest.len() <= 2 => {
            return format!(
                "/v1/{}",
                rest.iter().map(|s| known(s)).collect::<Vec<_>>().join("/")
            );
        }
        ["v1", ..] => "/v1/other",
        _ => "/ui",
    };
    t.to_string()
}

/// A path segment that names a route, else `other`.
fn known(s: &str) -> &str {
    const ROUTES: &[&str] = &[
        "health",
        "functions",
        "components",
        "calls",
        "exec",
        "python",
        "artifacts",
        "lineage",
        "scopes",
        "runs",
        "gc",
        "cache",
        "clear",
        "reindex",
        "result",
        "wait",
        "cancel",
        "logs",
        "files",
        "shares",
        "remove",
        "hosts",
        "access",
        "session",
    ];
    if ROUTES.contains(&s) { s } else { "other" }
}
