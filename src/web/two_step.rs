//! The second page of signing in to an account with a second factor: `GET`/`POST
//! /login/second-factor`, where the pending sign-in the password left
//! (`crate::services::signin::two_step`) is finished with an authenticator-app code or
//! a recovery code.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, routes, uri, Route};

use super::auth::{set_sign_in_cookies, SignInTarget};
use super::flash::{Flash, FlashMessage};
use super::guards::{CsrfForm, CsrfToken, CurrentSession, SessionCookieJar};
use super::next_path::NextPath; // NextPath: for uri!(login_page(..))
use super::page::Page;
use crate::http::error::AppResult;
use crate::http::request::RequestOrigin;
use crate::services::passkeys;
use crate::services::signin::two_step::{
    self, CodeStep, PendingCookie, StepError, MAX_WRONG_CODES,
};
use crate::services::Services;

pub fn routes() -> Vec<Route> {
    routes![code_page, submit_code]
}

/// What a browser whose pending sign-in has gone is told on the sign-in page.
const START_AGAIN: &str =
    "Your sign-in timed out or was already used. Enter your email and password again.";
/// The one answer to a wrong code, whether it was mistyped, already used or made up.
const WRONG_CODE: &str =
    "That code is not right, or it has already been used. Check your authenticator app and try again.";
const SIGN_IN_FIRST: &str = "Sign in with your email and password first.";
const NO_CODE: &str =
    "Enter the 6-digit code from your authenticator app, or one of your recovery codes.";
const TOO_MANY: &str =
    "Too many wrong codes. For your security this sign-in has ended: enter your email and password again.";

/// What the code page answers: the redirect of a finished sign-in, the page (the
/// form, or why not), or back to the sign-in page with a notice.
#[derive(rocket::Responder)]
pub enum CodeAnswer {
    SignedIn(Redirect),
    Page(Page),
    StartAgain(Flash<Redirect>),
}

#[derive(FromForm)]
pub struct CodeForm {
    code: Option<String>,
    #[field(default = false)]
    remember: bool,
}

/// The code page of a live pending sign-in; anything else goes back to the sign-in
/// page (with a notice when there was one that has ended).
#[get("/login/second-factor")]
async fn code_page(
    csrf: CsrfToken,
    flash: Option<FlashMessage>,
    app: Services<'_>,
    cookie: SessionCookieJar<'_>,
) -> AppResult<CodeAnswer> {
    let Some(pending_cookie) = cookie.pending() else {
        return Ok(start_again(&cookie, SIGN_IN_FIRST));
    };
    Ok(match two_step::pending(app, &pending_cookie).await? {
        Some(pending) => CodeAnswer::Page(
            with_passkeys(app, code_form(&csrf.0, pending.remember), &pending_cookie)
                .await?
                .with("left", MAX_WRONG_CODES.saturating_sub(pending.wrong))
                .form_action(target_form_action(app, &pending.target).await)
                .flash(flash),
        ),
        None => start_again(&cookie, START_AGAIN),
    })
}

fn code_form(csrf: &str, remember: bool) -> Page {
    Page::new("second_factor", csrf).with("remember", remember)
}

/// The code page offers "Use a passkey instead" when the account has a passkey that
/// still signs in.
async fn with_passkeys(app: Services<'_>, page: Page, cookie: &PendingCookie) -> AppResult<Page> {
    let usable = app
        .accounts
        .passkeys(&cookie.user_id)
        .await?
        .iter()
        .any(|p| p.cloned_at.is_none());
    Ok(page
        .with("has_passkeys", usable)
        .passkeys(passkeys::available(app.settings)))
}

/// The other origin this page's form may end at, as on the sign-in page
/// (`SignInTarget::form_action`): a right code's 303 chain ends at the pending sign-in's
/// target, and Chromium checks the page's `form-action` against every step of it. An
/// app's authorization request counts only for a registered client's registered
/// redirect URI; an `rd` only when it is followable under today's settings.
async fn target_form_action(app: Services<'_>, target: &str) -> Option<String> {
    SignInTarget::from_text(app.settings, target)
        .form_action(app)
        .await
}

/// The form shown again after a code that did not sign in: its `form-action` from the
/// pending sign-in, which is still there (a store read on this path only; without it,
/// the form still works and ends on our own pages).
async fn form_again(app: Services<'_>, page: Page, cookie: &PendingCookie) -> Page {
    let target = match two_step::pending(app, cookie).await {
        Ok(Some(pending)) => pending.target,
        _ => return page,
    };
    page.form_action(target_form_action(app, &target).await)
}

/// Back to the sign-in page with `notice`; the pending cookie goes.
fn start_again(cookie: &SessionCookieJar<'_>, notice: &str) -> CodeAnswer {
    cookie.clear_pending();
    let to_sign_in = Redirect::to(uri!(super::auth::login_page(_, _)));
    CodeAnswer::StartAgain(Flash::success(to_sign_in, notice))
}

/// A right code: the session cookies, and 303 to where the sign-in was going. Wrong:
/// 401 with the form again, or, after the last wrong code allowed, 401 without it.
#[post("/login/second-factor", data = "<form>")]
async fn submit_code(
    form: CsrfForm<CodeForm>,
    csrf: CsrfToken,
    previous: Option<CurrentSession>,
    origin: RequestOrigin,
    app: Services<'_>,
    cookie: SessionCookieJar<'_>,
) -> AppResult<CodeAnswer> {
    let f = form.0;
    let page = code_form(&csrf.0, f.remember);
    let Some(pending_cookie) = cookie.pending() else {
        return Ok(start_again(&cookie, START_AGAIN));
    };
    let code = f.code.as_deref().unwrap_or("").trim();
    if code.is_empty() {
        let page = form_again(app, page, &pending_cookie).await;
        return Ok(CodeAnswer::Page(page.error(NO_CODE, Status::BadRequest)));
    }
    let browser = cookie.trusted_browser();
    let step = CodeStep {
        cookie: &pending_cookie,
        code,
        origin: &origin.0,
        browser: browser.as_ref(),
        remember: f.remember,
        replaces: previous.map(|p| (p.user_id, p.sid)),
    };
    match two_step::complete(app, step).await {
        Ok(done) => {
            cookie.clear_pending();
            set_sign_in_cookies(&cookie, done.signed, f.remember);
            let target = SignInTarget::from_text(app.settings, &done.target);
            Ok(CodeAnswer::SignedIn(target.redirect()))
        }
        Err(e @ (StepError::Wrong { .. } | StepError::Throttled(_))) => {
            let page = form_again(app, page, &pending_cookie).await;
            code_refused(page, e, &cookie)
        }
        Err(e) => code_refused(page, e, &cookie),
    }
}

/// The answer to a code step that did not sign in.
fn code_refused(page: Page, e: StepError, cookie: &SessionCookieJar<'_>) -> AppResult<CodeAnswer> {
    Ok(CodeAnswer::Page(match e {
        StepError::Wrong { left } => page
            .with("left", left)
            .error(WRONG_CODE, Status::Unauthorized),
        StepError::Ended => {
            cookie.clear_pending();
            page.with("ended", true)
                .error(TOO_MANY, Status::Unauthorized)
        }
        StepError::Throttled(t) => page.throttled(t, |wait| {
            format!(
                "Too many sign-in attempts. For your security, please wait {wait} and try again."
            )
        }),
        StepError::NoPending => return Ok(start_again(cookie, START_AGAIN)),
        StepError::Failed(e) => return Err(e.into()),
    }))
}
