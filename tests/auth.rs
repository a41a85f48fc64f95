//! Creating an account, signing in and out, as a user and as an attacker would.

use crate::support::*;
use rocket::http::Status;

#[tokio::test]
async fn a_new_account_is_signed_in_and_sees_its_device() {
    let app = TestApp::new();
    let b = app.browser().await;
    let email = email();

    let res = b.register(&email).await;

    assert_eq!(res.status, Status::SeeOther);
    assert_eq!(res.location.as_deref(), Some("/devices"));
    let devices = b.get("/devices").await;
    assert_eq!(devices.status, Status::Ok);
    assert!(
        devices.body.contains("Firefox on Linux"),
        "{}",
        devices.body
    );
    assert!(devices.body.contains("This device"));
    assert!(devices.body.contains("203.0.113.5"));
    assert!(devices.body.contains(&email));
    assert_eq!(devices.header("Cache-Control"), Some("no-store"));
}

#[tokio::test]
async fn the_root_sends_you_where_you_belong() {
    let app = TestApp::new();
    let b = app.browser().await;
    assert_eq!(b.get("/").await.location.as_deref(), Some("/login"));
    b.register(&email()).await;
    assert_eq!(b.get("/").await.location.as_deref(), Some("/devices"));
}

#[tokio::test]
async fn signing_in_and_out() {
    let app = TestApp::new();
    let email = app.account().await;

    let b = app.browser().await;
    let res = b.login(&email, PASSWORD).await;
    assert_eq!(res.status, Status::SeeOther);
    assert_eq!(res.location.as_deref(), Some("/devices"));
    assert!(b.is_signed_in().await);
    let cookie = b.session_cookie().expect("a session cookie");
    // Before the sign-out the same value, replayed by another browser, is signed in.
    let thief = app.browser().await;
    thief.set_session_cookie(&cookie).await;
    assert!(thief.is_signed_in().await);

    let out = b.sign_out().await;
    assert_eq!(out.status, Status::SeeOther);
    assert_eq!(out.location.as_deref(), Some("/login"));
    assert!(!b.is_signed_in().await);

    // The cookie from before the sign-out no longer works, replayed by anyone.
    let stranger = app.browser().await;
    stranger.set_session_cookie(&cookie).await;
    assert!(!stranger.is_signed_in().await);
    thief.set_session_cookie(&cookie).await;
    assert!(!thief.is_signed_in().await);
}

#[tokio::test]
async fn a_signed_out_visitor_is_sent_to_sign_in_and_back() {
    let app = TestApp::new();
    let email = app.account().await;
    let b = app.browser().await;

    let res = b.get("/devices").await;
    assert_eq!(res.status, Status::SeeOther);
    assert_eq!(res.location.as_deref(), Some("/login?next=/devices"));

    let login = b.get("/login?next=/account/password").await;
    let res = b
        .post_form(
            "/login?next=/account/password",
            &login.csrf(),
            &[("email", &email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.location.as_deref(), Some("/account/password"));
}

#[tokio::test]
async fn next_never_leaves_the_site() {
    let app = TestApp::new();
    let email = app.account().await;
    for next in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let b = app.browser().await;
        let path = format!("/login?next={}", urlencode(next));
        let token = b.get(&path).await.csrf();
        let res = b
            .post_form(&path, &token, &[("email", &email), ("password", PASSWORD)])
            .await;
        assert_eq!(res.location.as_deref(), Some("/devices"), "next={next}");
    }
}

#[tokio::test]
async fn every_sign_in_issues_a_new_cookie_value() {
    let app = TestApp::new();
    let email = app.account().await;
    let b = app.browser().await;

    // A value planted before sign-in (session fixation) is never kept.
    let planted = format!("{}.{}", uuid::Uuid::now_v7(), "A".repeat(43));
    b.set_session_cookie(&planted).await;
    b.login(&email, PASSWORD).await;
    let first = b.session_cookie().expect("cookie");
    assert_ne!(first, planted);

    // Signed in, /login redirects; the register page still carries this session's token.
    b.submit(
        "/register",
        "/login",
        &[("email", &email), ("password", PASSWORD)],
    )
    .await;
    let second = b.session_cookie().expect("cookie");
    assert_ne!(first, second);
    // Signing in again ends the session the browser had.
    let old = app.browser().await;
    old.set_session_cookie(&first).await;
    assert!(!old.is_signed_in().await);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::new();
    let email = app.account().await;

    let b = app.browser().await;
    let wrong = b.login(&email, "not the password at all").await;
    let unknown = b
        .login("nobody-here@example.com", "not the password at all")
        .await;

    assert_eq!(wrong.status, Status::Unauthorized);
    assert_eq!(unknown.status, Status::Unauthorized);
    let message = |p: &Page| {
        let start = p.body.find("role=\"alert\"").expect("an error message");
        p.body[start..start + 300].to_string()
    };
    assert_eq!(message(&wrong), message(&unknown));
    assert!(b.session_cookie().is_none());
    // What was typed is kept, except the password.
    assert!(wrong.body.contains(&format!("value=\"{email}\"")));
    assert!(!wrong.body.contains("not the password at all"));
}

#[tokio::test]
async fn emails_are_unique_whatever_their_case() {
    let app = TestApp::new();
    let email = app.account().await;

    let res = app
        .browser()
        .await
        .register(&format!("  {}  ", email.to_uppercase()))
        .await;

    assert_eq!(res.status, Status::BadRequest);
    assert!(res.body.contains("already exists"));
    // And the address signs in whatever its case.
    let b = app.browser().await;
    assert_eq!(
        b.login(&email.to_uppercase(), PASSWORD).await.status,
        Status::SeeOther
    );
}

#[tokio::test]
async fn the_password_policy_follows_nist() {
    let app = TestApp::new();
    let b = app.browser().await;
    for (password, expect) in [
        ("short", "at least 8"),
        ("password", "most common"),
        ("Password1", "most common"),
        ("qwertyuiop", "most common"),
    ] {
        let res = b
            .submit(
                "/register",
                "/register",
                &[("email", &email()), ("password", password)],
            )
            .await;
        assert_eq!(res.status, Status::BadRequest, "{password}");
        assert!(res.body.contains(expect), "{password}: {}", res.body);
    }
    let long = "x".repeat(129);
    let res = b
        .submit(
            "/register",
            "/register",
            &[("email", &email()), ("password", &long)],
        )
        .await;
    assert_eq!(res.status, Status::BadRequest);
    // Any characters are fine: spaces, emoji, other scripts.
    let res = b
        .submit(
            "/register",
            "/register",
            &[("email", &email()), ("password", "ключ 🔑 ünïcødé")],
        )
        .await;
    assert_eq!(res.status, Status::SeeOther);
    assert!(common_password_count() >= 10_000);
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let other = app.browser().await.with_agent(SAFARI_IOS);
    other.login(&email, PASSWORD).await;
    let ids = b.device_ids().await;
    assert_eq!(ids.len(), 1);

    let missing = b.post_raw("/logout", "").await;
    let forged = b.post_form("/logout", "forged-token", &[]).await;
    let revoke = b
        .post_form(&format!("/devices/{}/revoke", ids[0]), "forged-token", &[])
        .await;
    let others = b.post_raw("/devices/revoke-others", "csrf_token=").await;
    // Another session's real token is no good here either.
    let their_token = other.get("/devices").await.csrf();
    let stolen = b
        .post_form("/devices/revoke-others", &their_token, &[])
        .await;

    for res in [&missing, &forged, &revoke, &others, &stolen] {
        assert_eq!(res.status, Status::Forbidden);
        assert!(res.body.contains("nothing was changed"));
    }
    assert!(b.is_signed_in().await);
    assert!(other.is_signed_in().await);
}

#[tokio::test]
async fn a_login_form_needs_its_csrf_token_too() {
    let app = TestApp::new();
    let email = app.account().await;
    let b = app.browser().await;
    b.get("/login").await;

    let res = b
        .post_raw(
            "/login",
            &encode(&[("email", &email), ("password", PASSWORD)]),
        )
        .await;

    assert_eq!(res.status, Status::Forbidden);
    assert!(b.session_cookie().is_none());
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let app = TestApp::new();
    let b = app.browser().await;
    for path in ["/login", "/register", "/password/forgot", "/no-such-page"] {
        let p = b.get(path).await;
        let csp = p.header("Content-Security-Policy").expect("CSP");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(p.header("X-Frame-Options"), Some("DENY"));
        assert_eq!(p.header("X-Content-Type-Options"), Some("nosniff"));
        assert!(p.header("Referrer-Policy").is_some());
        if path == "/login" {
            // The sign-in page has passkey parts (the default public_url is a host
            // name): our own script from our origin, nothing inline, nothing else.
            assert!(csp.contains("script-src 'self'"), "{csp}");
            assert_eq!(p.body.matches("<script").count(), 1, "{path}");
            assert!(p.body.contains("<script src=\"/static/passkeys"), "{path}");
        } else {
            assert!(csp.contains("script-src 'none'"), "{path}: {csp}");
            assert!(!p.body.contains("<script"), "{path} has a script");
        }
    }
}

/// The stylesheet every page links: a URL named by its content, cached for a year
/// without revalidation, the bytes of `static/style.css`. The plain address still
/// answers, revalidated each time.
#[tokio::test]
async fn the_stylesheet_is_content_named_and_cached_for_a_year() {
    let app = TestApp::new();
    let b = app.browser().await;
    let href = |p: &Page| {
        let at = p
            .body
            .find("rel=\"stylesheet\" href=\"")
            .expect("a stylesheet link");
        let rest = &p.body[at + "rel=\"stylesheet\" href=\"".len()..];
        rest[..rest.find('"').expect("a closing quote")].to_string()
    };
    let login = b.get("/login").await;
    let sheet = href(&login);
    let on_disk = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/style.css"),
    )
    .expect("static/style.css");
    let digest = sha256_hex(on_disk.as_bytes());
    assert_eq!(sheet, format!("/static/style.{}.css", &digest[..16]));
    b.register(&email()).await;
    for page in ["/devices", "/account/password", "/no-such-page"] {
        assert_eq!(href(&b.get(page).await), sheet, "{page}");
    }

    let css = b.get(&sheet).await;
    assert_eq!(css.status, Status::Ok);
    assert_eq!(css.body, on_disk);
    assert_eq!(css.header("Content-Type"), Some("text/css; charset=utf-8"));
    assert_eq!(
        css.header("Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
    let plain = b.get("/static/style.css").await;
    assert_eq!(plain.status, Status::Ok);
    assert_eq!(plain.body, on_disk);
    assert_eq!(plain.header("Cache-Control"), Some("no-cache"));
    // Another content hash names nothing.
    assert_eq!(
        b.get("/static/style.0000000000000000.css").await.status,
        Status::NotFound
    );
}

#[tokio::test]
async fn the_session_cookie_has_the_contract_attributes() {
    let app = TestApp::new();
    let b = app.browser().await;
    let token = b.get("/register").await.csrf();
    let res = b
        .post_form(
            "/register",
            &token,
            &[("email", &email()), ("password", PASSWORD)],
        )
        .await;
    let set_cookie: Vec<&str> = res
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Set-Cookie"))
        .map(|(_, v)| v.as_str())
        .filter(|v| v.starts_with("latchkey="))
        .collect();
    assert_eq!(set_cookie.len(), 1, "{set_cookie:?}");
    let c = set_cookie[0];
    assert!(c.contains("HttpOnly"));
    assert!(c.contains("SameSite=Lax"));
    assert!(c.contains("Path=/"));
    assert!(!c.contains("Domain"));
    assert!(
        !c.contains("Max-Age"),
        "not remembered: a browser-session cookie"
    );

    // "Remember me" makes it persistent.
    let email = app.account().await;
    let r = app.browser().await;
    let token = r.get("/login").await.csrf();
    let res = r
        .post_form(
            "/login",
            &token,
            &[
                ("email", &email),
                ("password", PASSWORD),
                ("remember", "true"),
            ],
        )
        .await;
    let c = res
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("Set-Cookie") && v.starts_with("latchkey="))
        .map(|(_, v)| v.clone())
        .expect("cookie");
    assert!(c.contains("Max-Age=2592000"), "{c}");
}

#[tokio::test]
async fn the_secure_profile_uses_the_host_prefixed_cookie() {
    let app = TestApp::new().set("cookie_secure", true);
    let b = app.browser().await;
    let token = b.get("/register").await.csrf();
    let res = b
        .post_form(
            "/register",
            &token,
            &[("email", &email()), ("password", PASSWORD)],
        )
        .await;
    let c = res
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("Set-Cookie") && v.starts_with("__Host-latchkey="))
        .map(|(_, v)| v.clone())
        .expect("a __Host- cookie");
    assert!(c.contains("Secure"));
    assert!(c.contains("HttpOnly"));
}

#[tokio::test]
async fn the_embedded_store_serves_the_same_pages() {
    let app = TestApp::new().with_redis("memory");
    let b = app.browser().await;
    let email = email();
    assert_eq!(b.register(&email).await.status, Status::SeeOther);
    assert!(b.is_signed_in().await);
    let health = b.get("/health").await;
    assert!(
        health.body.contains("\"backend\":\"memory\""),
        "{}",
        health.body
    );
    b.sign_out().await;
    assert!(!b.is_signed_in().await);
    assert_eq!(
        b.login(&email, "wrong password!!").await.status,
        Status::Unauthorized
    );
    assert_eq!(b.login(&email, PASSWORD).await.status, Status::SeeOther);
    assert!(b.is_signed_in().await);
}

#[tokio::test]
async fn an_unknown_email_costs_the_same_argon2_work_as_a_known_one() {
    // Timing is not asserted in tests; the work is. Both answers run exactly one
    // Argon2id verification (a dummy hash for the unknown account).
    let app = TestApp::new();
    let email = app.account().await;
    let b = app.browser().await;
    let hasher = b.state::<Hasher>().clone();

    let before = hasher.verifications();
    b.login(&email, "wrong password here").await;
    let known = hasher.verifications() - before;
    let before = hasher.verifications();
    b.login("unknown-person@example.com", "wrong password here")
        .await;
    let unknown = hasher.verifications() - before;

    assert_eq!(known, 1);
    assert_eq!(unknown, 1);
}
