//! Validated values. Input becomes one of these once, at the edge; the rest of the
//! code cannot hold an invalid one.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::LazyLock;

use lettre::Address;
use secrecy::{ExposeSecret, SecretString};

/// An e-mail address, as one parser decides for every form, the API and the mailer:
/// lettre's `Address` (the mailer's own type), narrowed to what every mail server
/// delivers without extensions: an ASCII dot-atom local part (no quoted strings) and a
/// host name (no IP literal). An internationalised domain is kept in its ASCII
/// (punycode) form. A display name, angle brackets, spaces or anything lettre refuses
/// is not an address. Compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(Address);

const MAX_EMAIL_CHARS: usize = 254;
const NOT_AN_ADDRESS: &str = "Enter an email address like name@example.com.";
const JUST_THE_ADDRESS: &str =
    "Enter just the address, like name@example.com: no name, spaces, quotes or angle brackets.";

impl Email {
    pub fn parse(input: &str) -> Result<Email, &'static str> {
        let s = input.trim();
        if s.is_empty() {
            return Err("Enter your email address.");
        }
        if s.chars().count() > MAX_EMAIL_CHARS {
            return Err("That email address is too long.");
        }
        let decorated =
            |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"');
        if s.chars().any(decorated) {
            return Err(JUST_THE_ADDRESS);
        }
        let typed: Address = s.parse().map_err(|_| NOT_AN_ADDRESS)?;
        if !typed.user().is_ascii() {
            return Err(NOT_AN_ADDRESS);
        }
        let domain = match typed.domain() {
            d if d.is_ascii() => d.to_string(),
            d => idna::domain_to_ascii(d).map_err(|_| NOT_AN_ADDRESS)?,
        };
        if domain.starts_with('[') || domain.parse::<IpAddr>().is_ok() {
            return Err(NOT_AN_ADDRESS);
        }
        // What is stored and mailed to is itself an address lettre accepts.
        let address: Address = format!("{}@{domain}", typed.user())
            .parse()
            .map_err(|_| NOT_AN_ADDRESS)?;
        let email = Email(address);
        if email.as_str().len() > MAX_EMAIL_CHARS {
            return Err("That email address is too long.");
        }
        Ok(email)
    }

    pub fn as_str(&self) -> &str {
        AsRef::<str>::as_ref(&self.0)
    }

    /// The address as the mailer takes it.
    pub fn address(&self) -> &Address {
        &self.0
    }

    /// The form accounts are unique by.
    pub fn normalized(&self) -> String {
        self.as_str().to_lowercase()
    }
}

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common_passwords.txt").lines().collect());

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

/// What an API client calls itself (`client_name`): the devices page shows it and the
/// new-device mail quotes it as the app's own claim. Trimmed; at most
/// [`CLIENT_NAME_MAX_CHARS`] printable characters: no control characters and no
/// invisible formatting (bidirectional overrides, zero-width characters, line
/// separators), which could make a name read as something else than it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(String);

pub const CLIENT_NAME_MAX_CHARS: usize = 64;

impl ClientName {
    /// `None` for a blank name (the label then comes from the user agent).
    pub fn parse(input: &str) -> Result<Option<ClientName>, &'static str> {
        let name = input.trim();
        if name.is_empty() {
            return Ok(None);
        }
        if name.chars().count() > CLIENT_NAME_MAX_CHARS {
            return Err("client_name must be at most 64 characters.");
        }
        if !name.chars().all(is_printable) {
            return Err("client_name must be printable text: no control characters, line breaks or invisible formatting characters.");
        }
        Ok(Some(ClientName(name.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Neither a control character (Unicode Cc) nor an invisible one that changes how the
/// text around it reads (the format characters of Unicode Cf that text can carry, and
/// the line and paragraph separators).
fn is_printable(c: char) -> bool {
    !c.is_control()
        && !matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

#[cfg(test)]
mod tests {
    use super::{ClientName, Email};

    #[test]
    fn one_parser_decides_what_an_address_is() {
        for ok in [
            "ada@example.com",
            " first.last+tag@mail.sub.example.com ",
            "o'brien_99@example.ie",
            "user@localhost",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for refused in [
            "a..b@x.com",
            ".a@x.com",
            "a.@x.com",
            "a@x..com",
            "a@-x-.com",
            "ac@x.com>",
            "x<attacker@evil.com>",
            "Mallory <attacker@evil.com>",
            "\"a b\"@x.com",
            "a@[127.0.0.1]",
            "a@127.0.0.1",
            "ü@x.com",
            "a(c)@x.com",
            "a@x.com\r\nBcc: b@y.com",
        ] {
            assert!(Email::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn an_internationalised_domain_is_kept_in_ascii() {
        let e = Email::parse("User@Bücher.Example").expect("an IDN address");
        assert_eq!(e.as_str(), "User@xn--bcher-kva.example");
        assert_eq!(
            e.normalized(),
            Email::parse("user@xn--bcher-kva.example")
                .unwrap()
                .normalized()
        );
    }

    #[test]
    fn a_client_name_is_short_printable_text() {
        let name = |s: &str| ClientName::parse(s).map(|n| n.map(|n| n.as_str().to_string()));
        assert_eq!(name("  backup-script "), Ok(Some("backup-script".into())));
        assert_eq!(name("   "), Ok(None));
        assert_eq!(name(&"é".repeat(64)), Ok(Some("é".repeat(64))));
        assert!(name(&"x".repeat(65)).is_err());
        for refused in [
            "cli\u{7} tool",
            "a\nb",
            "a\tb",
            "evil\u{202E}txt.exe",
            "zero\u{200B}width",
            "a\u{2028}b",
        ] {
            assert!(name(refused).is_err(), "{refused:?}");
        }
    }
}
