//! Creating an account, signing in and signing out.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, routes, uri, Route};

use super::flash::{Flash, FlashMessage};
use super::guards::{CsrfForm, CsrfToken, CurrentSession, NoFields, SessionCookieJar};
use super::next_path::NextPath;
use super::page::Page;
use crate::accounts::{AccountError, Work};
use crate::config::Settings;
use crate::http::error::{AppError, AppResult};
use crate::http::request::RequestOrigin;
use crate::services::activity::{self, EndedBy, Event, Kind};
use crate::services::passkeys;
use crate::services::return_to::ReturnTo;
use crate::services::sessions::{self, SessionSpec};
use crate::services::signin::limits::{self, Throttled};
use crate::services::signin::new_device;
use crate::services::signin::trusted_browsers;
use crate::services::signin::two_step;
use crate::services::signin::{self, Passed, SignIn, SignInError};
use crate::services::verification::{self, Asked};
use crate::services::Services;
use crate::store::Amr;
use crate::support::input::{Email, NewPassword};
use crate::support::report::Report;

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

#[get("/")]
fn index(_session: CurrentSession) -> Redirect {
    Redirect::to(uri!(super::devices::devices))
}

#[get("/", rank = 2)]
fn index_signed_out() -> Redirect {
    Redirect::to(uri!(login_page(_, _)))
}

#[derive(FromForm)]
pub struct SignInFields {
    email: Option<String>,
    password: Option<String>,
    #[field(default = false)]
    remember: bool,
    /// Where a reverse proxy sent the user from (the hidden field of `?rd=`).
    rd: Option<String>,
}

impl SignInFields {
    /// The email as typed, to show it again.
    fn typed_email(&self) -> &str {
        self.email.as_deref().unwrap_or("").trim()
    }

    /// What a sign-in needs, or what to say about the form.
    fn for_sign_in(&self) -> Result<(Email, &str), &'static str> {
        let email = Email::parse(self.email.as_deref().unwrap_or(""))?;
        match self.password.as_deref() {
            Some(p) if !p.is_empty() => Ok((email, p)),
            _ => Err("Enter your password."),
        }
    }

    /// What a new account needs, or what to say about the form.
    fn for_new_account(&self) -> Result<(Email, NewPassword), &'static str> {
        let email = Email::parse(self.email.as_deref().unwrap_or(""))?;
        let password = NewPassword::parse(self.password.as_deref().unwrap_or(""), &email)?;
        Ok((email, password))
    }
}

#[get("/register")]
fn register_page(csrf: CsrfToken) -> Page {
    Page::new("register", &csrf.0)
}

/// A new account's password hash, once the client IP's registration quota allows it.
/// A hash that never ran (the hasher was busy, the client left) does not count.
async fn new_account_hash(
    app: Services<'_>,
    password: &NewPassword,
    ip: &str,
) -> AppResult<Result<String, Throttled>> {
    let attempt = match limits::register(app.store, &app.settings.limits, ip).await? {
        Ok(attempt) => attempt,
        Err(t) => return Ok(Err(t)),
    };
    let slot = match app.hasher.slot(Work::NewAccount).await {
        Ok(slot) => slot,
        Err(e) => {
            attempt.abandoned(app.store).await;
            return Err(e.into());
        }
    };
    Ok(Ok(slot.hash(password.expose()).await?))
}

#[post("/register", data = "<form>")]
async fn register(
    form: CsrfForm<SignInFields>,
    csrf: CsrfToken,
    origin: RequestOrigin,
    app: Services<'_>,
    cookie: SessionCookieJar<'_>,
) -> AppResult<Result<Redirect, Page>> {
    let page = Page::new("register", &csrf.0).with("email", form.0.typed_email());
    let (email, password) = match form.0.for_new_account() {
        Ok(valid) => valid,
        Err(msg) => return Ok(Err(page.error(msg, Status::BadRequest))),
    };
    let hash = match new_account_hash(app, &password, &origin.0.ip).await? {
        Ok(hash) => hash,
        Err(t) => return Ok(Err(page.throttled(t, |wait| {
            format!("Too many new accounts from your network address. Please wait {wait} and try again.")
        }))),
    };
    let user = match app.accounts.create(&email, &hash).await {
        Ok(u) => u,
        // One answer whether the account holding the address is verified or not: an
        // owner whose address someone else registered takes it over by a reset.
        Err(AccountError::Duplicate) => {
            return Ok(Err(page.error(
                "An account with this email address already exists. Sign in, or reset the password instead: a reset code goes to the address, and whoever uses it owns the account.",
                Status::BadRequest,
            )))
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user = %user.id, "account created");
    new_device::first_device(app.accounts, &user, &origin.0).await;
    let spec = SessionSpec::Browser { remember: false };
    let started = sessions::start(
        app.store,
        app.settings,
        &user,
        &origin.0,
        spec,
        Amr::Password,
    )
    .await?
    .ok_or(AppError::Internal("a new account's session was refused"))?;
    let first = Event::new(Kind::SignIn)
        .from(&origin.0)
        .session(&started.sid)
        .detail("password");
    activity::record(app, &user.id, first).await;
    cookie.set(started.cookie_value, None);
    if let Err(e) = verification::send(app, &user, Asked::Registration(&origin.0)).await {
        // The account stands; "resend" on every page mails the code again.
        tracing::warn!(error = %Report(&e), user = %user.id, "verification mail not sent");
    }
    let had = cookie.trusted_browser();
    if let Some(claim) = trusted_browsers::remember(app.store, &user, had.as_ref()).await {
        cookie.set_trusted_browser(&claim);
    }
    Ok(Ok(Redirect::to(uri!(super::devices::devices))))
}

/// `rd` when the sign-in may send the user there (`forward::ReturnTo`); anything else
/// is dropped (logged), and the user lands on the devices page.
pub(super) fn return_to(settings: &Settings, rd: Option<&str>) -> Option<ReturnTo> {
    let rd = rd.filter(|r| !r.is_empty())?;
    let allow_http = !settings.sessions.cookie_secure;
    ReturnTo::parse(rd, &settings.server.forward_auth_domains, allow_http)
        .map_err(|why| tracing::info!(%why, "sign-in: rd is not followed"))
        .ok()
}

/// Signed in already: straight back to the proxied app, or to the devices page —
/// unless an app's authorization asks to sign in again (`prompt=login`, `max_age`:
/// its `next` carries `signed_in_after`), which shows the sign-in form.
#[get("/login?<rd>&<next>")]
async fn login_page_signed_in(
    _session: CurrentSession,
    rd: Option<&str>,
    next: Option<NextPath>,
    csrf: CsrfToken,
    flash: Option<FlashMessage>,
    app: Services<'_>,
) -> Result<Redirect, Page> {
    if next
        .as_ref()
        .is_some_and(|n| n.to_string().contains("signed_in_after="))
    {
        return Err(login_page(next, rd, csrf, flash, app).await);
    }
    Ok(match return_to(app.settings, rd) {
        Some(rd) => rd.redirect(),
        None => Redirect::to(uri!(super::devices::devices)),
    })
}

// `uri!(login_page(..))` names `NextPath` where it is written: modules that use it
// import `NextPath`.
#[get("/login?<next>&<rd>", rank = 2)]
async fn login_page(
    next: Option<NextPath>,
    rd: Option<&str>,
    csrf: CsrfToken,
    flash: Option<FlashMessage>,
    app: Services<'_>,
) -> Page {
    // Signing in for an app whose consent is remembered ends at the app; with `rd`, at
    // the proxied app.
    let target = SignInTarget {
        rd: return_to(app.settings, rd),
        next,
    };
    let form_action = target.form_action(app).await;
    Page::new("login", &csrf.0)
        .with("rd", target.rd)
        .with("next", target.next)
        .form_action(form_action)
        .passkeys(passkeys::available(app.settings))
        .flash(flash)
}

#[post("/login?<next>", data = "<form>")]
async fn login(
    form: CsrfForm<SignInFields>,
    next: Option<NextPath>,
    csrf: CsrfToken,
    previous: Option<CurrentSession>,
    origin: RequestOrigin,
    app: Services<'_>,
    cookie: SessionCookieJar<'_>,
) -> AppResult<Result<Redirect, Page>> {
    let f = form.0;
    // Checked again: the hidden field is whatever the client sent.
    // Known before a session starts: a session exists only if this answer carries it.
    let target = SignInTarget {
        rd: return_to(app.settings, f.rd.as_deref()),
        next,
    };
    let page = Page::new("login", &csrf.0)
        .with("email", f.typed_email())
        .with("next", &target.next)
        .with("rd", &target.rd)
        .with("remember", f.remember)
        .form_action(target.form_action(app).await)
        .passkeys(passkeys::available(app.settings));
    let (email, password) = match f.for_sign_in() {
        Ok(input) => input,
        Err(msg) => return Ok(Err(page.error(msg, Status::BadRequest))),
    };
    let browser = cookie.trusted_browser();
    let credentials = signin::Credentials {
        email: &email,
        password,
        ip: &origin.0.ip,
        browser: browser.as_ref(),
    };
    let request = browser_sign_in(credentials, &origin, f.remember, previous);
    match signin::sign_in(app, request).await {
        Ok(Passed::SignedIn(signed)) => {
            set_sign_in_cookies(&cookie, signed, f.remember);
            Ok(Ok(target.redirect()))
        }
        Ok(Passed::CodeNext(user)) => {
            let pending = two_step::begin(app, &user, f.remember, target.text()).await?;
            cookie.set_pending(&pending);
            Ok(Ok(Redirect::to(uri!(super::two_step::code_page))))
        }
        // Only an API sign-in is kept back for an unverified address.
        Ok(Passed::VerifyFirst(_)) => Err(AppError::Internal(
            "a browser sign-in was asked to verify first",
        )),
        Err(e) => sign_in_refused(page, e),
    }
}

/// Where a sign-in goes once it succeeds: a followable `rd`, else a local `next`, else
/// the devices page.
pub(super) struct SignInTarget {
    pub rd: Option<ReturnTo>,
    pub next: Option<NextPath>,
}

impl SignInTarget {
    /// The other origin the sign-in form's 303 chain may end at, for the page's
    /// `form-action` (Chromium checks it against every redirect after a form): a
    /// followable `rd`'s (forward authentication across hosts), or a registered app's
    /// when `next` is its authorization request (`oauth::next_form_action`).
    pub async fn form_action(&self, app: Services<'_>) -> Option<String> {
        match &self.rd {
            Some(rd) => Some(rd.origin()),
            None => super::oauth::next_form_action(app, self.next.as_ref()).await,
        }
    }

    pub fn redirect(self) -> Redirect {
        match (self.rd, self.next) {
            (Some(rd), _) => rd.redirect(),
            (None, Some(next)) => next.redirect(),
            (None, None) => Redirect::to(uri!(super::devices::devices)),
        }
    }

    /// As a pending sign-in keeps it: the URL, the path, or empty for the devices page.
    pub(super) fn text(&self) -> String {
        match (&self.rd, &self.next) {
            (Some(rd), _) => rd.as_str().to_string(),
            (None, Some(next)) => next.to_string(),
            (None, None) => String::new(),
        }
    }

    /// The target a pending sign-in kept, checked again as when it was first given
    /// (`rd` against the settings of now); anything else is the devices page.
    pub fn from_text(settings: &Settings, text: &str) -> SignInTarget {
        if text.starts_with('/') {
            SignInTarget {
                rd: None,
                next: NextPath::parse(text),
            }
        } else {
            SignInTarget {
                rd: return_to(settings, Some(text)),
                next: None,
            }
        }
    }
}

/// A browser's sign-in: it starts a browser session and ends the one it had (never
/// reused: no fixation).
fn browser_sign_in<'a>(
    credentials: signin::Credentials<'a>,
    origin: &'a RequestOrigin,
    remember: bool,
    previous: Option<CurrentSession>,
) -> SignIn<'a> {
    SignIn {
        credentials,
        origin: &origin.0,
        session: SessionSpec::Browser { remember },
        replaces: previous.map(|p| (p.user_id, p.sid)),
    }
}

/// The session cookie (persistent with "keep me signed in") and the trusted-browser cookie.
pub(super) fn set_sign_in_cookies(
    cookie: &SessionCookieJar<'_>,
    signed: signin::SignedIn,
    remember: bool,
) {
    let session = signed.session;
    cookie.set(session.cookie_value, remember.then_some(session.lifetime));
    if let Some(claim) = &signed.browser {
        cookie.set_trusted_browser(claim);
    }
}

/// The sign-in form again, saying why not.
fn sign_in_refused(page: Page, e: SignInError) -> AppResult<Result<Redirect, Page>> {
    Ok(Err(match e {
        SignInError::WrongCredentials => page.error(WRONG_CREDENTIALS, Status::Unauthorized),
        SignInError::Throttled(t) => page.throttled(t, |wait| {
            format!("Too many sign-in attempts. For your security, please wait {wait} and try again, or reset your password.")
        }),
        SignInError::Failed(e) => return Err(e.into()),
    }))
}

#[post("/logout", data = "<_form>")]
async fn logout(
    session: CurrentSession,
    _form: CsrfForm<NoFields>,
    app: Services<'_>,
    cookie: SessionCookieJar<'_>,
    origin: RequestOrigin,
) -> AppResult<Flash<Redirect>> {
    if sessions::end(app.store, &session.user_id, &session.sid).await? {
        let ended = Event::session_ended(Some(&session.sid), EndedBy::ThisDevice).from(&origin.0);
        activity::record(app, &session.user_id, ended).await;
    }
    cookie.clear();
    Ok(Flash::success(
        Redirect::to(uri!(login_page(_, _))),
        "You have been signed out.",
    ))
}

/// Signing out without a live session changes nothing but the stale cookie; the form
/// still needs this client's token, so another site cannot drop the cookie either.
#[post("/logout", rank = 2, data = "<_form>")]
fn logout_signed_out(_form: CsrfForm<NoFields>, cookie: SessionCookieJar<'_>) -> Redirect {
    cookie.clear();
    Redirect::to(uri!(login_page(_, _)))
}
