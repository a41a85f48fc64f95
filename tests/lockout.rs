//! Strangers cannot lock the owner out (OWASP's device cookies), tried as an attacker
//! would: failures from another address fill the account's quotas, and the owner's
//! own browser, which has signed in before, still gets in and can still ask for a
//! reset code, while every stranger stays throttled exactly as before.

use std::time::Duration;

use crate::support::*;
use rocket::http::{ContentType, Cookie, Status};

/// The owner's browser, registered there (which trusts it) and then signed out, and
/// the owner's address.
async fn owners_browser(app: &TestApp) -> (Browser, String) {
    let (owner, email) = app.signed_in_browser().await;
    owner.sign_out().await;
    assert!(!owner.is_signed_in().await);
    (owner, email)
}

/// Five wrong passwords from a stranger's address, on the page and in the API.
async fn strangers_fill_the_account_quota(app: &TestApp, email: &str) {
    let stranger = app.browser().await.with_ip("198.51.100.66");
    for _ in 0..3 {
        let p = stranger.login(email, "Summer2024!").await;
        assert_eq!(p.status, Status::Unauthorized);
    }
    for _ in 0..2 {
        let p = password_attempt(&stranger, email, "Winter2024!").await;
        p.assert_json_error(Status::Unauthorized, "invalid_grant");
    }
}

#[tokio::test]
async fn a_stranger_cannot_lock_the_owners_browser_out() {
    let app = TestApp::new();
    let (owner, email) = owners_browser(&app).await;
    strangers_fill_the_account_quota(&app, &email).await;

    // Strangers are throttled as before, with the right password too, from anywhere.
    let elsewhere = app.browser().await.with_ip("192.0.2.44");
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
    let app = TestApp::new();
    let (owner, email) = owners_browser(&app).await;
    for _ in 0..5 {
        let p = owner.login(&email, "not my password").await;
        assert_eq!(p.status, Status::Unauthorized);
    }
    let refused = owner.login(&email, PASSWORD).await;
    assert_eq!(refused.status, Status::TooManyRequests, "{}", refused.body);
    // Its failures were its own: they did not use up the account's budget.
    let elsewhere = app.browser().await.with_ip("192.0.2.45");
    assert_eq!(
        elsewhere.login(&email, PASSWORD).await.status,
        Status::SeeOther
    );
}

#[tokio::test]
async fn a_forged_tampered_or_borrowed_device_cookie_is_a_strangers() {
    let app = TestApp::new();
    let (owner, mine) = owners_browser(&app).await;
    let my_uid = user_id_of(&app, &mine).await;
    let theirs = app.account().await;
    strangers_fill_the_account_quota(&app, &mine).await;
    strangers_fill_the_account_quota(&app, &theirs).await;

    // My genuine cookie is for my account only.
    let genuine = owner
        .cookie("latchkey_device")
        .expect("registering set a device cookie");
    assert_eq!(
        owner.login(&theirs, PASSWORD).await.status,
        Status::TooManyRequests
    );
    // A cookie the server did not encrypt is no cookie at all; nor is a tampered one.
    let last = if genuine.ends_with('A') { "B" } else { "A" };
    let tampered = format!("{}{last}", &genuine[..genuine.len() - 1]);
    for forged in [format!("{my_uid}.{}", "A".repeat(43)), tampered] {
        let forger = app.browser().await.with_ip("198.51.100.67");
        assert_eq!(
            login_presenting(&forger, &forged, &mine).await,
            Status::TooManyRequests,
            "{forged}"
        );
    }
    // The same bytes as the genuine cookie do work (it is a bearer credential, kept
    // HttpOnly): what refused the others was the check, not the way they were sent.
    let copy = app.browser().await.with_ip("198.51.100.67");
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
async fn user_id_of(app: &TestApp, email: &str) -> String {
    let b = app.browser().await.with_ip("192.0.2.46");
    let t = Tokens::from(&password_attempt(&b, email, PASSWORD).await);
    let me = bearer(&b, rocket::http::Method::Get, "/api/v1/me", &t.access).await;
    me.str("user_id")
}

#[tokio::test]
async fn strangers_cannot_use_up_the_owners_reset_requests() {
    let app = TestApp::new();
    let (owner, email) = owners_browser(&app).await;
    let stranger = app.browser().await.with_ip("198.51.100.68");
    for _ in 0..4 {
        assert_eq!(stranger.ask_for_reset_code(&email).await.status, Status::Ok);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        wait_for_reset_mails(&app.outbox(), 3).await.len(),
        3,
        "3 per hour"
    );

    assert_eq!(owner.ask_for_reset_code(&email).await.status, Status::Ok);
    let mails = wait_for_reset_mails(&app.outbox(), 4).await;
    assert_eq!(mails.len(), 4, "the owner's own request is not dropped");
    let code = code_in(mails.last().expect("the owner's mail"));
    let reset = owner
        .reset_password(&email, &code, "a brand new passphrase")
        .await;
    assert_eq!(reset.status, Status::SeeOther, "{}", reset.body);
}

#[tokio::test]
async fn a_new_password_ends_the_trust_in_other_browsers() {
    let app = TestApp::new();
    let (old_laptop, email) = owners_browser(&app).await;
    // The phone signs in (trusted too) and changes the password.
    let phone = app.browser().await.with_agent(SAFARI_IOS);
    assert_eq!(phone.login(&email, PASSWORD).await.status, Status::SeeOther);
    let new_password = "a brand new passphrase";
    let changed = phone.change_password(PASSWORD, new_password).await;
    assert_eq!(changed.status, Status::SeeOther, "{}", changed.body);
    strangers_fill_the_account_quota(&app, &email).await;

    // The browser that changed it is still trusted; the one that knew only the old
    // password is a stranger now.
    phone.sign_out().await;
    assert_eq!(
        phone.login(&email, new_password).await.status,
        Status::SeeOther
    );
    assert_eq!(
        old_laptop.login(&email, new_password).await.status,
        Status::TooManyRequests
    );
}
