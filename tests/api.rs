//! The JSON API, as a client program uses it and as an attacker tries it: tokens,
//! refresh rotation and theft detection, sessions shared with the devices page,
//! forged and revoked tokens, the sign-in quota, and JSON errors everywhere.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rocket::http::{ContentType, Method, Status};
use serde_json::{json, Value};

/// Both tokens of an ended API session are refused: the access token with 401
/// `invalid_token`, the refresh token with `invalid_grant`.
async fn assert_signed_out(b: &Browser, t: &Tokens) {
    bearer(b, Method::Get, "/api/v1/me", &t.access)
        .await
        .assert_refused_token();
    refresh(b, &t.refresh)
        .await
        .assert_json_error(Status::Unauthorized, "invalid_grant");
}

fn sign(header: &Header, claims: &Value, key: &[u8]) -> String {
    encode(header, claims, &EncodingKey::from_secret(key)).expect("signed")
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn a_password_grant_gives_a_bearer_token_that_reads_me() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;

    let res = token_form(
        &b,
        &[
            ("grant_type", "password"),
            ("username", &email.to_uppercase()),
            ("password", PASSWORD),
        ],
    )
    .await;

    assert_eq!(res.status, Status::Ok, "{}", res.body);
    assert_eq!(res.json["token_type"], "Bearer");
    assert_eq!(res.json["expires_in"], 900);
    assert_eq!(res.header("Cache-Control"), Some("no-store"));
    assert_eq!(res.header("Pragma"), Some("no-cache"));
    let t = Tokens::from(&res);
    assert!(is_sid(&t.session_id), "{}", t.session_id);
    let parts: Vec<&str> = t.refresh.split('.').collect();
    assert_eq!(parts.len(), 3, "refresh token is UID.SID.SECRET");
    assert_eq!(parts[1], t.session_id);

    let claims = jwt_part(&t.access, 1);
    assert_eq!(claims["sid"], t.session_id.as_str());
    assert_eq!(claims["aud"], "latchkey-api");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], parts[0]);
    assert!(claims["jti"].is_string() && claims["iat"].is_u64() && claims["exp"].is_u64());

    let me = bearer(&b, Method::Get, "/api/v1/me", &t.access).await;
    assert_eq!(me.status, Status::Ok, "{}", me.body);
    assert_eq!(me.json["email"], email.as_str());
    assert_eq!(me.json["user_id"], parts[0]);
    assert_eq!(me.json["session_id"], t.session_id.as_str());

    // The scheme name is case-insensitive (RFC 7235 §2.1).
    for scheme in ["bearer", "BEARER"] {
        let auth = format!("{scheme} {}", t.access);
        let res = request(&b, Method::Get, "/api/v1/me", Some(&auth), None).await;
        assert_eq!(res.status, Status::Ok, "{scheme}");
    }
}

#[tokio::test]
async fn json_and_form_bodies_are_the_same_request() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;

    let from_json = token_json(
        &b,
        &json!({"grant_type": "password", "username": email, "password": PASSWORD,
                "client_name": "sync-daemon", "an_unknown_parameter": "is ignored"}),
    )
    .await;
    let json_tokens = Tokens::from(&from_json);
    let refreshed = token_json(
        &b,
        &json!({"grant_type": "refresh_token", "refresh_token": json_tokens.refresh}),
    )
    .await;
    assert_eq!(Tokens::from(&refreshed).session_id, json_tokens.session_id);

    let form_tokens = password_grant(&b, &email, Some("sync-daemon")).await;
    assert_ne!(form_tokens.session_id, json_tokens.session_id);

    // A content type with parameters is still JSON.
    let res = request(
        &b,
        Method::Post,
        "/api/v1/token",
        None,
        Some((
            ContentType::parse_flexible("application/json; charset=utf-8").expect("ct"),
            json!({"grant_type": "password", "username": email, "password": PASSWORD})
                .to_string()
                .into_bytes(),
        )),
    )
    .await;
    assert_eq!(res.status, Status::Ok, "{}", res.body);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_account_get_the_same_401() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;

    let wrong = password_attempt(&b, &email, "not the password at all").await;
    let unknown = token_form(
        &b,
        &[
            ("grant_type", "password"),
            ("username", "nobody-here@example.com"),
            ("password", "not the password at all"),
        ],
    )
    .await;

    wrong.assert_json_error(Status::Unauthorized, "invalid_grant");
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        wrong.header("WWW-Authenticate"),
        unknown.header("WWW-Authenticate")
    );
    assert_eq!(wrong.header("Cache-Control"), Some("no-store"));
}

#[tokio::test]
async fn token_requests_without_a_usable_grant_get_the_oauth_error_codes() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "invalid_request"),
        (
            vec![("username", &email), ("password", PASSWORD)],
            "invalid_request",
        ),
        (vec![("grant_type", "")], "invalid_request"),
        (
            vec![("grant_type", "client_credentials")],
            "unsupported_grant_type",
        ),
        (vec![("grant_type", "PASSWORD")], "unsupported_grant_type"),
        (
            vec![("grant_type", "password"), ("username", &email)],
            "invalid_request",
        ),
        (
            vec![("grant_type", "password"), ("password", PASSWORD)],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("username", "not-an-email"),
                ("password", "x"),
            ],
            "invalid_request",
        ),
        (vec![("grant_type", "refresh_token")], "invalid_request"),
        (
            vec![
                ("grant_type", "password"),
                ("grant_type", "refresh_token"),
                ("username", &email),
                ("password", PASSWORD),
            ],
            "invalid_request",
        ),
    ];
    for (pairs, code) in cases {
        let res = token_form(&b, &pairs).await;
        res.assert_json_error(Status::BadRequest, code);
    }

    let wrong_type = request(
        &b,
        Method::Post,
        "/api/v1/token",
        None,
        Some((ContentType::Plain, b"grant_type=password".to_vec())),
    )
    .await;
    wrong_type.assert_json_error(Status::BadRequest, "invalid_request");
    let no_body = request(&b, Method::Post, "/api/v1/token", None, None).await;
    no_body.assert_json_error(Status::BadRequest, "invalid_request");
}

#[tokio::test]
async fn unreadable_json_bodies_get_a_json_4xx_and_start_no_session() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;

    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"password\"".to_vec(),
        br#"{"grant_type": "password", "username": 5, "password": "x"}"#.to_vec(),
        br#"{"grant_type": ["password"]}"#.to_vec(),
        format!(
            r#"{{"grant_type":"password","username":"{email}","password":"x","password":"{PASSWORD}"}}"#
        )
        .into_bytes(),
        b"\xff\xfe{}".to_vec(),
        format!(r#"{{"grant_type":"{}"}}"#, "x".repeat(40 * 1024)).into_bytes(),
    ];
    for body in bodies {
        let res = request(
            &b,
            Method::Post,
            "/api/v1/token",
            None,
            Some((ContentType::JSON, body.clone())),
        )
        .await;
        assert!(
            res.status.code >= 400 && res.status.code < 500,
            "{} for {:?}",
            res.status,
            String::from_utf8_lossy(&body)
        );
        assert!(res.json["error"].is_string(), "{}", res.body);
    }
    // Only the browser's own session exists.
    assert_eq!(b.device_ids().await.len(), 0);
    let huge = request(
        &b,
        Method::Post,
        "/api/v1/token",
        None,
        Some((ContentType::Form, vec![b'a'; 40 * 1024])),
    )
    .await;
    huge.assert_json_error(Status::PayloadTooLarge, "invalid_request");
}

#[tokio::test]
async fn unknown_api_paths_and_methods_answer_json_never_html() {
    let app = TestApp::new();
    let b = app.browser().await;

    for (method, path) in [
        (Method::Get, "/api/v1/nope"),
        (Method::Get, "/api/v2/me"),
        (Method::Get, "/api"),
        (Method::Get, "/api/"),
        (Method::Get, "/api/v1/token"),
        (Method::Put, "/api/v1/me"),
        (Method::Post, "/api/v1/sessions/%FF%00"),
        (Method::Delete, "/api/v1/me"),
    ] {
        let res = request(&b, method, path, None, None).await;
        res.assert_json_error(Status::NotFound, "not_found");
        assert!(!res.body.contains("<html"), "{path}");
    }
}

#[tokio::test]
async fn the_api_session_is_on_the_devices_page_and_the_browser_can_end_it() {
    let app = TestApp::new();
    let (browser, email) = app.signed_in_browser().await;
    let t = password_grant(&browser, &email, Some("Nightly backup")).await;

    let page = browser.get("/devices").await;
    assert!(page.body.contains("Nightly backup"), "{}", page.body);
    assert!(page.body.contains(API_IP));
    assert_eq!(browser.device_ids().await, vec![t.session_id.clone()]);

    let csrf = page.csrf();
    let res = browser
        .post_form(&format!("/devices/{}/revoke", t.session_id), &csrf, &[])
        .await;
    assert_eq!(res.status, Status::SeeOther);

    assert_signed_out(&browser, &t).await;
}

#[tokio::test]
async fn sessions_lists_browser_and_api_sessions_and_marks_the_callers() {
    let app = TestApp::new();
    let (browser, email) = app.signed_in_browser().await;
    let t = password_grant(&browser, &email, Some("  cli tool  ")).await;
    let unnamed = password_grant(&browser, &email, Some("   ")).await;

    let res = bearer(&browser, Method::Get, "/api/v1/sessions", &t.access).await;

    assert_eq!(res.status, Status::Ok, "{}", res.body);
    let list = res.json.as_array().expect("an array");
    assert_eq!(list.len(), 3);
    for s in list {
        for field in ["id", "label", "kind", "ip", "created_at", "last_seen_at"] {
            assert!(s[field].is_string(), "{field} in {s}");
        }
        let ts = s["created_at"].as_str().unwrap_or("");
        assert!(
            ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "RFC 3339: {ts}"
        );
    }
    let by_id = |id: &str| {
        list.iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} listed"))
    };
    let mine = by_id(&t.session_id);
    assert_eq!(mine["current"], true);
    assert_eq!(mine["kind"], "api");
    assert_eq!(mine["label"], "cli tool", "trimmed");
    assert_eq!(mine["ip"], API_IP);
    assert_eq!(by_id(&unnamed.session_id)["label"], "curl");
    assert_eq!(by_id(&unnamed.session_id)["current"], false);
    let web = list
        .iter()
        .find(|s| s["kind"] == "browser")
        .expect("the browser session");
    assert_eq!(web["label"], "Firefox on Linux");
    assert_eq!(web["current"], false);
}

#[tokio::test]
async fn a_client_name_is_at_most_64_printable_characters() {
    let app = TestApp::new();
    let (browser, email) = app.signed_in_browser().await;
    let longest = "x".repeat(64);
    let t = password_grant(&browser, &email, Some(&longest)).await;
    let list = bearer(&browser, Method::Get, "/api/v1/sessions", &t.access).await;
    assert!(list.body.contains(&longest), "{}", list.body);

    for (refused, says) in [
        ("x".repeat(65), "at most 64 characters"),
        ("cli\u{7} tool".to_string(), "printable"),
        ("line one\nline two".to_string(), "printable"),
        ("invoice\u{202E}fdp.exe".to_string(), "printable"),
    ] {
        let res = token_form(
            &browser,
            &[
                ("grant_type", "password"),
                ("username", &email),
                ("password", PASSWORD),
                ("client_name", &refused),
            ],
        )
        .await;
        res.assert_json_error(Status::BadRequest, "invalid_request");
        let description = res.json["error_description"].as_str().unwrap_or("");
        assert!(description.contains("client_name"), "{description}");
        assert!(description.contains(says), "{description}");
    }
    // Refused before any session started: only the one above exists.
    let list = bearer(&browser, Method::Get, "/api/v1/sessions", &t.access).await;
    let api_sessions = list
        .json
        .as_array()
        .map(|l| l.iter().filter(|s| s["kind"] == "api").count());
    assert_eq!(api_sessions, Some(1));
}

#[tokio::test]
async fn known_devices_are_capped_per_account_and_old_ones_expire() {
    let app = TestApp::new().set("hash_limit_ip", 1000);
    let (browser, email) = app.signed_in_browser().await;
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        app.dir.join("accounts.db").display()
    ))
    .await
    .expect("the account database");
    let rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM known_devices")
            .fetch_one(&db)
            .await
            .expect("count")
    };
    // A device last seen 31 days ago is forgotten at the account's next sign-in.
    let user_id: String = sqlx::query_scalar("SELECT id FROM users")
        .fetch_one(&db)
        .await
        .expect("the user");
    let long_ago = now_ms() - 31 * 86_400_000;
    sqlx::query(
        "INSERT INTO known_devices (user_id, fingerprint, last_seen_at) VALUES (?, 'stale', ?)",
    )
    .bind(&user_id)
    .bind(long_ago)
    .execute(&db)
    .await
    .expect("a stale device");

    for i in 0..60 {
        password_grant(&browser, &email, Some(&format!("client {i}"))).await;
    }

    assert_eq!(rows().await, 50, "the 50 most recent devices");
    let stale: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM known_devices WHERE fingerprint = 'stale'")
            .fetch_one(&db)
            .await
            .expect("count");
    assert_eq!(stale, 0);
}

#[tokio::test]
async fn an_api_client_can_end_a_browser_session_but_not_someone_elses() {
    let app = TestApp::new();
    let (browser, email) = app.signed_in_browser().await;
    let (mb, m_email) = app.signed_in_browser().await;
    let t = password_grant(&browser, &email, None).await;
    let list = bearer(&browser, Method::Get, "/api/v1/sessions", &t.access).await;
    let browser_sid = list
        .json
        .as_array()
        .and_then(|l| l.iter().find(|s| s["kind"] == "browser"))
        .and_then(|s| s["id"].as_str())
        .expect("browser session")
        .to_string();

    // Mallory's token names Alice's session id: nothing happens.
    let mallory = password_grant(&mb, &m_email, None).await;
    let res = bearer(
        &mb,
        Method::Delete,
        &format!("/api/v1/sessions/{browser_sid}"),
        &mallory.access,
    )
    .await;
    res.assert_json_error(Status::NotFound, "not_found");
    assert!(browser.is_signed_in().await);
    for bad in ["nope", "0123456789abcdef0123456789ABCDEF", "%00"] {
        bearer(
            &browser,
            Method::Delete,
            &format!("/api/v1/sessions/{bad}"),
            &t.access,
        )
        .await
        .assert_json_error(Status::NotFound, "not_found");
    }

    let res = bearer(
        &browser,
        Method::Delete,
        &format!("/api/v1/sessions/{browser_sid}"),
        &t.access,
    )
    .await;
    assert_eq!(res.status, Status::NoContent, "{}", res.body);
    assert!(!browser.is_signed_in().await);
    // Ending it again: it is gone.
    bearer(
        &mb,
        Method::Delete,
        &format!("/api/v1/sessions/{browser_sid}"),
        &t.access,
    )
    .await
    .assert_json_error(Status::NotFound, "not_found");
}

#[tokio::test]
async fn ending_all_other_sessions_keeps_only_the_callers() {
    let app = TestApp::new();
    let (browser, email) = app.signed_in_browser().await;
    let other_api = password_grant(&browser, &email, Some("old laptop")).await;
    let t = password_grant(&browser, &email, Some("this script")).await;

    let res = bearer(&browser, Method::Delete, "/api/v1/sessions", &t.access).await;

    assert_eq!(res.status, Status::NoContent, "{}", res.body);
    assert!(!browser.is_signed_in().await);
    bearer(&browser, Method::Get, "/api/v1/me", &other_api.access)
        .await
        .assert_refused_token();
    let list = bearer(&browser, Method::Get, "/api/v1/sessions", &t.access).await;
    let ids: Vec<&str> = list
        .json
        .as_array()
        .map(|l| l.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![t.session_id.as_str()]);
}

#[tokio::test]
async fn a_refresh_rotates_both_tokens_within_the_same_session() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let first = password_grant(&b, &email, None).await;

    let res = refresh(&b, &first.refresh).await;

    assert_eq!(res.header("Cache-Control"), Some("no-store"));
    assert_eq!(res.header("Pragma"), Some("no-cache"));
    let second = Tokens::from(&res);
    assert_eq!(second.session_id, first.session_id);
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(
        jwt_part(&second.access, 1)["jti"],
        jwt_part(&first.access, 1)["jti"]
    );
    let me = bearer(&b, Method::Get, "/api/v1/me", &second.access).await;
    assert_eq!(me.status, Status::Ok);
    // And again: each new refresh token works once.
    let third = Tokens::from(&refresh(&b, &second.refresh).await);
    assert_eq!(third.session_id, first.session_id);
    assert_eq!(
        bearer(&b, Method::Get, "/api/v1/me", &third.access)
            .await
            .status,
        Status::Ok
    );
}

/// A grace window short enough to wait out in a test, and a wait past it.
fn short_grace() -> TestApp {
    TestApp::new().set("refresh_grace_seconds", 1)
}
const PAST_SHORT_GRACE: Duration = Duration::from_millis(1100);

/// Both tokens work: `/api/v1/me` with the access token, and a refresh with the
/// refresh token (whose answer is returned).
async fn assert_signed_in(b: &Browser, t: &Tokens) -> Tokens {
    let me = bearer(b, Method::Get, "/api/v1/me", &t.access).await;
    assert_eq!(me.status, Status::Ok, "{}", me.body);
    let next = Tokens::from(&refresh(b, &t.refresh).await);
    assert_eq!(next.session_id, t.session_id);
    next
}

#[tokio::test]
async fn replaying_a_rotated_refresh_token_after_the_grace_window_ends_the_whole_session() {
    let app = short_grace();
    let (browser, email) = app.signed_in_browser().await;
    let stolen = password_grant(&browser, &email, Some("phone app")).await;
    let legit = Tokens::from(&refresh(&browser, &stolen.refresh).await);
    tokio::time::sleep(PAST_SHORT_GRACE).await;

    let replay = refresh(&browser, &stolen.refresh).await;

    replay.assert_json_error(Status::Unauthorized, "invalid_grant");
    assert_signed_out(&browser, &legit).await;
    assert!(browser.device_ids().await.is_empty());
    assert!(!browser.get("/devices").await.body.contains("phone app"));
    assert!(browser.is_signed_in().await, "other sessions are untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_refreshes_with_one_token_both_get_the_same_successor() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    for _ in 0..5 {
        let t = password_grant(&b, &email, None).await;
        let body = crate::support::encode(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &t.refresh),
        ]);
        // Two tasks on different worker threads, released together: two tabs.
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (client, body, barrier) = (b.client.clone(), body.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let res = client
                        .post("/api/v1/token")
                        .remote(api_remote())
                        .header(ContentType::Form)
                        .body(body)
                        .dispatch()
                        .await;
                    page(res).await
                })
            })
            .collect();
        let mut tabs = Vec::new();
        for r in racers {
            tabs.push(Tokens::from(&r.await.expect("task")));
        }

        assert_eq!(tabs[0].refresh, tabs[1].refresh, "one successor for both");
        assert_ne!(tabs[0].refresh, t.refresh);
        assert_eq!(tabs[0].session_id, t.session_id);
        assert_eq!(tabs[1].session_id, t.session_id);
        // The session survives: both tabs' access tokens work, and the one
        // successor refreshes.
        let me = bearer(&b, Method::Get, "/api/v1/me", &tabs[1].access).await;
        assert_eq!(me.status, Status::Ok, "{}", me.body);
        assert_signed_in(&b, &tabs[0]).await;
        assert!(b.device_ids().await.contains(&t.session_id));
    }
}

#[tokio::test]
async fn the_previous_refresh_token_within_the_window_gets_the_same_successor() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let first = password_grant(&b, &email, None).await;
    let second = Tokens::from(&refresh(&b, &first.refresh).await);

    let again = Tokens::from(&refresh(&b, &first.refresh).await);

    assert_eq!(again.refresh, second.refresh);
    assert_eq!(again.session_id, first.session_id);
    assert_ne!(
        jwt_part(&again.access, 1)["jti"],
        jwt_part(&second.access, 1)["jti"],
        "a new access token each time"
    );
    // The successor from the grace answer works, and rotates as usual.
    let third = assert_signed_in(&b, &again).await;
    assert_ne!(third.refresh, second.refresh);
    assert_signed_in(&b, &third).await;
}

#[tokio::test]
async fn a_refresh_token_two_generations_old_ends_the_session_even_within_the_window() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let first = password_grant(&b, &email, None).await;
    let second = Tokens::from(&refresh(&b, &first.refresh).await);
    // The successor is used at once: `first` is now older than the previous token.
    let third = Tokens::from(&refresh(&b, &second.refresh).await);

    let replay = refresh(&b, &first.refresh).await;

    replay.assert_json_error(Status::Unauthorized, "invalid_grant");
    assert_signed_out(&b, &third).await;
    assert!(!b.device_ids().await.contains(&first.session_id));
}

#[tokio::test]
async fn the_window_counts_from_the_rotation_not_from_the_last_grace_answer() {
    let app = short_grace();
    let (b, email) = app.signed_in_browser().await;
    let first = password_grant(&b, &email, None).await;
    let second = Tokens::from(&refresh(&b, &first.refresh).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = Tokens::from(&refresh(&b, &first.refresh).await);
    assert_eq!(again.refresh, second.refresh);
    tokio::time::sleep(Duration::from_millis(600)).await;

    let late = refresh(&b, &first.refresh).await;

    late.assert_json_error(Status::Unauthorized, "invalid_grant");
    assert_signed_out(&b, &second).await;
}

#[tokio::test]
async fn with_the_window_off_a_second_refresh_with_one_token_ends_the_session() {
    let app = TestApp::new().set("refresh_grace_seconds", 0);
    let (b, email) = app.signed_in_browser().await;
    let first = password_grant(&b, &email, None).await;
    let second = Tokens::from(&refresh(&b, &first.refresh).await);

    let retry = refresh(&b, &first.refresh).await;

    retry.assert_json_error(Status::Unauthorized, "invalid_grant");
    assert_signed_out(&b, &second).await;
}

#[tokio::test]
async fn a_made_up_secret_for_a_real_session_is_refused_and_ends_nothing() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let mine = password_grant(&b, &email, None).await;
    let theirs = password_grant(&b, &email, None).await;
    let rotated = Tokens::from(&refresh(&b, &mine.refresh).await);
    let parts: Vec<&str> = mine.refresh.split('.').collect();
    let (uid, sid, secret) = (parts[0], parts[1], parts[2]);

    // Whoever knows a session's id (it is in every token answer) guesses a secret;
    // and the previous secret of one session is tried on another session.
    let guessed = format!("{uid}.{sid}.{}", "A".repeat(43));
    let crossed = format!("{uid}.{}.{secret}", theirs.session_id);
    for forged in [guessed, crossed] {
        refresh(&b, &forged)
            .await
            .assert_json_error(Status::Unauthorized, "invalid_grant");
    }

    assert_signed_in(&b, &rotated).await;
    assert_signed_in(&b, &theirs).await;
}

#[tokio::test]
async fn an_ended_session_gives_no_grace_answer() {
    let app = TestApp::new();
    let (browser, email) = app.signed_in_browser().await;
    let first = password_grant(&browser, &email, Some("Sync tool")).await;
    let second = Tokens::from(&refresh(&browser, &first.refresh).await);
    let page = browser.get("/devices").await;
    let res = browser
        .post_form(
            &format!("/devices/{}/revoke", first.session_id),
            &page.csrf(),
            &[],
        )
        .await;
    assert_eq!(res.status, Status::SeeOther);

    // The previous token, well within its window, and the current one: both refused.
    refresh(&browser, &first.refresh)
        .await
        .assert_json_error(Status::Unauthorized, "invalid_grant");
    assert_signed_out(&browser, &second).await;
}

#[tokio::test]
async fn logout_stops_the_access_token_and_its_session_at_once() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let t = password_grant(&b, &email, None).await;
    let other = password_grant(&b, &email, None).await;

    let res = bearer(&b, Method::Post, "/api/v1/logout", &t.access).await;

    assert_eq!(res.status, Status::NoContent, "{}", res.body);
    let me = bearer(&b, Method::Get, "/api/v1/me", &t.access).await;
    me.assert_refused_token();
    assert!(me
        .header("WWW-Authenticate")
        .unwrap_or("")
        .contains("error=\"invalid_token\""));
    bearer(&b, Method::Post, "/api/v1/logout", &t.access)
        .await
        .assert_refused_token();
    refresh(&b, &t.refresh)
        .await
        .assert_json_error(Status::Unauthorized, "invalid_grant");
    // The jti is marked revoked for as long as the token could be accepted.
    let claims = jwt_part(&t.access, 1);
    let user: uuid::Uuid = claims["sub"].as_str().unwrap_or("").parse().expect("sub");
    let key = app
        .key_names()
        .revoked_jti(&user, claims["jti"].as_str().unwrap_or(""));
    let ttl = pttl(&key).await;
    assert!(ttl > 900_000 && ttl <= 930_000, "{ttl}");
    // Other sessions are untouched.
    assert_eq!(
        bearer(&b, Method::Get, "/api/v1/me", &other.access)
            .await
            .status,
        Status::Ok
    );
}

#[tokio::test]
async fn forged_and_mangled_access_tokens_are_refused() {
    let app = TestApp::new();
    let (b, email) = app.signed_in_browser().await;
    let t = password_grant(&b, &email, None).await;
    let real = jwt_part(&t.access, 1);
    let now = unix_now();
    let with = |changes: Value| {
        let mut c = real.clone();
        for (k, v) in changes.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    let hs256 = Header::new(Algorithm::HS256);
    let key = JWT_SECRET.as_bytes();

    // The forging harness is right: a token it signs with the real key passes.
    let fresh = sign(
        &hs256,
        &with(json!({"jti": "forged-but-valid-jti", "iat": now, "exp": now + 60})),
        key,
    );
    assert_eq!(
        bearer(&b, Method::Get, "/api/v1/me", &fresh).await.status,
        Status::Ok
    );

    let parts: Vec<&str> = t.access.split('.').collect();
    let alg_none_header = json!({"alg": "none", "typ": "JWT"});
    let mut tampered_claims = real.clone();
    tampered_claims["sub"] = json!(uuid::Uuid::now_v7().to_string());
    let forged: Vec<(&str, String)> = vec![
        (
            "alg none, no signature",
            format!("{}.{}.", b64(&alg_none_header), parts[1]),
        ),
        (
            "alg none, original signature",
            format!("{}.{}.{}", b64(&alg_none_header), parts[1], parts[2]),
        ),
        (
            "alg None",
            format!("{}.{}.", b64(&json!({"alg": "None"})), parts[1]),
        ),
        (
            "tampered payload",
            format!("{}.{}.{}", parts[0], b64(&tampered_claims), parts[2]),
        ),
        (
            "tampered signature",
            format!("{}.{}.{}", parts[0], parts[1], "A".repeat(parts[2].len())),
        ),
        (
            "wrong key",
            sign(&hs256, &real, b"another-secret-another-secret-0123456789"),
        ),
        (
            "expired",
            sign(
                &hs256,
                &with(json!({"iat": now - 3600, "exp": now - 120})),
                key,
            ),
        ),
        (
            "issued in the future",
            sign(
                &hs256,
                &with(json!({"iat": now + 3600, "exp": now + 7200})),
                key,
            ),
        ),
        (
            "wrong audience",
            sign(&hs256, &with(json!({"aud": "some-other-api"})), key),
        ),
        (
            "audience list without ours",
            sign(&hs256, &with(json!({"aud": ["some-other-api"]})), key),
        ),
        (
            "wrong issuer",
            sign(&hs256, &with(json!({"iss": "https://evil.example"})), key),
        ),
        ("no exp", {
            let mut c = real.clone();
            c.as_object_mut().map(|o| o.remove("exp"));
            sign(&hs256, &c, key)
        }),
        (
            "unknown session",
            sign(&hs256, &with(json!({"sid": "A".repeat(22)})), key),
        ),
        (
            "another user's id with this session",
            sign(
                &hs256,
                &with(json!({"sub": uuid::Uuid::now_v7().to_string()})),
                key,
            ),
        ),
        (
            "HS512 with the right key",
            sign(&Header::new(Algorithm::HS512), &real, key),
        ),
        (
            "RS256 header, HMAC signature with the key",
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "RS256", "typ": "JWT"})),
                parts[1],
                parts[2]
            ),
        ),
        ("critical extension", {
            let mut h = hs256.clone();
            h.crit = Some(vec!["exp-ext".into()]);
            sign(&h, &real, key)
        }),
        ("garbage", "garbage".into()),
        ("dots", "..".into()),
        ("four parts", format!("{}.x", t.access)),
        ("huge", "a".repeat(10_000)),
    ];
    for (what, token) in &forged {
        let res = bearer(&b, Method::Get, "/api/v1/me", token).await;
        assert_eq!(res.status, Status::Unauthorized, "{what}: {}", res.body);
        res.assert_refused_token();
    }

    // No credentials at all, or another scheme: a bare challenge (RFC 6750 §3.1).
    let basic = format!(
        "Basic {}",
        URL_SAFE_NO_PAD.encode(format!("{email}:{PASSWORD}"))
    );
    for auth in [None, Some(basic.as_str()), Some("Bearer"), Some("Bearer ")] {
        let res = request(&b, Method::Get, "/api/v1/me", auth, None).await;
        res.assert_refused_token();
    }
    let none = request(&b, Method::Get, "/api/v1/me", None, None).await;
    assert_eq!(
        none.header("WWW-Authenticate"),
        Some("Bearer realm=\"latchkey\"")
    );
    let two_tokens = format!("Bearer {} {}", t.access, t.access);
    request(&b, Method::Get, "/api/v1/me", Some(&two_tokens), None)
        .await
        .assert_refused_token();
    // The real token still works after all that.
    assert_eq!(
        bearer(&b, Method::Get, "/api/v1/me", &t.access)
            .await
            .status,
        Status::Ok
    );
}

#[tokio::test]
async fn a_browser_session_cookie_secret_is_not_an_access_token() {
    let app = TestApp::new();
    let (b, _) = app.signed_in_browser().await;
    let cookie = b.session_cookie().expect("cookie");
    let (uid, secret) = cookie.split_once('.').expect("UID.TOKEN");
    let sid = sid_for(secret);
    let now = unix_now();
    // Even signed with the right key, a token naming a browser session is refused.
    let token = sign(
        &Header::new(Algorithm::HS256),
        &json!({"sub": uid, "sid": sid, "jti": "a-browser-session-jti", "iat": now,
                "exp": now + 60, "iss": ISSUER, "aud": "latchkey-api"}),
        JWT_SECRET.as_bytes(),
    );
    bearer(&b, Method::Get, "/api/v1/me", &token)
        .await
        .assert_refused_token();
    request(
        &b,
        Method::Get,
        "/api/v1/me",
        Some(&format!("Bearer {cookie}")),
        None,
    )
    .await
    .assert_refused_token();
    // And the cookie alone opens nothing in the API.
    let res = b.get("/api/v1/me").await;
    assert_eq!(res.status, Status::Unauthorized);
}

#[tokio::test]
async fn signing_out_everywhere_else_from_the_browser_ends_api_tokens() {
    let app = TestApp::new();
    let (browser, email) = app.signed_in_browser().await;
    let t = password_grant(&browser, &email, None).await;
    assert_eq!(
        bearer(&browser, Method::Get, "/api/v1/me", &t.access)
            .await
            .status,
        Status::Ok
    );

    let csrf = browser.get("/devices").await.csrf();
    let res = browser
        .post_form("/devices/revoke-others", &csrf, &[])
        .await;
    assert_eq!(res.status, Status::SeeOther);

    assert_signed_out(&browser, &t).await;
}

#[tokio::test]
async fn changing_the_password_ends_api_sessions() {
    let app = TestApp::new();
    let (browser, email) = app.signed_in_browser().await;
    let t = password_grant(&browser, &email, None).await;

    let res = browser
        .change_password(PASSWORD, "a brand new passphrase 42")
        .await;
    assert!(res.status.code < 400, "{} {}", res.status, res.body);

    bearer(&browser, Method::Get, "/api/v1/me", &t.access)
        .await
        .assert_refused_token();
    let old = password_attempt(&browser, &email, PASSWORD).await;
    old.assert_json_error(Status::Unauthorized, "invalid_grant");
}

#[tokio::test]
async fn a_password_reset_ends_every_api_session() {
    let app = TestApp::new();
    let (browser, email) = app.signed_in_browser().await;
    let phone_app = password_grant(&browser, &email, Some("phone app")).await;
    let cli = password_grant(&browser, &email, Some("backup script")).await;

    // Someone who is not signed in asks for a code and uses it.
    let stranger = app.browser().await;
    let asked = stranger.ask_for_reset_code(&email).await;
    assert_eq!(asked.status, Status::Ok, "{}", asked.body);
    let code = wait_for_reset_code(&app.outbox()).await;
    let reset = stranger
        .reset_password(&email, &code, "a brand new passphrase 42")
        .await;
    assert_eq!(reset.status, Status::SeeOther, "{}", reset.body);

    for t in [&phone_app, &cli] {
        assert_signed_out(&browser, t).await;
    }
    assert!(
        !browser.is_signed_in().await,
        "the browser session ended too"
    );
    let fresh = password_attempt(&browser, &email, "a brand new passphrase 42").await;
    assert_eq!(fresh.status, Status::Ok, "the new password signs in");
}

#[tokio::test]
async fn the_sign_in_quota_applies_to_the_api_even_with_the_right_password() {
    let app = TestApp::new().set("login_limit_account", 5);
    let (browser, email) = app.signed_in_browser().await;

    for i in 0..5 {
        let res = password_attempt(&browser, &email, &format!("guess number {i}")).await;
        res.assert_json_error(Status::Unauthorized, "invalid_grant");
    }

    let res = password_attempt(&browser, &email, PASSWORD).await;

    res.assert_json_error(Status::TooManyRequests, "too_many_requests");
    let retry: u64 = res
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=900).contains(&retry), "{retry}");
    // The quota is the account's, shared with the sign-in page.
    let page = app.browser().await.login(&email, PASSWORD).await;
    assert_eq!(page.status, Status::TooManyRequests);
}

#[tokio::test]
async fn a_store_outage_answers_503_json_quickly() {
    let mut redis = OwnRedis::start();
    let app = TestApp::new().with_redis(&redis.url());
    let (b, email) = app.signed_in_browser().await;
    let t = password_grant(&b, &email, None).await;

    redis.stop();

    let started = Instant::now();
    let me = bearer(&b, Method::Get, "/api/v1/me", &t.access).await;
    me.assert_json_error(Status::ServiceUnavailable, "temporarily_unavailable");
    assert!(started.elapsed() < Duration::from_millis(2500));
    refresh(&b, &t.refresh)
        .await
        .assert_json_error(Status::ServiceUnavailable, "temporarily_unavailable");
    let sign_in = password_attempt(&b, &email, PASSWORD).await;
    sign_in.assert_json_error(Status::ServiceUnavailable, "temporarily_unavailable");
}

#[tokio::test]
async fn the_openapi_description_matches_the_mounted_routes() {
    let app = TestApp::new();
    let mounted: BTreeSet<(String, String)> = app
        .mounted_routes()
        .await
        .into_iter()
        .filter(|(path, _)| path.starts_with(openapi::API_BASE))
        .map(|(path, method)| (path.replace('<', "{").replace('>', "}"), method))
        .collect();
    let spec: Value = serde_json::from_str(openapi::API).expect("valid JSON");
    assert_eq!(mounted, described_operations(&spec));
    assert_eq!(spec["openapi"], "3.0.3");
    assert_eq!(
        spec["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    // Every $ref points at something that exists.
    assert_refs_resolve(openapi::API, &spec);

    let b = app.browser().await;
    let served = request(&b, Method::Get, "/api/v1/openapi.json", None, None).await;
    assert_eq!(served.status, Status::Ok);
    assert_eq!(served.json, spec);
}
