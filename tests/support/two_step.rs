//! Two-step sign-in as a person with an authenticator app does it: the secret read off
//! the set-up page (`otpauth://` URI), codes computed from it, recovery codes read off
//! the page that shows them once; `TwoStepAccount`, what `TestApp::two_step_account`
//! makes.

use std::time::Duration;

use super::{second_factor::code_at, unescape, unix_now};

/// The code page of a pending sign-in.
pub const CODE_PAGE: &str = "/login/second-factor";

/// An account with its second factor on: the authenticator secret and the ten recovery
/// codes (its password is [`PASSWORD`](super::PASSWORD)).
pub struct TwoStepAccount {
    pub email: String,
    pub secret: Vec<u8>,
    pub recovery: Vec<String>,
}

impl TwoStepAccount {
    /// The code the app shows now: later than the step the set-up used up (the one
    /// before), so accepted once.
    pub fn next_code(&self) -> String {
        code_at(&self.secret, unix_now())
    }
}

/// The code an app with `secret` shows `steps` time steps from now (-1, 0 or 1 are all
/// accepted, each once).
pub fn code_in_steps(secret: &[u8], steps: i64) -> String {
    let at = unix_now() as i64 + steps * 30;
    code_at(secret, at as u64)
}

/// The authenticator code of the time step before now: turning the second factor on with
/// it leaves the current and the next codes unused. The server takes it until the current
/// step ends (a skew of one step), so when less than 15 s of that step are left this
/// first waits (blocking) for the next one: on a loaded machine the request, whose
/// password check runs Argon2 at nice 10, can take seconds, and was refused when it
/// crossed into the next step.
pub fn code_of_the_step_before(secret: &[u8]) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let since_epoch = || SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    let left_ms = 30_000 - (since_epoch().as_millis() % 30_000) as u64;
    if left_ms < 15_000 {
        std::thread::sleep(Duration::from_millis(left_ms + 100));
    }
    code_at(secret, since_epoch().as_secs() - 30)
}

/// The `otpauth://` URI the set-up page shows as text.
pub fn otpauth_uri_in(html: &str) -> String {
    let text = unescape(html);
    let start = text
        .find("otpauth://totp/")
        .expect("the otpauth URI on the page");
    let end = text[start..].find(['<', '"']).expect("the URI's end") + start;
    text[start..end].to_string()
}

/// The secret in an otpauth URI, decoded from base32.
pub fn secret_of(uri: &str) -> Vec<u8> {
    let query = uri.split_once('?').expect("a query").1;
    let b32 = query
        .split('&')
        .find_map(|p| p.strip_prefix("secret="))
        .expect("a secret parameter");
    base32::decode(base32::Alphabet::Rfc4648 { padding: false }, b32).expect("base32")
}

/// The secret the set-up page shows.
pub fn secret_on(setup_page: &str) -> Vec<u8> {
    secret_of(&otpauth_uri_in(setup_page))
}

/// The recovery codes on a page, each in an element of class `recovery-code`.
pub fn recovery_codes_in(html: &str) -> Vec<String> {
    html.split("class=\"recovery-code\">")
        .skip(1)
        .filter_map(|rest| rest.split('<').next())
        .map(|c| c.trim().to_string())
        .collect()
}
