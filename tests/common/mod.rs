//! Test harness: every test gets its own app on real Redis under its own key prefix,
//! its own SQLite file (or PostgreSQL database: `database`) and its own mail outbox,
//! so tests run in parallel and never see each other. Each `Browser` is a
//! cookie-keeping client, like one browser profile; `api_client` sends the requests a
//! program sends to the JSON API; `process` starts the real services a test needs
//! (SMTP, its own Redis, the server binary itself).

mod api_client;
mod database;
mod process;

use std::path::PathBuf;
use std::sync::Arc;

use latchkey::store::{MemoryStore, Store};
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde::Serialize;
use serde_json::Value;

pub use self::api_client::*;
pub use self::database::*;
pub use self::process::*;

pub const PASSWORD: &str = "correct horse battery staple";
/// Rocket's `secret_key` (private cookies) for every instance, fixed rather than
/// generated at each start.
const SECRET_KEY: &str = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";
pub const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
pub const SAFARI_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

pub fn redis_url() -> String {
    std::env::var("LATCHKEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The seed nodes of the test Redis Cluster that scripts/test starts (7101-7103).
pub fn redis_cluster_nodes() -> String {
    std::env::var("LATCHKEY_TEST_REDIS_CLUSTER").unwrap_or_else(|_| {
        "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103".into()
    })
}

/// The authenticator code of the time step before now: turning the second factor on with
/// it leaves the current and the next codes unused. The server takes it until the current
/// step ends (a skew of one step), so when less than 15 s of that step are left this
/// first waits (blocking) for the next one: on a loaded machine the request, whose
/// password check runs Argon2 at nice 10, can take seconds, and was refused when it
/// crossed into the next step.
pub fn code_of_the_step_before(secret: &[u8]) -> String {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let since_epoch = || SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    let left_ms = 30_000 - (since_epoch().as_millis() % 30_000) as u64;
    if left_ms < 15_000 {
        std::thread::sleep(Duration::from_millis(left_ms + 100));
    }
    latchkey::services::second_factor::code_at(secret, since_epoch().as_secs() - 30)
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Where the Chromium tests save their screenshots: `target/screenshots/` (ignored by
/// git). `docs/screenshots/` holds committed copies, refreshed by hand (README, Tests).
pub fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots");
    dir
}

pub fn test_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-data")
        .join(unique("t"));
    std::fs::create_dir_all(&dir).expect("test data dir");
    dir
}

/// One isolated instance's settings; clone and adjust before `start`.
#[derive(Clone)]
pub struct TestConfig {
    pub prefix: String,
    pub dir: PathBuf,
    pub redis_url: String,
    /// A SQLite file in `dir`, or a PostgreSQL database of the test's own.
    pub database_url: String,
    pub overrides: Vec<(String, serde_json::Value)>,
    /// Keeps the PostgreSQL database until the last clone of this config goes.
    database: Option<Arc<TestDatabase>>,
}

impl TestConfig {
    pub fn new() -> TestConfig {
        let dir = test_dir();
        TestConfig {
            prefix: unique("lkt"),
            database_url: format!("sqlite://{}", dir.join("accounts.db").display()),
            dir,
            redis_url: redis_url(),
            overrides: vec![],
            database: None,
        }
    }

    /// A new instance whose accounts live in `database` (PostgreSQL: one made for it).
    pub async fn on(database: Database) -> TestConfig {
        let mut cfg = TestConfig::new();
        if database == Database::Postgres {
            let db = TestDatabase::create().await;
            cfg.database_url = db.url.clone();
            cfg.database = Some(Arc::new(db));
        }
        cfg
    }

    pub fn set(mut self, key: &str, value: impl Serialize) -> TestConfig {
        self.overrides.push((
            key.to_string(),
            serde_json::to_value(value).expect("setting value"),
        ));
        self
    }

    /// Another instance on the same store, key prefix and accounts database (the same
    /// SQLite file, or the same PostgreSQL database, kept while either lives), with a
    /// directory (log, outbox) of its own.
    pub fn sibling(&self) -> TestConfig {
        TestConfig {
            dir: test_dir(),
            ..self.clone()
        }
    }

    /// On the test Redis Cluster instead of the single Redis.
    pub fn on_cluster(self) -> TestConfig {
        self.set("redis_cluster_nodes", redis_cluster_nodes())
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.join("outbox")
    }

    /// The instance's settings, the harness's first and then the test's (a later one
    /// wins): the one list both `figment` (in-process) and `env` (a process) are made of.
    fn settings(&self) -> Vec<(String, Value)> {
        let mut settings: Vec<(String, Value)> = [
            ("key_prefix", Value::from(self.prefix.as_str())),
            ("redis_url", Value::from(self.redis_url.as_str())),
            ("database_url", Value::from(self.database_url.as_str())),
            (
                "mail_outbox",
                Value::from(self.outbox().display().to_string()),
            ),
            ("jwt_secret", Value::from(JWT_SECRET)),
            ("secret_key", Value::from(SECRET_KEY)),
            ("log_level", Value::from("off")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        settings.extend(self.overrides.iter().cloned());
        settings
    }

    pub fn figment(&self) -> Figment {
        self.settings()
            .into_iter()
            .fold(latchkey::config::figment(), |f, (k, v)| {
                f.merge(Serialized::global(&k, v))
            })
    }

    /// The same settings as `LATCHKEY_*` environment variables, for the server binary.
    pub fn env(&self) -> Vec<(String, String)> {
        self.settings()
            .into_iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (format!("LATCHKEY_{}", k.to_uppercase()), value)
            })
            .collect()
    }

    /// Served on the loopback `port`, with links in mail pointing there.
    pub fn served_at(self, port: u16) -> TestConfig {
        self.set("address", "127.0.0.1")
            .set("port", port)
            .set("public_url", format!("http://127.0.0.1:{port}"))
    }

    /// A new browser (its own cookie jar) on its own instance of the app.
    pub async fn browser(&self) -> Browser {
        let client = Client::tracked(latchkey::app_with(self.figment()))
            .await
            .expect("the app starts");
        Browser {
            client: Arc::new(client),
            user_agent: FIREFOX_LINUX.into(),
            ip: "203.0.113.5".into(),
            forwarded_for: None,
        }
    }
}

pub fn memory_store(prefix: &str) -> Store {
    Store::Memory(MemoryStore::new(latchkey::store::KeyNames::new(prefix)))
}

pub struct Browser {
    pub client: Arc<Client>,
    pub user_agent: String,
    pub ip: String,
    /// Sent as `X-Forwarded-For` when set.
    pub forwarded_for: Option<String>,
}

/// An answer as the tests read it: status, headers, body, and the body as JSON (`Null`
/// when it is not JSON).
pub struct Page {
    pub status: Status,
    pub body: String,
    pub json: Value,
    pub location: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn csrf(&self) -> String {
        csrf_from(&self.body)
    }

    /// Every `Set-Cookie` header of the answer.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("Set-Cookie"))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The session id a session cookie's value names.
pub fn sid_of(cookie: &str) -> String {
    latchkey::services::sessions::SessionCookie::parse(cookie)
        .expect("a well-formed session cookie")
        .sid
}

pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the page has a CSRF token") + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_string()
}

/// Reads a local response: status, headers, `Location` and the body.
pub async fn page(res: LocalResponse<'_>) -> Page {
    let status = res.status();
    let headers = res
        .headers()
        .iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect();
    let location = res.headers().get_one("Location").map(str::to_string);
    let body = res.into_string().await.unwrap_or_default();
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Page {
        status,
        body,
        json,
        location,
        headers,
    }
}

impl Browser {
    pub fn with_agent(mut self, ua: &str) -> Browser {
        self.user_agent = ua.into();
        self
    }

    pub fn with_ip(mut self, ip: &str) -> Browser {
        self.ip = ip.into();
        self
    }

    pub fn with_forwarded_for(mut self, xff: &str) -> Browser {
        self.forwarded_for = Some(xff.into());
        self
    }

    fn headers(&self) -> Vec<Header<'static>> {
        let mut h = vec![Header::new("User-Agent", self.user_agent.clone())];
        if let Some(x) = &self.forwarded_for {
            h.push(Header::new("X-Forwarded-For", x.clone()));
        }
        h
    }

    fn remote(&self) -> std::net::SocketAddr {
        format!("{}:40000", self.ip)
            .parse()
            .or_else(|_| format!("[{}]:40000", self.ip).parse())
            .expect("test IP")
    }

    pub async fn get(&self, path: &str) -> Page {
        let mut req = self.client.get(path.to_string()).remote(self.remote());
        for h in self.headers() {
            req = req.header(h);
        }
        let res = req.dispatch().await;
        page(res).await
    }

    /// A GET with headers of its own (a proxy's `X-Forwarded-*`, `Accept`,
    /// `Authorization`) besides the browser's.
    pub async fn get_with(&self, path: &str, extra: &[(&str, &str)]) -> Page {
        let mut req = self.client.get(path.to_string()).remote(self.remote());
        for h in self.headers() {
            req = req.header(h);
        }
        for (name, value) in extra {
            req = req.header(Header::new(name.to_string(), value.to_string()));
        }
        page(req.dispatch().await).await
    }

    /// Posts a form as-is (no CSRF token added).
    pub async fn post_raw(&self, path: &str, body: &str) -> Page {
        let mut req = self
            .client
            .post(path.to_string())
            .header(ContentType::Form)
            .remote(self.remote())
            .body(body);
        for h in self.headers() {
            req = req.header(h);
        }
        let res = req.dispatch().await;
        page(res).await
    }

    /// Loads `form_page`, takes its CSRF token, and posts `fields` to `action`.
    pub async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(form_page).await.csrf();
        self.post_form(action, &token, fields).await
    }

    pub async fn post_form(&self, action: &str, token: &str, fields: &[(&str, &str)]) -> Page {
        let mut pairs: Vec<(&str, &str)> = fields.to_vec();
        pairs.push(("csrf_token", token));
        self.post_raw(action, &encode(&pairs)).await
    }

    pub async fn register(&self, email: &str) -> Page {
        self.submit(
            "/register",
            "/register",
            &[("email", email), ("password", PASSWORD)],
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Page {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// The session cookie's name as this instance names it (`latchkey`, or a `__Host-` /
    /// `__Secure-` name when `cookie_secure` is on).
    pub fn session_cookie_name(&self) -> &'static str {
        self.client
            .rocket()
            .state::<latchkey::config::Settings>()
            .expect("the app manages its settings")
            .sessions
            .cookie_name()
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.client
            .cookies()
            .get(self.session_cookie_name())
            .map(|c| c.value().to_string())
    }

    /// From now on this browser sends `value` as its session cookie.
    pub async fn set_session_cookie(&self, value: &str) {
        let cookie = Cookie::new(self.session_cookie_name(), value.to_string());
        self.change_jar(|jar| jar.add(cookie)).await;
        assert_eq!(self.session_cookie().as_deref(), Some(value), "cookie set");
    }

    /// From now on this browser sends `value` as its cookie `name`, as a client can
    /// (a made-up or copied cookie).
    pub async fn set_cookie(&self, name: &str, value: &str) {
        let cookie = Cookie::new(name.to_string(), value.to_string());
        self.change_jar(|jar| jar.add(cookie)).await;
    }

    /// From now on this browser sends no cookies (until the app sets new ones).
    pub async fn clear_cookies(&self) {
        let names: Vec<String> = self
            .client
            .cookies()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        self.change_jar(|jar| names.into_iter().for_each(|n| jar.remove(n)))
            .await;
        assert_eq!(self.client.cookies().iter().count(), 0, "cookies cleared");
    }

    /// Changes the cookies the client keeps. `Client::cookies()` is only a copy, so
    /// changing it changes nothing sent; instead the change is made in the jar of a
    /// request for a page that touches no cookies, Rocket answers it with the matching
    /// `Set-Cookie` headers, and the tracking client applies them like a browser.
    async fn change_jar(&self, change: impl FnOnce(&rocket::http::CookieJar<'_>)) {
        let req = self.client.get("/api/v1/openapi.json");
        change(req.inner().cookies());
        let status = req.dispatch().await.status();
        assert_eq!(
            status,
            Status::Ok,
            "the cookie-changing request is answered"
        );
    }

    /// True when `/devices` shows the signed-in page.
    pub async fn is_signed_in(&self) -> bool {
        let p = self.get("/devices").await;
        p.status == Status::Ok && p.body.contains("Your devices")
    }

    /// The revoke ids shown on the devices page, in page order.
    pub async fn device_ids(&self) -> Vec<String> {
        let body = self.get("/devices").await.body;
        body.match_indices("action=\"/devices/")
            .filter_map(|(i, m)| {
                let rest = &body[i + m.len()..];
                let id = rest.split('/').next()?;
                latchkey::services::sessions::is_sid(id).then(|| id.to_string())
            })
            .collect()
    }
}

pub fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `encode` for owned pairs (hidden fields read off a page, say).
pub fn encode_owned(pairs: &[(String, String)]) -> String {
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    encode(&refs)
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn email() -> String {
    format!("{}@example.com", unique("user"))
}

/// Every key under the test's prefix, with its type.
pub async fn keys_under(prefix: &str) -> Vec<String> {
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    keys
}

pub async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection")
}

/// The messages in an outbox directory (or a maildir's `new/`), oldest first.
pub fn mails_in(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.'))
    });
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

/// Waits (bounded) until `dir` holds at least `n` messages; returns them.
pub async fn wait_for_mails(dir: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mails = mails_in(dir);
        if mails.len() >= n || std::time::Instant::now() > deadline {
            return mails;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A mail's text with quoted-printable soft line breaks and `=3D` undone, enough
/// to search it for what a reader sees.
pub fn unfold(mail: &str) -> String {
    mail.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The 6-digit code in a reset mail's text, if it has one.
pub fn try_code_in(mail: &str) -> Option<String> {
    unfold(mail)
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
}

/// The 6-digit code in a reset mail's text.
pub fn code_in(mail: &str) -> String {
    try_code_in(mail).expect("a 6-digit code in the mail")
}

/// The code of the first reset mail in `dir`, waiting (bounded) for it: other mails
/// (the notice of a password change) may be there before it.
pub async fn wait_for_reset_code(dir: &std::path::Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(code) = mails_in(dir).iter().find_map(|m| try_code_in(m)) {
            return code;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reset code arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
