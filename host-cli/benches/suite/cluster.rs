//! `--only cluster`: a cluster of several hosts (`serve --nats`) on this
//! machine, with a real nats-server (JetStream) and a real S3 server
//! (moto): a recorded call through the queue beside the same call on a
//! plain daemon, throughput with 1, 2 and 3 hosts (and each host's CPU per
//! call: two cores cannot show the scaling), a guest's line reaching a
//! follower on another host, a cancel from another host, and how long the
//! others take to see a host killed with -9.

use super::*;

struct Servers {
    nats: Child,
    moto: Child,
    nats_url: String,
    s3: String,
    key: PathBuf,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in [&mut self.nats, &mut self.moto] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nats_server() -> PathBuf {
    if let Some(p) = std::env::var_os("RH_NATS_SERVER") {
        return p.into();
    }
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let venv = home.join(".cache/rh-wasm/py/venv/bin/nats-server");
    if venv.exists() {
        venv
    } else {
        "nats-server".into()
    }
}

fn servers(dir: &Path) -> Servers {
    let (np, mp) = (free_port(), free_port());
    let nats = Command::new(nats_server())
        .args(["-js", "-a", "127.0.0.1", "-p", &np.to_string(), "-sd"])
        .arg(dir.join("nats"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (make test installs it)");
    let moto = Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &mp.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m moto.server (make test installs it)");
    let s3 = format!("http://127.0.0.1:{mp}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let made = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
            .arg(format!("{s3}/runs"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        if made == "200" && std::net::TcpStream::connect(("127.0.0.1", np)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nats-server or moto did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let key = dir.join("team.key");
    std::fs::write(&key, b"the team's secret, 32 bytes long").unwrap();
    Servers {
        nats,
        moto,
        nats_url: format!("nats://127.0.0.1:{np}"),
        s3,
        key,
    }
}

fn host(dir: &Path, sv: &Servers, cluster: &str, i: usize, slots: usize) -> Daemon {
    let root = dir.join(format!("{cluster}-h{i}"));
    Daemon::start_with(
        &root,
        &[
            "--nats",
            &sv.nats_url,
            "--name",
            cluster,
            "--host-name",
            &format!("h{i}"),
            "--slots",
            &slots.to_string(),
            "--shared-store",
            "s3://runs/team",
            "--endpoint",
            &sv.s3,
            "--shared-store-key",
            sv.key.to_str().unwrap(),
        ],
    )
    .0
}

async fn deploy(addr: &str, guests: &Path) {
    let mut s = connect(addr).await;
    let bytes = std::fs::read(guests.join("testkit.wasm")).unwrap();
    request(
        &mut s,
        addr,
        "POST",
        "/v1/functions?name=testkit",
        Bytes::from(bytes),
    )
    .await;
}

async fn wait_deployed(addr: &str) {
    let mut s = connect(addr).await;
    for _ in 0..600 {
        let v = request(&mut s, addr, "GET", "/v1/functions", Bytes::new()).await;
        if v.to_string().contains("testkit") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("testkit never reached {addr}");
}

/// `n` sequential recorded calls of `testkit/add`; their latencies.
async fn sequential(addr: &str, n: usize, tag: &str) -> Vec<Duration> {
    let mut s = connect(addr).await;
    let mut lat = Vec::new();
    for i in 0..n + n / 10 {
        let t = Instant::now();
        let v = post(
            &mut s,
            addr,
            "/v1/calls",
            &json!({"function": "testkit/add", "args": [i, 1], "run_name": format!("{tag}{i}")}),
        )
        .await;
        let took = t.elapsed();
        assert_eq!(v["status"], "completed", "{v}");
        if i >= n / 10 {
            lat.push(took);
        }
    }
    lat
}

/// `n` recorded calls spread over `addrs`, 32 at a time; calls a second.
async fn spread(addrs: &[String], n: usize, tag: &str) -> f64 {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..32 {
        let (addrs, next, tag) = (addrs.to_vec(), next.clone(), tag.to_string());
        tasks.push(tokio::spawn(async move {
            let addr = &addrs[w % addrs.len()];
            let mut s = connect(addr).await;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= n {
                    return;
                }
                let v = post(
                    &mut s,
                    addr,
                    "/v1/calls",
                    &json!({"function": "testkit/add", "args": [i, 1], "run_name": format!("{tag}{i}")}),
                )
                .await;
                assert_eq!(v["status"], "completed", "{v}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// The address of a host (of `hosts`, named h0, h1, h2) other than the
/// one running the only Run, as `watch` lists them.
async fn not_running_it(watch: &str, hosts: &[Daemon]) -> String {
    let busy = busy_host(watch).await;
    hosts
        .iter()
        .zip(["h0", "h1", "h2"])
        .find(|(_, n)| *n != busy)
        .map(|(h, _)| h.addr.clone())
        .unwrap()
}

/// A Run's status as a host sees it (`None` before it knows the Run).
async fn status_of(s: &mut Sender, addr: &str, run: &str) -> Option<String> {
    s.ready().await.ok()?;
    let req = Request::get(format!("/v1/runs/{run}"))
        .header("host", addr)
        .body(Full::new(Bytes::new()))
        .ok()?;
    let resp = s.send_request(req).await.ok()?;
    let ok = resp.status().is_success();
    let bytes = resp.into_body().collect().await.ok()?.to_bytes();
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    ok.then(|| v["status"].as_str().map(str::to_string))?
}

/// The host executing a Run, by the hosts' own count of slots in use.
async fn busy_host(addr: &str) -> String {
    let mut s = connect(addr).await;
    for _ in 0..400 {
        let v = request(&mut s, addr, "GET", "/v1/hosts", Bytes::new()).await;
        if let Some(h) = v
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["slots_in_use"].as_u64() == Some(1))
        {
            return h["name"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no host took the Run");
}

pub fn cluster_figures(
    tk: &tokio::runtime::Runtime,
    work: &Path,
    guests: &Path,
    calls: usize,
    rows: &mut Vec<Row>,
) {
    let dir = work.join("cluster");
    std::fs::create_dir_all(&dir).unwrap();
    let sv = servers(&dir);

    // A plain daemon and a one-host cluster, called alternately.
    eprintln!("cluster: one host vs a plain daemon ...");
    let (plain, _) = Daemon::start(&dir.join("plain"));
    let one = host(&dir, &sv, "one", 0, 64);
    let (pa, oa) = (plain.addr.clone(), one.addr.clone());
    let (mut lp, mut lq) = (Vec::new(), Vec::new());
    tk.block_on(async {
        deploy(&pa, guests).await;
        deploy(&oa, guests).await;
        for round in 0..5 {
            lp.extend(sequential(&pa, calls / 5, &format!("p{round}-")).await);
            lq.extend(sequential(&oa, calls / 5, &format!("q{round}-")).await);
        }
    });
    let plain_row = Row::latency(
        "cluster: recorded call, plain daemon",
        &lp,
        "reference",
        None,
    );
    let added = pct(&lq, 0.5).saturating_sub(pct(&lp, 0.5));
    let mut queued = Row::latency(
        "cluster: recorded call through the queue (1 host)",
        &lq,
        "adds <= 1 ms at p50",
        None,
    );
    queued.bare_p50 = Some(pct(&lp, 0.5));
    queued.met = Some(added <= Duration::from_millis(1));
    rows.push(plain_row);
    rows.push(queued);
    drop(plain);
    drop(one);

    // Throughput with 1, 2 and 3 hosts of one cluster.
    eprintln!("cluster: throughput with 1, 2, 3 hosts ...");
    let hosts: Vec<Daemon> = (0..3).map(|i| host(&dir, &sv, "tp", i, 64)).collect();
    let addrs: Vec<String> = hosts.iter().map(|h| h.addr.clone()).collect();
    tk.block_on(async {
        deploy(&addrs[0], guests).await;
        for a in &addrs {
            wait_deployed(a).await;
        }
    });
    let n = calls.max(500);
    for k in 1..=3 {
        // Only the first k hosts are asked; all three take work from the
        // queue, so each figure is of k accepting hosts and 3 executing.
        let cpu0: Vec<Duration> = hosts.iter().map(Daemon::cpu_time).collect();
        let rate = tk.block_on(spread(&addrs[..k], n, &format!("t{k}-")));
        let cpu: Duration = hosts
            .iter()
            .zip(&cpu0)
            .map(|(h, c)| h.cpu_time().saturating_sub(*c))
            .sum();
        rows.push(Row {
            figure: format!("cluster: calls/s, {k} of 3 hosts asked, 32 at a time"),
            rate: Some(rate),
            samples: n,
            target: "reported".into(),
            ..Row::default()
        });
        rows.push(Row {
            figure: format!("cluster: hosts' CPU per call ({k} asked)"),
            value: Some((us(cpu) / n as f64, "µs")),
            samples: n,
            target: "reported".into(),
            ..Row::default()
        });
    }

    // A guest's line reaching a follower on another host.
    eprintln!("cluster: follow and cancel across hosts ...");
    let follow = tk.block_on(async {
        let a = &addrs[0];
        let mut s = connect(a).await;
        let count = 100;
        post(
            &mut s,
            a,
            "/v1/calls",
            &json!({"function": "testkit/ticks", "args": [count, 10], "run_name": "ticks", "mode": "run"}),
        )
        .await;
        let other = not_running_it(a, &hosts).await;
        let mut f = connect(&other).await;
        let since = now_us();
        let req = Request::get("/v1/runs/ticks/logs?follow=1")
            .header("host", &other)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let body = f.send_request(req).await.unwrap().into_body();
        tick_delays(body, since).await.0
    });
    let mut r = Row::latency(
        "cluster: guest println -> follower on another host",
        &follow,
        "p99 <= 50 ms",
        None,
    );
    r.met = Some(pct(&follow, 0.99) <= Duration::from_millis(50));
    rows.push(r);

    // A cancel from another host stops a spinning guest.
    let cancels = tk.block_on(async {
        let mut out = Vec::new();
        for i in 0..20 {
            let a = &addrs[0];
            let mut s = connect(a).await;
            let name = format!("spin{i}");
            post(
                &mut s,
                a,
                "/v1/calls",
                &json!({"function": "testkit/spin", "args": [], "run_name": name, "mode": "run"}),
            )
            .await;
            let other = not_running_it(a, &hosts).await;
            let mut o = connect(&other).await;
            // Running there too before the cancel is timed.
            loop {
                if status_of(&mut o, &other, &name).await.as_deref() == Some("running") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let t = Instant::now();
            let v = request(
                &mut o,
                &other,
                "POST",
                &format!("/v1/runs/{name}/cancel"),
                Bytes::new(),
            )
            .await;
            out.push(t.elapsed());
            assert_eq!(v["status"], "cancelled", "{v}");
        }
        out
    });
    let mut r = Row::latency(
        "cluster: cancel from another host -> cancelled",
        &cancels,
        "p99 <= 50 ms",
        None,
    );
    r.met = Some(pct(&cancels, 0.99) <= Duration::from_millis(50));
    rows.push(r);

    // A host killed with -9: how long until the others stop listing it.
    eprintln!("cluster: a dead host ...");
    let mut hosts = hosts;
    let mut victim = hosts.remove(2);
    let watcher = addrs[0].clone();
    let t = Instant::now();
    let _ = victim.child.kill();
    let _ = victim.child.wait();
    let gone = tk.block_on(async {
        let mut s = connect(&watcher).await;
        loop {
            let v = request(&mut s, &watcher, "GET", "/v1/hosts", Bytes::new()).await;
            if !v.to_string().contains("\"h2\"") {
                return t.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    rows.push(Row {
        figure: "cluster: a host killed -9 -> gone from the others' hosts".into(),
        value: Some((gone.as_secs_f64(), "s")),
        samples: 1,
        target: "reported (heartbeat 0.5 s, dead after 3 s)".into(),
        ..Row::default()
    });
}
