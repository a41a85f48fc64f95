//! Verifying the account's address: the code page (`/account/verify`), the mail's
//! one-click link (`/account/verify/<token>`, signed in or not), sending a new code
//! (`/account/verify/resend`), and the page an unverified account meets where
//! `require_verified_email` keeps it out (apps, forward authentication).

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, routes, uri, Route};

use super::flash::{Flash, FlashMessage};
use super::guards::{CsrfForm, CsrfToken, CurrentSession, NoFields};
use super::page::Page;
use super::password::{signed_in_user, try_again};
use crate::http::error::AppResult;
use crate::http::request::RequestOrigin;
use crate::services::verification::{self, Asked, CodeCheck};
use crate::services::Services;
use crate::support::report::Report;

pub fn routes() -> Vec<Route> {
    routes![
        code_page,
        code_page_signed_out,
        check_code,
        check_code_signed_out,
        link,
        resend,
        resend_signed_out
    ]
}

/// The one answer to a resend, whatever happened (mailed, the hour's mails used up,
/// verified already): nothing about the account or the limits shows through it.
const RESEND_NOTICE: &str = "If your address still needs verifying, a new code and link are on their way. They replace any you had. Check your inbox (and spam folder).";

fn code_form(session: &CurrentSession) -> Page {
    Page::new("verify", &session.csrf)
        .with("signed_in", true)
        .with("user_email", &session.email)
        .with("verified", session.email_verified)
}

#[get("/account/verify")]
fn code_page(session: CurrentSession, flash: Option<FlashMessage>) -> Page {
    code_form(&session).flash(flash)
}

#[get("/account/verify", rank = 2)]
fn code_page_signed_out() -> Redirect {
    super::next_path::sign_in_first(uri!(code_page))
}

#[derive(FromForm)]
pub struct CodeFields {
    code: Option<String>,
}

/// A right code verifies the address; a wrong one is counted (the 5th burns the code,
/// and its link) against the client's sign-in budget too.
#[post("/account/verify", data = "<form>")]
async fn check_code(
    session: CurrentSession,
    form: CsrfForm<CodeFields>,
    origin: RequestOrigin,
    app: Services<'_>,
) -> AppResult<Result<Flash<Redirect>, Page>> {
    let page = code_form(&session);
    let typed = form.0.code.unwrap_or_default();
    let checked = verification::check_code(app, &session.user_id, &typed, &origin.0.ip).await?;
    let refused = match checked {
        CodeCheck::Verified => {
            return Ok(Ok(Flash::success(
                Redirect::to(uri!(super::devices::devices)),
                "Your email address is verified. Thank you.",
            )))
        }
        CodeCheck::Throttled(t) => return Ok(Err(page.throttled(t, try_again))),
        CodeCheck::Wrong => "That code is not right, or it has expired. Check the latest email we sent you, or send a new code.",
        CodeCheck::Burned => "Too many wrong codes: that code no longer works. Send a new code and use the latest email.",
    };
    Ok(Err(page.error(refused, Status::BadRequest)))
}

#[post("/account/verify", rank = 2, data = "<_form>")]
fn check_code_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    super::next_path::sign_in_first(uri!(code_page))
}

/// The mail's link: verifies whoever opens it (it names its account), signed in or
/// not, then says so. A used, replaced, expired or altered link changes nothing.
#[get("/account/verify/<token>")]
async fn link(
    token: &str,
    csrf: CsrfToken,
    session: Option<CurrentSession>,
    app: Services<'_>,
) -> AppResult<Page> {
    let signed_in = session.is_some();
    let page = Page::new("verify_link", &csrf.0).with("signed_in", signed_in);
    let page = match &session {
        Some(s) => page.with("user_email", &s.email),
        None => page,
    };
    Ok(match verification::use_link(app, token).await? {
        Some(user) => page.with("verified_email", user.email),
        None => page.with("failed", true).status(Status::BadRequest),
    })
}

/// Mails a new code and link (at most 3 an hour per account, and per client address
/// as reset requests are), answering the same whatever happened.
#[post("/account/verify/resend", data = "<_form>")]
async fn resend(
    session: CurrentSession,
    _form: CsrfForm<NoFields>,
    origin: RequestOrigin,
    app: Services<'_>,
) -> AppResult<Flash<Redirect>> {
    let user = signed_in_user(&session, app).await?;
    if let Err(e) = verification::send(app, &user, Asked::Resend(&origin.0)).await {
        // The same answer: the page tells nothing about what happened to the mail.
        tracing::warn!(error = %Report(&e), user = %user.id, "verification mail not sent");
    }
    Ok(Flash::success(Redirect::to(uri!(code_page)), RESEND_NOTICE))
}

#[post("/account/verify/resend", rank = 2, data = "<_form>")]
fn resend_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    super::next_path::sign_in_first(uri!(code_page))
}

/// What an unverified account sees where `require_verified_email` keeps it out: why,
/// and the way on (the code page, a new mail). 403: signed in, not allowed yet.
pub(super) fn verify_first(session: &CurrentSession, what: &str) -> Page {
    Page::new("verify_first", &session.csrf)
        .with("signed_in", true)
        .with("user_email", &session.email)
        .with("what", what)
        .status(Status::Forbidden)
}
