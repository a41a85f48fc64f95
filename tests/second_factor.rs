//! The second factor on the account pages and in the service the sign-in calls
//! (`second_factor`, in `paths`): set-up with a code computed here from the secret the
//! page shows, no replay (also under concurrent submissions), recovery codes used once
//! and replaced as a set, turning it off with password and code, the mails the owner
//! gets, what the database holds (never the secret or a code in the clear), the key
//! check at start, and the pages in Chromium (screenshots in `target/screenshots/`).
//! The storage cases run on SQLite and on PostgreSQL.

use fantoccini::Locator;
use rocket::http::Status;
use sqlx::{AssertSqlSafe, Connection};

use crate::support::chromium::{self, expect_path, fill, navigate_by, shoot, text, Chromedriver};
use crate::support::second_factor::{self, Enrolment, Purpose, SecondFactorError, Verified};
use crate::support::*;

const SIGN_IN: Purpose = Purpose::SignIn;

crate::on_both_databases!(
    a_code_passes_once_and_concurrent_submissions_of_one_code_let_exactly_one_through,
    a_recovery_code_works_once_even_concurrently_and_a_new_set_replaces_the_old,
    neither_the_secret_nor_a_recovery_code_is_stored_in_the_clear,
);

/// An account of its own for `b`, its second factor turned on through the service (as
/// the sign-in's tests can): the account, its secret and its recovery codes.
async fn enrolled_by_service(app: &TestApp, b: &Browser) -> (User, Vec<u8>, Vec<String>) {
    let email = email();
    b.register(&email).await;
    let user = app.user(&email).await.expect("the account");
    let enrolment = Enrolment::new();
    let secret = enrolment.secret().to_vec();
    let codes = second_factor::enable(
        &b.services(),
        &user.id,
        &enrolment,
        &code_of_the_step_before(&secret),
    )
    .await
    .expect("turned on");
    (user, secret, codes)
}

#[tokio::test]
async fn setting_up_with_a_code_from_the_shown_secret_turns_it_on_and_shows_ten_codes_once() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;

    let overview = b.get("/account/security").await;
    assert_eq!(overview.status, Status::Ok);
    assert!(overview.body.contains("status-off"), "{}", overview.body);
    assert!(overview.body.contains("href=\"/account/totp\""));
    let devices = b.get("/devices").await;
    assert!(
        devices.body.contains("href=\"/account/security\""),
        "linked from the devices page"
    );

    let setup = b.get("/account/totp").await;
    assert_eq!(setup.status, Status::Ok);
    assert!(
        setup.body.contains("<svg class=\"qr\""),
        "an inline SVG QR code"
    );
    let uri = otpauth_uri_in(&setup.body);
    assert!(uri.starts_with("otpauth://totp/Latchkey:"), "{uri}");
    assert!(
        uri.contains(&urlencode(&email).replace("%2D", "-").replace("%2E", "."))
            || uri.contains(&email),
        "{uri}"
    );
    assert!(uri.contains("issuer=Latchkey"), "{uri}");
    let secret = secret_of(&uri);
    assert_eq!(secret.len(), 20, "160 bits");
    // A reload shows the same secret (it is kept, sealed, in the set-up cookie).
    let again = b.get("/account/totp").await;
    assert_eq!(secret_on(&again.body), secret);
    let cookie = b.cookie("latchkey_totp_setup").expect("the set-up cookie");
    let b32 = base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &secret);
    assert!(
        !cookie.contains(&b32),
        "the cookie does not carry the secret in the clear"
    );

    let done = b
        .post_form(
            "/account/totp",
            &setup.csrf(),
            &[
                ("code", &code_in_steps(&secret, 0)),
                ("current_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, Status::Ok, "{}", done.body);
    let codes = recovery_codes_in(&done.body);
    assert_eq!(codes.len(), 10);
    for c in &codes {
        assert_eq!(c.len(), 19, "XXXX-XXXX-XXXX-XXXX: {c}");
    }
    let unique: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), 10);

    let overview = b.get("/account/security").await;
    assert!(overview.body.contains("status-on"), "{}", overview.body);
    assert!(overview.body.contains("10 left"));
    assert!(
        recovery_codes_in(&overview.body).is_empty(),
        "shown once only"
    );
    let setup_again = b.get("/account/totp").await;
    assert_eq!(setup_again.status, Status::SeeOther, "already on");

    let mail = wait_for_mail_saying(&app.outbox(), "Two-step sign-in was turned on").await;
    assert!(mail.contains(&email));
    // It says what stays signed in, and what to do if it was someone else.
    assert!(mail.contains("already signed in stay signed in"), "{mail}");
    assert!(mail.contains("/devices"), "{mail}");
    assert!(mail.contains("ask the administrator"), "{mail}");
}

#[tokio::test]
async fn a_wrong_code_is_400_a_wrong_password_401_and_too_many_429_and_nothing_changes() {
    let app = TestApp::new().set("login_limit_account", 3);
    let (b, email) = app.signed_in_browser().await;
    let setup = b.get("/account/totp").await;
    let secret = secret_on(&setup.body);
    let token = setup.csrf();
    let right = code_in_steps(&secret, 0);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };

    let r = b
        .post_form(
            "/account/totp",
            &token,
            &[("code", wrong), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, Status::BadRequest);
    assert!(r.body.contains("That code is not right"), "{}", r.body);
    assert!(
        r.body.contains("otpauth:"),
        "the form again, with the same set-up"
    );
    for malformed in ["", "12345", "abcdef", "1234567"] {
        let r = b
            .post_form(
                "/account/totp",
                &token,
                &[("code", malformed), ("current_password", PASSWORD)],
            )
            .await;
        assert_eq!(r.status, Status::BadRequest, "{malformed:?}");
    }

    let r = b
        .post_form(
            "/account/totp",
            &token,
            &[("code", &right), ("current_password", "not my password")],
        )
        .await;
    assert_eq!(r.status, Status::Unauthorized);
    assert!(
        r.body.contains("current password is not right"),
        "{}",
        r.body
    );
    let user = app.user(&email).await.expect("the account");
    assert_eq!(
        second_factor::enrolled(&b.services(), &user.id)
            .await
            .expect("db"),
        None
    );

    // Password checks count as sign-ins do: the account's quota runs out.
    let mut last = Status::Ok;
    for _ in 0..4 {
        last = b
            .post_form(
                "/account/totp",
                &token,
                &[("code", &right), ("current_password", "still wrong")],
            )
            .await
            .status;
    }
    assert_eq!(last, Status::TooManyRequests);
    let r = b
        .post_form(
            "/account/totp",
            &token,
            &[("code", &right), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(
        r.status,
        Status::TooManyRequests,
        "even the right password waits"
    );
    assert!(r.header("Retry-After").is_some());
    assert_eq!(
        second_factor::enrolled(&b.services(), &user.id)
            .await
            .expect("db"),
        None
    );
}

#[tokio::test]
async fn a_forged_csrf_token_is_403_and_changes_nothing() {
    let app = TestApp::new();
    let (b, account) = app.two_step_account().await;
    let TwoStepAccount {
        email,
        secret,
        recovery: codes,
    } = account;
    let forged = "x".repeat(43);
    for (action, fields) in [
        (
            "/account/totp/disable",
            vec![("current_password", PASSWORD), ("code", codes[0].as_str())],
        ),
        (
            "/account/recovery-codes",
            vec![("current_password", PASSWORD)],
        ),
        (
            "/account/totp",
            vec![("current_password", PASSWORD), ("code", "123456")],
        ),
    ] {
        let r = b.post_form(action, &forged, &fields).await;
        assert_eq!(r.status, Status::Forbidden, "{action}");
        let r = b.post_raw(action, &encode(&fields)).await;
        assert_eq!(r.status, Status::Forbidden, "{action} without a token");
    }
    let user = app.user(&email).await.expect("the account");
    let status = second_factor::enrolled(&b.services(), &user.id)
        .await
        .expect("db")
        .expect("still on");
    assert_eq!(status.recovery_codes_left, 10, "no code used or replaced");
    // And the current code is still unused: no form took it.
    let fresh =
        second_factor::verify(&b.services(), &user.id, &code_in_steps(&secret, 0), SIGN_IN).await;
    assert_eq!(fresh.expect("unused"), Verified::Totp);
}

#[tokio::test]
async fn another_account_cannot_use_a_set_up_or_act_on_this_factor() {
    let app = TestApp::new();
    let (alice, alice_email) = app.signed_in_browser().await;
    // Alice is signed in on a second browser before she turns the second factor on.
    let alice2 = app.browser().await;
    alice2.login(&alice_email, PASSWORD).await;
    assert!(alice2.is_signed_in().await);
    let (alice_secret, alice_codes) = alice.turn_on_two_step().await;

    // Mallory, signed in to her own account, sends Alice's codes to every form.
    let (mallory, mallory_email) = app.signed_in_browser().await;
    let token = mallory.get("/account/security").await.csrf();
    let r = mallory
        .post_form(
            "/account/totp/disable",
            &token,
            &[
                ("current_password", PASSWORD),
                ("code", &code_in_steps(&alice_secret, 0)),
            ],
        )
        .await;
    assert_eq!(
        r.status,
        Status::Conflict,
        "her own account has no second factor: {}",
        r.body
    );
    let r = mallory
        .post_form(
            "/account/totp/disable",
            &token,
            &[("current_password", PASSWORD), ("code", &alice_codes[0])],
        )
        .await;
    assert_eq!(r.status, Status::Conflict);

    // Alice's set-up cookie, copied into Mallory's browser, opens only for Alice.
    let mallory_setup = mallory.get("/account/totp").await;
    let mallory_secret = secret_on(&mallory_setup.body);
    let setup_cookie = mallory
        .cookie("latchkey_totp_setup")
        .expect("set-up cookie");
    let (other, other_email) = app.signed_in_browser().await;
    let token = other.get("/account/security").await.csrf();
    // The sealed set-up is bound to Mallory's account: opened for another it is "expired".
    let keys = second_factor::SealingKeys::new(&other.services().settings.second_factor);
    let other_user = app.user(&other_email).await.expect("the account");
    assert!(Enrolment::open(&keys, &other_user.id, &setup_cookie).is_none());
    let mallory_user = app.user(&mallory_email).await.expect("the account");
    let opened = Enrolment::open(&keys, &mallory_user.id, &setup_cookie).expect("her own");
    assert_eq!(opened.secret(), mallory_secret.as_slice());
    let r = other
        .post_form(
            "/account/totp",
            &token,
            &[
                ("current_password", PASSWORD),
                ("code", &code_in_steps(&mallory_secret, 0)),
            ],
        )
        .await;
    assert_eq!(
        r.status,
        Status::BadRequest,
        "no set-up of its own: {}",
        r.body
    );

    let alice_user = app.user(&alice_email).await.expect("the account");
    let status = second_factor::enrolled(&alice.services(), &alice_user.id)
        .await
        .expect("db")
        .expect("Alice's is still on");
    assert_eq!(status.recovery_codes_left, 10);
    assert!(alice2.is_signed_in().await, "no session of Alice's ended");
}

async fn a_code_passes_once_and_concurrent_submissions_of_one_code_let_exactly_one_through(
    db: Database,
) {
    let app = TestApp::on(db).await;
    let b = app.browser().await;
    let svc = b.services();

    // Confirmed with the current code: replayed at once (still within the window of
    // one step either way) it is refused, as is the next code the second time.
    let email = email();
    b.register(&email).await;
    let user = app.user(&email).await.expect("the account");
    let enrolment = Enrolment::new();
    let secret = enrolment.secret().to_vec();
    let confirm = code_in_steps(&secret, 0);
    second_factor::enable(&svc, &user.id, &enrolment, &confirm)
        .await
        .expect("turned on");
    let spent = second_factor::verify(&svc, &user.id, &confirm, SIGN_IN).await;
    assert!(
        matches!(spent, Err(SecondFactorError::Replayed)),
        "{spent:?}"
    );
    let next = code_in_steps(&secret, 1);
    assert_eq!(
        second_factor::verify(&svc, &user.id, &next, SIGN_IN)
            .await
            .expect("right"),
        Verified::Totp
    );
    let again = second_factor::verify(&svc, &user.id, &next, SIGN_IN).await;
    assert!(
        matches!(again, Err(SecondFactorError::Replayed)),
        "{again:?}"
    );
    assert!(again.as_ref().err().is_some_and(|e| e.is_wrong_code()));

    // Another account, confirmed with the previous step's code: twenty concurrent
    // submissions of its next code, and one passes.
    let (other, other_secret, _) = enrolled_by_service(&app, &b).await;
    let results = concurrently(&b, other.id, &code_in_steps(&other_secret, 1), 20).await;
    let passed = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(passed, 1, "{results:?}");
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, SecondFactorError::Replayed)));

    for bad in ["", "12345", "12345a", "0000000", "not a code"] {
        let r = second_factor::verify(&svc, &user.id, bad, SIGN_IN).await;
        assert!(
            matches!(r, Err(SecondFactorError::Malformed)),
            "{bad:?}: {r:?}"
        );
    }
    let wrong = if code_in_steps(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = second_factor::verify(&svc, &user.id, wrong, SIGN_IN).await;
    assert!(
        matches!(
            r,
            Err(SecondFactorError::WrongCode) | Err(SecondFactorError::Replayed)
        ),
        "{r:?}"
    );
    let nobody = second_factor::verify(&svc, &uuid::Uuid::now_v7(), "123456", SIGN_IN).await;
    assert!(
        matches!(nobody, Err(SecondFactorError::NotEnrolled)),
        "{nobody:?}"
    );
}

/// `verify` of one code by `n` tasks at once, on the app's own services.
async fn concurrently(
    b: &Browser,
    user_id: uuid::Uuid,
    code: &str,
    n: usize,
) -> Vec<Result<Verified, SecondFactorError>> {
    let owned = b.services().owned();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let svc = owned.clone();
            let code = code.to_string();
            tokio::spawn(async move {
                second_factor::verify(&svc.borrow(), &user_id, &code, SIGN_IN).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("the task finishes"));
    }
    results
}

async fn a_recovery_code_works_once_even_concurrently_and_a_new_set_replaces_the_old(db: Database) {
    let smtp = SmtpServer::start();
    let app = TestApp::on(db).await.set("smtp_url", smtp.url());
    let b = app.browser().await;
    let (user, _secret, codes) = enrolled_by_service(&app, &b).await;
    let svc = b.services();

    // Typed in lower case, without dashes: the same code.
    let typed = codes[0].to_lowercase().replace('-', " ");
    let used = second_factor::verify(&svc, &user.id, &typed, SIGN_IN)
        .await
        .expect("a recovery code");
    assert_eq!(used, Verified::RecoveryCode { left: 9 });
    let again = second_factor::verify(&svc, &user.id, &codes[0], SIGN_IN).await;
    assert!(
        matches!(again, Err(SecondFactorError::WrongCode)),
        "{again:?}"
    );

    let results = concurrently(&b, user.id, &codes[1], 10).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let status = second_factor::enrolled(&svc, &user.id)
        .await
        .expect("db")
        .expect("on");
    assert_eq!(status.recovery_codes_left, 8);

    // A new set: ten codes, the old unused ones stop working.
    let fresh = second_factor::replace_recovery_codes(&svc, &user.id)
        .await
        .expect("replaced");
    assert_eq!(fresh.len(), 10);
    let old = second_factor::verify(&svc, &user.id, &codes[2], SIGN_IN).await;
    assert!(matches!(old, Err(SecondFactorError::WrongCode)), "{old:?}");
    let status = second_factor::enrolled(&svc, &user.id)
        .await
        .expect("db")
        .expect("on");
    assert_eq!(status.recovery_codes_left, 10);
    assert!(second_factor::verify(&svc, &user.id, &fresh[9], SIGN_IN)
        .await
        .is_ok());

    // The owner was told by mail, over SMTP, each time a code was used and when the
    // set was replaced.
    // Five notices and the registration's verification mail.
    let mails = wait_for_mails(&smtp.received(), 6).await;
    let text: Vec<String> = mails.iter().map(|m| unfold(m)).collect();
    let used_mails = text
        .iter()
        .filter(|m| m.contains("A recovery code was used"))
        .count();
    assert_eq!(used_mails, 3, "{text:?}");
    assert!(
        text.iter()
            .any(|m| m.contains("New recovery codes were made")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|m| m.contains("You have 9 recovery codes left")),
        "{text:?}"
    );
    assert!(text.iter().all(|m| m.contains(&user.email)));
}

async fn neither_the_secret_nor_a_recovery_code_is_stored_in_the_clear(db: Database) {
    let app = TestApp::on(db).await;
    let b = app.browser().await;
    let (user, secret, codes) = enrolled_by_service(&app, &b).await;
    let id = user.id.to_string();
    let (sealed, macs): (String, Vec<String>) = if app.database_url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
            .await
            .expect("sqlite");
        let sealed =
            sqlx::query_scalar("SELECT secret_sealed FROM second_factors WHERE user_id = $1")
                .bind(&id)
                .fetch_one(&mut conn)
                .await
                .expect("the row");
        let macs = sqlx::query_scalar("SELECT code_mac FROM recovery_codes WHERE user_id = $1")
            .bind(&id)
            .fetch_all(&mut conn)
            .await
            .expect("the codes");
        (sealed, macs)
    } else {
        let mut conn = sqlx::PgConnection::connect(&app.database_url)
            .await
            .expect("postgres");
        let sealed = sqlx::query_scalar(AssertSqlSafe(
            "SELECT secret_sealed FROM second_factors WHERE user_id = $1".to_string(),
        ))
        .bind(&id)
        .fetch_one(&mut conn)
        .await
        .expect("the row");
        let macs = sqlx::query_scalar("SELECT code_mac FROM recovery_codes WHERE user_id = $1")
            .bind(&id)
            .fetch_all(&mut conn)
            .await
            .expect("the codes");
        (sealed, macs)
    };
    let b32 = base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &secret);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &secret);
    for clear in [b32.as_str(), hex::encode(&secret).as_str(), b64.as_str()] {
        assert!(!sealed.contains(clear), "the stored secret is sealed");
    }
    let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &sealed)
        .expect("base64");
    assert!(raw.len() >= 12 + 20 + 16, "nonce, ciphertext and tag");
    assert!(!raw.windows(secret.len()).any(|w| w == secret.as_slice()));
    assert_eq!(macs.len(), 10);
    for code in &codes {
        let plain = code.replace('-', "");
        assert!(macs
            .iter()
            .all(|m| !m.contains(&plain) && !m.contains(code)));
    }
    assert!(macs
        .iter()
        .all(|m| m.len() == 64 && m.bytes().all(|c| c.is_ascii_hexdigit())));
}

#[tokio::test]
async fn turning_off_needs_the_password_and_a_fresh_code_and_ends_every_other_session() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    // Another device signed in before the second factor was on.
    let phone = app.browser().await.with_agent(SAFARI_IOS);
    phone.login(&email, PASSWORD).await;
    assert!(phone.is_signed_in().await);

    let setup = b.get("/account/totp").await;
    let secret = secret_on(&setup.body);
    // Confirmed with the current code: its step is then spent, and still in the window
    // when it is replayed below (the next code is the fresh one).
    let confirm = code_in_steps(&secret, 0);
    let done = b
        .post_form(
            "/account/totp",
            &setup.csrf(),
            &[("code", &confirm), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(done.status, Status::Ok);
    let token = b.get("/account/security").await.csrf();

    let r = b
        .post_form(
            "/account/totp/disable",
            &token,
            &[("current_password", PASSWORD), ("code", &confirm)],
        )
        .await;
    assert_eq!(r.status, Status::BadRequest, "the confirming code is spent");
    assert!(r.body.contains("already used"), "{}", r.body);
    let r = b
        .post_form(
            "/account/totp/disable",
            &token,
            &[("current_password", PASSWORD), ("code", "")],
        )
        .await;
    assert_eq!(r.status, Status::BadRequest, "a code is needed");
    let r = b
        .post_form(
            "/account/totp/disable",
            &token,
            &[
                ("current_password", "wrong"),
                ("code", &code_in_steps(&secret, 1)),
            ],
        )
        .await;
    assert_eq!(r.status, Status::Unauthorized);
    assert!(phone.is_signed_in().await, "nothing changed yet");

    let r = b
        .post_form(
            "/account/totp/disable",
            &token,
            &[
                ("current_password", PASSWORD),
                ("code", &code_in_steps(&secret, 1)),
            ],
        )
        .await;
    assert_eq!(r.status, Status::SeeOther, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/account/security"));
    let overview = b.get("/account/security").await;
    assert!(overview.body.contains("status-off"));
    assert!(
        overview.body.contains("1 other device was signed out"),
        "{}",
        overview.body
    );
    assert!(b.is_signed_in().await, "this browser stays");
    assert!(!phone.is_signed_in().await, "the other session ended");
    let user = app.user(&email).await.expect("the account");
    assert_eq!(
        second_factor::enrolled(&b.services(), &user.id)
            .await
            .expect("db"),
        None
    );

    let mail = wait_for_mail_saying(&app.outbox(), "Two-step sign-in was turned off").await;
    assert!(mail.contains("1 other device was signed out"), "{mail}");
    assert!(mail.contains(&email));
}

#[tokio::test]
async fn new_recovery_codes_need_the_password_and_are_shown_once() {
    let app = TestApp::new();
    let (b, account) = app.two_step_account().await;
    let (email, old) = (account.email, account.recovery);
    let token = b.get("/account/security").await.csrf();
    let r = b
        .post_form(
            "/account/recovery-codes",
            &token,
            &[("current_password", "wrong")],
        )
        .await;
    assert_eq!(r.status, Status::Unauthorized);
    let r = b
        .post_form(
            "/account/recovery-codes",
            &token,
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, Status::Ok);
    let fresh = recovery_codes_in(&r.body);
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !old.contains(c)));
    let user = app.user(&email).await.expect("the account");
    let svc = b.services();
    let stale = second_factor::verify(&svc, &user.id, &old[0], SIGN_IN).await;
    assert!(
        matches!(stale, Err(SecondFactorError::WrongCode)),
        "{stale:?}"
    );
    assert!(second_factor::verify(&svc, &user.id, &fresh[0], SIGN_IN)
        .await
        .is_ok());
    wait_for_mail_saying(&app.outbox(), "New recovery codes were made").await;

    // Without a second factor there are no recovery codes to replace.
    let other = app.browser().await;
    other.register(&crate::support::email()).await;
    let token = other.get("/account/security").await.csrf();
    let r = other
        .post_form(
            "/account/recovery-codes",
            &token,
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, Status::Conflict);
}

#[tokio::test]
async fn signed_out_the_pages_send_to_sign_in_and_the_forms_change_nothing() {
    let app = TestApp::new();
    let b = app.browser().await;
    for page in ["/account/security", "/account/totp"] {
        let r = b.get(page).await;
        assert_eq!(r.status, Status::SeeOther, "{page}");
        assert!(
            r.location
                .as_deref()
                .is_some_and(|l| l.starts_with("/login")),
            "{page}"
        );
    }
    let token = b.get("/login").await.csrf();
    for action in [
        "/account/totp",
        "/account/totp/disable",
        "/account/recovery-codes",
    ] {
        let r = b
            .post_form(action, &token, &[("current_password", PASSWORD)])
            .await;
        assert_eq!(r.status, Status::SeeOther, "{action}");
    }
}

#[tokio::test]
async fn changing_the_password_mails_the_owner() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let r = b
        .change_password(PASSWORD, "a brand new passphrase 2")
        .await;
    assert_eq!(r.status, Status::SeeOther);
    let mail =
        wait_for_mail_saying(&app.outbox(), "The password of your account was changed").await;
    assert!(mail.contains(&email));
}

#[tokio::test]
async fn a_changed_key_stops_the_start_while_secrets_are_sealed_with_the_old_one() {
    let key = |b: u8| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [b; 32]);
    let app = TestApp::new().set("second_factor_key", key(1));
    let b = app.browser().await;
    enrolled_by_service(&app, &b).await;

    assert!(app.sibling().starts().await, "the same key starts");
    let other = app.sibling().set("second_factor_key", key(2));
    assert!(!other.starts().await, "another key does not start");
    let unset = app.sibling().set("second_factor_key", "");
    assert!(
        !unset.starts().await,
        "the development key is another key too"
    );
    let settings = Settings::from_figment(&other.figment()).expect("settings");
    let why = second_factor::check_key(&settings, b.services().accounts)
        .await
        .expect_err("refused");
    assert!(
        why.starts_with("invalid setting `second_factor_key`"),
        "{why}"
    );
    assert!(why.contains("1 accounts"), "{why}");
    let broken = app.sibling().set("second_factor_key", "too short");
    assert!(!broken.starts().await, "a malformed key does not start");

    // With no second factor stored, a new key is simply recorded.
    let fresh = TestApp::new().set("second_factor_key", key(3));
    assert!(fresh.starts().await);
    assert!(
        fresh
            .sibling()
            .set("second_factor_key", key(4))
            .starts()
            .await
    );
}

#[tokio::test]
async fn in_chromium_a_person_sets_up_the_app_from_the_page_and_sees_the_codes_once() {
    let driver = Chromedriver::start();
    let app = TestApp::new();
    let base = app.serve().await;
    let c = driver.browser(None).await;
    let email = email();
    c.goto(&format!("{base}/register")).await.expect("goto");
    fill(&c, "email", &email).await;
    fill(&c, "password", PASSWORD).await;
    chromium::submit(&c).await;

    let link = c
        .find(Locator::Css("a[href=\"/account/security\"]"))
        .await
        .expect("nav link");
    navigate_by(&c, link).await;
    expect_path(&c, "/account/security").await;
    assert!(text(&c).await.contains("Off"));
    shoot(&c, "security-off").await;

    let set_up = c
        .find(Locator::Css("a[href=\"/account/totp\"]"))
        .await
        .expect("set-up link");
    navigate_by(&c, set_up).await;
    let qr = c.find(Locator::Css("svg.qr")).await.expect("the QR code");
    let size = qr.rectangle().await.expect("its box");
    assert!(
        size.2 >= 150.0 && size.3 >= 150.0,
        "the QR code is drawn: {size:?}"
    );
    // The URI is shown as text without a click (no script needed to see it).
    let shown = c.find(Locator::Css(".otpauth-uri")).await.expect("the URI");
    assert!(
        shown.is_displayed().await.expect("visibility"),
        "the URI is visible"
    );
    let uri = shown.text().await.expect("its text");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    shoot(&c, "totp-setup").await;
    let secret = secret_of(&uri);

    fill(&c, "code", &code_in_steps(&secret, 0)).await;
    fill(&c, "current_password", PASSWORD).await;
    let button = c
        .find(Locator::Css("form.form button[type=submit]"))
        .await
        .expect("button");
    navigate_by(&c, button).await;
    let codes = c
        .find_all(Locator::Css(".recovery-code"))
        .await
        .expect("codes");
    assert_eq!(codes.len(), 10);
    assert!(text(&c).await.contains("only time they are shown"));
    shoot(&c, "recovery-codes").await;

    let done = c
        .find(Locator::Css("a[href=\"/account/security\"].btn"))
        .await
        .expect("done");
    navigate_by(&c, done).await;
    let page = text(&c).await;
    assert!(page.contains("On") && page.contains("10 left"), "{page}");
    let turn_off = c
        .find(Locator::Css("details.security-action summary.btn-danger"))
        .await
        .expect("turn off");
    turn_off.click().await.expect("open");
    shoot(&c, "security-on").await;
    c.close().await.expect("close");
}

#[tokio::test]
async fn in_secure_mode_the_set_up_cookie_is_a_secure_host_cookie_removed_when_done() {
    let app = TestApp::new().set("cookie_secure", true);
    let (b, _) = app.signed_in_browser().await;
    let setup = b.get("/account/totp").await;
    let set = setup
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-latchkey_totp_setup="))
        .expect("the set-up cookie");
    for a in [
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=900",
    ] {
        assert!(has_cookie_attribute(&set, a), "{a} missing: {set}");
    }
    assert!(!set.contains("Domain"), "{set}");

    let secret = secret_on(&setup.body);
    let done = b
        .post_form(
            "/account/totp",
            &setup.csrf(),
            &[
                ("code", &code_in_steps(&secret, 0)),
                ("current_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, Status::Ok);
    let removed = done
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-latchkey_totp_setup="))
        .expect("the set-up cookie's removal");
    assert!(
        removed.contains("Max-Age=0") && has_cookie_attribute(&removed, "Secure"),
        "{removed}"
    );
}

#[tokio::test]
async fn two_browsers_turning_it_off_with_one_code_at_once_do_it_once() {
    let app = TestApp::new();
    let (first, email) = app.signed_in_browser().await;
    let second = app.browser().await;
    second.login(&email, PASSWORD).await;
    let setup = first.get("/account/totp").await;
    let secret = secret_on(&setup.body);
    let on = first
        .post_form(
            "/account/totp",
            &setup.csrf(),
            &[
                ("code", &code_of_the_step_before(&secret)),
                ("current_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(on.status, Status::Ok);

    let now = code_in_steps(&secret, 0);
    let fields = [("current_password", PASSWORD), ("code", now.as_str())];
    let (t1, t2) = (
        first.get("/account/security").await.csrf(),
        second.get("/account/security").await.csrf(),
    );
    let (a, b) = tokio::join!(
        first.post_form("/account/totp/disable", &t1, &fields),
        second.post_form("/account/totp/disable", &t2, &fields),
    );
    let turned_off = |p: &Page| {
        p.status == Status::SeeOther && p.location.as_deref() == Some("/account/security")
    };
    assert_eq!(
        [&a, &b].iter().filter(|p| turned_off(p)).count(),
        1,
        "exactly one turned it off: {} {}",
        a.status,
        b.status
    );
    // The other was refused: the code was spent (400), the factor already off (409),
    // or its session already ended by the first (sent to sign in).
    for p in [&a, &b].into_iter().filter(|p| !turned_off(p)) {
        let to_sign_in = p
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with("/login"));
        assert!(
            [Status::BadRequest, Status::Conflict].contains(&p.status) || to_sign_in,
            "{} {:?}",
            p.status,
            p.location
        );
    }
}

#[tokio::test]
async fn a_sealed_secret_copied_into_another_accounts_row_does_not_open() {
    let app = TestApp::new();
    let b = app.browser().await;
    let (alice, _, _) = enrolled_by_service(&app, &b).await;
    let (mallory, mallory_secret, _) = enrolled_by_service(&app, &b).await;
    // Someone with write access to the database copies her sealed secret into
    // Alice's row, hoping her own app's codes then pass for Alice.
    let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .expect("sqlite");
    let copied = sqlx::query(
        "UPDATE second_factors SET secret_sealed = \
         (SELECT secret_sealed FROM second_factors WHERE user_id = $1) WHERE user_id = $2",
    )
    .bind(mallory.id.to_string())
    .bind(alice.id.to_string())
    .execute(&mut conn)
    .await
    .expect("the update")
    .rows_affected();
    assert_eq!(copied, 1);

    let r = second_factor::verify(
        &b.services(),
        &alice.id,
        &code_in_steps(&mallory_secret, 0),
        SIGN_IN,
    )
    .await;
    assert!(
        matches!(
            r,
            Err(SecondFactorError::Failed(ServiceError::Accounts(
                AccountError::Unsealable
            )))
        ),
        "{r:?}"
    );
}

/// A stolen session whose password is also known cannot guess the code on the
/// turning-off form instead of at sign-in: each wrong code there is a failed sign-in
/// on the same quota, so after the quota even the right code is 429 and the second
/// factor stays on. A blank code asks for one and counts nothing.
#[tokio::test]
async fn wrong_codes_on_the_turning_off_form_count_as_failed_sign_ins() {
    let app = TestApp::new()
        .set("login_limit_account", 3)
        .set("login_limit_ip", 50)
        .set("login_limit_network", 50);
    let (b, account) = app.two_step_account().await;
    let secret = account.secret;
    let right = code_in_steps(&secret, 0);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let token = b.get("/account/security").await.csrf();
    let turn_off = |code: &'static str| {
        let (b, token) = (&b, token.clone());
        async move {
            b.post_form(
                "/account/totp/disable",
                &token,
                &[("current_password", PASSWORD), ("code", code)],
            )
            .await
        }
    };
    let blank = turn_off("  ").await;
    assert_eq!(blank.status, Status::BadRequest, "{}", blank.body);
    for _ in 0..3 {
        let r = turn_off(wrong).await;
        assert_eq!(r.status, Status::BadRequest, "{}", r.body);
        assert!(
            r.body.contains("not right or was already used"),
            "{}",
            r.body
        );
    }
    let right: &'static str = Box::leak(right.into_boxed_str());
    let throttled = turn_off(right).await;
    assert_eq!(
        throttled.status,
        Status::TooManyRequests,
        "{}",
        throttled.body
    );
    assert!(throttled.header("Retry-After").is_some());
    let security = b.get("/account/security").await.body;
    assert!(security.contains("10 left"), "still on: {security}");
}
