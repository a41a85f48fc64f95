//! Real reverse proxies in front of a real app, with Latchkey deciding who gets in:
//! Debian's nginx (`auth_request` → `/auth/nginx`) walked through by Chromium, and
//! Debian's Caddy (`forward_auth` → `/auth/forward`) walked through over plain HTTP.
//! Both run the configuration README.md shows, read from README.md itself.
//! scripts/test installs both packages.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::chromium::{
    arrive, chromium_cookie, expect_path, fill, sign_in, sign_out_device, submit, text,
    text_or_why, Chromedriver,
};
use crate::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The README's fenced block after `<!-- marker -->`.
fn readme_block(marker: &str) -> String {
    let readme = include_str!("../README.md");
    let after = readme
        .split_once(&format!("<!-- {marker} -->"))
        .map(|(_, a)| a)
        .unwrap_or_else(|| panic!("README.md has no {marker} block"));
    let body = after
        .split_once("```")
        .and_then(|(_, b)| b.split_once('\n'))
        .map(|(_, b)| b);
    let body = body.and_then(|b| b.split_once("\n```")).map(|(b, _)| b);
    body.unwrap_or_else(|| panic!("README.md's {marker} block is not fenced"))
        .to_string()
}

/// The protected app: answers every request with the `Remote-User` and
/// `Remote-Session` it was given, and records each user.
struct Upstream {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("upstream port");
        let port = listener.local_addr().expect("address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(answer(conn, record.clone()));
            }
        });
        Upstream { port, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// One request on `conn` (the proxies close or reuse nothing we rely on).
async fn answer(mut conn: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let given = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let (user, session) = (given("Remote-User"), given("Remote-Session"));
    if let Ok(mut s) = seen.lock() {
        s.push(user.clone());
    }
    let body = format!("the protected app\nRemote-User: {user}\nRemote-Session: {session}\n");
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(reply.as_bytes()).await;
}

/// Debian's nginx running the README's server block, as this test's own process.
fn start_nginx(port: u16, latchkey: u16, upstream: u16) -> Spawned {
    let dir = test_dir().join("nginx");
    std::fs::create_dir_all(dir.join("temp")).expect("nginx dir");
    let server = readme_block("forward-auth-nginx")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{latchkey}"))
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{upstream}"));
    let d = dir.display();
    // Test-only: in the foreground, one process (so killing it stops it all, and it
    // runs as whoever runs the tests), every path under the test's directory.
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log {d}/access.log;\n client_body_temp_path {d}/temp/body;\n\
         proxy_temp_path {d}/temp/proxy;\n fastcgi_temp_path {d}/temp/fastcgi;\n\
         uwsgi_temp_path {d}/temp/uwsgi;\n scgi_temp_path {d}/temp/scgi;\n{server}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let child = Spawned::start(
        Command::new("nginx")
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
        "nginx (scripts/test installs it)",
    );
    wait_for_port(port, ANSWER_WITHIN, "nginx did not start");
    child
}

/// Latchkey behind a proxy on `proxy_port` of 127.0.0.1, with an account: the app, the
/// port it is served on, the account's address.
async fn latchkey_behind(proxy_port: u16) -> (TestApp, u16, String) {
    let app = TestApp::new()
        .set("trusted_proxies", "127.0.0.1")
        .set("forward_auth_domains", "127.0.0.1:*")
        .set("cookie_secure", false);
    let email = app.account().await;
    let public_url = format!("http://127.0.0.1:{proxy_port}");
    let base = app.serve_behind(Some(public_url.as_str())).await;
    (app, port_of(&base), email)
}

#[tokio::test]
async fn chromium_through_nginx_signs_in_reaches_the_app_and_is_refused_once_signed_out() {
    let nginx_port = spare_port();
    let (_app, latchkey, email) = latchkey_behind(nginx_port).await;
    let upstream = Upstream::start().await;
    let _nginx = start_nginx(nginx_port, latchkey, upstream.port);
    let base = format!("http://127.0.0.1:{nginx_port}");
    let protected = format!("{base}/app/notes");
    let driver = Chromedriver::start();
    let laptop = driver.browser(None).await;

    // The protected URL → the sign-in page, with the way back in the form.
    laptop.goto(&protected).await.expect("goto");
    expect_path(&laptop, "/login").await;
    assert!(
        upstream.seen().is_empty(),
        "the app saw a signed-out request: {:?}",
        upstream.seen()
    );
    fill(&laptop, "email", &email).await;
    fill(&laptop, "password", PASSWORD).await;
    submit(&laptop).await;

    // Back on the protected URL (the form's 303, then nginx's auth_request); the app
    // was told who it is.
    if let Err(url) = arrive(&laptop, |u| u.as_str() == protected).await {
        panic!(
            "after signing in the laptop is at {url}, not {protected}; the app saw {:?}; \
             the page says: {}",
            upstream.seen(),
            text_or_why(&laptop).await
        );
    }
    let cookie = chromium_cookie(&laptop, "latchkey")
        .await
        .expect("the session cookie");
    let user_id = cookie.split('.').next().unwrap_or("").to_string();
    let page = text(&laptop).await;
    assert!(
        page.contains(&format!("Remote-User: {user_id}")),
        "the app's page, for user {user_id}: {page}"
    );
    // The README says the proxy passes `Remote-Session` on: its block must.
    let sid = sid_of(&cookie);
    assert!(
        page.contains(&format!("Remote-Session: {sid}")),
        "the app's page, for session {sid}: {page}"
    );
    assert_eq!(
        upstream.seen(),
        vec![user_id.clone()],
        "the requests the app saw"
    );

    // Another browser signs the laptop out on its devices page...
    let phone = driver.browser(Some(SAFARI_IOS)).await;
    sign_in(&phone, &base, &email, PASSWORD).await;
    expect_path(&phone, "/devices").await;
    sign_out_device(&phone, &sid_of(&cookie)).await;
    expect_path(&phone, "/devices").await;

    // ...and the laptop's next request to the app is refused: the sign-in page again.
    laptop.goto(&protected).await.expect("goto");
    expect_path(&laptop, "/login").await;
    assert_eq!(
        upstream.seen(),
        vec![user_id],
        "the app saw only the signed-in request"
    );
    let _ = phone.close().await;
    let _ = laptop.close().await;
}

/// One plain HTTP/1.1 GET, its reply read to the end of the connection.
async fn http_get(port: u16, path: &str, cookie: Option<&str>) -> Reply {
    let mut conn = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let cookie = cookie
        .map(|c| format!("Cookie: latchkey={c}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/html\r\n{cookie}Connection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(ANSWER_WITHIN, conn.read_to_end(&mut raw))
        .await
        .expect("an answer in time")
        .expect("read");
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn start_caddy(port: u16, latchkey: u16, upstream: u16) -> Spawned {
    let dir = test_dir().join("caddy");
    std::fs::create_dir_all(&dir).expect("caddy dir");
    let site = readme_block("forward-auth-caddy")
        .replace("app.example.com", &format!("http://127.0.0.1:{port}"))
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{latchkey}"))
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{upstream}"));
    let conf = dir.join("Caddyfile");
    std::fs::write(&conf, format!("{{\n\tadmin off\n}}\n\n{site}\n")).expect("Caddyfile");
    let child = Spawned::start(
        Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&conf)
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "caddy (scripts/test installs it)",
    );
    wait_for_port(port, ANSWER_WITHIN, "caddy did not start");
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth_redirects_signs_in_passes_the_user_and_refuses_once_signed_out() {
    let caddy_port = spare_port();
    let (app, latchkey, email) = latchkey_behind(caddy_port).await;
    let upstream = Upstream::start().await;
    let _caddy = tokio::task::block_in_place(|| start_caddy(caddy_port, latchkey, upstream.port));
    let protected = format!("http://127.0.0.1:{caddy_port}/app/notes");

    // Signed out: Caddy passes Latchkey's 302 on, with the way back.
    let signed_out = http_get(caddy_port, "/app/notes", None).await;
    assert_eq!(signed_out.status, 302);
    let expected = format!(
        "http://127.0.0.1:{caddy_port}/login?rd={}",
        urlencode(&protected)
    );
    assert_eq!(signed_out.location(), Some(expected.as_str()));
    assert!(upstream.seen().is_empty());

    // Signed in (the cookie of a sign-in with that rd): the app sees the user.
    let b = app.browser().await;
    let form = b.get(&format!("/login?rd={}", urlencode(&protected))).await;
    let signed = b
        .post_form(
            "/login",
            &form.csrf(),
            &[
                ("email", &email),
                ("password", PASSWORD),
                ("rd", &protected),
            ],
        )
        .await;
    assert_eq!(signed.location.as_deref(), Some(protected.as_str()));
    let cookie = b.session_cookie().expect("signed in");
    let user_id = cookie.split('.').next().unwrap_or("").to_string();
    let allowed = http_get(caddy_port, "/app/notes", Some(&cookie)).await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    let remote_user = format!("Remote-User: {user_id}");
    assert!(allowed.body.contains(&remote_user), "{}", allowed.body);
    let remote_session = format!("Remote-Session: {}", sid_of(&cookie));
    assert!(allowed.body.contains(&remote_session), "{}", allowed.body);
    assert_eq!(upstream.seen(), vec![user_id]);

    // Signed out on the devices page of another browser: refused at the next request.
    let other = app.browser().await.with_agent(SAFARI_IOS);
    other.login(&email, PASSWORD).await;
    let token = other.get("/devices").await.csrf();
    other
        .post_form(&format!("/devices/{}/revoke", sid_of(&cookie)), &token, &[])
        .await;
    let refused = http_get(caddy_port, "/app/notes", Some(&cookie)).await;
    assert_eq!(refused.status, 302);
    assert_eq!(
        upstream.seen().len(),
        1,
        "the app saw the signed-out request"
    );
}

/// nginx balancing two Latchkey instances, as README "Health checks" shows
/// (`proxy_next_upstream`), as this test's own process on `port`.
fn start_balancer(port: u16, instances: [u16; 2]) -> Spawned {
    let dir = test_dir().join("balancer");
    std::fs::create_dir_all(dir.join("temp")).expect("nginx dir");
    let location = readme_block("balancer-nginx");
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n access_log {d}/access.log;\n client_body_temp_path {d}/temp/body;\n\
         proxy_temp_path {d}/temp/proxy;\n fastcgi_temp_path {d}/temp/fastcgi;\n\
         uwsgi_temp_path {d}/temp/uwsgi;\n scgi_temp_path {d}/temp/scgi;\n\
         upstream latchkey {{ server 127.0.0.1:{a} max_fails=0; server 127.0.0.1:{b} max_fails=0; keepalive 16; }}\n\
         server {{ listen 127.0.0.1:{port};\n{location}\n }}\n}}\n",
        a = instances[0],
        b = instances[1],
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let child = Spawned::start(
        Command::new("nginx")
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
        "nginx (scripts/test installs it)",
    );
    wait_for_port(port, ANSWER_WITHIN, "nginx did not start");
    child
}

/// One request through the balancer on a fresh connection: (status, body), status 0
/// when no answer came.
fn through(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(ANSWER_WITHIN));
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    use std::io::Write;
    if s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body.as_bytes()))
        .is_err()
    {
        return (0, String::new());
    }
    match read_reply(&mut s) {
        Some(r) => (r.status, r.body),
        None => (0, String::new()),
    }
}

fn token_of(body: &str, field: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v[field].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restarts_behind_nginx_fail_no_request() {
    let ports = [spare_port(), spare_port()];
    let nginx_port = spare_port();
    let public_url = format!("http://127.0.0.1:{nginx_port}");
    let app = TestApp::new()
        .set("trusted_proxies", "127.0.0.1")
        .set("cookie_secure", false)
        .set("login_limit_ip", 100_000)
        .set("login_limit_account", 100_000)
        .set("login_limit_network", 100_000)
        .set("hash_limit_ip", 100_000)
        .set("shutdown_grace", 10);
    let email = app.account().await;
    let mut servers = [
        app.spawn_server_behind_on(&public_url, ports[0]),
        app.spawn_server_behind_on(&public_url, ports[1]),
    ];
    let _nginx = start_balancer(nginx_port, ports);
    // A browser session (signed in on one instance; any instance serves it).
    let mut jar = Jar::default();
    servers[0].register(&mut jar, &crate::support::email());
    let cookie = jar.header();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counts = Arc::new(Mutex::new((0usize, Vec::<String>::new())));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (stop, counts, email, cookie) =
            (stop.clone(), counts.clone(), email.clone(), cookie.clone());
        workers.push(std::thread::spawn(move || {
            let sign_in = encode(&[
                ("grant_type", "password"),
                ("username", &email),
                ("password", PASSWORD),
                ("client_name", &format!("worker {worker}")),
            ]);
            let form = [("Content-Type", "application/x-www-form-urlencoded")];
            let (mut access, mut refresh) = (String::new(), String::new());
            let mut round = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // A sign-in, then the session checks and a refresh on what it gave.
                let (what, (status, body)) = match round % 5 {
                    4 => (
                        "devices",
                        through(nginx_port, "GET", "/devices", &[("Cookie", &cookie)], ""),
                    ),
                    0 => (
                        "sign-in",
                        through(nginx_port, "POST", "/api/v1/token", &form, &sign_in),
                    ),
                    1 | 2 => {
                        let bearer = format!("Bearer {access}");
                        (
                            "me",
                            through(
                                nginx_port,
                                "GET",
                                "/api/v1/me",
                                &[("Authorization", &bearer)],
                                "",
                            ),
                        )
                    }
                    _ => {
                        let body =
                            encode(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]);
                        (
                            "refresh",
                            through(nginx_port, "POST", "/api/v1/token", &form, &body),
                        )
                    }
                };
                if (what == "sign-in" || what == "refresh") && status == 200 {
                    access = token_of(&body, "access_token");
                    refresh = token_of(&body, "refresh_token");
                }
                let mut c = counts.lock().expect("counts");
                c.0 += 1;
                let signed_in_page = what != "devices" || body.contains("Your devices");
                if status != 200 || !signed_in_page {
                    c.1.push(format!("{what}: {status} {body}"));
                }
                drop(c);
                round += 1;
            }
        }));
    }

    // Each instance in turn: SIGTERM, wait for it to exit, start it again where nginx
    // expects it, let it take traffic for a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..2 {
        let status = servers[i].terminate(Duration::from_secs(15));
        assert!(
            status.is_some_and(|s| s.success()),
            "instance {i} exited cleanly: {status:?}"
        );
        servers[i] = app.spawn_server_behind_on(&public_url, ports[i]);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().expect("a worker panicked");
    }
    let (total, failures) = std::mem::take(&mut *counts.lock().expect("counts"));
    assert!(total > 40, "only {total} requests ran");
    assert!(
        failures.is_empty(),
        "{} of {total} failed: {failures:?}",
        failures.len()
    );
}
