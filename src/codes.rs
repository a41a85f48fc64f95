//! One-time password-reset codes: 6 digits from a CSPRNG, stored only as a keyed hash
//! (HMAC under a server secret), valid `reset_code_ttl`, single use, burned after
//! `reset_code_max_tries` wrong tries (counted in the same script that checks).

use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use crate::accounts::Accounts;
use crate::clock::now_ms;
use crate::config::Settings;
use crate::crypto::hmac_hex;
use crate::domain::Email;
use crate::error::AppError;
use crate::mail::Mailer;
use crate::store::Store;

/// A code as typed: six ASCII digits, spaces around or inside ignored.
pub fn parse_code(input: &str) -> Option<String> {
    let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

pub fn new_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// The keyed hash a code is stored as; bound to the user, so a code is worth nothing
/// for another account.
pub fn code_mac(settings: &Settings, user_id: &Uuid, code: &str) -> String {
    hmac_hex(
        settings.tokens.jwt_secret.expose_secret(),
        format!("latchkey reset code\n{user_id}\n{code}").as_bytes(),
    )
}

/// Stores a fresh code (replacing any earlier one) and mails it, when the account exists.
pub async fn send_reset_code(
    accounts: &Accounts,
    store: &Store,
    settings: &Settings,
    mailer: &Mailer,
    email: &Email,
) -> Result<(), AppError> {
    let Some(user) = accounts.find_by_email(email).await? else {
        return Ok(());
    };
    let code = new_code();
    store
        .store_reset_code(
            &user.id,
            &code_mac(settings, &user.id, &code),
            settings.codes.ttl.as_millis() as i64,
            now_ms(),
        )
        .await?;
    let ctx = json!({
        "code": code,
        "minutes": settings.codes.ttl.as_secs().div_ceil(60),
        "reset_url": format!("{}/password/reset?email={}", settings.server.public_url, urlencode(&user.email)),
        "email": user.email,
    });
    mailer.compose_and_send(
        &user.email,
        "Your Latchkey password reset code",
        "reset_code",
        &ctx,
    );
    tracing::info!(user = %user.id, "password-reset code sent");
    Ok(())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            assert!(parse_code(&new_code()).is_some());
        }
        assert_eq!(parse_code(" 123 456 "), Some("123456".into()));
        assert_eq!(parse_code("12345"), None);
        assert_eq!(parse_code("1234567"), None);
        assert_eq!(parse_code("12345a"), None);
        assert_eq!(parse_code("١٢٣٤٥٦"), None);
    }
}
