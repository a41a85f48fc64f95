//! Real-browser tests: Debian's Chromium, headless, driven through chromedriver with
//! fantoccini, against the app served on a loopback port. Each browser profile has its
//! own `--user-data-dir`. Screenshots of every page at desktop and phone width go to
//! `target/screenshots/`.

use crate::support::chromium::{
    self, chromium_cookie, expect_path, fill, navigate_by, shoot, sign_in, sign_out_device, submit,
    text, Chromedriver,
};
use crate::support::*;
use fantoccini::Locator;

#[tokio::test]
async fn two_browsers_see_each_other_sign_each_other_out_and_a_reset_signs_out_everyone() {
    let driver = Chromedriver::start();
    let app = TestApp::new();
    let base = app.serve().await;
    let email = email();

    // Register in the first browser.
    let laptop = driver.browser(None).await;
    laptop.goto(&format!("{base}/register")).await.unwrap();
    shoot(&laptop, "register").await;
    fill(&laptop, "email", &email).await;
    fill(&laptop, "password", PASSWORD).await;
    submit(&laptop).await;
    expect_path(&laptop, "/devices").await;

    // Sign in from a second profile (a phone) and a third (Firefox).
    let phone = driver.browser(Some(SAFARI_IOS)).await;
    phone.goto(&format!("{base}/login")).await.unwrap();
    shoot(&phone, "login").await;
    sign_in(&phone, &base, &email, PASSWORD).await;
    expect_path(&phone, "/devices").await;
    let firefox = driver.browser(Some(FIREFOX_LINUX)).await;
    sign_in(&firefox, &base, &email, PASSWORD).await;

    // All three on the devices page, "This device" on the right one.
    laptop.goto(&format!("{base}/devices")).await.unwrap();
    let page = text(&laptop).await;
    assert!(page.contains("Safari on iOS"), "{page}");
    assert!(page.contains("Firefox on Linux"));
    assert!(page.contains("Chrome on Linux"));
    let current = laptop
        .find(Locator::Css("li.device-current"))
        .await
        .expect("the current device's entry")
        .text()
        .await
        .unwrap();
    assert!(current.contains("Chrome on Linux"), "{current}");
    shoot(&laptop, "devices-three").await;
    let phone_page = text(&phone).await;
    assert!(phone_page.contains("This device"));

    // Sign the phone out from the laptop; the phone's next click lands on sign-in.
    let target = laptop
        .find(Locator::Css(
            "button[aria-label=\"Sign out Safari on iOS\"]",
        ))
        .await
        .expect("the phone's sign-out button");
    navigate_by(&laptop, target).await;
    expect_path(&laptop, "/devices").await;
    assert!(!text(&laptop).await.contains("Safari on iOS"));
    let target = phone
        .find(Locator::Css("a[href=\"/account/password\"]"))
        .await
        .expect("a link");
    navigate_by(&phone, target).await;
    expect_path(&phone, "/login").await;

    // Change-password page, then forgot → code from the outbox → reset.
    laptop
        .goto(&format!("{base}/account/password"))
        .await
        .unwrap();
    shoot(&laptop, "password-change").await;
    let helper = driver.browser(None).await;
    helper
        .goto(&format!("{base}/password/forgot"))
        .await
        .unwrap();
    shoot(&helper, "forgot").await;
    fill(&helper, "email", &email).await;
    submit(&helper).await;
    assert!(text(&helper).await.contains("If an account exists"));
    shoot(&helper, "forgot-sent").await;
    let mails = wait_for_reset_mails(&app.outbox(), 1).await;
    let code = mails
        .iter()
        .rev()
        .find(|m| m.contains("reset code"))
        .map(|m| code_in(m))
        .expect("a reset mail in the outbox");
    let target = helper
        .find(Locator::Css("a.btn-primary"))
        .await
        .expect("Enter the code");
    navigate_by(&helper, target).await;
    expect_path(&helper, "/password/reset").await;
    shoot(&helper, "reset").await;
    fill(&helper, "code", "000000").await;
    fill(&helper, "new_password", "the new and better passphrase").await;
    submit(&helper).await;
    if !text(&helper)
        .await
        .contains("Sign in with your new password")
    {
        // 000000 was (one in a million) not the code: this is the wrong-code page.
        shoot(&helper, "reset-wrong-code").await;
        fill(&helper, "code", &code).await;
        fill(&helper, "new_password", "the new and better passphrase").await;
        submit(&helper).await;
    }
    expect_path(&helper, "/login").await;
    assert!(text(&helper)
        .await
        .contains("Sign in with your new password"));
    shoot(&helper, "login-after-reset").await;

    // Every window is signed out.
    for b in [&laptop, &firefox] {
        b.goto(&format!("{base}/devices")).await.unwrap();
        expect_path(b, "/login").await;
    }
    sign_in(&laptop, &base, &email, "the new and better passphrase").await;
    expect_path(&laptop, "/devices").await;
    shoot(&laptop, "devices-one").await;

    laptop.goto(&format!("{base}/no-such-page")).await.unwrap();
    shoot(&laptop, "error-404").await;

    for b in [laptop, phone, firefox, helper] {
        let _ = b.close().await;
    }
}

#[tokio::test]
async fn too_many_failures_show_the_wait_in_words() {
    let driver = Chromedriver::start();
    let app = TestApp::new();
    let base = app.serve().await;
    let email = email();
    let b = driver.browser(None).await;
    b.goto(&format!("{base}/register")).await.unwrap();
    fill(&b, "email", &email).await;
    // Too short is stopped by the browser itself (minlength); a common one by the server.
    fill(&b, "password", "password1").await;
    submit(&b).await;
    assert!(text(&b).await.contains("most common passwords"));
    shoot(&b, "register-error").await;

    let other = driver.browser(None).await;
    for _ in 0..5 {
        sign_in(&other, &base, "someone@example.com", "wrong password").await;
    }
    assert!(text(&other).await.contains("do not match"));
    sign_in(&other, &base, "someone@example.com", "wrong password").await;
    let page = text(&other).await;
    assert!(page.contains("Too many sign-in attempts"), "{page}");
    assert!(page.contains("15 minutes"));
    shoot(&other, "login-throttled").await;
    let _ = b.close().await;
    let _ = other.close().await;
}

#[tokio::test]
async fn in_secure_mode_signing_out_removes_the_cookie_from_the_browser() {
    let driver = Chromedriver::start();
    let app = TestApp::new().set("cookie_secure", true);
    // Chromium treats http://localhost as a secure context: `__Host-` cookies work.
    let base = app.serve().await.replace("127.0.0.1", "localhost");
    let email = email();
    let b = driver.browser(None).await;
    chromium::register(&b, &base, &email).await;
    expect_path(&b, "/devices").await;
    assert!(
        chromium_cookie(&b, "__Host-latchkey").await.is_some(),
        "signed in with __Host-latchkey"
    );

    // The header's "Sign out".
    let button = b
        .find(Locator::Css("form[action=\"/logout\"] button"))
        .await
        .expect("the sign-out button");
    navigate_by(&b, button).await;
    expect_path(&b, "/login").await;
    assert!(text(&b).await.contains("You have been signed out"));
    assert_eq!(
        chromium_cookie(&b, "__Host-latchkey").await,
        None,
        "the browser dropped the cookie"
    );
    // The notice was shown once: its cookie was removed too.
    b.refresh().await.expect("reload");
    assert!(!text(&b).await.contains("You have been signed out"));

    // "Keep me signed in" (a 30-day cookie), then sign this device out on /devices.
    b.goto(&format!("{base}/login")).await.unwrap();
    fill(&b, "email", &email).await;
    fill(&b, "password", PASSWORD).await;
    b.find(Locator::Css("[name=\"remember\"]"))
        .await
        .expect("the checkbox")
        .click()
        .await
        .expect("tick");
    submit(&b).await;
    expect_path(&b, "/devices").await;
    let cookie = chromium_cookie(&b, "__Host-latchkey")
        .await
        .expect("signed in again");
    sign_out_device(&b, &sid_of(&cookie)).await;
    expect_path(&b, "/login").await;
    assert_eq!(
        chromium_cookie(&b, "__Host-latchkey").await,
        None,
        "the browser dropped the cookie"
    );
    b.goto(&format!("{base}/devices")).await.unwrap();
    expect_path(&b, "/login").await;
    let _ = b.close().await;
}

#[tokio::test]
async fn changing_the_address_undoing_it_and_deleting_the_account() {
    let driver = Chromedriver::start();
    let app = TestApp::new();
    let base = app.serve().await;
    let (old, new) = (email(), email());
    let c = driver.browser(None).await;
    chromium::register(&c, &base, &old).await;
    expect_path(&c, "/devices").await;

    c.goto(&format!("{base}/account/security")).await.unwrap();
    let link = c.find(Locator::Id("change-email")).await.expect("the link");
    navigate_by(&c, link).await;
    expect_path(&c, "/account/email").await;
    shoot(&c, "email-change").await;
    fill(&c, "new_email", &new).await;
    fill(&c, "current_password", PASSWORD).await;
    submit(&c).await;
    expect_path(&c, "/account/email").await;
    assert!(text(&c).await.contains("We sent a 6-digit code"));
    shoot(&c, "email-change-code").await;
    let mail = wait_for_mail_saying(&app.outbox(), "Confirm your new").await;
    fill(&c, "code", &code_in(&mail)).await;
    submit(&c).await;
    expect_path(&c, "/account/email").await;
    assert!(text(&c)
        .await
        .contains(&format!("Your address is now {new}")));
    shoot(&c, "email-changed").await;

    // The old address's undo link, opened in another browser.
    let notice = wait_for_mail_saying(&app.outbox(), "was changed from").await;
    let start = notice.find("/account/email/undo/").expect("an undo link");
    let undo: String = notice[start..]
        .chars()
        .take_while(|ch| !ch.is_whitespace() && *ch != '"' && *ch != '<')
        .collect();
    let mail_reader = driver.browser(None).await;
    mail_reader.goto(&format!("{base}{undo}")).await.unwrap();
    assert!(text(&mail_reader).await.contains("Your address is back"));
    shoot(&mail_reader, "email-undone").await;
    c.goto(&format!("{base}/devices")).await.unwrap();
    expect_path(&c, "/login").await;

    // Delete: a slip in the words first, then for real.
    sign_in(&c, &base, &old, PASSWORD).await;
    expect_path(&c, "/devices").await;
    c.goto(&format!("{base}/account/delete")).await.unwrap();
    shoot(&c, "account-delete").await;
    fill(&c, "current_password", PASSWORD).await;
    fill(&c, "confirm", "delete my acount").await;
    submit(&c).await;
    assert!(text(&c).await.contains("type “delete my account”"));
    shoot(&c, "account-delete-error").await;
    fill(&c, "current_password", PASSWORD).await;
    fill(&c, "confirm", "delete my account").await;
    submit(&c).await;
    expect_path(&c, "/account/deleted").await;
    shoot(&c, "account-deleted").await;
    assert!(app.user(&old).await.is_none());
    for b in [c, mail_reader] {
        let _ = b.close().await;
    }
}

#[tokio::test]
async fn a_new_account_sees_the_banner_and_verifies_its_address_with_the_mailed_code() {
    let driver = Chromedriver::start();
    let app = TestApp::new();
    let base = app.serve().await;
    let email = email();
    let c = driver.browser(None).await;
    chromium::register(&c, &base, &email).await;
    expect_path(&c, "/devices").await;
    assert!(text(&c)
        .await
        .contains("Your email address is not verified yet"));
    shoot(&c, "verify-banner").await;

    // "Enter the code" in the banner, then a wrong code, then the mailed one.
    let enter = c
        .find(Locator::Css("#verify-banner a[href=\"/account/verify\"]"))
        .await
        .expect("the banner's link");
    navigate_by(&c, enter).await;
    expect_path(&c, "/account/verify").await;
    shoot(&c, "verify-code").await;
    let mail = wait_for_mail_saying(&app.outbox(), "verify the address with one click").await;
    let code = code_in(&mail);
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().expect("digits") + 1) % 1_000_000
    );
    fill(&c, "code", &wrong).await;
    submit(&c).await;
    assert!(text(&c).await.contains("That code is not right"));
    shoot(&c, "verify-code-wrong").await;
    fill(&c, "code", &code).await;
    submit(&c).await;
    expect_path(&c, "/devices").await;
    let page = text(&c).await;
    assert!(page.contains("Your email address is verified"), "{page}");
    assert!(!page.contains("not verified yet"), "the banner is gone");
    shoot(&c, "verify-done").await;
}
