//! `GET /oauth2/logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0),
//! and `POST /oauth2/logout`, the confirmation it asks for when the app did not say
//! who it signs out.
//!
//! A logout ends sessions only for the browser that holds the session cookie of the
//! hint's own user: with a valid `id_token_hint` (`oidc::claims::verify_id_token_hint`;
//! signed by us for that user, expired or not, as the specification allows) such a
//! browser is signed out at once, without a question, and the app session the hint
//! names ends with it (if it is not over already: an app such as mod_auth_openidc
//! revokes its own tokens first, then redirects here). Any other browser — signed out,
//! or signed in to another account — ends nothing: a stranger holding an old id_token
//! (from a log, a history) cannot end anyone's session with it, and an app ends its
//! own tokens with `/oauth2/revoke`. Without a hint, anyone could have sent the
//! browser here (an `<img src>` on any site), so nothing ends until the user confirms
//! with the page's CSRF-protected form. A hint that is not ours (forged, altered,
//! another issuer's) answers 400 and ends nothing. The browser goes back to
//! `post_logout_redirect_uri` only when it is registered for the app, character for
//! character (`oidc::logout::post_logout_target`); otherwise it stays on our page.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, routes, Route, State};

use super::guards::{CsrfForm, CurrentSession, SessionCookieJar};
use super::oauth::Outcome;
use super::page::Page;
use crate::accounts::ClientRecord;
use crate::api::oauth::issuer;
use crate::http::error::AppError;
use crate::services::oidc::claims::verify_id_token_hint;
use crate::services::oidc::clients::origin_of;
use crate::services::oidc::logout::post_logout_target;
use crate::services::oidc::Keyring;
use crate::services::sessions;
use crate::services::Services;

pub fn routes() -> Vec<Route> {
    routes![logout, confirm]
}

/// The logout request (query), and the confirmation form's hidden fields.
#[derive(Debug, Clone, Default, FromForm)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
}

const MAX_PARAM: usize = 512;
const MAX_HINT: usize = 4096;

fn error_page(message: &str) -> Outcome {
    Outcome::Page(
        Page::new("error", "")
            .with("status", 400)
            .with("title", "This sign-out link does not work")
            .with("message", message)
            .status(Status::BadRequest),
    )
}

/// After signing out: back to the app when it may be sent there, else our page.
fn done(target: Option<String>, app: Option<&ClientRecord>) -> Outcome {
    done_for(target, app, None)
}

/// `done`, for a browser that stays signed in to `other` (another account than the
/// one the app signed out): our page says so rather than "signed out".
fn done_for(target: Option<String>, app: Option<&ClientRecord>, other: Option<&str>) -> Outcome {
    match target {
        Some(t) => Outcome::Back(Redirect::to(t)),
        None => Outcome::Page(
            Page::new("signed_out", "")
                .with("app_name", app.map(|c| c.name.as_str()))
                .with("other_account", other),
        ),
    }
}

/// The app a request names by `client_id`: `Ok(None)` when it names none.
async fn named_app(
    s: &Services<'_>,
    p: &LogoutParams,
) -> Result<Result<Option<ClientRecord>, Outcome>, AppError> {
    let Some(id) = p.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(Ok(None));
    };
    match s.accounts.find_client(id).await? {
        Some(c) => Ok(Ok(Some(c))),
        None => Ok(Err(error_page(
            "The app that sent you here is not registered with Latchkey.",
        ))),
    }
}

#[get("/oauth2/logout?<p..>")]
async fn logout(
    p: LogoutParams,
    browser: Option<CurrentSession>,
    s: Services<'_>,
    keyring: &State<Keyring>,
    cookie: SessionCookieJar<'_>,
) -> Result<Outcome, AppError> {
    let too_long = [&p.post_logout_redirect_uri, &p.state, &p.client_id]
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| v.len() > MAX_PARAM))
        || p.id_token_hint.as_ref().is_some_and(|h| h.len() > MAX_HINT);
    if too_long {
        return Ok(error_page("A parameter of the sign-out link is too long."));
    }
    let named = match named_app(&s, &p).await? {
        Ok(app) => app,
        Err(page) => return Ok(page),
    };
    let Some(hint) = p.id_token_hint.as_deref().filter(|h| !h.is_empty()) else {
        return Ok(unconfirmed(&p, browser.as_ref(), named.as_ref()));
    };
    let Ok(claims) = verify_id_token_hint(keyring, &issuer(s.settings), hint).await else {
        tracing::info!("RP-initiated logout refused: an id_token_hint that is not ours");
        return Ok(error_page(
            "The sign-out link carries a sign-in token (id_token_hint) that Latchkey did not issue, so nothing was signed out.",
        ));
    };
    if named.as_ref().is_some_and(|c| c.client_id != claims.aud) {
        return Ok(error_page(
            "The sign-out link names one app (client_id) and carries another app's sign-in token.",
        ));
    }
    let app = match named {
        Some(app) => Some(app),
        None => s.accounts.find_client(&claims.aud).await?,
    };
    let target = app.as_ref().and_then(|c| {
        post_logout_target(c, p.post_logout_redirect_uri.as_deref(), p.state.as_deref())
    });
    // Only the browser that holds the hint's user's own session ends anything; it then
    // ends without a question, whether or not the app session is over already.
    let Some(own) = browser.as_ref().filter(|b| b.user_id == claims.sub) else {
        tracing::info!("RP-initiated logout: this browser holds no session of the hint's account; nothing ended");
        let other = browser.as_ref().map(|b| b.email.as_str());
        return Ok(done_for(target, app.as_ref(), other));
    };
    sessions::end(s.store, &claims.sub, &claims.sid).await?;
    sessions::end(s.store, &own.user_id, &own.sid).await?;
    cookie.clear();
    Ok(done(target, app.as_ref()))
}

/// No hint: a signed-in browser is asked first; a signed-out one has nothing to end.
fn unconfirmed(
    p: &LogoutParams,
    browser: Option<&CurrentSession>,
    app: Option<&ClientRecord>,
) -> Outcome {
    let target = app.and_then(|c| {
        post_logout_target(c, p.post_logout_redirect_uri.as_deref(), p.state.as_deref())
    });
    let Some(session) = browser else {
        return done(target, app);
    };
    let page = Page::new("logout", &session.csrf)
        .with("signed_in", true)
        .with("user_email", &session.email)
        .with("app_name", app.map(|c| c.name.as_str()))
        .with(
            "req",
            serde_json::json!({
                "client_id": app.map(|c| c.client_id.as_str()),
                "post_logout_redirect_uri": target.as_ref().and(p.post_logout_redirect_uri.as_deref()),
                "state": target.as_ref().and(p.state.as_deref()),
            }),
        );
    // The form's answer (a 303) may leave for the app: `form-action` must allow it.
    let origin = target.as_deref().and_then(origin_of);
    Outcome::Page(page.form_action(origin))
}

/// The confirmation: ends this browser's session (when it has one) and goes back to
/// the app when it may. The form is whatever the browser sent: the target is checked
/// again.
#[post("/oauth2/logout", data = "<form>")]
async fn confirm(
    form: CsrfForm<LogoutParams>,
    browser: Option<CurrentSession>,
    s: Services<'_>,
    cookie: SessionCookieJar<'_>,
) -> Result<Outcome, AppError> {
    let p = form.0;
    let app = match named_app(&s, &p).await? {
        Ok(app) => app,
        Err(page) => return Ok(page),
    };
    if let Some(b) = browser {
        sessions::end(s.store, &b.user_id, &b.sid).await?;
    }
    cookie.clear();
    let target = app.as_ref().and_then(|c| {
        post_logout_target(c, p.post_logout_redirect_uri.as_deref(), p.state.as_deref())
    });
    Ok(done(target, app.as_ref()))
}
