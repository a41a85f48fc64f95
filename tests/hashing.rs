//! Password hashing as a resource an attacker would try to use up: registrations per
//! address, every verification counted against the address (right passwords too),
//! failures counted per network, a bounded wait for a hashing slot, and sign-ins
//! served before a flood of new accounts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use rocket::http::{ContentType, Status};

/// Limits high enough that only what a test looks at can throttle it.
fn unthrottled() -> TestApp {
    let many = 1_000_000;
    TestApp::new()
        .set("login_limit_account", many)
        .set("login_limit_ip", many)
        .set("login_limit_network", many)
        .set("hash_limit_ip", many)
        .set("register_limit_ip", many)
}

#[tokio::test]
async fn one_address_may_make_ten_accounts_an_hour() {
    let app = TestApp::new();
    // One browser registering again and again, signed in to the newest account.
    let b = app.browser().await;
    for _ in 0..10 {
        assert_eq!(b.register(&email()).await.status, Status::SeeOther);
    }
    let eleventh = email();
    let refused = b.register(&eleventh).await;
    assert_eq!(refused.status, Status::TooManyRequests, "{}", refused.body);
    let wait = refused.retry_after();
    assert!(wait > 3500 && wait <= 3600, "Retry-After {wait}");
    assert!(
        refused.body.contains("Too many new accounts"),
        "{}",
        refused.body
    );
    // Nothing was made.
    let elsewhere = app.browser().await.with_ip("192.0.2.59");
    assert_eq!(
        elsewhere.login(&eleventh, PASSWORD).await.status,
        Status::Unauthorized
    );
    // Another address is not affected.
    let other = app.browser().await.with_ip("192.0.2.60");
    assert_eq!(other.register(&email()).await.status, Status::SeeOther);
}

#[tokio::test]
async fn right_passwords_count_against_the_address_hashing_budget() {
    let app = TestApp::new().set("hash_limit_ip", 3);
    let email = email();
    app.browser()
        .await
        .with_ip("192.0.2.61")
        .register(&email)
        .await;
    // Each sign-in from a browser of its own, all at the address the harness's API
    // calls come from: the page and the API count against one budget.
    let from_here = || async { app.browser().await.with_ip(API_IP) };
    for _ in 0..2 {
        let b = from_here().await;
        assert_eq!(b.login(&email, PASSWORD).await.status, Status::SeeOther);
    }
    let b = from_here().await;
    Tokens::from(&password_attempt(&b, &email, PASSWORD).await);
    // The fourth verification from this address, right password and all: 429.
    let api = password_attempt(&b, &email, PASSWORD).await;
    api.assert_json_error(Status::TooManyRequests, "too_many_requests");
    assert!(api.retry_after() <= 60);
    let page = from_here().await.login(&email, PASSWORD).await;
    assert_eq!(page.status, Status::TooManyRequests);
    // Another address has its own budget.
    let other = app.browser().await.with_ip("192.0.2.62");
    assert_eq!(other.login(&email, PASSWORD).await.status, Status::SeeOther);
}

#[tokio::test]
async fn changing_the_password_counts_against_the_hashing_budget() {
    let app = TestApp::new().set("hash_limit_ip", 2);
    let (b, email) = app.signed_in_browser().await;
    let other = "another fine passphrase";
    assert_eq!(
        b.change_password(PASSWORD, other).await.status,
        Status::SeeOther
    );
    assert_eq!(
        b.change_password(other, PASSWORD).await.status,
        Status::SeeOther
    );
    let third = b.change_password(PASSWORD, other).await;
    assert_eq!(third.status, Status::TooManyRequests, "{}", third.body);
    assert!(third.header("Retry-After").is_some());
    // Refused before anything changed: the password is still the last one set.
    let elsewhere = app.browser().await.with_ip("192.0.2.63");
    assert_eq!(
        elsewhere.login(&email, PASSWORD).await.status,
        Status::SeeOther
    );
}

/// A wrong sign-in from `ip` for a fresh address.
async fn failure_from(app: &TestApp, ip: &str) -> Status {
    let b = app.browser().await.with_ip(ip);
    b.login(&email(), "guessing again").await.status
}

#[tokio::test]
async fn many_addresses_of_one_network_share_a_failure_budget() {
    let app = TestApp::new().set("login_limit_network", 4);
    for ip in [
        "203.0.113.10",
        "203.0.113.11",
        "203.0.113.12",
        "203.0.113.13",
    ] {
        assert_eq!(failure_from(&app, ip).await, Status::Unauthorized, "{ip}");
    }
    assert_eq!(
        failure_from(&app, "203.0.113.200").await,
        Status::TooManyRequests,
        "a fifth address of the same /24"
    );
    assert_eq!(
        failure_from(&app, "203.0.114.10").await,
        Status::Unauthorized,
        "another /24"
    );
    for ip in [
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2:ff::3",
        "2001:db8:1:2::4",
    ] {
        assert_eq!(failure_from(&app, ip).await, Status::Unauthorized, "{ip}");
    }
    assert_eq!(
        failure_from(&app, "2001:db8:1:2:abcd::99").await,
        Status::TooManyRequests,
        "a fifth address of the same /64"
    );
    assert_eq!(
        failure_from(&app, "2001:db8:1:3::1").await,
        Status::Unauthorized,
        "another /64"
    );
}

/// Posts a registration of `address` on `client`'s app with `token`.
async fn register_on(
    client: Arc<rocket::local::asynchronous::Client>,
    token: String,
    address: String,
) -> Status {
    let body = encode(&[
        ("email", &address),
        ("password", PASSWORD),
        ("csrf_token", &token),
    ]);
    client
        .post("/register")
        .header(ContentType::Form)
        .remote("203.0.113.5:40000".parse().expect("address"))
        .body(body)
        .dispatch()
        .await
        .status()
}

#[tokio::test]
async fn a_flood_of_registrations_does_not_make_sign_ins_wait() {
    const FLOOD: usize = 40;
    let app = unthrottled();
    let email = app.account().await;
    // The flood and the sign-in go to one app: one hasher. Every registration of the
    // flood is for the address already taken: each costs its Argon2 hash and then
    // answers 400 without writing, so the flood is hashing and nothing else.
    let b = app.browser().await;
    let token = b.get("/register").await.csrf();
    let done = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..FLOOD)
        .map(|_| {
            let (client, token, done) = (b.client.clone(), token.clone(), done.clone());
            let address = email.clone();
            tokio::spawn(async move {
                let status = register_on(client, token, address).await;
                if status == Status::BadRequest {
                    done.fetch_add(1, Ordering::SeqCst);
                }
                status
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;

    // Registrations hashed so far, and hashed while the sign-in ran.
    let before = done.load(Ordering::SeqCst);
    let signed_in = password_attempt(&b, &email, PASSWORD).await;
    let during = done.load(Ordering::SeqCst) - before;

    assert_eq!(signed_in.status, Status::Ok, "{}", signed_in.body);
    assert!(
        FLOOD - before >= 20,
        "the flood was still queued when the sign-in came ({before} done)"
    );
    // Queued behind the flood, it would have waited for nearly all of it.
    assert!(
        during <= 8,
        "the sign-in waited for {during} of {} queued registrations",
        FLOOD - before
    );
    // On a loaded machine the last of the flood may wait past the bound: 503.
    for t in flood {
        let status = t.await.expect("task");
        assert!(
            [Status::BadRequest, Status::ServiceUnavailable].contains(&status),
            "{status}"
        );
    }
}

#[tokio::test]
async fn past_the_bounded_wait_a_sign_in_is_refused_at_once_and_nothing_counts() {
    let app = unthrottled();
    let (b, email) = app.signed_in_browser().await;
    // How long one verification takes here, to queue about twice the bounded wait.
    let started = Instant::now();
    password_attempt(&b, &email, "calibrating").await;
    let one = started.elapsed().as_secs_f64().max(0.005);
    let burst = ((2.0 * 2.0 * SLOT_WAIT.as_secs_f64() / one) as usize).clamp(60, 800);

    let attempts: Vec<_> = (0..burst)
        .map(|i| {
            let b = b.clone();
            let email = email.clone();
            tokio::spawn(async move { password_attempt(&b, &email, &format!("guess {i}")).await })
        })
        .collect();
    let mut wrong = 0;
    let mut busy = 0;
    for a in attempts {
        let p = a.await.expect("task");
        match p.status {
            Status::Unauthorized => wrong += 1,
            Status::ServiceUnavailable => {
                p.assert_json_error(Status::ServiceUnavailable, "temporarily_unavailable");
                assert!((1..=5).contains(&p.retry_after()), "{:?}", p.headers);
                busy += 1;
            }
            other => panic!("unexpected {other}: {}", p.body),
        }
    }
    assert!(
        busy > 0,
        "{burst} attempts of {one:.3}s each never waited past the bound"
    );
    assert!(wrong > 0);
    // Only the attempts that were checked count against the account (and the calibration).
    let counted = app.quota_count("login:acct", &email.to_lowercase());
    assert_eq!(
        counted,
        wrong + 1,
        "{busy} refused as busy were not counted"
    );
    // And the server is itself again.
    Tokens::from(&password_attempt(&b, &email, PASSWORD).await);
}
