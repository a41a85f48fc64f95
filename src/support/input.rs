//! Validated values. Input becomes one of these once, at the edge; the rest of the
//! code cannot hold an invalid one.

use std::net::IpAddr;

use lettre::Address;
use secrecy::{ExposeSecret, SecretString};

use super::common_passwords;

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

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// A password that meets the policy of NIST SP 800-63B: 8 to 128 characters of any
/// kind, not on the list of common and breached passwords (`common_passwords`), and
/// not made of the account's address or its parts. Checked before anything is hashed:
/// a refused password costs no Argon2 time and no hashing quota.
pub struct NewPassword(SecretString);

/// Why a new password is refused; `message` says why and what to do instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRefused {
    TooShort,
    TooLong,
    /// On the list of common and breached passwords.
    Common,
    /// Made of the address, its local part or its domain's name, with at most digits
    /// and symbols around them.
    FromAddress,
}

impl PasswordRefused {
    pub fn message(self) -> &'static str {
        match self {
            PasswordRefused::TooShort => "Choose a password of at least 8 characters.",
            PasswordRefused::TooLong => "Choose a password of at most 128 characters.",
            PasswordRefused::Common => {
                "That password is one of the most common passwords or has appeared in a data breach, \
                 so attackers try it first. Choose another one: a few unrelated words make a strong password."
            }
            PasswordRefused::FromAddress => {
                "That password is made from your email address, which anyone who knows the address \
                 would try. Choose one that has nothing to do with your address."
            }
        }
    }
}

impl From<PasswordRefused> for &'static str {
    fn from(why: PasswordRefused) -> &'static str {
        why.message()
    }
}

impl NewPassword {
    /// `input` as the password of the account whose address is `email`.
    pub fn parse(input: &str, email: &Email) -> Result<NewPassword, PasswordRefused> {
        let n = input.chars().count();
        if n < PASSWORD_MIN_CHARS {
            return Err(PasswordRefused::TooShort);
        }
        if n > PASSWORD_MAX_CHARS {
            return Err(PasswordRefused::TooLong);
        }
        if common_passwords::contains(input) {
            return Err(PasswordRefused::Common);
        }
        if is_made_of_address(input, email) {
            return Err(PasswordRefused::FromAddress);
        }
        Ok(NewPassword(SecretString::from(input.to_string())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

pub fn is_common_password(p: &str) -> bool {
    common_passwords::contains(p)
}

pub fn common_password_count() -> usize {
    common_passwords::count()
}

/// Parts of an address shorter than this are not looked for in a password.
const ADDRESS_PART_MIN_CHARS: usize = 3;

/// Whether `password` is the address or its parts (the whole address, the local part,
/// the local part's pieces between `.`, `_`, `-` and `+`, the domain's labels but the
/// last) with nothing but digits and symbols beside them: `u47cd95e6cc!` for
/// `u47cd95e6cc@example.test`, `Example2024!`, `john.smith@example` for
/// `john.smith@example.com`. Case does not matter.
fn is_made_of_address(password: &str, email: &Email) -> bool {
    let address = email.normalized();
    let (local, domain) = address.rsplit_once('@').unwrap_or((address.as_str(), ""));
    let mut parts: Vec<&str> = vec![address.as_str(), local];
    parts.extend(local.split(['.', '_', '-', '+']));
    let labels: Vec<&str> = domain.split('.').collect();
    if let Some((_, names)) = labels.split_last() {
        parts.extend(names.iter().copied());
    }
    parts.retain(|p| p.chars().count() >= ADDRESS_PART_MIN_CHARS);
    // Longest first, so the address goes before its local part, and that before its pieces.
    parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
    let mut rest = password.to_lowercase();
    let mut found = false;
    for part in parts {
        if rest.contains(part) {
            rest = rest.replace(part, " ");
            found = true;
        }
    }
    found && !rest.chars().any(char::is_alphabetic)
}

/// A label a client supplies for a session, shown to the account's owner (the devices
/// page, `GET /api/v1/sessions`, `latchkey users sessions`, the new-device mail): the
/// device a User-Agent names, an API client's `client_name`, an app's name. One rule
/// for all of them, so none can read as something it is not: no control characters,
/// no format characters (bidirectional overrides and isolates, zero-width spaces and
/// joiners, soft hyphens, tag characters: Unicode Cc and Cf), no line or paragraph
/// separators, no private-use or unassigned code points, no invisible fillers or
/// variation selectors; trimmed, at most [`LABEL_MAX_CHARS`] characters.
///
/// What a person types and can correct (`client_name`, `latchkey clients add --name`)
/// is refused when it breaks the rule (`parse`); what a program sends unasked (a
/// User-Agent), or what was stored before the rule, is cleaned (`lossy`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Label(String);

pub const LABEL_MAX_CHARS: usize = 64;

/// Why a label is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelError {
    TooLong,
    NotPrintable,
}

impl LabelError {
    /// The refusal in words, naming the field (`client_name`, `--name`).
    pub fn describe(self, field: &str) -> String {
        match self {
            LabelError::TooLong => format!("{field} must be at most {LABEL_MAX_CHARS} characters."),
            LabelError::NotPrintable => format!(
                "{field} must be printable text: no control characters, line breaks or invisible formatting characters."
            ),
        }
    }
}

impl Label {
    /// The label as typed, trimmed; `None` when blank. Refused, never changed, when
    /// it breaks the rule.
    pub fn parse(input: &str) -> Result<Option<Label>, LabelError> {
        let label = input.trim();
        if label.is_empty() {
            return Ok(None);
        }
        if !label.chars().all(is_printable) {
            return Err(LabelError::NotPrintable);
        }
        if label.chars().count() > LABEL_MAX_CHARS {
            return Err(LabelError::TooLong);
        }
        Ok(Some(Label(label.to_string())))
    }

    /// The label with every character the rule forbids taken out (a line break or
    /// tab becomes a space), trimmed and cut to [`LABEL_MAX_CHARS`] characters; `None`
    /// when nothing printable is left.
    pub fn lossy(input: &str) -> Option<Label> {
        let kept: String = input
            .chars()
            .filter_map(|c| match c {
                c if is_printable(c) => Some(c),
                c if c.is_whitespace() => Some(' '),
                _ => None,
            })
            .collect();
        let label: String = kept.trim().chars().take(LABEL_MAX_CHARS).collect();
        let label = label.trim_end();
        (!label.is_empty()).then(|| Label(label.to_string()))
    }

    /// A label of our own making (a fixed text such as "Unknown device"), held to the
    /// same rule.
    pub fn ours(text: &'static str) -> Label {
        Label::lossy(text).unwrap_or_else(|| Label(String::from("?")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a label may show `c`: a letter, mark, number, punctuation, symbol or plain
/// space (Unicode general categories L, M, N, P, S, Zs), except the ones that show
/// nothing (variation selectors, Hangul fillers, the blank Braille pattern).
fn is_printable(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    let category_ok = !matches!(
        c.general_category(),
        G::Control
            | G::Format
            | G::Surrogate
            | G::PrivateUse
            | G::Unassigned
            | G::LineSeparator
            | G::ParagraphSeparator
    );
    let invisible = matches!(c,
        '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' | '\u{115F}' | '\u{1160}'
        | '\u{3164}' | '\u{FFA0}' | '\u{2800}' | '\u{180B}'..='\u{180F}');
    category_ok && !invisible
}

#[cfg(test)]
mod tests {
    use super::{Email, Label, LabelError, NewPassword, PasswordRefused};

    fn refusal(password: &str, address: &str) -> Option<PasswordRefused> {
        let email = Email::parse(address).expect("an address");
        NewPassword::parse(password, &email).err()
    }

    #[test]
    fn a_password_made_of_the_address_is_refused() {
        let from = Some(PasswordRefused::FromAddress);
        for (password, address) in [
            ("u47cd95e6cc!", "u47cd95e6cc@example.test"),
            ("U47CD95E6CC", "u47cd95e6cc@example.test"),
            ("u47cd95e6cc@example.test", "u47cd95e6cc@example.test"),
            ("!!u47cd95e6cc@example.test1", "u47cd95e6cc@example.test"),
            ("Example2024!", "ada@example.com"),
            ("2024-bigcorp-2024", "ada@mail.bigcorp.co.uk"),
            ("john.smith@example", "john.smith@example.com"),
            ("smith1234567", "john.smith@example.com"),
            ("lovelace#lovelace", "ada.lovelace@example.org"),
            ("ada.lovelace99", "ada.lovelace@example.org"),
        ] {
            assert_eq!(refusal(password, address), from, "{password} for {address}");
        }
    }

    #[test]
    fn a_password_that_only_shares_a_word_with_the_address_is_kept() {
        for (password, address) in [
            ("correct horse battery staple", "horse@example.com"),
            ("u47cd95e6cc and more words", "u47cd95e6cc@example.test"),
            ("92837465!!", "ab@x.io"),
            ("exampleish-zebra-tango", "ada@example.com"),
            ("12345678901234567890x", "ada@example.com"),
        ] {
            assert_eq!(refusal(password, address), None, "{password} for {address}");
        }
    }

    #[test]
    fn each_refusal_names_its_reason() {
        let a = "ada@example.com";
        assert_eq!(refusal("short", a), Some(PasswordRefused::TooShort));
        assert_eq!(refusal(&"x".repeat(129), a), Some(PasswordRefused::TooLong));
        assert_eq!(refusal("Password123", a), Some(PasswordRefused::Common));
        assert_eq!(refusal("iloveyou2", a), Some(PasswordRefused::Common));
        assert!(PasswordRefused::Common.message().contains("breach"));
        assert!(PasswordRefused::FromAddress
            .message()
            .contains("email address"));
        assert!(PasswordRefused::TooShort.message().contains("at least 8"));
        assert!(PasswordRefused::TooLong.message().contains("at most 128"));
    }

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
    fn a_typed_label_is_short_printable_text_or_refused() {
        let name = |s: &str| Label::parse(s).map(|n| n.map(|n| n.as_str().to_string()));
        assert_eq!(name("  backup-script "), Ok(Some("backup-script".into())));
        assert_eq!(name("   "), Ok(None));
        assert_eq!(name(&"é".repeat(64)), Ok(Some("é".repeat(64))));
        assert_eq!(name("Grafana 🚀 ĳ"), Ok(Some("Grafana 🚀 ĳ".into())));
        assert_eq!(name(&"x".repeat(65)), Err(LabelError::TooLong));
        for refused in [
            "cli\u{7} tool",
            "a\nb",
            "a\tb",
            "evil\u{202E}txt.exe",
            "zero\u{200B}width",
            "join\u{200D}ed",
            "iso\u{2066}late\u{2069}",
            "a\u{2028}b",
            "soft\u{AD}hyphen",
            "tag\u{E0041}s",
            "bom\u{FEFF}",
            "private\u{E000}use",
            "filler\u{3164}",
            "variation\u{FE0F}",
        ] {
            assert_eq!(name(refused), Err(LabelError::NotPrintable), "{refused:?}");
        }
    }

    #[test]
    fn a_label_sent_unasked_is_cleaned_by_the_same_rule() {
        let clean = |s: &str| Label::lossy(s).map(|l| l.as_str().to_string());
        assert_eq!(
            clean("invoice\u{202E}fdp.exe\u{200D}").as_deref(),
            Some("invoicefdp.exe")
        );
        assert_eq!(clean(" a\tb\n").as_deref(), Some("a b"));
        assert_eq!(clean("\u{200B}\u{200B}"), None);
        assert_eq!(clean(&"\u{200B}w".repeat(100)), Some("w".repeat(64)));
        for input in ["x\u{2067}y", "\u{E0001}tag", "a\u{0}b", "\u{61C}n"] {
            let cleaned = clean(input).unwrap_or_default();
            assert_eq!(
                Label::parse(&cleaned).map(|l| l.is_some()),
                Ok(true),
                "{input:?}"
            );
        }
    }
}
