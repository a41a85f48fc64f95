//! Strangers cannot lock the owner out (OWASP's device cookies), tried as an attacker
//! would: failures from another address fill the account's quotas, and the owner's
//! own browser, which has signed in before, still gets in and can still ask for a
//! reset code, while every stranger stays throttled exactly as before.

use std::time::Duration;

use crate::common::*;
use rocket::http::{ContentType, Cookie, Status};

/// The owner's browser: registered there (which trusts it), then signed out.
async fn owners_browser(cfg: &TestConfig, email: &str) -> Browser {
    let owner = cfg.browser().await;
    assert_eq!(owner.register(email).await.status, Status::SeeOther);
    let token = owner.get("/devices").await.csrf();
    owner.post_form("/logout", &token, &[]).await;
    assert!(!owner.is_signed_in().await);
    owner
}

/// Five wrong passwords from a stranger's address, on the page and in the API.
async fn strangers_fill_the_account_quota(cfg: &TestConfig, email: &str) {
    let stranger = cfg.browser().await.with_ip("198.51.100.66");
    for _ in 0..3 {
        let p = stranger.login(email, "Summer2024!").await;
        assert_eq!(p.status, Status::Unauthorized);
    }
    for _ in 0..2 {
        let p = password_attempt(&stranger, email, "Winter2024!").await;
        p.assert_json_error(Status::Unauthorized, "invalid_grant");
    }
}

fn device_cookie(b: &Browser) -> Option<String> {
    b.client
        .cookies()
        .get("latchkey_device")
        .map(|c| c.value().to_string())
}

#[tokio::test]
async fn a_stranger_cannot_lock_the_owners_browser_out() {
    let cfg = TestConfig::new();
    let email = email();
    let owner = owners_browser(&cfg, &email).await;
    strangers_fill_the_account_quota(&cfg, &email).await;

    // Strangers are throttled as before, with the right password too, from anywhere.
    let elsewhere = cfg.browser().await.with_ip("192.0.2.44");
    let refused = elsewhere.login(&email, PASSWORD).await;
    assert_eq!(refused.status, Status::TooManyRequests);
    assert!(refused.header("Retry-After").is_some());
    password_attempt(&elsewhere, &email, PASSWORD)
        .await
        .assert_json_error(Status::TooManyRequests, "too_many_requests");

    // The owner's browser is not.
    let back = owner.login(&email, PASSWORD).await;
    assert_eq!(back.status, Status::SeeOther, "{}", back.body);
    assert!(owner.is_signed_in().await);
}

#[tokio::test]
async fn a_device_cookie_that_fails_too_often_is_locked_out_itself() {
    let cfg = TestConfig::new();
    let email = email();
    let owner = owners_browser(&cfg, &email).await;
    for _ in 0..5 {
        let p = owner.login(&email, "not my password").await;
        assert_eq!(p.status, Status::Unauthorized);
    }
    let refused = owner.login(&email, PASSWORD).await;
    assert_eq!(refused.status, Status::TooManyRequests, "{}", refused.body);
    // Its failures were its own: they did not use up the account's budget.
    let elsewhere = cfg.browser().await.with_ip("192.0.2.45");
    assert_eq!(
        elsewhere.login(&email, PASSWORD).await.status,
        Status::SeeOther
    );
}

#[tokio::test]
async fn a_forged_tampered_or_borrowed_device_cookie_is_a_strangers() {
    let cfg = TestConfig::new();
    let (mine, theirs) = (email(), email());
    let owner = owners_browser(&cfg, &mine).await;
    let my_uid = user_id_of(&cfg, &mine).await;
    cfg.browser().await.register(&theirs).await;
    strangers_fill_the_account_quota(&cfg, &mine).await;
    strangers_fill_the_account_quota(&cfg, &theirs).await;

    // My genuine cookie is for my account only.
    let genuine = device_cookie(&owner).expect("registering set a device cookie");
    assert_eq!(
        owner.login(&theirs, PASSWORD).await.status,
        Status::TooManyRequests
    );
    // A cookie the server did not encrypt is no cookie at all; nor is a tampered one.
    let last = if genuine.ends_with('A') { "B" } else { "A" };
    let tampered = format!("{}{last}", &genuine[..genuine.len() - 1]);
    for forged in [format!("{my_uid}.{}", "A".repeat(43)), tampered] {
        let forger = cfg.browser().await.with_ip("198.51.100.67");
        assert_eq!(
            login_presenting(&forger, &forged, &mine).await,
            Status::TooManyRequests,
            "{forged}"
        );
    }
    // The same bytes as the genuine cookie do work (it is a bearer credential, kept
    // HttpOnly): what refused the others was the check, not the way they were sent.
    let copy = cfg.browser().await.with_ip("198.51.100.67");
    assert_eq!(
        login_presenting(&copy, &genuine, &mine).await,
        Status::SeeOther
    );
}

/// Signs in to `email` with the right password from a browser that presents
/// `device_cookie` as its device cookie (on the form and on the post).
async fn login_presenting(b: &Browser, device_cookie: &str, email: &str) -> Status {
    let remote: std::net::SocketAddr = format!("{}:40000", b.ip).parse().expect("address");
    let cookie = || Cookie::new("latchkey_device", device_cookie.to_string());
    let form = b.client.get("/login").remote(remote).cookie(cookie());
    let token = page(form.dispatch().await).await.csrf();
    let body = encode(&[
        ("email", email),
        ("password", PASSWORD),
        ("csrf_token", &token),
    ]);
    let post = b
        .client
        .post("/login")
        .header(ContentType::Form)
        .remote(remote)
        .cookie(cookie())
        .body(body);
    post.dispatch().await.status()
}

/// The id of the account `email`, through an API session of its own.
async fn user_id_of(cfg: &TestConfig, email: &str) -> String {
    let b = cfg.browser().await.with_ip("192.0.2.46");
    let t = Tokens::from(&password_attempt(&b, email, PASSWORD).await);
    let me = bearer(&b, rocket::http::Method::Get, "/api/v1/me", &t.access).await;
    me.str("user_id")
}

async fn ask_for_code(b: &Browser, email: &str) {
    let fields = [("email", email)];
    let p = b
        .submit("/password/forgot", "/password/forgot", &fields)
        .await;
    assert_eq!(p.status, Status::Ok);
}

#[tokio::test]
async fn strangers_cannot_use_up_the_owners_reset_requests() {
    let cfg = TestConfig::new();
    let email = email();
    let owner = owners_browser(&cfg, &email).await;
    let stranger = cfg.browser().await.with_ip("198.51.100.68");
    for _ in 0..4 {
        ask_for_code(&stranger, &email).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        wait_for_mails(&cfg.outbox(), 3).await.len(),
        3,
        "3 per hour"
    );

    ask_for_code(&owner, &email).await;
    let mails = wait_for_mails(&cfg.outbox(), 4).await;
    assert_eq!(mails.len(), 4, "the owner's own request is not dropped");
    let code = code_in(mails.last().expect("the owner's mail"));
    let reset = owner
        .submit(
            "/password/reset",
            "/password/reset",
            &[
                ("email", &email),
                ("code", &code),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(reset.status, Status::SeeOther, "{}", reset.body);
}

#[tokio::test]
async fn a_new_password_ends_the_trust_in_other_browsers() {
    let cfg = TestConfig::new();
    let email = email();
    let old_laptop = owners_browser(&cfg, &email).await;
    // The phone signs in (trusted too) and changes the password.
    let phone = cfg.browser().await.with_agent(SAFARI_IOS);
    assert_eq!(phone.login(&email, PASSWORD).await.status, Status::SeeOther);
    let new_password = "a brand new passphrase";
    let changed = phone
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new_password),
            ],
        )
        .await;
    assert_eq!(changed.status, Status::SeeOther, "{}", changed.body);
    strangers_fill_the_account_quota(&cfg, &email).await;

    // The browser that changed it is still trusted; the one that knew only the old
    // password is a stranger now.
    let token = phone.get("/devices").await.csrf();
    phone.post_form("/logout", &token, &[]).await;
    assert_eq!(
        phone.login(&email, new_password).await.status,
        Status::SeeOther
    );
    assert_eq!(
        old_laptop.login(&email, new_password).await.status,
        Status::TooManyRequests
    );
}
