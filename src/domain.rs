//! Validated values. Input becomes one of these once, at the edge; the rest of the
//! code cannot hold an invalid one.

use std::collections::HashSet;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};

/// An e-mail address: trimmed, at most 254 characters, one `@` with text on both
/// sides, no spaces or control characters. Compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, &'static str> {
        let s = input.trim();
        if s.is_empty() {
            return Err("Enter your email address.");
        }
        if s.chars().count() > 254 {
            return Err("That email address is too long.");
        }
        let valid = match s.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if valid {
            Ok(Email(s.to_string()))
        } else {
            Err("Enter an email address like name@example.com.")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form accounts are unique by.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("accounts/common_passwords.txt")
        .lines()
        .collect()
});

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// A password that meets the policy of NIST SP 800-63B: 8 to 128 characters of any
/// kind, and not one of the most common passwords.
pub struct NewPassword(SecretString);

impl NewPassword {
    pub fn parse(input: &str) -> Result<NewPassword, &'static str> {
        let n = input.chars().count();
        if n < PASSWORD_MIN_CHARS {
            return Err("Choose a password of at least 8 characters.");
        }
        if n > PASSWORD_MAX_CHARS {
            return Err("Choose a password of at most 128 characters.");
        }
        if is_common_password(input) {
            return Err("That password is one of the most common passwords. Choose another one.");
        }
        Ok(NewPassword(SecretString::from(input.to_string())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

pub fn is_common_password(p: &str) -> bool {
    COMMON_PASSWORDS.contains(p.to_lowercase().as_str())
}

pub fn common_password_count() -> usize {
    COMMON_PASSWORDS.len()
}
