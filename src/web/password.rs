//! Getting back in with an emailed code, and changing a password while signed in.

use rocket::form::FromForm;
use rocket::http::{Header, Status};
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route, State};
use uuid::Uuid;

use super::guards::{Checked, CsrfToken, CurrentSession, HasCsrf, SessionCookieJar};
use super::verify_credentials;
use super::Page;
use crate::accounts::{Accounts, Hasher, User};
use crate::clock::{now_ms, retry_after_secs, wait_in_words};
use crate::codes;
use crate::config::Settings;
use crate::domain::{Email, NewPassword};
use crate::error::{AppError, AppResult};
use crate::limits;
use crate::mail::Mailer;
use crate::request::ClientIp;
use crate::store::{CodeCheck, Store};

pub fn routes() -> Vec<Route> {
    routes![
        forgot_page,
        forgot,
        reset_page,
        reset,
        change_page,
        change_page_signed_out,
        change
    ]
}

#[derive(FromForm)]
pub struct ForgotForm {
    email: Option<String>,
    csrf_token: Option<String>,
}

impl HasCsrf for ForgotForm {
    fn csrf_token(&self) -> &str {
        self.csrf_token.as_deref().unwrap_or("")
    }
}

#[get("/password/forgot")]
fn forgot_page(csrf: CsrfToken) -> Page {
    Page::new("forgot", &csrf.0)
}

/// Always the same page and status, whether or not the account exists or the limits
/// allow a mail. The lookup, the code and the mail happen after the answer.
#[post("/password/forgot", data = "<form>")]
async fn forgot(
    form: Checked<ForgotForm>,
    csrf: CsrfToken,
    ip: ClientIp,
    accounts: &State<Accounts>,
    store: &State<Store>,
    settings: &State<Settings>,
    mailer: &State<Mailer>,
) -> AppResult<Page> {
    let typed = form.0.email.unwrap_or_default();
    let page = Page::new("forgot", &csrf.0).with("email", typed.trim());
    let email = match Email::parse(&typed) {
        Ok(e) => e,
        Err(msg) => return Ok(page.error(msg, Status::BadRequest)),
    };
    let allowed =
        match limits::reset_request(store, settings, &email.normalized(), &ip.text()).await {
            Ok(_) => true,
            Err(AppError::Throttled { .. }) => false,
            Err(e) => return Err(e),
        };
    if allowed {
        let (accounts, store, settings, mailer) = (
            accounts.inner().clone(),
            store.inner().clone(),
            settings.inner().clone(),
            mailer.inner().clone(),
        );
        tokio::spawn(async move {
            if let Err(e) =
                codes::send_reset_code(&accounts, &store, &settings, &mailer, &email).await
            {
                tracing::warn!(error = %e, "reset code not sent");
            }
        });
    } else {
        tracing::info!("password-reset request over the limit: no mail sent");
    }
    Ok(page.with("sent", true))
}

#[derive(FromForm)]
pub struct ResetForm {
    email: Option<String>,
    code: Option<String>,
    new_password: Option<String>,
    csrf_token: Option<String>,
}

impl HasCsrf for ResetForm {
    fn csrf_token(&self) -> &str {
        self.csrf_token.as_deref().unwrap_or("")
    }
}

#[get("/password/reset?<email>")]
fn reset_page(email: Option<&str>, csrf: CsrfToken) -> Page {
    Page::new("reset", &csrf.0).with(
        "email",
        email.map(|e| e.trim().chars().take(254).collect::<String>()),
    )
}

/// A response value, built once and sent: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(rocket::Responder)]
pub enum FormAnswer {
    Done(Flash<Redirect>),
    Page(Page),
    Throttled(Page, Header<'static>),
}

fn throttled(page: Page, retry_after: std::time::Duration, what: &str) -> FormAnswer {
    FormAnswer::Throttled(
        page.error(
            format!(
                "Too many {what}. Please wait {} and try again.",
                wait_in_words(retry_after)
            ),
            Status::TooManyRequests,
        ),
        Header::new("Retry-After", retry_after_secs(retry_after).to_string()),
    )
}

#[allow(clippy::too_many_arguments)]
#[post("/password/reset", data = "<form>")]
async fn reset(
    form: Checked<ResetForm>,
    csrf: CsrfToken,
    ip: ClientIp,
    accounts: &State<Accounts>,
    hasher: &State<Hasher>,
    store: &State<Store>,
    settings: &State<Settings>,
    jar: SessionCookieJar<'_>,
) -> AppResult<FormAnswer> {
    let f = form.0;
    let typed = f.email.unwrap_or_default();
    let page = Page::new("reset", &csrf.0).with("email", typed.trim());
    let bad = |page: Page, msg: &str| Ok(FormAnswer::Page(page.error(msg, Status::BadRequest)));
    let email = match Email::parse(&typed) {
        Ok(e) => e,
        Err(msg) => return bad(page, msg),
    };
    let Some(code) = codes::parse_code(f.code.as_deref().unwrap_or("")) else {
        return bad(page, "Enter the 6-digit code from the email.");
    };
    let password = match NewPassword::parse(f.new_password.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(msg) => return bad(page, msg),
    };
    let attempt = match limits::reset_code_try(store, settings, &ip.text()).await {
        Ok(a) => a,
        Err(AppError::Throttled { retry_after }) => {
            return Ok(throttled(page, retry_after, "attempts"))
        }
        Err(e) => return Err(e),
    };
    let user = accounts.find_by_email(&email).await?;
    // An unknown account checks a code too (under an id no account has), so both
    // answers take the same path.
    let uid = user.as_ref().map(|u| u.id).unwrap_or(Uuid::nil());
    let check = store
        .check_reset_code(
            &uid,
            &codes::code_mac(settings, &uid, &code),
            settings.codes.max_tries,
            now_ms(),
        )
        .await?;
    let user = match (check, user) {
        (CodeCheck::Right, Some(user)) => user,
        (CodeCheck::Burned, _) => {
            return bad(
                page,
                "Too many wrong codes: that code no longer works. Ask for a new code.",
            );
        }
        (CodeCheck::Wrong, _) => {
            return bad(
                page,
                "That code is not right. Check the email and try again.",
            )
        }
        _ => {
            return bad(
                page,
                "That code is not right or has expired. Ask for a new code.",
            )
        }
    };
    attempt.succeeded(store).await;
    let hash = hasher.hash(password.expose()).await?;
    let version = accounts.set_password(&user, &hash).await?;
    let ended = store
        .revoke_sessions(&user.id, None, Some(version), now_ms())
        .await?;
    jar.clear();
    tracing::info!(user = %user.id, ended, "password reset; every session ended");
    Ok(FormAnswer::Done(Flash::success(
        Redirect::to("/login"),
        "Your password has been reset and every device has been signed out. Sign in with your new password.",
    )))
}

#[derive(FromForm)]
pub struct ChangeForm {
    current_password: Option<String>,
    new_password: Option<String>,
    csrf_token: Option<String>,
}

impl HasCsrf for ChangeForm {
    fn csrf_token(&self) -> &str {
        self.csrf_token.as_deref().unwrap_or("")
    }
}

fn change_form(session: &CurrentSession, email: &str) -> Page {
    Page::new("password_change", &session.csrf)
        .with("signed_in", true)
        .with("user_email", email)
}

async fn signed_in_user(session: &CurrentSession, accounts: &Accounts) -> AppResult<User> {
    accounts
        .find_by_id(&session.user_id)
        .await?
        .ok_or(AppError::NotFound)
}

#[get("/account/password")]
async fn change_page(
    session: CurrentSession,
    accounts: &State<Accounts>,
    flash: Option<FlashMessage<'_>>,
) -> AppResult<Page> {
    let user = signed_in_user(&session, accounts).await?;
    Ok(change_form(&session, &user.email).flash(flash))
}

#[get("/account/password", rank = 2)]
fn change_page_signed_out() -> Redirect {
    Redirect::to("/login?next=/account/password")
}

#[allow(clippy::too_many_arguments)]
#[post("/account/password", data = "<form>")]
async fn change(
    session: CurrentSession,
    form: Checked<ChangeForm>,
    ip: ClientIp,
    accounts: &State<Accounts>,
    hasher: &State<Hasher>,
    store: &State<Store>,
    settings: &State<Settings>,
) -> AppResult<FormAnswer> {
    let f = form.0;
    let user = signed_in_user(&session, accounts).await?;
    let page = change_form(&session, &user.email);
    let new_password = match NewPassword::parse(f.new_password.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(msg) => return Ok(FormAnswer::Page(page.error(msg, Status::BadRequest))),
    };
    let email = Email::parse(&user.email).map_err(|e| AppError::Internal(e.into()))?;
    // A wrong current password is a failed sign-in: same quotas.
    let attempt = match limits::sign_in(store, settings, &email.normalized(), &ip.text()).await {
        Ok(a) => a,
        Err(AppError::Throttled { retry_after }) => {
            return Ok(throttled(page, retry_after, "attempts"))
        }
        Err(e) => return Err(e),
    };
    let current = f.current_password.unwrap_or_default();
    if verify_credentials(accounts, hasher, &email, &current)
        .await?
        .is_none()
    {
        return Ok(FormAnswer::Page(page.error(
            "Your current password is not right.",
            Status::Unauthorized,
        )));
    }
    attempt.succeeded(store).await;
    let hash = hasher.hash(new_password.expose()).await?;
    let version = accounts.set_password(&user, &hash).await?;
    let ended = store
        .revoke_sessions(&user.id, Some(&session.sid), Some(version), now_ms())
        .await?;
    tracing::info!(user = %user.id, ended, "password changed; other sessions ended");
    let msg = match ended {
        0 => "Your password has been changed.".to_string(),
        1 => "Your password has been changed and 1 other device was signed out.".to_string(),
        n => format!("Your password has been changed and {n} other devices were signed out."),
    };
    Ok(FormAnswer::Done(Flash::success(
        Redirect::to("/devices"),
        msg,
    )))
}
