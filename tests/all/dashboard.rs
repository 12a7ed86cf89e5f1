//! The dashboard in a real headless Chromium ([`Browser`]) against a real
//! daemon, and `/metrics` read by a Prometheus text parser.

use crate::util::*;
use serde_json::{Value, json};

fn call(d: &Daemon, body: Value) -> Value {
    let (status, v) = d.http_json("POST", "/v1/calls", &body);
    assert_eq!(status, 200, "{v}");
    v
}

/// A raw request with a cookie (and a CSRF token); status and body.
fn with_cookie(
    d: &Daemon,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
    let csrf = csrf
        .map(|c| format!("X-RH-CSRF: {c}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: {cookie}\r\n{csrf}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp)
}

/// Sign in over plain HTTP: the session cookie (`rh_session=...`).
fn session_cookie(d: &Daemon, token: &str) -> String {
    let body = format!("token={token}&next=%2F");
    let (status, resp) = d.http("POST", "/signin", None, body.as_bytes());
    // `http` strips the headers: read them from a raw request instead.
    let _ = (status, resp);
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
    write!(
        s,
        "POST /signin HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 303"), "{resp}");
    let line = resp
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {resp}"));
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    line.split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn nothing_is_served_without_a_session_and_health_says_only_ok() {
    let d = Daemon::start();
    // Pages send to the sign-in form; the app and the API answer 401.
    let (status, _) = d.http("GET", "/", None, b"");
    assert_eq!(status, 303);
    let (status, _) = d.http("GET", "/runs/x", None, b"");
    assert_eq!(status, 303);
    let (status, _) = d.http("GET", "/assets/app.js", None, b"");
    assert_eq!(status, 401);
    let (status, _) = d.http("GET", "/ui/session", None, b"");
    assert_eq!(status, 401);
    let (status, _) = d.http("GET", "/metrics", None, b"");
    assert_eq!(status, 401);
    let (status, body) = d.http("GET", "/v1/health", None, b"");
    assert_eq!(status, 401, "{body}");
    // A wrong token signs no one in; a forged cookie is no session.
    let (status, body) = d.http("POST", "/signin", None, b"token=nope");
    assert_eq!(status, 401, "{body}");
    let (status, _) = with_cookie(&d, "GET", "/v1/runs", "rh_session=forged", None);
    assert_eq!(status, 401);
    // After signing in, only a path on this daemon (a tab would make
    // `/<TAB>/evil` another site's address to a browser).
    let raw = |extra: &str, body: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
        write!(
            s,
            "POST /signin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp
    };
    let resp = raw(
        "",
        &format!("token={}&next=%2F%09%2Fevil.example", d.token()),
    );
    assert!(resp.contains("\r\nlocation: /\r\n"), "{resp}");
    let resp = raw("", &format!("token={}&next=%2F%2Fevil.example", d.token()));
    assert!(resp.contains("\r\nlocation: /\r\n"), "{resp}");
    // Another site's page cannot sign a browser in (with its own token).
    let resp = raw(
        "Sec-Fetch-Site: cross-site\r\n",
        &format!("token={}", d.token()),
    );
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    // Any token is a method to HTTP; metrics do not make a label of it.
    let _ = with_cookie(&d, "FROB", "/v1/health", "x=y", None);
    let (_, m) = d.http("GET", "/metrics", Some(&d.token()), b"");
    assert!(!m.contains("FROB") && m.contains("method=\"other\""), "{m}");
    // The liveness probe needs nothing and says nothing else.
    let (status, body) = d.http("GET", "/healthz", None, b"");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // Signed in: the session reads; it changes nothing without its CSRF
    // token (a cross-site form cannot read it); signing out ends it.
    let cookie = session_cookie(&d, &d.token());
    let (status, _) = with_cookie(&d, "GET", "/v1/runs", &cookie, None);
    assert_eq!(status, 200);
    let (status, resp) = with_cookie(&d, "POST", "/v1/gc", &cookie, None);
    assert_eq!(status, 403, "{resp}");
    let (_, resp) = with_cookie(&d, "GET", "/ui/session", &cookie, None);
    let csrf = resp
        .split("\"csrf\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let (status, _) = with_cookie(&d, "POST", "/signout", &cookie, Some(&csrf));
    assert_eq!(status, 303);
    let (status, _) = with_cookie(&d, "GET", "/v1/runs", &cookie, None);
    assert_eq!(status, 401);
}

#[test]
fn the_dashboard_lists_filters_follows_and_cancels_runs_in_a_browser() {
    let d = Daemon::start();
    d.deploy("testkit");
    for i in 0..3 {
        call(
            &d,
            json!({"function": "testkit/add", "args": [i, 1], "run_name": format!("add{i}"), "tags": {"team": "search"}}),
        );
    }
    call(
        &d,
        json!({"function": "testkit/fail", "args": ["no"], "run_name": "broken"}),
    );
    let base = format!("http://{}", d.addr);
    tokio().block_on(async {
        let b = Browser::start().await;
        b.goto(&format!("{base}/")).await;
        b.until(10, "the sign-in page", "location.pathname === '/signin'").await;
        b.sign_in(&base, &d.token()).await;
        // The table lists the Runs that exist, newest first, status as text
        // and colour.
        b.until(10, "four rows", "document.querySelectorAll('#runs tbody tr').length === 4").await;
        let names = b.eval("[...document.querySelectorAll('#runs tbody tr')].map(r => r.dataset.row)").await;
        assert_eq!(names, json!(["broken", "add2", "add1", "add0"]));
        let badge = b.eval("document.querySelector('tr[data-row=broken] .status').className").await;
        assert_eq!(badge, json!("status status-error"));
        b.shot("runs-table").await;
        // Filters, in the URL: a link to the view shows the same.
        b.goto(&format!("{base}/?status=error")).await;
        b.until(10, "the filtered table", "document.body.dataset.ready === '/' && document.querySelectorAll('#runs tbody tr').length === 1").await;
        assert_eq!(b.eval("document.querySelector('#runs tbody tr').dataset.row").await, json!("broken"));
        b.goto(&format!("{base}/?tag=team%3Dsearch&function=testkit%2Fadd")).await;
        b.until(10, "three tagged", "document.querySelectorAll('#runs tbody tr[data-row]').length === 3").await;
        b.fill("#f-function", "testkit/fail").await;
        b.click("#apply").await;
        b.until(10, "the form's filter", "location.search.includes('function=testkit%2Ffail') && document.querySelectorAll('#runs tbody tr[data-row]').length === 0").await;
        // New Runs appear without a reload.
        b.goto(&format!("{base}/")).await;
        b.until(10, "the table", "document.querySelectorAll('#runs tbody tr').length === 4").await;
        call(&d, json!({"function": "testkit/add", "args": [7, 1], "run_name": "late"}));
        b.until(10, "the new Run", "!!document.querySelector('tr[data-row=late]')").await;
        // A Run's page shows a line the guest prints while it still runs.
        call(&d, json!({"function": "testkit/ticks", "args": [300, 50], "run_name": "ticking", "mode": "run"}));
        b.goto(&format!("{base}/runs/ticking")).await;
        b.until(10, "a tick while running", "document.getElementById('stdout').textContent.includes('tick ') && document.querySelector('#run-status .status').dataset.status === 'running'").await;
        b.shot("run-live").await;
        let cfg = d.config("ticking");
        assert_eq!(cfg["status"], "running", "it was still running");
        // Cancel from the page ends a spinning Run `cancelled`.
        call(&d, json!({"function": "testkit/spin", "args": [], "run_name": "spinner", "mode": "run"}));
        b.goto(&format!("{base}/runs/spinner")).await;
        b.until(10, "the cancel button", "!!document.getElementById('cancel') && document.getElementById('stdout').textContent.includes('spinning')").await;
        b.click("#cancel").await;
        b.until(15, "cancelled", "document.querySelector('#run-status .status').dataset.status === 'cancelled'").await;
        assert_eq!(d.config("spinner")["status"], "cancelled");
        // A finished Run's page: inputs, result, files to download.
        b.goto(&format!("{base}/runs/add2")).await;
        b.until(10, "the result", "document.getElementById('result').textContent.trim() === '3' && document.querySelectorAll('#files a').length >= 4").await;
        let inputs = b.eval("JSON.parse(document.getElementById('inputs').textContent)").await;
        assert_eq!(inputs, json!([2, 1]));
        b.shot("run-page").await;
        // Functions and hosts.
        b.goto(&format!("{base}/functions")).await;
        b.until(10, "functions", "!!document.querySelector('tr[data-function=testkit]')").await;
        b.goto(&format!("{base}/hosts")).await;
        b.until(10, "hosts", "!!document.getElementById('hosts')").await;
        // Signing out ends the session.
        b.goto(&format!("{base}/")).await;
        b.until(10, "the runs page", "document.body.dataset.ready === '/'").await;
        b.click("#signout button").await;
        b.until(10, "the sign-in page", "location.pathname === '/signin'").await;
        b.goto(&format!("{base}/")).await;
        b.until(10, "sent to sign in", "location.pathname === '/signin'").await;
        b.close().await;
    });
    let _ = d.http("POST", "/v1/runs/ticking/cancel", Some(&d.token()), b"");
}

#[test]
fn the_lineage_graph_of_the_pipeline_has_its_nodes_and_edges() {
    let d = Daemon::start();
    d.deploy("pipeline");
    std::fs::write(d.client().join("data.csv"), "1,2\n2,4\n3,6\n").unwrap();
    d.rh_ok(&[
        "artifacts",
        "put",
        "dataset",
        "data.csv",
        "--cluster",
        "cpu",
    ]);
    for (f, arg, run) in [
        ("pipeline/preprocess", "\"dataset\"", "prep"),
        ("pipeline/train", "3", "train"),
        ("pipeline/export", "\"json\"", "export"),
    ] {
        d.rh_ok(&["call", f, arg, "--cluster", "cpu", "--run-name", run]);
    }
    let base = format!("http://{}", d.addr);
    tokio().block_on(async {
        let b = Browser::start().await;
        b.sign_in(&base, &d.token()).await;
        b.goto(&format!("{base}/lineage/model-export")).await;
        b.until(10, "the graph", "!!document.querySelector('svg#lineage')").await;
        let nodes = b
            .eval("[...document.querySelectorAll('svg#lineage [data-node]')].map(n => n.dataset.node.split('@')[0]).sort()")
            .await;
        assert_eq!(
            nodes,
            json!([
                "artifact:clean-data", "artifact:dataset", "artifact:model", "artifact:model-export",
                "run:export", "run:prep", "run:train"
            ])
        );
        let edges = b
            .eval("[...document.querySelectorAll('svg#lineage [data-edge]')].map(e => e.dataset.edge.replace(/@[0-9a-f]+/g, '')).sort()")
            .await;
        assert_eq!(
            edges,
            json!([
                "artifact:clean-data -> run:train",
                "artifact:dataset -> run:prep",
                "artifact:model -> run:export",
                "run:export -> artifact:model-export",
                "run:prep -> artifact:clean-data",
                "run:train -> artifact:model"
            ])
        );
        b.shot("lineage").await;
        // Each node is a link: a Run's goes to its page.
        b.click("svg#lineage a[data-node='run:train']").await;
        b.until(10, "the train Run's page", "location.pathname === '/runs/train' && document.body.dataset.ready === '/runs/train'").await;
        assert!(b.text("#record").await.contains("pipeline/train"));
        b.close().await;
    });
}

#[test]
fn a_user_sees_nothing_of_another_users_runs_in_the_dashboard() {
    let d = Daemon::start_users(&[("alice", false), ("bob", false)]);
    let deploy = d.rh_as("alice", &["deploy", &wasm("testkit")]);
    assert!(deploy.status.success());
    let (status, v) = d.http_as(
        "alice",
        "POST",
        "/v1/calls",
        &json!({"function": "testkit/add", "args": [1, 2], "run_name": "alices"}),
    );
    assert_eq!(status, 200, "{v}");
    let base = format!("http://{}", d.addr);
    tokio().block_on(async {
        let b = Browser::start().await;
        b.sign_in(&base, &d.user_token("bob")).await;
        b.until(10, "an empty table", "!!document.getElementById('empty')")
            .await;
        assert_eq!(
            b.eval("document.querySelectorAll('#runs tr[data-row]').length")
                .await,
            json!(0)
        );
        b.goto(&format!("{base}/runs/alices")).await;
        b.until(10, "an error", "!!document.getElementById('error')")
            .await;
        assert!(!b.text("body").await.contains("testkit/add"));
        b.shot("no-access").await;
        b.close().await;
        // Metrics tell of every user's functions: administrators only.
        let (status, _) = d.http("GET", "/metrics", Some(&d.user_token("bob")), b"");
        assert_eq!(status, 403);
        // Alice sees hers.
        let b = Browser::start().await;
        b.sign_in(&base, &d.user_token("alice")).await;
        b.until(
            10,
            "her Run",
            "!!document.querySelector('tr[data-row=alices]')",
        )
        .await;
        assert_eq!(b.text("#who").await, "alice");
        b.close().await;
    });
}

#[test]
fn metrics_count_what_the_daemon_did_in_the_prometheus_format() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maddr = format!("127.0.0.1:{port}");
    let d = Daemon::start_with(&["--metrics-addr", &maddr]);
    d.deploy("testkit");
    for i in 0..3 {
        call(
            &d,
            json!({"function": "testkit/add", "args": [i, 1], "run_name": format!("m{i}")}),
        );
    }
    call(
        &d,
        json!({"function": "testkit/fail", "args": ["no"], "run_name": "mfail"}),
    );
    call(
        &d,
        json!({"function": "testkit/echo_marker", "args": ["x", 3], "cache": true}),
    );
    call(
        &d,
        json!({"function": "testkit/echo_marker", "args": ["x", 3], "cache": true}),
    );
    let (status, v) = d.http_json(
        "POST",
        "/v1/gc",
        &json!({"keep_last": 2, "status": ["completed"]}),
    );
    assert_eq!(status, 200, "{v}");
    let removed = v["runs_removed"].as_u64().unwrap();
    assert!(removed >= 1, "{v}");
    let (status, text) = d.http("GET", "/metrics", Some(&d.token()), b"");
    assert_eq!(status, 200);
    // The same on the metrics listener, without a token.
    let mut s = std::net::TcpStream::connect(&maddr).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut other = String::new();
    s.read_to_string(&mut other).unwrap();
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
    assert!(other.contains("rh_runs_total"), "{other}");

    // Read by a Prometheus text-format parser.
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the exposition parses");
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert_eq!(
        value(
            "rh_runs_total",
            &[("function", "testkit/add"), ("status", "completed")]
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        value(
            "rh_runs_total",
            &[("function", "testkit/fail"), ("status", "error")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value("rh_runs_started_total", &[("function", "testkit/add")]),
        3.0
    );
    assert_eq!(value("rh_cache_misses_total", &[]), 1.0, "{text}");
    assert_eq!(
        value("rh_cache_hits_total", &[("source", "local")]),
        1.0,
        "{text}"
    );
    assert_eq!(value("rh_gc_removed_runs_total", &[]), removed as f64);
    assert_eq!(
        value(
            "rh_http_requests_total",
            &[
                ("route", "/v1/calls"),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        6.0,
        "{text}"
    );
    assert!(value("rh_fuel_consumed_total", &[("function", "testkit/add")]) > 0.0);
    assert!(value("rh_output_bytes_total", &[]) >= 12.0, "{text}");
    assert_eq!(value("rh_runs_running", &[]), 0.0);
    assert!(value("rh_instance_slots", &[]) >= 1.0);
    // The duration histogram: a count per function.
    let hist = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "rh_run_duration_seconds" && s.labels.get("function") == Some("testkit/add")
        })
        .unwrap_or_else(|| panic!("no duration histogram in {text}"));
    match &hist.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert_eq!(buckets.last().unwrap().count, 3.0, "{buckets:?}")
        }
        other => panic!("not a histogram: {other:?}"),
    }
    // No label holds a Run's name.
    for s in &scrape.samples {
        for (_, v) in s.labels.iter() {
            assert!(
                !v.starts_with('m') || !v[1..].chars().all(|c| c.is_ascii_digit()),
                "{v}"
            );
            assert_ne!(v, "mfail");
        }
    }
}
