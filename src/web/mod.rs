//! The browser pages: routes by area, the page renderer, and the headers every
//! answer carries.

mod assets;
mod auth;
mod device_cookie;
mod devices;
mod flash;
mod forward;
pub mod guards;
pub(crate) mod oauth;
mod oauth_logout;
mod password;
mod pending_cookie;
mod security;
mod two_step;

use std::time::Duration;

use rocket::fairing::AdHoc;
use rocket::form::{self, FromFormField, ValueField};
use rocket::http::uri::fmt::{Formatter, FromUriParam, Query, UriDisplay};
use rocket::http::uri::Origin;
use rocket::http::{Header, RawStr, Status};
use rocket::request::Request;
use rocket::response::{self, Redirect, Responder};
use rocket::shield::{Frame, Hsts, NoSniff, Referrer, Shield};
use rocket_dyn_templates::Template;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::Settings;
use crate::services::signin::limits::Throttled;
use crate::support::clock::{retry_after_secs, wait_in_words};

/// No script at all, styles only from our own stylesheet, no framing, forms post
/// only to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// A page to render: a template, its context and its status.
pub struct Page {
    template: &'static str,
    status: Status,
    ctx: Map<String, Value>,
    retry_after: Option<Duration>,
    /// Another origin this page's forms may end at (`form-action`), besides ours.
    form_action: Option<String>,
}

impl Page {
    pub fn new(template: &'static str, csrf_token: &str) -> Page {
        let mut ctx = Map::new();
        ctx.insert("csrf_token".into(), Value::String(csrf_token.to_string()));
        Page {
            template,
            status: Status::Ok,
            ctx,
            retry_after: None,
            form_action: None,
        }
    }

    /// Lets this page's forms end at `origin` (a redirect to an app after the POST):
    /// Chromium applies `form-action` to every redirect that follows a form.
    pub fn form_action(mut self, origin: Option<String>) -> Page {
        self.form_action = origin;
        self
    }

    pub fn with(mut self, key: &str, value: impl Serialize) -> Page {
        self.ctx.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    pub fn status(mut self, status: Status) -> Page {
        self.status = status;
        self
    }

    pub fn error(self, message: impl Into<String>, status: Status) -> Page {
        self.with("error", message.into()).status(status)
    }

    /// The form again with 429 and `Retry-After`; `message` gets the wait in words.
    pub fn throttled(self, t: Throttled, message: impl FnOnce(&str) -> String) -> Page {
        let mut page = self.error(
            message(&wait_in_words(t.retry_after)),
            Status::TooManyRequests,
        );
        page.retry_after = Some(t.retry_after);
        page
    }

    /// Shows a notice carried over a redirect.
    pub fn flash(self, flash: Option<flash::FlashMessage>) -> Page {
        match flash {
            Some(f) => self.with("notice", f.message()),
            None => self,
        }
    }
}

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Template::render(self.template, Value::Object(self.ctx)).respond_to(req)?;
        res.set_status(self.status);
        if let Some(wait) = self.retry_after {
            res.set_header(Header::new(
                "Retry-After",
                retry_after_secs(wait).to_string(),
            ));
        }
        if let Some(origin) = self.form_action {
            let csp = CONTENT_SECURITY_POLICY.replace(
                "form-action 'self'",
                &format!("form-action 'self' {origin}"),
            );
            res.set_header(Header::new("Content-Security-Policy", csp));
        }
        Ok(res)
    }
}

/// Where to go after signing in: a path on this site only (never `//host`, a scheme,
/// a backslash or control characters), and only one a `Location` header carries as it
/// is (Rocket's URI parser: no space, quote, `<`, `|` in the path, no non-ASCII), so
/// the redirect is known good before a session starts. Anything else in `?next=` is
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextPath(Origin<'static>);

/// The longest `next`: every valid authorization request fits (`MAX_REQUEST_PATH`,
/// computed from its parameters' caps), and a bound stays.
pub const MAX_NEXT: usize = if oauth::MAX_REQUEST_PATH > 512 {
    oauth::MAX_REQUEST_PATH
} else {
    512
};

impl NextPath {
    pub fn parse(n: &str) -> Option<NextPath> {
        let local = n.starts_with('/')
            && !n.starts_with("//")
            && !n.starts_with("/\\")
            && n.len() <= MAX_NEXT
            && !n.chars().any(|c| c.is_control() || c == '\\');
        if !local {
            return None;
        }
        Origin::parse_owned(n.to_string()).ok().map(NextPath)
    }

    /// The redirect there: it cannot fail, the path was parsed as a URI already.
    pub fn redirect(self) -> Redirect {
        Redirect::to(self.0)
    }
}

impl std::fmt::Display for NextPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for NextPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'v> FromFormField<'v> for NextPath {
    fn from_value(field: ValueField<'v>) -> form::Result<'v, Self> {
        NextPath::parse(field.value)
            .ok_or_else(|| form::Error::validation("not a local path").into())
    }
}

/// In a query, `/` stays readable (`/login?next=/devices`, RFC 3986 §3.4); every other
/// character is encoded as Rocket encodes any query value.
impl UriDisplay<Query> for NextPath {
    fn fmt(&self, f: &mut Formatter<'_, Query>) -> std::fmt::Result {
        let segments: Vec<_> = self
            .0
            .to_string()
            .split('/')
            .map(|s| RawStr::new(s).percent_encode().to_string())
            .collect();
        f.write_raw(segments.join("/"))
    }
}

impl FromUriParam<Query, NextPath> for NextPath {
    type Target = NextPath;

    fn from_uri_param(next: NextPath) -> NextPath {
        next
    }
}

/// Security headers on every answer; `no-store` on everything but the stylesheet
/// (which sets its own `Cache-Control`), since pages carry CSRF tokens and signed-in
/// content.
fn security_headers() -> AdHoc {
    AdHoc::on_response("Security headers", |req, res| {
        Box::pin(async move {
            // A page that set its own policy (the consent page's `form-action`) keeps it.
            if !res.headers().contains("Content-Security-Policy") {
                res.set_header(Header::new(
                    "Content-Security-Policy",
                    CONTENT_SECURITY_POLICY,
                ));
            }
            if !req.uri().path().starts_with("/static/") {
                res.set_header(Header::new("Cache-Control", "no-store"));
            }
        })
    })
}

pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Pages", |rocket| async move {
        let secure = rocket
            .state::<Settings>()
            .map(|s| s.sessions.cookie_secure)
            .unwrap_or(false);
        let stylesheet = match assets::Stylesheet::load(&crate::config::asset_root()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("latchkey: {e}");
                return Err(rocket);
            }
        };
        let mut shield = Shield::new()
            .enable(NoSniff::Enable)
            .enable(Frame::Deny)
            .enable(Referrer::StrictOriginWhenCrossOrigin);
        if secure {
            shield = shield.enable(Hsts::default());
        }
        let routes = stylesheet.routes();
        Ok(rocket
            .attach(Template::custom(move |engines| {
                stylesheet.register(&mut engines.tera)
            }))
            .attach(shield)
            .attach(security_headers())
            .mount("/", routes)
            .mount("/", auth::routes())
            .mount("/", devices::routes())
            .mount("/", password::routes())
            .mount("/", security::routes())
            .mount("/", two_step::routes())
            .mount("/", forward::routes())
            .mount("/", oauth::routes())
            .mount("/", oauth_logout::routes())
            .register("/", crate::http::error::catchers()))
    })
}

#[cfg(test)]
mod tests {
    use super::NextPath;

    #[test]
    fn next_is_a_local_path_a_location_header_carries() {
        for ok in [
            "/devices",
            "/account/password",
            "/devices?tab=all",
            "/a%20b",
        ] {
            let next = NextPath::parse(ok).unwrap_or_else(|| panic!("{ok}"));
            assert_eq!(serde_json::to_value(&next).ok(), Some(ok.into()));
        }
        for refused in [
            "devices",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "/\t/evil.example",
            "/devices x",
            "/a\"b",
            "/a|b",
            "/<script>",
            "/ü",
            "/devices#top",
        ] {
            assert_eq!(NextPath::parse(refused), None, "{refused}");
        }
        // Bounded: as long as the longest valid authorization request, no longer.
        let long = format!("/{}", "a".repeat(super::MAX_NEXT - 1));
        assert!(NextPath::parse(&long).is_some());
        assert_eq!(NextPath::parse(&format!("{long}a")), None);
    }
}
