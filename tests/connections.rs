//! Connection limits, tried as an attacker would over real sockets: the built server runs
//! as its own process on a spare loopback port with short timeouts and a small
//! connection cap. Every socket here is bounded in count and time and closed at the end.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{csrf_from, email, encode, redis_url, spare_port, test_dir, unique, PASSWORD};

/// The `latchkey` binary on its own port, killed when dropped.
struct Server {
    port: u16,
    child: Child,
}

impl Server {
    /// Starts the server with `LATCHKEY_`/`ROCKET_` settings added to the test defaults.
    fn start(settings: &[(&str, &str)]) -> Server {
        let port = spare_port();
        let dir = test_dir();
        let log = std::fs::File::create(dir.join("server.log")).expect("server log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_LOG_LEVEL", "off")
            .env("RUST_LOG", "warn")
            .env("LATCHKEY_REDIS_URL", redis_url())
            .env("LATCHKEY_KEY_PREFIX", unique("lkc"))
            .env(
                "LATCHKEY_DATABASE_URL",
                format!("sqlite://{}", dir.join("accounts.db").display()),
            )
            .env("LATCHKEY_MAIL_OUTBOX", dir.join("outbox"))
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in settings {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("the latchkey binary starts");
        let server = Server { port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.try_get("/health").map(|r| r.status) != Some(200) {
            assert!(Instant::now() < deadline, "latchkey did not answer /health");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.set_write_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s
    }

    /// One request on a fresh connection (closed after), or None when refused.
    fn try_get(&self, path: &str) -> Option<Reply> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).ok()?;
        read_reply(&mut s)
    }

    /// One request from the loopback address `from` (127.0.0.0/8 is all local).
    fn exchange_from(&self, from: &str, request: Request) -> Reply {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let local: SocketAddr = format!("{from}:0").parse().expect("address");
        socket.bind(&local.into()).expect("bind the source address");
        let server: SocketAddr = ([127, 0, 0, 1], self.port).into();
        socket.connect(&server.into()).expect("connect");
        let mut s: TcpStream = socket.into();
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            request.0, request.1
        );
        for (k, v) in request.2 {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            request.3.len()
        ));
        s.write_all(head.as_bytes()).expect("head");
        s.write_all(request.3.as_bytes()).expect("body");
        read_reply(&mut s).expect("an answer")
    }

    /// Sends SIGTERM; the exit status, if the process ends within `limit`.
    fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.map(|s| s.success()).unwrap_or(false), "kill -TERM");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// A normal request must still work.
    fn assert_healthy(&self) {
        let reply = self
            .try_get("/health")
            .expect("a normal request is answered");
        assert_eq!(reply.status, 200, "a normal request works: {}", reply.head);
    }

    /// Resident memory of the server process, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Method, path, extra headers and body of a request.
struct Request<'a>(&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    /// The value of the cookie `name` that the response sets.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            let (cookie, value) = v.trim().split(';').next()?.split_once('=')?;
            (k.eq_ignore_ascii_case("set-cookie") && cookie == name).then(|| value.to_string())
        })
    }
}

/// Reads one response (head and a `Content-Length` body) from `s`.
fn read_reply(s: &mut TcpStream) -> Option<Reply> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    Some(Reply { status, head, body })
}

/// How the server ended a connection we keep quiet on.
#[derive(Debug)]
struct Closed {
    after: Duration,
    /// What the server wrote before closing (an error answer, if any).
    said: String,
}

/// Waits up to `limit` for the server to close `s` (end of stream or reset); None if it
/// is still open then. Bytes the server writes meanwhile are kept.
fn wait_closed(s: &mut TcpStream, since: Instant, limit: Duration) -> Option<Closed> {
    let mut said = Vec::new();
    let mut chunk = [0u8; 4096];
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    while since.elapsed() < limit {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => said.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    (since.elapsed() < limit).then(|| Closed {
        after: since.elapsed(),
        said: String::from_utf8_lossy(&said).to_string(),
    })
}

#[test]
fn an_idle_connection_is_closed_after_header_read_timeout() {
    let server = Server::start(&[
        ("LATCHKEY_HEADER_READ_TIMEOUT", "2"),
        ("ROCKET_KEEP_ALIVE", "30"),
    ]);
    let start = Instant::now();
    let mut idle = server.connect();
    let closed = wait_closed(&mut idle, start, Duration::from_secs(6))
        .expect("a connection that sends nothing is closed");
    assert!(
        closed.after >= Duration::from_secs(1),
        "closed by the header timeout, not at once: {closed:?}"
    );
    server.assert_healthy();
}

#[test]
fn a_slowloris_connection_is_closed() {
    let server = Server::start(&[
        ("LATCHKEY_HEADER_READ_TIMEOUT", "2"),
        ("ROCKET_KEEP_ALIVE", "30"),
    ]);
    let start = Instant::now();
    let mut slow = server.connect();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("request line");
    let mut closed = None;
    for i in 0..16 {
        // One more header line every half second, never the blank line that ends them.
        if slow
            .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .is_err()
        {
            closed = wait_closed(&mut slow, start, Duration::from_secs(8));
            break;
        }
        if i == 2 {
            server.assert_healthy();
        }
        closed = wait_closed(&mut slow, Instant::now(), Duration::from_millis(500));
        if closed.is_some() {
            break;
        }
    }
    let after = start.elapsed();
    assert!(
        closed.is_some() && after < Duration::from_secs(6),
        "a header block trickled in is cut off after the header timeout (open after {after:?})"
    );
    server.assert_healthy();
}

#[test]
fn a_stalled_request_body_is_dropped() {
    let server = Server::start(&[
        ("LATCHKEY_HEADER_READ_TIMEOUT", "2"),
        ("ROCKET_KEEP_ALIVE", "30"),
    ]);
    let start = Instant::now();
    let mut stalled = server.connect();
    // A complete head promising 1000 bytes of form, then 10 bytes and silence.
    stalled
        .write_all(
            b"POST /api/v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 1000\r\n\r\ngrant_type",
        )
        .expect("request");
    let closed = wait_closed(&mut stalled, start, Duration::from_secs(6))
        .expect("a body that stops arriving is dropped after the header timeout");
    assert!(closed.after >= Duration::from_secs(1), "{closed:?}");
    server.assert_healthy();
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_keep_alive() {
    let server = Server::start(&[
        ("LATCHKEY_HEADER_READ_TIMEOUT", "10"),
        ("ROCKET_KEEP_ALIVE", "1"),
    ]);
    let mut conn = server.connect();
    for _ in 0..2 {
        // Two requests on one connection: keep-alive itself still works.
        conn.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("request");
        let reply = read_reply(&mut conn).expect("an answer on the kept-alive connection");
        assert_eq!(reply.status, 200);
        std::thread::sleep(Duration::from_millis(300));
    }
    let idle_since = Instant::now();
    let closed = wait_closed(&mut conn, idle_since, Duration::from_secs(5)).expect(
        "an idle keep-alive connection is closed after keep_alive, well before the header timeout",
    );
    assert!(closed.after >= Duration::from_millis(400), "{closed:?}");
    server.assert_healthy();
}

/// Sends a header block of `size` bytes that never ends; stops early when the server
/// refuses it (the write fails).
fn send_endless_header(s: &mut TcpStream, size: usize) -> usize {
    let line = format!("X-Fill: {}\r\n", "a".repeat(1000));
    let mut sent = 0;
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .is_err()
    {
        return 0;
    }
    while sent < size {
        if s.write_all(line.as_bytes()).is_err() {
            break;
        }
        sent += line.len();
    }
    sent
}

#[test]
fn an_oversized_header_block_is_refused_without_growing_memory() {
    const SOCKETS: usize = 64;
    let server = Server::start(&[
        ("LATCHKEY_HEADER_READ_TIMEOUT", "10"),
        ("LATCHKEY_MAX_CONNECTIONS", "256"),
    ]);
    let before = server.rss_kib();
    let mut socks: Vec<TcpStream> = (0..SOCKETS).map(|_| server.connect()).collect();
    let threads: Vec<_> = socks
        .iter()
        .map(|s| {
            let mut s = s.try_clone().expect("clone socket");
            std::thread::spawn(move || send_endless_header(&mut s, 400 * 1024))
        })
        .collect();
    let sent: Vec<usize> = threads
        .into_iter()
        .map(|t| t.join().expect("sender"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let grown = server.rss_kib().saturating_sub(before);
    let start = Instant::now();
    for (i, s) in socks.iter_mut().enumerate() {
        let closed = wait_closed(s, start, Duration::from_secs(3));
        assert!(
            closed.is_some(),
            "socket {i} (sent {} bytes of header) is refused well before the header timeout",
            sent[i]
        );
        let said = closed.map(|c| c.said).unwrap_or_default();
        assert!(
            said.is_empty() || said.starts_with("HTTP/1.1 431"),
            "{said}"
        );
    }
    assert!(
        grown < 8 * 1024,
        "{SOCKETS} sockets of 400 KB headers grew the server by {grown} KiB"
    );
    drop(socks);
    server.assert_healthy();
}

#[test]
fn connections_past_max_connections_are_refused_at_once() {
    const CAP: usize = 8;
    let server = Server::start(&[
        ("LATCHKEY_HEADER_READ_TIMEOUT", "30"),
        ("ROCKET_KEEP_ALIVE", "30"),
        ("LATCHKEY_MAX_CONNECTIONS", "8"),
    ]);
    // CAP kept-alive connections, each proven served: they hold every slot.
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut s = server.connect();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("request");
        assert_eq!(read_reply(&mut s).map(|r| r.status), Some(200));
        held.push(s);
    }
    for i in 0..4 {
        let start = Instant::now();
        let mut extra = server.connect();
        let _ = extra.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        let closed = wait_closed(&mut extra, start, Duration::from_secs(2));
        let closed = closed.unwrap_or_else(|| panic!("extra connection {i} is refused at once"));
        assert!(
            closed.said.is_empty() || closed.said.starts_with("HTTP/1.1 503"),
            "extra connection {i} is not served: {:?}",
            closed.said
        );
    }
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.try_get("/health").map(|r| r.status) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "a normal request works again once the held connections close"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `n` tiny cookies, `c0=v; c1=v; …`.
fn cookie_flood(n: usize) -> String {
    (0..n)
        .map(|i| format!("c{i}=v"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn a_header_full_of_cookies_is_refused_past_the_header_limit() {
    let server = Server::start(&[("LATCHKEY_HEADER_READ_TIMEOUT", "10")]);
    // 380 KB of cookies (under hyper's own 400 KB buffer): refused, not parsed.
    let cookies = cookie_flood(40_000);
    assert!(cookies.len() > 380_000);
    let mut s = server.connect();
    let req = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookies}\r\n\r\n");
    let start = Instant::now();
    let _ = s.write_all(req.as_bytes());
    let closed = wait_closed(&mut s, start, Duration::from_secs(3))
        .expect("a 380 KB Cookie header is refused");
    assert!(
        closed.said.is_empty() || closed.said.starts_with("HTTP/1.1 431"),
        "{}",
        closed.said
    );
    // Just under the limit (about 30 KiB of tiny cookies) is still answered.
    let cookies = cookie_flood(3_400);
    assert!(cookies.len() > 28 * 1024 && cookies.len() < 31 * 1024);
    let mut s = server.connect();
    let req = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookies}\r\n\r\n");
    s.write_all(req.as_bytes()).expect("request");
    assert_eq!(read_reply(&mut s).map(|r| r.status), Some(200));
    server.assert_healthy();
}

#[test]
fn the_client_address_is_the_socket_peer() {
    let server = Server::start(&[]);
    let form = server.exchange_from("127.0.0.2", Request("GET", "/register", &[], ""));
    let csrf = form.set_cookie("latchkey_csrf").expect("the CSRF cookie");
    let (user, form_type) = (email(), "application/x-www-form-urlencoded");
    let fields = [("email", user.as_str()), ("password", PASSWORD)];
    let token = csrf_from(&form.body);
    let mut signup = fields.to_vec();
    signup.push(("csrf_token", &token));
    let cookie = format!("latchkey_csrf={csrf}");
    let headers = [("Cookie", cookie.as_str()), ("Content-Type", form_type)];
    let made = server.exchange_from(
        "127.0.0.2",
        Request("POST", "/register", &headers, &encode(&signup)),
    );
    assert_eq!(made.status, 303, "registered: {}", made.body);

    let grant = encode(&[
        ("grant_type", "password"),
        ("username", &user),
        ("password", PASSWORD),
    ]);
    let headers = [("Content-Type", form_type)];
    let tokens = server.exchange_from(
        "127.0.0.3",
        Request("POST", "/api/v1/token", &headers, &grant),
    );
    let tokens: serde_json::Value = serde_json::from_str(&tokens.body).expect("token JSON");
    let bearer = format!(
        "Bearer {}",
        tokens["access_token"].as_str().expect("access token")
    );
    let headers = [("Authorization", bearer.as_str())];
    let list = server.exchange_from(
        "127.0.0.4",
        Request("GET", "/api/v1/sessions", &headers, ""),
    );
    let list: Vec<serde_json::Value> = serde_json::from_str(&list.body).expect("sessions JSON");
    let mut ips: Vec<(&str, &str)> = list
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap_or(""),
                s["ip"].as_str().unwrap_or(""),
            )
        })
        .collect();
    ips.sort();
    // Each session records the address its sign-in came from: the peer of that socket.
    assert_eq!(ips, [("api", "127.0.0.3"), ("browser", "127.0.0.2")]);
}

#[test]
fn sigterm_ends_the_server_gracefully() {
    let mut server = Server::start(&[
        ("LATCHKEY_HEADER_READ_TIMEOUT", "30"),
        ("ROCKET_KEEP_ALIVE", "30"),
    ]);
    let mut kept = server.connect();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("request");
    assert_eq!(read_reply(&mut kept).map(|r| r.status), Some(200));
    let status = server
        .terminate(Duration::from_secs(10))
        .expect("the server exits within grace + mercy");
    assert!(status.success(), "a clean exit: {status}");
    assert!(
        wait_closed(&mut kept, Instant::now(), Duration::from_secs(1)).is_some(),
        "the kept-alive connection was closed"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "no longer listening"
    );
}
