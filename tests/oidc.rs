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

use crate::common::*;

const REDIRECT: &str = "http://localhost:9/callback";

/// A provider: the server binary on its own database and key prefix.
pub(crate) struct Provider {
    pub cfg: TestConfig,
    pub server: Arc<AppProcess>,
}

/// One run of `latchkey ARGS…` with the provider's settings.
pub(crate) fn cli(cfg: &TestConfig, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(cfg.env())
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A registered app: its id and secret (none for a public client).
#[derive(Clone)]
pub(crate) struct App {
    pub id: String,
    pub secret: Option<String>,
}

impl Provider {
    pub async fn start(database: Database) -> Provider {
        let port = process_port();
        let cfg = TestConfig::on(database).await.served_at(port);
        let server = cfg.spawn_server();
        Provider {
            cfg,
            server: Arc::new(server),
        }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    pub fn add_app(&self, name: &str, extra: &[&str]) -> App {
        let mut args = vec!["clients", "add", "--name", name, "--redirect-uri", REDIRECT];
        args.extend_from_slice(extra);
        let (code, out, err) = cli(&self.cfg, &args);
        assert_eq!(code, Some(0), "{err}");
        let v: Value = serde_json::from_str(out.trim()).expect("one JSON line");
        App {
            id: v["client_id"].as_str().expect("client_id").to_string(),
            secret: v["client_secret"].as_str().map(str::to_string),
        }
    }

    /// A new account, signed in in `jar`.
    pub fn account(&self, jar: &mut Jar, email: &str) {
        let r = self.server.submit(
            jar,
            "/register",
            "/register",
            &[("email", email), ("password", PASSWORD)],
        );
        assert_eq!(r.status, 303, "{}", r.body);
    }

    /// Follows the browser through `/oauth2/authorize?query`: the consent page is
    /// allowed when shown; answers the final redirect to the app.
    pub fn authorize(&self, jar: &mut Jar, query: &str) -> Reply {
        let path = format!("/oauth2/authorize?{query}");
        let r = self.server.send(jar, "GET", &path, None);
        if r.status != 200 {
            return r;
        }
        assert!(r.body.contains("wants to use your account"), "{}", r.body);
        self.consent(jar, &r.body, "allow")
    }

    /// Answers the consent page `html` with `decision`.
    pub fn consent(&self, jar: &mut Jar, html: &str, decision: &str) -> Reply {
        let mut fields = hidden_fields(html);
        fields.push(("decision".into(), decision.into()));
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.server
            .send(jar, "POST", "/oauth2/authorize", Some(&encode(&pairs)))
    }

    /// POST /oauth2/token with `pairs` (form) and optional Basic credentials.
    pub fn token(&self, app: Option<&App>, pairs: &[(&str, &str)]) -> (u16, Value, Reply) {
        let basic = app.map(|a| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    a.id,
                    a.secret.clone().unwrap_or_default()
                ))
            )
        });
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(b) = &basic {
            headers.push(("Authorization", b));
        }
        let r = self
            .server
            .request("POST", "/oauth2/token", &headers, &encode(pairs));
        let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        (r.status, v, r)
    }

    pub fn userinfo(&self, access: &str) -> Reply {
        let auth = format!("Bearer {access}");
        self.server
            .request("GET", "/oauth2/userinfo", &[("Authorization", &auth)], "")
    }
}

fn process_port() -> u16 {
    spare_port()
}

/// The consent form's hidden fields (`csrf_token`, `req.*`), HTML-unescaped.
pub(crate) fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.split_once("value=\"")?.1.split_once('"')?.0;
            Some((name.to_string(), unescape(value)))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The query parameters of a redirect to the app.
pub(crate) fn params(location: &str) -> Vec<(String, String)> {
    let url = url::Url::parse(location).expect("an absolute redirect");
    url.query_pairs().into_owned().collect()
}

pub(crate) fn param(location: &str, name: &str) -> Option<String> {
    params(location)
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// An authorization request's query (PKCE S256 with `verifier`).
pub(crate) fn auth_query(app: &App, scope: &str, verifier: &str, state: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(verifier));
    encode(&[
        ("response_type", "code"),
        ("client_id", &app.id),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", state),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ])
}

pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A code for `app` through a signed-in `jar` (consent given if asked).
pub(crate) fn code_for(p: &Provider, jar: &mut Jar, app: &App, scope: &str) -> String {
    let r = p.authorize(jar, &auth_query(app, scope, VERIFIER, "st4te"));
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.location().expect("a redirect").to_string();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("st4te"));
    param(&loc, "code").expect("a code")
}

pub(crate) fn exchange(p: &Provider, app: &App, code: &str, verifier: &str) -> (u16, Value) {
    let (s, v, _) = p.token(
        Some(app),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    );
    (s, v)
}

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
    let app = p.add_app("Grafana", &[]);
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
    let email = format!("{}@example.com", unique("rp"));
    {
        let mut reg = Jar::default();
        p.account(&mut reg, &email);
    }
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
    let csp = header(&consent, "content-security-policy").expect("CSP");
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
