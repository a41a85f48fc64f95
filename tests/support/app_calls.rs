//! What an app's server sends to the provider (`Provider`), shared by the tests of an
//! app's access and of its attacks: a call as a client authenticates (`As`: Basic, the
//! form, or nobody), revocation, an app's tokens through a signed-in browser, a field
//! of a JSON answer, and RP-initiated logout's set-up and path.

use serde_json::Value;

use super::{
    basic_credentials, code_for, encode, exchange, Jar, Provider, RegisteredApp, Reply, REDIRECT,
    VERIFIER,
};

/// Where a logout may send the browser back to (`logout_setup`'s app registers it).
pub const BYE: &str = "http://localhost:9/signed-out";

/// How a client authenticates at the token, revocation and introspection endpoints.
#[derive(Clone, Copy)]
pub enum As<'a> {
    /// `Authorization: Basic` (client_secret_basic).
    Basic(&'a RegisteredApp),
    /// `client_id` (and `client_secret` when it has one) in the form.
    Form(&'a RegisteredApp),
    Nobody,
}

/// POST `path` with `pairs` as `who`: (status, JSON body or Null, the reply).
pub fn ask(p: &Provider, path: &str, who: As<'_>, pairs: &[(&str, &str)]) -> (u16, Value, Reply) {
    let mut pairs = pairs.to_vec();
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    let basic;
    match who {
        As::Basic(app) => {
            basic = basic_credentials(app);
            headers.push(("Authorization", &basic));
        }
        As::Form(app) => {
            pairs.push(("client_id", &app.id));
            if let Some(secret) = &app.secret {
                pairs.push(("client_secret", secret));
            }
        }
        As::Nobody => {}
    }
    let r = p.server.request("POST", path, &headers, &encode(&pairs));
    let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, v, r)
}

/// `POST /oauth2/revoke` of `token` as `who`.
pub fn revoke(p: &Provider, who: As<'_>, token: &str) -> (u16, Value, Reply) {
    ask(p, "/oauth2/revoke", who, &[("token", token)])
}

/// A signed-in browser (its jar, the account's email) and an app's tokens for it.
pub fn signed_in_app(p: &Provider, app: &RegisteredApp, scope: &str) -> (Jar, String, Value) {
    let (mut jar, email) = p.signed_in_jar();
    let tokens = tokens_for(p, &mut jar, app, scope);
    (jar, email, tokens)
}

/// An app's tokens through a signed-in `jar` (consent given).
pub fn tokens_for(p: &Provider, jar: &mut Jar, app: &RegisteredApp, scope: &str) -> Value {
    let code = code_for(p, jar, app, scope);
    let (status, tokens) = if app.secret.is_some() {
        exchange(p, app, &code, VERIFIER)
    } else {
        let (s, v, _) = ask(
            p,
            "/oauth2/token",
            As::Form(app),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        );
        (s, v)
    };
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// The string `name` of a JSON answer (panics, naming it, when missing).
pub fn field(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {v}"))
        .to_string()
}

/// The status `/oauth2/userinfo` answers to the access token `access`.
pub fn userinfo_status(p: &Provider, access: &str) -> u16 {
    p.userinfo(access).status
}

/// An app that may send users back to `BYE` after signing out, a signed-in browser,
/// and the app's tokens (with an id_token) for that account.
pub fn logout_setup(p: &Provider) -> (RegisteredApp, Jar, Value) {
    let app = p.registered_app("Wiki", &["--post-logout-uri", BYE]);
    let (jar, _, tokens) = signed_in_app(p, &app, "openid email offline_access");
    (app, jar, tokens)
}

/// `/oauth2/logout` with `pairs` as its query.
pub fn logout_path(pairs: &[(&str, &str)]) -> String {
    format!("/oauth2/logout?{}", encode(pairs))
}
