//! The passkey-ceremony cookie of `crate::services::passkeys`, read, set and removed
//! through the `SessionCookieJar`: a Rocket private cookie (encrypted and
//! authenticated under `secret_key`) with the attributes of every cookie of the site,
//! living as long as a ceremony may (5 minutes). It binds a ceremony to the browser
//! that asked for its options.

use rocket::time;

use super::guards::{cookie_removal, site_cookie, SessionCookieJar};
use crate::config::Settings;
use crate::services::passkeys::{CeremonyCookie, CEREMONY_TTL_MS};

fn cookie_name(settings: &Settings) -> &'static str {
    if settings.sessions.cookie_secure {
        "__Host-latchkey_passkey"
    } else {
        "latchkey_passkey"
    }
}

impl SessionCookieJar<'_> {
    /// This browser's passkey ceremony, if it has a genuine cookie for one.
    pub fn ceremony(&self) -> Option<CeremonyCookie> {
        let cookie = self.jar.get_private(cookie_name(self.settings))?;
        CeremonyCookie::parse(cookie.value())
    }

    /// Sets the ceremony cookie (replacing any earlier one: one ceremony per browser).
    pub fn set_ceremony(&self, ceremony: &CeremonyCookie) {
        let secure = self.settings.sessions.cookie_secure;
        let value = ceremony.value().to_string();
        let mut cookie = site_cookie(cookie_name(self.settings), value, secure);
        cookie.set_max_age(time::Duration::milliseconds(CEREMONY_TTL_MS));
        self.jar.add_private(cookie);
    }

    /// Removes it (the ceremony was answered).
    pub fn clear_ceremony(&self) {
        let secure = self.settings.sessions.cookie_secure;
        self.jar
            .remove_private(cookie_removal(cookie_name(self.settings), secure));
    }
}
