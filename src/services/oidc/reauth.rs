//! The re-sign-in marker (`signed_in_after`): when `prompt=login` or an elapsed
//! `max_age` sends a signed-in browser to sign in again, the request it comes back to
//! carries, in their place, the moment the new sign-in was asked. A sign-in no older
//! than that passes, so one sign-in ends the loop.
//!
//! Only Latchkey may set it: a marker an app (or anyone crafting the link) wrote by
//! hand, such as `signed_in_after=0` beside `prompt=login`, would skip the new
//! sign-in. So it is `MS.MAC`, MAC the first 128 bits of HMAC-SHA256 under
//! `jwt_secret` of the moment and the client it was set for, and a marker that does
//! not verify is refused. Nothing is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::support::crypto::{constant_time_eq, hmac};

/// The longest marker: an `i64` in decimal, a dot, 22 characters of MAC.
pub const MAX_MARKER: usize = 20 + 1 + 22;

fn mac(settings: &Settings, client_id: &str, at_ms: i64) -> String {
    let key = settings.tokens.jwt_secret.expose_secret();
    let data = format!("latchkey signed_in_after\n{client_id}\n{at_ms}");
    URL_SAFE_NO_PAD.encode(&hmac(key, data.as_bytes())[..16])
}

/// The marker for a new sign-in asked at `at_ms` (unix ms) for `client_id`.
pub fn marker(settings: &Settings, client_id: &str, at_ms: i64) -> String {
    format!("{at_ms}.{}", mac(settings, client_id, at_ms))
}

/// The moment a marker of ours for `client_id` names; `None` for anything else (made
/// up, altered, another client's).
pub fn verify(settings: &Settings, client_id: &str, marker: &str) -> Option<i64> {
    let (at, given) = marker.split_once('.')?;
    let at_ms: i64 = at.parse().ok()?;
    constant_time_eq(given, &mac(settings, client_id, at_ms)).then_some(at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_marker_made_here_for_that_client_verifies() {
        let settings = Settings::from_figment(&rocket::Config::figment()).expect("settings");
        let m = marker(&settings, "client-a", 1_700_000_000_000);
        assert!(m.len() <= MAX_MARKER, "{m}");
        assert_eq!(verify(&settings, "client-a", &m), Some(1_700_000_000_000));
        assert_eq!(verify(&settings, "client-b", &m), None);
        let (_, tag) = m.split_once('.').expect("MS.MAC");
        for forged in ["0", "1700000000000", &format!("0.{tag}"), "x.y", ""] {
            assert_eq!(verify(&settings, "client-a", forged), None, "{forged}");
        }
    }
}
