//! Deleting the account (the page and `latchkey users delete`) and downloading its
//! data. Tried as an attacker would: without the second factor, with a wrong confirm
//! text, with a forged CSRF token (nothing changes); after a deletion the old cookie,
//! access token and refresh token are refused and the address can be registered again;
//! the export holds no hash or secret and needs a signed-in session.

use crate::support::*;
use rocket::http::{Method, Status};

const CONFIRM: &str = "delete my account";

async fn delete_with(b: &Browser, fields: &[(&str, &str)]) -> Page {
    b.submit("/account/delete", "/account/delete", fields).await
}

/// The start of every Redis key of the account `email` names in `app`.
async fn keys_of(app: &TestApp, user: &User) -> Vec<String> {
    let user_key = app.key_names().user(&user.id);
    let base = user_key.trim_end_matches(":u");
    keys_under(base).await
}

async fn deleting_ends_every_session_and_token_and_frees_the_address(db: Database) {
    let smtp = SmtpServer::start();
    let app = TestApp::on(db).await.set("smtp_url", smtp.url());
    let (b, address) = app.signed_in_browser().await;
    let phone = app.browser().await.with_agent(SAFARI_IOS);
    phone.login(&address, PASSWORD).await;
    let api = password_grant(&app.browser().await, &address, Some("backup")).await;
    let cookie = b.session_cookie().expect("a session cookie");
    let user = app.user(&address).await.expect("the account");
    let client = app.registered_app("Calendar", &[]);
    app.accounts()
        .await
        .save_consent(&user.id, &client.id, "openid email")
        .await
        .expect("a consent");

    let res = delete_with(&b, &[("current_password", PASSWORD), ("confirm", CONFIRM)]).await;
    assert_eq!(res.status, Status::SeeOther, "{}", res.body);
    assert_eq!(res.location.as_deref(), Some("/account/deleted"));
    let landed = b.get("/account/deleted").await;
    assert!(landed.body.contains("Your account is deleted"));
    assert!(!b.is_signed_in().await && !phone.is_signed_in().await);

    // The old cookie, the access token and the refresh token: all refused.
    let thief = app.browser().await;
    thief.set_session_cookie(&cookie).await;
    assert!(!thief.is_signed_in().await);
    bearer(&thief, Method::Get, "/api/v1/me", &api.access)
        .await
        .assert_refused_token();
    refresh(&thief, &api.refresh)
        .await
        .assert_json_error(Status::Unauthorized, "invalid_grant");

    // The rows and the keys are gone (the password version stays, for a late sign-in).
    assert!(app.user(&address).await.is_none());
    let accounts = app.accounts().await;
    assert_eq!(accounts.consent(&user.id, &client.id).await.unwrap(), None);
    let keys = keys_of(&app, &user).await;
    assert_eq!(keys, vec![app.key_names().password_version(&user.id)]);

    let goodbye = wait_for_mail_saying(&smtp.received(), "was deleted").await;
    assert!(goodbye.contains(&format!("To: {address}")));
    assert!(goodbye.contains("Firefox on Linux") && goodbye.contains("203.0.113.5"));
    assert!(goodbye.contains("text/plain") && goodbye.contains("text/html"));
    assert!(goodbye.contains("If this wasn't you"));

    // The address is free again, as a new account.
    let again = app.browser().await;
    assert_eq!(again.register(&address).await.status, Status::SeeOther);
    assert_ne!(app.user(&address).await.expect("new").id, user.id);
}

crate::on_both_databases!(deleting_ends_every_session_and_token_and_frees_the_address);

#[tokio::test]
async fn without_the_second_factor_a_confirm_or_a_real_token_nothing_is_deleted() {
    let app = TestApp::new();
    let (b, account) = app.two_step_account().await;
    let address = account.email.clone();
    let attempts: Vec<(Vec<(&str, &str)>, Status)> = vec![
        (
            vec![("current_password", PASSWORD), ("confirm", CONFIRM)],
            Status::BadRequest,
        ),
        (
            vec![
                ("current_password", PASSWORD),
                ("code", "000000"),
                ("confirm", CONFIRM),
            ],
            Status::BadRequest,
        ),
        (
            vec![("current_password", "wrong password"), ("confirm", CONFIRM)],
            Status::Unauthorized,
        ),
        (
            vec![("current_password", PASSWORD), ("confirm", "delete")],
            Status::BadRequest,
        ),
        (vec![("current_password", PASSWORD)], Status::BadRequest),
    ];
    for (fields, status) in attempts {
        let res = delete_with(&b, &fields).await;
        assert_eq!(res.status, status, "{fields:?}: {}", res.body);
        assert!(app.user(&address).await.is_some(), "{fields:?}");
        assert!(b.is_signed_in().await, "{fields:?}");
    }
    let code = account.next_code();
    let forged = b
        .post_form(
            "/account/delete",
            "forged-token",
            &[
                ("current_password", PASSWORD),
                ("code", &code),
                ("confirm", CONFIRM),
            ],
        )
        .await;
    assert_eq!(forged.status, Status::Forbidden);
    // Another session's real token is no good either.
    let other = app.browser().await;
    let theirs = other.register(&email()).await;
    assert_eq!(theirs.status, Status::SeeOther);
    let their_token = other.get("/account/delete").await.csrf();
    let stolen = b
        .post_form(
            "/account/delete",
            &their_token,
            &[
                ("current_password", PASSWORD),
                ("code", &code),
                ("confirm", CONFIRM),
            ],
        )
        .await;
    assert_eq!(stolen.status, Status::Forbidden);
    assert!(app.user(&address).await.is_some());

    let done = delete_with(
        &b,
        &[
            ("current_password", PASSWORD),
            ("code", &code),
            ("confirm", CONFIRM),
        ],
    )
    .await;
    assert_eq!(done.status, Status::SeeOther, "{}", done.body);
    assert!(app.user(&address).await.is_none());
    assert!(other.is_signed_in().await, "another account is untouched");
}

#[tokio::test]
async fn the_operator_deletes_an_account_from_the_command_line() {
    let app = TestApp::new();
    let (b, address) = app.signed_in_browser().await;
    let run = app.cli(&["users", "delete", &address, "--json"]);
    let line = &run.json_lines()[0];
    assert_eq!(line["deleted"], true);
    assert_eq!(line["sessions_ended"], 1);
    assert!(!b.is_signed_in().await);
    assert!(app.user(&address).await.is_none());
    let goodbye = wait_for_mail_saying(&app.outbox(), "was deleted").await;
    assert!(goodbye.contains("administrator"));
    assert!(app
        .cli(&["users", "delete", &address])
        .refused()
        .contains(&address));
}

#[tokio::test]
async fn the_export_holds_the_account_and_no_hash_or_secret() {
    let app = TestApp::new();
    let (b, account) = app.two_step_account().await;
    let address = account.email.clone();
    let otp = account.next_code();
    let grant = token_form(
        &app.browser().await,
        &[
            ("grant_type", "password"),
            ("username", &address),
            ("password", PASSWORD),
            ("otp", &otp),
            ("client_name", "backup-script"),
        ],
    )
    .await;
    assert_eq!(grant.status, Status::Ok, "{}", grant.body);
    let user = app.user(&address).await.expect("the account");
    let client = app.registered_app("Calendar", &[]);
    app.accounts()
        .await
        .save_consent(&user.id, &client.id, "openid email")
        .await
        .expect("a consent");

    let res = b.get("/account/export").await;
    assert_eq!(res.status, Status::Ok);
    assert!(res
        .header("Content-Type")
        .unwrap_or("")
        .starts_with("application/json"));
    assert!(res
        .header("Content-Disposition")
        .unwrap_or("")
        .starts_with("attachment"));
    assert_eq!(res.header("Cache-Control"), Some("no-store"));
    let doc = &res.json;
    assert_eq!(doc["account"]["email"], address.as_str());
    assert_eq!(doc["account"]["id"], user.id.to_string());
    assert_eq!(doc["account"]["email_verified"], user.email_verified());
    let labels: Vec<&str> = doc["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["label"].as_str())
        .collect();
    assert!(labels.contains(&"Firefox on Linux") && labels.contains(&"backup-script"));
    assert_eq!(doc["apps"][0]["name"], "Calendar");
    assert_eq!(doc["apps"][0]["scopes"][1], "email");
    assert_eq!(doc["second_factor"]["enabled"], true);
    assert_eq!(doc["second_factor"]["recovery_codes_left"], 10);

    // No secret or hash: the password hash, the sealed and the plain TOTP secret, the
    // recovery codes, the session's cookie or id.
    let factor = app
        .accounts()
        .await
        .second_factor(&user.id)
        .await
        .unwrap()
        .expect("on");
    let secret_b32 = base32_of(&account.secret);
    let cookie = b.session_cookie().expect("cookie");
    let mut never: Vec<String> = vec![
        user.password_hash.clone(),
        factor.secret_sealed.clone(),
        secret_b32,
        cookie.clone(),
        b.sid(),
    ];
    never.extend(account.recovery.iter().cloned());
    for value in &never {
        assert!(
            !res.body.contains(value.as_str()),
            "the export holds {value}"
        );
    }
    assert!(!res.body.contains("argon2"));

    // Signed out: sent to sign in, nothing exported.
    let out = app.browser().await.get("/account/export").await;
    assert_eq!(out.status, Status::SeeOther);
    assert!(out.location.unwrap_or_default().starts_with("/login"));
}

/// RFC 4648 base32 without padding, as authenticator apps are given secrets.
fn base32_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// An app's session (OpenID Connect, with a refresh token) ends with the account: its
/// access token at userinfo, its refresh token, and introspection all say so.
#[tokio::test]
async fn deleting_ends_the_apps_sessions_and_tokens_at_once() {
    let p = Provider::start(Database::Sqlite).await;
    let app = p.registered_app("Wiki", &[]);
    let (_, address, tokens) = signed_in_app(&p, &app, "openid email offline_access");
    let access = field(&tokens, "access_token");
    let refresh_token = field(&tokens, "refresh_token");
    assert_eq!(userinfo_status(&p, &access), 200);

    let run = p.instance.cli(&["users", "delete", &address, "--json"]);
    assert_eq!(run.json_lines()[0]["deleted"], true);

    assert_eq!(userinfo_status(&p, &access), 401);
    let (status, body) = refresh_grant(&p, &app, &refresh_token);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (_, answer, _) = ask(
        &p,
        "/oauth2/introspect",
        As::Basic(&app),
        &[("token", &access)],
    );
    assert_eq!(answer["active"], false, "{answer}");
}
