//! Sign-in throttling, as an attacker would probe it.

use std::time::Duration;

use crate::support::*;
use rocket::http::Status;

#[tokio::test]
async fn a_burst_of_wrong_passwords_gets_exactly_the_quota_through() {
    let app = TestApp::new();
    let email = app.account().await;
    let attacker = app.browser().await.with_ip("198.51.100.20");
    let token = attacker.get("/login").await.csrf();

    let attempts = (0..50).map(|i| {
        let client = attacker.client.clone();
        let body = encode(&[
            ("email", &email),
            ("password", &format!("guess-{i}")),
            ("csrf_token", &token),
        ]);
        tokio::spawn(async move {
            client
                .post("/login")
                .header(rocket::http::ContentType::Form)
                .remote("198.51.100.20:5000".parse().unwrap())
                .body(body)
                .dispatch()
                .await
                .status()
        })
    });
    let mut statuses = Vec::new();
    for a in attempts {
        statuses.push(a.await.unwrap());
    }

    let wrong = statuses
        .iter()
        .filter(|s| **s == Status::Unauthorized)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == Status::TooManyRequests)
        .count();
    assert_eq!(wrong, 5, "{statuses:?}");
    assert_eq!(throttled, 45);
}

#[tokio::test]
async fn the_right_password_waits_out_the_window_too() {
    // Long enough that five Argon2 checks fit in it on a loaded 2-core machine.
    let app = TestApp::new().set("login_limit_window", 8);
    let email = app.account().await;
    let b = app.browser().await;
    for _ in 0..5 {
        assert_eq!(
            b.login(&email, "wrong password!").await.status,
            Status::Unauthorized
        );
    }

    let refused = b.login(&email, PASSWORD).await;

    assert_eq!(refused.status, Status::TooManyRequests);
    let wait = refused.retry_after();
    assert!((1..=8).contains(&wait), "Retry-After {wait}");
    assert!(refused.body.contains("Too many sign-in attempts"));
    assert!(
        (1..=8).any(|n| refused.body.contains(&format!("wait {n} second"))),
        "{}",
        refused.body
    );
    assert!(b.session_cookie().is_none());

    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    let ok = b.login(&email, PASSWORD).await;
    assert_eq!(ok.status, Status::SeeOther);
    assert!(b.is_signed_in().await);
}

#[tokio::test]
async fn the_wait_is_said_in_words_and_in_retry_after() {
    let app = TestApp::new();
    let email = app.account().await;
    let b = app.browser().await;
    for _ in 0..5 {
        b.login(&email, "wrong password!").await;
    }
    let refused = b.login(&email, "wrong password!").await;
    assert_eq!(refused.status, Status::TooManyRequests);
    let wait = refused.retry_after();
    assert!(wait > 14 * 60 && wait <= 15 * 60, "Retry-After {wait}");
    assert!(refused.body.contains("wait 15 minutes"), "{}", refused.body);
}

#[tokio::test]
async fn one_ip_guessing_across_many_accounts_is_stopped() {
    let app = TestApp::new().set("login_limit_ip", 4);
    let victims: Vec<String> = (0..6).map(|_| email()).collect();
    for v in &victims {
        app.browser().await.with_ip("192.0.2.1").register(v).await;
    }
    let attacker = app.browser().await.with_ip("198.51.100.66");
    let mut statuses = Vec::new();
    for v in &victims {
        statuses.push(attacker.login(v, "Summer2024!").await.status);
    }
    assert_eq!(&statuses[..4], &[Status::Unauthorized; 4]);
    assert_eq!(&statuses[4..], &[Status::TooManyRequests; 2]);
    // Another IP is not affected.
    let someone = app.browser().await.with_ip("192.0.2.77");
    assert_eq!(
        someone.login(&victims[5], PASSWORD).await.status,
        Status::SeeOther
    );
}

#[tokio::test]
async fn a_success_does_not_reset_the_ip_budget() {
    let app = TestApp::new().set("login_limit_ip", 4);
    let mine = email();
    app.browser()
        .await
        .with_ip("192.0.2.1")
        .register(&mine)
        .await;
    let b = app.browser().await.with_ip("198.51.100.9");
    for _ in 0..3 {
        assert_eq!(
            b.login(&email(), "nope nope nope").await.status,
            Status::Unauthorized
        );
    }
    assert_eq!(b.login(&mine, PASSWORD).await.status, Status::SeeOther);
    let c = app.browser().await.with_ip("198.51.100.9");
    assert_eq!(
        c.login(&email(), "nope nope nope").await.status,
        Status::Unauthorized
    );
    assert_eq!(
        c.login(&email(), "nope nope nope").await.status,
        Status::TooManyRequests
    );
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let app = TestApp::new().set("login_limit_ip", 3);
    let mut statuses = Vec::new();
    for i in 0..5 {
        let b = app
            .browser()
            .await
            .with_ip("198.51.100.44")
            .with_forwarded_for(&format!("203.0.113.{i}"));
        statuses.push(b.login(&email(), "guessing again").await.status);
    }
    assert_eq!(
        statuses,
        vec![
            Status::Unauthorized,
            Status::Unauthorized,
            Status::Unauthorized,
            Status::TooManyRequests,
            Status::TooManyRequests
        ]
    );
    // And the devices page shows the socket address, not the claimed one.
    let b = app
        .browser()
        .await
        .with_ip("192.0.2.200")
        .with_forwarded_for("1.2.3.4");
    b.register(&email()).await;
    let page = b.get("/devices").await.body;
    assert!(page.contains("192.0.2.200"));
    assert!(!page.contains("1.2.3.4"));
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_counts() {
    let app = TestApp::new()
        .set("trusted_proxies", vec!["10.0.0.0/8"])
        .set("login_limit_ip", 2);
    // The proxy chain: client 203.0.113.9 → 10.1.1.1 → peer 10.0.0.1. A left-most
    // address the client wrote itself (1.2.3.4) is not believed.
    let b = app
        .browser()
        .await
        .with_ip("10.0.0.1")
        .with_forwarded_for("1.2.3.4, 203.0.113.9, 10.1.1.1");
    b.register(&email()).await;
    let page = b.get("/devices").await.body;
    assert!(page.contains("203.0.113.9"), "{page}");

    for _ in 0..2 {
        let x = app
            .browser()
            .await
            .with_ip("10.0.0.1")
            .with_forwarded_for("203.0.113.50");
        assert_eq!(
            x.login(&email(), "wrong wrong").await.status,
            Status::Unauthorized
        );
    }
    let x = app
        .browser()
        .await
        .with_ip("10.0.0.1")
        .with_forwarded_for("203.0.113.50");
    assert_eq!(
        x.login(&email(), "wrong wrong").await.status,
        Status::TooManyRequests
    );
    // A different client behind the same proxy has its own budget.
    let y = app
        .browser()
        .await
        .with_ip("10.0.0.1")
        .with_forwarded_for("203.0.113.51");
    assert_eq!(
        y.login(&email(), "wrong wrong").await.status,
        Status::Unauthorized
    );
}

/// Four wrong sign-ins through the trusted proxy `peer`, the `i`-th with the
/// `X-Forwarded-For` that `header(i)` makes.
async fn failures_through(app: &TestApp, peer: &str, header: impl Fn(u8) -> String) -> Vec<Status> {
    let mut statuses = Vec::new();
    for i in 0..4 {
        let b = app
            .browser()
            .await
            .with_ip(peer)
            .with_forwarded_for(&header(i));
        statuses.push(b.login(&email(), "wrong wrong").await.status);
    }
    statuses
}

/// The devices page of a new account made through `peer` with `header`.
async fn devices_through(app: &TestApp, peer: &str, header: &str) -> String {
    let b = app.browser().await.with_ip(peer).with_forwarded_for(header);
    b.register(&email()).await;
    b.get("/devices").await.body
}

#[tokio::test]
async fn a_forwarded_entry_that_is_not_an_address_is_never_skipped() {
    let app = TestApp::new()
        .set("trusted_proxies", vec!["10.0.0.0/8"])
        .set("login_limit_ip", 2);
    let throttled_after_two = [
        Status::Unauthorized,
        Status::Unauthorized,
        Status::TooManyRequests,
        Status::TooManyRequests,
    ];
    // The proxy appends the real client with its port; the attacker rotates what it
    // writes on the left. The client is 5.6.7.8 every time.
    let statuses = failures_through(&app, "10.0.0.1", |i| format!("9.9.9.{i}, 5.6.7.8:4711")).await;
    assert_eq!(statuses, throttled_after_two);
    let page = devices_through(&app, "10.0.0.1", "9.9.9.9, [2001:db8::5]:4711").await;
    assert!(page.contains("2001:db8::5"), "{page}");
    assert!(!page.contains("9.9.9.9"));

    // An entry that still is not an address ends the walk at the proxy: whatever the
    // attacker writes to its left is not believed, so all of it counts as one client.
    let statuses = failures_through(&app, "10.0.0.2", |i| format!("9.9.8.{i}, garbage")).await;
    assert_eq!(statuses, throttled_after_two);
    let page = devices_through(&app, "10.0.0.3", "9.9.7.7, garbage").await;
    assert!(page.contains("10.0.0.3"), "{page}");
    assert!(!page.contains("9.9.7.7"));
}

#[test]
fn the_client_ip_is_the_rightmost_untrusted_hop() {
    let figment = TestApp::new()
        .set("trusted_proxies", vec!["10.0.0.0/8", "::1"])
        .figment();
    let settings = Settings::from_figment(&figment).unwrap();
    let ip = |peer: &str, xff: Option<&str>| {
        ClientIp::resolve(
            Some(peer.parse().unwrap()),
            xff,
            &settings.server.trusted_proxies,
        )
        .text()
    };
    assert_eq!(ip("198.51.100.1", Some("1.1.1.1")), "198.51.100.1");
    assert_eq!(ip("10.0.0.1", Some("1.1.1.1, 2.2.2.2")), "2.2.2.2");
    assert_eq!(ip("10.0.0.1", Some("1.1.1.1, 10.9.9.9")), "1.1.1.1");
    assert_eq!(ip("10.0.0.1", Some("garbage, 2.2.2.2")), "2.2.2.2");
    assert_eq!(ip("10.0.0.1", None), "10.0.0.1");
    assert_eq!(ip("10.0.0.1", Some("not an ip")), "10.0.0.1");
    assert_eq!(ip("::1", Some("2001:db8::7")), "2001:db8::7");
    assert_eq!(ip("::ffff:198.51.100.3", None), "198.51.100.3");
}
