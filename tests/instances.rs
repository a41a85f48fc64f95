//! Many instances: two real server processes sharing one Redis (single, or the test
//! Redis Cluster) and one accounts database (a SQLite file, or a PostgreSQL database);
//! and a Redis Cluster losing a master while Latchkey runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rocket::http::Status;

use crate::support::*;

const NEW_PASSWORD: &str = "a new and longer passphrase";
const NEWEST_PASSWORD: &str = "the newest passphrase of all";

/// Two servers on `app`'s store and accounts database (its SQLite file or its
/// PostgreSQL database, which lives as long as `app`), each with a directory and log
/// of its own.
fn two_servers(app: &TestApp) -> (AppProcess, AppProcess) {
    (app.spawn_server(), app.sibling().spawn_server())
}

/// A new test instance on `db` (PostgreSQL: a database of its own, dropped at the end).
fn config_on(db: Database) -> TestApp {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(TestApp::on(db))
}

/// The backend of `app`'s accounts database, and whether `email` has an account there.
fn account_in_database(app: &TestApp, email: &str) -> (&'static str, bool) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let backend = app.accounts().await.backend_name();
        (backend, app.user(email).await.is_some())
    })
}

/// The flow on two servers sharing `app`'s store and its accounts database, `db`.
fn sessions_and_sign_outs_are_shared(app: TestApp, db: Database) {
    let smtp = SmtpServer::start();
    let app = app
        .set("smtp_url", smtp.url())
        .set("new_device_mail", false)
        .set("login_limit_account", 4);
    let (a, b) = two_servers(&app);
    let email = email();

    // Registered on A, signed in on B.
    let mut first = Jar::default();
    a.register(&mut first, &email);
    let backend = if db == Database::Sqlite {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(account_in_database(&app, &email), (backend, true));
    assert!(b.signed_in(&mut first), "a session started on A works on B");

    // Sign-out on A: refused on B at the next request.
    let mut second = Jar::default();
    assert_eq!(b.login(&mut second, &email, PASSWORD).status, 303);
    assert!(a.signed_in(&mut second));
    let out = a.submit(&mut second.clone(), "/devices", "/logout", &[]);
    assert_eq!(out.status, 303);
    assert!(!b.signed_in(&mut second), "signed out on A, refused on B");

    // Revoke-others on A: B refuses the others, keeps this one.
    let (mut keep, mut other) = (Jar::default(), Jar::default());
    assert_eq!(a.login(&mut keep, &email, PASSWORD).status, 303);
    assert_eq!(b.login(&mut other, &email, PASSWORD).status, 303);
    assert_eq!(
        a.submit(&mut keep, "/devices", "/devices/revoke-others", &[])
            .status,
        303
    );
    assert!(!b.signed_in(&mut other));
    assert!(!b.signed_in(&mut first));
    assert!(b.signed_in(&mut keep));

    password_change_reset_and_failures_are_shared(&a, &b, &smtp, &email, keep);
}

/// Continues with the session `keep` (signed in, password `PASSWORD`).
fn password_change_reset_and_failures_are_shared(
    a: &AppProcess,
    b: &AppProcess,
    smtp: &SmtpServer,
    email: &str,
    mut keep: Jar,
) {
    // Password change on B: A refuses the other sessions.
    let mut later = Jar::default();
    assert_eq!(a.login(&mut later, email, PASSWORD).status, 303);
    let changed = b.submit(
        &mut keep,
        "/account/password",
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
        ],
    );
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert!(
        !a.signed_in(&mut later),
        "password changed on B, refused on A"
    );
    assert!(a.signed_in(&mut keep));

    // A reset code mailed by A (over real SMTP) is taken by B; every session ends.
    let mut anon = Jar::default();
    a.submit(
        &mut anon,
        "/password/forgot",
        "/password/forgot",
        &[("email", email)],
    );
    let code = tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(wait_for_reset_code(&smtp.received()));
    let reset = b.submit(
        &mut anon,
        "/password/reset",
        "/password/reset",
        &[
            ("email", email),
            ("code", &code),
            ("new_password", NEWEST_PASSWORD),
        ],
    );
    assert_eq!(reset.status, 303, "{}", reset.body);
    assert!(!a.signed_in(&mut keep), "reset on B, refused on A");

    // Sign-in failures on either count on both (login_limit_account = 4).
    for (server, n) in [(a, 1), (b, 2), (a, 3), (b, 4)] {
        assert_eq!(
            server.login(&mut Jar::default(), email, "wrong!").status,
            401,
            "failure {n}"
        );
    }
    assert_eq!(
        a.login(&mut Jar::default(), email, NEWEST_PASSWORD).status,
        429
    );
    assert_eq!(
        b.login(&mut Jar::default(), email, NEWEST_PASSWORD).status,
        429
    );
}

#[test]
fn two_servers_on_one_redis_and_sqlite_share_sessions_sign_outs_and_limits() {
    sessions_and_sign_outs_are_shared(config_on(Database::Sqlite), Database::Sqlite);
}

#[test]
fn two_servers_on_one_redis_and_postgres_share_sessions_sign_outs_and_limits() {
    sessions_and_sign_outs_are_shared(config_on(Database::Postgres), Database::Postgres);
}

#[test]
fn two_servers_on_a_redis_cluster_and_postgres_share_sessions_sign_outs_and_limits() {
    let app = config_on(Database::Postgres).on_cluster();
    sessions_and_sign_outs_are_shared(app, Database::Postgres);
}

fn refresh_on(server: &AppProcess, token: &str) -> (u16, serde_json::Value) {
    server.token(&[("grant_type", "refresh_token"), ("refresh_token", token)])
}

/// Two tabs of one program, their refreshes answered by two servers on a Redis
/// Cluster: the retry on B of the token A just rotated gets A's successor (the
/// servers share the key it is derived with), and the session goes on.
#[test]
fn a_refresh_retried_on_the_other_server_gets_the_same_successor() {
    let app = TestApp::new().on_cluster();
    let (a, b) = two_servers(&app);
    let email = email();
    a.register(&mut Jar::default(), &email);
    let (status, first) = a.token(&[
        ("grant_type", "password"),
        ("username", &email),
        ("password", PASSWORD),
    ]);
    assert_eq!(status, 200, "{first}");
    let first = first["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let (on_a, by_a) = refresh_on(&a, &first);
    let (on_b, by_b) = refresh_on(&b, &first);

    assert_eq!((on_a, on_b), (200, 200), "{by_a} {by_b}");
    let successor = by_a["refresh_token"].as_str().unwrap_or_default();
    assert!(!successor.is_empty(), "{by_a}");
    assert_eq!(by_b["refresh_token"].as_str(), Some(successor));
    assert_eq!(by_a["session_id"], by_b["session_id"]);
    let (next, answer) = refresh_on(&b, successor);
    assert_eq!(next, 200, "{answer}");
    // Now `first` is two rotations old: on either server, a replay.
    let (late, _) = refresh_on(&a, &first);
    assert_eq!(late, 401);
    let (ended, _) = refresh_on(&b, answer["refresh_token"].as_str().unwrap_or_default());
    assert_eq!(ended, 401, "the replay ended the session");
}

/// A 3-master cluster of this test's own (ports 7111-7113, bus ports +10000), with
/// append-only files so a master's data survives it being killed.
struct PrivateCluster {
    dir: PathBuf,
    ports: Vec<u16>,
}

impl PrivateCluster {
    fn start() -> PrivateCluster {
        Self::start_with(&[7111, 7112, 7113], &["--aof"])
    }

    /// Six nodes on 7121-7126 (bus ports +10000): three masters, a replica each.
    fn start_with_replicas() -> PrivateCluster {
        Self::start_with(&[7121, 7122, 7123, 7124, 7125, 7126], &["--replicas"])
    }

    fn start_with(ports: &[u16], flags: &[&str]) -> PrivateCluster {
        let dir = test_dir().join("cluster");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/redis-cluster");
        let ok = Command::new(script)
            .arg(&dir)
            .args(ports.iter().map(|p| p.to_string()))
            .args(flags)
            .status()
            .expect("scripts/redis-cluster runs");
        assert!(ok.success(), "the private cluster started");
        PrivateCluster {
            dir,
            ports: ports.to_vec(),
        }
    }

    fn nodes(&self) -> String {
        let urls: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect();
        urls.join(",")
    }

    fn cli(port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(port.to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The port of the master serving `key`, asked of a node that is up.
    fn master_of(&self, key: &str, ask: u16) -> u16 {
        let slot: u16 = Self::cli(ask, &["cluster", "keyslot", key])
            .parse()
            .expect("a slot");
        let nodes = Self::cli(ask, &["cluster", "nodes"]);
        nodes
            .lines()
            .filter(|l| l.contains("master"))
            .find_map(|l| {
                let fields: Vec<&str> = l.split(' ').collect();
                let port = fields[1]
                    .split('@')
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()?;
                fields[8..]
                    .iter()
                    .any(|range| serves(range, slot))
                    .then_some(port)
            })
            .expect("a master serves the slot")
    }

    fn kill(&self, port: u16) {
        let pid = std::fs::read_to_string(self.dir.join(port.to_string()).join("redis.pid"))
            .expect("the node's pid file");
        let killed = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert!(Instant::now() < deadline, "the node did not die");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn restart(&self, port: u16) {
        let start = self.dir.join(port.to_string()).join("start");
        assert!(Command::new(start).status().expect("start").success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Self::cli(port, &["cluster", "info"]).contains("cluster_state:ok") {
            assert!(Instant::now() < deadline, "the node did not rejoin");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// True when a `CLUSTER NODES` slot entry (`lo-hi` or one slot) holds `slot`.
fn serves(range: &str, slot: u16) -> bool {
    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
    match (lo.parse::<u16>(), hi.parse::<u16>()) {
        (Ok(lo), Ok(hi)) => (lo..=hi).contains(&slot),
        _ => false,
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        for &p in &self.ports {
            Self::cli(p, &["shutdown", "nosave"]);
        }
    }
}

/// Signs up users (each on a browser of its own) until one's keys live on `port` and
/// one's do not; returns a browser signed in as each: (on that master, elsewhere).
async fn users_on_and_off(
    cluster: &PrivateCluster,
    app: &TestApp,
    port: u16,
) -> (Browser, Browser) {
    let keys = app.key_names();
    let (mut on, mut off) = (None, None);
    while on.is_none() || off.is_none() {
        let b = app.browser().await;
        let reg = b.register(&email()).await;
        assert_eq!(reg.status, Status::SeeOther, "{}", reg.body);
        let cookie = b.session_cookie().expect("a session cookie");
        let uid = SessionCookie::parse(&cookie).expect("cookie").user_id;
        if cluster.master_of(&keys.user(&uid), cluster.ports[1]) == port {
            on.get_or_insert(b);
        } else {
            off.get_or_insert(b);
        }
    }
    match (on, off) {
        (Some(on), Some(off)) => (on, off),
        _ => unreachable!("the loop ends with both"),
    }
}

async fn devices_status(b: &Browser) -> Status {
    b.get("/devices").await.status
}

#[tokio::test]
async fn a_dead_master_fails_only_its_users_with_503_and_service_resumes() {
    let cluster = PrivateCluster::start();
    let app = TestApp::new()
        .set("redis_cluster_nodes", cluster.nodes())
        .set("register_limit_ip", 1000);
    let doomed = cluster.ports[0];
    let (on, off) = users_on_and_off(&cluster, &app, doomed).await;
    assert_eq!(devices_status(&on).await, Status::Ok);
    assert_eq!(devices_status(&off).await, Status::Ok);

    cluster.kill(doomed);
    // Right away, and again once the other masters have marked it failed (2 s).
    for wait in [0, 3000] {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let status = devices_status(&on).await;
        assert_eq!(status, Status::ServiceUnavailable, "after {wait} ms");
        assert_eq!(devices_status(&off).await, Status::Ok, "after {wait} ms");
    }
    // Most slots are served: ready, and the JSON names the slots no master serves.
    let ready = off.get("/health/ready").await;
    assert_eq!(ready.status, Status::Ok, "{}", ready.body);
    let body: serde_json::Value = serde_json::from_str(&ready.body).expect("JSON");
    assert_eq!(body["store"]["status"], "degraded", "{body}");
    let down = body["store"]["slots_down"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!down.is_empty(), "{body}");
    let served = body["store"]["slots_served"].as_u64().unwrap_or_default();
    assert!((8192..16384).contains(&served), "{body}");
    let missing: u64 = down
        .iter()
        .map(|r| r[1].as_u64().unwrap_or_default() - r[0].as_u64().unwrap_or_default() + 1)
        .sum();
    assert_eq!(served + missing, 16384, "{body}");
    // The doomed master's own slots are among them (asked of a node that is up).
    let doomed_range = PrivateCluster::cli(cluster.ports[1], &["cluster", "nodes"])
        .lines()
        .find(|l| l.contains(&format!(":{doomed}@")))
        .map(|l| l.split(' ').skip(8).map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    for range in doomed_range {
        let first: u64 = range
            .split('-')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        assert!(
            down.iter().any(|r| r[0].as_u64() == Some(first)),
            "{range} not in {body}"
        );
    }

    cluster.restart(doomed);
    let deadline = Instant::now() + Duration::from_secs(15);
    while devices_status(&on).await != Status::Ok {
        assert!(
            Instant::now() < deadline,
            "service did not resume without a restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(devices_status(&off).await, Status::Ok);
}

#[tokio::test]
async fn a_dead_master_s_replica_takes_over_and_its_users_are_served_again() {
    let cluster = PrivateCluster::start_with_replicas();
    let app = TestApp::new()
        .set("redis_cluster_nodes", cluster.nodes())
        .set("register_limit_ip", 1000);
    let ask = cluster.ports[1];
    let doomed = cluster.master_of("{doomed}", ask);
    let (on, off) = users_on_and_off(&cluster, &app, doomed).await;
    assert_eq!(devices_status(&on).await, Status::Ok);
    // Replication is asynchronous: give the replica a moment (on loopback it lags by
    // milliseconds) so that the sessions just written are on it.
    tokio::time::sleep(Duration::from_millis(500)).await;

    cluster.kill(doomed);
    let killed = Instant::now();
    // The replica is promoted after cluster-node-timeout (2 s) and an election; the
    // same app (no restart) finds the new master and the same session is valid there.
    let deadline = killed + Duration::from_secs(20);
    loop {
        let status = devices_status(&on).await;
        assert_ne!(status.code, 500);
        if status == Status::Ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never served: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = killed.elapsed();
    assert_eq!(devices_status(&off).await, Status::Ok);
    assert!(
        on.is_signed_in().await,
        "the session written before the kill is valid"
    );
    let ready = off.get("/health/ready").await;
    assert_eq!(ready.status, Status::Ok, "{}", ready.body);
    eprintln!("served again {took:?} after the master was killed");
}
