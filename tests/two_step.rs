//! Signing in with a second factor, against the real app on Redis and SQLite: the
//! password alone leaves a pending sign-in and no session; a current authenticator code
//! or an unused recovery code starts the session (`amr` pwd + otp, shown on the devices
//! page); replays, made-up cookies, other browsers, expiry, five wrong codes and the
//! sign-in limiter all refuse as they should; the API's password grant needs `otp`. The
//! account's second factor is turned on through its own pages (the contract's
//! `GET`/`POST /account/totp`), with codes computed here from the secret the page shows.

use std::time::Duration;

use crate::support::chromium::{
    expect_path, fill, navigate_by, shoot, sign_in, submit, text, Chromedriver,
};
use crate::support::*;
use fantoccini::Locator;
use rocket::http::Status;
use serde_json::json;

/// The one answer to a wrong code, mistyped or replayed alike.
const WRONG_CODE: &str = "That code is not right, or it has already been used.";
const PENDING_COOKIE: &str = "latchkey_2fa";

#[tokio::test]
async fn a_right_password_alone_starts_no_session_only_a_pending_sign_in() {
    let app = TestApp::new();
    let (_, account) = app.two_step_account().await;

    let b = app.browser().await;
    let answer = b.password_step(&account.email, "").await;
    assert_eq!(answer.status, Status::SeeOther);
    assert_eq!(answer.location.as_deref(), Some(CODE_PAGE));
    let cookies = answer.set_cookies();
    assert!(
        !cookies.iter().any(|c| c.starts_with("latchkey=")),
        "no session cookie: {cookies:?}"
    );
    let pending = cookies
        .iter()
        .find(|c| c.starts_with("latchkey_2fa="))
        .expect("the pending sign-in's cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=300"] {
        assert!(pending.contains(attribute), "{attribute}: {pending}");
    }
    assert!(!pending.contains("Domain"), "{pending}");
    // Encrypted: the cookie does not carry the account id in the clear.
    let user_id = user_id(&app, &account.email).await;
    assert!(!pending.contains(&user_id), "{pending}");
    assert_eq!(b.session_cookie(), None);
    assert!(!b.is_signed_in().await, "the devices page wants a sign-in");
    let page = b.get(CODE_PAGE).await;
    assert_eq!(page.status, Status::Ok);
    assert!(page.body.contains("name=\"code\""), "{}", page.body);
    assert!(page.body.contains("autocomplete=\"one-time-code\""));
    // No session in the store either: only the owner's own.
    let sessions = keys_under(&app.prefix)
        .await
        .into_iter()
        .filter(|k| k.contains(":s:"))
        .count();
    assert_eq!(sessions, 1, "only the owner's registration session");
}

/// The account's user id (from the database).
async fn user_id(app: &TestApp, email: &str) -> String {
    app.user(email).await.expect("the account").id.to_string()
}

#[tokio::test]
async fn a_current_code_signs_in_and_the_devices_page_says_how() {
    let app = TestApp::new();
    let (_, account) = app.two_step_account().await;

    let b = app.browser().await.with_agent(CHROME_WINDOWS);
    b.password_step(&account.email, "").await;
    let signed = b.code_step(&account.next_code()).await;
    assert_eq!(signed.status, Status::SeeOther, "{}", signed.body);
    assert_eq!(signed.location.as_deref(), Some("/devices"));
    assert!(b.session_cookie().is_some(), "the session cookie is set");
    assert_eq!(
        b.cookie(PENDING_COOKIE),
        None,
        "the pending cookie is removed"
    );
    assert!(b.is_signed_in().await);

    // Each session says how it signed in: this one with the app, the owner's with a
    // password (it registered).
    let devices = b.get("/devices").await.body;
    let entry = |label: &str| {
        devices
            .split("<li class=\"device")
            .find(|entry| entry.contains(label))
            .unwrap_or_else(|| panic!("{label} on {devices}"))
            .to_string()
    };
    assert!(
        entry("Chrome on Windows").contains("with password + authenticator</span>"),
        "{devices}"
    );
    assert!(
        entry("Firefox on Linux").contains("with password</span>"),
        "{devices}"
    );

    // The pending sign-in is used up: the code page now sends back to the sign-in page.
    let again = b.get(CODE_PAGE).await;
    assert_eq!(again.status, Status::SeeOther);
    assert_eq!(again.location.as_deref(), Some("/login"));
}

#[tokio::test]
async fn a_recovery_code_signs_in_once_and_never_again() {
    let app = TestApp::new();
    let (_, account) = app.two_step_account().await;
    let code = &account.recovery[0];

    let b = app.browser().await;
    b.password_step(&account.email, "").await;
    // Typed as people type: lower case, without the dashes.
    let typed = code.replace('-', "").to_lowercase();
    let signed = b.code_step(&typed).await;
    assert_eq!(signed.status, Status::SeeOther, "{}", signed.body);
    assert!(b.is_signed_in().await);
    let devices = b.get("/devices").await.body;
    assert!(devices.contains("with password + authenticator"));

    // The same code a second time, from another browser: refused as any wrong code.
    let c = app.browser().await;
    c.password_step(&account.email, "").await;
    let refused = c.code_step(code).await;
    assert_eq!(refused.status, Status::Unauthorized);
    assert!(refused.body.contains(WRONG_CODE), "{}", refused.body);
    assert_eq!(c.session_cookie(), None);
    // Another unused one still works in that same pending sign-in.
    let other = c.code_step(&account.recovery[1]).await;
    assert_eq!(other.status, Status::SeeOther, "{}", other.body);
    assert!(c.is_signed_in().await);
}

#[tokio::test]
async fn a_code_accepted_once_is_refused_again_with_the_wrong_code_answer() {
    let app = TestApp::new();
    let (_, account) = app.two_step_account().await;
    let code = account.next_code();

    let b = app.browser().await;
    b.password_step(&account.email, "").await;
    assert_eq!(b.code_step(&code).await.status, Status::SeeOther);

    // An attacker who saw the code uses it at once, with the password: refused.
    let attacker = app.browser().await.with_ip("198.51.100.7");
    attacker.password_step(&account.email, "").await;
    let replayed = attacker.code_step(&code).await;
    assert_eq!(replayed.status, Status::Unauthorized);
    assert_eq!(attacker.session_cookie(), None);
    // Word for word what a made-up code gets.
    let made_up = attacker.code_step("000000").await;
    assert_eq!(made_up.status, Status::Unauthorized);
    let message = |p: &Page| {
        let start = p.body.find("role=\"alert\"").expect("an error");
        p.body[start..]
            .split("</p>")
            .next()
            .unwrap_or("")
            .to_string()
    };
    assert!(replayed.body.contains(WRONG_CODE), "{}", replayed.body);
    assert_eq!(message(&replayed), message(&made_up));
}

#[tokio::test]
async fn a_pending_sign_in_ends_after_its_timeout() {
    let app = TestApp::new().set("second_factor_timeout", 1);
    let (_, account) = app.two_step_account().await;

    let b = app.browser().await;
    b.password_step(&account.email, "").await;
    let form = b.get(CODE_PAGE).await;
    assert_eq!(form.status, Status::Ok);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // Even the right code, sent with the form the page gave, is too late.
    let late = b
        .post_form(CODE_PAGE, &form.csrf(), &[("code", &account.next_code())])
        .await;
    assert_eq!(late.status, Status::SeeOther);
    assert_eq!(late.location.as_deref(), Some("/login"));
    assert_eq!(b.session_cookie(), None);
    let login = b.get("/login").await;
    assert!(
        login
            .body
            .contains("Your sign-in timed out or was already used."),
        "{}",
        login.body
    );
    // Nothing of it is left in the store.
    let pending = keys_under(&app.prefix)
        .await
        .into_iter()
        .filter(|k| k.contains(":2fa:"))
        .count();
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn five_wrong_codes_end_the_pending_sign_in() {
    let app = TestApp::new()
        .set("login_limit_account", 50)
        .set("login_limit_ip", 50)
        .set("login_limit_network", 50);
    let (_, account) = app.two_step_account().await;
    let b = app.browser().await;
    b.password_step(&account.email, "").await;
    let right = account.next_code();
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for left in (1..=4).rev() {
        let p = b.code_step(wrong).await;
        assert_eq!(p.status, Status::Unauthorized);
        assert!(p.body.contains(WRONG_CODE), "{}", p.body);
        assert!(
            p.body.contains(&format!("{left} more wrong code")),
            "{}",
            p.body
        );
    }
    let fifth = b.code_step(wrong).await;
    assert_eq!(fifth.status, Status::Unauthorized);
    assert!(
        fifth.body.contains("Too many wrong codes."),
        "{}",
        fifth.body
    );
    assert!(
        !fifth.body.contains("name=\"code\""),
        "no form: {}",
        fifth.body
    );
    assert_eq!(
        b.cookie(PENDING_COOKIE),
        None,
        "the pending cookie is removed"
    );
    // The right code is of no use now: back to the password.
    let token = b.get("/login").await.csrf();
    let after = b.post_form(CODE_PAGE, &token, &[("code", &right)]).await;
    assert_eq!(after.status, Status::SeeOther);
    assert_eq!(after.location.as_deref(), Some("/login"));
    assert_eq!(b.session_cookie(), None);
}

#[tokio::test]
async fn wrong_codes_count_against_the_sign_in_limiter() {
    let app = TestApp::new()
        .set("login_limit_account", 3)
        .set("login_limit_ip", 50)
        .set("login_limit_network", 50);
    let (_, account) = app.two_step_account().await;
    let b = app.browser().await;
    let right = account.next_code();
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    // The right password is not a failure; three wrong codes are, the account's quota.
    b.password_step(&account.email, "").await;
    for _ in 0..3 {
        assert_eq!(b.code_step(wrong).await.status, Status::Unauthorized);
    }
    let throttled = b.code_step(&right).await;
    assert_eq!(
        throttled.status,
        Status::TooManyRequests,
        "{}",
        throttled.body
    );
    let wait: u64 = throttled
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(wait > 0 && wait <= 900, "{wait}");
    assert_eq!(b.session_cookie(), None, "not even the right code passes");
    // The same quota a password counts against: a stranger's right password is
    // throttled too.
    let other = app.browser().await.with_ip("198.51.100.9");
    let p = other.password_step(&account.email, "").await;
    assert_eq!(p.status, Status::TooManyRequests);
}

#[tokio::test]
async fn a_pending_sign_in_cannot_be_continued_from_another_browser_or_a_made_up_cookie() {
    let app = TestApp::new();
    let (_, account) = app.two_step_account().await;
    let b = app.browser().await;
    b.password_step(&account.email, "").await;
    let stolen = b.cookie(PENDING_COOKIE).expect("b's pending cookie");

    // Another browser without the cookie has nothing to continue.
    let other = app.browser().await;
    let lost = other.get(CODE_PAGE).await;
    assert_eq!(lost.status, Status::SeeOther);
    assert_eq!(lost.location.as_deref(), Some("/login"));
    let token = other.get("/login").await.csrf();
    let tried = other
        .post_form(CODE_PAGE, &token, &[("code", &account.next_code())])
        .await;
    assert_eq!(tried.status, Status::SeeOther);
    assert_eq!(tried.location.as_deref(), Some("/login"));
    assert_eq!(other.session_cookie(), None);

    // A cookie made up in the clear (`UID.TOKEN`, not sealed by the server) is none.
    let user_id = user_id(&app, &account.email).await;
    let forger = app.browser().await;
    let made_up = format!("{user_id}.{}", random_token());
    forger.set_cookie(PENDING_COOKIE, &made_up).await;
    let page = forger.get(CODE_PAGE).await;
    assert_eq!(page.status, Status::SeeOther);
    let token = forger.get("/login").await.csrf();
    let tried = forger
        .post_form(CODE_PAGE, &token, &[("code", &account.next_code())])
        .await;
    assert_eq!(tried.location.as_deref(), Some("/login"));
    assert_eq!(forger.session_cookie(), None);

    // The sealed cookie itself, copied into another browser, still needs that
    // browser's own CSRF token: a cross-site post with b's cookie and no token is 403.
    let thief = app.browser().await;
    thief.set_cookie(PENDING_COOKIE, &stolen).await;
    let no_token = thief
        .post_raw(CODE_PAGE, &encode(&[("code", &account.next_code())]))
        .await;
    assert_eq!(no_token.status, Status::Forbidden);
    // And b's pending sign-in was not touched by any of it.
    let finished = b.code_step(&account.next_code()).await;
    assert_eq!(finished.status, Status::SeeOther, "{}", finished.body);
    assert!(b.is_signed_in().await);
}

#[tokio::test]
async fn next_and_rd_are_carried_through_the_code_step() {
    let app = TestApp::new().set("forward_auth_domains", "app.example.com");
    let (_, account) = app.two_step_account().await;

    let b = app.browser().await;
    let p = b
        .password_step(&account.email, "?next=/account/password")
        .await;
    assert_eq!(p.location.as_deref(), Some(CODE_PAGE));
    let signed = b.code_step(&account.recovery[0]).await;
    assert_eq!(signed.location.as_deref(), Some("/account/password"));

    // rd, from a reverse proxy, goes in the form's hidden field.
    let c = app.browser().await;
    let rd = "http://app.example.com/reports?q=1";
    let token = c.get(&format!("/login?rd={}", urlencode(rd))).await.csrf();
    c.post_form(
        "/login",
        &token,
        &[
            ("email", &account.email),
            ("password", PASSWORD),
            ("rd", rd),
        ],
    )
    .await;
    let signed = c.code_step(&account.recovery[1]).await;
    assert_eq!(signed.location.as_deref(), Some(rd));

    // An open redirect is not smuggled through: `next` off-site is ignored.
    let d = app.browser().await;
    let p = d
        .password_step(&account.email, "?next=//evil.example/")
        .await;
    assert_eq!(p.location.as_deref(), Some(CODE_PAGE));
    let signed = d.code_step(&account.recovery[2]).await;
    assert_eq!(signed.location.as_deref(), Some("/devices"));
}

#[tokio::test]
async fn the_api_password_grant_needs_the_one_time_code() {
    let app = TestApp::new()
        .set("login_limit_account", 4)
        .set("login_limit_ip", 50)
        .set("login_limit_network", 50);
    let (_, account) = app.two_step_account().await;
    let api = app.browser().await;
    let grant = |otp: Option<&str>| {
        let mut pairs = vec![
            ("grant_type", "password"),
            ("username", account.email.as_str()),
            ("password", PASSWORD),
        ];
        if let Some(otp) = otp {
            pairs.push(("otp", otp));
        }
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let send = |pairs: Vec<(String, String)>| {
        let api = &api;
        async move {
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            token_form(api, &refs).await
        }
    };

    // The password alone: 401 invalid_grant, saying a one-time code is required.
    let missing = send(grant(None)).await;
    missing.assert_json_error(Status::Unauthorized, "invalid_grant");
    let said = missing.str("error_description");
    assert!(said.contains("one-time code is required"), "{said}");
    // A wrong one: the same error, and it counts as a failed sign-in.
    let wrong = send(grant(Some("000000"))).await;
    wrong.assert_json_error(Status::Unauthorized, "invalid_grant");
    assert!(wrong.str("error_description").contains("one-time code"));

    // The right code (form): tokens; the session says pwd + otp.
    let ok = send(grant(Some(&account.next_code()))).await;
    assert_eq!(ok.status, Status::Ok, "{}", ok.body);
    let tokens = Tokens::from(&ok);
    let sessions = bearer(
        &api,
        rocket::http::Method::Get,
        "/api/v1/sessions",
        &tokens.access,
    )
    .await;
    let mine = sessions
        .json
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["current"] == json!(true))
        .expect("the caller's session")
        .clone();
    assert_eq!(mine["amr"], json!(["pwd", "otp"]));
    let others: Vec<_> = sessions
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] != json!(true))
        .collect();
    assert!(
        others.iter().all(|s| s["amr"] == json!(["pwd"])),
        "{others:?}"
    );

    // JSON works the same, with a recovery code.
    let body = json!({
        "grant_type": "password",
        "username": account.email,
        "password": PASSWORD,
        "otp": account.recovery[0],
    });
    let ok = token_json(&api, &body).await;
    assert_eq!(ok.status, Status::Ok, "{}", ok.body);
    // Replayed, that recovery code is a wrong code.
    let again = token_json(&api, &body).await;
    again.assert_json_error(Status::Unauthorized, "invalid_grant");

    // Wrong codes fill the account's failure quota (4): 000000 and the replay are 2;
    // two more, and then even a right code is throttled.
    send(grant(Some("111111")))
        .await
        .assert_json_error(Status::Unauthorized, "invalid_grant");
    send(grant(Some("222222")))
        .await
        .assert_json_error(Status::Unauthorized, "invalid_grant");
    let throttled = send(grant(Some(&account.recovery[1]))).await;
    assert_eq!(
        throttled.status,
        Status::TooManyRequests,
        "{}",
        throttled.body
    );
    assert!(throttled.header("Retry-After").is_some());
}

#[tokio::test]
async fn in_chromium_the_password_then_a_code_or_a_recovery_code_lead_to_the_devices_page() {
    let driver = Chromedriver::start();
    let app = TestApp::new();
    let base = app.serve().await;
    let (_, account) = app.two_step_account().await;

    let c = driver.browser(None).await;
    sign_in(&c, &base, &account.email, PASSWORD).await;
    expect_path(&c, CODE_PAGE).await;
    let page = text(&c).await;
    assert!(page.contains("Two-step sign-in"), "{page}");
    shoot(&c, "second-factor").await;

    // A wrong code: the same page, saying so, the field empty again.
    fill(&c, "code", "000000").await;
    submit(&c).await;
    expect_path(&c, CODE_PAGE).await;
    assert!(text(&c).await.contains(WRONG_CODE));
    shoot(&c, "second-factor-wrong").await;

    // The code the app shows: the devices page, which says how this browser signed in.
    let code = account.next_code();
    fill(&c, "code", &code).await;
    let button = c
        .find(Locator::Css("form.form button[type=submit]"))
        .await
        .expect("the button");
    navigate_by(&c, button).await;
    expect_path(&c, "/devices").await;
    let current = c
        .find(Locator::Css("li.device-current"))
        .await
        .expect("this device")
        .text()
        .await
        .expect("text");
    assert!(current.contains("password + authenticator"), "{current}");

    // Signed out and in again: the same code is refused as used, a recovery code works.
    let sign_out = c
        .find(Locator::Css("form.inline-form button[type=submit]"))
        .await
        .expect("the sign-out button");
    navigate_by(&c, sign_out).await;
    expect_path(&c, "/login").await;
    sign_in(&c, &base, &account.email, PASSWORD).await;
    expect_path(&c, CODE_PAGE).await;
    fill(&c, "code", &code).await;
    submit(&c).await;
    expect_path(&c, CODE_PAGE).await;
    assert!(
        text(&c).await.contains(WRONG_CODE),
        "a replayed code is refused"
    );
    fill(&c, "code", &account.recovery[0]).await;
    submit(&c).await;
    expect_path(&c, "/devices").await;
    assert!(text(&c).await.contains("password + authenticator"));
    c.close().await.expect("close");
}

#[tokio::test]
async fn a_new_password_ends_a_pending_sign_in_made_with_the_old_one() {
    let app = TestApp::new();
    let (owner, account) = app.two_step_account().await;
    // Someone has the password and a pending sign-in; the owner changes the password.
    let attacker = app.browser().await.with_ip("198.51.100.7");
    attacker.password_step(&account.email, "").await;
    let changed = owner
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a whole new passphrase for this"),
            ],
        )
        .await;
    assert_eq!(changed.status, Status::SeeOther, "{}", changed.body);
    // Even with a right code, the old password's pending sign-in is over.
    let token = attacker.get("/login").await.csrf();
    let tried = attacker
        .post_form(CODE_PAGE, &token, &[("code", &account.recovery[0])])
        .await;
    assert_eq!(tried.status, Status::SeeOther);
    assert_eq!(tried.location.as_deref(), Some("/login"));
    assert_eq!(attacker.session_cookie(), None);
}

#[tokio::test]
async fn in_secure_mode_the_pending_cookie_is_host_only_and_secure() {
    let app = TestApp::new().set("cookie_secure", true);
    let (_, account) = app.two_step_account().await;
    let b = app.browser().await;
    let answer = b.password_step(&account.email, "").await;
    assert_eq!(answer.location.as_deref(), Some(CODE_PAGE));
    let cookies = answer.set_cookies();
    let pending = cookies
        .iter()
        .find(|c| c.starts_with("__Host-latchkey_2fa="))
        .unwrap_or_else(|| panic!("the __Host- pending cookie: {cookies:?}"));
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(pending.contains(attribute), "{attribute}: {pending}");
    }
    assert!(
        !cookies.iter().any(|c| c.starts_with("__Host-latchkey=")),
        "{cookies:?}"
    );
    // Its removal, when the code is right, carries `Secure` too (or browsers keep it).
    let signed = b.code_step(&account.next_code()).await;
    assert_eq!(signed.status, Status::SeeOther, "{}", signed.body);
    let removal = signed
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-latchkey_2fa="))
        .expect("the pending cookie's removal");
    assert!(
        removal.contains("Secure") && removal.contains("Max-Age=0"),
        "{removal}"
    );
}

#[tokio::test]
async fn two_right_codes_sent_at_once_sign_in_once() {
    let app = TestApp::new();
    let (_, account) = app.two_step_account().await;
    let b = app.browser().await;
    b.password_step(&account.email, "").await;
    let token = b.get(CODE_PAGE).await.csrf();
    let (recovery, current) = (account.recovery[0].clone(), account.next_code());
    let (one, other) = ([("code", recovery.as_str())], [("code", current.as_str())]);
    let (first, second) = tokio::join!(
        b.post_form(CODE_PAGE, &token, &one),
        b.post_form(CODE_PAGE, &token, &other),
    );
    let mut places: Vec<_> = [first.location, second.location]
        .into_iter()
        .map(|l| l.unwrap_or_default())
        .collect();
    places.sort();
    assert_eq!(
        places,
        ["/devices", "/login"],
        "one signs in, one finds it used"
    );
    let sessions = keys_under(&app.prefix)
        .await
        .into_iter()
        .filter(|k| k.contains(":s:"))
        .count();
    assert_eq!(sessions, 2, "the owner's and one new session");
    assert!(b.is_signed_in().await);
}

#[tokio::test]
async fn a_two_step_sign_in_is_counted_once_when_its_code_step_ends() {
    const TOKEN: &str = "scrape-two-step-5d1e9a7c3b2f8064";
    let app = TestApp::new().set("metrics_token", TOKEN);
    let (_, account) = app.two_step_account().await;
    let b = app.browser().await;
    let count = |outcome: &'static str| {
        let b = &b;
        async move {
            let page = bearer(b, rocket::http::Method::Get, "/metrics", TOKEN).await;
            let series = format!("latchkey_sign_ins_total{{outcome=\"{outcome}\"}} ");
            page.body
                .lines()
                .find_map(|l| l.strip_prefix(&series))
                .map(|v| v.trim().parse::<f64>().expect("a number"))
                .unwrap_or(0.0)
        }
    };
    b.password_step(&account.email, "").await;
    assert_eq!(
        (count("ok").await, count("wrong").await),
        (0.0, 0.0),
        "not yet"
    );
    assert_eq!(b.code_step("000000").await.status, Status::Unauthorized);
    assert_eq!(
        count("wrong").await,
        1.0,
        "a wrong code is a failed sign-in"
    );
    b.code_step(&account.next_code()).await;
    assert_eq!(count("ok").await, 1.0, "the sign-in, once");
}

/// Two different right recovery codes sent at once on one pending sign-in: one signs
/// in, and only its code is spent. The other code, whose request found the pending
/// sign-in already taken, still works afterwards; the owner gets one mail, not two.
#[tokio::test]
async fn two_recovery_codes_sent_at_once_spend_only_the_one_that_signed_in() {
    let app = TestApp::new();
    let (owner, account) = app.two_step_account().await;
    let b = app.browser().await;
    b.password_step(&account.email, "").await;
    let token = b.get(CODE_PAGE).await.csrf();
    let (one, other) = (&account.recovery[0], &account.recovery[1]);
    let (one_form, other_form) = ([("code", one.as_str())], [("code", other.as_str())]);
    let (first, second) = tokio::join!(
        b.post_form(CODE_PAGE, &token, &one_form),
        b.post_form(CODE_PAGE, &token, &other_form),
    );
    let signed_in = |p: &Page| p.location.as_deref() == Some("/devices");
    assert!(
        signed_in(&first) != signed_in(&second),
        "exactly one signs in: {:?} / {:?}",
        first.location,
        second.location
    );
    let (spent, kept) = if signed_in(&first) {
        (one, other)
    } else {
        (other, one)
    };
    // The code that lost is still unused: it signs in elsewhere; the winner does not.
    let c = app.browser().await;
    c.password_step(&account.email, "").await;
    let refused = c.code_step(spent).await;
    assert_eq!(refused.status, Status::Unauthorized, "{}", refused.body);
    let again = c.code_step(kept).await;
    assert_eq!(
        again.location.as_deref(),
        Some("/devices"),
        "{}",
        again.body
    );
    let security = owner.get("/account/security").await.body;
    assert!(
        security.contains("8 left"),
        "two codes used in all: {security}"
    );
}

/// An attacker with the password starts many pending sign-ins, from many addresses,
/// and tries one wrong code in each: the wrong codes add up on the account's sign-in
/// quota (not per pending sign-in), so a fresh pending sign-in buys no fresh guesses.
#[tokio::test]
async fn wrong_codes_across_many_pending_sign_ins_add_up_on_the_account_quota() {
    let app = TestApp::new()
        .set("login_limit_account", 4)
        .set("login_limit_ip", 100)
        .set("login_limit_network", 100);
    let (_, account) = app.two_step_account().await;
    let right = account.next_code();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    // One pending sign-in kept aside, started while the quota was still empty.
    let late = app.browser().await.with_ip("203.0.113.99");
    late.password_step(&account.email, "").await;
    for i in 0..4 {
        // Each from another network: the address quotas never fill.
        let b = app.browser().await.with_ip(&format!("198.51.{i}.7"));
        let p = b.password_step(&account.email, "").await;
        assert_eq!(p.location.as_deref(), Some(CODE_PAGE), "{}", p.body);
        let r = b.code_step(wrong).await;
        assert_eq!(r.status, Status::Unauthorized, "{}", r.body);
        // Each pending sign-in counts its own tries too (one of five used).
        assert!(r.body.contains("4 more wrong codes"), "{}", r.body);
    }
    // The one kept aside: its first code, even the right one, is refused, the
    // account's quota being spent; so is a new password step, from yet another network.
    let throttled = late.code_step(&right).await;
    assert_eq!(
        throttled.status,
        Status::TooManyRequests,
        "{}",
        throttled.body
    );
    assert!(late.session_cookie().is_none());
    let b = app.browser().await.with_ip("203.0.113.77");
    let p = b.password_step(&account.email, "").await;
    assert_eq!(p.status, Status::TooManyRequests, "{}", p.body);
    assert!(b.session_cookie().is_none());
}

/// Someone who does not know the password cannot tell whether an account has a second
/// factor: a wrong password gets the same answer, byte for byte (the form token
/// aside), the same cookies and no pending sign-in, on the page and the API alike.
#[tokio::test]
async fn a_wrong_password_answers_the_same_with_or_without_a_second_factor() {
    let app = TestApp::new();
    let enrolled = app.two_step_account().await.1;
    let plain = email();
    assert_eq!(
        app.browser().await.register(&plain).await.status,
        Status::SeeOther
    );
    let attempt = |who: String| {
        let app = &app;
        async move {
            let b = app.browser().await;
            let token = b.get("/login").await.csrf();
            let page = b
                .post_form(
                    "/login",
                    &token,
                    &[("email", &who), ("password", "not the password")],
                )
                .await;
            let cookies: Vec<String> = page
                .set_cookies()
                .iter()
                .map(|c| c.split('=').next().unwrap_or("").to_string())
                .collect();
            let body = page.body.replace(&who, "EMAIL").replace(&token, "TOKEN");
            let body = body.replace(&page.csrf(), "TOKEN");
            let api = password_attempt(&b, &who, "not the password").await;
            (
                page.status,
                body,
                cookies,
                b.cookie(PENDING_COOKIE),
                api.status,
                api.json,
            )
        }
    };
    let with = attempt(enrolled.email.clone()).await;
    let without = attempt(plain).await;
    assert_eq!(with.0, Status::Unauthorized);
    assert_eq!(with.3, None, "no pending sign-in");
    assert_eq!(with, without);
}

/// Whatever is typed as a code, the answer is a 4xx with the page, never a 500:
/// very long input, letters, other scripts' digits, emoji, control characters. None
/// of it signs in, and the right code still does afterwards.
#[tokio::test]
async fn malformed_codes_are_wrong_codes_never_errors() {
    let app = TestApp::new()
        .set("login_limit_account", 100)
        .set("login_limit_ip", 100)
        .set("login_limit_network", 100);
    let (_, account) = app.two_step_account().await;
    let long = "1".repeat(20_000);
    let inputs = [
        long.as_str(),
        "12345a",
        "１２３４５６",
        "١٢٣٤٥٦",
        "🔑🔑🔑🔑🔑🔑",
        "12\u{0}456",
        "ABCD-EFGH-IJKL-MNOPQ",
        "ÄBCD-EFGH-IJKL-MNOP",
        "--------",
        "' OR 1=1 --",
    ];
    let b = app.browser().await;
    let api = app.browser().await;
    for (i, input) in inputs.iter().enumerate() {
        if i % 4 == 0 {
            // A new pending sign-in before five wrong codes end it.
            b.password_step(&account.email, "").await;
        }
        let r = b.code_step(input).await;
        assert_eq!(r.status, Status::Unauthorized, "{input:?}: {}", r.body);
        assert!(r.body.contains(WRONG_CODE), "{input:?}");
        let grant = token_form(
            &api,
            &[
                ("grant_type", "password"),
                ("username", &account.email),
                ("password", PASSWORD),
                ("otp", input),
            ],
        )
        .await;
        grant.assert_json_error(Status::Unauthorized, "invalid_grant");
    }
    // Longer than a form may be: refused before any code is looked at, not a 500.
    b.password_step(&account.email, "").await;
    let huge = "7".repeat(200_000);
    let r = b.code_step(&huge).await;
    assert!(r.status.code >= 400 && r.status.code < 500, "{}", r.status);
    let grant = token_form(
        &api,
        &[
            ("grant_type", "password"),
            ("username", &account.email),
            ("password", PASSWORD),
            ("otp", &huge),
        ],
    )
    .await;
    assert!(
        grant.status.code >= 400 && grant.status.code < 500,
        "{}",
        grant.status
    );
    // The JSON body with an `otp` that is not a string: a 4xx saying so.
    for otp in [
        json!(123456),
        json!(["123456"]),
        json!(null),
        json!({"code": 1}),
    ] {
        let r = token_json(
            &api,
            &json!({"grant_type": "password", "username": account.email, "password": PASSWORD, "otp": otp}),
        )
        .await;
        assert!(
            r.status.code >= 400 && r.status.code < 500,
            "{otp}: {}",
            r.status
        );
    }
    // Only blanks: asked for a code, the pending sign-in untouched.
    b.password_step(&account.email, "").await;
    let blank = b.code_step(" \t ").await;
    assert_eq!(blank.status, Status::BadRequest, "{}", blank.body);
    assert!(b.session_cookie().is_none());
    let signed = b.code_step(&account.next_code()).await;
    assert_eq!(
        signed.location.as_deref(),
        Some("/devices"),
        "{}",
        signed.body
    );
}

/// Turning the second factor on leaves the account's other sessions signed in (as
/// GitHub and Google do): a browser and an API refresh token made with the password
/// alone keep working, and the devices page shows them as "with password" so the owner
/// can end them. Only new sign-ins need the code (turning it off ends the others).
#[tokio::test]
async fn sessions_and_refresh_tokens_from_before_the_factor_was_on_keep_working() {
    let app = TestApp::new();
    let (owner, email) = app.signed_in_browser().await;
    let old_browser = app.browser().await.with_agent(SAFARI_IOS);
    old_browser.login(&email, PASSWORD).await;
    let api = app.browser().await;
    let tokens = password_grant(&api, &email, Some("backup-script")).await;

    // On, through the pages.
    let setup = owner.get("/account/totp").await;
    let secret = secret_on(&setup.body);
    let code = code_of_the_step_before(&secret);
    let on = owner
        .post_form(
            "/account/totp",
            &setup.csrf(),
            &[("code", &code), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(on.status, Status::Ok, "{}", on.body);

    assert!(old_browser.is_signed_in().await);
    let rotated = refresh(&api, &tokens.refresh).await;
    assert_eq!(rotated.status, Status::Ok, "{}", rotated.body);
    let devices = owner.get("/devices").await.body;
    assert!(devices.contains("Safari on iOS"), "{devices}");
    assert!(devices.contains("backup-script"), "{devices}");
    assert!(devices.contains("with password<"), "{devices}");
    // A new password grant, though, needs the code now.
    let fresh = password_attempt(&api, &email, PASSWORD).await;
    fresh.assert_json_error(Status::Unauthorized, "invalid_grant");
}

/// The code page's form with a forged token (holding the real pending cookie): 403,
/// and the pending sign-in is untouched: no try used, the right code still signs in.
#[tokio::test]
async fn a_forged_form_token_on_the_code_page_is_403_and_uses_no_try() {
    let app = TestApp::new();
    let account = app.two_step_account().await.1;
    let b = app.browser().await;
    b.password_step(&account.email, "").await;
    let forged = "x".repeat(43);
    let r = b.post_form(CODE_PAGE, &forged, &[("code", "000000")]).await;
    assert_eq!(r.status, Status::Forbidden);
    let page = b.get(CODE_PAGE).await;
    assert_eq!(page.status, Status::Ok);
    assert!(!page.body.contains("more wrong code"), "{}", page.body);
    let signed = b.code_step(&account.next_code()).await;
    assert_eq!(
        signed.location.as_deref(),
        Some("/devices"),
        "{}",
        signed.body
    );
}

/// Forward authentication across hosts: the sign-in page's and the code page's forms
/// end at the proxied app on another origin (`rd`), which their `form-action` names;
/// without it Chromium stays on our page.
#[tokio::test]
async fn in_chromium_a_sign_in_with_rd_reaches_the_app_on_another_host_from_either_page() {
    use crate::support::chromium::wait_for_app;
    let driver = Chromedriver::start();
    // `*.localhost` is the loopback address in Chromium: another origin, same machine.
    let app = TestApp::new().set("forward_auth_domains", ".localhost:*");
    let base = app.serve().await;
    let (rp, calls) = rp_callback();
    let rd = format!("http://app.localhost:{rp}/notes");
    let login = format!("{base}/login?rd={}", urlencode(&rd));
    let plain = app.account().await;
    let account = app.two_step_account().await.1;
    // Only a followable rd's origin is named; anything else leaves 'self' alone.
    let csp = |page: &Page| {
        page.header("Content-Security-Policy")
            .expect("CSP")
            .to_string()
    };
    let visitor = app.browser().await;
    let allowed = visitor.get(&format!("/login?rd={}", urlencode(&rd))).await;
    assert!(
        csp(&allowed).contains(&format!("form-action 'self' http://app.localhost:{rp};")),
        "{}",
        csp(&allowed)
    );
    for other in [
        "http://evil.example/notes",
        "javascript:alert(1)",
        "//app.localhost/x",
    ] {
        let page = visitor
            .get(&format!("/login?rd={}", urlencode(other)))
            .await;
        assert!(
            csp(&page).contains("form-action 'self';"),
            "{other}: {}",
            csp(&page)
        );
    }

    // A password alone: the sign-in form's 303 goes straight to the app.
    let c = driver.browser(None).await;
    c.goto(&login).await.expect("goto");
    fill(&c, "email", &plain).await;
    fill(&c, "password", PASSWORD).await;
    let button = c
        .find(Locator::Css("form.form button[type=submit]"))
        .await
        .expect("button");
    button.click().await.expect("click");
    assert_eq!(wait_for_app(&c, rp).await.path(), "/notes");
    let line = calls.recv_timeout(ANSWER_WITHIN).expect("called");
    assert!(line.starts_with("GET /notes"), "{line}");
    c.close().await.expect("close");

    // With a second factor: the code form's 303 goes there.
    let c = driver.browser(None).await;
    c.goto(&login).await.expect("goto");
    fill(&c, "email", &account.email).await;
    fill(&c, "password", PASSWORD).await;
    submit(&c).await;
    expect_path(&c, CODE_PAGE).await;
    fill(&c, "code", &account.next_code()).await;
    let button = c
        .find(Locator::Css("form.form button[type=submit]"))
        .await
        .expect("button");
    button.click().await.expect("click");
    assert_eq!(wait_for_app(&c, rp).await.path(), "/notes");
    c.close().await.expect("close");
}
