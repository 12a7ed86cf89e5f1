//! [`Daemon`]: a real `rh-wasm serve` on a real port (port 0, its own root
//! in a temp dir), driven through the real CLI and through raw HTTP. Its
//! log (stderr) goes to `daemon.log` in the client's folder, so that a test
//! can wait for what the daemon reports.

use super::{RH, failed, guest, succeeded, tmp};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const TOKEN: &str = "s3cret-token-for-tests";

pub struct Daemon {
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The daemon's `--root`.
    pub root: PathBuf,
    /// The client's folder ([`Daemon::client`]).
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// A daemon with a token, reached as cluster `cpu`.
    pub fn start() -> Daemon {
        Self::start_with(&[])
    }

    /// [`Daemon::start`] with more options for `serve`.
    pub fn start_with(extra: &[&str]) -> Daemon {
        Self::start_in(None, extra)
    }

    /// A daemon whose root is `root` (on a filesystem a test chose).
    pub fn start_on(root: &Path) -> Daemon {
        Self::start_in(Some(root.to_path_buf()), &[])
    }

    fn start_in(root: Option<PathBuf>, extra: &[&str]) -> Daemon {
        let dir = tmp();
        let root = root.unwrap_or_else(|| dir.path().join("root"));
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        let (child, addr) = spawn(
            dir.path(),
            &root,
            &[&["--token-file", "token"], extra].concat(),
        );
        let d = Daemon {
            child,
            addr,
            root,
            dir,
        };
        d.rh_ok(&[
            "cluster",
            "add",
            "cpu",
            &format!("http://{}", d.addr),
            "--token-file",
            "token",
        ]);
        d
    }

    /// A daemon with users (`--users users.toml`), each made with `rh-wasm
    /// users add` (`(name, admin)`), each with a cluster `cpu-NAME` in the
    /// client's config that uses their token file `NAME.token`.
    pub fn start_users(users: &[(&str, bool)]) -> Daemon {
        Self::start_users_with(users, None, &[])
    }

    /// [`Daemon::start_users`] with the users file and token files of
    /// `from` (users made there before, shared by several daemons), and
    /// more options for `serve`.
    pub fn start_users_with(users: &[(&str, bool)], from: Option<&Path>, extra: &[&str]) -> Daemon {
        let dir = tmp();
        let root = dir.path().join("root");
        match from {
            Some(src) => {
                for f in std::fs::read_dir(src).unwrap().flatten() {
                    std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
                }
            }
            None => make_users(dir.path(), users),
        }
        let (child, addr) = spawn(
            dir.path(),
            &root,
            &[&["--users", "users.toml"], extra].concat(),
        );
        let d = Daemon {
            child,
            addr,
            root,
            dir,
        };
        for (name, _) in users {
            d.rh_ok(&[
                "cluster",
                "add",
                &format!("cpu-{name}"),
                &format!("http://{}", d.addr),
                "--token-file",
                &format!("{name}.token"),
            ]);
        }
        d
    }

    /// A user's token (of a daemon from [`Daemon::start_users`]).
    pub fn user_token(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.token")))
            .unwrap()
            .trim()
            .to_string()
    }

    /// A request as a user; the status code and the body as JSON (or as a
    /// string when it is not JSON).
    pub fn http_as(
        &self,
        user: &str,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.http_value(method, path, &self.user_token(user), body)
    }

    /// A request with `token`; the status and the body as JSON (or as a
    /// string when it is not JSON).
    pub fn http_value(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, text) = self.http(method, path, Some(token), body.as_bytes());
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, v)
    }

    /// Start again on the same root with `extra` options for `serve`,
    /// reached as cluster `cpu` at its new address.
    pub fn restart_with(&mut self, extra: &[&str]) {
        let (child, addr) = spawn(
            self.dir.path(),
            &self.root,
            &[&["--token-file", "token"], extra].concat(),
        );
        self.child = child;
        self.addr = addr;
        self.rh_ok(&["cluster", "remove", "cpu"]);
        self.rh_ok(&[
            "cluster",
            "add",
            "cpu",
            &format!("http://{}", self.addr),
            "--token-file",
            "token",
        ]);
    }

    /// Start again on the same root (after a kill or a stop).
    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    /// An authorized request whose answer must be 200 with a JSON body.
    pub fn json(&self, method: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, resp) = self.http(method, path, Some(TOKEN), body.as_bytes());
        assert_eq!(status, 200, "{method} {path}: {resp}");
        serde_json::from_str(&resp).unwrap()
    }

    /// The bearer token the daemon was started with.
    pub fn token(&self) -> String {
        TOKEN.to_string()
    }

    /// The client's folder: its config (clusters `cpu`, `cpu-USER`), token
    /// files and the daemon's log.
    pub fn client(&self) -> &Path {
        self.dir.path()
    }

    /// What the daemon has logged so far (at `RUST_LOG=warn`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// The CLI in the client's folder, with its config.
    pub fn rh(&self, args: &[&str]) -> Output {
        Command::new(RH)
            .args(args)
            .current_dir(self.dir.path())
            .env("RH_WASM_CONFIG", self.dir.path().join("config.toml"))
            .output()
            .unwrap()
    }

    /// [`Daemon::rh`], which must succeed; its stdout.
    pub fn rh_ok(&self, args: &[&str]) -> String {
        succeeded(self.rh(args), &format!("rh-wasm {args:?}"))
    }

    /// [`Daemon::rh`], which must exit with `code`; its stderr.
    pub fn rh_err(&self, args: &[&str], code: i32) -> String {
        failed(self.rh(args), code, &format!("rh-wasm {args:?}"))
    }

    /// `rh-wasm ARGS --cluster cpu-USER` (a daemon from
    /// [`Daemon::start_users`]), however it ends.
    pub fn rh_as(&self, user: &str, args: &[&str]) -> Output {
        let cluster = format!("cpu-{user}");
        let mut a = args.to_vec();
        a.extend_from_slice(&["--cluster", &cluster]);
        self.rh(&a)
    }

    /// Deploy a guest on cluster `cpu` under its own name.
    pub fn deploy(&self, guest_name: &str) {
        let p = guest(guest_name);
        self.rh_ok(&["deploy", p.to_str().unwrap(), "--cluster", "cpu"]);
    }

    /// A file of a Run of the daemon.
    pub fn run_file(&self, run: &str, file: &str) -> String {
        let p = self.root.join("logs").join(run).join(file);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// A Run's stdout so far: empty while its guest has not begun.
    pub fn stdout(&self, run: &str) -> String {
        std::fs::read_to_string(self.root.join("logs").join(run).join("stdout")).unwrap_or_default()
    }

    /// A Run's config.json on the daemon.
    pub fn config(&self, run: &str) -> serde_json::Value {
        let p = self.root.join("logs").join(run).join("config.json");
        serde_json::from_slice(
            &std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap()
    }

    /// A raw HTTP/1.1 request; the status code and body.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        let _ = s.write_all(body);
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let text = String::from_utf8_lossy(&resp).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Make `users` (`(name, admin)`) in `dir`: `users.toml` and a token file
/// `NAME.token` each.
pub fn make_users(dir: &Path, users: &[(&str, bool)]) {
    for (name, admin) in users {
        let token = format!("{name}.token");
        let mut args = vec!["users", "add", "users.toml", name, "--token-file", &token];
        if *admin {
            args.push("--admin");
        }
        super::rh_ok(dir, &args);
    }
}

fn spawn(dir: &Path, root: &Path, extra: &[&str]) -> (Child, String) {
    // Appended to, so that a restart keeps what the first run logged.
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .unwrap();
    let mut child = Command::new(RH)
        .args(["serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(root)
        .args(extra)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        // The credentials a daemon with a shared store would be given.
        .env("AWS_ACCESS_KEY_ID", "test-key")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, addr)
}
