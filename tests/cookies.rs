//! The cookies Latchkey sets and removes, and the sessions behind them: in secure mode
//! every `Set-Cookie` carries `Secure` (a `__Host-` cookie's removal is ignored by
//! browsers without it), and a session exists only when an answer carried its cookie.

use crate::support::*;
use rocket::http::Status;

fn is_removal(cookie: &str) -> bool {
    cookie.contains("Max-Age=0")
}

#[tokio::test]
async fn in_secure_mode_every_cookie_set_or_removed_is_secure() {
    let app = TestApp::new().set("cookie_secure", true);
    let email = email();
    let b = app.browser().await;
    let mut answers = vec![b.get("/register").await];
    let token = answers[0].csrf();
    answers.push(
        b.post_form(
            "/register",
            &token,
            &[("email", &email), ("password", PASSWORD)],
        )
        .await,
    );
    // Sign out from the header, then "sign out" this device on the devices page.
    answers.push(b.sign_out().await);
    assert!(
        b.cookie("__Host-latchkey").is_none(),
        "the removal reached the jar"
    );
    answers.push(b.get("/login").await);
    answers.push(b.login(&email, PASSWORD).await);
    let sid = sid_of(&b.cookie("__Host-latchkey").expect("signed in again"));
    let token = b.get("/devices").await.csrf();
    answers.push(
        b.post_form(&format!("/devices/{sid}/revoke"), &token, &[])
            .await,
    );
    assert!(b.cookie("__Host-latchkey").is_none());
    answers.push(b.get("/login").await);
    // Change the password (a notice), then reset it (the cookie cleared, a notice).
    answers.push(b.login(&email, PASSWORD).await);
    answers.push(b.change_password(PASSWORD, NEW_PASSWORD).await);
    answers.push(b.get("/devices").await);
    answers.push(b.ask_for_reset_code(&email).await);
    let code = wait_for_reset_code(&app.outbox()).await;
    answers.push(b.reset_password(&email, &code, PASSWORD).await);
    answers.push(b.get("/login").await);

    let cookies: Vec<String> = answers.iter().flat_map(Page::set_cookies).collect();
    for c in &cookies {
        assert!(has_cookie_attribute(c, "Secure"), "not Secure: {c}");
        if c.starts_with("__Host-") {
            assert!(c.contains("Path=/"), "{c}");
            assert!(!c.contains("Domain"), "{c}");
        }
    }
    let removed_sessions = cookies
        .iter()
        .filter(|c| c.starts_with("__Host-latchkey=") && is_removal(c))
        .count();
    assert_eq!(
        removed_sessions, 3,
        "logout, revoke and reset: {cookies:#?}"
    );
    let notices_removed = cookies
        .iter()
        .filter(|c| c.contains("flash") && is_removal(c))
        .count();
    assert!(notices_removed >= 3, "{cookies:#?}");
    assert!(cookies.iter().any(|c| c.contains("csrf")), "{cookies:#?}");
    let device = cookies
        .iter()
        .find(|c| c.starts_with("__Host-latchkey_device="))
        .expect("the device cookie, set at sign-in");
    assert!(has_cookie_attribute(device, "HttpOnly"), "{device}");
    assert!(device.contains("SameSite=Lax"), "{device}");
}

/// `next` values a redirect's `Location` cannot carry as they are.
const ODD_NEXTS: &[&str] = &[
    "/devices x",
    "/a\"b",
    "/a|b",
    "/<script>",
    "/ü",
    "/devices?tab=ü",
    "/a'b`c",
    "/a{b}^[c]",
    "/devices#a b",
    "/%zz",
    "/devices?q=%",
    "/%C3%28",
];

fn is_safe_local(location: &str) -> bool {
    location.starts_with('/')
        && !location.starts_with("//")
        && !location.starts_with("/\\")
        && location
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'"' && b != b'<')
}

#[tokio::test]
async fn an_odd_next_never_fails_a_sign_in_or_leaves_a_session_behind() {
    let app = TestApp::new();
    let (first, email) = app.signed_in_browser().await;
    let mut cookies = 1;
    let mut queries: Vec<String> = ODD_NEXTS
        .iter()
        .map(|n| format!("next={}", urlencode(n)))
        .collect();
    // Raw queries whose own percent-encoding is odd.
    queries.extend(
        [
            "next=/devices%ZZ",
            "next=%2Fa%7Cb",
            "next=/a%00b",
            "next=%C3%28",
        ]
        .map(String::from),
    );

    for (i, query) in queries.iter().enumerate() {
        // Each from its own address: a new device, so a new-device mail each time.
        let b = app
            .browser()
            .await
            .with_ip(&format!("198.51.100.{}", i + 1));
        let path = format!("/login?{query}");
        let token = b.get(&path).await.csrf();
        let res = b
            .post_form(&path, &token, &[("email", &email), ("password", PASSWORD)])
            .await;
        assert_eq!(res.status, Status::SeeOther, "{query}: {}", res.body);
        let location = res.location.as_deref().unwrap_or("");
        assert!(is_safe_local(location), "{query} → {location:?}");
        if b.session_cookie().is_some() {
            cookies += 1;
        }
        assert!(b.is_signed_in().await, "{query}");
    }

    let user = app.user(&email).await.expect("the account");
    let sessions = first
        .state::<Store>()
        .list_sessions(&user.id, now_ms())
        .await
        .expect("sessions");
    assert_eq!(sessions.len(), cookies, "one session per cookie given");
    assert_eq!(cookies, queries.len() + 1);
    // A new-device mail only for a sign-in that answered with its cookie (the
    // registration's own device is known from the start).
    wait_for_mail_saying(&app.outbox(), "New sign-in").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mails = mails_saying(&app.outbox(), "New sign-in").len();
    assert!(
        mails >= 1 && mails < cookies,
        "{mails} mails, {cookies} cookies"
    );
}

/// A browser signed in, by password, to a new account.
async fn signed_in_by_password(app: &TestApp) -> Browser {
    let email = app.account().await;
    let b = app.browser().await;
    b.login(&email, PASSWORD).await;
    assert!(b.is_signed_in().await);
    b
}

// The harness itself: `set_session_cookie` and `clear_cookies` change what the browser
// sends next (Rocket's `Client::cookies()` is a copy, so editing it would not).
#[tokio::test]
async fn set_session_cookie_changes_the_cookie_the_browser_sends() {
    let app = TestApp::new();
    let b = signed_in_by_password(&app).await;
    let cookie = b.session_cookie().expect("a session cookie");

    let other = app.browser().await;
    assert!(!other.is_signed_in().await);
    other.set_session_cookie(&cookie).await;
    assert!(other.is_signed_in().await, "the copied cookie is sent");

    b.set_session_cookie("garbage").await;
    assert_eq!(b.session_cookie().as_deref(), Some("garbage"));
    assert!(
        !b.is_signed_in().await,
        "the garbage value replaced the real one"
    );
}

#[tokio::test]
async fn clear_cookies_leaves_the_browser_sending_none() {
    let app = TestApp::new();
    let b = signed_in_by_password(&app).await;
    let cookie = b.session_cookie().expect("a session cookie");

    b.clear_cookies().await;
    assert_eq!(b.session_cookie(), None);
    assert!(!b.is_signed_in().await, "no cookie is sent after clearing");

    // Clearing changed the browser only: the session itself is still there.
    let other = app.browser().await;
    other.set_session_cookie(&cookie).await;
    assert!(other.is_signed_in().await);
}

#[tokio::test]
async fn the_session_cookie_name_follows_cookie_secure() {
    let plain = TestApp::new().browser().await;
    assert_eq!(plain.session_cookie_name(), "latchkey");
    let secure = TestApp::new().set("cookie_secure", true).browser().await;
    assert_eq!(secure.session_cookie_name(), "__Host-latchkey");
}
