//! Failure: Redis going away and coming back, and every kind of bad input. The answer
//! is a clear 4xx or 503, never a 500, and nothing changes.

use std::time::{Duration, Instant};

use crate::support::*;
use rocket::http::{ContentType, Header, Status};

#[tokio::test]
async fn redis_going_away_answers_503_quickly_and_service_resumes_by_itself() {
    let mut redis = OwnRedis::start();
    let app = TestApp::new().with_redis(&redis.url());
    let (b, email) = app.signed_in_browser().await;
    assert!(b.is_signed_in().await);

    redis.stop();

    for path in ["/devices", "/health", "/"] {
        let started = Instant::now();
        let res = b.get(path).await;
        assert_eq!(res.status, Status::ServiceUnavailable, "{path}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    let page = b.get("/devices").await;
    assert!(
        page.body.contains("temporarily unavailable"),
        "{}",
        page.body
    );
    let login = b
        .post_raw("/login", "email=a%40b.c&password=x&csrf_token=y")
        .await;
    assert_eq!(login.status, Status::ServiceUnavailable);
    let health = b.get("/health").await;
    assert!(
        health
            .body
            .contains("\"store\":{\"backend\":\"redis\",\"status\":\"unavailable\"}"),
        "{}",
        health.body
    );

    redis.restart();

    // No restart of the app: the next requests simply work again. (This Redis keeps
    // nothing on disk, so the session is gone and the person signs in again.)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = b.get("/health").await;
        if res.status == Status::Ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "service did not resume: {}",
            res.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = app.browser().await;
    let res = again.login(&email, PASSWORD).await;
    assert_eq!(res.status, Status::SeeOther);
    assert!(again.is_signed_in().await);
}

#[tokio::test]
async fn malformed_session_cookies_are_simply_signed_out() {
    let app = TestApp::new();
    let (b, _) = app.signed_in_browser().await;
    let real = b.session_cookie().expect("cookie");
    let (uid, secret) = real.split_once('.').unwrap();
    let attempts = vec![
        String::new(),
        ".".into(),
        "garbage".into(),
        format!("{uid}."),
        format!("{uid}.{}", &secret[..42]),
        format!("{uid}.{secret}extra"),
        format!("{}.{secret}", uuid::Uuid::now_v7()),
        format!("{uid}.{}", "%00".repeat(20)),
        format!("{uid}.{}", "A".repeat(43)),
        "x".repeat(4000),
        format!("{uid}.{secret}.{secret}"),
        "\u{fffd}\u{fffd}".into(),
    ];
    // The way they are sent below works: the real value, sent so, is signed in.
    let copy = app.browser().await;
    let res = copy.get_presenting("/devices", "latchkey", &real).await;
    assert_eq!(res.status, Status::Ok, "the real cookie, presented");
    for value in attempts {
        // Presented with the request itself: `Client::cookies()` is a copy, and a cookie
        // added to it is never sent.
        let other = app.browser().await;
        let res = other.get_presenting("/devices", "latchkey", &value).await;
        assert_eq!(res.status, Status::SeeOther, "cookie {value:?}");
        assert_eq!(res.location.as_deref(), Some("/login?next=/devices"));
    }
    assert!(b.is_signed_in().await);
}

#[tokio::test]
async fn odd_forms_get_a_clear_4xx() {
    let app = TestApp::new();
    let b = app.browser().await;
    let token = b.get("/register").await.csrf();

    let huge = format!(
        "email={}&password=x&csrf_token={token}",
        "a".repeat(40 * 1024)
    );
    let too_large = b.post_raw("/register", &huge).await;
    assert_eq!(too_large.status, Status::PayloadTooLarge);

    let long_email = format!("{}@example.com", "a".repeat(300));
    let res = b
        .post_form(
            "/register",
            &token,
            &[("email", &long_email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status, Status::BadRequest);

    for body in [
        format!("email=%FF%FE&password=%C3%28xxxxxxxx&csrf_token={token}"),
        format!("email=&password=&csrf_token={token}"),
        format!("email[]=a&password=b&csrf_token={token}"),
        format!("%%%=&&&==&csrf_token={token}"),
    ] {
        for path in ["/register", "/login", "/password/forgot", "/password/reset"] {
            let res = b.post_raw(path, &body).await;
            assert!(
                res.status.code >= 400 && res.status.code < 500,
                "{path} {body}: {}",
                res.status
            );
        }
    }

    let res = b
        .post_raw(
            "/login",
            &format!("email=a%40b.c&password=xxxxxxxxxx&remember=maybe&csrf_token={token}"),
        )
        .await;
    assert!(
        res.status.code >= 400 && res.status.code < 500,
        "{}",
        res.status
    );

    // Non-UTF-8 bytes in the raw body.
    let res = b
        .client
        .post("/login")
        .header(ContentType::Form)
        .body(b"email=\xff\xfe&password=\xc3\x28&csrf_token=x")
        .dispatch()
        .await;
    assert!(
        res.status().code >= 400 && res.status().code < 500,
        "{}",
        res.status()
    );

    // A JSON body where a form belongs.
    let res = b
        .client
        .post("/login")
        .header(ContentType::JSON)
        .header(Header::new("User-Agent", "x"))
        .body("{\"email\":1}")
        .dispatch()
        .await;
    assert!(
        res.status().code >= 400 && res.status().code < 500,
        "{}",
        res.status()
    );
    assert!(b.session_cookie().is_none());
}

#[tokio::test]
async fn unknown_paths_and_methods_are_plain_4xx_pages() {
    let app = TestApp::new();
    let b = app.browser().await;
    let res = b.get("/nope/%FF%00").await;
    assert_eq!(res.status, Status::NotFound);
    assert!(res.body.contains("Page not found"));
    let res = b.post_raw("/nope", "").await;
    assert_eq!(res.status, Status::NotFound);
}

#[tokio::test]
async fn a_wrong_setting_stops_the_start_with_its_name() {
    for wrong in [
        TestApp::new().set("session_idle_timeout", -5),
        TestApp::new().set("trusted_proxies", vec!["not-a-cidr"]),
        TestApp::new().set("jwt_secret", "short"),
        TestApp::new().set("redis_url", "http://example.com"),
    ] {
        assert!(
            !wrong.starts().await,
            "the app started with a wrong setting"
        );
    }
    // And the message names the setting.
    let figment = TestApp::new().set("max_sessions_per_user", 0).figment();
    let e = Settings::from_figment(&figment).expect_err("refused");
    assert_eq!(e.name, "max_sessions_per_user");
    assert!(e
        .to_string()
        .contains("invalid setting `max_sessions_per_user`"));
}

#[tokio::test]
async fn the_first_sign_in_after_a_redis_restart_succeeds() {
    let mut redis = OwnRedis::start();
    let app = TestApp::new().with_redis(&redis.url());
    let (b, email) = app.signed_in_browser().await;
    assert!(b.is_signed_in().await);
    // Back at once, and back after the connection's own reconnect has already failed.
    for (round, down_for) in [0, 400, 0, 400].into_iter().enumerate() {
        redis.stop();
        tokio::time::sleep(Duration::from_millis(down_for)).await;
        redis.restart();
        // No /health poll, no wait: the very next requests are a sign-in (the
        // limiter and the new session: calls that must not be sent twice), and they
        // must not answer 503.
        let signed = app.browser().await;
        let res = signed.login(&email, PASSWORD).await;
        assert_eq!(res.status, Status::SeeOther, "round {round}: {}", res.body);
        assert!(signed.is_signed_in().await, "round {round}");
    }
}

#[tokio::test]
async fn readiness_follows_redis_and_liveness_does_not() {
    let mut redis = OwnRedis::start();
    let app = TestApp::new().with_redis(&redis.url());
    let b = app.browser().await;
    for path in ["/health/live", "/health/ready", "/health"] {
        let res = b.get(path).await;
        assert_eq!(res.status, Status::Ok, "{path}: {}", res.body);
        assert!(
            res.body.contains("\"status\":\"ok\""),
            "{path}: {}",
            res.body
        );
    }

    redis.stop();
    let live = b.get("/health/live").await;
    assert_eq!(live.status, Status::Ok, "the process still serves");
    let ready = b.get("/health/ready").await;
    assert_eq!(ready.status, Status::ServiceUnavailable);
    let body: serde_json::Value = serde_json::from_str(&ready.body).expect("JSON");
    assert_eq!(body["store"]["status"], "unavailable", "{body}");
    assert_eq!(body["database"]["status"], "ok", "{body}");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.get("/health/ready").await.status != Status::Ok {
        assert!(Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
