//! Turning the second factor on (`Enrolment`: a secret being set up, its QR code,
//! sealed in the set-up cookie; `enable`), new recovery codes, and turning it off.

use uuid::Uuid;

use super::checks::{unreadable, use_up, Accepted, Purpose, SecondFactorError};
use super::mail::{tell_owner, Notice};
use super::sealing::{setup_context, stored_context, SealingKeys};
use super::totp::{
    matching_step, new_recovery_codes, parse_code, Typed, BASE32, ISSUER, SECRET_BYTES,
    STEP_SECONDS,
};
use crate::services::activity::{self, EndedBy, Event, Kind};
use crate::services::Services;
use crate::store::Sessions;
use crate::support::clock::now_ms;
use crate::support::crypto::random_bytes;

/// How long a set-up page's secret may still be confirmed.
pub const SETUP_TTL_MS: i64 = 15 * 60 * 1000;

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
    pub fn seal(&self, keys: &SealingKeys, user_id: &Uuid) -> Option<String> {
        let plain = [self.expires_at.to_be_bytes().as_slice(), &self.secret].concat();
        keys.seal(&setup_context(user_id), &plain)
    }

    /// The enrolment `seal` made for `user_id`, if it has not expired.
    pub fn open(keys: &SealingKeys, user_id: &Uuid, sealed: &str) -> Option<Enrolment> {
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
    let keys = SealingKeys::new(&services.settings.second_factor);
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
    activity::record(*services, user_id, Event::new(Kind::SecondFactorOn)).await;
    tell_owner(services, user_id, Notice::Enabled).await;
    Ok(shown)
}

/// A new set of ten recovery codes (the old ones stop working); mails the owner. The
/// caller re-checks the password first.
pub async fn replace_recovery_codes(
    services: &Services<'_>,
    user_id: &Uuid,
) -> Result<Vec<String>, SecondFactorError> {
    let keys = SealingKeys::new(&services.settings.second_factor);
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
    let off = Event::new(Kind::SecondFactorOff);
    let ended_event = off.clone().ended(EndedBy::SecondFactorOff, ended);
    activity::record(*services, user_id, off).await;
    if let Some(ended_event) = ended_event {
        activity::record(*services, user_id, ended_event).await;
    }
    tell_owner(services, user_id, Notice::Disabled { ended }).await;
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecondFactorSettings;

    fn keys(byte: u8) -> SealingKeys {
        SealingKeys::new(&SecondFactorSettings {
            key: vec![byte; 32].into(),
            development_key: false,
        })
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
