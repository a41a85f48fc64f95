//! Accessibility: every page checked in real Chromium by axe-core (WCAG 2.0/2.1, A and
//! AA) and the text-field contrast check (WCAG 1.4.11), at desktop (1280 px) and phone
//! (390 px) width, in the light and the dark colour scheme, through
//! `support::accessibility`. The pages the other Chromium tests screenshot are checked
//! by the screenshot helper itself (`shoot`): register (and its error), sign-in (blank,
//! after a reset, throttled), devices (one, three, after a two-step sign-in), change
//! password, forgot (blank and sent), reset (and a wrong code), the 404 page, security
//! (off, and on with the turning-off form open), authenticator set-up, the recovery codes
//! when turned on, the code page (blank, a wrong code, for an app), consent, and the
//! sign-out confirmation for an app. The walk here checks the rest:
//!
//! - signed out: the sign-in page with a notice, the forgot page with an error, the 403
//!   page (a forged form token), the 400 page (an authorization link with an unknown
//!   app), the code page after its last wrong code, the signed-out page;
//! - signed in: change password with an error, a new address refused (wrong
//!   password), a deletion refused (wrong words), an undo link that is no good,
//!   security with a notice, with two
//!   recovery codes left, with the new recovery codes form open and with the turning-off
//!   form showing an error, the new recovery codes page, the sign-out confirmation
//!   without an app;
//! - verifying an address: the code page after a resend, the link's page (verified,
//!   and a link that does not work), the page an unverified account meets at forward
//!   authentication with `require_verified_email`.
//!
//! A check that can find nothing proves nothing: the first test breaks a real page on
//! purpose and reads the report.

use crate::support::accessibility::{fail_on, violations_here};
use crate::support::chromium::{
    assert_accessible, expect_path, fill, navigate_by, sign_in, submit, text, Chromedriver,
};
use crate::support::*;
use fantoccini::{Client, Locator};

#[tokio::test]
async fn the_check_fails_naming_each_rule_its_impact_and_the_failing_nodes() {
    let driver = Chromedriver::start();
    let app = TestApp::new();
    let base = app.serve().await;
    let c = driver.browser(None).await;
    c.goto(&format!("{base}/login")).await.expect("goto");
    // As it is, the sign-in page passes (both widths, both schemes).
    assert_accessible(&c, "login").await;
    // axe ran although the page's policy (`script-src 'none'`) stops every script of
    // the page's own: WebDriver's scripts are not the page's.
    let inline_ran = c
        .execute(
            "const s = document.createElement('script');
             s.textContent = 'window.inlineRan = true;';
             document.body.append(s);
             return window.inlineRan === true;",
            vec![],
        )
        .await
        .expect("a script element added");
    assert_eq!(inline_ran, serde_json::json!(false), "the CSP is in force");
    // A field without a label, an image without a text, grey on white, and a field
    // whose border all but vanishes.
    c.execute(
        "const field = document.createElement('input');
         field.id = 'unlabelled';
         document.querySelector('form.form').append(field);
         const img = document.createElement('img');
         img.id = 'no-alt';
         img.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';
         document.querySelector('main').append(img);
         document.querySelector('.card-aside').style.color = '#b0b0b0';
         document.getElementById('password').style.borderColor = '#e4e4e4';",
        vec![],
    )
    .await
    .expect("the page broken");
    let report = violations_here(&c, "broken-login", "desktop width")
        .await
        .expect("violations found");
    for expected in [
        "broken-login at desktop width (http",
        "- label (critical): Form elements must have labels",
        "    #unlabelled  <input id=\"unlabelled\">",
        "- image-alt (critical): Images must have alternative text",
        "    #no-alt",
        "- color-contrast (serious): Elements must meet minimum color contrast ratio thresholds",
        "    .card-aside",
        "insufficient color contrast",
        "- non-text-contrast (serious): Text fields must stand out",
        "    #password  <input id=\"password\"",
        "Its border (#e4e4e4) and its fill (#ffffff) stand out from #ffffff around it at 1.27:1",
    ] {
        assert!(
            report.contains(expected),
            "{expected:?} missing from:\n{report}"
        );
    }
    let failed = std::panic::catch_unwind(|| fail_on(std::slice::from_ref(&report)));
    let message = failed.expect_err("a report fails the test");
    let message = message.downcast_ref::<String>().expect("a panic message");
    assert!(message.contains("WCAG 2.1 A/AA violations") && message.contains(&report));
    let _ = c.close().await;
}

#[tokio::test]
async fn every_page_not_screenshotted_elsewhere_passes_axe_core_signed_out_and_signed_in() {
    let driver = Chromedriver::start();
    // Wrong codes and passwords are part of the walk: the quotas stay out of its way.
    let app = TestApp::new()
        .set("login_limit_account", 100)
        .set("login_limit_ip", 100);
    let base = app.serve().await;
    let (_, account) = app.two_step_account().await;
    let c = driver.browser(None).await;

    signed_out_pages(&c, &base).await;
    code_page_used_up(&c, &base, &account.email).await;
    // Signed in with the password and a code.
    sign_in(&c, &base, &account.email, PASSWORD).await;
    expect_path(&c, CODE_PAGE).await;
    fill(&c, "code", &account.next_code()).await;
    submit(&c).await;
    expect_path(&c, "/devices").await;
    signed_in_pages(&c, &base).await;
    account_pages(&c, &base).await;
    running_out_of_codes(&c, &base, &app, &account).await;
    security_forms(&c, &base).await;
    signing_out(&c, &base).await;
    let _ = c.close().await;
}

/// Signed out: the sign-in page's notice, the forgot page's error, the 403 and 400
/// error pages.
async fn signed_out_pages(c: &Client, base: &str) {
    // The code page without a pending sign-in sends the browser to sign in first.
    c.goto(&format!("{base}{CODE_PAGE}")).await.expect("goto");
    expect_path(c, "/login").await;
    assert!(c.find(Locator::Css(".banner-notice")).await.is_ok());
    assert_accessible(c, "login-notice").await;

    c.goto(&format!("{base}/password/forgot"))
        .await
        .expect("goto");
    // `type=email` would stop the browser from sending this: the server's answer is
    // what is checked.
    c.execute("document.getElementById('email').type = 'text';", vec![])
        .await
        .expect("a plain text field");
    fill(c, "email", "not an address").await;
    submit(c).await;
    assert!(c.find(Locator::Css(".banner-error")).await.is_ok());
    assert_accessible(c, "forgot-error").await;

    c.goto(&format!("{base}/login")).await.expect("goto");
    c.execute(
        "document.querySelector('input[name=csrf_token]').value = 'forged';",
        vec![],
    )
    .await
    .expect("a forged token");
    fill(c, "email", &email()).await;
    fill(c, "password", PASSWORD).await;
    submit(c).await;
    assert!(
        text(c).await.contains("This form has expired"),
        "{}",
        text(c).await
    );
    assert_accessible(c, "error-403").await;

    c.goto(&format!(
        "{base}/oauth2/authorize?response_type=code&client_id=no-such-app&scope=openid"
    ))
    .await
    .expect("goto");
    assert!(
        text(c).await.contains("This sign-in link does not work"),
        "{}",
        text(c).await
    );
    assert_accessible(c, "error-400").await;
}

/// The code page after the last wrong code allowed: no form, a way back.
async fn code_page_used_up(c: &Client, base: &str, email: &str) {
    sign_in(c, base, email, PASSWORD).await;
    expect_path(c, CODE_PAGE).await;
    for _ in 0..5 {
        fill(c, "code", "000000").await;
        submit(c).await;
    }
    assert!(
        text(c).await.contains("Nothing was signed in"),
        "{}",
        text(c).await
    );
    assert!(c.find(Locator::Css("form.form")).await.is_err());
    assert_accessible(c, "second-factor-ended").await;
}

/// Signed in: change password with an error, security with a notice, the sign-out
/// confirmation without an app.
async fn signed_in_pages(c: &Client, base: &str) {
    c.goto(&format!("{base}/account/password"))
        .await
        .expect("goto");
    fill(c, "current_password", "not the password").await;
    fill(c, "new_password", NEW_PASSWORD).await;
    submit(c).await;
    assert!(c.find(Locator::Css(".banner-error")).await.is_ok());
    assert_accessible(c, "password-change-error").await;

    // Set-up is done already: the security page says so.
    c.goto(&format!("{base}/account/totp")).await.expect("goto");
    expect_path(c, "/account/security").await;
    assert!(text(c).await.contains("already on"));
    assert_accessible(c, "security-notice").await;

    c.goto(&format!("{base}/oauth2/logout"))
        .await
        .expect("goto");
    assert!(text(c).await.contains("Sign out of Latchkey?"));
    assert_accessible(c, "logout-confirm-no-app").await;
}

/// The account's own pages with two-step sign-in on (the code field shown), each
/// refusing what was typed: a new address with a wrong password, a deletion with the
/// wrong words; and, signed out, an undo link that is no good.
async fn account_pages(c: &Client, base: &str) {
    c.goto(&format!("{base}/account/email"))
        .await
        .expect("goto");
    fill(c, "new_email", &email()).await;
    fill(c, "current_password", "not the password").await;
    fill(c, "code", "123456").await;
    submit(c).await;
    assert!(c.find(Locator::Css(".banner-error")).await.is_ok());
    assert_accessible(c, "email-change-error").await;

    c.goto(&format!("{base}/account/delete"))
        .await
        .expect("goto");
    fill(c, "current_password", PASSWORD).await;
    fill(c, "code", "123456").await;
    fill(c, "confirm", "keep it").await;
    submit(c).await;
    assert!(text(c).await.contains("delete my account"));
    assert!(c.find(Locator::Css(".banner-error")).await.is_ok());
    assert_accessible(c, "account-delete-error").await;

    c.goto(&format!("{base}/account/email/undo/not-a-link"))
        .await
        .expect("goto");
    assert!(text(c).await.contains("not valid"));
    assert_accessible(c, "email-undo-invalid").await;
}

/// The security page when two recovery codes are left (eight used to sign in, by
/// another browser).
async fn running_out_of_codes(c: &Client, base: &str, app: &TestApp, account: &TwoStepAccount) {
    let elsewhere = app.browser().await;
    for code in &account.recovery[..8] {
        let password = elsewhere.password_step(&account.email, "").await;
        assert_eq!(password.location.as_deref(), Some(CODE_PAGE));
        let signed_in = elsewhere.code_step(code).await;
        assert_eq!(signed_in.location.as_deref(), Some("/devices"));
        elsewhere.sign_out().await;
    }
    c.goto(&format!("{base}/account/security"))
        .await
        .expect("goto");
    assert!(c.find(Locator::Css(".status-warn")).await.is_ok());
    assert!(text(c).await.contains("2 left"));
    assert_accessible(c, "security-codes-running-out").await;
}

/// The security page's forms open: new recovery codes (then the page that shows them),
/// and turning off with a wrong code.
async fn security_forms(c: &Client, base: &str) {
    c.goto(&format!("{base}/account/security"))
        .await
        .expect("goto");
    c.find(Locator::Css(
        "details.security-action summary.btn-secondary",
    ))
    .await
    .expect("Make new recovery codes")
    .click()
    .await
    .expect("open");
    assert_accessible(c, "security-new-codes-open").await;
    type_into(c, "codes_password", PASSWORD).await;
    let make = c
        .find(Locator::Css(
            "form[action=\"/account/recovery-codes\"] button",
        ))
        .await
        .expect("Make new codes");
    navigate_by(c, make).await;
    assert!(text(c).await.contains("New recovery codes"));
    assert_accessible(c, "recovery-codes-new").await;

    c.goto(&format!("{base}/account/security"))
        .await
        .expect("goto");
    c.find(Locator::Css("details.security-action summary.btn-danger"))
        .await
        .expect("Turn off")
        .click()
        .await
        .expect("open");
    type_into(c, "disable_password", PASSWORD).await;
    type_into(c, "disable_code", "000000").await;
    let turn_off = c
        .find(Locator::Css(
            "form[action=\"/account/totp/disable\"] button",
        ))
        .await
        .expect("Turn off");
    navigate_by(c, turn_off).await;
    assert!(c.find(Locator::Css(".banner-error")).await.is_ok());
    assert!(c
        .find(Locator::Css("details[open] #disable_code"))
        .await
        .is_ok());
    assert_accessible(c, "security-turn-off-error").await;
}

/// The sign-out confirmation's answer: the signed-out page.
async fn signing_out(c: &Client, base: &str) {
    c.goto(&format!("{base}/oauth2/logout"))
        .await
        .expect("goto");
    let confirm = c
        .find(Locator::Css("form.form button[type=submit]"))
        .await
        .expect("Sign out");
    navigate_by(c, confirm).await;
    assert!(text(c).await.contains("You are signed out"));
    assert_accessible(c, "signed-out").await;
    c.goto(&format!("{base}/devices")).await.expect("goto");
    expect_path(c, "/login").await;
}

/// Types into the field with the id `id` (the security page has two fields named
/// `current_password`).
async fn type_into(c: &Client, id: &str, value: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|_| panic!("the field #{id}"))
        .send_keys(value)
        .await
        .expect("type");
}

#[tokio::test]
async fn the_verification_pages_pass() {
    let driver = Chromedriver::start();
    let app = TestApp::new().set("require_verified_email", true);
    let base = app.serve().await;
    let c = driver.browser(None).await;
    let email = email();
    crate::support::chromium::register(&c, &base, &email).await;
    expect_path(&c, "/devices").await;

    c.goto(&format!("{base}/auth/forward")).await.expect("goto");
    assert!(text(&c).await.contains("Verify your email address first"));
    assert_accessible(&c, "verify-first").await;

    c.goto(&format!("{base}/account/verify"))
        .await
        .expect("goto");
    let resend = c
        .find(Locator::Css("#verify-resend button"))
        .await
        .expect("the resend button");
    navigate_by(&c, resend).await;
    expect_path(&c, "/account/verify").await;
    assert!(text(&c)
        .await
        .contains("a new code and link are on their way"));
    assert_accessible(&c, "verify-resent").await;

    let forged = format!(
        "{base}/account/verify/{}.{}",
        uuid::Uuid::now_v7(),
        "A".repeat(43)
    );
    c.goto(&forged).await.expect("goto");
    assert!(text(&c).await.contains("This link does not work"));
    assert_accessible(&c, "verify-link-failed").await;

    // The resent mail's link (it replaced the first mail's).
    wait_for_mails(&app.outbox(), 2).await;
    let mails = mails_saying(&app.outbox(), "verify the address with one click");
    let mail = mails.last().expect("the resent mail");
    let start = mail.find("/account/verify/").expect("a link");
    let link: String = mail[start..]
        .chars()
        .take_while(|ch| !ch.is_whitespace() && *ch != '"' && *ch != '<')
        .collect();
    c.goto(&format!("{base}{link}")).await.expect("goto");
    assert!(text(&c).await.contains("is verified"));
    assert_accessible(&c, "verify-link").await;
}
