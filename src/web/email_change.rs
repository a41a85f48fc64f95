//! Changing the account's address (`/account/email`): the new address with the
//! current password (and the second factor when on) mails a code to it; the same
//! page then asks for the code (`/account/email/confirm`). The undo link mailed to the
//! old address (`/account/email/undo/<link>`) works signed out. The sequence is
//! `crate::services::account::email_change`.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, routes, uri, Route};

use super::flash::{Flash, FlashMessage};
use super::guards::{CsrfForm, CsrfToken, CurrentSession, NoFields, SessionCookieJar};
use super::owner_check::{check_owner, OwnerProof};
use super::page::Page;
use super::password::signed_in_user;
use crate::accounts::User;
use crate::http::error::AppResult;
use crate::http::request::RequestOrigin;
use crate::services::account::email_change::{self, Confirmed, Undone};
use crate::services::account::mail::Actor;
use crate::services::second_factor;
use crate::services::signin::password_reset::parse_code;
use crate::services::Services;
use crate::support::input::Email;

pub fn routes() -> Vec<Route> {
    routes![
        email_page,
        email_page_signed_out,
        start,
        start_signed_out,
        confirm,
        confirm_signed_out,
        undo
    ]
}

type FormAnswer = AppResult<Result<Flash<Redirect>, Page>>;

/// The page: the form for a new address, and the code form when a change waits.
async fn email_form(app: Services<'_>, session: &CurrentSession, user: &User) -> AppResult<Page> {
    let two_step = second_factor::has_second_factor(app, user).await?;
    let waiting = email_change::waiting(app, user).await?;
    Ok(Page::new("email_change", &session.csrf)
        .with("signed_in", true)
        .with("user_email", &user.email)
        .with("current_email", &user.email)
        .with("two_step", two_step)
        .with("minutes", app.settings.codes.ttl.as_secs().div_ceil(60))
        .with("waiting", waiting))
}

#[get("/account/email")]
async fn email_page(
    session: CurrentSession,
    app: Services<'_>,
    flash: Option<FlashMessage>,
) -> AppResult<Page> {
    let user = signed_in_user(&session, app).await?;
    Ok(email_form(app, &session, &user).await?.flash(flash))
}

#[get("/account/email", rank = 2)]
fn email_page_signed_out() -> Redirect {
    super::next_path::sign_in_first(uri!(email_page))
}

#[derive(FromForm)]
pub struct StartFields {
    new_email: Option<String>,
    current_password: Option<String>,
    code: Option<String>,
}

/// The new address, then the owner's proof; then a code goes to the new address. An
/// address of another account answers exactly as any other (and gets no mail).
#[post("/account/email", data = "<form>")]
async fn start(
    session: CurrentSession,
    form: CsrfForm<StartFields>,
    origin: RequestOrigin,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> FormAnswer {
    let user = signed_in_user(&session, app).await?;
    let page = email_form(app, &session, &user).await?;
    let typed = form.0.new_email.as_deref().unwrap_or("").trim();
    let page = page.with("new_email", typed);
    let to = match Email::parse(typed) {
        Ok(to) => to,
        Err(msg) => return Ok(Err(page.error(msg, Status::BadRequest))),
    };
    if to.normalized() == user.email.to_lowercase() {
        let msg = "That is already your address. Enter the new one.";
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
    let page = email_form(app, &session, &user)
        .await?
        .with("new_email", typed);
    if let Err(t) = email_change::start(app, &user, &to, &Actor::Browser(&origin.0)).await? {
        return Ok(Err(page.throttled(t, |wait| {
            format!("You asked for too many codes. Please wait {wait} and try again.")
        })));
    }
    Ok(Ok(Flash::success(
        Redirect::to(uri!(email_page)),
        format!(
            "We sent a 6-digit code to {}. Enter it below to finish the change.",
            to.as_str()
        ),
    )))
}

#[post("/account/email", rank = 2, data = "<_form>")]
fn start_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    super::next_path::sign_in_first(uri!(email_page))
}

#[derive(FromForm)]
pub struct ConfirmFields {
    code: Option<String>,
}

/// What a refused code reads: one answer for a wrong code and for an address that
/// another account took meanwhile.
fn code_refused(app: Services<'_>) -> String {
    let codes = &app.settings.codes;
    format!(
        "That code is not right. A code works for {} minutes, and {} wrong tries end the change. \
         Check the email at the new address, or start again.",
        codes.ttl.as_secs().div_ceil(60),
        codes.max_tries
    )
}

#[post("/account/email/confirm", data = "<form>")]
async fn confirm(
    session: CurrentSession,
    form: CsrfForm<ConfirmFields>,
    origin: RequestOrigin,
    app: Services<'_>,
) -> FormAnswer {
    let user = signed_in_user(&session, app).await?;
    let page = email_form(app, &session, &user).await?;
    let Some(code) = parse_code(form.0.code.as_deref().unwrap_or("")) else {
        let msg = "Enter the 6-digit code from the email.";
        return Ok(Err(page.error(msg, Status::BadRequest)));
    };
    let actor = Actor::Browser(&origin.0);
    match email_change::confirm(app, &user, &code, &actor).await? {
        Confirmed::Changed { to } => Ok(Ok(Flash::success(
            Redirect::to(uri!(email_page)),
            format!("Your address is now {to}. We told your old address how to undo this."),
        ))),
        Confirmed::Wrong => Ok(Err(page.error(code_refused(app), Status::BadRequest))),
        Confirmed::Missing => {
            let page = email_form(app, &session, &user).await?;
            let msg = "No change of address is waiting: it expired, or too many wrong codes ended it. Start again.";
            Ok(Err(page.error(msg, Status::BadRequest)))
        }
    }
}

#[post("/account/email/confirm", rank = 2, data = "<_form>")]
fn confirm_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    super::next_path::sign_in_first(uri!(email_page))
}

/// The undo link: the old address back and every session ended; this browser's
/// cookie goes too. An unknown, used or expired link answers 400 and changes nothing.
#[get("/account/email/undo/<link>")]
async fn undo(
    link: &str,
    csrf: CsrfToken,
    origin: RequestOrigin,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> AppResult<Page> {
    let page = Page::new("email_undone", &csrf.0);
    Ok(
        match email_change::undo(app, link, &Actor::Browser(&origin.0)).await? {
            Undone::Restored { email, ended } => {
                jar.clear();
                page.with("restored", email).with("ended", ended)
            }
            Undone::Taken => page.error(
                "The old address now belongs to another account, so it cannot be put back. \
                 Ask the administrator of this Latchkey for help.",
                Status::Conflict,
            ),
            Undone::Unknown => page.error(
                "This link is not valid: it was already used, has expired (links work for 7 days), \
                 or was copied incompletely.",
                Status::BadRequest,
            ),
        },
    )
}
