//! Connection limits, tried as an attacker would over real sockets: the built server runs
//! as its own process (`TestApp::spawn_server`) on a spare loopback port with short
//! timeouts and a small connection cap. Every socket here is bounded in count and time
//! and closed at the end.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{csrf_from, email, encode, read_reply, AppProcess, Reply, TestApp, PASSWORD};

/// How long a write may block on a socket the server is expected to cut off.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(5);

/// Method, path, extra headers and body of a request.
struct Request<'a>(&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

/// One request to `server` from the loopback address `from` (127.0.0.0/8 is all local).
fn exchange_from(server: &AppProcess, from: &str, request: Request) -> Reply {
    server.request_from(from, request.0, request.1, request.2, request.3)
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
    let server = TestApp::new()
        .set("header_read_timeout", 2)
        .set("keep_alive", 30)
        .spawn_server();
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
    let server = TestApp::new()
        .set("header_read_timeout", 2)
        .set("keep_alive", 30)
        .spawn_server();
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
    let server = TestApp::new()
        .set("header_read_timeout", 2)
        .set("keep_alive", 30)
        .spawn_server();
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

/// Issue 22, item 2: `header_read_timeout` bounds each gap between body bytes, not the
/// whole body, so one byte every 9 s held a connection for days (and `max_connections`
/// such sockets refused everyone). The body has a deadline of its own in all
/// (`body_read_timeout`): a sender that never stalls long enough to be cut off for
/// stalling is still cut off (or answered 408) by then, while a slow upload that ends
/// within it is answered as usual.
#[test]
fn a_trickled_request_body_is_cut_off_at_body_read_timeout() {
    let server = TestApp::new()
        .set("header_read_timeout", 2)
        .set("body_read_timeout", 3)
        .set("keep_alive", 30)
        .spawn_server();
    let head = "POST /api/v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/x-www-form-urlencoded\r\n";
    // Within the deadline, a few bytes at a time: answered as any other request.
    let body = "grant_type=bogus";
    let mut slow = server.connect();
    slow.write_all(format!("{head}Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .expect("head");
    for piece in body.as_bytes().chunks(4) {
        std::thread::sleep(Duration::from_millis(400));
        slow.write_all(piece).expect("a piece of the body");
    }
    let reply = read_reply(&mut slow).expect("a slow but complete body is answered");
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.body.contains("unsupported_grant_type"),
        "{}",
        reply.body
    );

    // One byte a second: never a stall of 2 s, but 1000 bytes would take 17 minutes.
    let start = Instant::now();
    let mut trickle = server.connect();
    trickle
        .write_all(format!("{head}Content-Length: 1000\r\n\r\n").as_bytes())
        .expect("head");
    let mut closed = None;
    for _ in 0..10 {
        if trickle.write_all(b"a").is_err() {
            closed = wait_closed(&mut trickle, start, Duration::from_secs(10));
            break;
        }
        closed = wait_closed(&mut trickle, Instant::now(), Duration::from_secs(1));
        if closed.is_some() {
            break;
        }
        server.assert_healthy();
    }
    let after = start.elapsed();
    let closed = closed.unwrap_or_else(|| panic!("still open after {after:?}"));
    assert!(
        after >= Duration::from_secs(2) && after < Duration::from_secs(8),
        "cut off at the body deadline, not before or long after: {after:?}"
    );
    assert!(
        closed.said.is_empty() || closed.said.starts_with("HTTP/1.1 408"),
        "closed, or answered 408: {:?}",
        closed.said
    );
    server.assert_healthy();
}

/// Issue 22, also seen: methods are case-sensitive (RFC 9110 §9.1). `get /devices` is
/// not `GET /devices`, and is answered 400 like any method Rocket does not know.
#[test]
fn a_method_in_the_wrong_case_is_not_taken_for_another() {
    let server = TestApp::new().spawn_server();
    for (method, path) in [
        ("get", "/devices"),
        ("Get", "/health"),
        ("post", "/api/v1/token"),
        ("gEt", "/api/v1/me"),
    ] {
        let mut s = server.connect();
        let req =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).expect("request");
        let reply = read_reply(&mut s).expect("an answer");
        assert_eq!(reply.status, 400, "{method} {path}: {}", reply.head);
        if path.starts_with("/api") {
            assert_eq!(reply.json()["error"], "invalid_request", "{}", reply.body);
        }
    }
    server.assert_healthy();
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_keep_alive() {
    let server = TestApp::new()
        .set("header_read_timeout", 10)
        .set("keep_alive", 1)
        .spawn_server();
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
/// refuses it (the write fails, or blocks past `CUT_OFF_WITHIN`).
fn send_endless_header(s: &mut TcpStream, size: usize) -> usize {
    s.set_write_timeout(Some(CUT_OFF_WITHIN)).expect("timeout");
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
    let server = TestApp::new()
        .set("header_read_timeout", 10)
        .set("max_connections", 256)
        .spawn_server();
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
    let server = TestApp::new()
        .set("header_read_timeout", 30)
        .set("keep_alive", 30)
        .set("max_connections", 8)
        .spawn_server();
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
    while server.get("/health").map(|r| r.status) != Some(200) {
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
    let server = TestApp::new().set("header_read_timeout", 10).spawn_server();
    // 380 KB of cookies (under hyper's own 400 KB buffer): refused, not parsed.
    let cookies = cookie_flood(40_000);
    assert!(cookies.len() > 380_000);
    let mut s = server.connect();
    s.set_write_timeout(Some(CUT_OFF_WITHIN)).expect("timeout");
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
    let server = TestApp::new().spawn_server();
    let form = exchange_from(&server, "127.0.0.2", Request("GET", "/register", &[], ""));
    let csrf = form.set_cookie("latchkey_csrf").expect("the CSRF cookie");
    let (user, form_type) = (email(), "application/x-www-form-urlencoded");
    let fields = [("email", user.as_str()), ("password", PASSWORD)];
    let token = csrf_from(&form.body);
    let mut signup = fields.to_vec();
    signup.push(("csrf_token", &token));
    let cookie = format!("latchkey_csrf={csrf}");
    let headers = [("Cookie", cookie.as_str()), ("Content-Type", form_type)];
    let made = exchange_from(
        &server,
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
    let tokens = exchange_from(
        &server,
        "127.0.0.3",
        Request("POST", "/api/v1/token", &headers, &grant),
    );
    let tokens: serde_json::Value = serde_json::from_str(&tokens.body).expect("token JSON");
    let bearer = format!(
        "Bearer {}",
        tokens["access_token"].as_str().expect("access token")
    );
    let headers = [("Authorization", bearer.as_str())];
    let list = exchange_from(
        &server,
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
    let mut server = TestApp::new()
        .set("header_read_timeout", 30)
        .set("keep_alive", 30)
        .spawn_server();
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

#[test]
fn a_method_rocket_does_not_know_is_answered_400() {
    let server = TestApp::new().spawn_server();
    for (path, kind) in [
        ("/api/v1/me", "application/json"),
        ("/devices", "text/plain"),
    ] {
        let mut s = server.connect();
        let req =
            format!("PROPFIND {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).expect("request");
        let reply = read_reply(&mut s).expect("an answer");
        assert_eq!(reply.status, 400, "{}", reply.head);
        let head = reply.head.to_ascii_lowercase();
        assert!(head.contains(&format!("content-type: {kind}")), "{head}");
        if kind == "application/json" {
            let json: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
            assert_eq!(json["error"], "invalid_request", "{}", reply.body);
            assert!(json["error_description"].is_string(), "{}", reply.body);
        }
    }
    server.assert_healthy();
}

#[test]
fn no_password_is_hashed_for_a_client_that_has_gone() {
    const BURST: usize = 100;
    let many = 1_000_000;
    let app = TestApp::new()
        .set("login_limit_account", many)
        .set("login_limit_ip", many)
        .set("login_limit_network", many)
        .set("hash_limit_ip", many);
    let server = app.spawn_server();
    let grant = encode(&[
        ("grant_type", "password"),
        ("username", &email()),
        ("password", "a wrong guess"),
    ]);
    let request = format!(
        "POST /api/v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{grant}",
        grant.len()
    );
    // Each sign-in is sent whole; once the server has them all queued for the hasher,
    // every socket is closed: nobody will read an answer.
    let sockets: Vec<TcpStream> = (0..BURST)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(request.as_bytes()).expect("request");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    drop(sockets);
    // Every password check counts against the address's hashing budget, and one that
    // never ran is taken back: once the server is done, the budget holds the hashed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = usize::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(1000));
        let now = app.quota_count("hash:ip", "127.0.0.1");
        if now == last || Instant::now() > deadline {
            break;
        }
        last = now;
    }
    // Those that got a slot in the first 200 ms were hashed; the rest were not.
    assert!(
        last < BURST / 2,
        "{last} of {BURST} sign-ins abandoned by their clients were hashed"
    );
    // A client that waits is answered as always.
    let mut s = server.connect();
    s.write_all(
        request
            .replace("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n")
            .as_bytes(),
    )
    .expect("request");
    assert_eq!(read_reply(&mut s).map(|r| r.status), Some(401));
}

/// The data limits are the code's own defaults, not only `Rocket.toml`'s: a server
/// started where there is no `Rocket.toml` still refuses a 40 KiB form, url-encoded or
/// multipart (Rocket's own default for multipart is 2 MiB), and a 40 KiB JSON body.
#[test]
fn a_server_without_rocket_toml_keeps_the_data_limits() {
    let app = TestApp::new();
    assert!(!app.dir.join("Rocket.toml").exists());
    let server = app.spawn_server_in(&app.dir);
    let big = "a".repeat(40 * 1024);

    let form = encode(&[("email", &big), ("password", "x"), ("csrf_token", "x")]);
    let urlencoded = [("Content-Type", "application/x-www-form-urlencoded")];
    let reply = exchange_from(
        &server,
        "127.0.0.1",
        Request("POST", "/login", &urlencoded, &form),
    );
    assert_eq!(reply.status, 413, "{}", reply.head);

    let boundary = "latchkeyboundary";
    let part = |name: &str, value: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
    };
    let multipart = format!(
        "{}{}{}--{boundary}--\r\n",
        part("email", &big),
        part("password", "x"),
        part("csrf_token", "x")
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let headers = [("Content-Type", content_type.as_str())];
    let reply = exchange_from(
        &server,
        "127.0.0.1",
        Request("POST", "/login", &headers, &multipart),
    );
    assert_eq!(reply.status, 413, "{}", reply.head);

    let json = serde_json::json!({"grant_type": "password", "username": big, "password": "x"});
    let headers = [("Content-Type", "application/json")];
    let reply = exchange_from(
        &server,
        "127.0.0.1",
        Request("POST", "/api/v1/token", &headers, &json.to_string()),
    );
    assert_eq!(reply.status, 413, "{}", reply.head);

    // A form within the limit is read (and refused for its token, not its size).
    let small = encode(&[
        ("email", "a@example.com"),
        ("password", "x"),
        ("csrf_token", "x"),
    ]);
    let reply = exchange_from(
        &server,
        "127.0.0.1",
        Request("POST", "/login", &urlencoded, &small),
    );
    assert_eq!(reply.status, 403, "{}", reply.head);
}
