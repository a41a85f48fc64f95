//! Passkeys through the JSON endpoints, answered by a software authenticator
//! (`support::authenticator`): adding one, signing in with it alone and as the second
//! step, renaming and removing; and as an attacker would try them: a replayed answer,
//! another origin or relying party, another browser's ceremony, a counter that went
//! backwards, an unknown credential, no user verification, no CSRF token, brute force
//! against the limiter, another account's passkey at the second step.

use rocket::http::Status;
use serde_json::json;

use crate::support::*;

/// An app whose `public_url` has a host name, as passkeys need.
fn passkey_app() -> TestApp {
    TestApp::new().set("public_url", PASSKEY_ORIGIN)
}

/// A signed-in browser of a new account with one passkey added, the passkey and the
/// account's address.
async fn account_with_passkey(app: &TestApp) -> (Browser, SoftPasskey, String) {
    let (b, email) = app.signed_in_browser().await;
    let mut key = SoftPasskey::new();
    let added = b.add_passkey(&mut key, "Laptop").await;
    assert_eq!(added.status, Status::Created, "{}", added.body);
    (b, key, email)
}

#[tokio::test]
async fn a_passkey_signs_in_alone_and_the_devices_page_says_passkey() {
    let app = passkey_app();
    let (b, mut key, email) = account_with_passkey(&app).await;
    let security = b.get("/account/security").await;
    assert!(security.body.contains("id=\"passkeys\""));
    assert!(security.body.contains("Laptop"));
    assert!(security.body.contains("This device only"));
    let mail = wait_for_mail_saying(&app.outbox(), "A passkey was added").await;
    assert!(mail.contains(&email) && mail.contains("Laptop"));

    let other = app.browser().await.with_agent(CHROME_WINDOWS);
    let signed = other.passkey_sign_in(&mut key).await;
    assert_eq!(signed.status, Status::Ok, "{}", signed.body);
    assert_eq!(signed.json["redirect"], "/devices");
    assert!(other.is_signed_in().await);
    let devices = other.get("/devices").await;
    assert!(
        devices.body.contains("passkey"),
        "the devices page names the method"
    );
    // No second step: the session was started by the assertion alone.
    assert!(other.cookie("latchkey_2fa").is_none());
    let security = other.get("/account/security").await;
    assert!(security.body.contains("last used"));
}

#[tokio::test]
async fn the_creation_options_ask_for_a_discoverable_verified_credential_with_a_random_handle() {
    let app = passkey_app();
    let (b, email) = app.signed_in_browser().await;
    let options = b.passkey_options(None).await;
    assert_eq!(options.status, Status::Ok, "{}", options.body);
    let pk = &options.json["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "preferred");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["user"]["name"], email.as_str());
    let user = app.user(&email).await.expect("the account");
    let handle = pk["user"]["id"].as_str().expect("a user handle");
    assert!(!handle.is_empty());
    assert_ne!(handle, base64_url(user.id.as_bytes()), "not the user id");
    assert_ne!(handle, base64_url(email.as_bytes()), "not the address");
    // The same handle every time: it is stored with the account.
    let again = b.passkey_options(None).await;
    assert_eq!(again.json["publicKey"]["user"]["id"], pk["user"]["id"]);
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let app = passkey_app();
    let (_b, mut key, _) = account_with_passkey(&app).await;
    let attacker = app.browser().await;
    let options = attacker.sign_in_options(false).await;
    let assertion = key.assert(&options.json);
    let first = attacker.post_assertion(&assertion, false).await;
    assert_eq!(first.status, Status::Ok, "{}", first.body);

    // The same answer again: its ceremony is gone.
    let replay = app.browser().await;
    assert_eq!(
        replay.post_assertion(&assertion, false).await.status,
        Status::Unauthorized
    );
    // ... and against a fresh ceremony its challenge is the old one.
    replay.sign_in_options(false).await;
    let again = replay.post_assertion(&assertion, false).await;
    assert_eq!(again.status, Status::Unauthorized);
    assert!(!replay.is_signed_in().await);
}

#[tokio::test]
async fn an_answer_from_another_origin_or_relying_party_is_refused() {
    let app = passkey_app();
    let (_b, key, _) = account_with_passkey(&app).await;
    let mut phished = key.clone();
    phished.origin = "http://localhost.evil.example".into();
    let b = app.browser().await;
    let options = b.sign_in_options(false).await;
    let refused = b
        .post_assertion(&phished.assert(&options.json), false)
        .await;
    assert_eq!(refused.status, Status::Unauthorized, "{}", refused.body);

    let mut other_rp = key.clone();
    other_rp.rp_id = "evil.example".into();
    let options = b.sign_in_options(false).await;
    let refused = b
        .post_assertion(&other_rp.assert(&options.json), false)
        .await;
    assert_eq!(refused.status, Status::Unauthorized);

    // The genuine key still works (nothing was used up by the refusals).
    let mut genuine = key.clone();
    genuine.counter = 5;
    assert_eq!(b.passkey_sign_in(&mut genuine).await.status, Status::Ok);
}

#[tokio::test]
async fn a_registration_from_another_origin_is_refused() {
    let app = passkey_app();
    let (b, _) = app.signed_in_browser().await;
    let mut key = SoftPasskey::new();
    key.origin = "http://evil.example".into();
    let added = b.add_passkey(&mut key, "Phished").await;
    assert_eq!(added.status, Status::BadRequest, "{}", added.body);
    assert!(!b.get("/account/security").await.body.contains("Phished"));
}

#[tokio::test]
async fn another_browsers_ceremony_is_refused() {
    let app = passkey_app();
    let (_b, mut key, _) = account_with_passkey(&app).await;
    let victim = app.browser().await;
    let options = victim.sign_in_options(false).await;
    let assertion = key.assert(&options.json);
    // The attacker holds the right answer to the victim's challenge, but not the
    // victim's ceremony cookie.
    let attacker = app.browser().await;
    attacker.sign_in_options(false).await;
    let refused = attacker.post_assertion(&assertion, false).await;
    assert_eq!(refused.status, Status::Unauthorized);
    assert!(!attacker.is_signed_in().await);
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_marks_the_passkey_and_mails_the_owner() {
    let app = passkey_app();
    let (b, mut key, _) = account_with_passkey(&app).await;
    let device = app.browser().await;
    assert_eq!(device.passkey_sign_in(&mut key).await.status, Status::Ok);
    assert_eq!(device.passkey_sign_in(&mut key).await.status, Status::Ok);

    let mut clone = key.clone();
    clone.counter = 0; // signs with 1, behind the 2 stored
    let thief = app.browser().await;
    assert_eq!(
        thief.passkey_sign_in(&mut clone).await.status,
        Status::Unauthorized
    );
    assert!(!thief.is_signed_in().await);
    let mail = wait_for_mail_saying(&app.outbox(), "may have been copied").await;
    assert!(mail.contains("Laptop"));
    assert!(b
        .get("/account/security")
        .await
        .body
        .contains("Refused: it looked copied"));

    // Marked: even the genuine key, counting on, no longer signs in.
    let again = app.browser().await;
    assert_eq!(
        again.passkey_sign_in(&mut key).await.status,
        Status::Unauthorized
    );
}

#[tokio::test]
async fn an_unknown_credential_reads_the_same_as_a_wrong_one() {
    let app = passkey_app();
    let (_b, key, _) = account_with_passkey(&app).await;
    let b = app.browser().await;
    let mut stranger = SoftPasskey::new();
    let unknown = b.passkey_sign_in(&mut stranger).await;
    let mut wrong = key.clone();
    wrong.origin = "http://evil.example".into();
    let wrong = b.passkey_sign_in(&mut wrong).await;
    assert_eq!(unknown.status, Status::Unauthorized);
    assert_eq!(wrong.status, Status::Unauthorized);
    assert_eq!(unknown.body, wrong.body, "one answer for both");
}

#[tokio::test]
async fn an_assertion_without_user_verification_is_refused() {
    let app = passkey_app();
    let (_b, key, _) = account_with_passkey(&app).await;
    let mut presence_only = key.clone();
    presence_only.verifies_user = false;
    let b = app.browser().await;
    assert_eq!(
        b.passkey_sign_in(&mut presence_only).await.status,
        Status::Unauthorized
    );
}

#[tokio::test]
async fn failed_assertions_count_against_the_sign_in_limiter() {
    let app = passkey_app().set("login_limit_account", 3);
    let (_b, key, _) = account_with_passkey(&app).await;
    let b = app.browser().await;
    for _ in 0..3 {
        let mut wrong = key.clone();
        wrong.origin = "http://evil.example".into();
        assert_eq!(
            b.passkey_sign_in(&mut wrong).await.status,
            Status::Unauthorized
        );
    }
    let mut right = key.clone();
    right.counter = 10;
    let throttled = b.passkey_sign_in(&mut right).await;
    assert_eq!(
        throttled.status,
        Status::TooManyRequests,
        "{}",
        throttled.body
    );
    assert!(throttled.retry_after() > 0);
    assert!(throttled.json["error"].as_str().is_some());
    // The password counts against the same quota.
    let email_page = b.login(&email_of(&app, &key).await, PASSWORD).await;
    assert_eq!(email_page.status, Status::TooManyRequests);
}

/// The address of the account `key` was added to, read back from the database.
async fn email_of(app: &TestApp, key: &SoftPasskey) -> String {
    let accounts = app.accounts().await;
    let row = accounts
        .passkey_by_credential(&key.id())
        .await
        .expect("the database answers")
        .expect("the passkey");
    let id = uuid::Uuid::parse_str(&row.user_id).expect("a user id");
    accounts
        .find_by_id(&id)
        .await
        .expect("the database answers")
        .expect("the account")
        .email
}

#[tokio::test]
async fn json_posts_without_the_pages_token_are_refused() {
    let app = passkey_app();
    let (b, _) = app.signed_in_browser().await;
    let none = b
        .post_json("/account/passkeys/options", "", &json!({}))
        .await;
    assert_eq!(none.status, Status::Forbidden);
    let wrong = b
        .post_json("/login/passkey/options", &random_token(), &json!({}))
        .await;
    assert_eq!(wrong.status, Status::Forbidden);
    // A form post (what another site can send) is refused too, token or not.
    let token = b.get("/account/security").await.csrf();
    let form = b
        .post_raw(
            "/account/passkeys/options",
            &encode(&[("csrf_token", &token)]),
        )
        .await;
    assert_eq!(form.status, Status::Forbidden);
    // The token in the body works as well as in the header.
    let in_body = b
        .post_json(
            "/account/passkeys/options",
            "",
            &json!({ "csrf_token": token }),
        )
        .await;
    assert_eq!(in_body.status, Status::Ok, "{}", in_body.body);
}

#[tokio::test]
async fn adding_after_an_old_sign_in_needs_the_current_password() {
    let app = passkey_app();
    let (b, _) = app.signed_in_browser().await;
    age_session(&app, &b).await;
    let asked = b.passkey_options(None).await;
    assert_eq!(asked.status, Status::Forbidden, "{}", asked.body);
    assert_eq!(asked.json["reauth"], true);
    let wrong = b.passkey_options(Some("not the password")).await;
    assert_eq!(wrong.status, Status::Unauthorized);
    let right = b.passkey_options(Some(PASSWORD)).await;
    assert_eq!(right.status, Status::Ok, "{}", right.body);
    assert!(right.json["publicKey"]["challenge"].is_string());
}

/// Makes the browser's session look signed in 10 minutes ago.
async fn age_session(app: &TestApp, b: &Browser) {
    let cookie = b.session_cookie().expect("signed in");
    let session = SessionCookie::parse(&cookie).expect("a session cookie");
    let key = app.key_names().session(&session.user_id, &session.sid);
    let mut conn = redis_conn().await;
    let ten_minutes_ago = now_ms() - 10 * 60 * 1000;
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("t")
        .arg(ten_minutes_ago)
        .query_async(&mut conn)
        .await
        .expect("HSET");
}

#[tokio::test]
async fn a_renamed_passkey_shows_its_new_name_and_bad_names_are_refused() {
    let app = passkey_app();
    let (b, key, _) = account_with_passkey(&app).await;
    let id = passkey_id(&app, &key).await;
    let path = format!("/account/passkeys/{id}/rename");
    let renamed = b
        .submit("/account/security", &path, &[("name", "Work phone")])
        .await;
    assert_eq!(renamed.status, Status::SeeOther);
    assert_eq!(renamed.location.as_deref(), Some("/account/security"));
    let page = b.get("/account/security").await;
    assert!(page.body.contains("Work phone") && !page.body.contains(">Laptop<"));
    let bad = b
        .submit("/account/security", &path, &[("name", "bad\u{202e}name")])
        .await;
    assert_eq!(bad.status, Status::BadRequest);
    // Another account cannot rename it.
    let (other, _) = app.signed_in_browser().await;
    let theirs = other
        .submit("/account/security", &path, &[("name", "Mine")])
        .await;
    assert_eq!(theirs.status, Status::NotFound);
    assert!(b.get("/account/security").await.body.contains("Work phone"));
}

async fn passkey_id(app: &TestApp, key: &SoftPasskey) -> String {
    app.accounts()
        .await
        .passkey_by_credential(&key.id())
        .await
        .expect("the database answers")
        .expect("the passkey")
        .id
}

#[tokio::test]
async fn a_removed_passkey_stops_working_and_the_owner_is_mailed() {
    let app = passkey_app();
    let (b, mut key, _) = account_with_passkey(&app).await;
    let id = passkey_id(&app, &key).await;
    let path = format!("/account/passkeys/{id}/remove");
    // Another account cannot remove it.
    let (other, _) = app.signed_in_browser().await;
    let theirs = other.submit("/account/security", &path, &[]).await;
    assert_eq!(theirs.status, Status::NotFound);

    // An old sign-in needs the password.
    age_session(&app, &b).await;
    let no_password = b.submit("/account/security", &path, &[]).await;
    assert_eq!(no_password.status, Status::Unauthorized);
    let removed = b
        .submit(
            "/account/security",
            &path,
            &[("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(removed.status, Status::SeeOther, "{}", removed.body);
    wait_for_mail_saying(&app.outbox(), "was removed from your account").await;
    assert!(!b.get("/account/security").await.body.contains("Laptop"));
    let later = app.browser().await;
    assert_eq!(
        later.passkey_sign_in(&mut key).await.status,
        Status::Unauthorized
    );
}

#[tokio::test]
async fn an_account_has_at_most_ten_passkeys_and_one_credential_is_added_once() {
    let app = passkey_app();
    let (b, _) = app.signed_in_browser().await;
    let mut first = SoftPasskey::new();
    assert_eq!(b.add_passkey(&mut first, "").await.status, Status::Created);
    assert!(
        b.get("/account/security").await.body.contains(">Passkey<"),
        "the default name"
    );
    // The same credential again (an authenticator that ignored excludeCredentials):
    // refused, nothing added.
    let mut same = first.clone();
    let again = b.add_passkey(&mut same, "Again").await;
    assert!(
        again.status.code >= 400 && again.status.code < 500,
        "{}",
        again.body
    );
    assert!(!b.get("/account/security").await.body.contains("Again"));
    for _ in 1..10 {
        let mut key = SoftPasskey::new();
        assert_eq!(
            b.add_passkey(&mut key, "More").await.status,
            Status::Created
        );
    }
    let full = b.passkey_options(None).await;
    assert_eq!(full.status, Status::Conflict, "{}", full.body);
    assert!(full.json["error"].as_str().unwrap_or("").contains("10"));
}

#[tokio::test]
async fn a_passkey_is_the_second_step_of_a_password_sign_in() {
    let app = passkey_app();
    let (b, account) = app.two_step_account().await;
    let mut key = SoftPasskey::new();
    assert_eq!(b.add_passkey(&mut key, "Key").await.status, Status::Created);

    let laptop = app.browser().await;
    let step = laptop.password_step(&account.email, "").await;
    assert_eq!(step.location.as_deref(), Some(CODE_PAGE));
    let code_page = laptop.get(CODE_PAGE).await;
    assert!(code_page.body.contains("id=\"passkey-second-factor\""));
    // A wrong code shows the form again, and the passkey is still offered.
    let wrong = laptop
        .post_form(CODE_PAGE, &code_page.csrf(), &[("code", "000000")])
        .await;
    assert_eq!(wrong.status, Status::Unauthorized, "{}", wrong.body);
    assert!(wrong.body.contains("id=\"passkey-second-factor\""));
    assert!(wrong.body.contains("<script src=\"/static/passkeys"));
    let options = laptop.sign_in_options(true).await;
    assert_eq!(options.status, Status::Ok, "{}", options.body);
    let allowed = options.json["publicKey"]["allowCredentials"]
        .as_array()
        .expect("the account's passkeys");
    assert_eq!(allowed.len(), 1);
    let done = laptop
        .post_assertion(&key.assert(&options.json), true)
        .await;
    assert_eq!(done.status, Status::Ok, "{}", done.body);
    assert_eq!(done.json["redirect"], "/devices");
    assert!(laptop
        .get("/devices")
        .await
        .body
        .contains("password + passkey"));
}

#[tokio::test]
async fn another_accounts_passkey_is_not_a_second_step() {
    let app = passkey_app();
    let (b, _account) = app.two_step_account().await;
    let mut mine = SoftPasskey::new();
    assert_eq!(
        b.add_passkey(&mut mine, "Mine").await.status,
        Status::Created
    );
    let (_other, mut theirs, _) = account_with_passkey(&app).await;
    let (_victim_browser, victim) = app.two_step_account().await;

    let attacker = app.browser().await;
    attacker.password_step(&victim.email, "").await;
    // The victim has no passkey: no options, and an assertion of another account is
    // refused.
    assert_eq!(
        attacker.sign_in_options(true).await.status,
        Status::BadRequest
    );
    attacker.sign_in_options(false).await;
    let assertion = theirs.assert(&json!({ "publicKey": { "challenge": "AAAA" } }));
    let refused = attacker.post_assertion(&assertion, true).await;
    assert_eq!(refused.status, Status::Unauthorized);
    assert!(!attacker.is_signed_in().await);
}

#[tokio::test]
async fn a_password_reset_keeps_passkeys_and_mails_which_remain() {
    let app = passkey_app();
    let (_b, mut key, email) = account_with_passkey(&app).await;
    let b = app.browser().await;
    b.ask_for_reset_code(&email).await;
    let code = wait_for_reset_code(&app.outbox()).await;
    let done = b.reset_password(&email, &code, NEW_PASSWORD).await;
    assert_eq!(done.status, Status::SeeOther);
    let mail = wait_for_mail_saying(&app.outbox(), "passkeys still sign you in").await;
    assert!(mail.contains("- Laptop"), "{mail}");
    let after = app.browser().await;
    assert_eq!(after.passkey_sign_in(&mut key).await.status, Status::Ok);
}

#[tokio::test]
async fn the_command_line_lists_and_removes_an_accounts_passkeys() {
    let app = passkey_app();
    let (_b, mut key, email) = account_with_passkey(&app).await;
    let shown = app.cli(&["users", "show", &email]);
    assert!(shown.ok().contains("passkeys:         1"), "{}", shown.ok());
    assert!(shown.ok().contains("Laptop") && shown.ok().contains("device-bound"));
    let json = app.cli(&["users", "show", &email, "--json"]).json_lines();
    assert_eq!(json[0]["passkeys"][0]["name"], "Laptop");
    assert_eq!(json[0]["passkeys"][0]["synced"], false);

    let removed = app.cli(&["users", "remove-passkeys", &email]);
    assert!(
        removed.ok().contains("1 passkey removed"),
        "{}",
        removed.ok()
    );
    let b = app.browser().await;
    assert_eq!(
        b.passkey_sign_in(&mut key).await.status,
        Status::Unauthorized
    );
    // The password still signs in.
    assert_eq!(b.login(&email, PASSWORD).await.status, Status::SeeOther);
}

#[tokio::test]
async fn with_an_ip_address_public_url_the_passkey_parts_say_they_are_unavailable() {
    let app = TestApp::new().set("public_url", "http://127.0.0.1:8000");
    let b = app.browser().await;
    let login = b.get("/login").await;
    assert!(login
        .body
        .contains("Passkeys are unavailable on this server"));
    assert!(!login.body.contains("id=\"passkey-sign-in\""));
    let options = b.sign_in_options(false).await;
    assert_eq!(options.status, Status::NotFound);
    assert!(options.json["error"]
        .as_str()
        .unwrap_or("")
        .contains("unavailable"));
    let (signed_in, _) = app.signed_in_browser().await;
    let security = signed_in.get("/account/security").await;
    assert!(security
        .body
        .contains("Passkeys are unavailable on this server"));
}

#[tokio::test]
async fn the_pages_with_passkey_parts_allow_only_our_own_script() {
    let app = passkey_app();
    let b = app.browser().await;
    let login = b.get("/login").await;
    let csp = login.header("Content-Security-Policy").expect("a policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(login.body.contains("autocomplete=\"username webauthn\""));
    assert!(login.body.contains("id=\"passkey-sign-in\""));
    let src = login
        .body
        .split("<script src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the script tag");
    let script = b.get(src).await;
    assert_eq!(script.status, Status::Ok);
    assert!(script.body.contains("AbortController"));
    assert!(script
        .header("Content-Type")
        .unwrap_or("")
        .contains("javascript"));
    // Pages without passkey parts still allow no script at all.
    let forgot = b.get("/password/forgot").await;
    let csp = forgot.header("Content-Security-Policy").expect("a policy");
    assert!(csp.contains("script-src 'none'"));
}

#[tokio::test]
async fn a_webauthn_rp_id_must_be_public_urls_host_or_a_parent_of_it() {
    let base = TestApp::new().set("public_url", "https://login.example.com");
    assert!(
        base.clone()
            .set("webauthn_rp_id", "example.com")
            .starts()
            .await
    );
    assert!(
        !base
            .clone()
            .set("webauthn_rp_id", "other.com")
            .starts()
            .await
    );
    assert!(!base.clone().set("webauthn_rp_id", "com").starts().await);
    let ip = TestApp::new().set("public_url", "http://127.0.0.1:8000");
    assert!(!ip.set("webauthn_rp_id", "example.com").starts().await);
}

/// Chromium with a virtual authenticator (DevTools' `WebAuthn` domain) walks the whole
/// thing through the pages and `static/passkeys.js`: add a passkey → sign out → sign in
/// with it alone (the devices page says "passkey") → as the second step of a password
/// sign-in → removed, it no longer signs in. Screenshots of the security page with a
/// passkey, the sign-in page and the code page with their passkey buttons.
#[tokio::test]
async fn chromium_adds_a_passkey_and_signs_in_with_it_alone_and_as_the_second_step() {
    use crate::support::chromium::{
        add_virtual_authenticator, click, expect_path, fill, navigate_by, shoot, sign_in, submit,
        virtual_credentials, wait_for_text, Chromedriver,
    };
    async fn sign_out_here(c: &fantoccini::Client) {
        let button = c
            .find(fantoccini::Locator::Css("form[action=\"/logout\"] button"))
            .await
            .expect("the sign-out button");
        navigate_by(c, button).await;
    }
    let driver = Chromedriver::start();
    let app = TestApp::new();
    let (_setup, account) = app.two_step_account().await;
    let base = app.serve_on_localhost().await;
    let c = driver.browser(None).await;
    c.goto(&format!("{base}/login")).await.expect("goto");
    let authenticator = add_virtual_authenticator(&c).await;

    // Password and code, then add a passkey on the security page.
    sign_in(&c, &base, &account.email, PASSWORD).await;
    expect_path(&c, CODE_PAGE).await;
    fill(&c, "code", &account.next_code()).await;
    submit(&c).await;
    expect_path(&c, "/devices").await;
    c.goto(&format!("{base}/account/security"))
        .await
        .expect("goto");
    // The script shows the name field (hidden without it) and the button.
    wait_for_text(&c, "Name for the new passkey").await;
    c.find(fantoccini::Locator::Id("passkey-name"))
        .await
        .expect("the name field")
        .send_keys("Chromium key")
        .await
        .expect("type");
    click(&c, "#passkey-add").await;
    wait_for_text(&c, "Chromium key").await;
    assert_eq!(virtual_credentials(&c, &authenticator).await.len(), 1);
    let listed = c
        .find(fantoccini::Locator::Css("#passkeys li"))
        .await
        .expect("the passkey's entry")
        .text()
        .await
        .expect("its text");
    assert!(listed.contains("Chromium key"), "{listed}");
    shoot(&c, "security-passkeys").await;

    // The virtual authenticator answers the autofill's (conditional) request at once:
    // to press the button first, the pages are told autofill is unavailable.
    let no_autofill = crate::support::accessibility::devtools(
        &c,
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": "PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);" }),
    )
    .await;

    // Signed out, the button signs in with the passkey alone.
    sign_out_here(&c).await;
    expect_path(&c, "/login").await;
    wait_for_text(&c, "Sign in with a passkey").await;
    shoot(&c, "login-passkey").await;
    click(&c, "#passkey-sign-in").await;
    expect_path(&c, "/devices").await;
    let devices = wait_for_text(&c, "passkey").await;
    assert!(!devices.contains("password + passkey"), "{devices}");

    // The password, then the passkey instead of a code.
    sign_out_here(&c).await;
    expect_path(&c, "/login").await;
    sign_in(&c, &base, &account.email, PASSWORD).await;
    expect_path(&c, CODE_PAGE).await;
    wait_for_text(&c, "Use a passkey instead").await;
    shoot(&c, "second-factor-passkey").await;
    click(&c, "#passkey-second-factor").await;
    expect_path(&c, "/devices").await;
    wait_for_text(&c, "password + passkey").await;

    // With autofill back, the sign-in page signs in by itself through it.
    crate::support::accessibility::devtools(
        &c,
        "Page.removeScriptToEvaluateOnNewDocument",
        json!({ "identifier": no_autofill["identifier"] }),
    )
    .await;
    sign_out_here(&c).await;
    expect_path(&c, "/devices").await;
    wait_for_text(&c, "passkey").await;

    // Removed (a sign-in of the last 5 minutes: no password asked), it stops working
    // although the authenticator still holds it.
    c.goto(&format!("{base}/account/security"))
        .await
        .expect("goto");
    click(&c, "#passkeys details.security-action summary.btn-danger").await;
    click(&c, "form[action$=\"/remove\"] button").await;
    wait_for_text(&c, "The passkey was removed").await;
    sign_out_here(&c).await;
    expect_path(&c, "/login").await;
    click(&c, "#passkey-sign-in").await;
    wait_for_text(&c, "was not accepted").await;
    expect_path(&c, "/login").await;
}

/// An app signing someone in who used a passkey sees it in the id_token: `amr`
/// `["hwk", "user"]` (RFC 8176), against the server binary.
#[tokio::test]
async fn an_app_sees_amr_hwk_after_a_passkey_sign_in() {
    let instance = TestApp::on(Database::Sqlite).await;
    let server = instance.spawn_server_behind(PASSKEY_ORIGIN);
    let p = Provider {
        instance,
        server: std::sync::Arc::new(server),
    };
    let wiki = p.registered_app("Wiki", &[]);
    let (mut owner, _email) = p.signed_in_jar();
    let token = csrf_from(
        &p.server
            .send(&mut owner, "GET", "/account/security", None)
            .body,
    );
    let options = p
        .server
        .send_json(&mut owner, "/account/passkeys/options", &token, &json!({}));
    assert_eq!(options.status, 200, "{}", options.body);
    let mut key = SoftPasskey::new();
    let credential = key.register(&options.json());
    let body = json!({ "credential": credential, "name": "Key" });
    let added = p
        .server
        .send_json(&mut owner, "/account/passkeys", &token, &body);
    assert_eq!(added.status, 201, "{}", added.body);

    // A new browser follows the app's link, and signs in with the passkey alone.
    let mut b = Jar::default();
    let authorize = format!(
        "/oauth2/authorize?{}",
        auth_query(&wiki, "openid email", VERIFIER, "st")
    );
    let r = p.server.send(&mut b, "GET", &authorize, None);
    let login = r.location().expect("to the sign-in page").to_string();
    let page = p.server.send(&mut b, "GET", &login, None);
    let token = csrf_from(&page.body);
    let options = p
        .server
        .send_json(&mut b, "/login/passkey/options", &token, &json!({}));
    assert_eq!(options.status, 200, "{}", options.body);
    let assertion = key.assert(&options.json());
    let finish = login.replacen("/login", "/login/passkey", 1);
    let signed = p
        .server
        .send_json(&mut b, &finish, &token, &json!({ "credential": assertion }));
    assert_eq!(signed.status, 200, "{}", signed.body);
    let next = signed.json()["redirect"]
        .as_str()
        .expect("where to go")
        .to_string();
    assert!(next.starts_with("/oauth2/authorize?"), "{next}");
    let consent = p.server.send(&mut b, "GET", &next, None);
    let r = p.consent(&mut b, &consent.body, "allow");
    let to_app = r.location().expect("back to the app").to_string();
    let code = param(&to_app, "code").expect("a code");
    let (status, tokens) = exchange(&p, &wiki, &code, VERIFIER);
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_part(tokens["id_token"].as_str().expect("an id_token"), 1);
    assert_eq!(claims["amr"], json!(["hwk", "user"]), "{claims}");
}

/// "Download my data" lists the passkeys as the security page does (name, added,
/// synced), and nothing of the credential: not its id, not its public key.
#[tokio::test]
async fn the_export_lists_the_passkeys_without_their_credentials() {
    let app = passkey_app();
    let (b, key, _) = account_with_passkey(&app).await;
    let res = b.get("/account/export").await;
    assert_eq!(res.status, Status::Ok, "{}", res.body);
    let listed = res.json["passkeys"].as_array().expect("a passkeys section");
    assert_eq!(listed.len(), 1, "{}", res.body);
    assert_eq!(listed[0]["name"], "Laptop");
    assert!(listed[0]["added_at"].is_string());
    assert_eq!(listed[0]["refused_as_copied"], false);
    assert!(
        !res.body.contains(&key.id()),
        "the credential id is not exported"
    );
    let row = passkey_id(&app, &key).await;
    assert!(!res.body.contains(&row), "nor the passkey's row id");
}

/// A passkey added without a name is named after its authenticator when that is a
/// known one (by the AAGUID in its registration), else "Passkey"; a typed name wins.
#[tokio::test]
async fn a_passkey_without_a_name_is_named_after_its_authenticator() {
    let app = passkey_app();
    let (b, _) = app.signed_in_browser().await;
    let icloud = *uuid::Uuid::parse_str("fbfc3007-154e-4ecc-8c0b-6e020557d7bd")
        .expect("a uuid")
        .as_bytes();
    let mut known = SoftPasskey::new();
    known.aaguid = icloud;
    let added = b.add_passkey(&mut known, "").await;
    assert_eq!(added.status, Status::Created, "{}", added.body);
    assert_eq!(added.json["name"], "iCloud Keychain");

    let mut unknown = SoftPasskey::new();
    unknown.aaguid = [7; 16];
    let added = b.add_passkey(&mut unknown, "  ").await;
    assert_eq!(added.json["name"], "Passkey", "{}", added.body);

    let mut typed = SoftPasskey::new();
    typed.aaguid = icloud;
    let added = b.add_passkey(&mut typed, "Work phone").await;
    assert_eq!(added.json["name"], "Work phone", "{}", added.body);
    let page = b.get("/account/security").await.body;
    assert!(page.contains("iCloud Keychain") && page.contains("Work phone"));
}
