//! Browser sessions and their cookie.

use std::time::Duration;

use super::reader::{bad, Reader, SettingError};

/// Browser sessions and their cookie.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub cookie_secure: bool,
    /// The parent domain the session cookie is shared with (`Domain`), lower case,
    /// without a leading dot; `None`: a host-only cookie.
    pub cookie_domain: Option<String>,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// Absolute (and idle) lifetime of a "remember me" session.
    pub remember_timeout: Duration,
    /// Browser and API sessions per user; past it the least recently seen ends.
    pub max_per_user: u32,
    /// Live sessions of one app per user; past it that app's oldest ends.
    pub app_sessions_per_client: u32,
}

impl SessionSettings {
    pub(super) fn read(r: &Reader, debug: bool) -> Result<Self, SettingError> {
        let s = SessionSettings {
            cookie_secure: r.flag("cookie_secure", !debug)?,
            cookie_domain: r
                .optional_text("cookie_domain")?
                .map(|d| cookie_domain(&d))
                .transpose()?,
            idle_timeout: r.seconds("session_idle_timeout", 1800)?,
            absolute_timeout: r.seconds("session_absolute_timeout", 86400)?,
            remember_timeout: r.seconds("remember_absolute_timeout", 30 * 86400)?,
            max_per_user: r.count("max_sessions_per_user", 50)?,
            app_sessions_per_client: r.count("app_sessions_per_client", 10)?,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingError> {
        if self.idle_timeout > self.absolute_timeout {
            return Err(bad(
                "session_idle_timeout",
                "must not be longer than session_absolute_timeout",
            ));
        }
        Ok(())
    }

    /// The session cookie's name, as the contract fixes it: `__Host-` needs a host-only
    /// cookie, so a shared one (`cookie_domain`) is `__Secure-`.
    pub fn cookie_name(&self) -> &'static str {
        match (self.cookie_secure, &self.cookie_domain) {
            (true, None) => "__Host-latchkey",
            (true, Some(_)) => "__Secure-latchkey",
            (false, _) => "latchkey",
        }
    }
}

/// `cookie_domain` as a cookie's `Domain` carries it: a DNS name of two labels or
/// more, lower case, no leading or trailing dot (a leading dot is dropped, as browsers
/// drop it), and no IP address (a `Domain` cannot share a cookie across addresses).
fn cookie_domain(raw: &str) -> Result<String, SettingError> {
    let d = raw.trim().trim_start_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let is_ip = d.parse::<std::net::IpAddr>().is_ok();
    if is_ip || !d.contains('.') || !d.split('.').all(label_ok) {
        return Err(bad(
            "cookie_domain",
            format!("must be a parent domain such as example.com, got {raw:?}"),
        ));
    }
    Ok(d)
}
