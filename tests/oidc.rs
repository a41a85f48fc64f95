//! The OpenID Connect provider (issue 14), against the real server binary on a socket,
//! real Redis and a real database: a relying party built with the `openidconnect`
//! crate (it knows only the issuer URL: discovery, JWKS and id_token checks are its
//! own), a browser's cookie jar through sign-in and consent, and an attacker's tries.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use serde_json::Value;

use crate::support::*;

/// The openidconnect crate's HTTP calls, over real sockets to the provider.
fn rp_http(
    server: Arc<AppProcess>,
) -> impl Fn(
    openidconnect::HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, std::io::Error>>>,
> {
    move |req: openidconnect::HttpRequest| {
        let server = server.clone();
        Box::pin(async move {
            let path = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let headers: Vec<(String, String)> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let hdrs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let body = String::from_utf8_lossy(req.body()).into_owned();
            let reply = server.request(req.method().as_str(), &path, &hdrs, &body);
            let mut res = openidconnect::http::Response::builder().status(reply.status);
            for line in reply.head.lines().skip(1) {
                if let Some((k, v)) = line.split_once(':') {
                    res = res.header(k.trim(), v.trim());
                }
            }
            res.body(reply.body.into_bytes())
                .map_err(std::io::Error::other)
        })
    }
}

crate::on_both_databases!(
    a_relying_party_that_knows_only_the_issuer_signs_in_calls_userinfo_and_refreshes,
);

async fn a_relying_party_that_knows_only_the_issuer_signs_in_calls_userinfo_and_refreshes(
    db: Database,
) {
    let p = Provider::start(db).await;
    let app = p.registered_app("Grafana", &[]);
    let http = rp_http(p.server.clone());

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(p.issuer()).expect("issuer"), &http)
            .await
            .expect("discovery and JWKS");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.id.clone()),
        app.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(auth_url
        .as_str()
        .starts_with(&format!("{}/oauth2/authorize?", p.issuer())));
    let path = format!("{}?{}", auth_url.path(), auth_url.query().unwrap_or(""));

    // Signed out: the sign-in page, then back to the request.
    let mut jar = Jar::default();
    let first = p.server.send(&mut jar, "GET", &path, None);
    assert_eq!(first.status, 303);
    let login = first.location().expect("to sign-in").to_string();
    assert!(
        login.starts_with("/login?next=%2Foauth2%2Fauthorize")
            || login.starts_with("/login?next=/oauth2/authorize"),
        "{login}"
    );
    // The account, registered in a browser of its own.
    let (_, email) = p.signed_in_jar();
    let signed_in = p.server.submit(
        &mut jar,
        &login,
        &login,
        &[("email", &email), ("password", PASSWORD)],
    );
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let back = signed_in.location().expect("back").to_string();
    assert!(back.starts_with("/oauth2/authorize?"), "{back}");
    let consent = p.server.send(&mut jar, "GET", &back, None);
    assert_eq!(consent.status, 200);
    assert!(consent.body.contains("Grafana"));
    assert!(consent.body.contains("Your email address"));
    let csp = consent.header("content-security-policy").expect("CSP");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("form-action 'self' http://localhost:9"),
        "{csp}"
    );
    let answer = p.consent(&mut jar, &consent.body, "allow");
    assert_eq!(answer.status, 303);
    let loc = answer.location().expect("to the app").to_string();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(
        param(&loc, "state").as_deref(),
        Some(state.secret().as_str())
    );
    let code = param(&loc, "code").expect("code");

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code is exchanged");
    let id_token = tokens.id_token().expect("an id_token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the id_token verifies against JWKS, with our nonce");
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email.as_str()));
    assert_eq!(claims.email_verified(), Some(false));
    assert!(claims.auth_time().is_some());
    assert_eq!(claims.issuer().as_str(), p.issuer());
    let wrong_nonce = id_token.claims(&verifier, &Nonce::new("other".into()));
    assert!(wrong_nonce.is_err(), "another nonce is refused");
    let _ = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("alg"),
        id_token.signing_key(&verifier).expect("key"),
    );
    let raw: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.to_string().split('.').nth(1).expect("payload"))
            .expect("base64"),
    )
    .expect("json");
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "amr",
        "sid",
        "email",
        "email_verified",
    ] {
        assert!(raw.get(claim).is_some(), "{claim} in {raw}");
    }
    assert_eq!(raw["amr"], serde_json::json!(["pwd"]));

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .expect("userinfo endpoint")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.email().map(|e| e.as_str()), Some(email.as_str()));
    assert_eq!(info.subject(), claims.subject());

    let refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token");
    let refreshed = client
        .exchange_refresh_token(refresh)
        .expect("token endpoint")
        .request_async(&http)
        .await
        .expect("refreshed");
    let next = refreshed.refresh_token().expect("rotated").secret().clone();
    assert_ne!(&next, refresh.secret());
    let info2 = p.userinfo(refreshed.access_token().secret());
    assert_eq!(info2.status, 200, "{}", info2.body);

    // The app shows on the devices page and in the sessions API as an app.
    let devices = p.server.send(&mut jar, "GET", "/devices", None);
    assert!(devices.body.contains("Grafana"), "{}", devices.body);

    // Once more, then the first token again: older than the one before the current
    // one, so a replay whatever the grace window, and the session ends.
    let again = client
        .exchange_refresh_token(&RefreshToken::new(next))
        .expect("token endpoint")
        .request_async(&http)
        .await
        .expect("refreshed again");
    assert!(again.refresh_token().is_some());
    let replay = client
        .exchange_refresh_token(&RefreshToken::new(refresh.secret().clone()))
        .expect("token endpoint")
        .request_async(&http)
        .await;
    assert!(replay.is_err());
    assert_eq!(p.userinfo(refreshed.access_token().secret()).status, 401);
}

/// A provider with one app and one signed-in account.
/// An app registered with `--id-token-signed-response-alg ES256` (or EdDSA) gets its
/// id_tokens signed so, and a relying-party library that allows only that algorithm
/// verifies them against JWKS; the access token stays ES256 and works at userinfo; an
/// unknown algorithm is refused when the app is added.
#[tokio::test]
async fn an_app_that_registered_es256_or_eddsa_gets_id_tokens_its_library_verifies() {
    use openidconnect::core::CoreJwsSigningAlgorithm as Jws;
    let p = Provider::start(Database::Sqlite).await;
    let http = rp_http(p.server.clone());
    for (name, alg) in [
        ("ES256", Jws::EcdsaP256Sha256),
        ("EdDSA", Jws::EdDsa),
        ("RS256", Jws::RsaSsaPkcs1V15Sha256),
    ] {
        let (mut jar, _) = p.signed_in_jar();
        let app = p.registered_app(
            name,
            &[
                "--id-token-signed-response-alg",
                name,
                "--post-logout-uri",
                REDIRECT,
            ],
        );
        let metadata = CoreProviderMetadata::discover_async(
            IssuerUrl::new(p.issuer()).expect("issuer"),
            &http,
        )
        .await
        .expect("discovery and JWKS");
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(app.id.clone()),
            app.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"));
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (auth_url, _, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge)
            .url();
        let answer = p.authorize(&mut jar, auth_url.query().unwrap_or(""));
        assert_eq!(answer.status, 303, "{}", answer.body);
        let code = param(answer.location().expect("to the app"), "code").expect("code");
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .expect("token endpoint")
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .expect("the code is exchanged");
        let id_token = tokens.id_token().expect("an id_token");
        assert_eq!(id_token.signing_alg().ok(), Some(&alg), "{name}");
        let only_this = client.id_token_verifier().set_allowed_algs([alg.clone()]);
        id_token
            .claims(&only_this, &nonce)
            .unwrap_or_else(|e| panic!("the {name} id_token verifies: {e}"));
        let others = client
            .id_token_verifier()
            .set_allowed_algs([Jws::RsaSsaPssSha256]);
        assert!(id_token.claims(&others, &nonce).is_err());
        let access = tokens.access_token().secret();
        assert_eq!(jwt_part(access, 0)["alg"], "ES256");
        assert_eq!(p.userinfo(access).status, 200);
        // The id_token is a good logout hint: the browser is signed out without a
        // question and sent back.
        let hint = id_token.to_string();
        let query = encode(&[
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", REDIRECT),
        ]);
        let r = p
            .server
            .send(&mut jar, "GET", &format!("/oauth2/logout?{query}"), None);
        assert_eq!(r.status, 303, "{name} id_token_hint: {}", r.body);
        assert!(!p.server.signed_in(&mut jar), "{name}: signed out");
    }
    let bad = p.instance.cli(&[
        "clients",
        "add",
        "--name",
        "Bad",
        "--redirect-uri",
        REDIRECT,
        "--id-token-signed-response-alg",
        "HS256",
    ]);
    assert!(
        bad.refused().contains("must be one of RS256, ES256, EdDSA"),
        "{}",
        bad.stderr
    );
    let listed = p.instance.cli(&["clients", "list", "--json"]).json_lines();
    let algs: Vec<&str> = listed
        .iter()
        .map(|c| c["id_token_signed_response_alg"].as_str().expect("alg"))
        .collect();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
}

async fn setup(db: Database) -> (Provider, RegisteredApp, Jar, String) {
    let p = Provider::start(db).await;
    let app = p.registered_app("Wiki", &[]);
    let (jar, email) = p.signed_in_jar();
    (p, app, jar, email)
}

fn assert_invalid_grant(status: u16, v: &Value) {
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "invalid_grant", "{v}");
}

#[tokio::test]
async fn a_second_use_of_a_code_is_refused_and_revokes_what_the_first_gave() {
    let (p, app, mut jar, _) = setup(Database::Sqlite).await;
    let code = code_for(&p, &mut jar, &app, "openid email offline_access");
    let (s, first) = exchange(&p, &app, &code, VERIFIER);
    assert_eq!(s, 200, "{first}");
    let access = first["access_token"].as_str().expect("access");
    assert_eq!(p.userinfo(access).status, 200);
    let (s, second) = exchange(&p, &app, &code, VERIFIER);
    assert_invalid_grant(s, &second);
    let refused = p.userinfo(access);
    assert_eq!(refused.status, 401);
    assert!(refused
        .header("www-authenticate")
        .is_some_and(|h| h.contains("invalid_token")));
    let (s, v) = refresh_grant(&p, &app, first["refresh_token"].as_str().expect("rt"));
    assert_invalid_grant(s, &v);
}

/// A spent code that leaks is no weapon for another app: presented by another client
/// (a public one needs only its id) it is a plain invalid_grant and the session its
/// first use started lives on; only its own client's replay ends that session.
#[tokio::test]
async fn a_spent_code_from_another_client_ends_nothing() {
    let (p, app, mut jar, _) = setup(Database::Sqlite).await;
    let public = p.registered_app("Phone", &["--public"]);
    let other = p.registered_app("Other", &[]);
    let code = code_for(&p, &mut jar, &app, "openid offline_access");
    let (s, first) = exchange(&p, &app, &code, VERIFIER);
    assert_eq!(s, 200, "{first}");
    let access = first["access_token"].as_str().expect("access");
    // A public client: its id in the body is all it takes to ask.
    let (s, v, _) = p.token(
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &public.id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_invalid_grant(s, &v);
    assert_eq!(
        p.userinfo(access).status,
        200,
        "the victim's app session lives"
    );
    let (s, v) = exchange(&p, &other, &code, VERIFIER);
    assert_invalid_grant(s, &v);
    assert_eq!(
        p.userinfo(access).status,
        200,
        "the victim's app session lives"
    );
    let (s, v) = refresh_grant(&p, &app, first["refresh_token"].as_str().expect("rt"));
    assert_eq!(s, 200, "{v}");
    let access = v["access_token"].as_str().expect("access");
    // Its own client's replay still ends it (RFC 6749 §4.1.2).
    let (s, v) = exchange(&p, &app, &code, VERIFIER);
    assert_invalid_grant(s, &v);
    assert_eq!(p.userinfo(access).status, 401);
}

/// OpenID Connect Core §3.1.2.1: `prompt=login`, or `max_age` elapsed, sends a
/// signed-in browser to sign in again before any code, and the id_token's auth_time is
/// that new sign-in; one sign-in ends the loop; `prompt=none` then is login_required.
#[tokio::test]
async fn prompt_login_and_max_age_ask_for_a_new_sign_in_that_auth_time_names() {
    let (p, app, mut jar, email) = setup(Database::Sqlite).await;
    let code = code_for(&p, &mut jar, &app, "openid");
    let (s, v) = exchange(&p, &app, &code, VERIFIER);
    assert_eq!(s, 200, "{v}");
    let first = jwt_part(v["id_token"].as_str().expect("id_token"), 1)["auth_time"]
        .as_u64()
        .expect("auth_time");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let query = auth_query(&app, "openid", VERIFIER, "st4te");
    let get = |jar: &mut Jar, extra: &str| {
        p.server.send(
            jar,
            "GET",
            &format!("/oauth2/authorize?{query}{extra}"),
            None,
        )
    };
    // A max_age not yet elapsed: straight back with a code.
    let r = get(&mut jar, "&max_age=3600");
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().expect("loc").starts_with(REDIRECT));
    // Elapsed, and the app asks for no page: login_required, with its state.
    for extra in ["&max_age=1&prompt=none", "&max_age=0&prompt=none"] {
        let r = get(&mut jar, extra);
        let loc = r.location().expect("a redirect").to_string();
        assert!(loc.starts_with(REDIRECT), "{loc}");
        assert_eq!(param(&loc, "error").as_deref(), Some("login_required"));
        assert_eq!(param(&loc, "state").as_deref(), Some("st4te"));
    }
    // A bad max_age is refused at the app.
    let r = get(&mut jar, "&max_age=soon");
    let loc = r.location().expect("a redirect").to_string();
    assert_eq!(param(&loc, "error").as_deref(), Some("invalid_request"));
    for extra in ["&prompt=login", "&max_age=1"] {
        let r = get(&mut jar, extra);
        assert_eq!(r.status, 303, "{}", r.body);
        let login = r.location().expect("to sign in").to_string();
        assert!(login.starts_with("/login?next="), "{login}");
        // The sign-in form, though the browser is signed in.
        let before = unix_now();
        let back = sign_in_on_page(&p, &mut jar, &login, &email);
        assert!(
            !back.contains("prompt=login") && !back.contains("max_age"),
            "{back}"
        );
        // Once signed in again: a code (consent is remembered), not another sign-in.
        let r = p.server.send(&mut jar, "GET", &back, None);
        assert_eq!(r.status, 303, "{}", r.body);
        let loc = r.location().expect("a redirect").to_string();
        assert!(loc.starts_with(REDIRECT), "{loc}");
        let (s, v) = exchange(&p, &app, &param(&loc, "code").expect("code"), VERIFIER);
        assert_eq!(s, 200, "{v}");
        let auth_time = jwt_part(v["id_token"].as_str().expect("id_token"), 1)["auth_time"]
            .as_u64()
            .expect("auth_time");
        assert!(
            auth_time >= before && auth_time > first,
            "{auth_time} {before} {first}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    // A marker in the future would loop: refused.
    let far = (unix_now() + 3600) * 1000;
    let r = get(&mut jar, &format!("&signed_in_after={far}"));
    let loc = r.location().expect("a redirect").to_string();
    assert_eq!(param(&loc, "error").as_deref(), Some("invalid_request"));
}

/// A signed-out browser following the longest valid authorization request (state,
/// nonce and scope at 512 bytes, each byte percent-encoded) signs in and comes back to
/// it, its state intact; unknown parameters are not carried.
#[tokio::test]
async fn a_long_valid_request_survives_signing_in_first() {
    let (p, app, _, email) = setup(Database::Sqlite).await;
    let state: String = "é~ &=".chars().cycle().take(500).collect::<String>();
    let state = &state[..state.floor_char_boundary(512)];
    assert!(state.len() > 500);
    let nonce = "n/+".repeat(170);
    let challenge = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(VERIFIER));
    let query = encode(&[
        ("response_type", "code"),
        ("client_id", &app.id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email"),
        ("state", state),
        ("nonce", &nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("prompt", "consent"),
        ("ui_locales", &"x".repeat(4000)),
    ]);
    let mut jar = Jar::default();
    let r = p
        .server
        .send(&mut jar, "GET", &format!("/oauth2/authorize?{query}"), None);
    assert_eq!(r.status, 303, "{}", r.body);
    let login = r.location().expect("to sign in").to_string();
    assert!(login.starts_with("/login?next="), "{login}");
    assert!(
        !login.contains("ui_locales"),
        "unknown parameters are not carried"
    );
    let back = sign_in_on_page(&p, &mut jar, &login, &email);
    let r = p.authorize(&mut jar, back.trim_start_matches("/oauth2/authorize?"));
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.location().expect("to the app").to_string();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some(state));
    assert!(param(&loc, "code").is_some(), "{loc}");
}

#[tokio::test]
async fn a_code_works_only_for_its_client_redirect_uri_and_verifier() {
    let (p, app, mut jar, _) = setup(Database::Sqlite).await;
    let other = p.registered_app("Other", &[]);
    let public = p.registered_app("Phone", &["--public"]);
    assert!(public.secret.is_none());
    let code = code_for(&p, &mut jar, &app, "openid");
    // Another client, even one with a valid secret of its own.
    let (s, v) = exchange(&p, &other, &code, VERIFIER);
    assert_invalid_grant(s, &v);
    // The wrong secret for the right client.
    let wrong = RegisteredApp {
        secret: Some("x".repeat(43)),
        ..app.clone()
    };
    let (s, v, r) = p.token(
        Some(&wrong),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("invalid_client")),
        "{v}"
    );
    assert!(r.header("www-authenticate").is_some());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Another redirect_uri, none, no verifier, a wrong one.
    for (redirect, verifier) in [
        (Some("http://localhost:9/other"), Some(VERIFIER)),
        (None, Some(VERIFIER)),
        (Some(REDIRECT), None),
        (Some(REDIRECT), Some("A".repeat(43).as_str())),
        (Some(REDIRECT), Some("short")),
    ] {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ];
        if let Some(r) = redirect {
            pairs.push(("redirect_uri", r));
        }
        if let Some(v) = verifier {
            pairs.push(("code_verifier", v));
        }
        let (s, v, r) = p.token(Some(&app), &pairs);
        assert_invalid_grant(s, &v);
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    // None of that used the code up: its rightful holder still gets tokens.
    let (s, v) = exchange(&p, &app, &code, VERIFIER);
    assert_eq!(s, 200, "{v}");
    assert!(
        v.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_in"].as_u64().is_some());
}

#[tokio::test]
async fn a_public_client_needs_pkce_and_plain_is_refused() {
    let (p, _, mut jar, _) = setup(Database::Sqlite).await;
    let public = p.registered_app("Phone", &["--public"]);
    let base = [
        ("response_type", "code"),
        ("client_id", public.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "s1"),
    ];
    let without = p.server.send(
        &mut jar,
        "GET",
        &format!("/oauth2/authorize?{}", encode(&base)),
        None,
    );
    assert_eq!(without.status, 303);
    let loc = without.location().expect("back to the app");
    assert_eq!(param(loc, "error").as_deref(), Some("invalid_request"));
    assert_eq!(param(loc, "state").as_deref(), Some("s1"));
    let mut plain = base.to_vec();
    plain.push(("code_challenge", VERIFIER));
    plain.push(("code_challenge_method", "plain"));
    let r = p.server.send(
        &mut jar,
        "GET",
        &format!("/oauth2/authorize?{}", encode(&plain)),
        None,
    );
    let loc = r.location().expect("back to the app");
    assert_eq!(param(loc, "error").as_deref(), Some("invalid_request"));
    assert!(param(loc, "error_description").is_some_and(|d| d.contains("S256")));
    // With S256 and no secret at the token endpoint: client_id in the form.
    let code = code_for(&p, &mut jar, &public, "openid");
    let (s, v, _) = p.token(
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &public.id),
        ],
    );
    assert_invalid_grant(s, &v);
    let (s, v, _) = p.token(
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &public.id),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn unregistered_redirects_get_an_error_page_never_a_redirect() {
    let (p, app, mut jar, _) = setup(Database::Sqlite).await;
    for (client, redirect) in [
        ("unknown-client", REDIRECT),
        (app.id.as_str(), "https://evil.example/callback"),
        (app.id.as_str(), "http://localhost:9/callback/../x"),
        (app.id.as_str(), "http://localhost:9/callbackx"),
        (app.id.as_str(), "http://localhost:9/callback#frag"),
        (app.id.as_str(), "http://localhost:10/callback"),
        (app.id.as_str(), "//evil.example/callback"),
        (app.id.as_str(), ""),
    ] {
        let q = encode(&[
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", redirect),
            ("scope", "openid"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ]);
        let r = p
            .server
            .send(&mut jar, "GET", &format!("/oauth2/authorize?{q}"), None);
        assert_eq!(r.status, 400, "{client} {redirect}");
        assert_eq!(r.location(), None, "{client} {redirect}");
        assert!(r.body.contains("sign-in link does not work"), "{}", r.body);
    }
    // The redirect URI is fine but the rest is not: errors go back to the app.
    for (name, value, error) in [
        ("response_type", "token", "unsupported_response_type"),
        ("scope", "email", "invalid_scope"),
    ] {
        let mut pairs = vec![
            ("client_id", app.id.as_str()),
            ("redirect_uri", REDIRECT),
            ("state", "xyz"),
        ];
        if name != "response_type" {
            pairs.push(("response_type", "code"));
        }
        if name != "scope" {
            pairs.push(("scope", "openid"));
        }
        pairs.push((name, value));
        let r = p.server.send(
            &mut jar,
            "GET",
            &format!("/oauth2/authorize?{}", encode(&pairs)),
            None,
        );
        assert_eq!(r.status, 303);
        let loc = r.location().expect("to the app");
        assert!(loc.starts_with(REDIRECT), "{loc}");
        assert_eq!(param(loc, "error").as_deref(), Some(error));
        assert_eq!(param(loc, "state").as_deref(), Some("xyz"));
    }
}

#[tokio::test]
async fn the_consent_page_cannot_be_framed_refuses_forged_csrf_and_remembers_the_answer() {
    let (p, app, mut jar, _) = setup(Database::Sqlite).await;
    let q = auth_query(&app, "openid email", VERIFIER, "s");
    let page = p
        .server
        .send(&mut jar, "GET", &format!("/oauth2/authorize?{q}"), None);
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    // A forged (or missing) token changes nothing and gives no code.
    let mut fields = hidden_fields(&page.body);
    for (k, v) in fields.iter_mut() {
        if k == "csrf_token" {
            *v = "forged".into();
        }
    }
    fields.push(("decision".into(), "allow".into()));
    let forged = p.server.send(
        &mut jar,
        "POST",
        "/oauth2/authorize",
        Some(&encode_owned(&fields)),
    );
    assert_eq!(forged.status, 403);
    assert_eq!(forged.location(), None);
    // Another browser (the attacker's own session) cannot answer for this one either.
    let mut other = Jar::default();
    p.server.register(&mut other, &email());
    let mut fields = hidden_fields(&page.body);
    fields.push(("decision".into(), "allow".into()));
    let cross = p.server.send(
        &mut other,
        "POST",
        "/oauth2/authorize",
        Some(&encode_owned(&fields)),
    );
    assert_eq!(cross.status, 403);
    // Still asked: the forged answers remembered nothing.
    let again = p
        .server
        .send(&mut jar, "GET", &format!("/oauth2/authorize?{q}"), None);
    assert_eq!(again.status, 200);
    let denied = p.consent(&mut jar, &again.body, "deny");
    let loc = denied.location().expect("to the app");
    assert_eq!(param(loc, "error").as_deref(), Some("access_denied"));
    let again = p
        .server
        .send(&mut jar, "GET", &format!("/oauth2/authorize?{q}"), None);
    assert_eq!(again.status, 200, "a denial is not remembered");
    let allowed = p.consent(&mut jar, &again.body, "allow");
    assert!(param(allowed.location().expect("to the app"), "code").is_some());
    // Remembered: straight back with a code; more scopes ask again.
    let direct = p
        .server
        .send(&mut jar, "GET", &format!("/oauth2/authorize?{q}"), None);
    assert_eq!(direct.status, 303);
    assert!(param(direct.location().expect("to the app"), "code").is_some());
    let more = auth_query(&app, "openid email offline_access", VERIFIER, "s");
    let asked = p
        .server
        .send(&mut jar, "GET", &format!("/oauth2/authorize?{more}"), None);
    assert_eq!(asked.status, 200);
}

/// The Redis key of a code (`P:{UID}:ac:ID`), as the store names it: the ID is bound
/// to the client the code was issued to.
fn code_key(prefix: &str, client_id: &str, code: &str) -> String {
    let (uid, secret) = code.split_once('.').expect("UID.SECRET");
    let uid = uuid::Uuid::parse_str(uid).expect("uid");
    let bound = format!("{client_id}\n{secret}");
    let id =
        URL_SAFE_NO_PAD.encode(&<sha2::Sha256 as sha2::Digest>::digest(bound.as_bytes())[..16]);
    format!(
        "{prefix}:{{{}}}:ac:{id}",
        URL_SAFE_NO_PAD.encode(uid.as_bytes())
    )
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let (p, app, mut jar, _) = setup(Database::Sqlite).await;
    let code = code_for(&p, &mut jar, &app, "openid");
    let mut conn = redis::Client::open(redis_url())
        .and_then(|c| c.get_connection())
        .expect("a Redis connection");
    let key = code_key(&p.instance.prefix, &app.id, &code);
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).expect("PTTL");
    assert!((1..=60_000).contains(&ttl), "a code lives 60 s: {ttl}");
    // Its 60 seconds pass.
    let _: i64 = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(1)
        .query(&mut conn)
        .expect("PEXPIRE");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (s, v) = exchange(&p, &app, &code, VERIFIER);
    assert_invalid_grant(s, &v);
}

/// A JWT with `header` and `claims`, signed with HS256 under `key` (or unsigned).
fn forge(header: &Value, claims: &Value, key: Option<&[u8]>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = match key {
        Some(k) => {
            use hmac::Mac;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(k).expect("hmac");
            mac.update(input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        None => String::new(),
    };
    format!("{input}.{sig}")
}

#[tokio::test]
async fn forged_tokens_are_refused_at_userinfo() {
    let (p, app, mut jar, _) = setup(Database::Sqlite).await;
    let code = code_for(&p, &mut jar, &app, "openid email");
    let (_, v) = exchange(&p, &app, &code, VERIFIER);
    let access = v["access_token"].as_str().expect("access").to_string();
    let id_token = v["id_token"].as_str().expect("id").to_string();
    assert_eq!(p.userinfo(&access).status, 200);
    let header_v = jwt_part(&access, 0);
    // App access tokens are ES256 (RFC 9068's at+jwt), id_tokens RS256 by default.
    assert_eq!(header_v["alg"], "ES256");
    assert_eq!(header_v["typ"], "at+jwt");
    assert_eq!(jwt_part(&id_token, 0)["alg"], "RS256");
    let claims = jwt_part(&access, 1);
    let jwks: Value =
        serde_json::from_str(&p.server.get("/oauth2/jwks").expect("jwks").body).expect("json");
    let key_of = |alg: &str| -> Value {
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["alg"] == alg)
            .unwrap_or_else(|| panic!("a {alg} key in {jwks}"))
            .clone()
    };
    let rsa = key_of("RS256");
    let (ec, ed) = (key_of("ES256"), key_of("EdDSA"));
    let n = URL_SAFE_NO_PAD
        .decode(rsa["n"].as_str().expect("n"))
        .expect("n");
    let kid = header_v["kid"].clone();
    assert_eq!(kid, ec["kid"]);
    let mut other_user = claims.clone();
    other_user["sub"] = serde_json::json!(uuid::Uuid::now_v7());
    // The access token's own signature under another header: the header is signed too,
    // and an algorithm other than its key's is refused before any signature is checked.
    let reheaded = |header: String| -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            access.split('.').nth(1).expect("p"),
            access.split('.').nth(2).expect("s")
        )
    };
    let forged = [
        forge(
            &serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": kid}),
            &claims,
            None,
        ),
        forge(
            &serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": rsa["kid"]}),
            &claims,
            None,
        ),
        forge(
            &serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": rsa["kid"]}),
            &claims,
            Some(&n),
        ),
        forge(
            &serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": rsa["kid"]}),
            &claims,
            Some(rsa.to_string().as_bytes()),
        ),
        forge(
            &serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
            &claims,
            Some(ec.to_string().as_bytes()),
        ),
        forge(
            &serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
            &claims,
            Some(JWT_SECRET.as_bytes()),
        ),
        // Our algorithms, each with another algorithm's key.
        reheaded(serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}).to_string()),
        reheaded(serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}).to_string()),
        reheaded(
            serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": rsa["kid"]}).to_string(),
        ),
        reheaded(
            serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": ed["kid"]}).to_string(),
        ),
        // The right key and algorithm, but a header that is not the signed one.
        reheaded(
            serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": kid, "x": 1}).to_string(),
        ),
        reheaded(
            serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": kid, "crit": ["exp"]})
                .to_string(),
        ),
        reheaded(serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid}).to_string()),
        // A duplicated member (the second would say something else to another parser).
        reheaded(format!(
            r#"{{"alg":"ES256","typ":"at+jwt","kid":{kid},"alg":"none"}}"#
        )),
        // The right signature over other claims.
        format!(
            "{}.{}.{}",
            access.split('.').next().expect("h"),
            URL_SAFE_NO_PAD.encode(other_user.to_string()),
            access.split('.').nth(2).expect("s")
        ),
        // An id_token is not an access token.
        id_token,
        format!("{access}x"),
        String::new(),
    ];
    for token in forged {
        let r = p.userinfo(&token);
        assert_eq!(r.status, 401, "{token}: {}", r.body);
        assert!(r
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer")));
    }
    let none = p.server.request("GET", "/oauth2/userinfo", &[], "");
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("www-authenticate"),
        Some("Bearer realm=\"latchkey\"")
    );
}

/// Tokens for `app` (with offline_access) through `jar`.
fn app_tokens(p: &Provider, jar: &mut Jar, app: &RegisteredApp) -> (String, String) {
    let code = code_for(p, jar, app, "openid email offline_access");
    let (s, v) = exchange(p, app, &code, VERIFIER);
    assert_eq!(s, 200, "{v}");
    (
        v["access_token"].as_str().expect("access").to_string(),
        v["refresh_token"].as_str().expect("refresh").to_string(),
    )
}

/// Both the app's access token and its refresh token are refused.
fn assert_ended(p: &Provider, app: &RegisteredApp, access: &str, refresh: &str) {
    assert_eq!(p.userinfo(access).status, 401);
    let (s, v) = refresh_grant(p, app, refresh);
    assert_invalid_grant(s, &v);
}

crate::on_both_databases!(an_app_is_a_session_that_the_devices_page_lists_and_ends,);

async fn an_app_is_a_session_that_the_devices_page_lists_and_ends(db: Database) {
    let (p, app, mut jar, email) = setup(db).await;
    let (access, refresh) = app_tokens(&p, &mut jar, &app);
    let devices = p.server.send(&mut jar, "GET", "/devices", None);
    assert!(devices.body.contains("Wiki"), "{}", devices.body);
    assert!(devices.body.contains("signed in with Latchkey"));
    // The sessions API says so too.
    let grant = p.server.request(
        "POST",
        "/api/v1/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &encode(&[
            ("grant_type", "password"),
            ("username", &email),
            ("password", PASSWORD),
        ]),
    );
    let api: Value = serde_json::from_str(&grant.body).expect("json");
    let bearer = format!("Bearer {}", api["access_token"].as_str().expect("access"));
    let list = p
        .server
        .request("GET", "/api/v1/sessions", &[("Authorization", &bearer)], "");
    let sessions: Value = serde_json::from_str(&list.body).expect("json");
    let app_session = sessions
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["kind"] == "app")
        .unwrap_or_else(|| panic!("an app session in {sessions}"))
        .clone();
    assert_eq!(app_session["label"], "Wiki");
    assert_eq!(app_session["id"], jwt_part(&access, 1)["sid"]);
    // Sign it out on the devices page: its tokens end at once.
    let id = app_session["id"].as_str().expect("id");
    let token = csrf_from(&devices.body);
    let ended = p.server.send(
        &mut jar,
        "POST",
        &format!("/devices/{id}/revoke"),
        Some(&encode(&[("csrf_token", &token)])),
    );
    assert_eq!(ended.status, 303);
    assert_ended(&p, &app, &access, &refresh);
}

#[tokio::test]
async fn every_way_of_ending_sessions_ends_the_apps_tokens() {
    let (p, app, mut jar, email) = setup(Database::Sqlite).await;
    // Signing out of the browser leaves the app signed in (as for API sessions).
    let (access, refresh) = app_tokens(&p, &mut jar, &app);
    let devices = p.server.send(&mut jar, "GET", "/devices", None);
    let out = p.server.send(
        &mut jar,
        "POST",
        "/logout",
        Some(&encode(&[("csrf_token", &csrf_from(&devices.body))])),
    );
    assert_eq!(out.status, 303);
    assert_eq!(p.userinfo(&access).status, 200);
    // Sign-out everywhere else (from another browser of the account).
    let mut other = Jar::default();
    let r = p.server.submit(
        &mut other,
        "/login",
        "/login",
        &[("email", &email), ("password", PASSWORD)],
    );
    assert_eq!(r.status, 303);
    let page = p.server.send(&mut other, "GET", "/devices", None);
    let r = p.server.send(
        &mut other,
        "POST",
        "/devices/revoke-others",
        Some(&encode(&[("csrf_token", &csrf_from(&page.body))])),
    );
    assert_eq!(r.status, 303);
    assert_ended(&p, &app, &access, &refresh);
    // The operator's end-sessions.
    let (access, refresh) = app_tokens(&p, &mut other, &app);
    p.instance.cli(&["users", "end-sessions", &email]).ok();
    assert_ended(&p, &app, &access, &refresh);
    // A password change.
    let mut third = Jar::default();
    p.server.submit(
        &mut third,
        "/login",
        "/login",
        &[("email", &email), ("password", PASSWORD)],
    );
    let (access, refresh) = app_tokens(&p, &mut third, &app);
    let r = p.server.submit(
        &mut third,
        "/account/password",
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a different long passphrase 42"),
        ],
    );
    assert!(r.status == 303 || r.status == 200, "{}", r.status);
    assert_ended(&p, &app, &access, &refresh);
    // Disabling the account.
    let mut fourth = Jar::default();
    let r = p.server.submit(
        &mut fourth,
        "/login",
        "/login",
        &[
            ("email", &email),
            ("password", "a different long passphrase 42"),
        ],
    );
    assert_eq!(r.status, 303);
    let (access, refresh) = app_tokens(&p, &mut fourth, &app);
    p.instance.cli(&["users", "disable", &email]).ok();
    assert_ended(&p, &app, &access, &refresh);
}

crate::on_both_databases!(keys_rotate_and_the_old_key_stays_published_while_its_tokens_live,);

async fn keys_rotate_and_the_old_key_stays_published_while_its_tokens_live(db: Database) {
    let (p, app, mut jar, _) = setup(db).await;
    let (access, _) = app_tokens(&p, &mut jar, &app);
    let old_kid = jwt_part(&access, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_string();
    let kids = |server: &AppProcess| -> Vec<String> {
        let jwks: Value =
            serde_json::from_str(&server.get("/oauth2/jwks").expect("jwks").body).expect("json");
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| {
                let kty = match k["alg"].as_str() {
                    Some("RS256") => "RSA",
                    Some("ES256") => "EC",
                    Some("EdDSA") => "OKP",
                    _ => panic!("an unknown alg: {k}"),
                };
                assert_eq!(k["kty"], kty);
                assert!(k.get("d").is_none(), "no private part: {k}");
                k["kid"].as_str().expect("kid").to_string()
            })
            .collect()
    };
    let first = kids(&p.server);
    assert_eq!(first.len(), 3, "one key per algorithm: {first:?}");
    assert!(first.contains(&old_kid));
    let rotated = p.instance.cli(&["keys", "rotate", "--json"]).json_lines();
    let new_kids: Vec<String> = rotated[0]["kids"]
        .as_array()
        .expect("kids")
        .iter()
        .map(|k| k.as_str().expect("kid").to_string())
        .collect();
    assert_eq!(new_kids.len(), 3);
    assert_eq!(rotated[0]["kid"], new_kids[0].as_str(), "the RS256 one");
    // The access tokens' key is the ES256 one (the second).
    let new_kid = new_kids[1].clone();
    assert!(new_kids.iter().all(|k| !first.contains(k)));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let published = kids(&p.server);
    assert!(
        published.contains(&old_kid) && published.contains(&new_kid),
        "{published:?}"
    );
    assert_eq!(published.len(), 6, "old and new keys: {published:?}");
    // A server started now (behind the same public URL) signs with the new key; the
    // old token verifies everywhere.
    let sibling = p.instance.sibling().spawn_server_behind(&p.issuer());
    let p2 = Provider {
        instance: p.instance.clone(),
        server: Arc::new(sibling),
    };
    let (access2, _) = app_tokens(&p2, &mut jar, &app);
    assert_eq!(
        jwt_part(&access2, 0)["kid"].as_str(),
        Some(new_kid.as_str())
    );
    let r = p2.userinfo(&access);
    assert!(kids(&p2.server).contains(&old_kid));
    assert_eq!(
        r.status, 200,
        "the old key's token at the new server: {}",
        r.body
    );
    assert_eq!(
        p.userinfo(&access2).status,
        200,
        "the new key's token at the old server"
    );
    assert_eq!(p.userinfo(&access).status, 200);
}

#[tokio::test]
async fn clients_add_list_and_remove_from_the_command_line() {
    let (p, app, mut jar, _) = setup(Database::Sqlite).await;
    assert_eq!(app.id.len(), 22);
    assert_eq!(app.secret.as_deref().map(str::len), Some(43));
    // Only the secret's hash is stored.
    let db = std::fs::read(p.instance.dir.join("accounts.db")).expect("the SQLite file");
    let secret = app.secret.clone().expect("secret");
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is not stored"
    );
    // Bad registrations are refused with one line and exit 1, and store nothing.
    for bad in [
        vec!["--name", "X", "--redirect-uri", "http://app.example.com/cb"],
        vec![
            "--name",
            "X",
            "--redirect-uri",
            "https://app.example.com/cb#f",
        ],
        vec!["--name", "X", "--redirect-uri", "/relative"],
        vec!["--name", "", "--redirect-uri", "https://app.example.com/cb"],
        vec![
            "--name",
            "X",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--post-logout-uri",
            "javascript:x",
        ],
    ] {
        let mut args = vec!["clients", "add"];
        args.extend(bad.iter());
        let run = p.instance.cli(&args);
        assert_eq!(run.code, Some(1), "{args:?}: {} {}", run.stdout, run.stderr);
        run.refused();
    }
    let usage = p.instance.cli(&["clients", "add", "--name", "X"]);
    assert_eq!(usage.code, Some(2), "a usage error: {}", usage.stderr);
    let public = p.registered_app(
        "Phone app",
        &[
            "--public",
            "--redirect-uri",
            "http://127.0.0.1:8765/cb",
            "--post-logout-uri",
            "https://phone.example.com/bye",
        ],
    );
    assert_eq!(public.secret, None);
    let lines = p.instance.cli(&["clients", "list", "--json"]).json_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["client_id"], app.id.as_str());
    assert_eq!(lines[0]["name"], "Wiki");
    assert_eq!(lines[0]["public"], false);
    assert_eq!(lines[1]["public"], true);
    assert_eq!(
        lines[1]["redirect_uris"],
        serde_json::json!([REDIRECT, "http://127.0.0.1:8765/cb"])
    );
    assert_eq!(
        lines[1]["post_logout_uris"],
        serde_json::json!(["https://phone.example.com/bye"])
    );
    assert!(lines.iter().all(|l| l.get("client_secret").is_none()));
    let list = p.instance.cli(&["clients", "list"]);
    let out = list.ok();
    assert!(out.contains("Wiki") && out.contains("Phone app"), "{out}");
    // Removed: it can no longer get tokens or send anyone to sign in, and what it
    // holds ends: its access token at userinfo, its line on the devices page. Another
    // app's session of the same user lives on.
    let (s, tokens) = exchange(&p, &app, &code_for(&p, &mut jar, &app, "openid"), VERIFIER);
    assert_eq!(s, 200, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let other = p.registered_app("Calendar", &[]);
    let (s, kept) = exchange(
        &p,
        &other,
        &code_for(&p, &mut jar, &other, "openid"),
        VERIFIER,
    );
    assert_eq!(s, 200, "{kept}");
    let kept = kept["access_token"].as_str().expect("access").to_string();
    assert_eq!(p.userinfo(&access).status, 200);
    let devices = p.server.send(&mut jar, "GET", "/devices", None);
    assert!(devices.body.contains("Wiki") && devices.body.contains("Calendar"));
    let code_before = code_for(&p, &mut jar, &app, "openid");
    let removed = p.instance.cli(&["clients", "remove", &app.id, "--json"]);
    let removed = &removed.json_lines()[0];
    assert_eq!(removed["client_id"], app.id.as_str());
    assert_eq!(removed["sessions_ended"], 1, "{removed}");
    assert_eq!(p.userinfo(&access).status, 401);
    assert_eq!(p.userinfo(&kept).status, 200);
    let devices = p.server.send(&mut jar, "GET", "/devices", None);
    assert_eq!(devices.status, 200);
    assert!(!devices.body.contains("Wiki"), "{}", devices.body);
    assert!(devices.body.contains("Calendar"));
    let (s, v) = exchange(&p, &app, &code_before, VERIFIER);
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("invalid_client")),
        "{v}"
    );
    let r = p.server.send(
        &mut jar,
        "GET",
        &format!(
            "/oauth2/authorize?{}",
            auth_query(&app, "openid", VERIFIER, "s")
        ),
        None,
    );
    assert_eq!(r.status, 400);
    let again = p.instance.cli(&["clients", "remove", &app.id]);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
}

/// About one client id in 64 made before ids stopped starting with `-` does (base64url
/// of 16 random bytes): `latchkey clients remove` took it for an option, a usage error
/// (or, for `-h…`, the help). Such an app, stored as an older version stored it, is
/// removed by its id as printed, `--json` before or after it, and its sessions end.
#[tokio::test]
async fn an_app_whose_client_id_starts_with_a_hyphen_is_removed_from_the_command_line() {
    let p = Provider::start(Database::Sqlite).await;
    let accounts = p.instance.accounts().await;
    let secret = random_token();
    let legacy = ["-hLegacyAppA0123456789", "--jsonLegacyAppB012345"].map(|id| {
        assert_eq!(id.len(), 22);
        RegisteredApp {
            id: id.to_string(),
            secret: Some(secret.clone()),
        }
    });
    for (i, app) in legacy.iter().enumerate() {
        let record = ClientRecord {
            client_id: app.id.clone(),
            name: format!("Legacy {i}"),
            secret_hash: Some(sha256_hex(secret.as_bytes())),
            redirect_uris: vec![REDIRECT.to_string()],
            post_logout_uris: Vec::new(),
            created_at: unix_now() as i64 * 1000,
            id_token_signed_response_alg: "RS256".into(),
        };
        accounts.insert_client(&record).await.expect("stored");
    }
    let (mut jar, _) = p.signed_in_jar();
    let mut access = Vec::new();
    for app in &legacy {
        let (status, tokens) = exchange(&p, app, &code_for(&p, &mut jar, app, "openid"), VERIFIER);
        assert_eq!(status, 200, "{tokens}");
        access.push(tokens["access_token"].as_str().expect("access").to_string());
    }

    let first = p
        .instance
        .cli(&["clients", "remove", &legacy[0].id, "--json"]);
    let second = p
        .instance
        .cli(&["clients", "remove", "--json", &legacy[1].id]);

    for (run, app) in [(first, &legacy[0]), (second, &legacy[1])] {
        let lines = run.json_lines();
        assert_eq!(lines[0]["client_id"], app.id.as_str(), "{lines:?}");
        assert_eq!(lines[0]["sessions_ended"], 1, "{lines:?}");
    }
    for token in &access {
        assert_eq!(p.userinfo(token).status, 401, "its sessions ended");
    }
    assert!(p
        .instance
        .cli(&["clients", "list", "--json"])
        .json_lines()
        .is_empty());
    let again = p.instance.cli(&["clients", "remove", &legacy[0].id]);
    assert!(
        again.refused().contains("no app has the client id"),
        "{}",
        again.stderr
    );
}

#[tokio::test]
async fn discovery_names_every_endpoint_and_only_what_is_supported() {
    let p = Provider::start(Database::Sqlite).await;
    let r = p
        .server
        .get("/.well-known/openid-configuration")
        .expect("discovery");
    assert_eq!(r.status, 200);
    let d: Value = serde_json::from_str(&r.body).expect("json");
    let iss = p.issuer();
    assert_eq!(d["issuer"], iss.as_str());
    for (k, path) in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        ("userinfo_endpoint", "/oauth2/userinfo"),
        ("jwks_uri", "/oauth2/jwks"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("introspection_endpoint", "/oauth2/introspect"),
        ("end_session_endpoint", "/oauth2/logout"),
    ] {
        assert_eq!(d[k], format!("{iss}{path}"), "{k}");
    }
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        d["scopes_supported"],
        serde_json::json!(["openid", "email", "profile", "offline_access"])
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256", "EdDSA"])
    );
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    // Token endpoint errors are JSON, no-store, per RFC 6749 §5.2.
    for (body, error) in [
        (
            "grant_type=password&username=a&password=b",
            "unsupported_grant_type",
        ),
        ("code=x", "invalid_request"),
        (
            "grant_type=authorization_code&grant_type=authorization_code",
            "invalid_request",
        ),
        (
            "grant_type=authorization_code&code=x&client_id=nobody",
            "invalid_client",
        ),
    ] {
        let r = p.server.request(
            "POST",
            "/oauth2/token",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body,
        );
        let v: Value =
            serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("{body}: {}", r.body));
        assert_eq!(v["error"], error, "{body}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    let r = p.server.request(
        "POST",
        "/oauth2/token",
        &[("Content-Type", "application/json")],
        "{}",
    );
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn in_chromium_sign_in_and_consent_send_the_browser_back_to_the_app_with_a_code() {
    use crate::support::chromium::{
        self, click, expect_path, fill, submit, wait_for_app, Chromedriver,
    };
    let driver = Chromedriver::start();
    let latchkey = TestApp::new();
    let base = latchkey.serve().await;
    let (rp, calls) = rp_callback();
    let redirect = format!("http://127.0.0.1:{rp}/callback");
    let registered = latchkey.registered_app_at("Example app", &redirect, &[]);
    let client_id = registered.id;
    let client_secret = registered.secret.expect("a secret");
    let query = authorization_query(
        &client_id,
        &redirect,
        "openid email offline_access",
        VERIFIER,
        "chromium-state",
    );
    let authorize = format!("{base}/oauth2/authorize?{query}");
    let email = email();
    let c = driver.browser(None).await;
    chromium::register(&c, &base, &email).await;
    c.delete_all_cookies().await.expect("signed out");

    // Signed out: the app's link leads to the sign-in page, then to the consent page.
    c.goto(&authorize).await.expect("goto");
    expect_path(&c, "/login").await;
    fill(&c, "email", &email).await;
    fill(&c, "password", PASSWORD).await;
    submit(&c).await;
    expect_path(&c, "/oauth2/authorize").await;
    let page = chromium::text(&c).await;
    assert!(
        page.contains("Example app wants to use your account"),
        "{page}"
    );
    assert!(page.contains("Your email address"), "{page}");
    chromium::shoot(&c, "consent").await;

    // Allow: the form's 303 takes Chromium to the app (form-action allows its origin).
    click(&c, "button[value=allow]").await;
    let at = wait_for_app(&c, rp).await;
    assert_eq!(at.path(), "/callback");
    let q: Vec<(String, String)> = at.query_pairs().into_owned().collect();
    assert!(
        q.iter().any(|(k, v)| k == "state" && v == "chromium-state"),
        "{at}"
    );
    let code = q
        .iter()
        .find_map(|(k, v)| (k == "code").then(|| v.clone()))
        .expect("a code");
    let line = calls
        .recv_timeout(ANSWER_WITHIN)
        .expect("the app was called");
    assert!(line.starts_with("GET /callback?code="), "{line}");

    // The code works at the token endpoint.
    let body = encode(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &redirect),
        ("code_verifier", VERIFIER),
        ("client_id", &client_id),
        ("client_secret", &client_secret),
    ]);
    let reply = post_form_to_served(&base, "/oauth2/token", body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("\"id_token\""), "{}", reply.body);

    // Consent remembered: after signing in again, the sign-in form's redirect chain
    // ends at the app without a consent page.
    c.delete_all_cookies().await.expect("signed out");
    c.goto(&authorize).await.expect("goto");
    expect_path(&c, "/login").await;
    fill(&c, "email", &email).await;
    fill(&c, "password", PASSWORD).await;
    let button = c
        .find(fantoccini::Locator::Css("form.form button[type=submit]"))
        .await
        .expect("button");
    button.click().await.expect("click");
    let at = wait_for_app(&c, rp).await;
    assert!(at.query_pairs().any(|(k, _)| k == "code"), "{at}");
}

#[tokio::test]
async fn the_sign_in_page_lets_its_form_end_only_at_a_registered_apps_origin() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let csp_of = |next: &str| {
        let r = p
            .server
            .get(&format!("/login?next={}", urlencode(next)))
            .expect("page");
        assert_eq!(r.status, 200);
        r.header("content-security-policy")
            .expect("CSP")
            .to_string()
    };
    let good = format!(
        "/oauth2/authorize?{}",
        auth_query(&app, "openid", VERIFIER, "s")
    );
    assert!(
        csp_of(&good).contains("form-action 'self' http://localhost:9;"),
        "{}",
        csp_of(&good)
    );
    for next in [
        // Not registered for this client, or no client at all: 'self' only.
        good.replace("localhost%3A9", "evil.example"),
        format!(
            "/oauth2/authorize?client_id={}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            app.id
        ),
        "/oauth2/authorize?client_id=nobody&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fcallback"
            .to_string(),
        "/devices".to_string(),
    ] {
        let csp = csp_of(&next);
        assert!(csp.contains("form-action 'self';"), "{next}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}

#[tokio::test]
async fn id_token_hints_and_app_refresh_tokens_are_read_back_for_the_other_endpoints() {
    use crate::support::oidc::{claims, grants, keys::Alg};
    let app = TestApp::new();
    let settings = Settings::from_figment(&app.figment()).expect("settings");
    let accounts = app.accounts().await;
    let keyring = Keyring::open(accounts, &settings).await.expect("keyring");
    let sid = sid_for(&random_token());
    let id = claims::IdClaims {
        iss: "https://login.example.com".into(),
        sub: uuid::Uuid::now_v7(),
        aud: "client-1".into(),
        // Long expired: a hint may be.
        exp: 1,
        iat: 0,
        auth_time: 0,
        nonce: None,
        amr: vec!["pwd".into()],
        sid: sid.clone(),
        email: None,
        email_verified: None,
    };
    // Every algorithm a client may register signs a hint we read back.
    for alg in Alg::ALL {
        let token = keyring.sign(alg, "JWT", &id).await.expect("signed");
        let back = claims::verify_id_token_hint(&keyring, "https://login.example.com", &token)
            .await
            .unwrap_or_else(|e| panic!("our {alg:?} id_token: {e}"));
        assert_eq!(back.sid, sid);
    }
    let token = keyring.sign(Alg::Rs256, "JWT", &id).await.expect("signed");
    let back = claims::verify_id_token_hint(&keyring, "https://login.example.com", &token)
        .await
        .expect("our id_token");
    assert_eq!(
        (back.sub, back.sid, back.aud),
        (id.sub, sid, id.aud.clone())
    );
    assert!(
        claims::verify_id_token_hint(&keyring, "https://other.example.com", &token)
            .await
            .is_err()
    );
    let tampered = format!("{token}A");
    assert!(
        claims::verify_id_token_hint(&keyring, "https://login.example.com", &tampered)
            .await
            .is_err()
    );
    let none = forge(
        &serde_json::json!({"alg": "none"}),
        &serde_json::to_value(&id).expect("json"),
        None,
    );
    assert!(
        claims::verify_id_token_hint(&keyring, "https://login.example.com", &none)
            .await
            .is_err()
    );
    // An app refresh token: its scopes, and a hash that differs per client.
    let secret = random_token();
    let user = uuid::Uuid::now_v7();
    let rt = format!("{user}.{}.{secret}.oef", sid_for(&secret));
    let (parsed, scope, hash) = grants::parse_app_refresh("client-1", &rt).expect("ours");
    assert_eq!(parsed.user_id, user);
    assert_eq!(scope, "openid email offline_access");
    let (_, _, other) = grants::parse_app_refresh("client-2", &rt).expect("ours");
    assert_ne!(hash, other);
    assert!(grants::parse_app_refresh("client-1", &format!("{rt}x")).is_none());
    assert!(grants::parse_app_refresh("client-1", "nonsense").is_none());
}

/// Signs `email` in on the sign-in page at `login` (where authorize sent the browser):
/// the form is shown, taken, and sends the browser back to authorize; answers that URL.
fn sign_in_on_page(p: &Provider, jar: &mut Jar, login: &str, email: &str) -> String {
    let r = p.server.password_step(jar, login, email);
    assert_eq!(r.status, 303, "{}", r.body);
    let back = r.location().expect("back").to_string();
    assert!(back.starts_with("/oauth2/authorize?"), "{back}");
    back
}
