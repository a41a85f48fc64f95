//! Getting back in with an emailed code, and changing a password while signed in.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, routes, uri, Route};

use super::flash::{Flash, FlashMessage};
use super::guards::{CsrfForm, CsrfToken, CurrentSession, NoFields, SessionCookieJar};
use super::{NextPath, Page}; // NextPath: for uri!(login_page(..))
use crate::accounts::User;
use crate::codes::{self, Reset};
use crate::domain::{Email, NewPassword};
use crate::error::{AppError, AppResult};
use crate::limits;
use crate::report::Report;
use crate::request::RequestOrigin;
use crate::services::Services;
use crate::signin::{self, SignInError};

pub fn routes() -> Vec<Route> {
    routes![
        forgot_page,
        forgot,
        reset_page,
        reset,
        change_page,
        change_page_signed_out,
        change,
        change_signed_out
    ]
}

/// A form answer: done (a redirect with a notice), or the form again.
type FormAnswer = AppResult<Result<Flash<Redirect>, Page>>;

fn try_again(wait: &str) -> String {
    format!("Too many attempts. Please wait {wait} and try again.")
}

#[derive(FromForm)]
pub struct ForgotFields {
    email: Option<String>,
}

#[get("/password/forgot")]
fn forgot_page(csrf: CsrfToken) -> Page {
    Page::new("forgot", &csrf.0)
}

/// Always the same page and status, whether or not the account exists or the limits
/// allow a mail. The lookup, the code and the mail happen after the answer.
#[post("/password/forgot", data = "<form>")]
async fn forgot(
    form: CsrfForm<ForgotFields>,
    csrf: CsrfToken,
    origin: RequestOrigin,
    app: Services<'_>,
) -> AppResult<Page> {
    let typed = form.0.email.unwrap_or_default();
    let page = Page::new("forgot", &csrf.0).with("email", typed.trim());
    let email = match Email::parse(&typed) {
        Ok(e) => e,
        Err(msg) => return Ok(page.error(msg, Status::BadRequest)),
    };
    let limits = &app.settings.limits;
    if limits::reset_request(app.store, limits, &email, &origin.0.ip)
        .await?
        .is_err()
    {
        tracing::info!("password-reset request over the limit: no mail sent");
        return Ok(page.with("sent", true));
    }
    let app = app.owned();
    tokio::spawn(async move {
        if let Err(e) = codes::send_reset_code(app.borrow(), &email).await {
            tracing::warn!(error = %Report(&e), "reset code not sent");
        }
    });
    Ok(page.with("sent", true))
}

#[derive(FromForm)]
pub struct ResetFields {
    email: Option<String>,
    code: Option<String>,
    new_password: Option<String>,
}

impl ResetFields {
    /// What a reset needs, or what to say about the form.
    fn parse(&self) -> Result<(Email, String, NewPassword), &'static str> {
        let email = Email::parse(self.email.as_deref().unwrap_or(""))?;
        let code = codes::parse_code(self.code.as_deref().unwrap_or(""))
            .ok_or("Enter the 6-digit code from the email.")?;
        let password = NewPassword::parse(self.new_password.as_deref().unwrap_or(""))?;
        Ok((email, code, password))
    }
}

#[get("/password/reset?<email>")]
fn reset_page(email: Option<&str>, csrf: CsrfToken) -> Page {
    Page::new("reset", &csrf.0).with(
        "email",
        email.map(|e| e.trim().chars().take(254).collect::<String>()),
    )
}

/// What a refused code reads: the same words for a wrong, expired or burned code and
/// for an address with no account, so the page never tells them apart.
fn code_refused(app: Services<'_>) -> String {
    let codes = &app.settings.codes;
    format!(
        "That code is not right or has expired. A code works for {} minutes, and {} wrong \
         tries end it. Check the email, or ask for a new code.",
        codes.ttl.as_secs().div_ceil(60),
        codes.max_tries
    )
}

#[post("/password/reset", data = "<form>")]
async fn reset(
    form: CsrfForm<ResetFields>,
    csrf: CsrfToken,
    origin: RequestOrigin,
    app: Services<'_>,
    cookie: SessionCookieJar<'_>,
) -> FormAnswer {
    let typed = form.0.email.as_deref().unwrap_or("").trim();
    let page = Page::new("reset", &csrf.0).with("email", typed);
    let (email, code, password) = match form.0.parse() {
        Ok(input) => input,
        Err(msg) => return Ok(Err(page.error(msg, Status::BadRequest))),
    };
    match codes::reset_password(app, &email, &code, &password, &origin.0.ip).await? {
        Reset::Done => {}
        Reset::Throttled(t) => return Ok(Err(page.throttled(t, try_again))),
        // One answer for all three, whether or not the account exists or has a code.
        Reset::Wrong | Reset::Burned | Reset::Missing => {
            let msg = code_refused(app);
            return Ok(Err(page.error(msg, Status::BadRequest)));
        }
    }
    cookie.clear();
    Ok(Ok(Flash::success(
        Redirect::to(uri!(super::auth::login_page(_, _))),
        "Your password has been reset and every device has been signed out. Sign in with your new password.",
    )))
}

#[derive(FromForm)]
pub struct ChangeFields {
    current_password: Option<String>,
    new_password: Option<String>,
}

fn change_form(session: &CurrentSession, email: &str) -> Page {
    Page::new("password_change", &session.csrf)
        .with("signed_in", true)
        .with("user_email", email)
}

async fn signed_in_user(session: &CurrentSession, app: Services<'_>) -> AppResult<User> {
    app.accounts
        .find_by_id(&session.user_id)
        .await?
        .ok_or(AppError::NotFound)
}

#[get("/account/password")]
async fn change_page(
    session: CurrentSession,
    app: Services<'_>,
    flash: Option<FlashMessage>,
) -> AppResult<Page> {
    let user = signed_in_user(&session, app).await?;
    Ok(change_form(&session, &user.email).flash(flash))
}

#[get("/account/password", rank = 2)]
fn change_page_signed_out() -> Redirect {
    super::auth::sign_in_first(uri!(change_page))
}

/// A signed-out client posting the form (with its own token): sent to sign in, and
/// nothing changes.
#[post("/account/password", rank = 2, data = "<_form>")]
fn change_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    super::auth::sign_in_first(uri!(change_page))
}

/// A wrong current password counts as a failed sign-in: the same quotas.
#[post("/account/password", data = "<form>")]
async fn change(
    session: CurrentSession,
    form: CsrfForm<ChangeFields>,
    origin: RequestOrigin,
    app: Services<'_>,
) -> FormAnswer {
    let user = signed_in_user(&session, app).await?;
    let page = change_form(&session, &user.email);
    let new_password = match NewPassword::parse(form.0.new_password.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(msg) => return Ok(Err(page.error(msg, Status::BadRequest))),
    };
    // An account made before addresses were checked as strictly as now.
    let email = Email::parse(&user.email).map_err(|_| {
        AppError::BadRequest("This account's email address cannot receive mail.".into())
    })?;
    let current = form.0.current_password.as_deref().unwrap_or("");
    match signin::check_password(app, &email, current, &origin.0.ip).await {
        Ok(_) => {}
        Err(SignInError::WrongCredentials) => {
            let msg = "Your current password is not right.";
            return Ok(Err(page.error(msg, Status::Unauthorized)));
        }
        Err(SignInError::Throttled(t)) => return Ok(Err(page.throttled(t, try_again))),
        Err(SignInError::Failed(e)) => return Err(e.into()),
    }
    let ended = signin::replace_password(app, &user, &new_password, Some(&session.sid)).await?;
    let msg = match ended {
        0 => "Your password has been changed.".to_string(),
        1 => "Your password has been changed and 1 other device was signed out.".to_string(),
        n => format!("Your password has been changed and {n} other devices were signed out."),
    };
    Ok(Ok(Flash::success(
        Redirect::to(uri!(super::devices::devices)),
        msg,
    )))
}
