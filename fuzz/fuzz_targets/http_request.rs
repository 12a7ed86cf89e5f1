//! The daemon's request handling: arbitrary bytes sent as an HTTP request
//! to a daemon running in this process (so its code is covered) always get
//! a well-formed answer or a closed connection, never a 5xx that is not a
//! Run's own error, and the daemon keeps answering.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

/// An administrator's token, and a plain user's: the requests built from
/// the input use one or the other, so both the routes and the access
/// checks are reached.
const TOKEN: &str = "fuzz-admin-token";
const USER_TOKEN: &str = "fuzz-user-token";

fn daemon() -> std::net::SocketAddr {
    static ADDR: OnceLock<std::net::SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let root = tempfile::tempdir().unwrap().keep();
        std::thread::spawn(move || {
            let tk = tokio::runtime::Runtime::new().unwrap();
            let users = [("admin", TOKEN, true), ("user", USER_TOKEN, false)];
            tk.block_on(rh_wasm::serve_for_fuzzing(port, root, &users))
                .unwrap();
        });
        for _ in 0..500 {
            if TcpStream::connect(port).is_ok() {
                return port;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the daemon did not start");
    })
}

fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let addr = daemon();
    // Half the inputs get a valid request line and token, so the fuzzer
    // reaches the routes rather than only the HTTP parser.
    let mut req = Vec::new();
    if let Some(b) = data.first().filter(|b| *b % 2 == 0) {
        let token = if b % 4 == 0 { TOKEN } else { USER_TOKEN };
        let text = String::from_utf8_lossy(&data[1..]);
        let (head, body) = text.split_once('\n').unwrap_or((&text, ""));
        let mut parts = head.splitn(2, ' ');
        let method = match parts.next().unwrap_or("").len() % 3 {
            0 => "GET",
            1 => "POST",
            _ => "DELETE",
        };
        let path: String = parts
            .next()
            .unwrap_or("/v1/health")
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .collect();
        write!(
            req,
            "{method} /{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            path.trim_start_matches('/'),
            body.len()
        )
        .unwrap();
    } else {
        req.extend_from_slice(data);
    }
    let resp = exchange(addr, &req);
    if !resp.is_empty() {
        let head = String::from_utf8_lossy(&resp[..resp.len().min(64)]).to_string();
        assert!(
            head.starts_with("HTTP/1.1 "),
            "not an HTTP answer: {head:?}"
        );
        let status: u16 = head[9..12].parse().expect("a status code");
        assert!(
            status < 500,
            "server error {status} for {:?}",
            String::from_utf8_lossy(&req)
        );
    }
    // Still up.
    let health = exchange(
        addr,
        format!("GET /v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert!(
        health.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&health)
    );
});
