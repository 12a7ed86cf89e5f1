//! `--only python`: functions written in Python (CPython inside the
//! component, built by `rh-wasm build`), beside the Rust `summer` of the
//! same run: the build, the deploy, a call over HTTP, `run-python` of
//! `print(1)` over HTTP, the first call after a daemon restart (from the
//! precompiled copy), and the daemon's memory with 16 Python Runs in
//! flight.

use super::*;

/// Build `file` with the CLI under test; the component and how long it took.
fn build(file: &Path, out: &Path) -> (PathBuf, Duration) {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_rh-wasm"))
        .arg("build")
        .arg(file)
        .arg("-o")
        .arg(out)
        .output()
        .expect("running rh-wasm build");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (out.to_path_buf(), t.elapsed())
}

pub fn python_figures(
    tk: &tokio::runtime::Runtime,
    work: &Path,
    guests: &Path,
    calls: usize,
    rows: &mut Vec<Row>,
) {
    let dir = work.join("python");
    std::fs::create_dir_all(&dir).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    eprintln!("python: building the components ...");
    let (summer, took) = build(
        &repo.join("examples/python/summer.py"),
        &dir.join("pysummer.wasm"),
    );
    let size = std::fs::metadata(&summer).unwrap().len();
    rows.push(Row {
        figure: format!(
            "python: rh-wasm build summer.py ({:.1} MiB)",
            size as f64 / 1048576.0
        ),
        value: Some((took.as_secs_f64(), "s")),
        samples: 1,
        target: "reported".into(),
        ..Row::default()
    });
    std::fs::write(
        dir.join("nap.py"),
        "import time\nfrom rh_guest import function\n\n@function\ndef nap(ms: int) -> int:\n    \
         time.sleep(ms / 1000)\n    return ms\n",
    )
    .unwrap();
    let (nap, _) = build(&dir.join("nap.py"), &dir.join("nap.wasm"));
    let (interp, _) = build(
        &repo.join("guest-sdk/python/rh_python.py"),
        &dir.join("python.wasm"),
    );
    let root = dir.join("root");
    let (d, _) = Daemon::start(&root);
    let n = (calls / 4).max(50);
    let (rust, py, (deploy, interp_deploy), statements) = tk.block_on(async {
        let addr = d.addr.clone();
        let mut s = connect(&addr).await;
        let up =
            |name: &str, bytes: Vec<u8>| (format!("/v1/functions?name={name}"), Bytes::from(bytes));
        let (path, body) = up("summer", std::fs::read(guests.join("summer.wasm")).unwrap());
        request(&mut s, &addr, "POST", &path, body).await;
        let t = Instant::now();
        let (path, body) = up("pysummer", std::fs::read(&summer).unwrap());
        request(&mut s, &addr, "POST", &path, body).await;
        let deploy = t.elapsed();
        let (path, body) = up("nap", std::fs::read(&nap).unwrap());
        request(&mut s, &addr, "POST", &path, body).await;
        let (path, body) = up("python", std::fs::read(&interp).unwrap());
        let t = Instant::now();
        request(&mut s, &addr, "POST", &path, body).await;
        let interp_deploy = t.elapsed();
        let (mut rust, mut py) = (Vec::new(), Vec::new());
        for i in 0..n + 10 {
            let t = Instant::now();
            let v = post(
                &mut s,
                &addr,
                "/v1/calls",
                &json!({"function": "summer", "args": [1, 2]}),
            )
            .await;
            let r = t.elapsed();
            assert_eq!(v["result"], 3);
            let t = Instant::now();
            let v = post(
                &mut s,
                &addr,
                "/v1/calls",
                &json!({"function": "pysummer", "args": [1, 2]}),
            )
            .await;
            let p = t.elapsed();
            assert_eq!(v["result"], 3, "{v}");
            if i >= 10 {
                rust.push(r);
                py.push(p);
            }
        }
        // run-python of `print(1)`, streamed to its end as the CLI asks.
        let body = json!({"statements": ["print(1)"], "stream": true}).to_string();
        let mut statements = Vec::new();
        for i in 0..n + 10 {
            let t = Instant::now();
            s.ready().await.unwrap();
            let req = Request::post("/v1/python")
                .header("host", &addr)
                .body(Full::new(Bytes::from(body.clone())))
                .unwrap();
            let bytes = s
                .send_request(req)
                .await
                .unwrap()
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes();
            let l = t.elapsed();
            assert!(
                bytes.windows(11).any(|w| w == b"\"completed\""),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            if i >= 10 {
                statements.push(l);
            }
        }
        (rust, py, (deploy, interp_deploy), statements)
    });
    let interp_size = std::fs::metadata(&interp).map(|m| m.len()).unwrap_or(0);
    rows.push(Row {
        figure: format!(
            "python: deploy of the interpreter ({:.1} MiB)",
            interp_size as f64 / 1048576.0
        ),
        value: Some((interp_deploy.as_secs_f64(), "s")),
        samples: 1,
        target: "reported".into(),
        ..Row::default()
    });
    rows.push(Row {
        figure: "python: deploy of summer.py's component (validate + compile + store)".into(),
        value: Some((deploy.as_secs_f64(), "s")),
        samples: 1,
        target: "reported".into(),
        ..Row::default()
    });
    let mut r = Row::latency(
        "python: summer.py call over HTTP",
        &py,
        "<= 5 ms",
        Some(Duration::from_millis(5)),
    );
    r.bare_p50 = Some(pct(&rust, 0.5));
    rows.push(r);
    rows.push(Row::latency(
        "python: Rust summer call over HTTP, same run",
        &rust,
        "reference",
        None,
    ));
    let mut r = Row::latency(
        "python: run-python of print(1) over HTTP (streamed)",
        &statements,
        "<= 10 ms",
        Some(Duration::from_millis(10)),
    );
    r.bare_p50 = Some(pct(&rust, 0.5));
    rows.push(r);

    // Restart, then the first Python call (from the precompiled copy).
    d.stop();
    let mut firsts = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        if let Some(d) = last.take() {
            Daemon::stop(d);
        }
        let (d, _) = Daemon::start(&root);
        let first = tk.block_on(async {
            let mut s = connect(&d.addr).await;
            let t = Instant::now();
            let v = post(
                &mut s,
                &d.addr,
                "/v1/calls",
                &json!({"function": "pysummer", "args": [1, 2]}),
            )
            .await;
            assert_eq!(v["result"], 3, "{v}");
            t.elapsed()
        });
        firsts.push(first);
        last = Some(d);
    }
    rows.push(Row::latency(
        "python: first call after a daemon restart",
        &firsts,
        "<= 50 ms",
        Some(Duration::from_millis(50)),
    ));

    // Memory with 16 Python Runs in flight.
    let d = last.unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let idle = d.rss_kib();
    let busy = tk.block_on(async {
        let mut s = connect(&d.addr).await;
        let mut names = Vec::new();
        for i in 0..16 {
            let name = format!("py-nap-{i}");
            let body = json!({"function": "nap", "args": [1500], "run_name": name, "mode": "run"});
            post(&mut s, &d.addr, "/v1/calls", &body).await;
            names.push(name);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = d.rss_kib();
        for n in names {
            let v = request(
                &mut s,
                &d.addr,
                "GET",
                &format!("/v1/runs/{n}/wait"),
                Bytes::new(),
            )
            .await;
            assert_eq!(v["status"], "completed", "{v}");
        }
        busy
    });
    rows.push(Row {
        figure: format!(
            "python: daemon RSS, 16 Python Runs in flight (idle {} MiB)",
            idle / 1024
        ),
        value: Some((busy as f64 / 1024.0, "MiB")),
        samples: 1,
        target: "reported".into(),
        ..Row::default()
    });
    d.stop();
}
