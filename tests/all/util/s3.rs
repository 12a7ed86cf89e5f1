//! [`S3`]: a real S3-compatible server for one test: moto's standalone
//! server (`python3 -m moto.server`, from PyPI) on a free loopback port.
//! `make test` (which `.ci/run` runs) installs it. moto because it installs
//! in seconds from PyPI with no build step, keeps objects in memory
//! (nothing left on disk after a test), and implements what is used here:
//! signed PUT/GET/HEAD/DELETE, listing and multipart uploads.

use super::{Daemon, RH, tmp, tokio, wait_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct S3 {
    child: Child,
    pub endpoint: String,
    port: u16,
    /// Holds `team.key`, the key of the team whose store this is.
    keys: tempfile::TempDir,
}

/// The secret of the team sharing the store in these tests.
pub const TEAM_KEY: &[u8; 32] = b"the team's secret, 32 bytes long";

impl S3 {
    /// Start a server with one bucket, `runs`.
    pub fn start() -> S3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting python3 -m moto.server ({e}): install it with \
                     `python3 -m pip install 'moto[server]'` (make test does)"
                )
            });
        let s3 = S3 {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            keys: tmp(),
        };
        std::fs::write(s3.team_key(), TEAM_KEY).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while s3.raw("PUT", "/runs", b"").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "moto did not come up: `python3 -m pip install 'moto[server]'` (make test does)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s3
    }

    /// The file holding the team's key.
    pub fn team_key(&self) -> std::path::PathBuf {
        self.keys.path().join("team.key")
    }

    /// An unsigned request (moto accepts them); status and body.
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, Vec::new());
        };
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        if s.write_all(head.as_bytes()).is_err() || s.write_all(body).is_err() {
            return (0, Vec::new());
        }
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let text = String::from_utf8_lossy(&resp);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let at = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .unwrap_or(resp.len());
        (status, resp[at..].to_vec())
    }

    /// A client signing as the CLI does, to change what is stored.
    fn client(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("runs")
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test-key")
            .with_secret_access_key("test-secret")
            .build()
            .unwrap()
    }

    /// Replace an object's bytes.
    pub fn put(&self, key: &str, bytes: &'static [u8]) {
        use object_store::ObjectStore;
        let c = self.client();
        tokio().block_on(c.put(&key.into(), bytes.into())).unwrap();
    }

    /// Write an object, as anyone with write access to the bucket can.
    pub fn put_vec(&self, key: &str, bytes: Vec<u8>) {
        use object_store::ObjectStore;
        let c = self.client();
        tokio().block_on(c.put(&key.into(), bytes.into())).unwrap();
    }

    /// An object's bytes.
    pub fn get(&self, key: &str) -> Vec<u8> {
        use object_store::ObjectStore;
        let c = self.client();
        let rt = tokio();
        rt.block_on(async { c.get(&key.into()).await.unwrap().bytes().await.unwrap() })
            .to_vec()
    }

    /// Delete an object.
    pub fn delete(&self, key: &str) {
        use object_store::ObjectStore;
        let c = self.client();
        tokio().block_on(c.delete(&key.into())).unwrap();
    }

    /// The keys under `prefix` in the bucket.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let (status, body) = self.raw("GET", &format!("/runs?list-type=2&prefix={prefix}"), b"");
        assert_eq!(status, 200);
        String::from_utf8_lossy(&body)
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CLI with credentials in the environment, as a user would set them.
pub fn cli(dir: &Path, config: Option<&Path>, args: &[&str]) -> Command {
    let mut c = Command::new(RH);
    c.args(args)
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "test-key")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("RUST_BACKTRACE");
    if let Some(cfg) = config {
        c.env("RH_WASM_CONFIG", cfg);
    }
    c
}

pub fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

pub fn shared_daemon(s3: &S3) -> Daemon {
    let d = Daemon::start_with(&[
        "--shared-store",
        "s3://runs/team",
        "--endpoint",
        &s3.endpoint,
        "--shared-store-key",
        s3.team_key().to_str().unwrap(),
    ]);
    d.deploy("summer");
    d
}

/// Wait until a Run named `run` has been published.
pub fn published(s3: &S3, run: &str) -> String {
    let suffix = format!("/{run}/manifest.json");
    let mut found = None;
    wait_until(30, &format!("{run} to be published"), || {
        found = s3
            .keys("team/cache/")
            .into_iter()
            .find(|k| k.ends_with(&suffix));
        found.is_some()
    });
    let key = found.unwrap();
    key.strip_suffix("/manifest.json").unwrap().to_string()
}
