//! Readable device labels ("Firefox on Linux", "Safari on iOS") from a user agent,
//! through the maintained `woothee` parser. A user agent is whatever the client sent:
//! the label made from it follows the rule of every client-supplied label
//! (`crate::support::input::Label`).

use std::sync::LazyLock;

use super::input::Label;

static PARSER: LazyLock<woothee::parser::Parser> = LazyLock::new(woothee::parser::Parser::new);

/// The most of a user agent that is read (for the label and the phone flag).
pub const MAX_USER_AGENT: usize = 512;
/// The longest device label kept, in bytes: a session hash field stays within Redis's
/// `hash-max-listpack-value` (64), so the hash stays a compact listpack.
pub const MAX_LABEL_BYTES: usize = 64;

fn os_name(os: &str) -> Option<&str> {
    Some(match os {
        "UNKNOWN" | "" => return None,
        "Mac OSX" | "Mac OS Classic" => "macOS",
        "iPhone" | "iPad" | "iPod" | "iOS" => "iOS",
        o if o.starts_with("Windows") => "Windows",
        o => o,
    })
}

/// A label a person recognises; never empty. A browser's is made of woothee's own
/// names; a program's is its name as it gives it, cleaned by the label rule.
pub fn label_for(user_agent: &str) -> Label {
    let unknown = || Label::ours("Unknown device");
    let ua = user_agent.trim();
    if ua.is_empty() {
        return unknown();
    }
    let parsed = PARSER.parse(ua).filter(|r| {
        matches!(
            r.category,
            "pc" | "smartphone" | "mobilephone" | "appliance"
        )
    });
    if let Some(r) = parsed {
        let browser = (r.name != "UNKNOWN").then_some(r.name);
        let named = match (browser, os_name(r.os)) {
            (Some(b), Some(o)) => Some(format!("{b} on {o}")),
            (Some(b), None) => Some(b.to_string()),
            (None, Some(o)) => Some(format!("Browser on {o}")),
            (None, None) => None,
        };
        if let Some(label) = named.as_deref().and_then(Label::lossy) {
            return label;
        }
    }
    // A program such as curl/8.5.0: its name is the best label there is.
    let first = ua.split(['/', ' ']).next().unwrap_or("");
    Label::lossy(first)
        .and_then(|name| Label::lossy(&clip_bytes(name.as_str(), 40)))
        .unwrap_or_else(unknown)
}

/// Whether the user agent is a phone or tablet (for the icon on the devices page).
pub fn is_mobile(user_agent: &str) -> bool {
    PARSER
        .parse(user_agent.trim())
        .is_some_and(|r| matches!(r.category, "smartphone" | "mobilephone"))
}

/// Keeps a header value to a sane length on a character boundary, without controls.
pub fn clip(s: &str, max_chars: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// At most `max_bytes` of `s`, cut on a character boundary, without controls.
pub fn clip_bytes(s: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_bytes));
    for c in s.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{clip_bytes, label_for};

    #[test]
    fn labels_are_clipped_to_whole_characters_within_the_byte_limit() {
        assert_eq!(clip_bytes("abc", 64), "abc");
        assert_eq!(clip_bytes(&"x".repeat(80), 64), "x".repeat(64));
        // 'é' is two bytes: 33 of them do not fit in 64, 32 do.
        assert_eq!(clip_bytes(&"é".repeat(40), 64), "é".repeat(32));
        assert_eq!(clip_bytes(&"é".repeat(40), 65), "é".repeat(32));
        assert_eq!(clip_bytes("a\u{7}b", 64), "ab");
        let long_program = format!("{}/1.0", "ü".repeat(40));
        assert!(label_for(&long_program).as_str().len() <= super::MAX_LABEL_BYTES);
    }

    #[test]
    fn labels_read_like_a_person_would_say_them() {
        let label_for = |ua: &str| label_for(ua).as_str().to_string();
        assert_eq!(
            label_for("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
            "Firefox on Linux"
        );
        assert_eq!(
            label_for("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"),
            "Safari on iOS"
        );
        assert_eq!(
            label_for("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"),
            "Chrome on Windows"
        );
        assert_eq!(label_for("curl/8.5.0"), "curl");
        assert_eq!(label_for(""), "Unknown device");
        assert_eq!(label_for("\u{200B}\u{202E}/1.0"), "Unknown device");
        assert_eq!(label_for("evil\u{202E}txt.exe\u{200D}/1.0"), "eviltxt.exe");
    }
}

#[cfg(test)]
mod mobile_tests {
    use super::is_mobile;

    #[test]
    fn phones_are_mobile_and_desktops_and_programs_are_not() {
        assert!(is_mobile(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
        ));
        assert!(is_mobile(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
        ));
        assert!(!is_mobile(
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
        ));
        assert!(!is_mobile("curl/8.5.0"));
        assert!(!is_mobile(""));
    }
}
