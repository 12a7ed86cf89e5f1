//! One cluster, three hosts: real daemons sharing work through a real
//! nats-server (JetStream) and a real S3 server ([`Hosts`]).

use crate::util::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Deploy testkit through host 0 and wait until every host has it.
fn deploy_everywhere(h: &Hosts) {
    h.hosts[0].deploy("testkit");
    for d in &h.hosts {
        wait_until(30, "testkit on every host", || {
            let (_, v) = d.http_json("GET", "/v1/functions", &Value::Null);
            v.as_array()
                .is_some_and(|a| a.iter().any(|f| f["name"] == "testkit"))
        });
    }
}

fn call(d: &Daemon, body: Value) -> (u16, Value) {
    d.http_json("POST", "/v1/calls", &body)
}

fn config_on(d: &Daemon, run: &str) -> Value {
    let (status, v) = d.http_json("GET", &format!("/v1/runs/{run}"), &Value::Null);
    assert_eq!(status, 200, "{run}: {v}");
    v
}

fn wait_status(d: &Daemon, run: &str, want: &[&str]) -> Value {
    let mut last = Value::Null;
    wait_until(60, &format!("{run} to be one of {want:?}"), || {
        // Another host's Run reaches this one's copy a moment later.
        let (status, v) = d.http_json("GET", &format!("/v1/runs/{run}"), &Value::Null);
        last = v;
        status == 200 && want.contains(&last["status"].as_str().unwrap_or(""))
    });
    last
}

#[test]
fn calls_through_any_host_run_on_all_of_them_and_every_run_is_whole() {
    let h = Hosts::start(8);
    deploy_everywhere(&h);
    let n = 2000;
    let next = AtomicUsize::new(0);
    let answers = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        return;
                    }
                    let marker = format!("m{i:05}");
                    let (status, v) = call(
                        &h.hosts[i % 3],
                        json!({"function": "testkit/echo_marker", "args": [marker, 2],
                               "run_name": format!("r{i:05}")}),
                    );
                    answers.lock().unwrap().push((i, status, v));
                }
            });
        }
    });
    let answers = answers.into_inner().unwrap();
    assert_eq!(answers.len(), n);
    for (i, status, v) in &answers {
        assert_eq!(*status, 200, "call {i}: {v}");
        assert_eq!(v["status"], "completed", "call {i}: {v}");
        assert_eq!(v["result"], format!("m{i:05}"), "call {i}: {v}");
    }
    // Executed by all three: each host process records its own id.
    let mut executed_by = BTreeMap::new();
    for i in (0..n).step_by(7) {
        let run = format!("r{i:05}");
        // Any host answers for every Run, whole: record, result, output.
        let d = &h.hosts[(i + 1) % 3];
        let c = wait_status(d, &run, &["completed"]);
        *executed_by
            .entry(c["host"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        let (status, out) = d.http(
            "GET",
            &format!("/v1/runs/{run}/logs"),
            Some(&d.token()),
            b"",
        );
        assert_eq!(status, 200);
        let marker = format!("m{i:05}");
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with('m')).collect();
        assert_eq!(
            lines,
            vec![marker.as_str(); 2],
            "{run} holds only its own output"
        );
    }
    assert_eq!(
        executed_by.len(),
        3,
        "every host executed calls: {executed_by:?}"
    );
    // Search on any host finds them all.
    let (_, page) = h.hosts[2].http_json(
        "GET",
        "/v1/runs?function=testkit/echo_marker&limit=1000",
        &Value::Null,
    );
    assert_eq!(page_names(&page).len(), 1000);
    // Names are the cluster's: a second Run of a name is refused anywhere.
    let (status, v) = call(
        &h.hosts[1],
        json!({"function": "testkit/echo_marker", "args": ["x", 1], "run_name": "r00000"}),
    );
    assert_eq!(status, 409, "{v}");
    // The hosts list their load.
    let (_, hosts) = h.hosts[1].http_json("GET", "/v1/hosts", &Value::Null);
    let names: BTreeSet<&str> = hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["h0", "h1", "h2"]));
    let out = h.hosts[2].rh_ok(&["cluster", "hosts", "cpu"]);
    assert!(
        out.contains("h0") && out.contains("h1") && out.contains("h2"),
        "{out}"
    );
}

#[test]
fn follow_and_cancel_reach_the_host_running_the_run() {
    let h = Hosts::start(2);
    deploy_everywhere(&h);
    let (status, v) = call(
        &h.hosts[0],
        json!({"function": "testkit/spin", "args": [], "run_name": "spinner", "mode": "run"}),
    );
    assert_eq!(status, 200, "{v}");
    for d in &h.hosts {
        wait_status(d, "spinner", &["running"]);
    }
    // Followed from every host: the line it printed before spinning.
    for d in &h.hosts {
        let out = d.rh_ok(&["logs", "cpu", "spinner"]);
        assert!(out.contains("spinning"), "{out}");
    }
    // A follower elsewhere ends when the Run ends.
    let follower = {
        let d = &h.hosts[1];
        let mut c = std::process::Command::new(RH);
        c.args(["logs", "cpu", "spinner", "--follow"])
            .current_dir(d.client())
            .env("RH_WASM_CONFIG", d.client().join("config.toml"));
        c.stdout(std::process::Stdio::piped()).spawn().unwrap()
    };
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let out = h.hosts[2].rh_ok(&["cancel", "cpu", "spinner"]);
    assert!(out.contains("cancelled"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let done = follower.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&done.stdout).contains("spinning"));
    for d in &h.hosts {
        assert_eq!(
            wait_status(d, "spinner", &["cancelled"])["status"],
            "cancelled"
        );
    }
}

#[test]
fn identical_get_or_calls_on_different_hosts_execute_once() {
    let h = Hosts::start(4);
    deploy_everywhere(&h);
    let answers: Vec<Value> = std::thread::scope(|s| {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let d = &h.hosts[i % 3];
                s.spawn(move || {
                    let (status, v) = call(
                        d,
                        json!({"function": "testkit/sleep_ms", "args": [300],
                               "run_name": "once", "mode": "get_or_call"}),
                    );
                    assert_eq!(status, 200, "{v}");
                    v
                })
            })
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for a in &answers {
        assert_eq!(a["status"], "completed", "{a}");
        assert_eq!(a["result"], 300);
    }
    // One execution: one start time everywhere, one "sleeping" line.
    let starts: BTreeSet<String> = h
        .hosts
        .iter()
        .map(|d| {
            config_on(d, "once")["start_time"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(starts.len(), 1, "{starts:?}");
    let out = h.hosts[1].rh_ok(&["logs", "cpu", "once"]);
    assert_eq!(out.matches("sleeping").count(), 1, "{out}");
}

#[test]
fn a_killed_host_leaves_no_run_running_and_queued_work_goes_elsewhere() {
    let mut h = Hosts::start(2);
    deploy_everywhere(&h);
    // Six slots in all; twelve Runs of 4 s: six run, six wait.
    for i in 0..12 {
        let retries = if i % 2 == 0 { 1 } else { 0 };
        let (status, v) = call(
            &h.hosts[i % 3],
            json!({"function": "testkit/sleep_ms", "args": [4000], "run_name": format!("k{i}"),
                   "mode": "run", "retries": retries}),
        );
        assert_eq!(status, 200, "{v}");
    }
    // Wait until host 1 runs some.
    let on_h1 = |d: &Daemon| {
        (0..12)
            .filter(|i| {
                let (_, c) = d.http_json("GET", &format!("/v1/runs/k{i}"), &Value::Null);
                c["status"] == "running"
            })
            .count()
    };
    wait_until(30, "Runs running", || on_h1(&h.hosts[0]) >= 4);
    let killed_at = Instant::now();
    h.hosts[1].kill9();
    // Gone from the hosts within a bounded time.
    wait_until(20, "h1 to be gone", || {
        !h.live(0).contains(&"h1".to_string())
    });
    let gone_after = killed_at.elapsed();
    assert!(gone_after < Duration::from_secs(10), "{gone_after:?}");
    // Every Run ends, once; none left running or waiting.
    let mut ends = BTreeMap::new();
    for i in 0..12 {
        let c = wait_status(&h.hosts[0], &format!("k{i}"), &["completed", "error"]);
        let kind = if c["status"] == "completed" {
            "completed".to_string()
        } else {
            c["error"]["kind"].as_str().unwrap().to_string()
        };
        if i % 2 == 1 {
            assert!(kind == "completed" || kind == "interrupted", "k{i}: {c}");
        } else {
            // Retried: completed, on a live host.
            assert_eq!(kind, "completed", "k{i}: {c}");
        }
        *ends.entry(kind).or_insert(0) += 1;
        // Host 2 agrees.
        let st = c["status"].as_str().unwrap();
        wait_status(&h.hosts[2], &format!("k{i}"), &[st]);
    }
    assert!(
        ends.get("interrupted").copied().unwrap_or(0) >= 1 || {
            // Every Run host 1 had was retried: some carry attempts.
            (0..12).any(|i| !config_on(&h.hosts[0], &format!("k{i}"))["attempts"].is_null())
        },
        "{ends:?}"
    );
    // The dead host comes back and rejoins.
    h.restart(1, 2);
    h.wait_hosts(3);
    let (status, v) = call(
        &h.hosts[1],
        json!({"function": "testkit/add", "args": [2, 3], "run_name": "after"}),
    );
    assert_eq!((status, v["result"].clone()), (200, json!(5)), "{v}");
}

#[test]
fn a_nats_restart_loses_nothing_accepted() {
    let mut h = Hosts::start(4);
    deploy_everywhere(&h);
    let accepted = std::sync::Mutex::new(Vec::new());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let hosts = &h.hosts;
    let nats = &mut h.nats;
    std::thread::scope(|s| {
        for t in 0..4 {
            let (accepted, stop) = (&accepted, &stop);
            s.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let name = format!("n{t}-{i}");
                    let (status, _) = call(
                        &hosts[(t + i) % 3],
                        json!({"function": "testkit/add", "args": [i, 1], "run_name": name,
                               "mode": "run"}),
                    );
                    if status == 200 {
                        accepted.lock().unwrap().push((name, i + 1));
                    }
                    i += 1;
                }
            });
        }
        std::thread::sleep(Duration::from_millis(700));
        nats.restart();
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::SeqCst);
    });
    let accepted = accepted.into_inner().unwrap();
    assert!(accepted.len() > 20, "{}", accepted.len());
    for (name, want) in &accepted {
        let c = wait_status(&h.hosts[0], name, &["completed", "error", "cancelled"]);
        assert_eq!(c["status"], "completed", "{name}: {c}");
        let (_, a) = h.hosts[0].http_json("GET", &format!("/v1/runs/{name}/result"), &Value::Null);
        assert_eq!(a["result"], *want, "{name}");
    }
}

#[test]
fn artifacts_deploys_and_cached_calls_hold_cluster_wide() {
    let h = Hosts::start(4);
    // Deployed through host 0 and called at once through host 2.
    h.hosts[0].deploy("testkit");
    let (status, v) = call(
        &h.hosts[2],
        json!({"function": "testkit/add", "args": [40, 2], "run_name": "deployed"}),
    );
    assert_eq!((status, v["result"].clone()), (200, json!(42)), "{v}");
    // Saved by a Run on one host, loaded by Runs on every host.
    let (status, v) = call(
        &h.hosts[0],
        json!({"function": "testkit/save_art", "args": ["model", "weights-1"], "run_name": "train"}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "completed", "{v}");
    for (i, d) in h.hosts.iter().enumerate() {
        let (status, v) = call(
            d,
            json!({"function": "testkit/load_art", "args": ["model"], "run_name": format!("use{i}")}),
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["result"], "weights-1", "{v}");
        let c = wait_status(d, &format!("use{i}"), &["completed"]);
        assert_eq!(c["upstream_artifacts"][0]["name"], "model", "{c}");
    }
    // Lineage from any host: the artifact, its producer, its consumers.
    for d in &h.hosts {
        wait_until(30, "lineage everywhere", || {
            let (status, l) = d.http_json("GET", "/v1/lineage/model", &Value::Null);
            let text = l.to_string();
            status == 200
                && text.contains("train")
                && (0..3).all(|i| text.contains(&format!("use{i}")))
        });
    }
    // Identical cached calls sent to different hosts at once execute once.
    let answers: Vec<Value> = std::thread::scope(|s| {
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let d = &h.hosts[i % 3];
                s.spawn(move || {
                    let (status, v) = call(
                        d,
                        json!({"function": "testkit/sleep_ms", "args": [400], "cache": true}),
                    );
                    assert_eq!(status, 200, "{v}");
                    v
                })
            })
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut executed = 0;
    for a in &answers {
        assert_eq!(a["status"], "completed", "{a}");
        let name = a["run_name"].as_str().unwrap();
        let c = wait_status(&h.hosts[0], name, &["completed"]);
        if c["cache_hit"].is_null() {
            executed += 1;
        }
    }
    assert_eq!(executed, 1, "{answers:?}");
}

#[test]
fn users_and_shares_hold_on_every_host() {
    let nats_h = Hosts::start_users(2, &[("alice", false), ("bob", false)]);
    let h = &nats_h;
    // Alice deploys through host 0, calls through host 1.
    let deploy = h.hosts[0].rh_as("alice", &["deploy", &wasm("testkit")]);
    assert!(
        deploy.status.success(),
        "{}",
        String::from_utf8_lossy(&deploy.stderr)
    );
    wait_until(30, "testkit on host 1", || {
        let (_, v) = h.hosts[1].http_as("alice", "GET", "/v1/functions", &Value::Null);
        v.to_string().contains("testkit")
    });
    let (status, v) = h.hosts[1].http_as(
        "alice",
        "POST",
        "/v1/calls",
        &json!({"function": "testkit/add", "args": [1, 2], "run_name": "alices"}),
    );
    assert_eq!((status, v["result"].clone()), (200, json!(3)), "{v}");
    // Bob sees nothing of it on any host, until alice shares it on one.
    for d in &h.hosts {
        wait_status_as(d, "alice", "alices");
        let (status, _) = d.http_as("bob", "GET", "/v1/runs/alices", &Value::Null);
        assert_eq!(status, 404);
    }
    let (status, v) = h.hosts[2].http_as(
        "alice",
        "POST",
        "/v1/shares",
        &json!({"name": "alices", "user": "bob", "access": "read"}),
    );
    assert_eq!(status, 200, "{v}");
    for d in &h.hosts {
        wait_until(30, "the share on every host", || {
            d.http_as("bob", "GET", "/v1/runs/alices", &Value::Null).0 == 200
        });
    }
}

fn wait_status_as(d: &Daemon, user: &str, run: &str) {
    wait_until(30, &format!("{run} on {}", d.addr), || {
        let (status, v) = d.http_as(user, "GET", &format!("/v1/runs/{run}"), &Value::Null);
        status == 200 && v["status"] == "completed"
    });
}

#[test]
fn exec_through_one_host_is_answered_by_every_host() {
    let h = Hosts::start(2);
    // The command component goes up through host 2 (by digest, to every
    // host) and runs wherever the queue puts it; the CLI streams it.
    let wc = wasm("wordcount");
    let out = h.hosts[2].rh_ok(&[
        "exec",
        "--cluster",
        "cpu",
        "--run-name",
        "rwc",
        "--",
        &wc,
        "write",
        "a.txt",
        "one",
        "two",
        "--",
        &wc,
        "count",
        "a.txt",
    ]);
    assert_eq!(out, "wrote 2 words to a.txt\na.txt: 2 words\n[0,0]\n");
    for d in &h.hosts {
        let c = wait_status(d, "rwc", &["completed"]);
        assert_eq!(c["run_type"], "command");
        assert_eq!(c["cmds"][1]["exit_code"], 0, "{c}");
        let out = d.rh_ok(&["logs", "cpu", "rwc"]);
        assert_eq!(
            out, "wrote 2 words to a.txt\na.txt: 2 words\n",
            "{}",
            d.addr
        );
    }
    // A bad request is refused by the host asked, before anything is queued.
    let (status, v) = h.hosts[1].http_json(
        "POST",
        "/v1/calls",
        &json!({"function": "nosuch/fn", "args": [], "run_name": "never"}),
    );
    assert_eq!(status, 404, "{v}");
    let (status, v) = h.hosts[0].http_json(
        "POST",
        "/v1/calls",
        &json!({"function": "testkit/add", "args": [1], "run_name": "bad name!"}),
    );
    assert!(status == 400 || status == 404, "{status} {v}");
    for d in &h.hosts {
        let (status, _) = d.http_json("GET", "/v1/runs/never", &Value::Null);
        assert_eq!(status, 404);
    }
}
