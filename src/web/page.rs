//! The page renderer (`Page`: a template, its context, its status, `Retry-After` for a
//! throttled form, a `form-action` for a form whose redirect may end at an app) and
//! the security headers every answer carries.

use std::time::Duration;

use rocket::fairing::AdHoc;
use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket_dyn_templates::Template;
use serde::Serialize;
use serde_json::{Map, Value};

use super::flash::FlashMessage;
use super::guards::looked_up_session;
use crate::services::signin::limits::Throttled;
use crate::support::clock::{retry_after_secs, wait_in_words};

/// No script at all (the pages with passkey parts allow our own script file:
/// `Page::passkeys`), styles only from our own stylesheet, no framing, forms post only
/// to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// A page to render: a template, its context and its status.
#[derive(Clone)]
pub struct Page {
    template: &'static str,
    status: Status,
    ctx: Map<String, Value>,
    retry_after: Option<Duration>,
    /// Another origin this page's forms may end at (`form-action`), besides ours.
    form_action: Option<String>,
    /// The page runs the passkey script (`script-src 'self'`).
    script: bool,
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
            script: false,
        }
    }

    /// A page with passkey parts: says whether passkeys work on this server
    /// (`passkeys_available`); when they do, it loads `static/passkeys.js` and its
    /// policy allows scripts from our own origin (nothing inline). Otherwise it keeps
    /// `script-src 'none'` and runs no script.
    pub fn passkeys(mut self, available: bool) -> Page {
        self.script = available;
        self.with("passkeys_available", available)
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
    pub fn flash(self, flash: Option<FlashMessage>) -> Page {
        match flash {
            Some(f) => self.with("notice", f.message()),
            None => self,
        }
    }
}

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(mut self, req: &'r Request<'_>) -> response::Result<'static> {
        // Every page of an unverified account says so, with the way to verify (the
        // code page has the form itself).
        if let Some(session) = looked_up_session(req) {
            if !session.email_verified && !self.template.starts_with("verify") {
                self.ctx.insert("verify_banner".into(), Value::Bool(true));
                self.ctx
                    .insert("verify_csrf".into(), Value::String(session.csrf.clone()));
            }
        }
        let mut res = Template::render(self.template, Value::Object(self.ctx)).respond_to(req)?;
        res.set_status(self.status);
        if let Some(wait) = self.retry_after {
            res.set_header(Header::new(
                "Retry-After",
                retry_after_secs(wait).to_string(),
            ));
        }
        if self.form_action.is_some() || self.script {
            let mut csp = CONTENT_SECURITY_POLICY.to_string();
            if let Some(origin) = self.form_action {
                csp = csp.replace(
                    "form-action 'self'",
                    &format!("form-action 'self' {origin}"),
                );
            }
            if self.script {
                csp = csp.replace("script-src 'none'", "script-src 'self'");
            }
            res.set_header(Header::new("Content-Security-Policy", csp));
        }
        Ok(res)
    }
}

/// Security headers on every answer; `no-store` on everything but the stylesheet
/// (which sets its own `Cache-Control`), since pages carry CSRF tokens and signed-in
/// content.
pub(super) fn security_headers() -> AdHoc {
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
