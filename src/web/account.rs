//! The account as a whole: deleting it (`/account/delete`, then the signed-out page
//! `/account/deleted`) and downloading its data (`/account/export`). Deleting is
//! `crate::services::account_admin::delete`, the one the operator's command runs.

use rocket::form::FromForm;
use rocket::http::{Header, Status};
use rocket::response::Redirect;
use rocket::{get, post, routes, uri, Responder, Route};

use super::guards::{CsrfForm, CsrfToken, CurrentSession, NoFields, SessionCookieJar};
use super::owner_check::{check_owner, OwnerProof};
use super::page::Page;
use super::password::signed_in_user;
use crate::accounts::User;
use crate::http::error::AppResult;
use crate::http::request::RequestOrigin;
use crate::services::account::export;
use crate::services::account::mail::{self, AccountMail, Actor};
use crate::services::{account_admin, second_factor, Services};

pub fn routes() -> Vec<Route> {
    routes![
        delete_page,
        delete_page_signed_out,
        delete,
        delete_signed_out,
        deleted,
        export_data,
        export_signed_out
    ]
}

/// What the owner types to say they mean it.
pub const CONFIRM_TEXT: &str = "delete my account";

async fn delete_form(app: Services<'_>, session: &CurrentSession, user: &User) -> AppResult<Page> {
    let two_step = second_factor::has_second_factor(app, user).await?;
    Ok(Page::new("account_delete", &session.csrf)
        .with("signed_in", true)
        .with("user_email", &user.email)
        .with("two_step", two_step)
        .with("confirm_text", CONFIRM_TEXT))
}

#[get("/account/delete")]
async fn delete_page(session: CurrentSession, app: Services<'_>) -> AppResult<Page> {
    let user = signed_in_user(&session, app).await?;
    delete_form(app, &session, &user).await
}

#[get("/account/delete", rank = 2)]
fn delete_page_signed_out() -> Redirect {
    super::next_path::sign_in_first(uri!(delete_page))
}

#[derive(FromForm)]
pub struct DeleteFields {
    current_password: Option<String>,
    code: Option<String>,
    confirm: Option<String>,
}

/// The typed confirmation first (no hash for a slip), then the owner's proof; then
/// everything goes, a goodbye mail leaves, and the browser lands signed out.
#[post("/account/delete", data = "<form>")]
async fn delete(
    session: CurrentSession,
    form: CsrfForm<DeleteFields>,
    origin: RequestOrigin,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> AppResult<Result<Redirect, Page>> {
    let user = signed_in_user(&session, app).await?;
    let page = delete_form(app, &session, &user).await?;
    let typed = form.0.confirm.as_deref().unwrap_or("").trim();
    if !typed.eq_ignore_ascii_case(CONFIRM_TEXT) {
        let msg = format!("To delete your account, type “{CONFIRM_TEXT}” in the last box.");
        return Ok(Err(page.error(msg, Status::BadRequest)));
    }
    let browser = jar.trusted_browser();
    let proof = OwnerProof {
        password: form.0.current_password.as_deref(),
        code: form.0.code.as_deref(),
        browser: browser.as_ref(),
        ip: &origin.0.ip,
    };
    if let Err(page) = check_owner(app, &user, &proof, || page.clone()).await? {
        return Ok(Err(page));
    }
    account_admin::delete(app.store, app.accounts, &user).await?;
    let actor = Actor::Browser(&origin.0);
    mail::send(
        app.settings,
        app.mailer,
        &user.email,
        &AccountMail::Deleted,
        &actor,
    );
    jar.clear();
    Ok(Ok(Redirect::to(uri!(deleted))))
}

#[post("/account/delete", rank = 2, data = "<_form>")]
fn delete_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    super::next_path::sign_in_first(uri!(delete_page))
}

/// Where a deleted account's browser lands: signed out.
#[get("/account/deleted")]
fn deleted(csrf: CsrfToken) -> Page {
    Page::new("account_deleted", &csrf.0)
}

/// The export as a download.
#[derive(Responder)]
#[response(content_type = "json")]
pub struct Download {
    body: String,
    disposition: Header<'static>,
}

#[get("/account/export")]
async fn export_data(session: CurrentSession, app: Services<'_>) -> AppResult<Download> {
    let user = signed_in_user(&session, app).await?;
    let doc = export::export(app, &user).await?;
    let body = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string());
    Ok(Download {
        body,
        disposition: Header::new(
            "Content-Disposition",
            "attachment; filename=\"latchkey-account.json\"",
        ),
    })
}

#[get("/account/export", rank = 2)]
fn export_signed_out() -> Redirect {
    super::next_path::sign_in_first(uri!(export_data))
}
