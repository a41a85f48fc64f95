//! Forward authentication as a reverse proxy asks for it (`/auth/forward`,
//! `/auth/nginx`), `rd` through the sign-in form, and `cookie_domain`. The real nginx
//! and Caddy in front of the app are in `proxies.rs`.

use crate::support::*;
use rocket::http::{Method, Status};
use serde_json::json;

/// The user id in a session cookie (`UID.TOKEN`).
fn user_of(cookie: &str) -> String {
    cookie.split('.').next().unwrap_or("").to_string()
}

fn assert_allowed(p: &Page, cookie: &str, email: &str) {
    assert_eq!(p.status, Status::Ok, "{}", p.body);
    assert_eq!(p.header("Remote-User"), Some(user_of(cookie).as_str()));
    assert_eq!(p.header("Remote-Email"), Some(email));
    assert_eq!(p.header("Remote-Session"), Some(sid_of(cookie).as_str()));
    assert_eq!(p.header("Cache-Control"), Some("no-store"));
}

#[tokio::test]
async fn forward_auth_tells_the_proxy_who_a_signed_in_browser_is() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let cookie = b.session_cookie().expect("signed in");
    assert_allowed(&b.get("/auth/forward").await, &cookie, &email);
    assert_allowed(&b.get("/auth/nginx").await, &cookie, &email);
    // Asked as a JSON client, by a browser that is signed in: still who it is.
    let json = b
        .get_with("/auth/forward", &[("Accept", "application/json")])
        .await;
    assert_allowed(&json, &cookie, &email);
}

#[tokio::test]
async fn forward_auth_slides_the_session_as_a_page_does() {
    let app = TestApp::new()
        .set("session_idle_timeout", 3)
        .set("session_absolute_timeout", 60);
    let (b, _) = app.signed_in_browser().await;
    // Asked every 2 s, a 3 s idle timeout never runs out...
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert_eq!(b.get("/auth/nginx").await.status, Status::Ok);
    }
    // ...until nobody asks for longer than it.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert_eq!(b.get("/auth/nginx").await.status, Status::Unauthorized);
    assert!(!b.is_signed_in().await, "the session itself has ended");
}

/// A proxy on 10.0.0.1 (trusted) protecting `*.apps.example.com`.
fn proxied() -> TestApp {
    TestApp::new()
        .set("public_url", "https://login.example.com")
        .set("trusted_proxies", ["10.0.0.0/8"])
        .set("forward_auth_domains", [".apps.example.com"])
}

const FORWARDED: [(&str, &str); 4] = [
    ("X-Forwarded-Method", "GET"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "wiki.apps.example.com"),
    ("X-Forwarded-Uri", "/page?a=1&b=2"),
];

#[tokio::test]
async fn a_signed_out_browser_is_sent_to_sign_in_with_the_original_url() {
    let app = proxied();
    let proxy = app.browser().await.with_ip("10.0.0.1");
    let p = proxy.get_with("/auth/forward", &FORWARDED).await;
    assert_eq!(p.status, Status::Found, "{}", p.body);
    assert_eq!(
        p.location.as_deref(),
        Some("https://login.example.com/login?rd=https%3A%2F%2Fwiki.apps.example.com%2Fpage%3Fa%3D1%26b%3D2")
    );
    assert_eq!(p.header("Cache-Control"), Some("no-store"));
    // A host outside forward_auth_domains: the sign-in page without a way back there.
    let mut evil = FORWARDED;
    evil[2] = ("X-Forwarded-Host", "apps.example.com.evil.com");
    let p = proxy.get_with("/auth/forward", &evil).await;
    assert_eq!(
        p.location.as_deref(),
        Some("https://login.example.com/login")
    );
}

#[tokio::test]
async fn forwarded_headers_are_believed_only_from_trusted_proxies() {
    let app = proxied();
    // The same headers from a client that is not a proxy: ignored.
    let direct = app.browser().await.with_ip("198.51.100.7");
    let p = direct.get_with("/auth/forward", &FORWARDED).await;
    assert_eq!(p.status, Status::Found);
    assert_eq!(
        p.location.as_deref(),
        Some("https://login.example.com/login")
    );
}

#[tokio::test]
async fn api_callers_and_nginx_get_401_not_a_redirect() {
    let app = proxied();
    let proxy = app.browser().await.with_ip("10.0.0.1");
    let json_only = [FORWARDED[1], FORWARDED[2], ("Accept", "application/json")];
    let p = proxy.get_with("/auth/forward", &json_only).await;
    assert_eq!(p.status, Status::Unauthorized, "{}", p.body);
    assert_eq!(p.location, None);
    let p = proxy
        .get_with("/auth/forward", &[("Authorization", "Bearer not-a-token")])
        .await;
    assert_eq!(p.status, Status::Unauthorized);
    assert_eq!(p.header("WWW-Authenticate"), Some("Bearer"));
    let p = proxy
        .get_with("/auth/forward", &[("Authorization", "Basic dXNlcjpwYXNz")])
        .await;
    assert_eq!(
        p.status,
        Status::Unauthorized,
        "any Authorization: an API caller"
    );
    // nginx cannot pass a redirect on: 401 even for a browser.
    let browser_like = [
        ("Accept", "text/html,*/*"),
        ("X-Original-URL", "https://wiki.apps.example.com/"),
    ];
    let p = proxy.get_with("/auth/nginx", &browser_like).await;
    assert_eq!(p.status, Status::Unauthorized);
    assert_eq!(p.location, None);
    assert_eq!(p.header("Cache-Control"), Some("no-store"));
}

#[tokio::test]
async fn forward_auth_takes_a_bearer_access_token_until_its_session_ends() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let t = password_grant(&b, &email, Some("proxy client")).await;
    let auth = format!("Bearer {}", t.access);
    let p = b
        .get_with("/auth/forward", &[("Authorization", &auth)])
        .await;
    assert_eq!(p.status, Status::Ok, "{}", p.body);
    assert_eq!(p.header("Remote-Email"), Some(email.as_str()));
    assert_eq!(p.header("Remote-Session"), Some(t.session_id.as_str()));
    let me = bearer(&b, Method::Get, "/api/v1/me", &t.access).await;
    assert_eq!(p.header("Remote-User"), me.json["user_id"].as_str());
    assert_eq!(
        bearer(&b, Method::Post, "/api/v1/logout", &t.access)
            .await
            .status,
        Status::NoContent
    );
    let p = b
        .get_with("/auth/forward", &[("Authorization", &auth)])
        .await;
    assert_eq!(p.status, Status::Unauthorized);
}

#[tokio::test]
async fn signing_out_a_proxied_session_on_the_devices_page_ends_access_at_the_next_request() {
    let app = proxied();
    let (app_user, email) = app.signed_in_browser().await;
    let cookie = app_user.session_cookie().expect("signed in");
    assert_allowed(&app_user.get("/auth/nginx").await, &cookie, &email);
    let other = app.browser().await.with_agent(SAFARI_IOS);
    assert_eq!(other.login(&email, PASSWORD).await.status, Status::SeeOther);
    let token = other.get("/devices").await.csrf();
    let revoked = other
        .post_form(&format!("/devices/{}/revoke", sid_of(&cookie)), &token, &[])
        .await;
    assert_eq!(revoked.status, Status::SeeOther);
    assert_eq!(
        app_user.get("/auth/nginx").await.status,
        Status::Unauthorized
    );
    let p = app_user
        .with_ip("10.0.0.1")
        .get_with("/auth/forward", &FORWARDED)
        .await;
    assert_eq!(p.status, Status::Found);
}

/// Sign-in with `rd` allowed to `app.example.com` (http: test cookies are not secure).
fn with_rd() -> TestApp {
    TestApp::new().set(
        "forward_auth_domains",
        json!("app.example.com, .apps.example.com"),
    )
}

const GOOD_RD: &str = "http://app.example.com/notes?id=7";

/// Signs in on the form `/login?rd=...` gave, with `password`.
async fn sign_in_with_rd(b: &Browser, rd: &str, email: &str, password: &str) -> Page {
    let form = b.get(&format!("/login?rd={}", urlencode(rd))).await;
    b.post_form(
        "/login",
        &form.csrf(),
        &[("email", email), ("password", password), ("rd", rd)],
    )
    .await
}

#[tokio::test]
async fn sign_in_returns_to_rd_on_an_allowed_host() {
    let app = with_rd();
    let email = app.account().await;
    let b = app.browser().await;
    let form = b.get(&format!("/login?rd={}", urlencode(GOOD_RD))).await;
    assert!(
        form.body
            .contains("name=\"rd\" value=\"http:&#x2F;&#x2F;app.example.com&#x2F;notes?id=7\""),
        "{}",
        form.body
    );
    let p = sign_in_with_rd(&b, GOOD_RD, &email, PASSWORD).await;
    assert_eq!(p.status, Status::SeeOther);
    assert_eq!(p.location.as_deref(), Some(GOOD_RD));
    // Signed in already: /login?rd= goes straight back.
    let again = b
        .get(&format!(
            "/login?rd={}",
            urlencode("https://x.apps.example.com/")
        ))
        .await;
    assert_eq!(
        again.location.as_deref(),
        Some("https://x.apps.example.com/")
    );
    let evil = b
        .get(&format!("/login?rd={}", urlencode("https://evil.com/")))
        .await;
    assert_eq!(evil.location.as_deref(), Some("/devices"));
}

#[tokio::test]
async fn rd_survives_a_wrong_password() {
    let app = with_rd();
    let email = app.account().await;
    let b = app.browser().await;
    let wrong = sign_in_with_rd(&b, GOOD_RD, &email, "not the password").await;
    assert_eq!(wrong.status, Status::Unauthorized);
    assert!(wrong.body.contains("name=\"rd\""), "{}", wrong.body);
    let right = b
        .post_form(
            "/login",
            &wrong.csrf(),
            &[("email", &email), ("password", PASSWORD), ("rd", GOOD_RD)],
        )
        .await;
    assert_eq!(right.location.as_deref(), Some(GOOD_RD));
}

#[tokio::test]
async fn a_refused_rd_signs_in_to_the_devices_page() {
    let app = with_rd();
    let email = app.account().await;
    for rd in [
        "//evil.com/",
        "/\\evil.com",
        "http://app.example.com@evil.com/",
        "http://app.example.com.evil.com/",
        "http://evilapp.example.com/",
        "http://app.example.com/%0d%0aSet-Cookie:%20x=1",
        "javascript:alert(1)",
        "data:text/html,hi",
    ] {
        let b = app.browser().await;
        let form = b.get(&format!("/login?rd={}", urlencode(rd))).await;
        assert!(
            !form.body.contains("name=\"rd\""),
            "{rd}: not carried in the form"
        );
        // Posted anyway (a hand-made form): checked again, and ignored.
        let p = b
            .post_form(
                "/login",
                &form.csrf(),
                &[("email", &email), ("password", PASSWORD), ("rd", rd)],
            )
            .await;
        assert_eq!(p.status, Status::SeeOther, "{rd}");
        assert_eq!(p.location.as_deref(), Some("/devices"), "{rd}");
    }
}

#[tokio::test]
async fn cookie_domain_shares_the_cookie_and_its_removal_names_the_same_domain() {
    for (secure, name) in [(true, "__Secure-latchkey"), (false, "latchkey")] {
        let app = TestApp::new()
            .set("cookie_secure", secure)
            .set("cookie_domain", ".Example.com");
        let b = app.browser().await;
        let registered = b.register(&email()).await;
        let set = registered.set_cookies();
        let cookie = set
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .expect(name);
        assert_eq!(
            cookie_attribute(cookie, "Domain"),
            Some("example.com"),
            "{cookie}"
        );
        assert_eq!(
            cookie_attribute(cookie, "Secure").is_some(),
            secure,
            "{cookie}"
        );
        let out = b.sign_out().await;
        let set = out.set_cookies();
        let removal = set
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .expect("removal");
        assert!(removal.contains("Max-Age=0"), "{removal}");
        assert_eq!(
            cookie_attribute(removal, "Domain"),
            Some("example.com"),
            "{removal}"
        );
        assert_eq!(
            cookie_attribute(removal, "Secure").is_some(),
            secure,
            "{removal}"
        );
    }
}
