//! The ends of an app's access, against the real server binary, Redis and a database:
//! revocation (RFC 7009), introspection (RFC 7662), RP-initiated logout, and the
//! refresh grace window for an app's refresh tokens. Attacker cases: another client's
//! tokens, unauthenticated or public-client introspection, an unregistered
//! post_logout_redirect_uri, forged id_token_hints, a logout link with no hint.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode as jwt_encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::*;

fn introspect(p: &Provider, who: As<'_>, token: &str) -> Value {
    let (status, v, r) = ask(p, "/oauth2/introspect", who, &[("token", token)]);
    assert_eq!(status, 200, "{}", r.body);
    v
}

fn inactive() -> Value {
    json!({"active": false})
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_app_session_and_every_token_of_it() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (mut jar, _, tokens) = signed_in_app(&p, &app, "openid email offline_access");
    let (access, rt) = (
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
    );
    assert_eq!(userinfo_status(&p, &access), 200);
    let devices = p.server.send(&mut jar, "GET", "/devices", None);
    assert!(devices.body.contains("Wiki"), "{}", devices.body);

    let (status, _, reply) = revoke(&p, As::Basic(&app), &rt);

    assert_eq!(status, 200, "{}", reply.body);
    assert!(reply.body.is_empty(), "{}", reply.body);
    assert_eq!(userinfo_status(&p, &access), 401);
    let (refused, body) = refresh_grant(&p, &app, &rt);
    assert_eq!(
        (refused, field(&body, "error")),
        (400, "invalid_grant".into())
    );
    assert_eq!(introspect(&p, As::Basic(&app), &access), inactive());
    let devices = p.server.send(&mut jar, "GET", "/devices", None);
    assert!(
        !devices.body.contains("Wiki"),
        "the app is gone from the devices page"
    );
    assert!(p.server.signed_in(&mut jar), "the browser stays signed in");
    // Revoking it again, or a token never issued, still answers 200 (RFC 7009 §2.2).
    assert_eq!(revoke(&p, As::Basic(&app), &rt).0, 200);
    assert_eq!(revoke(&p, As::Basic(&app), "not-a-token").0, 200);
}

#[tokio::test]
async fn revoking_an_access_token_stops_it_at_once_and_the_session_goes_on() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (_, _, tokens) = signed_in_app(&p, &app, "openid email offline_access");
    let (access, rt) = (
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
    );

    let (status, _, reply) = revoke(&p, As::Form(&app), &access);

    assert_eq!(status, 200, "{}", reply.body);
    assert_eq!(userinfo_status(&p, &access), 401);
    assert_eq!(introspect(&p, As::Basic(&app), &access), inactive());
    let (ok, next) = refresh_grant(&p, &app, &rt);
    assert_eq!(ok, 200, "{next}");
    assert_eq!(userinfo_status(&p, &field(&next, "access_token")), 200);
}

#[tokio::test]
async fn another_clients_tokens_are_neither_revoked_nor_described() {
    let p = Provider::start(Database::Sqlite).await;
    let wiki = p.registered_app("Wiki", &[]);
    let attacker = p.registered_app("Attacker", &[]);
    let (_, _, tokens) = signed_in_app(&p, &wiki, "openid email offline_access");
    let (access, rt) = (
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
    );

    for token in [&access, &rt] {
        assert_eq!(introspect(&p, As::Basic(&attacker), token), inactive());
        let (status, _, reply) = revoke(&p, As::Basic(&attacker), token);
        assert_eq!(status, 200, "{}", reply.body);
    }

    // Nor are the account's own API tokens an app's to end or look at.
    let (_, email, _) = signed_in_app(&p, &wiki, "openid");
    let (status, api) = p.server.token(&[
        ("grant_type", "password"),
        ("username", &email),
        ("password", PASSWORD),
    ]);
    assert_eq!(status, 200, "{api}");
    for token in [field(&api, "access_token"), field(&api, "refresh_token")] {
        assert_eq!(introspect(&p, As::Basic(&wiki), &token), inactive());
        assert_eq!(revoke(&p, As::Basic(&wiki), &token).0, 200);
    }
    let me = p.server.request(
        "GET",
        "/api/v1/me",
        &[(
            "Authorization",
            &format!("Bearer {}", field(&api, "access_token")),
        )],
        "",
    );
    assert_eq!(me.status, 200, "the API session goes on: {}", me.body);

    // Nothing of the wiki's changed, and its owner sees both tokens active.
    assert_eq!(userinfo_status(&p, &access), 200);
    assert_eq!(introspect(&p, As::Basic(&wiki), &access)["active"], true);
    assert_eq!(introspect(&p, As::Basic(&wiki), &rt)["active"], true);
    let (ok, _) = refresh_grant(&p, &wiki, &rt);
    assert_eq!(ok, 200);
}

#[tokio::test]
async fn revocation_and_introspection_need_a_client_that_proves_itself() {
    let p = Provider::start(Database::Sqlite).await;
    let wiki = p.registered_app("Wiki", &[]);
    let cli = p.registered_app("Command line", &["--public"]);
    assert!(cli.secret.is_none());
    let (_, _, tokens) = signed_in_app(&p, &wiki, "openid email offline_access");
    let access = field(&tokens, "access_token");
    let wrong = RegisteredApp {
        id: wiki.id.clone(),
        secret: Some("A".repeat(43)),
    };
    let unknown = RegisteredApp {
        id: "B".repeat(22),
        secret: Some("C".repeat(43)),
    };

    for path in ["/oauth2/revoke", "/oauth2/introspect"] {
        for who in [
            As::Nobody,
            As::Basic(&wrong),
            As::Form(&wrong),
            As::Basic(&unknown),
        ] {
            let (status, body, reply) = ask(&p, path, who, &[("token", &access)]);
            assert_eq!(status, 401, "{path}: {}", reply.body);
            assert_eq!(body["error"], "invalid_client", "{path}");
            assert!(body.get("active").is_none(), "{path}: {body}");
            assert!(reply.header("WWW-Authenticate").is_some(), "{path}");
        }
    }
    // A public client has no secret to prove itself with: no introspection for it.
    let (status, body, _) = ask(
        &p,
        "/oauth2/introspect",
        As::Form(&cli),
        &[("token", &access)],
    );
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("invalid_client"))
    );
    // Nothing was revoked on the way.
    assert_eq!(userinfo_status(&p, &access), 200);
    // Bad requests from a good client: no token, a repeated token, not a form.
    let (status, body, _) = ask(&p, "/oauth2/revoke", As::Basic(&wiki), &[]);
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_request"))
    );
    let (status, body, _) = ask(
        &p,
        "/oauth2/introspect",
        As::Basic(&wiki),
        &[("token", &access), ("token", "x")],
    );
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_request"))
    );
    let auth = basic_credentials(&wiki);
    let json_body = p.server.request(
        "POST",
        "/oauth2/introspect",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        &json!({ "token": access }).to_string(),
    );
    assert_eq!(json_body.status, 400, "{}", json_body.body);
}

/// Guessing client secrets is throttled: the invalid_client answers of token,
/// revocation and introspection count against the client id and the address (each
/// `login_limit_ip`, 20 by default); then 429 with `Retry-After` in the OAuth error
/// shape instead of invalid_client. Calls whose client authenticates are neither
/// counted nor refused (issue 22: `oidc_hardening` has the attacker's side).
#[tokio::test]
async fn failed_client_calls_are_throttled_per_address() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    for _ in 0..25 {
        let (status, _, r) = revoke(&p, As::Basic(&app), "not-a-token-of-ours");
        assert_eq!(status, 200, "{}", r.body);
    }
    let wrong = RegisteredApp {
        secret: Some("x".repeat(43)),
        ..app.clone()
    };
    for i in 0..20 {
        let (status, v, _) = match i % 3 {
            0 => ask(
                &p,
                "/oauth2/token",
                As::Basic(&wrong),
                &[("grant_type", "refresh_token"), ("refresh_token", "x")],
            ),
            1 => revoke(&p, As::Basic(&wrong), "t"),
            _ => ask(
                &p,
                "/oauth2/introspect",
                As::Basic(&wrong),
                &[("token", "t")],
            ),
        };
        assert_eq!(
            (status, v["error"].as_str()),
            (401, Some("invalid_client")),
            "{i}: {v}"
        );
    }
    let (status, v, r) = ask(
        &p,
        "/oauth2/token",
        As::Basic(&wrong),
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    );
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["error"], "too_many_requests");
    assert!(v["error_description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    let wait: u64 = r
        .header("retry-after")
        .and_then(|h| h.parse().ok())
        .expect("Retry-After in seconds");
    assert!(wait >= 1, "{wait}");
    // The right client from the same address is served: only failures wait.
    let (status, _, r) = revoke(&p, As::Basic(&app), "t");
    assert_eq!(status, 200, "{}", r.body);
    let (status, v, _) = ask(&p, "/oauth2/introspect", As::Basic(&app), &[("token", "t")]);
    assert_eq!((status, v), (200, inactive()));
}

#[tokio::test]
async fn a_public_client_revokes_its_own_refresh_token_with_its_client_id() {
    let p = Provider::start(Database::Sqlite).await;
    let cli = p.registered_app("Command line", &["--public"]);
    let (_, _, tokens) = signed_in_app(&p, &cli, "openid offline_access");
    let (access, rt) = (
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
    );
    assert_eq!(userinfo_status(&p, &access), 200);

    let (status, _, reply) = revoke(&p, As::Form(&cli), &rt);

    assert_eq!(status, 200, "{}", reply.body);
    assert_eq!(userinfo_status(&p, &access), 401);
}

#[tokio::test]
async fn introspection_describes_a_live_token_and_nothing_once_it_ended() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (mut jar, _, tokens) = signed_in_app(&p, &app, "openid email offline_access");
    let (access, first) = (
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
    );

    let live = introspect(&p, As::Basic(&app), &access);
    assert_eq!(live["active"], true, "{live}");
    assert_eq!(live["client_id"], json!(app.id));
    assert_eq!(live["token_type"], "Bearer");
    assert_eq!(live["scope"], "openid email offline_access");
    assert_eq!(live["iss"], json!(p.issuer()));
    let (exp, iat) = (live["exp"].as_u64(), live["iat"].as_u64());
    assert!(matches!((exp, iat), (Some(e), Some(i)) if e > i), "{live}");
    let sid = field(&live, "sid");
    let userinfo: Value = serde_json::from_str(&p.userinfo(&access).body).expect("JSON");
    assert_eq!(live["sub"], userinfo["sub"]);

    let refresh_live = introspect(&p, As::Form(&app), &first);
    assert_eq!(refresh_live["active"], true, "{refresh_live}");
    assert_eq!(refresh_live["token_type"], "refresh_token");
    assert_eq!(refresh_live["scope"], "openid email offline_access");
    assert_eq!(refresh_live["sid"], json!(sid));
    // Looking changed nothing: the token still refreshes. Then it is spent: inactive,
    // and its successor is the active one.
    let (ok, next) = refresh_grant(&p, &app, &first);
    assert_eq!(ok, 200, "{next}");
    assert_eq!(introspect(&p, As::Basic(&app), &first), inactive());
    let second = field(&next, "refresh_token");
    assert_eq!(introspect(&p, As::Basic(&app), &second)["active"], true);

    // The user signs the app out on the devices page: every token of it is inactive.
    let page = p.server.send(&mut jar, "GET", "/devices", None);
    let csrf = csrf_from(&page.body);
    let ended = p.server.send(
        &mut jar,
        "POST",
        &format!("/devices/{sid}/revoke"),
        Some(&encode(&[("csrf_token", &csrf)])),
    );
    assert_eq!(ended.status, 303, "{}", ended.body);
    for token in [&access, &second, &field(&next, "access_token")] {
        assert_eq!(introspect(&p, As::Basic(&app), token), inactive());
    }
}

#[tokio::test]
async fn forged_access_tokens_are_inactive() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (_, _, tokens) = signed_in_app(&p, &app, "openid email");
    let access = field(&tokens, "access_token");
    let parts: Vec<&str> = access.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("JSON");
    claims["scope"] = json!("openid email profile offline_access");
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
        parts[1]
    );
    let hs256 = jwt_encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(app.secret.clone().unwrap_or_default().as_bytes()),
    )
    .expect("signed");

    for forged in [altered, none, hs256, format!("{access}x")] {
        assert_eq!(
            introspect(&p, As::Basic(&app), &forged),
            inactive(),
            "{forged}"
        );
        assert_eq!(revoke(&p, As::Basic(&app), &forged).0, 200);
    }
    assert_eq!(userinfo_status(&p, &access), 200);
}

#[tokio::test]
async fn an_app_refresh_retried_within_the_grace_window_gets_the_same_successor() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (_, _, tokens) = signed_in_app(&p, &app, "openid offline_access");
    let first = field(&tokens, "refresh_token");

    let (a, by_a) = refresh_grant(&p, &app, &first);
    let (b, by_b) = refresh_grant(&p, &app, &first);

    assert_eq!((a, b), (200, 200), "{by_a} {by_b}");
    assert_eq!(by_a["refresh_token"], by_b["refresh_token"]);
    let second = field(&by_a, "refresh_token");
    assert!(second.ends_with(".of"), "the scopes ride along: {second}");
    let (ok, third) = refresh_grant(&p, &app, &second);
    assert_eq!(ok, 200, "{third}");
    // `first` is two rotations old now: a replay, and the session ends.
    let (late, body) = refresh_grant(&p, &app, &first);
    assert_eq!((late, field(&body, "error")), (400, "invalid_grant".into()));
    assert_eq!(userinfo_status(&p, &field(&third, "access_token")), 401);
}

#[tokio::test]
async fn logout_with_a_valid_hint_ends_both_sessions_and_goes_back_with_the_state() {
    let p = Provider::start(Database::Sqlite).await;
    let (_, mut jar, tokens) = logout_setup(&p);
    let (id_token, access) = (field(&tokens, "id_token"), field(&tokens, "access_token"));

    let r = p.server.send(
        &mut jar,
        "GET",
        &logout_path(&[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", BYE),
            ("state", "x y&z"),
        ]),
        None,
    );

    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), Some(format!("{BYE}?state=x+y%26z").as_str()));
    assert!(!p.server.signed_in(&mut jar), "the browser is signed out");
    assert_eq!(userinfo_status(&p, &access), 401, "so is the app");
}

#[tokio::test]
async fn an_unregistered_post_logout_uri_is_never_followed() {
    let p = Provider::start(Database::Sqlite).await;
    let (app, _, _) = logout_setup(&p);
    for evil in [
        "https://evil.example/",
        "http://localhost:9/signed-out/",
        "http://localhost:9/signed-out?next=https://evil.example",
        "http://localhost:9/Signed-out",
        "http://localhost:9/callback",
        "//evil.example",
    ] {
        let (mut jar, _) = p.signed_in_jar();
        let tokens = tokens_for(&p, &mut jar, &app, "openid");
        let hint = field(&tokens, "id_token");

        let r = p.server.send(
            &mut jar,
            "GET",
            &logout_path(&[
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", evil),
                ("state", "s"),
            ]),
            None,
        );

        assert_eq!(r.status, 200, "{evil}: {}", r.body);
        assert!(r.location().is_none(), "{evil}");
        assert!(!r.body.contains("evil.example"), "{evil}");
        assert!(r.body.contains("You are signed out"), "{}", r.body);
        assert!(
            !p.server.signed_in(&mut jar),
            "{evil}: signed out all the same"
        );
    }
}

/// A key of the attacker's own (PKCS#1 DER).
fn attacker_key() -> EncodingKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("a key");
    let der = key.to_pkcs1_der().expect("DER");
    EncodingKey::from_rsa_der(der.as_bytes())
}

#[tokio::test]
async fn a_forged_id_token_hint_ends_nothing_and_sends_nowhere() {
    let p = Provider::start(Database::Sqlite).await;
    let (_, mut jar, tokens) = logout_setup(&p);
    let (id_token, access) = (field(&tokens, "id_token"), field(&tokens, "access_token"));
    let parts: Vec<&str> = id_token.split('.').collect();
    let real_header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("JSON");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("JSON");
    let mut other_user = claims.clone();
    other_user["sub"] = json!(uuid::Uuid::now_v7());
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(other_user.to_string()),
        parts[2]
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let hs256 = jwt_encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"guessed"),
    )
    .expect("signed");
    // The right algorithm and our kid, signed with the attacker's own key.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = real_header["kid"].as_str().map(str::to_string);
    let own_key = jwt_encode(&header, &claims, &attacker_key()).expect("signed");
    // An access token is not an id_token.
    let access_as_hint = access.clone();

    for forged in [
        altered,
        none,
        hs256,
        own_key,
        access_as_hint,
        "x.y.z".into(),
    ] {
        let r = p.server.send(
            &mut jar,
            "GET",
            &logout_path(&[
                ("id_token_hint", &forged),
                ("post_logout_redirect_uri", BYE),
            ]),
            None,
        );
        assert_eq!(r.status, 400, "{forged}: {}", r.body);
        assert!(r.location().is_none());
        assert!(
            p.server.signed_in(&mut jar),
            "{forged}: the browser is signed in"
        );
        assert_eq!(userinfo_status(&p, &access), 200, "{forged}: so is the app");
    }
}

#[tokio::test]
async fn without_a_hint_the_user_confirms_with_a_form_no_other_site_can_send() {
    let p = Provider::start(Database::Sqlite).await;
    let (app, mut jar, tokens) = logout_setup(&p);
    let access = field(&tokens, "access_token");
    let path = logout_path(&[
        ("client_id", &app.id),
        ("post_logout_redirect_uri", BYE),
        ("state", "s1"),
    ]);

    // A link (or an <img> on another site) ends nothing by itself.
    let page = p.server.send(&mut jar, "GET", &path, None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Sign out of Latchkey?"), "{}", page.body);
    assert!(page.body.contains("Wiki"));
    assert!(p.server.signed_in(&mut jar));
    let csp = page.header("Content-Security-Policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("form-action 'self' http://localhost:9"),
        "{csp}"
    );
    // A forged confirmation (no token, or a made-up one) is refused.
    for token in ["", "forged-token"] {
        let forged = p.server.send(
            &mut jar,
            "POST",
            "/oauth2/logout",
            Some(&encode(&[("csrf_token", token), ("client_id", &app.id)])),
        );
        assert_eq!(forged.status, 403, "{}", forged.body);
        assert!(p.server.signed_in(&mut jar));
    }

    let mut fields = hidden_fields(&page.body);
    assert!(fields.iter().any(|(k, _)| k == "csrf_token"));
    fields.retain(|(k, _)| k != "id_token_hint");
    let confirmed = p.server.send(
        &mut jar,
        "POST",
        "/oauth2/logout",
        Some(&encode_owned(&fields)),
    );

    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    assert_eq!(
        confirmed.location(),
        Some(format!("{BYE}?state=s1").as_str())
    );
    assert!(!p.server.signed_in(&mut jar));
    // Without a hint Latchkey cannot tell which app session to end: the app's stays.
    assert_eq!(userinfo_status(&p, &access), 200);
}

/// A browser signed in to another account since holds no session of the hint's user:
/// nothing ends (issue 22), neither its session nor the app's; it goes back to the app.
#[tokio::test]
async fn a_hint_for_another_account_ends_nothing() {
    let p = Provider::start(Database::Sqlite).await;
    let (app, _, first) = logout_setup(&p);
    // This browser is now someone else's.
    let (mut jar, _) = p.signed_in_jar();

    let r = p.server.send(
        &mut jar,
        "GET",
        &logout_path(&[
            ("id_token_hint", &field(&first, "id_token")),
            ("client_id", &app.id),
            ("post_logout_redirect_uri", BYE),
        ]),
        None,
    );

    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), Some(BYE));
    assert!(
        p.server.signed_in(&mut jar),
        "another account's browser session stays"
    );
    assert_eq!(userinfo_status(&p, &field(&first, "access_token")), 200);
}

#[tokio::test]
async fn a_hint_and_a_client_id_that_disagree_end_nothing() {
    let p = Provider::start(Database::Sqlite).await;
    let (_, mut jar, tokens) = logout_setup(&p);
    let other = p.registered_app("Other", &["--post-logout-uri", "http://localhost:9/other"]);

    let r = p.server.send(
        &mut jar,
        "GET",
        &logout_path(&[
            ("id_token_hint", &field(&tokens, "id_token")),
            ("client_id", &other.id),
            ("post_logout_redirect_uri", "http://localhost:9/other"),
        ]),
        None,
    );

    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.location().is_none());
    assert!(p.server.signed_in(&mut jar));
    assert_eq!(userinfo_status(&p, &field(&tokens, "access_token")), 200);
}

/// The browser pages of the flow: HTML and redirects, described in docs/api.md.
const PAGES: [(&str, &str); 4] = [
    ("/oauth2/authorize", "get"),
    ("/oauth2/authorize", "post"),
    ("/oauth2/logout", "get"),
    ("/oauth2/logout", "post"),
];

#[tokio::test]
async fn the_oauth2_openapi_description_matches_the_mounted_json_endpoints() {
    let app = TestApp::new();
    let mounted: std::collections::BTreeSet<(String, String)> = app
        .mounted_routes()
        .await
        .into_iter()
        .filter(|(path, _)| path.starts_with("/oauth2/") || path.starts_with("/.well-known/"))
        .filter(|(path, method)| !PAGES.contains(&(path.as_str(), method.as_str())))
        .collect();
    let spec: Value = serde_json::from_str(openapi::OAUTH2).expect("valid JSON");
    assert_eq!(mounted, described_operations(&spec));
    assert_refs_resolve(openapi::OAUTH2, &spec);
    let b = app.browser().await;
    let served = b.get("/oauth2/openapi.json").await;
    assert_eq!(served.status, rocket::http::Status::Ok);
    assert_eq!(
        serde_json::from_str::<Value>(&served.body).expect("JSON"),
        spec
    );
}

/// In Chromium: an app's sign-out link without a hint shows the confirmation; its form
/// signs the browser out, and its 303 reaches the app (the page's `form-action` names
/// the app's origin; a browser enforces it on the redirect too).
#[tokio::test]
async fn in_chromium_the_logout_confirmation_signs_out_and_returns_to_the_app() {
    use crate::support::chromium::{
        self, click, expect_path, shoot, text, wait_for_app, Chromedriver,
    };
    let driver = Chromedriver::start();
    let latchkey = TestApp::new();
    let base = latchkey.serve().await;
    let (rp, calls) = rp_callback();
    let bye = format!("http://127.0.0.1:{rp}/bye");
    let callback = format!("http://127.0.0.1:{rp}/callback");
    let registered =
        latchkey.registered_app_at("Example app", &callback, &["--post-logout-uri", &bye]);
    let client_id = registered.id;
    let c = driver.browser(None).await;
    chromium::register(&c, &base, &email()).await;
    expect_path(&c, "/devices").await;

    let link = format!(
        "{base}/oauth2/logout?{}",
        encode(&[
            ("client_id", client_id.as_str()),
            ("post_logout_redirect_uri", bye.as_str()),
            ("state", "chromium-bye"),
        ])
    );
    c.goto(&link).await.expect("goto");
    let page = text(&c).await;
    assert!(page.contains("Sign out of Latchkey?"), "{page}");
    assert!(page.contains("Example app asked to sign you out"), "{page}");
    shoot(&c, "logout-confirm").await;
    click(&c, "form.form button[type=submit]").await;

    let at = wait_for_app(&c, rp).await;
    assert_eq!(at.path(), "/bye");
    assert!(
        at.query_pairs()
            .any(|(k, v)| k == "state" && v == "chromium-bye"),
        "{at}"
    );
    let line = calls
        .recv_timeout(ANSWER_WITHIN)
        .expect("the app was called");
    assert!(line.starts_with("GET /bye?state=chromium-bye"), "{line}");
    c.goto(&format!("{base}/devices")).await.expect("goto");
    expect_path(&c, "/login").await; // the browser is signed out
}
