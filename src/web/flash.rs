//! A one-time notice carried over a redirect ("You have been signed out."), in a cookie
//! set and removed with the same attributes as the other cookies: `Secure` (and the
//! `__Host-` name) when `cookie_secure` is on. Rocket's own `Flash` sets its cookie and
//! removes it without `Secure`, which a secure deployment must not send.

use rocket::http::Status;
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};
use rocket::response::{self, Responder};

use super::guards::{cookie_removal, site_cookie};
use crate::config::Settings;

fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-latchkey_flash"
    } else {
        "latchkey_flash"
    }
}

fn secure(req: &Request<'_>) -> bool {
    req.rocket()
        .state::<Settings>()
        .is_some_and(|s| s.sessions.cookie_secure)
}

/// An answer (a redirect) plus the notice the next page shows.
pub struct Flash<R> {
    inner: R,
    message: String,
}

impl<R> Flash<R> {
    pub fn success(inner: R, message: impl Into<String>) -> Flash<R> {
        Flash {
            inner,
            message: message.into(),
        }
    }
}

impl<'r, 'o: 'r, R: Responder<'r, 'o>> Responder<'r, 'o> for Flash<R> {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'o> {
        let secure = secure(req);
        let mut cookie = site_cookie(cookie_name(secure), self.message, secure);
        cookie.set_max_age(rocket::time::Duration::minutes(5));
        req.cookies().add(cookie);
        self.inner.respond_to(req)
    }
}

/// The notice a redirect left for this page; reading it removes its cookie, so it
/// shows once.
pub struct FlashMessage(String);

impl FlashMessage {
    pub fn message(&self) -> &str {
        &self.0
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for FlashMessage {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let secure = secure(req);
        let name = cookie_name(secure);
        let Some(message) = req.cookies().get(name).map(|c| c.value().to_string()) else {
            return Outcome::Forward(Status::Ok);
        };
        req.cookies().remove(cookie_removal(name, secure));
        Outcome::Success(FlashMessage(message))
    }
}
