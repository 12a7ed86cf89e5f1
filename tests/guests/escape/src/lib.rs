//! A guest that tries to get out of its sandbox: host files, other Runs'
//! folders, the environment, the network, the host's stack. Each function
//! reports what it got, so the tests can assert that every attempt failed
//! inside the guest.

use std::hint::black_box;
use std::io::Write;
use std::net::ToSocketAddrs;

/// Reads a file; its text, or the error.
#[rh_guest::function]
fn read_path(path: String) -> Result<String, String> {
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// Lists a folder; its entries, or the error.
#[rh_guest::function]
fn list_dir(path: String) -> Result<Vec<String>, String> {
    let rd = std::fs::read_dir(&path).map_err(|e| format!("cannot list {path}: {e}"))?;
    Ok(rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect())
}

/// Writes a file, or says why it could not.
#[rh_guest::function]
fn write_path(path: String, text: String) -> Result<(), String> {
    std::fs::write(&path, text).map_err(|e| format!("cannot write {path}: {e}"))
}

/// Every environment variable and argument the guest can see.
#[rh_guest::function]
fn environment() -> Vec<String> {
    std::env::vars()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(std::env::args())
        .collect()
}

/// Opens a TCP connection to `addr`, or says why it could not.
#[rh_guest::function]
fn connect(addr: String) -> Result<(), String> {
    let mut s =
        std::net::TcpStream::connect(&addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.write_all(b"GET /v1/runs HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("connected to {addr} but cannot write: {e}"))
}

/// Binds a UDP socket, or says why it could not.
#[rh_guest::function]
fn udp() -> Result<(), String> {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .map(|_| ())
        .map_err(|e| format!("cannot bind: {e}"))
}

/// Looks a host name up, or says why it could not.
#[rh_guest::function]
fn resolve(host: String) -> Result<Vec<String>, String> {
    (host.as_str(), 80)
        .to_socket_addrs()
        .map(|a| a.map(|a| a.to_string()).collect())
        .map_err(|e| format!("cannot resolve {host}: {e}"))
}

/// Recurses `depth` deep, each frame keeping some stack: past the limit
/// the guest traps; the host's own stack is never touched.
#[rh_guest::function]
fn recurse(depth: u64) -> u64 {
    fn down(n: u64) -> u64 {
        let pad = black_box([n; 16]);
        if n == 0 {
            return pad[3];
        }
        black_box(down(n - 1)) + pad[7] % 2
    }
    down(depth)
}

/// Opens `count` handles on stdout and keeps every one: each is an entry in
/// the host's resource table. Returns how many it got (it traps when the
/// host refuses one).
#[rh_guest::function]
fn handles(count: u64) -> u64 {
    let mut kept = 0;
    for _ in 0..count {
        std::mem::forget(wasip2::cli::stdout::get_stdout());
        kept += 1;
    }
    kept
}
