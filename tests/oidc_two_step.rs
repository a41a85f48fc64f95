//! The OpenID Connect provider and two-step sign-in together: an account with a second
//! factor signs in to an app through the password page, the code page, consent and the
//! token endpoint, against the real server binary (and in Chromium against the app
//! served on a socket). The id_token says how the person signed in (`amr` with `otp`,
//! `auth_time` when the code step finished); a pending sign-in is no session, so
//! nothing at `/oauth2/authorize` treats it as one; the code page lets its form end at
//! the app, as the sign-in page does.

use std::time::Duration;

use serde_json::Value;

use crate::support::second_factor::code_at;
use crate::support::*;

/// The id_token's claims of a successful code exchange.
fn id_claims(p: &Provider, app: &RegisteredApp, code: &str) -> Value {
    let (status, tokens) = exchange(p, app, code, VERIFIER);
    assert_eq!(status, 200, "{tokens}");
    jwt_part(tokens["id_token"].as_str().expect("an id_token"), 1)
}

/// The same authorization request (the provider writes a space in the query as `+`).
fn assert_same_request(got: &str, want: &str) {
    let pairs = |p: &str| {
        let (path, query) = p.split_once('?').unwrap_or((p, ""));
        let q: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        (path.to_string(), q)
    };
    assert_eq!(pairs(got), pairs(want), "{got}");
}

fn location(r: &Reply) -> String {
    r.location().expect("a redirect").to_string()
}

#[tokio::test]
async fn an_app_sign_in_through_the_code_page_gets_an_id_token_with_otp_and_its_auth_time() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (mut owner, email) = p.signed_in_jar();
    let (secret, _) = p.server.turn_on_two_step(&mut owner);

    // A new browser follows the app's link: signed out, so the sign-in page.
    let mut b = Jar::default();
    let authorize = format!(
        "/oauth2/authorize?{}",
        auth_query(&app, "openid email", VERIFIER, "st")
    );
    let r = p.server.send(&mut b, "GET", &authorize, None);
    assert_eq!(r.status, 303, "{}", r.body);
    let login = location(&r);
    assert!(login.starts_with("/login?next="), "{login}");

    // The password: the code page next, and no session yet.
    let r = p.server.password_step(&mut b, &login, &email);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(location(&r), CODE_PAGE);
    let password_at = unix_now();
    assert!(
        !p.server.signed_in(&mut b),
        "a password alone signs in nobody"
    );

    // The code page lets its form end at the app's origin (its next is the app's
    // authorization), as the sign-in page does.
    let page = p.server.send(&mut b, "GET", CODE_PAGE, None);
    assert_eq!(page.status, 200, "{}", page.body);
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("form-action 'self' http://localhost:9;"),
        "{csp}"
    );

    // A whole second later, the code: the browser goes on to the authorization
    // request, which asks for consent; allowing it sends the code to the app.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let code_from = unix_now();
    let form = encode(&[
        ("code", code_at(&secret, unix_now()).as_str()),
        ("csrf_token", &csrf_from(&page.body)),
    ]);
    let r = p.server.send(&mut b, "POST", CODE_PAGE, Some(&form));
    let code_until = unix_now();
    assert_eq!(r.status, 303, "{}", r.body);
    assert_same_request(&location(&r), &authorize);
    let consent = p.server.send(&mut b, "GET", &authorize, None);
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("wants to use your account"));
    let r = p.consent(&mut b, &consent.body, "allow");
    assert_eq!(r.status, 303, "{}", r.body);
    let back = location(&r);
    assert!(back.starts_with(REDIRECT), "{back}");
    let claims = id_claims(&p, &app, &param(&back, "code").expect("a code"));

    // How the person signed in: a password and a one-time code, and when (the code
    // step, which started the session; not the password step two seconds before).
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]), "{claims}");
    let auth_time = claims["auth_time"].as_u64().expect("auth_time");
    assert!(
        (code_from..=code_until).contains(&auth_time) && auth_time > password_at,
        "auth_time {auth_time}: password at {password_at}, code between {code_from} and {code_until}"
    );
    // The app's session is listed as signed in the same way as the browser's.
    let devices = p.server.send(&mut b, "GET", "/devices", None);
    assert_eq!(
        devices
            .body
            .matches("with password + authenticator")
            .count(),
        2,
        "the browser and the app: {}",
        devices.body
    );

    // Later, consent remembered: a new code straight away, and the id_token still
    // says when and how the browser signed in, not when the app asked.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = id_claims(&p, &app, &code_for(&p, &mut b, &app, "openid email"));
    assert_eq!(again["amr"], serde_json::json!(["pwd", "otp"]));
    assert_eq!(again["auth_time"].as_u64(), Some(auth_time));
    assert!(again["iat"].as_u64().expect("iat") > auth_time);

    // An account without a second factor: `pwd` alone.
    let (mut plain, _) = p.signed_in_jar();
    let claims = id_claims(&p, &app, &code_for(&p, &mut plain, &app, "openid"));
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]), "{claims}");
}

#[tokio::test]
async fn a_pending_sign_in_is_no_session_at_the_authorization_endpoint() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (mut owner, email) = p.signed_in_jar();
    let (secret, _) = p.server.turn_on_two_step(&mut owner);
    // The owner allows the app once, so a remembered consent would answer at once.
    let first = code_for(&p, &mut owner, &app, "openid email");
    assert_eq!(
        id_claims(&p, &app, &first)["amr"],
        serde_json::json!(["pwd"]),
        "a session from before the factor was on says so"
    );

    // An attacker who knows the password: the code page, a pending sign-in cookie.
    let mut b = Jar::default();
    let authorize = format!(
        "/oauth2/authorize?{}",
        auth_query(&app, "openid email", VERIFIER, "st")
    );
    let login = format!("/login?next={}", urlencode(&authorize));
    let r = p.server.password_step(&mut b, &login, &email);
    assert_eq!(location(&r), CODE_PAGE);
    let code_page = p.server.send(&mut b, "GET", CODE_PAGE, None);
    assert_eq!(code_page.status, 200);

    // The authorization request sends it to the sign-in page, consent remembered or not.
    let r = p.server.send(&mut b, "GET", &authorize, None);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(location(&r).starts_with("/login?next="), "{}", location(&r));
    // prompt=none: the app hears the user is not signed in.
    let silent = format!("{authorize}&prompt=none");
    let r = p.server.send(&mut b, "GET", &silent, None);
    let back = location(&r);
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(param(&back, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&back, "code"), None);
    // A consent answer posted with the code page's form token, as if allowed: no
    // session, so no code (refused, or sent to sign in).
    let mut fields: Vec<(String, String)> =
        url::form_urlencoded::parse(authorize.split_once('?').expect("a query").1.as_bytes())
            .into_owned()
            .map(|(k, v)| (format!("req.{k}"), v))
            .collect();
    fields.push(("csrf_token".into(), csrf_from(&code_page.body)));
    fields.push(("decision".into(), "allow".into()));
    let r = p.server.send(
        &mut b,
        "POST",
        "/oauth2/authorize",
        Some(&encode_owned(&fields)),
    );
    let to_sign_in = r.status == 303 && r.location().is_some_and(|l| l.starts_with("/login"));
    assert!(
        (400..500).contains(&r.status) || to_sign_in,
        "no code for a pending sign-in: {} {:?}",
        r.status,
        r.location()
    );

    // The app token endpoint has no password grant to go around the code with, and
    // the API's password grant still asks for it.
    let (status, v, _) = p.token(
        Some(&app),
        &[
            ("grant_type", "password"),
            ("username", &email),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "unsupported_grant_type");
    let (status, v) = p.server.token(&[
        ("grant_type", "password"),
        ("username", &email),
        ("password", PASSWORD),
    ]);
    assert_eq!(status, 401, "{v}");
    assert!(v.to_string().contains("one-time code"), "{v}");

    // The attacker's browser is still only at the code page: no session, and the
    // right code is what it takes.
    assert!(!p.server.signed_in(&mut b));
    let form = encode(&[
        ("code", code_at(&secret, unix_now()).as_str()),
        ("csrf_token", &csrf_from(&code_page.body)),
    ]);
    let r = p.server.send(&mut b, "POST", CODE_PAGE, Some(&form));
    assert_same_request(&location(&r), &authorize);
    let r = p.server.send(&mut b, "GET", &authorize, None);
    let back = location(&r);
    assert!(back.starts_with(REDIRECT), "remembered consent: {back}");
    let claims = id_claims(&p, &app, &param(&back, "code").expect("a code"));
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]));
}

#[tokio::test]
async fn in_chromium_the_code_page_sends_the_browser_on_to_the_app() {
    use crate::support::chromium::{
        self, click, expect_path, fill, navigate_by, shoot, submit, text, wait_for_app,
        Chromedriver,
    };
    let driver = Chromedriver::start();
    let latchkey = TestApp::new();
    let base = latchkey.serve().await;
    let (rp, calls) = rp_callback();
    let redirect = format!("http://127.0.0.1:{rp}/callback");
    let registered = latchkey.registered_app_at("Example app", &redirect, &[]);
    let client_id = registered.id.clone();
    let query = authorization_query(&client_id, &redirect, "openid email", VERIFIER, "two-step");
    let authorize = format!("{base}/oauth2/authorize?{query}");

    // Registered, and the authenticator app set up from its page.
    let email = email();
    let c = driver.browser(None).await;
    chromium::register(&c, &base, &email).await;
    c.goto(&format!("{base}/account/totp")).await.expect("goto");
    let secret = secret_on(&c.source().await.expect("source"));
    fill(&c, "code", &code_of_the_step_before(&secret)).await;
    fill(&c, "current_password", PASSWORD).await;
    submit(&c).await;
    let recovery = recovery_codes_in(&c.source().await.expect("source"));
    assert_eq!(recovery.len(), 10);
    c.delete_all_cookies().await.expect("signed out");

    // The app's link: password, then the code page, then consent, then the app.
    c.goto(&authorize).await.expect("goto");
    expect_path(&c, "/login").await;
    fill(&c, "email", &email).await;
    fill(&c, "password", PASSWORD).await;
    submit(&c).await;
    expect_path(&c, CODE_PAGE).await;
    shoot(&c, "second-factor-for-app").await;
    fill(&c, "code", &code_at(&secret, unix_now())).await;
    submit(&c).await;
    expect_path(&c, "/oauth2/authorize").await;
    let page = text(&c).await;
    assert!(
        page.contains("Example app wants to use your account"),
        "{page}"
    );
    click(&c, "button[value=allow]").await;
    let at = wait_for_app(&c, rp).await;
    assert!(at
        .query_pairs()
        .any(|(k, v)| k == "state" && v == "two-step"));
    let line = calls
        .recv_timeout(ANSWER_WITHIN)
        .expect("the app was called");
    assert!(line.starts_with("GET /callback?code="), "{line}");
    // The app takes its tokens; the devices page then lists it beside this browser,
    // both signed in with the code.
    let code = at
        .query_pairs()
        .find_map(|(k, v)| (k == "code").then(|| v.into_owned()))
        .expect("a code");
    let body = encode(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &redirect),
        ("code_verifier", VERIFIER),
        ("client_id", &client_id),
        (
            "client_secret",
            registered.secret.as_deref().expect("a secret"),
        ),
    ]);
    let reply = post_form_to_served(&base, "/oauth2/token", body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let tokens: Value = serde_json::from_str(&reply.body).expect("json");
    let claims = jwt_part(tokens["id_token"].as_str().expect("id_token"), 1);
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]), "{claims}");
    c.goto(&format!("{base}/devices")).await.expect("goto");
    let listed = text(&c).await;
    assert!(listed.contains("Example app"), "{listed}");
    assert_eq!(
        listed.matches("with password + authenticator").count(),
        2,
        "{listed}"
    );
    shoot(&c, "devices-two-step").await;

    // Consent remembered, signed in again with a recovery code: the code form's 303
    // chain (authorization, then the app) ends at the app. Without the app's origin in
    // the code page's form-action, Chromium stops on our page.
    c.delete_all_cookies().await.expect("signed out");
    c.goto(&authorize).await.expect("goto");
    fill(&c, "email", &email).await;
    fill(&c, "password", PASSWORD).await;
    submit(&c).await;
    expect_path(&c, CODE_PAGE).await;
    fill(&c, "code", &recovery[0]).await;
    let button = c
        .find(fantoccini::Locator::Css("form.form button[type=submit]"))
        .await
        .expect("button");
    button.click().await.expect("click");
    let at = wait_for_app(&c, rp).await;
    assert!(at.query_pairs().any(|(k, _)| k == "code"), "{at}");

    // And after a wrong code the form shown again still may.
    c.delete_all_cookies().await.expect("signed out");
    c.goto(&authorize).await.expect("goto");
    fill(&c, "email", &email).await;
    fill(&c, "password", PASSWORD).await;
    submit(&c).await;
    fill(&c, "code", "000000").await;
    submit(&c).await;
    expect_path(&c, CODE_PAGE).await;
    assert!(text(&c).await.contains("not right"));
    fill(&c, "code", &recovery[1]).await;
    let button = c
        .find(fantoccini::Locator::Css("form.form button[type=submit]"))
        .await
        .expect("button");
    navigate_by(&c, button).await;
    let at = wait_for_app(&c, rp).await;
    assert!(at.query_pairs().any(|(k, _)| k == "code"), "{at}");
    c.close().await.expect("close");
}

/// `prompt=login` for an account with a second factor: the new sign-in takes both
/// steps, and the id_token says so (`otp`) with the code step's time as auth_time.
#[tokio::test]
async fn prompt_login_takes_both_steps_for_a_two_step_account() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (mut jar, email) = p.signed_in_jar();
    let (secret, _) = p.server.turn_on_two_step(&mut jar);
    let _ = code_for(&p, &mut jar, &app, "openid");
    let authorize = format!(
        "/oauth2/authorize?{}&prompt=login",
        auth_query(&app, "openid", VERIFIER, "st")
    );
    let r = p.server.send(&mut jar, "GET", &authorize, None);
    assert_eq!(r.status, 303, "{}", r.body);
    let login = location(&r);
    assert!(login.starts_with("/login?next="), "{login}");
    let r = p.server.password_step(&mut jar, &login, &email);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        location(&r),
        CODE_PAGE,
        "the password alone is not the new sign-in"
    );
    let page = p.server.send(&mut jar, "GET", CODE_PAGE, None);
    assert_eq!(page.status, 200, "{}", page.body);
    let code_from = unix_now();
    let form = encode(&[
        ("code", code_at(&secret, unix_now()).as_str()),
        ("csrf_token", &csrf_from(&page.body)),
    ]);
    let r = p.server.send(&mut jar, "POST", CODE_PAGE, Some(&form));
    assert_eq!(r.status, 303, "{}", r.body);
    let back = location(&r);
    assert!(back.starts_with("/oauth2/authorize?"), "{back}");
    let r = p.server.send(&mut jar, "GET", &back, None);
    assert_eq!(r.status, 303, "{}", r.body);
    let to_app = location(&r);
    assert!(to_app.starts_with(REDIRECT), "{to_app}");
    let claims = id_claims(&p, &app, &param(&to_app, "code").expect("a code"));
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]), "{claims}");
    let auth_time = claims["auth_time"].as_u64().expect("auth_time");
    assert!(auth_time >= code_from, "{auth_time} < {code_from}");
}
