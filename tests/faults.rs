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
