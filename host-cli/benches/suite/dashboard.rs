//! `--only dashboard`: the dashboard in a real headless Chromium (Debian's
//! `chromium` and `chromium-driver`) on a root holding `--history-runs`
//! Runs (default 1,000,000, filled as `--only history` fills them): how
//! long the runs page and a Run's page take to be complete on the screen,
//! measured in the browser (from the navigation's start to the page app
//! saying its first screen is drawn); and recorded calls on a daemon while
//! a browser watches its runs page and `/metrics` is scraped every 100 ms,
//! beside the same calls on a daemon left alone.

use super::*;
use fantoccini::{Client, ClientBuilder};

const TOKEN: &str = "bench-token";

struct Driver {
    child: Child,
    client: Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (apt-get install chromium chromium-driver)");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1400,1000"]}),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    Driver { child, client }
}

async fn until(c: &Client, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = c
            .execute(&format!("return !!({script});"), vec![])
            .await
            .unwrap_or(Value::Bool(false));
        if v == Value::Bool(true) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out: {script}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn sign_in(c: &Client, base: &str) {
    c.goto(&format!("{base}/signin")).await.unwrap();
    until(c, "document.getElementById('token')").await;
    let f = c.find(fantoccini::Locator::Css("#token")).await.unwrap();
    f.send_keys(TOKEN).await.unwrap();
    c.find(fantoccini::Locator::Css("#signin"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(c, "document.body.dataset.ready === '/'").await;
}

/// Load `path` `n` times; how long each took to its first full screen, by
/// the browser's clock.
async fn loads(c: &Client, base: &str, path: &str, done: &str, n: usize) -> Vec<Duration> {
    let mut out = Vec::new();
    for _ in 0..n {
        c.goto(&format!("{base}{path}")).await.unwrap();
        until(
            c,
            &format!("document.body.dataset.ready === '{path}' && ({done})"),
        )
        .await;
        let ms = c
            .execute("return Number(document.body.dataset.readyMs);", vec![])
            .await
            .unwrap()
            .as_f64()
            .unwrap();
        out.push(Duration::from_secs_f64(ms / 1000.0));
    }
    out
}

pub fn dashboard_figures(
    tk: &tokio::runtime::Runtime,
    work: &Path,
    guests: &Path,
    n: usize,
    calls: usize,
    rows: &mut Vec<Row>,
) {
    let dir = work.join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let token_file = dir.join("token");
    let token_arg = ["--token-file", token_file.to_str().unwrap()];
    eprintln!("dashboard: filling {n} Runs ...");
    let root = dir.join("big");
    super::history::fill(&root.join("logs"), n);
    let (big, _) = Daemon::start_with(&root, &token_arg);
    let base = format!("http://{}", big.addr);
    let (pages, run_pages) = tk.block_on(async {
        // The index is built when the first request needs it: wait for it.
        let mut s = connect(&big.addr).await;
        request_as(
            &mut s,
            &big.addr,
            Some(TOKEN),
            "GET",
            "/v1/runs?limit=1",
            Bytes::new(),
        )
        .await;
        let b = browser().await;
        sign_in(&b.client, &base).await;
        let done = "document.querySelectorAll('#runs tbody tr[data-row]').length === 50";
        let pages = loads(&b.client, &base, "/", done, 20).await;
        let run = format!("/runs/h{:07}", n / 2);
        let run_pages = loads(
            &b.client,
            &base,
            &run,
            "!!document.getElementById('record')",
            20,
        )
        .await;
        (pages, run_pages)
    });
    let mut r = Row::latency(
        &format!("dashboard: runs page complete in the browser, {n} Runs"),
        &pages,
        "<= 300 ms",
        Some(Duration::from_millis(300)),
    );
    r.met = Some(pct(&pages, 0.5) <= Duration::from_millis(300));
    rows.push(r);
    let mut r = Row::latency(
        &format!("dashboard: a Run's page complete in the browser, {n} Runs"),
        &run_pages,
        "<= 200 ms",
        Some(Duration::from_millis(200)),
    );
    r.met = Some(pct(&run_pages, 0.5) <= Duration::from_millis(200));
    rows.push(r);
    drop(big);

    // Recorded calls with a browser on the runs page and /metrics scraped
    // every 100 ms, interleaved with calls on a daemon left alone.
    eprintln!("dashboard: calls while watched ...");
    let (watched, _) = Daemon::start_with(&dir.join("watched"), &token_arg);
    let (alone, _) = Daemon::start_with(&dir.join("alone"), &token_arg);
    let (lw, la) = tk.block_on(async {
        for d in [&watched, &alone] {
            let mut s = connect(&d.addr).await;
            let bytes = std::fs::read(guests.join("summer.wasm")).unwrap();
            request_as(
                &mut s,
                &d.addr,
                Some(TOKEN),
                "POST",
                "/v1/functions?name=summer",
                Bytes::from(bytes),
            )
            .await;
        }
        let b = browser().await;
        let wbase = format!("http://{}", watched.addr);
        sign_in(&b.client, &wbase).await;
        let scraping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let scraper = {
            let (addr, on) = (watched.addr.clone(), scraping.clone());
            tokio::spawn(async move {
                let mut s = connect(&addr).await;
                while on.load(std::sync::atomic::Ordering::SeqCst) {
                    request_as(&mut s, &addr, Some(TOKEN), "GET", "/metrics", Bytes::new()).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let call = json!({"function": "summer", "args": [1, 2]});
        let (mut sw, mut sa) = (connect(&watched.addr).await, connect(&alone.addr).await);
        let (mut lw, mut la) = (Vec::new(), Vec::new());
        for i in 0..calls + calls / 10 {
            for (s, d, v) in [(&mut sw, &watched, &mut lw), (&mut sa, &alone, &mut la)] {
                let t = Instant::now();
                let a = request_as(
                    s,
                    &d.addr,
                    Some(TOKEN),
                    "POST",
                    "/v1/calls",
                    Bytes::from(call.to_string()),
                )
                .await;
                let took = t.elapsed();
                assert_eq!(a["status"], "completed", "{a}");
                if i >= calls / 10 {
                    v.push(took);
                }
            }
        }
        scraping.store(false, std::sync::atomic::Ordering::SeqCst);
        let _ = scraper.await;
        drop(b);
        (lw, la)
    });
    rows.push(Row::latency(
        "dashboard: recorded call, daemon left alone",
        &la,
        "reference",
        None,
    ));
    let mut r = Row::latency(
        "dashboard: recorded call, browser watching and /metrics every 100 ms",
        &lw,
        "p50 within 10% of alone",
        None,
    );
    r.bare_p50 = Some(pct(&la, 0.5));
    r.met = Some(pct(&lw, 0.5).as_secs_f64() <= pct(&la, 0.5).as_secs_f64() * 1.1);
    rows.push(r);
}
