//! `TestApp`: one isolated instance of the app and the fixtures made from it. Its
//! settings give it a key prefix, a SQLite file (or a PostgreSQL database) and an outbox
//! of its own; every `Browser` is a client of it (an instance in this process, built
//! from these settings); `spawn_server` (process.rs) runs it as the real binary, and
//! `serve` in this process on a socket. The fixtures register accounts through the
//! pages, as a person does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use serde::Serialize;
use serde_json::{json, Value};

use super::chromium::PAGE_WITHIN;
use super::{
    app_with, default_figment, email, redis_cluster_nodes, redis_url, serve_forever, spare_port,
    test_dir, unique, Accounts, Browser, Database, Email, KeyNames, TestDatabase, TwoStepAccount,
    User, FIREFOX_LINUX,
};

/// The key the harness configures (`jwt_secret`).
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// Rocket's `secret_key` (private cookies) for every instance, fixed rather than
/// generated at each start.
const SECRET_KEY: &str = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";

/// One isolated instance: its settings, adjusted with `set` before its first browser.
#[derive(Clone)]
pub struct TestApp {
    pub prefix: String,
    pub dir: PathBuf,
    pub redis_url: String,
    /// A SQLite file in `dir`, or a PostgreSQL database of the test's own.
    pub database_url: String,
    pub overrides: Vec<(String, Value)>,
    /// Keeps the PostgreSQL database until the last clone of this app goes.
    database: Option<Arc<TestDatabase>>,
}

impl TestApp {
    /// An app on the test Redis and a SQLite file of its own.
    pub fn new() -> TestApp {
        let dir = test_dir();
        TestApp {
            prefix: unique("lkt"),
            database_url: format!("sqlite://{}", dir.join("accounts.db").display()),
            dir,
            redis_url: redis_url(),
            overrides: vec![],
            database: None,
        }
    }

    /// An app whose accounts live in `database` (PostgreSQL: one made for it).
    pub async fn on(database: Database) -> TestApp {
        let mut app = TestApp::new();
        if database == Database::Postgres {
            let db = TestDatabase::create().await;
            app.database_url = db.url.clone();
            app.database = Some(Arc::new(db));
        }
        app
    }

    /// The setting `key` (a name in `config.rs`) set to `value`.
    pub fn set(mut self, key: &str, value: impl Serialize) -> TestApp {
        self.overrides.push((
            key.to_string(),
            serde_json::to_value(value).expect("setting value"),
        ));
        self
    }

    /// On the Redis at `url` (a test's own, or `memory` for the embedded store).
    pub fn with_redis(mut self, url: &str) -> TestApp {
        self.redis_url = url.to_string();
        self
    }

    /// On the test Redis Cluster instead of the single Redis.
    pub fn on_cluster(self) -> TestApp {
        self.set("redis_cluster_nodes", redis_cluster_nodes())
    }

    /// Another instance on the same store, key prefix and accounts database (the same
    /// SQLite file, or the same PostgreSQL database, kept while either lives), with a
    /// directory (log, outbox) of its own.
    pub fn sibling(&self) -> TestApp {
        TestApp {
            dir: test_dir(),
            ..self.clone()
        }
    }

    /// Served on the loopback `port`, with links in mail pointing there.
    pub fn served_at(self, port: u16) -> TestApp {
        self.set("address", "127.0.0.1")
            .set("port", port)
            .set("public_url", format!("http://127.0.0.1:{port}"))
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.join("outbox")
    }

    /// The names of this instance's Redis keys.
    pub fn key_names(&self) -> KeyNames {
        KeyNames::new(&self.prefix)
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
            // The fixtures' accounts are never verified (nobody opens their mail): the
            // other areas test what they test with the gate open; `verify.rs` turns it
            // on (the default) wherever it tests the gate.
            ("require_verified_email", Value::from(false)),
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
            .fold(default_figment(), |f, (k, v)| {
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

    /// Whether an instance with these settings gets through its start (every stage).
    /// Rocket's error, when there is one, is printed: it must be looked at, or it
    /// panics when dropped.
    pub async fn starts(&self) -> bool {
        match app_with(self.figment()).ignite().await {
            Ok(_) => true,
            Err(e) => {
                assert!(!e.pretty_print().is_empty(), "a reason to refuse");
                false
            }
        }
    }

    /// The routes an instance with these settings mounts: (path, method in lower case).
    pub async fn mounted_routes(&self) -> Vec<(String, String)> {
        let rocket = app_with(self.figment()).ignite().await.expect("ignites");
        rocket
            .routes()
            .map(|r| (r.uri.path().to_string(), r.method.as_str().to_lowercase()))
            .collect()
    }

    /// A new browser (its own cookie jar) on its own instance of the app.
    pub async fn browser(&self) -> Browser {
        let client = Client::tracked(app_with(self.figment()))
            .await
            .expect("the app starts");
        Browser {
            client: Arc::new(client),
            user_agent: FIREFOX_LINUX.into(),
            ip: "203.0.113.5".into(),
            forwarded_for: None,
        }
    }

    /// A new account, registered through the page with [`PASSWORD`](super::PASSWORD) in
    /// a browser of its own (the session its registration started stays); answers its
    /// address.
    pub async fn account(&self) -> String {
        self.signed_in_browser().await.1
    }

    /// A browser signed in to a new account (registered there, with
    /// [`PASSWORD`](super::PASSWORD)), and the account's address.
    pub async fn signed_in_browser(&self) -> (Browser, String) {
        let email = email();
        let b = self.browser().await;
        let registered = b.register(&email).await;
        assert_eq!(registered.status, Status::SeeOther, "{}", registered.body);
        (b, email)
    }

    /// A new account with the authenticator app turned on through its pages, and the
    /// browser that turned it on (signed in).
    pub async fn two_step_account(&self) -> (Browser, TwoStepAccount) {
        let (b, email) = self.signed_in_browser().await;
        let (secret, recovery) = b.turn_on_two_step().await;
        let account = TwoStepAccount {
            email,
            secret,
            recovery,
        };
        (b, account)
    }

    /// The accounts database, opened as the command line opens it.
    pub async fn accounts(&self) -> Accounts {
        Accounts::open(&self.database_url)
            .await
            .expect("the accounts database opens")
    }

    /// The account `email` names, if there is one.
    pub async fn user(&self, email: &str) -> Option<User> {
        let email = Email::parse(email).expect("an address");
        self.accounts()
            .await
            .find_by_email(&email)
            .await
            .expect("the database answers")
    }

    /// Serves the app in this process on a spare loopback port through the production
    /// server loop; answers its base URL. The loop watches no signals here: a signal
    /// handler, once installed, would stay for the whole test binary, and Ctrl-C would
    /// no longer stop `cargo test`.
    pub async fn serve(&self) -> String {
        self.serve_behind(None).await
    }

    /// `serve`, with links and redirects pointing at `public_url` (a proxy in front)
    /// when given.
    pub async fn serve_behind(&self, public_url: Option<&str>) -> String {
        self.serve_on(spare_port(), public_url.map(str::to_string))
            .await
    }

    /// `serve`, answering as `http://localhost:PORT` (a host name, which passkeys
    /// need; the browser still connects to 127.0.0.1). Answers that URL.
    pub async fn serve_on_localhost(&self) -> String {
        let port = spare_port();
        let url = format!("http://localhost:{port}");
        self.serve_on(port, Some(url.clone())).await;
        url
    }

    async fn serve_on(&self, port: u16, public_url: Option<String>) -> String {
        let mut app = self
            .clone()
            .served_at(port)
            .set("shutdown", json!({ "ctrlc": false, "signals": [] }));
        if let Some(url) = public_url {
            app = app.set("public_url", url);
        }
        let rocket = app_with(app.figment());
        tokio::spawn(async move { serve_forever(rocket).await.expect("the app starts") });
        // Polled without blocking: the app is served by this test's own runtime.
        let deadline = Instant::now() + PAGE_WITHIN;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the app did not listen");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        format!("http://127.0.0.1:{port}")
    }

    /// One run of the built binary, `latchkey ARGS…`, with this app's settings (as
    /// `LATCHKEY_*` variables), from the repository directory.
    pub fn cli(&self, args: &[&str]) -> Run {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .envs(self.env())
            .env_remove("RUST_LOG")
            .output()
            .expect("the binary runs");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// An OpenID Connect client registered with `latchkey clients add --name NAME
    /// --redirect-uri REDIRECT` and `extra` (`--public`, `--post-logout-uri …`, more
    /// `--redirect-uri`s).
    pub fn registered_app(&self, name: &str, extra: &[&str]) -> RegisteredApp {
        self.registered_app_at(name, super::REDIRECT, extra)
    }

    /// The same, redirecting to `redirect` (an app of the test's own) first.
    pub fn registered_app_at(&self, name: &str, redirect: &str, extra: &[&str]) -> RegisteredApp {
        let mut args = vec!["clients", "add", "--name", name, "--redirect-uri", redirect];
        args.extend_from_slice(extra);
        let v: Value = serde_json::from_str(self.cli(&args).ok().trim()).expect("one JSON line");
        RegisteredApp {
            id: v["client_id"].as_str().expect("client_id").to_string(),
            secret: v["client_secret"].as_str().map(str::to_string),
        }
    }
}

/// An app registered as an OpenID Connect client: its id, and its secret (none for a
/// public client).
#[derive(Clone)]
pub struct RegisteredApp {
    pub id: String,
    pub secret: Option<String>,
}

/// What one run of the binary said.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Exit 0; the stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        &self.stdout
    }

    /// Every stdout line as JSON (after exit 0).
    pub fn json_lines(&self) -> Vec<Value> {
        self.ok()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    }

    /// Exit 1 with one `latchkey: …` line on stderr and nothing on stdout; the line.
    pub fn refused(&self) -> &str {
        assert_eq!(self.code, Some(1), "{} / {}", self.stdout, self.stderr);
        assert_eq!(self.stdout, "");
        assert!(self.stderr.starts_with("latchkey: "), "{}", self.stderr);
        assert_eq!(self.stderr.lines().count(), 1, "{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        &self.stderr
    }
}
