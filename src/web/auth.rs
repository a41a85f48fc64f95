//! Creating an account, signing in and signing out.

use rocket::form::FromForm;
use rocket::http::{Header, Status};
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route, State};

use super::guards::{Checked, CsrfToken, CurrentSession, HasCsrf, SessionCookieJar};
use super::Page;
use crate::accounts::{AccountError, Accounts, Hasher, User};
use crate::clock::{now_ms, retry_after_secs, wait_in_words};
use crate::config::Settings;
use crate::crypto::random_token;
use crate::domain::{Email, NewPassword};
use crate::error::{AppError, AppResult};
use crate::mail::Mailer;
use crate::request::{ClientIp, RequestOrigin};
use crate::sessions::{self, SessionSpec};
use crate::store::Store;
use crate::{limits, notices};

pub fn routes() -> Vec<Route> {
    routes![
        index,
        index_signed_out,
        register_page,
        register,
        login_page_signed_in,
        login_page,
        login,
        logout,
        logout_signed_out
    ]
}

/// The only answers a sign-in gives when the credentials are wrong, whichever part is.
const WRONG_CREDENTIALS: &str =
    "That email and password do not match an account. Check them and try again.";
/// Passwords longer than this are not worth hashing: no account has one.
const MAX_PASSWORD_INPUT: usize = 1024;

/// `next` is followed only when it is a path on this site.
pub fn local_path(next: Option<&str>) -> Option<String> {
    let n = next?;
    let ok = n.starts_with('/')
        && !n.starts_with("//")
        && !n.starts_with("/\\")
        && n.len() <= 512
        && !n.chars().any(|c| c.is_control() || c == '\\');
    ok.then(|| n.to_string())
}

#[get("/")]
fn index(_session: CurrentSession) -> Redirect {
    Redirect::to("/devices")
}

#[get("/", rank = 2)]
fn index_signed_out() -> Redirect {
    Redirect::to("/login")
}

#[derive(FromForm)]
pub struct CredentialsForm {
    email: Option<String>,
    password: Option<String>,
    #[field(default = false)]
    remember: bool,
    csrf_token: Option<String>,
}

impl HasCsrf for CredentialsForm {
    fn csrf_token(&self) -> &str {
        self.csrf_token.as_deref().unwrap_or("")
    }
}

#[get("/register")]
fn register_page(csrf: CsrfToken) -> Page {
    Page::new("register", &csrf.0)
}

#[allow(clippy::too_many_arguments)]
#[post("/register", data = "<form>")]
async fn register(
    form: Checked<CredentialsForm>,
    csrf: CsrfToken,
    origin: RequestOrigin,
    accounts: &State<Accounts>,
    hasher: &State<Hasher>,
    store: &State<Store>,
    settings: &State<Settings>,
    jar: SessionCookieJar<'_>,
) -> AppResult<Result<Redirect, Page>> {
    let f = form.0;
    let typed_email = f.email.unwrap_or_default();
    let page = Page::new("register", &csrf.0).with("email", typed_email.trim());
    let email = match Email::parse(&typed_email) {
        Ok(e) => e,
        Err(msg) => return Ok(Err(page.error(msg, Status::BadRequest))),
    };
    let password = match NewPassword::parse(f.password.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(msg) => return Ok(Err(page.error(msg, Status::BadRequest))),
    };
    let hash = hasher.hash(password.expose()).await?;
    let user = match accounts.create(&email, &hash).await {
        Ok(u) => u,
        Err(AccountError::Duplicate) => {
            return Ok(Err(page.error(
                "An account with this email address already exists. Sign in, or reset your password if you have forgotten it.",
                Status::BadRequest,
            )))
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user = %user.id, "account created");
    // The first device is known from the start: no "new sign-in" mail for it.
    let _ = accounts
        .note_device(
            &user.id,
            &notices::device_fingerprint(&origin.0),
            notices::KNOWN_DEVICE_WINDOW_MS,
        )
        .await;
    let started = sessions::start(
        store,
        settings,
        &user,
        &origin.0,
        SessionSpec::Browser { remember: false },
        random_token(),
    )
    .await?
    .ok_or_else(|| AppError::Internal("a new account's session was refused".into()))?;
    jar.set(started.cookie_value, None);
    Ok(Ok(Redirect::to("/devices")))
}

#[get("/login")]
fn login_page_signed_in(_session: CurrentSession) -> Redirect {
    Redirect::to("/devices")
}

#[get("/login?<next>", rank = 2)]
fn login_page(next: Option<&str>, csrf: CsrfToken, flash: Option<FlashMessage<'_>>) -> Page {
    Page::new("login", &csrf.0)
        .with("next", local_path(next))
        .flash(flash)
}

/// A sign-in page answer, with `Retry-After` when throttled.
/// A response value, built once and sent: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(rocket::Responder)]
pub enum LoginAnswer {
    Redirect(Redirect),
    Page(Page),
    Throttled(Page, Header<'static>),
}

#[allow(clippy::too_many_arguments)]
#[post("/login?<next>", data = "<form>")]
async fn login(
    form: Checked<CredentialsForm>,
    next: Option<&str>,
    csrf: CsrfToken,
    previous: Option<CurrentSession>,
    origin: RequestOrigin,
    ip: ClientIp,
    accounts: &State<Accounts>,
    hasher: &State<Hasher>,
    store: &State<Store>,
    settings: &State<Settings>,
    mailer: &State<Mailer>,
    jar: SessionCookieJar<'_>,
) -> AppResult<LoginAnswer> {
    let f = form.0;
    let typed_email = f.email.unwrap_or_default();
    let next = local_path(next);
    let page = Page::new("login", &csrf.0)
        .with("email", typed_email.trim())
        .with("next", &next)
        .with("remember", f.remember);
    let email = match Email::parse(&typed_email) {
        Ok(e) => e,
        Err(msg) => return Ok(LoginAnswer::Page(page.error(msg, Status::BadRequest))),
    };
    let password = f.password.unwrap_or_default();
    if password.is_empty() {
        return Ok(LoginAnswer::Page(
            page.error("Enter your password.", Status::BadRequest),
        ));
    }
    let attempt = match limits::sign_in(store, settings, &email.normalized(), &ip.text()).await {
        Ok(a) => a,
        Err(AppError::Throttled { retry_after }) => {
            let msg = format!(
                "Too many sign-in attempts. For your security, please wait {} and try again, or reset your password.",
                wait_in_words(retry_after)
            );
            return Ok(LoginAnswer::Throttled(
                page.error(msg, Status::TooManyRequests),
                Header::new("Retry-After", retry_after_secs(retry_after).to_string()),
            ));
        }
        Err(e) => return Err(e),
    };
    let user = verify_credentials(accounts, hasher, &email, &password).await?;
    let Some(user) = user else {
        return Ok(LoginAnswer::Page(
            page.error(WRONG_CREDENTIALS, Status::Unauthorized),
        ));
    };
    attempt.succeeded(store).await;
    if let Some(prev) = previous {
        store
            .revoke_session(&prev.user_id, &prev.sid, now_ms())
            .await?;
    }
    let remember = f.remember;
    let Some(started) = sessions::start(
        store,
        settings,
        &user,
        &origin.0,
        SessionSpec::Browser { remember },
        random_token(),
    )
    .await?
    else {
        // The password changed while this one was being checked.
        return Ok(LoginAnswer::Page(
            page.error(WRONG_CREDENTIALS, Status::Unauthorized),
        ));
    };
    jar.set(started.cookie_value, remember.then_some(started.lifetime));
    notices::after_sign_in(accounts, mailer, settings, &user, &origin.0).await;
    tracing::info!(user = %user.id, "signed in");
    Ok(LoginAnswer::Redirect(Redirect::to(
        next.unwrap_or_else(|| "/devices".into()),
    )))
}

/// Checks an email and password. An unknown email verifies a dummy hash, so both
/// answers take the same time.
pub async fn verify_credentials(
    accounts: &Accounts,
    hasher: &Hasher,
    email: &Email,
    password: &str,
) -> AppResult<Option<User>> {
    let user = accounts.find_by_email(email).await?;
    if password.chars().count() > MAX_PASSWORD_INPUT {
        return Ok(None);
    }
    let ok = hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    Ok(user.filter(|_| ok))
}

#[derive(FromForm)]
pub struct CsrfOnly {
    csrf_token: Option<String>,
}

impl HasCsrf for CsrfOnly {
    fn csrf_token(&self) -> &str {
        self.csrf_token.as_deref().unwrap_or("")
    }
}

#[post("/logout", data = "<_form>")]
async fn logout(
    session: CurrentSession,
    _form: Checked<CsrfOnly>,
    store: &State<Store>,
    jar: SessionCookieJar<'_>,
) -> AppResult<Flash<Redirect>> {
    store
        .revoke_session(&session.user_id, &session.sid, now_ms())
        .await?;
    jar.clear();
    Ok(Flash::success(
        Redirect::to("/login"),
        "You have been signed out.",
    ))
}

/// Signing out without a live session changes nothing but the stale cookie.
#[post("/logout", rank = 2)]
fn logout_signed_out(jar: SessionCookieJar<'_>) -> Redirect {
    jar.clear();
    Redirect::to("/login")
}
