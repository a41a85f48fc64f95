//! The trusted-browser cookie (`latchkey_device`) of
//! `crate::services::signin::trusted_browsers`, read and set through the
//! `SessionCookieJar`: set after a successful sign-in with the attributes of every
//! cookie of the site (`HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`, `Secure` and
//! a `__Host-` name in secure mode). It is a Rocket private cookie: encrypted and
//! authenticated under `secret_key`, so a client can neither read nor forge one.
//! Signing out keeps it: that is what lets the owner back in while strangers are locked
//! out.

use rocket::time;

use super::guards::{site_cookie, SessionCookieJar};
use crate::config::Settings;
use crate::services::signin::trusted_browsers::{BrowserClaim, TRUST_TTL};

fn cookie_name(settings: &Settings) -> &'static str {
    if settings.sessions.cookie_secure {
        "__Host-latchkey_device"
    } else {
        "latchkey_device"
    }
}

impl SessionCookieJar<'_> {
    /// What this browser's trusted-browser cookie says, if it has a genuine one.
    pub fn trusted_browser(&self) -> Option<BrowserClaim> {
        let cookie = self.jar.get_private(cookie_name(self.settings))?;
        BrowserClaim::parse(cookie.value())
    }

    /// Sets (or renews) this browser's trusted-browser cookie.
    pub fn set_trusted_browser(&self, claim: &BrowserClaim) {
        let secure = self.settings.sessions.cookie_secure;
        let mut cookie = site_cookie(cookie_name(self.settings), claim.value(), secure);
        cookie.set_max_age(time::Duration::seconds(TRUST_TTL.as_secs() as i64));
        self.jar.add_private(cookie);
    }
}
