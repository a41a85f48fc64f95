//! The second factor: an authenticator app (TOTP, RFC 6238: 160-bit secret, SHA-1,
//! 6 digits, 30 s steps, one step of drift either way) and ten single-use recovery
//! codes. Turning it on, checking a code, replacing the recovery codes and turning it
//! off, for the account pages and the sign-in alike.
//!
//! - The secret is stored sealed (AES-256-GCM, the user id as associated data, so a
//!   sealed secret copied to another account's row does not open) under a key derived
//!   from `second_factor_key`; a set-up not yet confirmed travels sealed the same way
//!   (with its expiry, under another associated data) in a cookie, never in the clear.
//! - A code is accepted only for a time step later than the last one accepted
//!   (NIST SP 800-63B §5.1.4.2): the account's row keeps it, and accepting is one
//!   conditional `UPDATE`, so of two concurrent requests with one code one passes.
//! - Recovery codes are stored as HMAC-SHA256 (a second derived key, the user id in
//!   the message); using one deletes its row (one request wins) and mails the owner.
//! - The start checks that the key is the one that sealed the stored secrets, so a
//!   changed or lost key stops the start with a message, never a 500 at sign-in.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rocket::fairing::AdHoc;
use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use crate::accounts::{AccountError, Accounts, User};
use crate::config::{SecondFactorSettings, Settings};
use crate::services::{ServiceError, Services};
use crate::store::{Sessions, StoreError};
use crate::support::clock::{exact_time, now_ms};
use crate::support::crypto::{constant_time_eq, hmac, hmac_hex, random_bytes};

/// Recovery codes in a set.
pub const RECOVERY_CODES: usize = 10;
/// Seconds in a time step.
pub const STEP_SECONDS: u64 = 30;
/// The name the authenticator app shows beside the account.
pub const ISSUER: &str = "Latchkey";
/// How long a set-up page's secret may still be confirmed.
pub const SETUP_TTL_MS: i64 = 15 * 60 * 1000;
/// TOTP secret bytes (160 bits, RFC 4226's recommendation).
const SECRET_BYTES: usize = 20;
/// Random bytes of a recovery code: 80 bits, 16 base32 characters.
const RECOVERY_CODE_BYTES: usize = 10;
const RECOVERY_CODE_CHARS: usize = 16;
const BASE32: base32::Alphabet = base32::Alphabet::Rfc4648 { padding: false };

/// Whether an account's second factor is on, and what it has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Unix ms when it was turned on.
    pub enabled_at: i64,
    pub recovery_codes_left: u32,
}

/// Which factor a right code was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// A code from the authenticator app, for a time step not accepted before.
    Totp,
    /// A recovery code, now used up (the owner was mailed); `left` are still unused.
    RecoveryCode { left: u32 },
}

/// A code that did not pass, or why nothing could be checked. Only `Failed` is the
/// server's fault; every other case is the client's answer (a 4xx).
#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    /// Neither 6 digits nor a recovery code's 16 characters.
    #[error("enter the 6-digit code from your authenticator app, or a recovery code")]
    Malformed,
    /// Not a current code, and not an unused recovery code of this account.
    #[error("that code is not right")]
    WrongCode,
    /// A right code for a time step already accepted (a replay, or the same code a
    /// second time): refused, as NIST SP 800-63B §5.1.4.2 asks.
    #[error("that code was already used; wait for the next one")]
    Replayed,
    /// The account has no second factor.
    #[error("the second factor is not on")]
    NotEnrolled,
    /// The account already has one (turning on twice).
    #[error("the second factor is already on")]
    AlreadyEnrolled,
    #[error("the second factor could not be checked")]
    Failed(#[source] ServiceError),
}

impl SecondFactorError {
    /// A code that did not pass (malformed, wrong or replayed): what a limiter counts.
    pub fn is_wrong_code(&self) -> bool {
        matches!(
            self,
            SecondFactorError::Malformed
                | SecondFactorError::WrongCode
                | SecondFactorError::Replayed
        )
    }
}

impl From<AccountError> for SecondFactorError {
    fn from(e: AccountError) -> Self {
        SecondFactorError::Failed(e.into())
    }
}

impl From<StoreError> for SecondFactorError {
    fn from(e: StoreError) -> Self {
        SecondFactorError::Failed(e.into())
    }
}

/// The keys derived from `second_factor_key`, each for one purpose.
pub struct Keys {
    seal: [u8; 32],
    recovery: [u8; 32],
    /// Names the key (stored, compared at start); reveals nothing about it.
    id: String,
}

impl Keys {
    pub fn new(settings: &SecondFactorSettings) -> Keys {
        let master = settings.key.expose_secret();
        Keys {
            seal: hmac(master, b"latchkey second factor: seal secrets v1"),
            recovery: hmac(master, b"latchkey second factor: recovery codes v1"),
            id: hmac_hex(master, b"latchkey second factor: key id v1")[..16].to_string(),
        }
    }

    fn cipher(&self) -> Option<Aes256Gcm> {
        Aes256Gcm::new_from_slice(&self.seal).ok()
    }

    /// base64(nonce || ciphertext) of `plain`, bound to `context`.
    fn seal(&self, context: &[u8], plain: &[u8]) -> Option<String> {
        let nonce: [u8; 12] = random_bytes(12).try_into().ok()?;
        let sealed = self
            .cipher()?
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: context,
                },
            )
            .ok()?;
        Some(STANDARD.encode([nonce.as_slice(), &sealed].concat()))
    }

    /// What `seal` sealed under this key and `context`; `None` for anything else.
    fn open(&self, context: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let bytes = STANDARD.decode(sealed).ok()?;
        if bytes.len() < 12 + 16 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        self.cipher()?
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: context,
                },
            )
            .ok()
    }

    fn recovery_mac(&self, user_id: &Uuid, code: &str) -> String {
        hmac_hex(&self.recovery, format!("{user_id}:{code}").as_bytes())
    }
}

fn stored_context(user_id: &Uuid) -> Vec<u8> {
    format!("latchkey totp secret {user_id}").into_bytes()
}

fn setup_context(user_id: &Uuid) -> Vec<u8> {
    format!("latchkey totp set-up {user_id}").into_bytes()
}

/// A TOTP secret being set up: made for the set-up page, confirmed with a code.
#[derive(Clone)]
pub struct Enrolment {
    secret: Vec<u8>,
    /// Unix ms after which it can no longer be confirmed.
    expires_at: i64,
}

impl Enrolment {
    /// A new random 160-bit secret.
    pub fn new() -> Enrolment {
        Enrolment {
            secret: random_bytes(SECRET_BYTES),
            expires_at: now_ms() + SETUP_TTL_MS,
        }
    }

    /// An enrolment of a known secret (tests; an operator tool): valid for the set-up
    /// time from now.
    pub fn from_secret(secret: &[u8]) -> Enrolment {
        Enrolment {
            secret: secret.to_vec(),
            expires_at: now_ms() + SETUP_TTL_MS,
        }
    }

    /// The raw secret (what an authenticator app holds).
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The secret in base32, as typed by hand into an app.
    pub fn secret_base32(&self) -> String {
        base32::encode(BASE32, &self.secret)
    }

    /// `otpauth://totp/Latchkey:EMAIL?secret=...&issuer=Latchkey...`: what the QR code
    /// holds. `None` for an address an otpauth URI cannot carry (a colon).
    pub fn otpauth_uri(&self, email: &str) -> Option<String> {
        let totp = totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(STEP_SECONDS)
            .with_secret(self.secret.clone())
            .with_account_name(email.to_string())
            .with_issuer(Some(ISSUER.to_string()))
            .build()
            .ok()?;
        totp.to_url().ok()
    }

    /// The QR code of [`Self::otpauth_uri`] as an inline `<svg>` element (no XML
    /// prolog), for the set-up page.
    pub fn qr_svg(&self, email: &str) -> Option<String> {
        let uri = self.otpauth_uri(email)?;
        let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
        let svg = code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build();
        let start = svg.find("<svg")?;
        Some(svg[start..].replacen(
            "<svg ",
            "<svg class=\"qr\" role=\"img\" aria-label=\"QR code to scan with your authenticator app\" ",
            1,
        ))
    }

    /// Sealed for `user_id` (the set-up cookie's value): unreadable and unforgeable
    /// without the key, and useless for another account.
    pub fn seal(&self, keys: &Keys, user_id: &Uuid) -> Option<String> {
        let plain = [self.expires_at.to_be_bytes().as_slice(), &self.secret].concat();
        keys.seal(&setup_context(user_id), &plain)
    }

    /// The enrolment `seal` made for `user_id`, if it has not expired.
    pub fn open(keys: &Keys, user_id: &Uuid, sealed: &str) -> Option<Enrolment> {
        let plain = keys.open(&setup_context(user_id), sealed)?;
        if plain.len() != 8 + SECRET_BYTES {
            return None;
        }
        let (expiry, secret) = plain.split_at(8);
        let expires_at = i64::from_be_bytes(expiry.try_into().ok()?);
        (now_ms() <= expires_at).then(|| Enrolment {
            secret: secret.to_vec(),
            expires_at,
        })
    }

    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

impl Default for Enrolment {
    fn default() -> Self {
        Enrolment::new()
    }
}

/// The code an authenticator app with `secret` shows at `unix_secs` (tests, and
/// the checks below).
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret.to_vec())
        .build_noncompliant()
        .generate(unix_secs)
        .to_string()
}

/// The time step `code` is right for, among the current one and one either side.
fn matching_step(secret: &[u8], code: &str, now_ms: i64) -> Option<i64> {
    let current = u64::try_from(now_ms).ok()? / 1000 / STEP_SECONDS;
    let mut found = None;
    // Every candidate is computed and compared, whichever matches.
    for step in [current.saturating_sub(1), current, current + 1] {
        if constant_time_eq(&code_at(secret, step * STEP_SECONDS), code) {
            found = i64::try_from(step).ok();
        }
    }
    found
}

/// What a typed code is: six digits, or a recovery code (16 base32 characters, in
/// any case, with or without the dashes and spaces it is shown with, 0/1/8 read as
/// O/I/B).
enum Typed {
    Totp(String),
    Recovery(String),
}

fn parse_code(input: &str) -> Option<Typed> {
    let cleaned: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if cleaned.len() == 6 && cleaned.chars().all(|c| c.is_ascii_digit()) {
        return Some(Typed::Totp(cleaned));
    }
    // 0, 1 and 8 are not in the base32 alphabet: read as the letters they look like.
    let upper: String = cleaned
        .to_ascii_uppercase()
        .chars()
        .map(|c| match c {
            '0' => 'O',
            '1' => 'I',
            '8' => 'B',
            c => c,
        })
        .collect();
    let base32 = |c: char| c.is_ascii_uppercase() || ('2'..='7').contains(&c);
    (upper.len() == RECOVERY_CODE_CHARS && upper.chars().all(base32))
        .then_some(Typed::Recovery(upper))
}

/// A new set of recovery codes, as shown (`ABCD-EFGH-IJKL-MNOP`), and their MACs for
/// `user_id`.
fn new_recovery_codes(keys: &Keys, user_id: &Uuid) -> (Vec<String>, Vec<String>) {
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    let mut macs = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let code = base32::encode(BASE32, &random_bytes(RECOVERY_CODE_BYTES));
        macs.push(keys.recovery_mac(user_id, &code));
        let groups: Vec<&str> = [0, 4, 8, 12].iter().map(|&i| &code[i..i + 4]).collect();
        shown.push(groups.join("-"));
    }
    (shown, macs)
}

/// Whether the account's second factor is on, and how many recovery codes it has
/// left.
pub async fn enrolled(
    services: &Services<'_>,
    user_id: &Uuid,
) -> Result<Option<Status>, SecondFactorError> {
    let Some(row) = services.accounts.second_factor(user_id).await? else {
        return Ok(None);
    };
    let left = services.accounts.recovery_codes_left(user_id).await?;
    Ok(Some(Status {
        enabled_at: row.enabled_at,
        recovery_codes_left: left,
    }))
}

/// Whether the account has a second factor turned on: one read of its row (not the
/// recovery-code count `enrolled` adds), at every right password. A
/// database failure is an error, never "off".
pub async fn has_second_factor(app: Services<'_>, user: &User) -> Result<bool, ServiceError> {
    Ok(app.accounts.second_factor(&user.id).await?.is_some())
}

/// A right code, checked. An authenticator code's time step is already spent (no
/// replay); a recovery code is still unused until [`use_up`]: a caller that may yet
/// refuse the sign-in (the code page, whose pending sign-in another request may take
/// first) uses it up only once the sign-in is certain, so a recovery code is never
/// spent on a sign-in that does not happen.
#[derive(Debug)]
pub enum Accepted {
    Totp,
    Recovery { mac: String },
}

/// What a code is checked for. A recovery code used to sign in mails the owner; one
/// used to turn the second factor off does not (the turning-off mail says it all, and
/// the other codes go with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    SignIn,
    TurnOff,
}

/// Checks a code an account's owner typed: a current authenticator code for a time
/// step later than the last accepted one (recorded atomically, so a code passes
/// once), or one of the account's unused recovery codes (not yet used up: see
/// [`Accepted`]).
pub async fn check(
    services: &Services<'_>,
    user_id: &Uuid,
    code: &str,
) -> Result<Accepted, SecondFactorError> {
    let typed = parse_code(code).ok_or(SecondFactorError::Malformed)?;
    let row = services
        .accounts
        .second_factor(user_id)
        .await?
        .ok_or(SecondFactorError::NotEnrolled)?;
    let keys = Keys::new(&services.settings.second_factor);
    match typed {
        Typed::Totp(code) => {
            let secret = keys
                .open(&stored_context(user_id), &row.secret_sealed)
                .ok_or_else(unreadable)?;
            let step =
                matching_step(&secret, &code, now_ms()).ok_or(SecondFactorError::WrongCode)?;
            if step <= row.last_step
                || !services
                    .accounts
                    .advance_second_factor_step(user_id, step)
                    .await?
            {
                return Err(SecondFactorError::Replayed);
            }
            Ok(Accepted::Totp)
        }
        Typed::Recovery(code) => {
            let mac = keys.recovery_mac(user_id, &code);
            if !services.accounts.has_recovery_code(user_id, &mac).await? {
                return Err(SecondFactorError::WrongCode);
            }
            Ok(Accepted::Recovery { mac })
        }
    }
}

/// Finishes an accepted code: a recovery code is used up now (atomically: of two
/// requests with one code, one passes; the other is `WrongCode`), and the owner is
/// mailed when it signed in.
pub async fn use_up(
    services: &Services<'_>,
    user_id: &Uuid,
    accepted: Accepted,
    purpose: Purpose,
) -> Result<Verified, SecondFactorError> {
    let Accepted::Recovery { mac } = accepted else {
        return Ok(Verified::Totp);
    };
    if !services.accounts.use_recovery_code(user_id, &mac).await? {
        return Err(SecondFactorError::WrongCode);
    }
    let left = services.accounts.recovery_codes_left(user_id).await?;
    if purpose == Purpose::SignIn {
        tell_owner(services, user_id, Notice::RecoveryCodeUsed { left }).await;
    }
    Ok(Verified::RecoveryCode { left })
}

/// [`check`] and [`use_up`] at once, for a caller with nothing left to refuse.
pub async fn verify(
    services: &Services<'_>,
    user_id: &Uuid,
    code: &str,
    purpose: Purpose,
) -> Result<Verified, SecondFactorError> {
    let accepted = check(services, user_id, code).await?;
    use_up(services, user_id, accepted, purpose).await
}

/// A stored secret the key does not open (or a secret that could not be sealed): the
/// start checks the key, so only a row changed by hand gets here. A 500, logged.
fn unreadable() -> SecondFactorError {
    SecondFactorError::Failed(ServiceError::Accounts(AccountError::Unsealable))
}

/// Turns the second factor on with `enrolment`'s secret, confirmed by `code` (a
/// current code from the app; its time step counts as used). Answers the ten recovery
/// codes, to be shown once; mails the owner. The caller re-checks the password first.
pub async fn enable(
    services: &Services<'_>,
    user_id: &Uuid,
    enrolment: &Enrolment,
    code: &str,
) -> Result<Vec<String>, SecondFactorError> {
    let Some(Typed::Totp(code)) = parse_code(code) else {
        return Err(SecondFactorError::Malformed);
    };
    let now = now_ms();
    if now > enrolment.expires_at {
        return Err(SecondFactorError::WrongCode);
    }
    let step = matching_step(&enrolment.secret, &code, now).ok_or(SecondFactorError::WrongCode)?;
    let keys = Keys::new(&services.settings.second_factor);
    let sealed = keys
        .seal(&stored_context(user_id), &enrolment.secret)
        .ok_or_else(unreadable)?;
    let (shown, macs) = new_recovery_codes(&keys, user_id);
    let on = services
        .accounts
        .enable_second_factor(user_id, &sealed, step, now, &macs)
        .await?;
    if !on {
        return Err(SecondFactorError::AlreadyEnrolled);
    }
    tracing::info!(user = %user_id, "second factor turned on");
    tell_owner(services, user_id, Notice::Enabled).await;
    Ok(shown)
}

/// A new set of ten recovery codes (the old ones stop working); mails the owner. The
/// caller re-checks the password first.
pub async fn replace_recovery_codes(
    services: &Services<'_>,
    user_id: &Uuid,
) -> Result<Vec<String>, SecondFactorError> {
    let keys = Keys::new(&services.settings.second_factor);
    let (shown, macs) = new_recovery_codes(&keys, user_id);
    if !services
        .accounts
        .replace_recovery_codes(user_id, &macs)
        .await?
    {
        return Err(SecondFactorError::NotEnrolled);
    }
    tracing::info!(user = %user_id, "recovery codes replaced");
    tell_owner(services, user_id, Notice::RecoveryCodesReplaced).await;
    Ok(shown)
}

/// Turns the second factor off after a right code (`accepted`: an authenticator code or
/// a recovery code, checked under the sign-in quotas by `two_step::check_account_code`),
/// ends every session of the account but `keep`, and mails the owner. Answers how many
/// sessions ended. The caller re-checks the password first.
pub async fn disable(
    services: &Services<'_>,
    user_id: &Uuid,
    accepted: Accepted,
    keep: Option<&str>,
) -> Result<u32, SecondFactorError> {
    use_up(services, user_id, accepted, Purpose::TurnOff).await?;
    if !services.accounts.disable_second_factor(user_id).await? {
        return Err(SecondFactorError::NotEnrolled);
    }
    let ended = services
        .store
        .revoke_sessions(user_id, keep, None, now_ms())
        .await?;
    tracing::info!(user = %user_id, ended, "second factor turned off; other sessions ended");
    tell_owner(services, user_id, Notice::Disabled { ended }).await;
    Ok(ended)
}

/// A change to the account's sign-in the owner is told about by mail.
pub enum Notice {
    Enabled,
    Disabled {
        ended: u32,
    },
    /// Turned off by the operator (`latchkey users reset-second-factor`).
    Reset {
        ended: u32,
    },
    RecoveryCodesReplaced,
    RecoveryCodeUsed {
        left: u32,
    },
    PasswordChanged {
        ended: u32,
    },
}

/// Mails the owner about `notice` (in the background; a failure is logged, the change
/// stands).
pub async fn tell_owner(services: &Services<'_>, user_id: &Uuid, notice: Notice) {
    let user = match services.accounts.find_by_id(user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %crate::support::report::Report(&e), user = %user_id, "owner not mailed");
            return;
        }
    };
    mail_owner(services, &user, notice);
}

/// Mails `user` about `notice`.
pub fn mail_owner(services: &Services<'_>, user: &User, notice: Notice) {
    let (subject, template, ctx) = notice_mail(services.settings, notice);
    services
        .mailer
        .compose_and_send(&user.email, subject, template, &ctx);
}

/// The subject, template and context of the mail about `notice`.
pub fn notice_mail(
    settings: &Settings,
    notice: Notice,
) -> (&'static str, &'static str, serde_json::Value) {
    let public_url = &settings.server.public_url;
    let (subject, template, extra) = match notice {
        Notice::Enabled => ("Two-step sign-in turned on", "second_factor_on", json!({})),
        Notice::Disabled { ended } => (
            "Two-step sign-in turned off",
            "second_factor_off",
            json!({ "ended": ended }),
        ),
        Notice::Reset { ended } => (
            "Two-step sign-in turned off by an administrator",
            "second_factor_reset",
            json!({ "ended": ended }),
        ),
        Notice::RecoveryCodesReplaced => (
            "New recovery codes made",
            "recovery_codes_replaced",
            json!({}),
        ),
        Notice::RecoveryCodeUsed { left } => (
            "A recovery code was used to sign in",
            "recovery_code_used",
            json!({ "left": left }),
        ),
        Notice::PasswordChanged { ended } => (
            "Your password was changed",
            "password_changed",
            json!({ "ended": ended }),
        ),
    };
    let mut ctx = json!({
        "when": exact_time(now_ms()),
        "security_url": format!("{public_url}/account/security"),
        "reset_url": format!("{public_url}/password/forgot"),
        "devices_url": format!("{public_url}/devices"),
    });
    if let (Some(ctx), Some(extra)) = (ctx.as_object_mut(), extra.as_object()) {
        ctx.extend(extra.clone());
    }
    (subject, template, ctx)
}

/// Checks at start that `second_factor_key` is the key the stored secrets were
/// sealed with (recording it when none are stored), so a wrong or lost key stops the
/// start instead of failing every sign-in with a second factor later.
pub async fn check_key(settings: &Settings, accounts: &Accounts) -> Result<(), String> {
    let keys = Keys::new(&settings.second_factor);
    let (stored, enrolled) = accounts
        .second_factor_key_id()
        .await
        .map_err(|e| format!("second factor: {}", crate::support::report::Report(&e)))?;
    match stored {
        Some(id) if id == keys.id => Ok(()),
        Some(id) if enrolled > 0 => Err(format!(
            "invalid setting `second_factor_key`: it is not the key that sealed the {enrolled} \
             accounts' second factors in this database (key id {id}, this key's id {}); start \
             with that key, or those accounts cannot sign in",
            keys.id
        )),
        _ => accounts
            .set_second_factor_key_id(&keys.id)
            .await
            .map_err(|e| format!("second factor: {}", crate::support::report::Report(&e))),
    }
}

/// Checks the key against the database before the server listens.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Second factor", |rocket| async move {
        let (Some(settings), Some(accounts)) =
            (rocket.state::<Settings>(), rocket.state::<Accounts>())
        else {
            return Err(rocket);
        };
        if settings.second_factor.development_key {
            tracing::warn!("`second_factor_key` is unset: using the published development key (debug profile only)");
        }
        match check_key(settings, accounts).await {
            Ok(()) => Ok(rocket),
            Err(msg) => {
                tracing::error!("{msg}");
                eprintln!("latchkey: {msg}");
                Err(rocket)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(byte: u8) -> Keys {
        Keys::new(&SecondFactorSettings {
            key: vec![byte; 32].into(),
            development_key: false,
        })
    }

    #[test]
    fn rfc_6238_sha1_test_vector() {
        // RFC 6238 appendix B, SHA-1, last 6 of 8 digits (94287082 at T = 59).
        assert_eq!(code_at(b"12345678901234567890", 59), "287082");
        assert_eq!(code_at(b"12345678901234567890", 1111111109), "081804");
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side_only() {
        let secret = [9u8; 20];
        let now = 1_700_000_000_000i64;
        let step = now / 1000 / 30;
        for (at, expect) in [
            (step - 2, None),
            (step - 1, Some(step - 1)),
            (step, Some(step)),
            (step + 1, Some(step + 1)),
            (step + 2, None),
        ] {
            let code = code_at(&secret, (at * 30) as u64);
            let matched = matching_step(&secret, &code, now);
            // A code of another step may collide by chance (1 in a million): only a
            // match of the expected step is asserted.
            if expect.is_some() {
                assert_eq!(matched, expect);
            }
        }
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account_and_key() {
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let k = keys(1);
        let sealed = k.seal(&stored_context(&alice), b"secret").expect("seal");
        assert!(!sealed.contains("secret"));
        assert_eq!(
            k.open(&stored_context(&alice), &sealed).as_deref(),
            Some(&b"secret"[..])
        );
        assert!(k.open(&stored_context(&bob), &sealed).is_none());
        assert!(k.open(&setup_context(&alice), &sealed).is_none());
        assert!(keys(2).open(&stored_context(&alice), &sealed).is_none());
        assert!(k.open(&stored_context(&alice), "not base64!").is_none());
    }

    #[test]
    fn a_set_up_opens_only_for_its_account_until_it_expires() {
        let user = Uuid::now_v7();
        let k = keys(3);
        let enrolment = Enrolment::new();
        let sealed = enrolment.seal(&k, &user).expect("seal");
        let opened = Enrolment::open(&k, &user, &sealed).expect("open");
        assert_eq!(opened.secret(), enrolment.secret());
        assert!(Enrolment::open(&k, &Uuid::now_v7(), &sealed).is_none());
        let expired = Enrolment {
            secret: enrolment.secret.clone(),
            expires_at: now_ms() - 1,
        };
        let sealed = expired.seal(&k, &user).expect("seal");
        assert!(Enrolment::open(&k, &user, &sealed).is_none());
    }

    #[test]
    fn recovery_codes_are_ten_readable_80_bit_codes_that_parse_back() {
        let user = Uuid::now_v7();
        let k = keys(4);
        let (shown, macs) = new_recovery_codes(&k, &user);
        assert_eq!(shown.len(), RECOVERY_CODES);
        assert_eq!(macs.len(), RECOVERY_CODES);
        for (code, mac) in shown.iter().zip(&macs) {
            assert_eq!(code.len(), 19, "{code}");
            let Some(Typed::Recovery(parsed)) = parse_code(&code.to_lowercase()) else {
                panic!("{code} does not parse");
            };
            assert_eq!(&k.recovery_mac(&user, &parsed), mac);
            assert_ne!(&k.recovery_mac(&Uuid::now_v7(), &parsed), mac);
        }
        assert!(matches!(parse_code(" 123 456 "), Some(Typed::Totp(_))));
        assert!(parse_code("12345").is_none());
        assert!(parse_code("1234567").is_none());
        assert!(parse_code("ABCD-EFGH-IJKL-MNO9").is_none());
        // Digits that look like letters are read as those letters.
        let Some(Typed::Recovery(read)) = parse_code("ab0d-efgh-1jkl-mn8p") else {
            panic!("a look-alike digit is refused");
        };
        assert_eq!(read, "ABODEFGHIJKLMNBP");
        assert!(parse_code("").is_none());
    }

    #[test]
    fn the_otpauth_uri_names_the_issuer_account_and_parameters() {
        let enrolment = Enrolment::from_secret(&[0u8; 20]);
        let uri = enrolment.otpauth_uri("ann@example.com").expect("uri");
        assert!(
            uri.starts_with("otpauth://totp/Latchkey:ann%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Latchkey"), "{uri}");
        let svg = enrolment.qr_svg("ann@example.com").expect("svg");
        assert!(svg.starts_with("<svg class=\"qr\""), "{svg}");
        assert!(!svg.contains("<?xml"));
    }
}
