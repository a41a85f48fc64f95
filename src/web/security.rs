//! The account's security pages: the overview (`/account/security`), setting up an
//! authenticator app (`/account/totp`), turning it off, and new recovery codes. Each
//! change re-checks the current password as a sign-in does (the same quotas), and
//! the service (`crate::services::second_factor`) mails the owner.
//!
//! The secret being set up is shown on the set-up page only; between that page and
//! the confirming form it travels sealed for this account (`Enrolment::seal`) in the
//! set-up cookie, never in the clear.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, routes, uri, Route};
use serde_json::json;

use super::flash::{Flash, FlashMessage};
use super::guards::{site_cookie, CsrfForm, CurrentSession, NoFields, SessionCookieJar};
use super::page::Page;
use super::password::{check_current, signed_in_user, try_again};
use crate::http::error::{AppError, AppResult};
use crate::http::request::RequestOrigin;
use crate::services::passkeys;
use crate::services::second_factor::{
    self, Enrolment, SealingKeys, SecondFactorError, SETUP_TTL_MS,
};
use crate::services::signin::trusted_browsers::BrowserClaim;
use crate::services::signin::two_step::{self, CodeError};
use crate::services::Services;
use crate::support::clock::exact_time;

pub fn routes() -> Vec<Route> {
    routes![
        security,
        security_signed_out,
        totp_page,
        totp_page_signed_out,
        enable,
        disable,
        recovery_codes,
        signed_out_post,
        disable_signed_out,
        recovery_codes_signed_out
    ]
}

type FormAnswer = AppResult<Result<Flash<Redirect>, Page>>;

fn setup_cookie_name(jar: &SessionCookieJar<'_>) -> &'static str {
    if jar.settings.sessions.cookie_secure {
        "__Host-latchkey_totp_setup"
    } else {
        "latchkey_totp_setup"
    }
}

fn signed_in_page(template: &'static str, session: &CurrentSession) -> Page {
    Page::new(template, &session.csrf)
        .with("signed_in", true)
        .with("user_email", &session.email)
}

/// The overview with the account's second-factor status and its passkeys.
pub(super) async fn overview(app: Services<'_>, session: &CurrentSession) -> AppResult<Page> {
    let status = second_factor::enrolled(&app, &session.user_id)
        .await
        .map_err(service_failure)?;
    let passkeys: Vec<_> = passkeys::list(app, &session.user_id)
        .await?
        .into_iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "added_text": exact_time(p.created_ms),
                "last_used_text": p.last_used_ms.map(exact_time),
                "synced": p.synced,
                "cloned": p.cloned,
            })
        })
        .collect();
    let page = signed_in_page("security", session)
        .with("enabled", status.is_some())
        .with("passkey_count", passkeys.len())
        .with("passkey_max", passkeys::MAX_PASSKEYS)
        .with("passkeys", passkeys)
        .passkeys(passkeys::available(app.settings));
    Ok(match status {
        Some(s) => page
            .with("enabled_at_text", exact_time(s.enabled_at))
            .with("recovery_codes_left", s.recovery_codes_left),
        None => page,
    })
}

/// What a service failure answers: a client's mistake never gets here.
fn service_failure(e: SecondFactorError) -> AppError {
    match e {
        SecondFactorError::Failed(e) => e.into(),
        other => AppError::BadRequest(other.to_string()),
    }
}

#[get("/account/security")]
async fn security(
    session: CurrentSession,
    app: Services<'_>,
    flash: Option<FlashMessage>,
) -> AppResult<Page> {
    Ok(overview(app, &session).await?.flash(flash))
}

#[get("/account/security", rank = 2)]
fn security_signed_out() -> Redirect {
    super::next_path::sign_in_first(uri!(security))
}

/// The set-up page for `enrolment`, which the set-up cookie then carries.
fn setup_page(
    session: &CurrentSession,
    enrolment: &Enrolment,
    keys: &SealingKeys,
    jar: &SessionCookieJar<'_>,
) -> AppResult<Page> {
    let email = &session.email;
    let (Some(uri), Some(qr), Some(sealed)) = (
        enrolment.otpauth_uri(email),
        enrolment.qr_svg(email),
        enrolment.seal(keys, &session.user_id),
    ) else {
        return Err(AppError::BadRequest(
            "This account's email address cannot be put in an authenticator app.".into(),
        ));
    };
    let mut cookie = site_cookie(
        setup_cookie_name(jar),
        sealed,
        jar.settings.sessions.cookie_secure,
    );
    cookie.set_max_age(rocket::time::Duration::milliseconds(SETUP_TTL_MS));
    jar.jar.add(cookie);
    Ok(signed_in_page("totp_setup", session)
        .with("otpauth_uri", uri)
        .with("qr_svg", qr)
        .with("secret", grouped(&enrolment.secret_base32()))
        .with("issuer", second_factor::ISSUER))
}

/// The base32 secret in groups of four, as typed by hand.
fn grouped(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The set-up this browser was shown, if it is this account's and still current.
fn pending(
    session: &CurrentSession,
    keys: &SealingKeys,
    jar: &SessionCookieJar<'_>,
) -> Option<Enrolment> {
    let cookie = jar.jar.get(setup_cookie_name(jar))?;
    Enrolment::open(keys, &session.user_id, cookie.value())
}

/// A reload shows the same secret (the one in the set-up cookie) until it expires.
#[get("/account/totp")]
async fn totp_page(
    session: CurrentSession,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> AppResult<Result<Page, Flash<Redirect>>> {
    if second_factor::enrolled(&app, &session.user_id)
        .await
        .map_err(service_failure)?
        .is_some()
    {
        return Ok(Err(Flash::success(
            Redirect::to(uri!(security)),
            "Two-step sign-in is already on.",
        )));
    }
    let keys = SealingKeys::new(&app.settings.second_factor);
    let enrolment = pending(&session, &keys, &jar).unwrap_or_default();
    Ok(Ok(setup_page(&session, &enrolment, &keys, &jar)?))
}

#[get("/account/totp", rank = 2)]
fn totp_page_signed_out() -> Redirect {
    super::next_path::sign_in_first(uri!(totp_page))
}

#[derive(FromForm)]
pub struct EnableFields {
    code: Option<String>,
    current_password: Option<String>,
}

/// The current password, then the code from the app: right → on, and the recovery
/// codes shown once.
#[post("/account/totp", data = "<form>")]
async fn enable(
    session: CurrentSession,
    form: CsrfForm<EnableFields>,
    origin: RequestOrigin,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> AppResult<Page> {
    let keys = SealingKeys::new(&app.settings.second_factor);
    let Some(enrolment) = pending(&session, &keys, &jar) else {
        // No set-up shown to this browser for this account, or it expired: a new one.
        let page = setup_page(&session, &Enrolment::new(), &keys, &jar)?;
        let msg = "The set-up expired. Scan this new QR code, then enter the code it shows.";
        return Ok(page.error(msg, Status::BadRequest));
    };
    let page = setup_page(&session, &enrolment, &keys, &jar)?;
    let user = signed_in_user(&session, app).await?;
    let typed = form.0.current_password.as_deref();
    let browser = jar.trusted_browser();
    match check_current(app, &user, typed, &origin.0.ip, browser.as_ref(), page).await? {
        Ok(slot) => drop(slot),
        Err(page) => return Ok(page),
    }
    let code = form.0.code.as_deref().unwrap_or("");
    let codes = match second_factor::enable(&app, &session.user_id, &enrolment, code).await {
        Ok(codes) => codes,
        Err(SecondFactorError::AlreadyEnrolled) => {
            return Ok(overview(app, &session)
                .await?
                .error("Two-step sign-in is already on.", Status::Conflict))
        }
        Err(SecondFactorError::Failed(e)) => return Err(e.into()),
        Err(_) => {
            let page = setup_page(&session, &enrolment, &keys, &jar)?;
            let msg = "That code is not right. Enter the 6-digit code your app shows now.";
            return Ok(page.error(msg, Status::BadRequest));
        }
    };
    jar.jar.remove(super::guards::cookie_removal(
        setup_cookie_name(&jar),
        jar.settings.sessions.cookie_secure,
    ));
    Ok(signed_in_page("recovery_codes", &session)
        .with("codes", codes)
        .with("just_enabled", true))
}

#[derive(FromForm)]
pub struct DisableFields {
    code: Option<String>,
    current_password: Option<String>,
}

/// The current password and a current code (or a recovery code): off, and every
/// other session ends.
#[post("/account/totp/disable", data = "<form>")]
async fn disable(
    session: CurrentSession,
    form: CsrfForm<DisableFields>,
    origin: RequestOrigin,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> FormAnswer {
    let page = disable_form(app, &session).await?;
    let user = signed_in_user(&session, app).await?;
    let typed = form.0.current_password.as_deref();
    let browser = jar.trusted_browser();
    let (ip, browser) = (&origin.0.ip, browser.as_ref());
    let page = match check_current(app, &user, typed, ip, browser, page).await? {
        Ok(slot) => {
            drop(slot);
            disable_form(app, &session).await?
        }
        Err(page) => return Ok(Err(page)),
    };
    let code = form.0.code.as_deref().unwrap_or("").trim();
    let accepted = match turning_off_code(app, &user, code, browser, ip, page).await? {
        Ok(accepted) => accepted,
        Err(page) => return Ok(Err(page)),
    };
    let keep = Some(session.sid.as_str());
    let ended = match second_factor::disable(&app, &session.user_id, accepted, keep).await {
        Ok(ended) => ended,
        Err(SecondFactorError::Failed(e)) => return Err(e.into()),
        Err(SecondFactorError::NotEnrolled) => {
            return Ok(Err(not_on(disable_form(app, &session).await?)))
        }
        Err(_) => {
            let msg = "That recovery code was just used. Enter the code your app shows now.";
            let page = disable_form(app, &session).await?;
            return Ok(Err(page.error(msg, Status::BadRequest)));
        }
    };
    let msg = match ended {
        0 => "Two-step sign-in is off.".to_string(),
        1 => "Two-step sign-in is off, and 1 other device was signed out.".to_string(),
        n => format!("Two-step sign-in is off, and {n} other devices were signed out."),
    };
    Ok(Ok(Flash::success(Redirect::to(uri!(security)), msg)))
}

/// The overview with the turning-off form open.
async fn disable_form(app: Services<'_>, session: &CurrentSession) -> AppResult<Page> {
    Ok(overview(app, session).await?.with("open", "disable"))
}

fn not_on(page: Page) -> Page {
    page.error("Two-step sign-in is not on.", Status::Conflict)
}

/// The code typed to turn the second factor off, checked as at sign-in: a wrong one
/// counts as a failed sign-in (`two_step::check_account_code`). `Err(page)` says why not.
async fn turning_off_code(
    app: Services<'_>,
    user: &crate::accounts::User,
    code: &str,
    browser: Option<&BrowserClaim>,
    ip: &str,
    page: Page,
) -> AppResult<Result<second_factor::Accepted, Page>> {
    if code.is_empty() {
        let msg = "Enter the 6-digit code your app shows now, or one of your recovery codes.";
        return Ok(Err(page.error(msg, Status::BadRequest)));
    }
    let on = second_factor::enrolled(&app, &user.id)
        .await
        .map_err(service_failure)?;
    if on.is_none() {
        return Ok(Err(not_on(page)));
    }
    Ok(
        match two_step::check_account_code(app, user, code, browser, ip).await {
            Ok(accepted) => Ok(accepted),
            Err(CodeError::Throttled(t)) => Err(page.throttled(t, try_again)),
            Err(CodeError::Failed(e)) => return Err(e.into()),
            Err(CodeError::Wrong | CodeError::Stale) => {
                let msg = "That code is not right or was already used. Enter the 6-digit code your app shows now (a code works once), or one of your recovery codes.";
                Err(page.error(msg, Status::BadRequest))
            }
        },
    )
}

#[derive(FromForm)]
pub struct PasswordOnly {
    current_password: Option<String>,
}

/// The current password: a new set of ten recovery codes, shown once.
#[post("/account/recovery-codes", data = "<form>")]
async fn recovery_codes(
    session: CurrentSession,
    form: CsrfForm<PasswordOnly>,
    origin: RequestOrigin,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> AppResult<Page> {
    let page = overview(app, &session).await?.with("open", "codes");
    let user = signed_in_user(&session, app).await?;
    let typed = form.0.current_password.as_deref();
    let browser = jar.trusted_browser();
    match check_current(app, &user, typed, &origin.0.ip, browser.as_ref(), page).await? {
        Ok(slot) => drop(slot),
        Err(page) => return Ok(page),
    }
    match second_factor::replace_recovery_codes(&app, &session.user_id).await {
        Ok(codes) => Ok(signed_in_page("recovery_codes", &session).with("codes", codes)),
        Err(SecondFactorError::NotEnrolled) => Ok(overview(app, &session).await?.error(
            "Turn on two-step sign-in first: recovery codes come with it.",
            Status::Conflict,
        )),
        Err(e) => Err(service_failure(e)),
    }
}

/// A signed-out client posting one of these forms (with its own token): sent to sign
/// in, and nothing changes.
#[post("/account/totp", rank = 2, data = "<_form>")]
fn signed_out_post(_form: CsrfForm<NoFields>) -> Redirect {
    super::next_path::sign_in_first(uri!(security))
}

#[post("/account/totp/disable", rank = 2, data = "<_form>")]
fn disable_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    super::next_path::sign_in_first(uri!(security))
}

#[post("/account/recovery-codes", rank = 2, data = "<_form>")]
fn recovery_codes_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    super::next_path::sign_in_first(uri!(security))
}
