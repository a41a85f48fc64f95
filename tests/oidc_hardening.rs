//! Hardening III (issue 22), the OpenID Connect provider as an attacker tried it, over
//! real sockets against the server binary: making an app redeem bogus codes to lock
//! every app out of the token endpoint, guessing client secrets, an app pushing the
//! user's browsers out of the session cap, a stranger's id_token_hint, a used public
//! code without its verifier, a re-sign-in marker written by hand, a code outliving the
//! browser session that issued it, and the authorization request's odd parameters.

use serde_json::Value;

use crate::support::*;

fn assert_invalid_grant(status: u16, v: &Value) {
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
}

/// A code exchange by a public `app` (its `client_id` in the form), with `verifier`.
fn exchange_public(
    p: &Provider,
    app: &RegisteredApp,
    code: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        pairs.push(("code_verifier", v));
    }
    let (s, v, _) = ask(p, "/oauth2/token", As::Form(app), &pairs);
    (s, v)
}

/// Issue 22, item 1: anyone can make an app redeem codes of their choosing (its own
/// callback with `?code=junk`), and refreshes of app sessions a user ended answer
/// invalid_grant. Those answers used to count against the app server's address, so 20
/// of them gave every app on that host 429 for 15 minutes. A code or refresh token is
/// 256 bits: nothing is gained by throttling them.
#[tokio::test]
async fn bogus_codes_an_app_is_made_to_redeem_never_lock_any_app_out() {
    let p = Provider::start(Database::Sqlite).await;
    let wiki = p.registered_app("Wiki", &[]);
    let blog = p.registered_app("Blog", &[]);
    let (mut jar, _) = p.signed_in_jar();
    let ended = tokens_for(&p, &mut jar, &wiki, "openid offline_access");
    let (status, _, _) = revoke(&p, As::Basic(&wiki), &field(&ended, "refresh_token"));
    assert_eq!(status, 200);
    for i in 0..30 {
        let junk = format!("{}.{}", uuid::Uuid::now_v7(), "A".repeat(43));
        let (status, v) = if i % 3 == 0 {
            let (s, v, _) = p.token(
                Some(&wiki),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &field(&ended, "refresh_token")),
                ],
            );
            (s, v)
        } else {
            exchange(&p, &wiki, if i % 3 == 1 { "junk" } else { &junk }, VERIFIER)
        };
        assert_invalid_grant(status, &v);
    }
    // Both apps still redeem their users' codes from that address.
    for app in [&wiki, &blog] {
        let code = code_for(&p, &mut jar, app, "openid");
        let (status, v) = exchange(&p, app, &code, VERIFIER);
        assert_eq!(status, 200, "{v}");
    }
}

/// A failed client authentication is what can be guessed: it counts per client id and
/// per address (`login_limit_ip` in `login_limit_window`, 3 here). Past either quota a
/// failing call answers 429 with `Retry-After`; a client that proves itself is never
/// counted or refused, so one app's failures (or an attacker's) never stop another app,
/// nor the app itself.
#[tokio::test]
async fn failed_client_authentication_counts_per_client_and_address_and_never_refuses_a_client_that_proves_itself(
) {
    let p = Provider::start_with(Database::Sqlite, |app| app.set("login_limit_ip", 3)).await;
    let wiki = p.registered_app("Wiki", &[]);
    let blog = p.registered_app("Blog", &[]);
    let wrong = |app: &RegisteredApp| RegisteredApp {
        secret: Some("x".repeat(43)),
        ..app.clone()
    };
    let revoke_from = |from: &str, app: &RegisteredApp| {
        let basic = basic_credentials(app);
        let r = p.server.request_from(
            from,
            "POST",
            "/oauth2/revoke",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &basic),
            ],
            "token=t",
        );
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        (r.status, v, r)
    };
    for _ in 0..3 {
        let (status, v, _) = revoke_from("127.0.0.1", &wrong(&wiki));
        assert_eq!((status, v["error"].as_str()), (401, Some("invalid_client")));
    }
    let (status, v, r) = revoke_from("127.0.0.1", &wrong(&wiki));
    assert_eq!(
        (status, v["error"].as_str()),
        (429, Some("too_many_requests")),
        "{v}"
    );
    let wait: u64 = r
        .header("retry-after")
        .and_then(|h| h.parse().ok())
        .expect("Retry-After in seconds");
    assert!(wait >= 1, "{wait}");
    // From that address, both apps with their own secrets are served.
    for app in [&wiki, &blog] {
        let (status, _, r) = revoke_from("127.0.0.1", app);
        assert_eq!(status, 200, "{}", r.body);
    }
    // Per client: Wiki's failures are counted wherever they come from...
    let (status, v, _) = revoke_from("127.0.0.2", &wrong(&wiki));
    assert_eq!(
        (status, v["error"].as_str()),
        (429, Some("too_many_requests")),
        "{v}"
    );
    // ...and Blog's are its own.
    let (status, v, _) = revoke_from("127.0.0.2", &wrong(&blog));
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("invalid_client")),
        "{v}"
    );
    // Per address: made-up clients from one address fill its quota.
    for _ in 0..2 {
        let made_up = RegisteredApp {
            id: unique("nobody"),
            secret: Some("y".repeat(43)),
        };
        let (status, _, _) = revoke_from("127.0.0.3", &made_up);
        assert_eq!(status, 401);
    }
    let (status, _, _) = revoke_from("127.0.0.3", &wrong(&blog));
    assert_eq!(status, 401, "Blog's second failure, the address's third");
    let (status, v, _) = revoke_from("127.0.0.3", &wrong(&blog));
    assert_eq!(
        (status, v["error"].as_str()),
        (429, Some("too_many_requests")),
        "{v}"
    );
    let (status, _, r) = revoke_from("127.0.0.3", &blog);
    assert_eq!(status, 200, "{}", r.body);
}

/// Issue 22, item 4: with consent remembered, an app that signs in again and again (50
/// passes in a second) ended the user's laptop and phone sessions: the cap evicted the
/// least recently seen. App sessions are capped per user and app instead
/// (`app_sessions_per_client`), the oldest of that app first, and never end a browser
/// or API session.
#[tokio::test]
async fn an_app_signing_in_over_and_over_never_ends_the_users_browser_or_api_sessions() {
    let p = Provider::start_with(Database::Sqlite, |app| {
        app.set("max_sessions_per_user", 4)
            .set("app_sessions_per_client", 3)
    })
    .await;
    let wiki = p.registered_app("Wiki", &[]);
    let blog = p.registered_app("Blog", &[]);
    let (mut laptop, email) = p.signed_in_jar();
    let (status, api) = p.server.token(&[
        ("grant_type", "password"),
        ("username", &email),
        ("password", PASSWORD),
        ("client_name", "backup"),
    ]);
    assert_eq!(status, 200, "{api}");
    let bearer = format!("Bearer {}", field(&api, "access_token"));
    let blog_tokens = tokens_for(&p, &mut laptop, &blog, "openid");
    let mut wiki_tokens = Vec::new();
    for _ in 0..8 {
        wiki_tokens.push(tokens_for(&p, &mut laptop, &wiki, "openid offline_access"));
    }
    assert!(
        p.server.signed_in(&mut laptop),
        "the browser stays signed in"
    );
    let me = p
        .server
        .request("GET", "/api/v1/me", &[("Authorization", &bearer)], "");
    assert_eq!(me.status, 200, "the API session lives: {}", me.body);
    assert_eq!(
        userinfo_status(&p, &field(&blog_tokens, "access_token")),
        200,
        "another app's session is not Wiki's to end"
    );
    let live: Vec<u16> = wiki_tokens
        .iter()
        .map(|t| userinfo_status(&p, &field(t, "access_token")))
        .collect();
    assert_eq!(
        live,
        [401, 401, 401, 401, 401, 200, 200, 200],
        "the oldest end first"
    );
    let list = p
        .server
        .request("GET", "/api/v1/sessions", &[("Authorization", &bearer)], "");
    let list = list.json();
    let kinds: Vec<(&str, &str)> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap_or(""),
                s["label"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for (kind, label, n) in [
        ("browser", "Firefox on Linux", 1),
        ("api", "backup", 1),
        ("app", "Blog", 1),
        ("app", "Wiki", 3),
    ] {
        let found = kinds.iter().filter(|k| **k == (kind, label)).count();
        assert_eq!(found, n, "{kind} {label}: {kinds:?}");
    }
}

/// Issue 22, item 5, as Apache's mod_auth_openidc signs out: it revokes its own tokens
/// first, then sends the browser to `end_session_endpoint` with the id_token (expired by
/// then, as the specification allows). The browser holding that user's session is
/// signed out without a question and sent back.
#[tokio::test]
async fn a_logout_that_revokes_first_then_redirects_signs_the_browser_out_without_a_question() {
    let p = Provider::start_with(Database::Sqlite, |app| app.set("access_token_ttl", 1)).await;
    let (app, mut jar, tokens) = logout_setup(&p);
    let (status, _, r) = revoke(&p, As::Basic(&app), &field(&tokens, "refresh_token"));
    assert_eq!(status, 200, "{}", r.body);
    // The id_token lived as long as an access token: a second.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let r = p.server.send(
        &mut jar,
        "GET",
        &logout_path(&[
            ("id_token_hint", &field(&tokens, "id_token")),
            ("post_logout_redirect_uri", BYE),
            ("state", "s9"),
        ]),
        None,
    );

    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), Some(format!("{BYE}?state=s9").as_str()));
    assert!(!p.server.signed_in(&mut jar), "the browser is signed out");
}

/// Issue 22, item 5: any id_token the user's app ever got (found in a log or a history)
/// ended that app's session when a stranger sent it, cookies or not. A logout ends
/// sessions only for the browser that holds the hint's user's own session; the app
/// revokes its own tokens with `/oauth2/revoke`.
#[tokio::test]
async fn an_id_token_hint_from_a_browser_without_its_users_session_ends_nothing() {
    let p = Provider::start(Database::Sqlite).await;
    let (app, mut victim, tokens) = logout_setup(&p);
    let hint = field(&tokens, "id_token");
    let path = logout_path(&[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE)]);
    // A stranger with no cookies at all.
    let r = p.server.send(&mut Jar::default(), "GET", &path, None);
    assert!(matches!(r.status, 200 | 303), "{}", r.body);
    // A browser signed in to another account.
    let (mut other, _) = p.signed_in_jar();
    let r = p.server.send(&mut other, "GET", &path, None);
    assert!(matches!(r.status, 200 | 303), "{}", r.body);
    assert!(p.server.signed_in(&mut other), "not its session to end");

    assert_eq!(userinfo_status(&p, &field(&tokens, "access_token")), 200);
    let (status, v, _) = p.token(
        Some(&app),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &field(&tokens, "refresh_token")),
        ],
    );
    assert_eq!(status, 200, "the app session lives: {v}");
    assert!(p.server.signed_in(&mut victim));
}

/// Issue 22, item 6: a used public-client code, presented again with only the
/// `client_id` (no verifier, or a wrong one) within its 10 minutes, ended the app
/// session its first use started. Only a request that would have redeemed it counts as
/// a replay.
#[tokio::test]
async fn a_used_public_code_presented_without_its_verifier_ends_nothing() {
    let p = Provider::start(Database::Sqlite).await;
    let phone = p.registered_app("Phone", &["--public"]);
    let (mut jar, _) = p.signed_in_jar();
    let code = code_for(&p, &mut jar, &phone, "openid offline_access");
    let (status, first) = exchange_public(&p, &phone, &code, Some(VERIFIER));
    assert_eq!(status, 200, "{first}");
    let wrong_verifier = "W".repeat(43);
    for verifier in [None, Some(wrong_verifier.as_str()), Some("short")] {
        let (status, v) = exchange_public(&p, &phone, &code, verifier);
        assert_invalid_grant(status, &v);
        assert_eq!(
            userinfo_status(&p, &field(&first, "access_token")),
            200,
            "{verifier:?}: the app session lives"
        );
    }
    // The code's own verifier again: a replay, which ends what the code gave.
    let (status, v) = exchange_public(&p, &phone, &code, Some(VERIFIER));
    assert_invalid_grant(status, &v);
    assert_eq!(userinfo_status(&p, &field(&first, "access_token")), 401);
}

/// Issue 22, also seen: `signed_in_after` is Latchkey's own marker (set when
/// `prompt=login` or `max_age` sent the browser to sign in again). Written into an
/// app's request by hand it skipped the new sign-in; it is not taken from the request.
#[tokio::test]
async fn a_re_sign_in_marker_written_by_hand_gets_no_code() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (mut jar, _) = p.signed_in_jar();
    code_for(&p, &mut jar, &app, "openid");
    let query = auth_query(&app, "openid", VERIFIER, "st");
    for marker in ["0", "1", &(unix_now() * 1000).to_string()] {
        let r = p.server.send(
            &mut jar,
            "GET",
            &format!("/oauth2/authorize?{query}&prompt=login&signed_in_after={marker}"),
            None,
        );
        assert_eq!(r.status, 303, "{}", r.body);
        let loc = r.location().expect("a redirect").to_string();
        assert!(param_or_none(&loc, "code").is_none(), "{marker}: {loc}");
    }
}

/// The value of `name` in a redirect's query, relative or absolute.
fn param_or_none(location: &str, name: &str) -> Option<String> {
    let url = url::Url::parse("http://x").ok()?.join(location).ok()?;
    url.query_pairs()
        .find_map(|(k, v)| (k == name).then(|| v.into_owned()))
}

/// Issue 22, also seen: a code stayed redeemable for its 60 s after the browser
/// session that issued it signed out. It ends with that session.
#[tokio::test]
async fn a_code_ends_with_the_browser_session_that_issued_it() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (mut jar, _) = p.signed_in_jar();
    let code = code_for(&p, &mut jar, &app, "openid");
    let out = p.server.submit(&mut jar, "/devices", "/logout", &[]);
    assert_eq!(out.status, 303, "{}", out.body);
    let (status, v) = exchange(&p, &app, &code, VERIFIER);
    assert_invalid_grant(status, &v);
}

/// Issue 22, also seen: OpenID Connect Core §3.1.2.1 (`prompt=none` with any other
/// value is invalid_request), §6.2 (`request_uri` unsupported has its own code), RFC
/// 6749 §5.1 (`Pragma: no-cache` on a successful token answer too), and
/// `response_mode=form_post`, which is not supported: refused, never ignored.
#[tokio::test]
async fn odd_authorization_parameters_are_answered_by_the_book() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (mut jar, _, _) = signed_in_app(&p, &app, "openid");
    let query = auth_query(&app, "openid", VERIFIER, "st");
    for (extra, error) in [
        ("&prompt=none%20login", "invalid_request"),
        ("&prompt=none%20consent", "invalid_request"),
        ("&prompt=consent%20none", "invalid_request"),
        (
            "&request_uri=https%3A%2F%2Fapp.example%2Freq",
            "request_uri_not_supported",
        ),
        ("&request=eyJhbGciOiJub25lIn0.e30.", "request_not_supported"),
        ("&response_mode=form_post", "invalid_request"),
        ("&response_mode=fragment", "invalid_request"),
    ] {
        let r = p.server.send(
            &mut jar,
            "GET",
            &format!("/oauth2/authorize?{query}{extra}"),
            None,
        );
        assert_eq!(r.status, 303, "{extra}: {}", r.body);
        let loc = r.location().expect("back to the app").to_string();
        assert!(loc.starts_with(REDIRECT), "{extra}: {loc}");
        assert_eq!(
            param(&loc, "error").as_deref(),
            Some(error),
            "{extra}: {loc}"
        );
        assert_eq!(param(&loc, "state").as_deref(), Some("st"), "{extra}");
        assert!(param(&loc, "code").is_none(), "{extra}");
    }
    let r = p.server.send(
        &mut jar,
        "GET",
        &format!("/oauth2/authorize?{query}&response_mode=query"),
        None,
    );
    let code = param(r.location().expect("a code"), "code").expect("a code");
    let (status, v, r) = p.token(
        Some(&app),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let discovery = p
        .server
        .request("GET", "/.well-known/openid-configuration", &[], "");
    assert_eq!(
        discovery.json()["response_modes_supported"],
        serde_json::json!(["query"])
    );
}
