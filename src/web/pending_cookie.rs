//! The pending-sign-in cookie of `crate::services::signin::two_step`, read, set and
//! removed through the `SessionCookieJar`: a Rocket private cookie (encrypted and
//! authenticated under `secret_key`, so a client can neither read nor forge one) with
//! the attributes of every cookie of the site (`HttpOnly`, `SameSite=Lax`, `Path=/`, no
//! `Domain`, `Secure` and a `__Host-` name in secure mode), living as long as the
//! pending sign-in may.

use rocket::time;

use super::guards::{cookie_removal, site_cookie, SessionCookieJar};
use crate::config::Settings;
use crate::services::signin::two_step::PendingCookie;

fn cookie_name(settings: &Settings) -> &'static str {
    if settings.sessions.cookie_secure {
        "__Host-latchkey_2fa"
    } else {
        "latchkey_2fa"
    }
}

impl SessionCookieJar<'_> {
    /// This browser's pending sign-in, if it has a genuine cookie for one.
    pub fn pending(&self) -> Option<PendingCookie> {
        let cookie = self.jar.get_private(cookie_name(self.settings))?;
        PendingCookie::parse(cookie.value())
    }

    /// Sets the pending-sign-in cookie, for as long as a pending sign-in lives.
    pub fn set_pending(&self, pending: &PendingCookie) {
        let secure = self.settings.sessions.cookie_secure;
        let mut cookie = site_cookie(cookie_name(self.settings), pending.value(), secure);
        let ttl = self.settings.codes.second_factor_timeout;
        cookie.set_max_age(time::Duration::seconds(ttl.as_secs() as i64));
        self.jar.add_private(cookie);
    }

    /// Removes it (the sign-in finished or ended).
    pub fn clear_pending(&self) {
        let secure = self.settings.sessions.cookie_secure;
        self.jar
            .remove_private(cookie_removal(cookie_name(self.settings), secure));
    }
}
