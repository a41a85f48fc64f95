//! The same client as a program uses the JSON API: curl's user agent from its own IP,
//! Bearer tokens, form or JSON bodies; and the assertions every API answer must meet.

use std::collections::BTreeSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::{ContentType, Header, Method, Status};
use serde_json::Value;

use super::{encode, page, Browser, Hasher, Page, PASSWORD};

/// The default `public_url`, which is the tokens' issuer.
pub const ISSUER: &str = "http://localhost:8000";
/// Where API requests come from (the browser has its own address).
pub const API_IP: &str = "198.51.100.20";

impl Page {
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }

    pub fn str(&self, field: &str) -> String {
        self.json[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} in {}", self.body))
            .to_string()
    }

    /// An error answer in the contract's shape, never an HTML page.
    pub fn assert_json_error(&self, status: Status, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.error(), code, "{}", self.body);
        assert!(self.json["error_description"].is_string(), "{}", self.body);
        assert!(
            self.header("Content-Type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{:?}",
            self.headers
        );
    }

    /// A 401 from the Bearer guard: JSON and a Bearer challenge.
    pub fn assert_refused_token(&self) {
        self.assert_json_error(Status::Unauthorized, "invalid_token");
        let challenge = self.header("WWW-Authenticate").unwrap_or("");
        assert!(challenge.starts_with("Bearer "), "{challenge:?}");
    }
}

pub fn api_remote() -> std::net::SocketAddr {
    format!("{API_IP}:50000").parse().expect("socket address")
}

/// Any request to the app, as an API client (curl) sends it, on this browser's client.
pub async fn request(
    b: &Browser,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<(ContentType, Vec<u8>)>,
) -> Page {
    let mut req = b
        .client
        .req(method, path.to_string())
        .remote(api_remote())
        .header(Header::new("User-Agent", "curl/8.5.0"));
    if let Some(a) = authorization {
        req = req.header(Header::new("Authorization", a.to_string()));
    }
    if let Some((ct, bytes)) = body {
        req = req.header(ct).body(bytes);
    }
    page(req.dispatch().await).await
}

pub async fn bearer(b: &Browser, method: Method, path: &str, access: &str) -> Page {
    request(b, method, path, Some(&format!("Bearer {access}")), None).await
}

pub async fn token_form(b: &Browser, pairs: &[(&str, &str)]) -> Page {
    let body = encode(pairs).into_bytes();
    request(
        b,
        Method::Post,
        "/api/v1/token",
        None,
        Some((ContentType::Form, body)),
    )
    .await
}

pub async fn token_json(b: &Browser, body: &Value) -> Page {
    request(
        b,
        Method::Post,
        "/api/v1/token",
        None,
        Some((ContentType::JSON, body.to_string().into_bytes())),
    )
    .await
}

/// The tokens of a successful grant.
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

impl Tokens {
    pub fn from(r: &Page) -> Tokens {
        assert_eq!(r.status, Status::Ok, "{}", r.body);
        Tokens {
            access: r.str("access_token"),
            refresh: r.str("refresh_token"),
            session_id: r.str("session_id"),
        }
    }
}

/// One password-grant request with exactly these credentials.
pub async fn password_attempt(b: &Browser, email: &str, password: &str) -> Page {
    token_form(
        b,
        &[
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
        ],
    )
    .await
}

pub async fn password_grant(b: &Browser, email: &str, client_name: Option<&str>) -> Tokens {
    let mut pairs = vec![
        ("grant_type", "password"),
        ("username", email),
        ("password", PASSWORD),
    ];
    if let Some(c) = client_name {
        pairs.push(("client_name", c));
    }
    Tokens::from(&token_form(b, &pairs).await)
}

pub async fn refresh(b: &Browser, refresh_token: &str) -> Page {
    token_form(
        b,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// Part `i` of a JWT (0: the header, 1: the claims) as JSON, read without checking
/// anything.
pub fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("a JWT part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// The operations an OpenAPI description describes: (path, method in lower case).
pub fn described_operations(spec: &Value) -> BTreeSet<(String, String)> {
    spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect()
}

/// Every `$ref` in the OpenAPI description `text` (parsed: `spec`) points at something
/// that exists in it.
pub fn assert_refs_resolve(text: &str, spec: &Value) {
    for (i, _) in text.match_indices("\"$ref\": \"#/") {
        let rest = &text[i + "\"$ref\": \"".len()..];
        let target = &rest[..rest.find('"').expect("closing quote")];
        let found = target
            .trim_start_matches("#/")
            .split('/')
            .try_fold(spec, |v, part| v.get(part));
        assert!(found.is_some(), "dangling {target}");
    }
}

/// The right password of `email` gets exactly what a wrong one gets, after the same
/// Argon2 work (one verification), on the sign-in page and at the token endpoint, and
/// starts no session: how a disabled account answers.
pub async fn assert_the_right_password_answers_as_a_wrong_one(b: &Browser, email: &str) {
    let wrong_password = "not the password at all";
    let hasher = b.state::<Hasher>();
    let before = hasher.verifications();
    let right = b.login(email, PASSWORD).await;
    assert_eq!(
        hasher.verifications() - before,
        1,
        "one Argon2 verification"
    );
    let wrong = b.login(email, wrong_password).await;
    assert_eq!(right.status, Status::Unauthorized);
    assert_eq!(
        right.body.replace(PASSWORD, ""),
        wrong.body.replace(wrong_password, "")
    );
    assert!(b.session_cookie().is_none());
    let grant = password_attempt(b, email, PASSWORD).await;
    let wrong_grant = password_attempt(b, email, wrong_password).await;
    assert_eq!(
        (grant.status, &grant.json),
        (wrong_grant.status, &wrong_grant.json)
    );
}
