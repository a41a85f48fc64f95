//! `GET /oauth2/authorize` and the consent page (`POST /oauth2/authorize`): the
//! browser half of the authorization code flow.
//!
//! The request is checked in RFC 6749 §4.1.2.1's order: an unknown client or a
//! `redirect_uri` that is not registered exactly gets an error page (never a redirect
//! to an unchecked URI); every other problem is sent back to the redirect URI as
//! `error=…&state=…`. The consent answer's 303 goes to another origin, so the consent
//! page's `form-action` names the app's redirect origin besides `'self'` (a browser
//! blocks a form whose redirect leaves `form-action`).

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Redirect, Responder};
use rocket::{get, post, routes, uri, Route};
use url::Url;

use super::guards::{CsrfForm, CurrentSession, NoFields};
use super::next_path::{sign_in_first, NextPath, MAX_PARAM, MAX_PROMPT};
use super::page::Page;
use crate::accounts::ClientRecord;
use crate::http::error::AppError;
use crate::http::request::ClientIp;
use crate::services::activity::{self, Event, Kind};
use crate::services::oidc::clients::origin_of;
use crate::services::oidc::grants::{self, CodeRequest};
use crate::services::oidc::reauth;
use crate::services::verification::must_verify_first;
use crate::services::Services;
use crate::support::clock::now_ms;
use crate::support::input::Label;

pub fn routes() -> Vec<Route> {
    routes![authorize, consent, consent_signed_out]
}

/// The authorization request's parameters (query, or the consent form's hidden
/// fields).
#[derive(Debug, Clone, Default, FromForm)]
pub struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
    max_age: Option<String>,
    /// Ours, not the app's: set when `prompt=login` or `max_age` sent the browser to
    /// sign in again — the sign-in must be no older than this. It replaces both in
    /// the request the sign-in comes back to, so the loop ends after one sign-in.
    /// Signed (`oidc::reauth`): one written by hand is refused.
    signed_in_after: Option<String>,
    request: Option<String>,
    request_uri: Option<String>,
    response_mode: Option<String>,
}

/// The consent form: the request again, and the answer.
#[derive(Debug, FromForm)]
pub struct ConsentForm {
    decision: String,
    #[field(default = <AuthorizeParams as Default>::default())]
    req: AuthorizeParams,
}

/// A checked request: the app and everything its code will carry.
struct Checked {
    client: ClientRecord,
    redirect_uri: String,
    scopes: Vec<&'static str>,
    state: Option<String>,
    nonce: Option<String>,
    challenge: Option<String>,
    prompt: Option<String>,
    /// `prompt=login`: sign in again whatever the session's age.
    login: bool,
    /// `max_age` (seconds).
    max_age: Option<u64>,
    /// `signed_in_after` (unix ms), a marker of ours for this client.
    signed_in_after: Option<i64>,
}

/// What the authorize endpoint answers.
pub enum Outcome {
    /// Back to the app (a code or an error).
    Back(Redirect),
    /// A page: the consent page (with its own `form-action`), or an error.
    Page(Page),
}

impl<'r> Responder<'r, 'static> for Outcome {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        match self {
            Outcome::Back(r) => r.respond_to(req),
            Outcome::Page(page) => page.respond_to(req),
        }
    }
}

fn error_page(message: &str) -> Outcome {
    Outcome::Page(
        Page::new("error", "")
            .with("status", 400)
            .with("title", "This sign-in link does not work")
            .with("message", message)
            .status(Status::BadRequest),
    )
}

/// `redirect_uri?error=…&error_description=…&state=…` (RFC 6749 §4.1.2.1).
fn back_with_error(c: &Checked, error: &str, description: &str) -> Outcome {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(s) = &c.state {
        pairs.push(("state", s));
    }
    Outcome::Back(to_app(&c.redirect_uri, &pairs))
}

/// The redirect URI (registered, so it parses) with our parameters appended.
fn to_app(redirect_uri: &str, pairs: &[(&str, &str)]) -> Redirect {
    let mut url = match Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return Redirect::to("/"),
    };
    url.query_pairs_mut().extend_pairs(pairs);
    Redirect::to(url.to_string())
}

/// The client and redirect URI first (an error page when either is wrong), then the
/// rest (an error sent back to the app).
async fn check(s: Services<'_>, p: &AuthorizeParams) -> Result<Result<Checked, Outcome>, AppError> {
    let Some(client_id) = p
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 64)
    else {
        return Ok(Err(error_page(
            "The request does not name a registered app (client_id).",
        )));
    };
    let Some(client) = s.accounts.find_client(client_id).await? else {
        return Ok(Err(error_page(
            "The app that sent you here is not registered with Latchkey.",
        )));
    };
    let Some(redirect_uri) = p
        .redirect_uri
        .as_deref()
        .filter(|r| client.redirect_uris.iter().any(|u| u == r))
        .map(str::to_string)
    else {
        return Ok(Err(error_page(
            "The app asked to send you back to an address it has not registered (redirect_uri), so Latchkey will not send you there.",
        )));
    };
    let mut c = Checked {
        client,
        redirect_uri,
        scopes: Vec::new(),
        state: p.state.clone().filter(|s| s.len() <= MAX_PARAM),
        nonce: p.nonce.clone().filter(|n| !n.is_empty()),
        challenge: p.code_challenge.clone(),
        prompt: p.prompt.clone(),
        login: false,
        max_age: None,
        signed_in_after: None,
    };
    let checked = check_request(&mut c, p).and_then(|()| {
        let Some(marker) = p.signed_in_after.as_deref() else {
            return Ok(());
        };
        let at = reauth::verify(s.settings, &c.client.client_id, marker).ok_or((
            "invalid_request",
            "signed_in_after is not a marker Latchkey set.",
        ))?;
        c.signed_in_after = Some(at);
        Ok(())
    });
    Ok(match checked {
        Ok(()) => Ok(c),
        Err((error, description)) => Err(back_with_error(&c, error, description)),
    })
}

/// A refusal sent back to the app: its `error` and `error_description`.
type Refusal = (&'static str, &'static str);

/// What RFC 6749 §4.1.2.1 sends back to a valid redirect URI: everything but the
/// client and the redirect URI. Fills in the scopes.
fn check_request(c: &mut Checked, p: &AuthorizeParams) -> Result<(), Refusal> {
    check_shape(p)?;
    let prompts: Vec<&str> = c
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|x| !x.is_empty())
        .collect();
    if prompts.contains(&"none") && prompts.len() > 1 {
        // OpenID Connect Core §3.1.2.1: none with any other value is an error.
        return Err((
            "invalid_request",
            "prompt=none cannot be combined with another prompt value.",
        ));
    }
    c.login = prompts.contains(&"login");
    if let Some(v) = p.max_age.as_deref() {
        let age = v.parse::<u64>().map_err(|_| {
            (
                "invalid_request",
                "max_age must be a whole number of seconds.",
            )
        })?;
        c.max_age = Some(age);
    }
    c.scopes = grants::parse_scope(p.scope.as_deref().unwrap_or(""))
        .map_err(|_| ("invalid_scope", "The scope must include openid."))?;
    match (p.code_challenge_method.as_deref(), &c.challenge) {
        (Some("S256"), Some(ch)) if is_challenge(ch) => Ok(()),
        (None, None) if c.client.secret_hash.is_some() => Ok(()),
        (None, None) => Err((
            "invalid_request",
            "PKCE (code_challenge with S256) is required.",
        )),
        (Some("S256") | None, _) => Err((
            "invalid_request",
            "code_challenge must be 43 characters of BASE64URL with code_challenge_method=S256.",
        )),
        (Some(_), _) => Err((
            "invalid_request",
            "Only code_challenge_method=S256 is supported.",
        )),
    }
}

/// What the request is and how it wants its answer: bounded parameters, no request
/// objects (`request_uri` has its own error, OpenID Connect Core §6.2), the code flow,
/// and the answer in the query (`response_mode=form_post` is not supported, so it is
/// refused rather than ignored: an app waiting for a POST would read nothing).
fn check_shape(p: &AuthorizeParams) -> Result<(), Refusal> {
    let too_long = [&p.scope, &p.state, &p.nonce, &p.code_challenge]
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| v.len() > MAX_PARAM))
        || p.prompt.as_ref().is_some_and(|v| v.len() > MAX_PROMPT)
        || (p.signed_in_after.as_ref()).is_some_and(|v| v.len() > reauth::MAX_MARKER)
        || (p.response_mode.as_ref()).is_some_and(|v| v.len() > MAX_PARAM);
    if too_long {
        return Err(("invalid_request", "A parameter is too long."));
    }
    if p.request_uri.is_some() {
        return Err(("request_uri_not_supported", "request_uri is not supported."));
    }
    if p.request.is_some() {
        return Err((
            "request_not_supported",
            "Request objects are not supported.",
        ));
    }
    if p.response_type.as_deref() != Some("code") {
        return Err((
            "unsupported_response_type",
            "Only response_type=code is supported.",
        ));
    }
    if !matches!(p.response_mode.as_deref(), None | Some("query")) {
        return Err(("invalid_request", "Only response_mode=query is supported."));
    }
    Ok(())
}

/// A S256 challenge: 43 characters of BASE64URL (RFC 7636 §4.2).
fn is_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The scopes in words, for the consent page.
fn scope_words(scopes: &[&str]) -> Vec<&'static str> {
    scopes
        .iter()
        .filter_map(|s| match *s {
            "openid" => Some("Who you are: an identifier for your Latchkey account"),
            "email" => Some("Your email address"),
            "profile" => Some("Your basic profile (the name of your account)"),
            "offline_access" => Some(
                "Stay connected while you are away, until you sign it out on your devices page",
            ),
            _ => None,
        })
        .collect()
}

/// The moment the sign-in must be no older than (OpenID Connect Core §3.1.2.1):
/// the one a re-sign-in was asked at (it alone counts once asked, so one sign-in ends
/// the loop), now for `prompt=login`, or `max_age` ago.
fn sign_in_needed_after(c: &Checked, now: i64) -> Option<i64> {
    if let Some(t) = c.signed_in_after {
        return Some(t);
    }
    if c.login {
        return Some(now);
    }
    c.max_age
        .map(|a| now.saturating_sub(i64::try_from(a).unwrap_or(i64::MAX).saturating_mul(1000)))
}

/// This request to come back to after signing in, from its known parameters only
/// (bounded: `MAX_REQUEST_PATH`). For a new sign-in (`reauth`: its marker),
/// `prompt=login` and `max_age` are replaced by `signed_in_after`.
fn request_path(p: &AuthorizeParams, reauth: Option<String>) -> Option<NextPath> {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            out.append_pair(k, v);
        }
    };
    put("response_type", &p.response_type);
    put("client_id", &p.client_id);
    put("redirect_uri", &p.redirect_uri);
    put("scope", &p.scope);
    put("state", &p.state);
    put("nonce", &p.nonce);
    put("code_challenge", &p.code_challenge);
    put("code_challenge_method", &p.code_challenge_method);
    match reauth {
        None => {
            put("prompt", &p.prompt);
            put("max_age", &p.max_age);
            put("signed_in_after", &p.signed_in_after);
        }
        Some(marker) => {
            let rest = p.prompt.as_deref().map(|v| {
                v.split(' ')
                    .filter(|x| !x.is_empty() && *x != "login")
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            put("prompt", &rest.filter(|r| !r.is_empty()));
            put("signed_in_after", &Some(marker));
        }
    }
    NextPath::parse(&format!("/oauth2/authorize?{}", out.finish()))
}

/// Issues the code and sends the browser back to the app with it.
async fn grant(
    s: Services<'_>,
    session: &CurrentSession,
    c: &Checked,
    ip: &ClientIp,
) -> Result<Outcome, AppError> {
    // auth_time is the browser session's own sign-in, as the guard's check read it (no
    // listing of the user's sessions). A session that ends after that check cannot
    // use the code: it names the session (`browser_sid`), and redeeming it is refused
    // once that session has ended.
    let signed_in_ms = session.signed_in_ms;
    let req = CodeRequest {
        client_id: c.client.client_id.clone(),
        redirect_uri: c.redirect_uri.clone(),
        scope: c.scopes.join(" "),
        nonce: c.nonce.clone(),
        challenge: c.challenge.clone(),
        auth_time: (signed_in_ms / 1000).max(0) as u64,
        // As the browser session signed in: `pwd`, or `pwd` and `otp` after its code.
        amr: session.amr.values().iter().map(|v| v.to_string()).collect(),
        ip: ip.text(),
        issued_ms: now_ms(),
        browser_sid: Some(session.sid.clone()),
    };
    let code = grants::issue_code(s.store, &session.user_id, &req).await?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(st) = &c.state {
        pairs.push(("state", st));
    }
    Ok(Outcome::Back(to_app(&c.redirect_uri, &pairs)))
}

fn consent_page(session: &CurrentSession, c: &Checked) -> Outcome {
    let page = Page::new("consent", &session.csrf)
        .with("signed_in", true)
        .with("user_email", &session.email)
        .with("app_name", &c.client.name)
        .with(
            "app_host",
            Url::parse(&c.redirect_uri)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string)),
        )
        .with("scopes", scope_words(&c.scopes))
        .with(
            "req",
            serde_json::json!({
                "response_type": "code",
                "client_id": c.client.client_id,
                "redirect_uri": c.redirect_uri,
                "scope": c.scopes.join(" "),
                "state": c.state,
                "nonce": c.nonce,
                "code_challenge": c.challenge,
                "code_challenge_method": c.challenge.as_ref().map(|_| "S256"),
            }),
        );
    // The answer's 303 goes to the app: its origin may end this page's form.
    Outcome::Page(page.form_action(origin_of(&c.redirect_uri)))
}

/// The app origin a sign-in form whose `next` is an authorization request may end at:
/// with consent remembered, the sign-in's 303 chain ends at the app, and a browser
/// checks the sign-in page's `form-action` against every step. Only a registered
/// client's registered redirect URI counts.
pub async fn next_form_action(s: Services<'_>, next: Option<&NextPath>) -> Option<String> {
    let next = serde_json::to_value(next?).ok()?;
    let url = Url::parse("http://local").ok()?.join(next.as_str()?).ok()?;
    if url.path() != "/oauth2/authorize" {
        return None;
    }
    let get = |name: &str| {
        url.query_pairs()
            .find_map(|(k, v)| (k == name).then(|| v.into_owned()))
    };
    let (client_id, redirect) = (get("client_id")?, get("redirect_uri")?);
    let client = s.accounts.find_client(&client_id).await.ok()??;
    client
        .redirect_uris
        .contains(&redirect)
        .then(|| origin_of(&redirect))
        .flatten()
}

/// A sign-in is needed first: to the sign-in page with this request to come back to
/// (`reauth_at`: the sign-in must be later than then, a marker only we can set), or,
/// with `prompt=none`, back to the app with `login_required` (`why` as its
/// description).
fn to_sign_in(
    s: Services<'_>,
    c: &Checked,
    p: &AuthorizeParams,
    reauth_at: Option<i64>,
    why: &str,
) -> Outcome {
    if c.prompt.as_deref() == Some("none") {
        return back_with_error(c, "login_required", why);
    }
    let marker = reauth_at.map(|at| reauth::marker(s.settings, &c.client.client_id, at));
    match request_path(p, marker) {
        Some(next) => Outcome::Back(Redirect::to(rocket::uri!(super::auth::login_page(
            Some(next),
            _
        )))),
        None => back_with_error(
            c,
            "invalid_request",
            "The request is too long to come back to after signing in.",
        ),
    }
}

#[get("/oauth2/authorize?<p..>")]
async fn authorize(
    p: AuthorizeParams,
    session: Option<CurrentSession>,
    s: Services<'_>,
    ip: ClientIp,
) -> Result<Outcome, AppError> {
    let c = match check(s, &p).await? {
        Ok(c) => c,
        Err(answer) => return Ok(answer),
    };
    let Some(session) = session else {
        return Ok(to_sign_in(
            s,
            &c,
            &p,
            None,
            "You are not signed in to Latchkey.",
        ));
    };
    let now = now_ms();
    let stale = sign_in_needed_after(&c, now).is_some_and(|after| session.signed_in_ms < after);
    if stale {
        return Ok(to_sign_in(
            s,
            &c,
            &p,
            Some(now),
            "Signing in again is required.",
        ));
    }
    if must_verify_first(s.settings, session.email_verified) {
        return Ok(verify_first(&session, &c));
    }
    let granted = s
        .accounts
        .consent(&session.user_id, &c.client.client_id)
        .await?;
    let remembered = granted.is_some_and(|g| {
        let g: Vec<&str> = g.split(' ').collect();
        c.scopes.iter().all(|x| g.contains(x))
    });
    match c.prompt.as_deref() {
        Some("none") if !remembered => Ok(back_with_error(
            &c,
            "consent_required",
            "The app has not been allowed yet.",
        )),
        Some(p) if p.split(' ').any(|x| x == "consent") => Ok(consent_page(&session, &c)),
        _ if remembered => grant(s, &session, &c, &ip).await,
        _ => Ok(consent_page(&session, &c)),
    }
}

/// `require_verified_email` and an unverified account: `prompt=none` goes back to the
/// app with `interaction_required` (there is no page to show), anything else gets the
/// page that offers a new code.
fn verify_first(session: &CurrentSession, c: &Checked) -> Outcome {
    if c.prompt.as_deref() == Some("none") {
        return back_with_error(
            c,
            "interaction_required",
            "The account's email address must be verified first.",
        );
    }
    Outcome::Page(super::verify::verify_first(session, &c.client.name))
}

/// A signed-out browser posting the consent form with its own token (its session ended
/// while the page was open): sent to sign in, and nothing is granted. A missing or
/// wrong token is 403, as on every form.
#[post("/oauth2/authorize", rank = 2, data = "<_form>")]
fn consent_signed_out(_form: CsrfForm<NoFields>) -> Redirect {
    sign_in_first(uri!("/devices"))
}

/// The consent answer: the request is checked again (the form is whatever the browser
/// sent), then `allow` remembers the consent and sends a code, `deny` sends
/// `access_denied`.
#[post("/oauth2/authorize", data = "<form>")]
async fn consent(
    form: CsrfForm<ConsentForm>,
    session: CurrentSession,
    s: Services<'_>,
    ip: ClientIp,
) -> Result<Outcome, AppError> {
    let ConsentForm { decision, req } = form.0;
    let c = match check(s, &req).await? {
        Ok(c) => c,
        Err(answer) => return Ok(answer),
    };
    if must_verify_first(s.settings, session.email_verified) {
        return Ok(verify_first(&session, &c));
    }
    match decision.as_str() {
        "allow" => {
            let scopes = c.scopes.join(" ");
            s.accounts
                .save_consent(&session.user_id, &c.client.client_id, &scopes)
                .await?;
            // The app's name as its own claim, cleaned like every label.
            let name = Label::lossy(&c.client.name)
                .map(|l| l.as_str().to_string())
                .unwrap_or_default();
            let allowed = Event::new(Kind::AppAllowed)
                .ip(&ip.text())
                .session(&session.sid)
                .detail(&name);
            activity::record(s, &session.user_id, allowed).await;
            grant(s, &session, &c, &ip).await
        }
        "deny" => Ok(back_with_error(
            &c,
            "access_denied",
            "You did not allow the app.",
        )),
        _ => Err(AppError::BadRequest(
            "decision must be allow or deny".into(),
        )),
    }
}
