//! Passkeys in the browser: the JSON endpoints the passkey script (`static/passkeys.js`)
//! drives (`/account/passkeys/options`, `/account/passkeys`, `/login/passkey/options`,
//! `/login/passkey`), speaking the WebAuthn Level 3 JSON forms, and the forms that
//! rename and remove a passkey on `/account/security`. The services
//! (`crate::services::passkeys`) do the work; this file reads requests and answers.
//!
//! Every JSON POST carries the page's CSRF token in `X-CSRF-Token` (or a `csrf_token`
//! field) and a JSON content type; anything else is refused with 403 before a service
//! runs. Refusals answer `{"error": "…"}` with the status the contract names.

use std::time::Duration;

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::form::FromForm;
use rocket::http::{Header, Status};
use rocket::outcome::Outcome;
use rocket::request::Request;
use rocket::response::{self, Redirect, Responder};
use rocket::serde::json::Json;
use rocket::{post, routes, uri, Route};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::auth::{set_sign_in_cookies, SignInTarget};
use super::flash::Flash;
use super::guards::{CsrfForm, CsrfToken, CurrentSession, SessionCookieJar};
use super::next_path::NextPath;
use super::password::{check_current, signed_in_user};
use crate::accounts::User;
use crate::http::error::{AppError, AppResult};
use crate::http::request::RequestOrigin;
use crate::services::passkeys::sign_in::{self as passkey_sign_in, Assertion, PasskeySignIn};
use crate::services::passkeys::{self, register, PasskeyError, RemoveError, MAX_PASSKEYS};
use crate::services::signin::two_step::{self, PasskeyStep, StepError};
use crate::services::signin::{self, SignInError};
use crate::services::Services;
use crate::store::Sessions;
use crate::support::clock::{now_ms, retry_after_secs, wait_in_words};
use crate::support::crypto::constant_time_eq;
use crate::support::input::Email;

pub fn routes() -> Vec<Route> {
    routes![add_options, add, rename, remove, sign_in_options, sign_in]
}

/// A sign-in this recent counts as re-checked for adding or removing a passkey.
const RECENT_SIGN_IN_MS: i64 = 5 * 60 * 1000;
/// The largest JSON body an endpoint reads (an attestation is a few kilobytes).
const JSON_LIMIT_KIB: u64 = 32;

const REFUSED: &str =
    "That passkey was not accepted. Try again, or sign in with your email and password.";
const UNAVAILABLE: &str =
    "Passkeys are unavailable on this server: it is reached by an IP address, and passkeys need a host name.";
const START_AGAIN: &str =
    "Your sign-in timed out or was already used. Enter your email and password again.";

/// A JSON answer: a status, a body, and a `Retry-After` when throttled.
pub struct JsonAnswer {
    status: Status,
    body: Value,
    retry_after: Option<Duration>,
}

impl JsonAnswer {
    fn ok(status: Status, body: Value) -> JsonAnswer {
        JsonAnswer {
            status,
            body,
            retry_after: None,
        }
    }

    fn error(status: Status, message: impl Into<String>) -> JsonAnswer {
        JsonAnswer::ok(status, json!({ "error": message.into() }))
    }

    fn throttled(wait: Duration) -> JsonAnswer {
        let message = format!(
            "Too many sign-in attempts. For your security, please wait {} and try again.",
            wait_in_words(wait)
        );
        JsonAnswer {
            retry_after: Some(wait),
            ..JsonAnswer::error(Status::TooManyRequests, message)
        }
    }
}

impl<'r> Responder<'r, 'static> for JsonAnswer {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Json(self.body).respond_to(req)?;
        res.set_status(self.status);
        if let Some(wait) = self.retry_after {
            res.set_header(Header::new(
                "Retry-After",
                retry_after_secs(wait).to_string(),
            ));
        }
        Ok(res)
    }
}

/// A passkey service's refusal as the JSON answer; a failure as the error it is.
fn refused(e: PasskeyError, wrong: Status) -> AppResult<JsonAnswer> {
    Ok(match e {
        PasskeyError::Unavailable => JsonAnswer::error(Status::NotFound, UNAVAILABLE),
        PasskeyError::Refused => JsonAnswer::error(wrong, REFUSED),
        PasskeyError::Throttled(t) => JsonAnswer::throttled(t.retry_after),
        PasskeyError::TooMany => JsonAnswer::error(
            Status::Conflict,
            format!(
                "You have {MAX_PASSKEYS} passkeys, the most an account may have. Remove one first."
            ),
        ),
        PasskeyError::Duplicate => {
            JsonAnswer::error(Status::Conflict, "This passkey is already registered.")
        }
        e @ PasskeyError::BadName(_) => JsonAnswer::error(Status::BadRequest, e.to_string()),
        PasskeyError::Failed(e) => return Err(e.into()),
    })
}

/// A JSON body whose CSRF token matched, read into `T`; or why not (the route answers
/// it as JSON). An empty body reads as `{}`.
pub struct JsonBody<T>(Result<T, JsonAnswer>);

fn json_refusal<'r, T: DeserializeOwned + Send + 'r>(
    status: Status,
    message: &str,
) -> data::Outcome<'r, JsonBody<T>> {
    Outcome::Success(JsonBody(Err(JsonAnswer::error(status, message))))
}

#[rocket::async_trait]
impl<'r, T: DeserializeOwned + Send + 'r> FromData<'r> for JsonBody<T> {
    type Error = AppError;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        const FORBIDDEN: &str =
            "The request did not carry this page's token. Reload the page and try again.";
        if !req.content_type().is_some_and(|ct| ct.is_json()) {
            return json_refusal(Status::Forbidden, FORBIDDEN);
        }
        let text = match data.open(JSON_LIMIT_KIB.kibibytes()).into_string().await {
            Ok(text) if text.is_complete() => text.into_inner(),
            Ok(_) => return json_refusal(Status::PayloadTooLarge, "The request is too large."),
            Err(_) => return json_refusal(Status::BadRequest, "The request could not be read."),
        };
        let value: Value = if text.trim().is_empty() {
            json!({})
        } else {
            match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(_) => return json_refusal(Status::BadRequest, "The request is not JSON."),
            }
        };
        let sent = req
            .headers()
            .get_one("X-CSRF-Token")
            .filter(|t| !t.is_empty())
            .or_else(|| value.get("csrf_token").and_then(Value::as_str))
            .unwrap_or("")
            .to_string();
        let expected = match req.guard::<CsrfToken>().await {
            Outcome::Success(t) => t,
            Outcome::Error((s, e)) => return Outcome::Error((s, e)),
            Outcome::Forward(_) => return json_refusal(Status::Forbidden, FORBIDDEN),
        };
        if !constant_time_eq(&sent, &expected.0) {
            tracing::info!(path = %req.uri().path(), "refused a JSON request with a missing or wrong CSRF token");
            return json_refusal(Status::Forbidden, FORBIDDEN);
        }
        match serde_json::from_value(value) {
            Ok(body) => Outcome::Success(JsonBody(Ok(body))),
            Err(e) => {
                tracing::debug!(error = %e, "unreadable passkey request");
                json_refusal(Status::BadRequest, "The request could not be read.")
            }
        }
    }
}

/// Whether this session signed in within the last 5 minutes.
async fn signed_in_recently(app: Services<'_>, session: &CurrentSession) -> AppResult<bool> {
    let now = now_ms();
    let sessions = app.store.list_sessions(&session.user_id, now).await?;
    Ok(sessions
        .iter()
        .any(|s| s.sid == session.sid && now - s.created_ms < RECENT_SIGN_IN_MS))
}

/// The account re-checked for a passkey change: a sign-in of the last 5 minutes, or
/// its current password (checked as a sign-in is: the same quotas). `Err` the answer.
async fn recheck(
    app: Services<'_>,
    session: &CurrentSession,
    user: &User,
    password: Option<&str>,
    jar: &SessionCookieJar<'_>,
    ip: &str,
) -> AppResult<Result<(), JsonAnswer>> {
    if signed_in_recently(app, session).await? {
        return Ok(Ok(()));
    }
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Ok(Err(JsonAnswer::ok(
            Status::Forbidden,
            json!({ "error": "Enter your current password first.", "reauth": true }),
        )));
    };
    let email = Email::parse(&user.email).map_err(|_| {
        AppError::BadRequest("This account's email address cannot receive mail.".into())
    })?;
    let browser = jar.trusted_browser();
    let current = signin::Credentials {
        email: &email,
        password,
        ip,
        browser: browser.as_ref(),
    };
    Ok(match signin::check_password(app, current).await {
        Ok(_) => Ok(()),
        Err(SignInError::WrongCredentials) => Err(JsonAnswer::ok(
            Status::Unauthorized,
            json!({ "error": "Your current password is not right.", "reauth": true }),
        )),
        Err(SignInError::Throttled(t)) => Err(JsonAnswer::throttled(t.retry_after)),
        Err(SignInError::Failed(e)) => return Err(e.into()),
    })
}

#[derive(Deserialize)]
struct AddOptions {
    current_password: Option<String>,
}

/// The creation options for a new passkey, once the account is re-checked.
#[post("/account/passkeys/options", data = "<body>")]
async fn add_options(
    session: CurrentSession,
    body: JsonBody<AddOptions>,
    origin: RequestOrigin,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> AppResult<JsonAnswer> {
    let body = match body.0 {
        Ok(body) => body,
        Err(answer) => return Ok(answer),
    };
    let user = signed_in_user(&session, app).await?;
    let password = body.current_password.as_deref();
    if let Err(answer) = recheck(app, &session, &user, password, &jar, &origin.0.ip).await? {
        return Ok(answer);
    }
    match register::start(app, &user).await {
        Ok((options, ceremony)) => {
            jar.set_ceremony(&ceremony);
            Ok(JsonAnswer::ok(Status::Ok, json!(options)))
        }
        Err(e) => refused(e, Status::BadRequest),
    }
}

#[derive(Deserialize)]
struct AddBody {
    credential: RegisterPublicKeyCredential,
    name: Option<String>,
}

/// The browser's new credential, checked against this browser's ceremony and stored.
#[post("/account/passkeys", data = "<body>")]
async fn add(
    session: CurrentSession,
    body: JsonBody<AddBody>,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> AppResult<JsonAnswer> {
    let body = match body.0 {
        Ok(body) => body,
        Err(answer) => return Ok(answer),
    };
    // A bad name is refused before the ceremony is used up: the user can fix it.
    let name = match passkeys::parse_new_name(body.name.as_deref().unwrap_or("")) {
        Ok(name) => name,
        Err(e) => return refused(e, Status::BadRequest),
    };
    let user = signed_in_user(&session, app).await?;
    let Some(ceremony) = jar.ceremony() else {
        return refused(PasskeyError::Refused, Status::BadRequest);
    };
    jar.clear_ceremony();
    match register::finish(app, &user, &ceremony, &body.credential, name.as_ref()).await {
        Ok(added) => Ok(JsonAnswer::ok(Status::Created, json!(added))),
        Err(e) => refused(e, Status::BadRequest),
    }
}

#[derive(FromForm)]
pub struct RenameFields {
    name: Option<String>,
}

/// Renames one of the account's passkeys; 303 back to the security page.
#[post("/account/passkeys/<id>/rename", data = "<form>")]
async fn rename(
    session: CurrentSession,
    id: &str,
    form: CsrfForm<RenameFields>,
    app: Services<'_>,
) -> AppResult<Flash<Redirect>> {
    let back = || Redirect::to(uri!(super::security::security));
    let name = match passkeys::parse_name(form.0.name.as_deref().unwrap_or("")) {
        Ok(name) => name,
        Err(e) => return Err(AppError::BadRequest(e.to_string())),
    };
    if !passkeys::rename(app, &session.user_id, id, &name).await? {
        return Err(AppError::NotFound);
    }
    Ok(Flash::success(
        back(),
        format!("The passkey is now named \u{201c}{name}\u{201d}."),
    ))
}

#[derive(FromForm)]
pub struct RemoveFields {
    current_password: Option<String>,
}

/// Removes one of the account's passkeys after the re-check (its password, or a
/// sign-in of the last 5 minutes); 303 back to the security page. The owner is mailed.
#[post("/account/passkeys/<id>/remove", data = "<form>")]
async fn remove(
    session: CurrentSession,
    id: &str,
    form: CsrfForm<RemoveFields>,
    origin: RequestOrigin,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> AppResult<Result<Flash<Redirect>, super::page::Page>> {
    let user = signed_in_user(&session, app).await?;
    if !signed_in_recently(app, &session).await? {
        let page = super::security::overview(app, &session)
            .await?
            .with("open", format!("remove-{id}"));
        let typed = form.0.current_password.as_deref();
        let browser = jar.trusted_browser();
        let checked =
            check_current(app, &user, typed, &origin.0.ip, browser.as_ref(), page).await?;
        if let Err(page) = checked {
            return Ok(Err(page));
        }
    }
    match passkeys::remove(app, &session.user_id, id).await {
        Ok(()) => Ok(Ok(Flash::success(
            Redirect::to(uri!(super::security::security)),
            "The passkey was removed. It no longer signs you in.",
        ))),
        Err(RemoveError::NotFound) => Err(AppError::NotFound),
        Err(RemoveError::LastWay) => Err(AppError::BadRequest(
            "This passkey is the last way to sign in to your account, so it cannot be removed."
                .into(),
        )),
        Err(RemoveError::Failed(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct SignInOptions {
    #[serde(default)]
    second_factor: bool,
}

/// The request options: any passkey of this site, or (`second_factor`) the passkeys of
/// the account whose password sign-in waits for its second step.
#[post("/login/passkey/options", data = "<body>")]
async fn sign_in_options(
    body: JsonBody<SignInOptions>,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> AppResult<JsonAnswer> {
    let body = match body.0 {
        Ok(body) => body,
        Err(answer) => return Ok(answer),
    };
    let second_step_of = if body.second_factor {
        let pending = jar.pending();
        let live = match &pending {
            Some(p) => two_step::pending(app, p).await?.is_some(),
            None => false,
        };
        match pending.filter(|_| live) {
            Some(p) => Some(p.user_id),
            None => return Ok(JsonAnswer::error(Status::BadRequest, START_AGAIN)),
        }
    } else {
        None
    };
    match passkey_sign_in::start(app, second_step_of.as_ref()).await {
        Ok((options, ceremony)) => {
            jar.set_ceremony(&ceremony);
            Ok(JsonAnswer::ok(Status::Ok, json!(options)))
        }
        Err(e) => refused(e, Status::BadRequest),
    }
}

#[derive(Deserialize)]
struct SignInBody {
    credential: PublicKeyCredential,
    #[serde(default)]
    second_factor: bool,
    #[serde(default)]
    remember: bool,
    rd: Option<String>,
}

/// The browser's assertion: signed in (usernameless, or the second step), 200
/// `{"redirect"}` and the session cookie; refused 401; throttled 429.
#[post("/login/passkey?<next>", data = "<body>")]
async fn sign_in(
    body: JsonBody<SignInBody>,
    next: Option<NextPath>,
    previous: Option<CurrentSession>,
    origin: RequestOrigin,
    app: Services<'_>,
    jar: SessionCookieJar<'_>,
) -> AppResult<JsonAnswer> {
    let body = match body.0 {
        Ok(body) => body,
        Err(answer) => return Ok(answer),
    };
    let ceremony = jar.ceremony();
    jar.clear_ceremony();
    let browser = jar.trusted_browser();
    let replaces = previous.map(|p| (p.user_id, p.sid));
    if body.second_factor {
        let Some(pending) = jar.pending() else {
            return Ok(JsonAnswer::error(Status::BadRequest, START_AGAIN));
        };
        let step = PasskeyStep {
            cookie: &pending,
            ceremony: ceremony.as_ref(),
            answer: &body.credential,
            origin: &origin.0,
            browser: browser.as_ref(),
            replaces,
        };
        return second_step(app, step, &jar).await;
    }
    let target = SignInTarget {
        rd: super::auth::return_to(app.settings, body.rd.as_deref()),
        next,
    };
    let s = PasskeySignIn {
        assertion: Assertion {
            cookie: ceremony.as_ref(),
            answer: &body.credential,
            ip: &origin.0.ip,
            browser: browser.as_ref(),
            second_step_of: None,
        },
        origin: &origin.0,
        remember: body.remember,
        replaces,
    };
    match passkey_sign_in::sign_in(app, s).await {
        Ok(signed) => {
            set_sign_in_cookies(&jar, signed, body.remember);
            Ok(signed_in(target))
        }
        Err(e) => refused(e, Status::Unauthorized),
    }
}

/// A passkey as the second step of a password sign-in: signed in, or why not.
async fn second_step(
    app: Services<'_>,
    step: PasskeyStep<'_>,
    jar: &SessionCookieJar<'_>,
) -> AppResult<JsonAnswer> {
    match two_step::complete_with_passkey(app, step).await {
        Ok(done) => {
            jar.clear_pending();
            set_sign_in_cookies(jar, done.signed, done.remember);
            let target = SignInTarget::from_text(app.settings, &done.target);
            Ok(signed_in(target))
        }
        Err(StepError::Wrong { .. }) => Ok(JsonAnswer::error(Status::Unauthorized, REFUSED)),
        Err(StepError::Throttled(t)) => Ok(JsonAnswer::throttled(t.retry_after)),
        Err(StepError::Ended | StepError::NoPending) => {
            jar.clear_pending();
            Ok(JsonAnswer::error(Status::Unauthorized, START_AGAIN))
        }
        Err(StepError::Failed(e)) => Err(e.into()),
    }
}

/// The answer of a finished sign-in: where the script sends the browser next.
fn signed_in(target: SignInTarget) -> JsonAnswer {
    let to = target.text();
    let to = if to.is_empty() {
        "/devices".to_string()
    } else {
        to
    };
    JsonAnswer::ok(Status::Ok, json!({ "redirect": to }))
}
