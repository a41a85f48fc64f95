//! What a form route accepts, as a cross-site attacker would probe it: only a form
//! (url-encoded or multipart) carrying this client's CSRF token, and no bigger than the
//! form limit. Anything else is refused before the route runs and changes nothing.

use crate::support::*;
use rocket::http::{ContentType, Status};
use serde_json::{Map, Value};

const BOUNDARY: &str = "----latchkeytestboundary";

/// A request body as an attacker's page or script could send it.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// `<form enctype="text/plain">`: `name=value` lines, the right token included.
    TextPlain,
    /// `multipart/form-data` without a `csrf_token` field.
    MultipartWithoutToken,
    /// `multipart/form-data` with a token that is not this client's.
    MultipartWrongToken,
    /// `fetch(.., {body: JSON})`, the right token included.
    Json,
    /// A url-encoded body, the right token included, but no `Content-Type` at all.
    NoContentType,
    /// A url-encoded form without a `csrf_token` field.
    FormWithoutToken,
    /// A url-encoded form with a token that is not this client's.
    FormWrongToken,
}

const BODIES: [Body; 7] = [
    Body::TextPlain,
    Body::MultipartWithoutToken,
    Body::MultipartWrongToken,
    Body::Json,
    Body::NoContentType,
    Body::FormWithoutToken,
    Body::FormWrongToken,
];

fn multipart(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    body.into_bytes()
}

fn multipart_type() -> ContentType {
    ContentType::new("multipart", "form-data").with_params(("boundary", BOUNDARY))
}

impl Body {
    /// The body and its content type, for `fields` and the client's right `token`.
    fn build(self, fields: &[(&str, &str)], token: &str) -> (Option<ContentType>, Vec<u8>) {
        let with = |t: &'static str| -> Vec<(&str, &str)> {
            let mut all = fields.to_vec();
            all.push(("csrf_token", t));
            all
        };
        let mut right = fields.to_vec();
        right.push(("csrf_token", token));
        match self {
            Body::TextPlain => {
                let text: String = right.iter().map(|(k, v)| format!("{k}={v}\r\n")).collect();
                (Some(ContentType::Plain), text.into_bytes())
            }
            Body::MultipartWithoutToken => (Some(multipart_type()), multipart(fields)),
            Body::MultipartWrongToken => (Some(multipart_type()), multipart(&with("forged"))),
            Body::Json => {
                let map: Map<String, Value> = right
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::from(*v)))
                    .collect();
                (
                    Some(ContentType::JSON),
                    Value::Object(map).to_string().into_bytes(),
                )
            }
            Body::NoContentType => (None, encode(&right).into_bytes()),
            Body::FormWithoutToken => (Some(ContentType::Form), encode(fields).into_bytes()),
            Body::FormWrongToken => (
                Some(ContentType::Form),
                encode(&with("forged")).into_bytes(),
            ),
        }
    }
}

#[tokio::test]
async fn every_form_route_refuses_what_is_not_its_own_form_and_changes_nothing() {
    let app = TestApp::new();
    let (me, email) = app.signed_in_browser().await;
    let phone = app.browser().await.with_agent(SAFARI_IOS);
    phone.login(&email, PASSWORD).await;
    // A browser whose session has ended: signed out, but still holding its cookie.
    let stale = app.browser().await.with_agent(CHROME_WINDOWS);
    stale.login(&email, PASSWORD).await;
    let stale_cookie = stale.session_cookie().expect("a cookie");
    let stale_sid = stale.sid();
    let token = me.get("/devices").await.csrf();
    me.post_form(&format!("/devices/{stale_sid}/revoke"), &token, &[])
        .await;
    assert!(!stale.is_signed_in().await);
    // A reset code that would work, asked for the ordinary way.
    app.browser().await.ask_for_reset_code(&email).await;
    let code = wait_for_reset_code(&app.outbox()).await;

    let my_cookie = me.session_cookie().expect("a cookie");
    let my_sid = me.sid();
    let phone_sid = phone.sid();
    let newcomer = format!("new-{}", self::email());
    let routes: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/login".into(),
            vec![("email", &email), ("password", PASSWORD)],
        ),
        (
            "/register".into(),
            vec![("email", &newcomer), ("password", PASSWORD)],
        ),
        ("/logout".into(), vec![]),
        (format!("/devices/{phone_sid}/revoke"), vec![]),
        (format!("/devices/{my_sid}/revoke"), vec![]),
        ("/devices/revoke-others".into(), vec![]),
        (
            "/account/password".into(),
            vec![
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        ),
        ("/password/forgot".into(), vec![("email", &email)]),
        (
            "/account/totp".into(),
            vec![("code", "123456"), ("current_password", PASSWORD)],
        ),
        (
            "/account/totp/disable".into(),
            vec![("code", "123456"), ("current_password", PASSWORD)],
        ),
        (
            "/account/recovery-codes".into(),
            vec![("current_password", PASSWORD)],
        ),
        (
            "/login/second-factor".into(),
            vec![("code", "123456"), ("remember", "on")],
        ),
        (
            "/account/email".into(),
            vec![("new_email", &newcomer), ("current_password", PASSWORD)],
        ),
        ("/account/email/confirm".into(), vec![("code", "123456")]),
        (
            "/account/delete".into(),
            vec![
                ("current_password", PASSWORD),
                ("confirm", "delete my account"),
            ],
        ),
        ("/oauth2/authorize".into(), vec![("decision", "allow")]),
        ("/oauth2/logout".into(), vec![]),
        (
            "/password/reset".into(),
            vec![
                ("email", &email),
                ("code", &code),
                ("new_password", NEW_PASSWORD),
            ],
        ),
    ];

    let signed_in_token = me.get("/devices").await.csrf();
    let signed_out_token = stale.get("/login").await.csrf();
    for (who, b, token) in [
        ("signed in", &me, &signed_in_token),
        ("signed out", &stale, &signed_out_token),
    ] {
        for (path, fields) in &routes {
            for body in BODIES {
                let (ct, bytes) = body.build(fields, token);
                let res = b.post_body(path, ct, bytes).await;
                assert!(
                    [Status::Forbidden, Status::UnsupportedMediaType].contains(&res.status),
                    "{who} {body:?} to {path}: {} {:?}",
                    res.status,
                    res.location
                );
                assert!(
                    res.set_cookies().is_empty(),
                    "{who} {body:?} to {path} touched cookies: {:?}",
                    res.set_cookies()
                );
            }
        }
    }

    // Nothing changed: both live sessions live, the stale cookie is still there, the
    // password and the code still work, no account was made, no second mail was sent.
    assert!(me.is_signed_in().await);
    assert_eq!(me.session_cookie(), Some(my_cookie));
    assert!(phone.is_signed_in().await);
    assert_eq!(stale.session_cookie(), Some(stale_cookie));
    assert_eq!(
        app.browser().await.login(&newcomer, PASSWORD).await.status,
        Status::Unauthorized
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        reset_mails(&app.outbox()).len(),
        1,
        "only the code asked for"
    );
    let reset = app
        .browser()
        .await
        .reset_password(&email, &code, NEW_PASSWORD)
        .await;
    assert_eq!(reset.status, Status::SeeOther, "the code was still unused");
}

#[tokio::test]
async fn a_multipart_form_with_its_token_is_still_a_form() {
    let app = TestApp::new();
    let email = app.account().await;
    let b = app.browser().await;
    let token = b.get("/login").await.csrf();
    let signed_in = b
        .post_body(
            "/login",
            Some(multipart_type()),
            multipart(&[
                ("email", &email),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ]),
        )
        .await;
    assert_eq!(signed_in.status, Status::SeeOther);
    assert!(b.is_signed_in().await);

    let token = b.get("/devices").await.csrf();
    let out = b
        .post_body(
            "/logout",
            Some(multipart_type()),
            multipart(&[("csrf_token", &token)]),
        )
        .await;
    assert_eq!(out.status, Status::SeeOther);
    assert!(!b.is_signed_in().await);
}

#[tokio::test]
async fn a_signed_out_browser_with_its_own_token_may_drop_a_stale_cookie() {
    let app = TestApp::new();
    let (b, _) = app.signed_in_browser().await;
    let token = b.get("/devices").await.csrf();
    let sid = b.sid();
    let other = app.browser().await;
    other
        .set_session_cookie(&b.session_cookie().expect("cookie"))
        .await;
    // The session ends elsewhere; the browser now shows signed-out pages.
    b.post_form(&format!("/devices/{sid}/revoke"), &token, &[])
        .await;
    let token = other.get("/login").await.csrf();

    let res = other.post_form("/logout", &token, &[]).await;

    assert_eq!(res.status, Status::SeeOther);
    assert_eq!(res.location.as_deref(), Some("/login"));
    assert!(other.session_cookie().is_none());
}

/// Fields of a sign-in form padded to `size` bytes with an unknown field.
fn padded(email: &str, token: &str, size: usize) -> Vec<(String, String)> {
    vec![
        ("csrf_token".into(), token.into()),
        ("email".into(), email.into()),
        ("password".into(), "not the password".into()),
        ("pad".into(), "x".repeat(size)),
    ]
}

#[tokio::test]
async fn a_form_over_the_limit_is_refused_url_encoded_or_multipart() {
    let app = TestApp::new();
    let email = app.account().await;
    let b = app.browser().await;
    let token = b.get("/login").await.csrf();

    for size in [40 * 1024, 200 * 1024, 1536 * 1024] {
        let fields = padded(&email, &token, size);
        let url_encoded = b
            .post_body(
                "/login",
                Some(ContentType::Form),
                encode(&borrowed(&fields)).into_bytes(),
            )
            .await;
        let multi = b
            .post_body(
                "/login",
                Some(multipart_type()),
                multipart(&borrowed(&fields)),
            )
            .await;
        assert_eq!(
            url_encoded.status,
            Status::PayloadTooLarge,
            "{size} url-encoded"
        );
        assert_eq!(multi.status, Status::PayloadTooLarge, "{size} multipart");
    }
    // Under the limit, the same multipart form is read (and the password is wrong).
    let fields = padded(&email, &token, 16 * 1024);
    let small = b
        .post_body(
            "/login",
            Some(multipart_type()),
            multipart(&borrowed(&fields)),
        )
        .await;
    assert_eq!(small.status, Status::Unauthorized);
}

#[tokio::test]
async fn the_token_endpoint_refuses_big_bodies_whatever_their_type() {
    let app = TestApp::new();
    let b = app.browser().await;
    let pad = "x".repeat(40 * 1024);
    let fields = [
        ("grant_type", "password"),
        ("username", "someone@example.com"),
        ("password", "not the password"),
        ("pad", pad.as_str()),
    ];
    let json: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let bodies = [
        (ContentType::Form, encode(&fields).into_bytes()),
        (multipart_type(), multipart(&fields)),
        (
            ContentType::JSON,
            Value::Object(json).to_string().into_bytes(),
        ),
        (ContentType::Plain, pad.clone().into_bytes()),
    ];
    for (ct, bytes) in bodies {
        let res = request(
            &b,
            rocket::http::Method::Post,
            "/api/v1/token",
            None,
            Some((ct.clone(), bytes)),
        )
        .await;
        res.assert_json_error(Status::PayloadTooLarge, "invalid_request");
        assert!(res.json["error_description"].is_string(), "{ct}");
    }
    // A small body of a type the endpoint does not read is a plain bad request.
    let res = request(
        &b,
        rocket::http::Method::Post,
        "/api/v1/token",
        None,
        Some((multipart_type(), multipart(&fields[..3]))),
    )
    .await;
    res.assert_json_error(Status::BadRequest, "invalid_request");
}
