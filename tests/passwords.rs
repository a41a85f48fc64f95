//! New passwords: the 100,000+ most common and breached passwords, and passwords made
//! of the account's own address, are refused wherever a password is set (registration,
//! change, reset) with the reason in the message, before any hashing: a refusal costs
//! no Argon2 time and no hashing or registration quota.

use crate::support::*;
use rocket::http::Status;

/// Breached passwords from the embedded list (any case), and what each refusal says.
const BREACHED: &[&str] = &["Password123", "iloveyou2", "qwertyuiop", "1q2w3e4r5t"];
const BREACH_WORDS: &str = "data breach";
const ADDRESS_WORDS: &str = "made from your email address";
const IP: &str = "203.0.113.5";

#[tokio::test]
async fn registration_refuses_breached_and_address_passwords_before_any_hash() {
    // One registration allowed for this IP: a refusal that cost a hash would use it up.
    let app = TestApp::new().set("register_limit_ip", 1);
    let b = app.browser().await;
    for password in BREACHED {
        let res = b
            .submit(
                "/register",
                "/register",
                &[("email", &email()), ("password", password)],
            )
            .await;
        assert_eq!(res.status, Status::BadRequest, "{password}");
        assert!(res.body.contains(BREACH_WORDS), "{password}: {}", res.body);
    }
    let local = unique("u47cd95e6cc").replace('-', "");
    let address = format!("{local}@example.test");
    for password in [
        format!("{local}!"),
        format!("{}2024", local.to_uppercase()),
        format!("{local}@example.test"),
        "example2024!!".to_string(),
    ] {
        let res = b
            .submit(
                "/register",
                "/register",
                &[("email", &address), ("password", &password)],
            )
            .await;
        assert_eq!(res.status, Status::BadRequest, "{password}");
        assert!(res.body.contains(ADDRESS_WORDS), "{password}: {}", res.body);
        assert!(app.user(&address).await.is_none(), "nothing was created");
    }
    assert_eq!(
        app.quota_count("register:ip", IP),
        0,
        "no quota was charged"
    );
    let hasher: &Hasher = b.state();
    assert_eq!(hasher.verifications(), 0);

    // The one registration the quota allows still works.
    let res = b
        .submit(
            "/register",
            "/register",
            &[("email", &address), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status, Status::SeeOther, "{}", res.body);
}

#[tokio::test]
async fn a_password_change_refuses_them_without_checking_the_current_password() {
    let app = TestApp::new();
    let (b, address) = app.signed_in_browser().await;
    let local = address.split('@').next().unwrap_or_default().to_string();
    let hasher: &Hasher = b.state();
    let before = hasher.verifications();
    for (password, words) in [
        ("Password123", BREACH_WORDS),
        (&*format!("{local}#1"), ADDRESS_WORDS),
        ("short", "at least 8"),
    ] {
        let res = b.change_password(PASSWORD, password).await;
        assert_eq!(res.status, Status::BadRequest, "{password}");
        assert!(res.body.contains(words), "{password}: {}", res.body);
    }
    assert_eq!(hasher.verifications(), before, "no Argon2 verification ran");
    assert_eq!(
        app.quota_count("hash:ip", IP),
        0,
        "no hashing quota was charged"
    );
    let other = app.browser().await;
    assert_eq!(
        other.login(&address, PASSWORD).await.status,
        Status::SeeOther
    );
}

#[tokio::test]
async fn a_reset_refuses_them_and_the_code_still_works() {
    let app = TestApp::new();
    let address = app.account().await;
    let b = app.browser().await;
    b.ask_for_reset_code(&address).await;
    let code = wait_for_reset_code(&app.outbox()).await;
    let local = address.split('@').next().unwrap_or_default().to_string();
    for (password, words) in [
        ("iloveyou2", BREACH_WORDS),
        (&*format!("!!{local}!!"), ADDRESS_WORDS),
    ] {
        let res = b.reset_password(&address, &code, password).await;
        assert_eq!(res.status, Status::BadRequest, "{password}");
        assert!(res.body.contains(words), "{password}: {}", res.body);
    }
    assert_eq!(
        app.quota_count("login:ip", IP),
        0,
        "no reset try was counted"
    );
    let done = b.reset_password(&address, &code, NEW_PASSWORD).await;
    assert_eq!(
        done.status,
        Status::SeeOther,
        "the code was not spent by the refusals"
    );
}

#[tokio::test]
async fn the_list_holds_over_100_000_breached_passwords() {
    assert!(
        common_password_count() >= 100_000,
        "{}",
        common_password_count()
    );
}
