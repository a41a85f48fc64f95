//! The one-time codes themselves: TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, one
//! step of drift either way), the recovery codes' format, and what a typed code is.

use uuid::Uuid;

use super::sealing::SealingKeys;
use crate::support::crypto::{constant_time_eq, random_bytes};

/// Recovery codes in a set.
pub const RECOVERY_CODES: usize = 10;
/// Seconds in a time step.
pub const STEP_SECONDS: u64 = 30;
/// The name the authenticator app shows beside the account.
pub const ISSUER: &str = "Latchkey";
/// TOTP secret bytes (160 bits, RFC 4226's recommendation).
pub(super) const SECRET_BYTES: usize = 20;
/// Random bytes of a recovery code: 80 bits, 16 base32 characters.
const RECOVERY_CODE_BYTES: usize = 10;
const RECOVERY_CODE_CHARS: usize = 16;
pub(super) const BASE32: base32::Alphabet = base32::Alphabet::Rfc4648 { padding: false };

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
pub(super) fn matching_step(secret: &[u8], code: &str, now_ms: i64) -> Option<i64> {
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
pub(super) enum Typed {
    Totp(String),
    Recovery(String),
}

pub(super) fn parse_code(input: &str) -> Option<Typed> {
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
pub(super) fn new_recovery_codes(keys: &SealingKeys, user_id: &Uuid) -> (Vec<String>, Vec<String>) {
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
}
