//! Processes a test starts: a real SMTP server, a Redis of its own, the built `latchkey`
//! binary. Each child is killed and reaped when its handle drops, so a failing test
//! leaves none behind, and each is waited for the same way. `AppProcess` serves one
//! `TestApp` instance as production does (through the server loop, on a real socket),
//! and a `Jar` is a browser's cookies across requests to it (register, sign in, the two
//! sign-in steps, the token endpoint); `read_reply` is the raw HTTP/1.1 reader.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    code_of_the_step_before, csrf_from, encode, recovery_codes_in, secret_on, test_dir, TestApp,
    FIREFOX_LINUX, PASSWORD,
};

/// How long a test's client waits for an answer the server must give (and to send its
/// request): generous, since on a loaded two-core machine (eight tests at a time, debug
/// builds) a request that makes the first RSA signing key or hashes a password can take
/// seconds. A wait ends as soon as the answer is there. A test that expects no answer,
/// or a cut-off, sets its own short timeout on the socket.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// A child process, killed and reaped when dropped.
pub struct Spawned(Child);

impl Spawned {
    /// Starts `cmd`; `what` says in the panic what could not start.
    pub fn start(cmd: &mut Command, what: &str) -> Spawned {
        Spawned(cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}")))
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// The exit status, once it has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a spare port")
}

/// Waits (polling, bounded by `within`) until something accepts connections on the
/// loopback `port`; panics with `what` otherwise. Blocks the thread: not for a test
/// whose own runtime serves that port.
pub fn wait_for_port(port: u16, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A real SMTP server (aiosmtpd, installed by scripts/test) on a spare loopback port,
/// storing what it receives in a maildir.
pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
    _child: Spawned,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let port = spare_port();
        let maildir = test_dir().join("maildir");
        let child = Spawned::start(
            Command::new("python3")
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "python3 with aiosmtpd (scripts/test installs it)",
        );
        wait_for_port(port, Duration::from_secs(15), "aiosmtpd did not start");
        SmtpServer {
            port,
            maildir,
            _child: child,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> PathBuf {
        self.maildir.join("new")
    }
}

/// A Redis of the test's own on a spare loopback port.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Spawned>,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        let port = spare_port();
        let mut r = OwnRedis { port, child: None };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = Spawned::start(
            Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "redis-server must be installed (scripts/test installs it)",
        );
        self.child = Some(child);
        wait_for_port(
            self.port,
            Duration::from_secs(10),
            "redis-server did not start",
        );
    }

    pub fn stop(&mut self) {
        self.child = None;
    }
}

/// The built `latchkey` binary serving one test instance on a spare loopback port.
pub struct AppProcess {
    pub port: u16,
    /// Its stderr (`RUST_LOG=warn`).
    pub log: PathBuf,
    child: Spawned,
}

impl TestApp {
    /// Starts the server binary with this instance's settings (as `LATCHKEY_*`
    /// variables), from the repository (its `Rocket.toml`); returns once `/health`
    /// answers 200.
    pub fn spawn_server(&self) -> AppProcess {
        self.spawn_server_in(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
    }

    /// The same, answering as `public_url` (one of several servers behind one address).
    pub fn spawn_server_behind(&self, public_url: &str) -> AppProcess {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        self.spawn_with(dir, Some(public_url))
    }

    /// The same, started in `dir` (where there may be no `Rocket.toml`).
    pub fn spawn_server_in(&self, dir: &std::path::Path) -> AppProcess {
        self.spawn_with(dir, None)
    }

    /// The same, answering as `public_url` on the given `port` (an instance started
    /// again where a proxy expects it).
    pub fn spawn_server_behind_on(&self, public_url: &str, port: u16) -> AppProcess {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        self.spawn_on(dir, Some(public_url), port)
    }

    fn spawn_with(&self, dir: &std::path::Path, public_url: Option<&str>) -> AppProcess {
        self.spawn_on(dir, public_url, spare_port())
    }

    fn spawn_on(&self, dir: &std::path::Path, public_url: Option<&str>, port: u16) -> AppProcess {
        let mut cfg = self.clone().served_at(port);
        if let Some(url) = public_url {
            cfg = cfg.set("public_url", url);
        }
        let log = self.dir.join(format!("server-{port}.log"));
        let stderr = std::fs::File::create(&log).expect("server log");
        let child = Spawned::start(
            Command::new(env!("CARGO_BIN_EXE_latchkey"))
                .current_dir(dir)
                .envs(cfg.env())
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(stderr),
            "the latchkey binary",
        );
        let mut server = AppProcess { port, log, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.get("/health").map(|r| r.status) != Some(200) {
            let ended = server.child.exited();
            assert!(
                ended.is_none() && Instant::now() < deadline,
                "latchkey did not answer /health (exit: {ended:?}); its log:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl AppProcess {
    /// A new connection, with [`ANSWER_WITHIN`] as its read and write timeouts.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(ANSWER_WITHIN)).expect("timeout");
        s.set_write_timeout(Some(ANSWER_WITHIN)).expect("timeout");
        s
    }

    /// One request on a fresh connection (closed after), or None when refused or not
    /// answered within [`ANSWER_WITHIN`].
    pub fn get(&self, path: &str) -> Option<Reply> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(ANSWER_WITHIN)).ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).ok()?;
        read_reply(&mut s)
    }

    /// One request with `headers` and `body` on a fresh connection (closed after).
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut s = self.connect();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        s.write_all(head.as_bytes()).expect("request head");
        s.write_all(body.as_bytes()).expect("request body");
        read_reply(&mut s).unwrap_or_else(|| panic!("no answer to {method} {path}"))
    }

    /// One request as `request` sends it, from the loopback address `from` (all of
    /// 127.0.0.0/8 is local), so the server sees another client address.
    pub fn request_from(
        &self,
        from: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let local: std::net::SocketAddr = format!("{from}:0").parse().expect("address");
        socket.bind(&local.into()).expect("bind the source address");
        let to: std::net::SocketAddr = ([127, 0, 0, 1], self.port).into();
        socket.connect(&to.into()).expect("connect");
        let mut s: TcpStream = socket.into();
        s.set_read_timeout(Some(ANSWER_WITHIN)).expect("timeout");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        s.write_all(head.as_bytes()).expect("request head");
        s.write_all(body.as_bytes()).expect("request body");
        read_reply(&mut s).unwrap_or_else(|| panic!("no answer to {method} {path}"))
    }

    /// A normal request must still work.
    pub fn assert_healthy(&self) {
        let reply = self.get("/health").expect("a normal request is answered");
        assert_eq!(reply.status, 200, "a normal request works: {}", reply.head);
    }

    /// Sends SIGTERM; the exit status, if the process ends within `limit`.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.map(|s| s.success()).unwrap_or(false), "kill -TERM");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

/// One HTTP/1.1 response as read off a socket.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    /// The value of the cookie `name` that the response sets.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find_map(|(cookie, value)| (cookie == name).then_some(value))
    }

    /// Every cookie the response sets, as name and value (empty when it removes one).
    pub fn set_cookies(&self) -> Vec<(String, String)> {
        self.head
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                let (cookie, value) = v.trim().split(';').next()?.split_once('=')?;
                k.eq_ignore_ascii_case("set-cookie")
                    .then(|| (cookie.to_string(), value.to_string()))
            })
            .collect()
    }

    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The value of the header `name` (the first, when there are several).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Reads one response (head and a `Content-Length` body) from `s`.
pub fn read_reply(s: &mut TcpStream) -> Option<Reply> {
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

/// The cookies one client keeps across requests to server processes (a browser
/// profile over real sockets), by name.
#[derive(Default, Clone)]
pub struct Jar(Vec<(String, String)>);

impl Jar {
    /// The `Cookie` header this jar sends.
    pub fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join("; ")
    }

    /// Takes every `Set-Cookie` of `reply` (an emptied or expired cookie is dropped).
    fn update(&mut self, reply: &Reply) {
        for line in reply.head.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if !k.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let Some((name, value)) = v.trim().split(';').next().and_then(|p| p.split_once('='))
            else {
                continue;
            };
            self.0.retain(|(n, _)| n != name);
            let expired = v.contains("Max-Age=0") || v.contains("max-age=0");
            if !value.is_empty() && !expired {
                self.0.push((name.to_string(), value.to_string()));
            }
        }
    }
}

impl AppProcess {
    /// One request with this jar's cookies (and a form body when given); the jar
    /// takes the reply's cookies.
    pub fn send(&self, jar: &mut Jar, method: &str, path: &str, form: Option<&str>) -> Reply {
        let cookie = jar.header();
        let mut headers = vec![("User-Agent", FIREFOX_LINUX), ("Cookie", cookie.as_str())];
        if form.is_some() {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        let reply = self.request(method, path, &headers, form.unwrap_or(""));
        jar.update(&reply);
        reply
    }

    /// A JSON POST with this jar's cookies and `token` in `X-CSRF-Token` (the passkey
    /// endpoints); the jar takes the reply's cookies.
    pub fn send_json(&self, jar: &mut Jar, path: &str, token: &str, body: &Value) -> Reply {
        let cookie = jar.header();
        let headers = [
            ("User-Agent", FIREFOX_LINUX),
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/json"),
            ("X-CSRF-Token", token),
        ];
        let reply = self.request("POST", path, &headers, &body.to_string());
        jar.update(&reply);
        reply
    }

    /// Loads `form_page`, takes its CSRF token and posts `fields` to `action`.
    pub fn submit(
        &self,
        jar: &mut Jar,
        form_page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Reply {
        let page = self.send(jar, "GET", form_page, None);
        let token = csrf_from(&page.body);
        let mut pairs = fields.to_vec();
        pairs.push(("csrf_token", &token));
        self.send(jar, "POST", action, Some(&encode(&pairs)))
    }

    /// True when `/devices` shows the signed-in page to this jar.
    pub fn signed_in(&self, jar: &mut Jar) -> bool {
        let page = self.send(jar, "GET", "/devices", None);
        page.status == 200 && page.body.contains("Your devices")
    }

    /// Registers `email` (with [`PASSWORD`]) through the page; the jar is signed in.
    pub fn register(&self, jar: &mut Jar, email: &str) {
        let r = self.submit(
            jar,
            "/register",
            "/register",
            &[("email", email), ("password", PASSWORD)],
        );
        assert_eq!(r.status, 303, "{}", r.body);
    }

    /// Signs in on the sign-in page; answers the `POST /login`.
    pub fn login(&self, jar: &mut Jar, email: &str, password: &str) -> Reply {
        let fields = [("email", email), ("password", password)];
        self.submit(jar, "/login", "/login", &fields)
    }

    /// The password step on the sign-in page at `login` (`/login?next=…`, where a
    /// redirect sent the browser); answers the `POST`.
    pub fn password_step(&self, jar: &mut Jar, login: &str, email: &str) -> Reply {
        let page = self.send(jar, "GET", login, None);
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("name=\"password\""), "{}", page.body);
        let form = encode(&[
            ("email", email),
            ("password", PASSWORD),
            ("csrf_token", &csrf_from(&page.body)),
        ]);
        self.send(jar, "POST", login, Some(&form))
    }

    /// `POST /api/v1/token` with a form body: (status, JSON answer).
    pub fn token(&self, pairs: &[(&str, &str)]) -> (u16, Value) {
        let reply = self.request(
            "POST",
            "/api/v1/token",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &encode(pairs),
        );
        (reply.status, reply.json())
    }

    /// Turns the authenticator app on for the account signed in in `jar`, through its
    /// pages (as `Browser::turn_on_two_step`); answers the secret and recovery codes.
    pub fn turn_on_two_step(&self, jar: &mut Jar) -> (Vec<u8>, Vec<String>) {
        let setup = self.send(jar, "GET", "/account/totp", None);
        assert_eq!(setup.status, 200, "{}", setup.body);
        let secret = secret_on(&setup.body);
        let form = encode(&[
            ("code", code_of_the_step_before(&secret).as_str()),
            ("current_password", PASSWORD),
            ("csrf_token", &csrf_from(&setup.body)),
        ]);
        let shown = self.send(jar, "POST", "/account/totp", Some(&form));
        assert_eq!(shown.status, 200, "{}", shown.body);
        let recovery = recovery_codes_in(&shown.body);
        assert_eq!(recovery.len(), 10, "{}", shown.body);
        (secret, recovery)
    }
}

/// The port of a loopback base URL (`http://127.0.0.1:PORT`, as `TestApp::serve`
/// answers).
pub fn port_of(base: &str) -> u16 {
    base.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a port at the end of {base}"))
}

/// `POST path` with a form body to the app served in this process at `base`
/// (`TestApp::serve`), sent from a blocking thread so that this test's runtime goes on
/// serving the app meanwhile.
pub async fn post_form_to_served(base: &str, path: &str, form: String) -> Reply {
    let (port, path) = (port_of(base), path.to_string());
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(ANSWER_WITHIN)).expect("timeout");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        );
        s.write_all(head.as_bytes()).expect("write");
        read_reply(&mut s).expect("an answer")
    })
    .await
    .expect("the request's thread")
}
