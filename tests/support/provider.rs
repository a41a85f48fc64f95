//! The app as an OpenID Connect provider, served by the real binary (`Provider`), and
//! what a relying party does with it: the authorization request (PKCE S256), consent,
//! the code exchanged at the token endpoint, refresh, userinfo, and a tiny app of its
//! own whose callback a browser can reach (`rp_callback`).

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;

use super::{
    email, encode, encode_owned, spare_port, unescape, AppProcess, Database, Jar, RegisteredApp,
    Reply, TestApp,
};

/// Where a registered app's codes go (nothing listens there: the tests read the
/// redirect).
pub const REDIRECT: &str = "http://localhost:9/callback";
/// The PKCE verifier of the tests' authorization requests.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A provider: the server binary on its own database and key prefix.
pub struct Provider {
    pub instance: TestApp,
    pub server: Arc<AppProcess>,
}

impl Provider {
    pub async fn start(database: Database) -> Provider {
        Provider::start_with(database, |app| app).await
    }

    /// A provider whose settings `adjust` changes first.
    pub async fn start_with(
        database: Database,
        adjust: impl FnOnce(TestApp) -> TestApp,
    ) -> Provider {
        let instance = adjust(TestApp::on(database).await.served_at(spare_port()));
        let server = instance.spawn_server();
        Provider {
            instance,
            server: Arc::new(server),
        }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    /// An app registered with the provider (`TestApp::registered_app`).
    pub fn registered_app(&self, name: &str, extra: &[&str]) -> RegisteredApp {
        self.instance.registered_app(name, extra)
    }

    /// A new account, signed in in a new jar: the jar and the address.
    pub fn signed_in_jar(&self) -> (Jar, String) {
        let mut jar = Jar::default();
        let email = email();
        self.server.register(&mut jar, &email);
        (jar, email)
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
        self.server.send(
            jar,
            "POST",
            "/oauth2/authorize",
            Some(&encode_owned(&fields)),
        )
    }

    /// POST /oauth2/token with `pairs` (form) and optional Basic credentials.
    pub fn token(
        &self,
        app: Option<&RegisteredApp>,
        pairs: &[(&str, &str)],
    ) -> (u16, Value, Reply) {
        let basic = app.map(basic_credentials);
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(b) = &basic {
            headers.push(("Authorization", b));
        }
        let r = self
            .server
            .request("POST", "/oauth2/token", &headers, &encode(pairs));
        (r.status, r.json(), r)
    }

    pub fn userinfo(&self, access: &str) -> Reply {
        let auth = format!("Bearer {access}");
        self.server
            .request("GET", "/oauth2/userinfo", &[("Authorization", &auth)], "")
    }
}

/// `Authorization: Basic` with the app's id and secret (client_secret_basic).
pub fn basic_credentials(app: &RegisteredApp) -> String {
    let pair = format!("{}:{}", app.id, app.secret.clone().unwrap_or_default());
    format!("Basic {}", STANDARD.encode(pair))
}

/// The consent form's hidden fields (`csrf_token`, `req.*`), HTML-unescaped.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.split_once("value=\"")?.1.split_once('"')?.0;
            Some((name.to_string(), unescape(value)))
        })
        .collect()
}

/// The query parameters of a redirect to the app.
pub fn params(location: &str) -> Vec<(String, String)> {
    let url = url::Url::parse(location).expect("an absolute redirect");
    url.query_pairs().into_owned().collect()
}

pub fn param(location: &str, name: &str) -> Option<String> {
    params(location)
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The S256 PKCE challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(verifier))
}

/// An authorization request's query for `app` to [`REDIRECT`] (PKCE S256 with
/// `verifier`).
pub fn auth_query(app: &RegisteredApp, scope: &str, verifier: &str, state: &str) -> String {
    authorization_query(&app.id, REDIRECT, scope, verifier, state)
}

/// An authorization request's query for the client `client_id` to `redirect`.
pub fn authorization_query(
    client_id: &str,
    redirect: &str,
    scope: &str,
    verifier: &str,
    state: &str,
) -> String {
    encode(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("scope", scope),
        ("state", state),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", &pkce_challenge(verifier)),
        ("code_challenge_method", "S256"),
    ])
}

/// A code for `app` through a signed-in `jar` (consent given if asked).
pub fn code_for(p: &Provider, jar: &mut Jar, app: &RegisteredApp, scope: &str) -> String {
    let r = p.authorize(jar, &auth_query(app, scope, VERIFIER, "st4te"));
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.location().expect("a redirect").to_string();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("st4te"));
    param(&loc, "code").expect("a code")
}

/// The code exchanged at the token endpoint by `app` (Basic credentials).
pub fn exchange(p: &Provider, app: &RegisteredApp, code: &str, verifier: &str) -> (u16, Value) {
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

/// The app's refresh grant with `refresh_token` (Basic credentials).
pub fn refresh_grant(p: &Provider, app: &RegisteredApp, refresh_token: &str) -> (u16, Value) {
    let (s, v, _) = p.token(
        Some(app),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    );
    (s, v)
}

/// A tiny relying party's callback: answers every request with a page and reports
/// each request line.
pub fn rp_callback() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let line = head.lines().next().unwrap_or("").to_string();
            if line.starts_with("GET /favicon") {
                let _ = s.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            // Reported before it is answered: a test that sees the browser at the app
            // finds the request already there.
            let reported = tx.send(line).is_ok();
            let body =
                "<!doctype html><title>Example app</title><h1>Signed in to the example app</h1>";
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            if !reported {
                break;
            }
        }
    });
    (port, rx)
}
