//! Fault tests: Redis killed under load, Redis paused, the account database read-only.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::*;
use rocket::http::Status;

#[tokio::test]
async fn redis_killed_under_load_gives_only_503s_and_no_mixed_up_sessions() {
    let mut redis = OwnRedis::start();
    let app = TestApp::new().with_redis(&redis.url());
    // Eight people, each signed in, each with their own browser.
    let mut people = Vec::new();
    for _ in 0..8 {
        let (b, e) = app.signed_in_browser().await;
        people.push((e, b));
    }

    let load = |people: &Vec<(String, Browser)>| {
        let tasks: Vec<_> = people
            .iter()
            .map(|(e, b)| {
                let (client, e) = (b.client.clone(), e.clone());
                tokio::spawn(async move {
                    let mut seen: HashMap<u16, usize> = HashMap::new();
                    for _ in 0..15 {
                        let res = client.get("/devices").dispatch().await;
                        let status = res.status().code;
                        let body = res.into_string().await.unwrap_or_default();
                        if status == 200 {
                            assert!(body.contains(&e), "a page showed someone else's account");
                        }
                        *seen.entry(status).or_default() += 1;
                    }
                    seen
                })
            })
            .collect();
        tasks
    };

    let running = load(&people);
    tokio::time::sleep(Duration::from_millis(30)).await;
    redis.stop();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for t in running {
        for (s, n) in t.await.expect("no panic in a request") {
            *statuses.entry(s).or_default() += n;
        }
    }
    // Sign-ins during the outage.
    for (e, b) in &people {
        let body = encode(&[
            ("email", e),
            ("password", PASSWORD),
            ("csrf_token", "from-an-earlier-page"),
        ]);
        let res = b.post_raw("/login", &body).await;
        *statuses.entry(res.status.code).or_default() += 1;
    }
    let unexpected: Vec<_> = statuses
        .keys()
        .filter(|s| ![200, 303, 503].contains(*s))
        .collect();
    assert!(
        unexpected.is_empty(),
        "answers during the outage: {statuses:?}"
    );
    assert!(statuses.get(&503).copied().unwrap_or(0) > 0, "{statuses:?}");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while people[0].1.get("/health").await.status != Status::Ok {
        assert!(Instant::now() < deadline, "service did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Everyone signs in again and sees only their own account. Each person's instance
    // has connections that have not been used since Redis died; a sign-in (not resent:
    // it is not safe to run twice) that finds one answers 503, changing nothing, and
    // that call sets off the reconnect, so a second try goes through.
    for (e, b) in &people {
        b.clear_cookies().await;
        let mut res = b.login(e, PASSWORD).await;
        if res.status == Status::ServiceUnavailable {
            res = b.login(e, PASSWORD).await;
        }
        assert_eq!(res.status, Status::SeeOther, "{}", res.body);
    }
    for t in load(&people) {
        let seen = t.await.expect("no panic");
        assert_eq!(seen.get(&200).copied(), Some(15), "{seen:?}");
    }
}

#[tokio::test]
async fn a_paused_redis_answers_503_within_about_a_second() {
    let redis = OwnRedis::start();
    let app = TestApp::new().with_redis(&redis.url());
    let (b, _) = app.signed_in_browser().await;

    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .unwrap();

    let started = Instant::now();
    let res = b.get("/devices").await;
    let took = started.elapsed();
    assert_eq!(res.status, Status::ServiceUnavailable);
    assert!(took < Duration::from_millis(1500), "took {took:?}");

    // When the pause ends, the same browser is served again.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.is_signed_in().await {
        assert!(
            Instant::now() < deadline,
            "service did not resume after the pause"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_read_only_account_database_refuses_registration_clearly_and_still_signs_people_in() {
    let app = TestApp::new();
    let email = app.account().await;
    // The same database, opened read-only (as on a read-only mount).
    let db = app.dir.join("accounts.db");
    let ro = app
        .clone()
        .set("database_url", format!("sqlite://{}?mode=ro", db.display()));

    let b = ro.browser().await;
    let res = b.register(&crate::support::email()).await;
    assert_eq!(res.status, Status::ServiceUnavailable);
    assert!(
        res.body.contains("cannot be saved right now"),
        "{}",
        res.body
    );

    let b = ro.browser().await.with_agent(SAFARI_IOS);
    assert_eq!(b.login(&email, PASSWORD).await.status, Status::SeeOther);
    assert!(b.is_signed_in().await);
    let change = b.change_password(PASSWORD, "another fine passphrase").await;
    assert_eq!(change.status, Status::ServiceUnavailable);
    assert!(b.is_signed_in().await);
}

/// A Redis that is there but slow to answer the server's first ping (paused for 2 s, more
/// than one call budget of 900 ms) does not stop the server from starting: the start
/// pings again after a timeout. On a loaded machine the first round trip of a new
/// connection took longer than one budget, and a test server refused to start.
#[test]
fn a_server_starts_when_redis_is_slow_to_answer_its_first_ping() {
    let redis = OwnRedis::start();
    let app = TestApp::new().with_redis(&redis.url());
    let mut conn = redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("a Redis connection");
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .query(&mut conn)
        .expect("CLIENT PAUSE");
    let server = app.spawn_server();
    server.assert_healthy();
}

/// A PostgreSQL of the test's own: a throw-away cluster (initdb) on a spare port,
/// stopped and started by the test. Run as the `postgres` user when the tests run as
/// root (PostgreSQL refuses root), as scripts/test does for the shared one.
struct OwnPostgres {
    bin: std::path::PathBuf,
    dir: std::path::PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn pg(&self, tool: &str) -> std::process::Command {
        let is_root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let mut cmd = if is_root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            c
        } else {
            std::process::Command::new(self.bin.join(tool))
        };
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    }

    fn start() -> OwnPostgres {
        let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (scripts/test installs it)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .collect();
        bins.sort();
        let bin = bins.pop().expect("an initdb");
        let dir = std::env::temp_dir().join(format!("latchkey-pg-{}", unique("blink")));
        std::fs::create_dir_all(&dir).expect("a directory");
        let pg = OwnPostgres {
            bin,
            dir,
            port: spare_port(),
        };
        let _ = std::process::Command::new("chown")
            .args(["postgres:"])
            .arg(&pg.dir)
            .status();
        let ok = pg
            .pg("initdb")
            .arg("-D")
            .arg(pg.dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "--no-sync"])
            .status()
            .expect("initdb runs");
        assert!(ok.success(), "initdb");
        pg.up();
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let ok = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "start", "-o", &opts])
            .status()
            .expect("pg_ctl runs");
        assert!(ok.success(), "PostgreSQL started");
    }

    fn down(&self, mode: &str) {
        let ok = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-t", "60", "stop", "-m", mode])
            .status()
            .expect("pg_ctl runs");
        assert!(ok.success(), "PostgreSQL stopped");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "stop", "-m", "immediate"])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_postgresql_blink_answers_503_never_500_and_the_pool_reconnects() {
    let pg = OwnPostgres::start();
    let mut app = TestApp::new();
    app.database_url = pg.url();
    let (b, address) = app.signed_in_browser().await;
    let newcomer = app.browser().await;
    assert_eq!(newcomer.get("/register").await.status, Status::Ok);
    let again = app.browser().await;

    pg.down("immediate");
    // During the outage: registrations, sign-ins and the signed-in pages answer 503
    // (or are served from Redis alone), never 500; nothing is half-written.
    let lost = email();
    let reg = newcomer.register(&lost).await;
    assert_eq!(reg.status, Status::ServiceUnavailable, "{}", reg.body);
    let login = again.login(&address, PASSWORD).await;
    assert_eq!(login.status, Status::ServiceUnavailable, "{}", login.body);
    for path in ["/devices", "/account/security", "/api/v1/me"] {
        let status = b.get(path).await.status;
        assert_ne!(status.code, 500, "{path}");
    }
    let ready = b.get("/health/ready").await;
    assert_eq!(ready.status, Status::ServiceUnavailable);
    assert!(
        ready
            .body
            .contains("\"database\":{\"status\":\"unavailable\"}"),
        "{}",
        ready.body
    );

    pg.up();
    // Back with no restart of the app: the same instance (the same pool) serves again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.get("/health/ready").await.status != Status::Ok {
        assert!(Instant::now() < deadline, "the pool did not reconnect");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        app.user(&lost).await.is_none(),
        "the refused registration left nothing"
    );
    let reg = newcomer.register(&lost).await;
    assert_eq!(reg.status, Status::SeeOther, "{}", reg.body);
    assert!(app.user(&lost).await.is_some());
    assert!(b.is_signed_in().await);
}
