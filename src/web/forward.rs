//! Forward authentication: a reverse proxy asks, before each request to an app it
//! protects, whether the request's sender is signed in (`GET /auth/forward` for
//! Traefik ForwardAuth and Caddy `forward_auth`, `GET /auth/nginx` for nginx
//! `auth_request`).
//!
//! The answer comes from the same one store call as every page's session check (the
//! `CurrentSession` guard, which slides the session) or, with `Authorization: Bearer`,
//! the API's (`ApiSession`). Signed in: 200 with `Remote-User`, `Remote-Email`,
//! `Remote-Session`. Signed out: `/auth/forward` sends a browser to the sign-in page
//! with `rd` (the original URL, rebuilt from `X-Forwarded-*`), and answers an API
//! caller 401; `/auth/nginx` always answers 401 (nginx turns it into the redirect).
//! `X-Forwarded-*` and `X-Original-URL` are read only from `trusted_proxies`.
//!
//! With `require_verified_email`, an account whose address is not verified is kept
//! out: `/auth/forward` shows a browser the page that offers a new code (403) and
//! answers an API caller 401 (`email_not_verified`); `/auth/nginx` answers 403 (a 401
//! would send a signed-in browser to the sign-in page and back).

use rocket::http::{Header, Status};
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};
use rocket::response::{self, Responder, Response};
use rocket::{get, routes, Route};

use super::guards::CurrentSession;
use super::page::Page;
use super::verify::verify_first;
use crate::api::{ApiSession, AuthFailure};
use crate::config::Settings;
use crate::http::request::from_trusted_proxy;
use crate::services::return_to::ReturnTo;
use crate::services::verification::must_verify_first;

/// An API caller's answer for an account whose address is not verified.
const UNVERIFIED_JSON: &str = r#"{"error":"email_not_verified","error_description":"Verify the account's email address first: use the code or link mailed to it."}"#;

pub fn routes() -> Vec<Route> {
    routes![forward, nginx]
}

/// The signed-in user a proxied request comes from.
pub struct Identity {
    user_id: String,
    email: String,
    sid: String,
    email_verified: bool,
    /// The browser session, when the cookie (not a Bearer token) identified it.
    browser: Option<CurrentSession>,
}

/// A proxy's question, as much of it as the answer needs.
pub struct Question {
    /// `Err`: the store did not answer (503) or a bug (500).
    who: Result<Option<Identity>, Status>,
    /// The request carried `Authorization` (an API caller: 401, never a redirect).
    authorization: bool,
    /// `Accept` names JSON types only.
    json_only: bool,
    /// `X-Forwarded-Proto`, `-Host`, `-Uri` as one URL, from a trusted proxy only.
    forwarded_url: Option<String>,
    /// `X-Original-URL`, from a trusted proxy only.
    original_url: Option<String>,
}

/// Who sent the request: a Bearer access token when there is one, else the session
/// cookie. One store call either way; the session slides as on any page.
async fn identify(req: &Request<'_>) -> Result<Option<Identity>, Status> {
    match req.guard::<ApiSession>().await {
        Outcome::Success(s) => {
            return Ok(Some(Identity {
                user_id: s.user_id.to_string(),
                email: s.email,
                sid: s.sid,
                email_verified: s.email_verified,
                browser: None,
            }))
        }
        // No Bearer credentials at all: the cookie decides.
        Outcome::Error((_, AuthFailure::Missing)) | Outcome::Forward(_) => {}
        Outcome::Error((status, _)) if status == Status::Unauthorized => return Ok(None),
        Outcome::Error((status, _)) => return Err(status),
    }
    match req.guard::<CurrentSession>().await {
        Outcome::Success(s) => Ok(Some(Identity {
            user_id: s.user_id.to_string(),
            email: s.email.clone(),
            sid: s.sid.clone(),
            email_verified: s.email_verified,
            browser: Some(s),
        })),
        Outcome::Forward(_) => Ok(None),
        Outcome::Error((status, _)) => Err(status),
    }
}

fn json_only(req: &Request<'_>) -> bool {
    req.accept().is_some_and(|accept| {
        accept.iter().all(|t| {
            let t = t.media_type();
            t.is_json() || t.sub().as_str().to_ascii_lowercase().ends_with("+json")
        })
    })
}

/// The URL the proxy was asked for, from Traefik's and Caddy's `X-Forwarded-*`.
fn forwarded_url(req: &Request<'_>) -> Option<String> {
    let h = req.headers();
    let proto = h.get_one("X-Forwarded-Proto")?;
    let host = h.get_one("X-Forwarded-Host")?;
    let uri = h.get_one("X-Forwarded-Uri").unwrap_or("/");
    Some(format!("{proto}://{host}{uri}"))
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Question {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let trusted = from_trusted_proxy(req);
        let headers = req.headers();
        if trusted {
            tracing::debug!(
                method = headers.get_one("X-Forwarded-Method").unwrap_or("-"),
                "forward auth"
            );
        }
        Outcome::Success(Question {
            who: identify(req).await,
            authorization: headers.contains("Authorization"),
            json_only: json_only(req),
            forwarded_url: trusted.then(|| forwarded_url(req)).flatten(),
            original_url: trusted
                .then(|| headers.get_one("X-Original-URL").map(str::to_string))
                .flatten(),
        })
    }
}

/// What the proxy is told.
pub enum Verdict {
    Allowed(Identity),
    /// 401; `bearer`: with the Bearer challenge.
    Refused {
        bearer: bool,
    },
    /// 302 to the sign-in page (an absolute URL under `public_url`).
    SignIn(String),
    /// Signed in, but the address must be verified first: 401 for an API caller
    /// (`json`: a JSON body), 403 for nginx.
    Unverified {
        status: Status,
        json: bool,
    },
    /// Signed in with a browser, but the address must be verified first: the page.
    VerifyFirst(Page),
    Failed(Status),
}

/// The sign-in page under `public_url`, with `rd` when the original URL is one the
/// sign-in may send the user back to (checked now as it will be then).
fn sign_in_url(settings: &Settings, original: Option<&str>) -> String {
    let login = format!("{}/login", settings.server.public_url);
    let allow_http = !settings.sessions.cookie_secure;
    let back = original.and_then(|url| {
        ReturnTo::parse(url, &settings.server.forward_auth_domains, allow_http)
            .map_err(|why| tracing::info!(%why, "forward auth: the original URL is not a return address"))
            .ok()
    });
    match back {
        Some(rd) => {
            let rd: String = url::form_urlencoded::byte_serialize(rd.as_str().as_bytes()).collect();
            format!("{login}?rd={rd}")
        }
        None => login,
    }
}

#[get("/auth/forward")]
fn forward(q: Question, settings: &rocket::State<Settings>) -> Verdict {
    match q.who {
        Ok(Some(who)) if must_verify_first(settings, who.email_verified) => match who.browser {
            Some(session) if !q.authorization && !q.json_only => {
                Verdict::VerifyFirst(verify_first(&session, "This site"))
            }
            _ => Verdict::Unverified {
                status: Status::Unauthorized,
                json: q.json_only,
            },
        },
        Ok(Some(who)) => Verdict::Allowed(who),
        Ok(None) if q.authorization || q.json_only => Verdict::Refused {
            bearer: q.authorization,
        },
        Ok(None) => Verdict::SignIn(sign_in_url(settings, q.forwarded_url.as_deref())),
        Err(status) => Verdict::Failed(status),
    }
}

#[get("/auth/nginx")]
fn nginx(q: Question, settings: &rocket::State<Settings>) -> Verdict {
    match q.who {
        Ok(Some(who)) if must_verify_first(settings, who.email_verified) => Verdict::Unverified {
            status: Status::Forbidden,
            json: q.json_only,
        },
        Ok(Some(who)) => Verdict::Allowed(who),
        Ok(None) => {
            tracing::debug!(
                url = q.original_url.as_deref().unwrap_or("-"),
                "nginx auth: signed out"
            );
            Verdict::Refused {
                bearer: q.authorization,
            }
        }
        Err(status) => Verdict::Failed(status),
    }
}

impl<'r> Responder<'r, 'static> for Verdict {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build();
        res.header(Header::new("Cache-Control", "no-store"));
        match self {
            Verdict::VerifyFirst(page) => {
                let mut page = page.respond_to(req)?;
                page.set_header(Header::new("Cache-Control", "no-store"));
                return Ok(page);
            }
            Verdict::Unverified { status, json } => {
                let body = if json {
                    UNVERIFIED_JSON
                } else {
                    "Verify your email address first: use the code or link mailed to it.\n"
                };
                if json {
                    res.header(rocket::http::ContentType::JSON);
                }
                res.status(status)
                    .sized_body(body.len(), std::io::Cursor::new(body))
            }
            Verdict::Allowed(who) => res
                .status(Status::Ok)
                .header(Header::new("Remote-User", who.user_id))
                .header(Header::new("Remote-Email", who.email))
                .header(Header::new("Remote-Session", who.sid)),
            Verdict::Refused { bearer } => {
                if bearer {
                    res.header(Header::new("WWW-Authenticate", "Bearer"));
                }
                let body = "Sign in first.\n";
                res.status(Status::Unauthorized)
                    .sized_body(body.len(), std::io::Cursor::new(body))
            }
            Verdict::SignIn(location) => res
                .status(Status::Found)
                .header(Header::new("Location", location)),
            Verdict::Failed(status) => {
                let body = "The sign-in service is unavailable.\n";
                res.status(status)
                    .sized_body(body.len(), std::io::Cursor::new(body))
            }
        };
        res.ok()
    }
}
