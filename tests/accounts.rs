//! An operator disables, enables or deletes an account (`account_admin`, in `paths`):
//! every browser session and API token of it stops at once, even though
//! `GET /api/v1/me` and the devices page answer from the session check alone, and a
//! disabled account's sign-in answers exactly as a wrong password does. Each case runs
//! on SQLite and on PostgreSQL.

use crate::support::*;
use rocket::http::{Method, Status};

crate::on_both_databases!(
    disabling_ends_every_session_at_once_and_sign_in_answers_as_a_wrong_password,
    deleting_ends_every_session_at_once,
    closing_one_account_leaves_the_others_signed_in,
);

/// A person signed in twice: a browser, and a program with an access token.
async fn signed_in_twice(app: &TestApp) -> (String, Browser, Tokens) {
    let (b, email) = app.signed_in_browser().await;
    let tokens = password_grant(&b, &email, Some("backup-script")).await;
    assert!(b.is_signed_in().await);
    let me = bearer(&b, Method::Get, "/api/v1/me", &tokens.access).await;
    assert_eq!(me.status, Status::Ok);
    assert_eq!(me.str("email"), email);
    (email, b, tokens)
}

async fn assert_signed_out_everywhere(b: &Browser, tokens: &Tokens) {
    assert!(!b.is_signed_in().await, "the browser is still signed in");
    bearer(b, Method::Get, "/api/v1/me", &tokens.access)
        .await
        .assert_refused_token();
    bearer(b, Method::Get, "/api/v1/sessions", &tokens.access)
        .await
        .assert_refused_token();
    refresh(b, &tokens.refresh)
        .await
        .assert_json_error(Status::Unauthorized, "invalid_grant");
}

async fn disabling_ends_every_session_at_once_and_sign_in_answers_as_a_wrong_password(
    db: Database,
) {
    let app = TestApp::on(db).await;
    let (email, b, tokens) = signed_in_twice(&app).await;
    let (store, accounts) = b.store_and_accounts();
    let account = app.user(&email).await.expect("the account");

    let ended = account_admin::disable(&store, &accounts, &account)
        .await
        .expect("disabled");
    assert_eq!(ended, 2);
    assert_signed_out_everywhere(&b, &tokens).await;

    // The right password now gets what a wrong one gets, after the same Argon2 work.
    let other = app.browser().await;
    assert_the_right_password_answers_as_a_wrong_one(&other, &email).await;
    // No reset code is mailed to a disabled account (the registrations' verification
    // mails are in first).
    wait_for_mails(&app.outbox(), 1).await;
    let mailed = mails_in(&app.outbox()).len();
    let forgot = other.ask_for_reset_code(&email).await;
    assert_eq!(forgot.status, Status::Ok);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(mails_in(&app.outbox()).len(), mailed, "a code was mailed");

    // Enabled again: the password works; nothing of before comes back.
    let account = app.user(&email).await.expect("the account");
    account_admin::enable(&accounts, &account)
        .await
        .expect("enabled");
    assert!(!b.is_signed_in().await);
    let again = app.browser().await;
    assert_eq!(again.login(&email, PASSWORD).await.status, Status::SeeOther);
    assert!(again.is_signed_in().await);
    assert!(again.get("/devices").await.body.contains(&email));
    // And a reset code is mailed again (so the check above could have seen one).
    other.ask_for_reset_code(&email).await;
    let mails = wait_for_mails(&app.outbox(), mailed + 1).await;
    assert_eq!(mails.len(), mailed + 1);
}

async fn deleting_ends_every_session_at_once(db: Database) {
    let app = TestApp::on(db).await;
    let (email, b, tokens) = signed_in_twice(&app).await;
    let (store, accounts) = b.store_and_accounts();
    let account = app.user(&email).await.expect("the account");

    let ended = account_admin::delete(&store, &accounts, &account)
        .await
        .expect("deleted");
    assert_eq!(ended, 2);
    assert!(app.user(&email).await.is_none());
    assert_signed_out_everywhere(&b, &tokens).await;
    let other = app.browser().await;
    assert_eq!(
        other.login(&email, PASSWORD).await.status,
        Status::Unauthorized
    );
    // The address is free again.
    let b = app.browser().await;
    assert_eq!(b.register(&email).await.status, Status::SeeOther);
}

/// Everyone else keeps working: closing one account touches only its own keys.
async fn closing_one_account_leaves_the_others_signed_in(db: Database) {
    let app = TestApp::on(db).await;
    let (email, b, _) = signed_in_twice(&app).await;
    let (_, other, other_tokens) = signed_in_twice(&app).await;
    let (store, accounts) = b.store_and_accounts();
    let account = app.user(&email).await.expect("the account");
    account_admin::disable(&store, &accounts, &account)
        .await
        .expect("disabled");
    assert!(other.is_signed_in().await);
    let me = bearer(&other, Method::Get, "/api/v1/me", &other_tokens.access).await;
    assert_eq!(me.status, Status::Ok);
}
