//! The cookies Latchkey sets and removes, and the sessions behind them: in secure mode
//! every `Set-Cookie` carries `Secure` (a `__Host-` cookie's removal is ignored by
//! browsers without it), and a session exists only when an answer carried its cookie.

use crate::common::*;
use latchkey::store::Sessions;
use rocket::http::Status;

const NEW_PASSWORD: &str = "a brand new passphrase";

fn has_attribute(cookie: &str, name: &str) -> bool {
    cookie
        .split(';')
        .skip(1)
        .any(|a| a.trim().eq_ignore_ascii_case(name))
}

fn is_removal(cookie: &str) -> bool {
    cookie.contains("Max-Age=0")
}

/// The secure session cookie's value in this browser's jar.
fn secure_session(b: &Browser) -> Option<String> {
    b.client
        .cookies()
        .get("__Host-latchkey")
        .map(|c| c.value().to_string())
}

#[tokio::test]
async fn in_secure_mode_every_cookie_set_or_removed_is_secure() {
    let cfg = TestConfig::new().set("cookie_secure", true);
    let email = email();
    let b = cfg.browser().await;
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
    let token = b.get("/devices").await.csrf();
    answers.push(b.post_form("/logout", &token, &[]).await);
    assert!(secure_session(&b).is_none(), "the removal reached the jar");
    answers.push(b.get("/login").await);
    answers.push(b.login(&email, PASSWORD).await);
    let sid = sid_of(&secure_session(&b).expect("signed in again"));
    let token = b.get("/devices").await.csrf();
    answers.push(
        b.post_form(&format!("/devices/{sid}/revoke"), &token, &[])
            .await,
    );
    assert!(secure_session(&b).is_none());
    answers.push(b.get("/login").await);
    // Change the password (a notice), then reset it (the cookie cleared, a notice).
    answers.push(b.login(&email, PASSWORD).await);
    answers.push(
        b.submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await,
    );
    answers.push(b.get("/devices").await);
    answers.push(
        b.submit("/password/forgot", "/password/forgot", &[("email", &email)])
            .await,
    );
    let code = wait_for_reset_code(&cfg.outbox()).await;
    answers.push(
        b.submit(
            "/password/reset",
            "/password/reset",
            &[
                ("email", &email),
                ("code", &code),
                ("new_password", PASSWORD),
            ],
        )
        .await,
    );
    answers.push(b.get("/login").await);

    let cookies: Vec<String> = answers.iter().flat_map(Page::set_cookies).collect();
    for c in &cookies {
        assert!(has_attribute(c, "Secure"), "not Secure: {c}");
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
    assert!(has_attribute(device, "HttpOnly"), "{device}");
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
    let cfg = TestConfig::new();
    let email = email();
    let first = cfg.browser().await;
    first.register(&email).await;
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
        let b = cfg
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

    let user = first
        .client
        .rocket()
        .state::<latchkey::accounts::Accounts>()
        .expect("accounts")
        .find_by_email(&latchkey::support::input::Email::parse(&email).expect("email"))
        .await
        .expect("lookup")
        .expect("the account");
    let store = first
        .client
        .rocket()
        .state::<latchkey::store::Store>()
        .expect("store");
    let sessions = store
        .list_sessions(&user.id, latchkey::support::clock::now_ms())
        .await
        .expect("sessions");
    assert_eq!(sessions.len(), cookies, "one session per cookie given");
    assert_eq!(cookies, queries.len() + 1);
    // A new-device mail only for a sign-in that answered with its cookie (the
    // registration's own device is known from the start).
    wait_for_mails(&cfg.outbox(), 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mails = mails_in(&cfg.outbox()).len();
    assert!(
        mails >= 1 && mails < cookies,
        "{mails} mails, {cookies} cookies"
    );
}

/// A browser signed in as a new account.
async fn signed_in_browser(cfg: &TestConfig) -> Browser {
    let email = email();
    cfg.browser().await.register(&email).await;
    let b = cfg.browser().await;
    b.login(&email, PASSWORD).await;
    assert!(b.is_signed_in().await);
    b
}

// The harness itself: `set_session_cookie` and `clear_cookies` change what the browser
// sends next (Rocket's `Client::cookies()` is a copy, so editing it would not).
#[tokio::test]
async fn set_session_cookie_changes_the_cookie_the_browser_sends() {
    let cfg = TestConfig::new();
    let b = signed_in_browser(&cfg).await;
    let cookie = b.session_cookie().expect("a session cookie");

    let other = cfg.browser().await;
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
    let cfg = TestConfig::new();
    let b = signed_in_browser(&cfg).await;
    let cookie = b.session_cookie().expect("a session cookie");

    b.clear_cookies().await;
    assert_eq!(b.session_cookie(), None);
    assert!(!b.is_signed_in().await, "no cookie is sent after clearing");

    // Clearing changed the browser only: the session itself is still there.
    let other = cfg.browser().await;
    other.set_session_cookie(&cookie).await;
    assert!(other.is_signed_in().await);
}

#[tokio::test]
async fn the_session_cookie_name_follows_cookie_secure() {
    let plain = TestConfig::new().browser().await;
    assert_eq!(plain.session_cookie_name(), "latchkey");
    let secure = TestConfig::new().set("cookie_secure", true).browser().await;
    assert_eq!(secure.session_cookie_name(), "__Host-latchkey");
}
