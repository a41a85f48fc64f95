//! Getting back in with an emailed code, and changing a password while signed in.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, routes, uri, Route};

use super::flash::{Flash, FlashMessage};
use super::guards::{CsrfForm, CsrfToken, CurrentSession, NoFields, SessionCookieJar};
use super::next_path::NextPath; // NextPath: for uri!(login_page(..))
use super::page::Page;
use crate::accounts::{Slot, User};
use crate::http::error::{AppError, AppResult};
use crate::http::request::RequestOrigin;
use crate::services::activity::{Event, Kind};
use crate::services::second_factor::{self, Notice};
use crate::services::signin::limits;
use crate::services::signin::password_reset::{self, Reset};
use crate::services::signin::trusted_browsers::{self, BrowserClaim};
use crate::services::signin::{self, SignInError};
use crate::services::Services;
use crate::support::input::{Email, NewPassword};
use crate::support::report::Report;

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

pub(super) fn try_again(wait: &str) -> String {
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
/// Who a reset request counts against: this browser's own budget when its device
/// cookie is the typed account's (strangers cannot then use up the owner's requests),
/// else the account's and the IP's. Only a browser with a trusted-browser cookie causes the
/// account lookup here, and it learns nothing from it.
async fn reset_request_allowed(
    app: Services<'_>,
    email: &Email,
    ip: &str,
    browser: Option<&BrowserClaim>,
) -> AppResult<bool> {
    let user = match browser {
        Some(_) => app.accounts.find_by_email(email).await?,
        None => None,
    };
    let source = trusted_browsers::source(app.store, browser, user.as_ref(), email, ip).await?;
    Ok(
        limits::reset_request(app.store, &app.settings.limits, source)
            .await?
            .is_ok(),
    )
}

#[post("/password/forgot", data = "<form>")]
async fn forgot(
    form: CsrfForm<ForgotFields>,
    csrf: CsrfToken,
    origin: RequestOrigin,
    app: Services<'_>,
    cookie: SessionCookieJar<'_>,
) -> AppResult<Page> {
    let typed = form.0.email.unwrap_or_default();
    let page = Page::new("forgot", &csrf.0).with("email", typed.trim());
    let email = match Email::parse(&typed) {
        Ok(e) => e,
        Err(msg) => return Ok(page.error(msg, Status::BadRequest)),
    };
    let browser = cookie.trusted_browser();
    if !reset_request_allowed(app, &email, &origin.0.ip, browser.as_ref()).await? {
        tracing::info!("password-reset request over the limit: no mail sent");
        return Ok(page.with("sent", true));
    }
    let app = app.owned();
    tokio::spawn(async move {
        if let Err(e) = password_reset::send_reset_code(app.borrow(), &email).await {
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
        let code = password_reset::parse_code(self.code.as_deref().unwrap_or(""))
            .ok_or("Enter the 6-digit code from the email.")?;
        let password = NewPassword::parse(self.new_password.as_deref().unwrap_or(""), &email)?;
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
    match password_reset::reset_password(app, &email, &code, &password, &origin.0.ip).await? {
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

pub(super) async fn signed_in_user(session: &CurrentSession, app: Services<'_>) -> AppResult<User> {
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
    super::next_path::sign_in_first(uri!(change_page))
}

/// A signed-out client posting the form (with its own token): sent to sign in, and
/// nothing changes.
#[post("/account/password", rank = 2, data = "<_form>")]
fn change_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    super::next_path::sign_in_first(uri!(change_page))
}

/// The account's address as the one parser takes it; an account made before addresses
/// were checked as strictly as now answers 400.
pub(super) fn account_email(user: &User) -> AppResult<Email> {
    Email::parse(&user.email).map_err(|_| {
        AppError::BadRequest("This account's email address cannot receive mail.".into())
    })
}

/// The current password, checked as a sign-in is (the same quotas; a wrong one
/// counts as a failed sign-in): its hashing slot, or the form again saying why not.
pub(super) async fn check_current(
    app: Services<'_>,
    user: &User,
    typed: Option<&str>,
    ip: &str,
    browser: Option<&BrowserClaim>,
    page: Page,
) -> AppResult<Result<Slot, Page>> {
    let email = account_email(user)?;
    let current = signin::Credentials {
        email: &email,
        password: typed.unwrap_or(""),
        ip,
        browser,
    };
    Ok(match signin::check_password(app, current).await {
        Ok(verified) => Ok(verified.slot),
        Err(SignInError::WrongCredentials) => {
            let msg = "Your current password is not right.";
            Err(page.error(msg, Status::Unauthorized))
        }
        Err(SignInError::Throttled(t)) => Err(page.throttled(t, try_again)),
        Err(SignInError::Failed(e)) => return Err(e.into()),
    })
}

/// A new password ends every other session and the account's trusted browsers; this
/// browser stays signed in and is trusted again. The owner is mailed.
#[post("/account/password", data = "<form>")]
async fn change(
    session: CurrentSession,
    form: CsrfForm<ChangeFields>,
    origin: RequestOrigin,
    app: Services<'_>,
    cookie: SessionCookieJar<'_>,
) -> FormAnswer {
    let user = signed_in_user(&session, app).await?;
    let page = change_form(&session, &user.email);
    // Checked before the current password: a refused one costs no hash.
    let email = account_email(&user)?;
    let typed_new = form.0.new_password.as_deref().unwrap_or("");
    let new_password = match NewPassword::parse(typed_new, &email) {
        Ok(p) => p,
        Err(why) => return Ok(Err(page.error(why.message(), Status::BadRequest))),
    };
    let browser = cookie.trusted_browser();
    let typed = form.0.current_password.as_deref();
    let ip = &origin.0.ip;
    let slot = match check_current(app, &user, typed, ip, browser.as_ref(), page).await? {
        Ok(slot) => slot,
        Err(page) => return Ok(Err(page)),
    };
    let keep = Some(session.sid.as_str());
    let event = Event::new(Kind::PasswordChanged).from(&origin.0);
    let ended = signin::replace_password(app, &slot, &user, &new_password, keep, event).await?;
    drop(slot);
    second_factor::mail_owner(&app, &user, Notice::PasswordChanged { ended });
    if let Some(claim) = trusted_browsers::remember(app.store, &user, browser.as_ref()).await {
        cookie.set_trusted_browser(&claim);
    }
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
