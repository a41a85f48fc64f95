//! Forward authentication's one rule that is not about sessions: where `rd` may send a
//! user after sign-in (`ReturnTo`), against `forward_auth_domains`
//! (`crate::config::AllowedHost`).
//!
//! The lessons taken: oauth2-proxy's `pkg/app/redirect/validator.go` (no `//` or `/\`
//! tricks, no whitespace or control characters, a whitelist entry `.example.com` is a
//! suffix that starts at a dot) and Authelia's GHSA-36f2-fcrx-fp4j (an endpoint that
//! followed a redirect parameter without checking it: every redirect to another host
//! goes through `ReturnTo::parse`, there is no second path).
//!
//! How: the raw text is refused outright when it holds anything a browser would
//! silently strip or reinterpret (whitespace, control characters, a backslash, their
//! percent-encoded forms), then parsed with the `url` crate (the WHATWG parser browsers
//! use), so the host checked is the host the browser goes to: lower case, IDNA to
//! punycode, percent-decoding and IPv4 forms (`0x7f.1`) normalised. The redirect is to
//! the parsed URL as it serialises, never to the raw text.

use std::fmt;

use url::Url;

use crate::config::AllowedHost;

/// Longest `rd` followed; a longer one is not an address a proxy made.
const MAX_RD_LEN: usize = 2048;

/// An absolute URL that `rd` may send a user to after sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(Url);

/// Why an `rd` was not followed (logged, never shown: the user just lands on /devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    TooLong,
    /// Whitespace, control characters, a backslash, or one of those percent-encoded.
    Characters,
    /// Not `https://` (or `http://` when cookies are not secure), or not absolute.
    Scheme,
    Unparsable,
    /// `user:pass@` before the host.
    Userinfo,
    /// The host (or port) is not in `forward_auth_domains`.
    Host,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::TooLong => "too long",
            Refused::Characters => "whitespace, control characters or backslashes",
            Refused::Scheme => "not an https:// URL",
            Refused::Unparsable => "not a URL",
            Refused::Userinfo => "a user name or password in the URL",
            Refused::Host => "a host not in forward_auth_domains",
        })
    }
}

/// Percent-encoded forms of what `suspicious` refuses: CR, LF, TAB, NUL, backslash.
const ENCODED_REFUSED: [&str; 5] = ["%0d", "%0a", "%09", "%00", "%5c"];

fn suspicious(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    raw.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        || ENCODED_REFUSED.iter().any(|e| lower.contains(e))
}

impl ReturnTo {
    /// `raw` if it is an absolute URL over https (or http when `allow_http`) to a host
    /// in `allowed`; otherwise why not.
    pub fn parse(
        raw: &str,
        allowed: &[AllowedHost],
        allow_http: bool,
    ) -> Result<ReturnTo, Refused> {
        if raw.len() > MAX_RD_LEN {
            return Err(Refused::TooLong);
        }
        if suspicious(raw) {
            return Err(Refused::Characters);
        }
        // The slashes are required as written: the WHATWG parser reads `https:evil.com`
        // and `https:/evil.com` as `https://evil.com/`, and we follow only what we read.
        let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
        let scheme_ok =
            lower.starts_with("https://") || (allow_http && lower.starts_with("http://"));
        if !scheme_ok {
            return Err(Refused::Scheme);
        }
        let url = Url::parse(raw).map_err(|_| Refused::Unparsable)?;
        if !(url.scheme() == "https" || (allow_http && url.scheme() == "http")) {
            return Err(Refused::Scheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Userinfo);
        }
        if !allowed.iter().any(|a| a.allows(&url)) {
            return Err(Refused::Host);
        }
        // Rocket must carry it in a `Location` as it is (its parser is stricter than
        // WHATWG's about `|`, `^` and the like): known good before a session starts.
        if rocket::http::uri::Reference::parse(url.as_str()).is_err() {
            return Err(Refused::Unparsable);
        }
        Ok(ReturnTo(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Its origin (`https://app.example.com`, with a port when not the default), as a
    /// page's `form-action` names it.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }

    /// The 303 there: it cannot fail, Rocket parsed the URL already.
    pub fn redirect(&self) -> rocket::response::Redirect {
        rocket::response::Redirect::to(self.0.as_str().to_string())
    }
}

impl serde::Serialize for ReturnTo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One test per `rd` form, each named in the test output: what is followed, and every
/// form that is refused, with the reason it is refused for.
#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<AllowedHost> {
        [
            "good.com",
            ".apps.good.com",
            "127.0.0.1:*",
            "ports.good.com:8443",
            "bücher.example",
        ]
        .iter()
        .map(|e| AllowedHost::parse(e).expect(e))
        .collect()
    }

    fn check(rd: &str) -> Result<String, Refused> {
        ReturnTo::parse(rd, &allowed(), false).map(|r| r.as_str().to_string())
    }

    macro_rules! followed {
        ($($name:ident: $rd:expr => $to:expr,)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(check($rd), Ok($to.to_string()), "rd = {:?}", $rd);
            }
        )*};
    }

    macro_rules! refused {
        ($($name:ident: $rd:expr => $why:expr,)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(check($rd), Err($why), "rd = {:?}", $rd);
            }
        )*};
    }

    followed! {
        rd_followed_exact_host: "https://good.com/app?x=1#top" => "https://good.com/app?x=1#top",
        rd_followed_sub_domain: "https://wiki.apps.good.com/" => "https://wiki.apps.good.com/",
        rd_followed_deep_sub_domain: "https://a.b.apps.good.com/x" => "https://a.b.apps.good.com/x",
        rd_followed_uppercase_normalised: "HTTPS://GOOD.COM/App" => "https://good.com/App",
        rd_followed_ip_any_port: "https://127.0.0.1:8080/app/" => "https://127.0.0.1:8080/app/",
        rd_followed_configured_port: "https://ports.good.com:8443/" => "https://ports.good.com:8443/",
        rd_followed_explicit_default_port: "https://good.com:443/" => "https://good.com/",
        rd_followed_idn_as_punycode: "https://BÜCHER.example/" => "https://xn--bcher-kva.example/",
    }

    refused! {
        rd_refused_protocol_relative: "//evil.com/" => Refused::Scheme,
        rd_refused_slash_backslash: "/\\evil.com/" => Refused::Characters,
        rd_refused_backslash_in_authority: "https://good.com\\@evil.com/" => Refused::Characters,
        rd_refused_backslashes_for_slashes: "https:\\\\evil.com/" => Refused::Characters,
        rd_refused_encoded_backslash: "https://good.com/%5c%5cevil.com" => Refused::Characters,
        rd_refused_local_path: "/devices" => Refused::Scheme,
        rd_refused_userinfo: "https://good.com@evil.com/" => Refused::Userinfo,
        rd_refused_userinfo_on_good_host: "https://evil.com:x@good.com/" => Refused::Userinfo,
        rd_refused_user_only_on_good_host: "https://user@good.com/" => Refused::Userinfo,
        rd_refused_http_when_cookies_are_secure: "http://good.com/" => Refused::Scheme,
        rd_refused_javascript: "javascript:alert(1)//good.com" => Refused::Scheme,
        rd_refused_javascript_mixed_case: "JaVaScRiPt:alert(1)" => Refused::Scheme,
        rd_refused_data: "data:text/html,<script>alert(1)</script>" => Refused::Scheme,
        rd_refused_data_base64: "data:text/html;base64,PHNjcmlwdD4=" => Refused::Scheme,
        rd_refused_scheme_without_slashes: "https:evil.com" => Refused::Scheme,
        rd_refused_scheme_with_one_slash: "https:/good.com/" => Refused::Scheme,
        rd_refused_other_scheme: "ftp://good.com/" => Refused::Scheme,
        rd_refused_leading_space: " https://good.com/" => Refused::Characters,
        rd_refused_tab_in_scheme: "ht\ttps://good.com/" => Refused::Characters,
        rd_refused_newline_in_host: "https://good.com\n.evil.com/" => Refused::Characters,
        rd_refused_crlf_injection: "https://good.com/\r\nSet-Cookie:x=1" => Refused::Characters,
        rd_refused_encoded_crlf: "https://good.com/%0d%0aSet-Cookie:x=1" => Refused::Characters,
        rd_refused_encoded_crlf_upper: "https://good.com/%0D%0ASet-Cookie:x=1" => Refused::Characters,
        rd_refused_encoded_nul: "https://good.com/%00" => Refused::Characters,
        rd_refused_nul: "https://good.com/\0" => Refused::Characters,
        rd_refused_unicode_space: "https://good.com/\u{2028}" => Refused::Characters,
        rd_refused_look_alike_suffix: "https://good.com.evil.com/" => Refused::Host,
        rd_refused_look_alike_prefix: "https://evilgood.com/" => Refused::Host,
        rd_refused_look_alike_sub_domain_suffix: "https://evilapps.good.com/" => Refused::Host,
        rd_refused_apex_of_sub_domain_entry: "https://apps.good.com/" => Refused::Host,
        rd_refused_sub_domain_of_exact_entry: "https://x.good.com/" => Refused::Host,
        rd_refused_trailing_dot: "https://good.com./" => Refused::Host,
        rd_refused_trailing_dot_sub_domain: "https://wiki.apps.good.com./" => Refused::Host,
        rd_refused_cyrillic_look_alike: "https://gооd.com/" => Refused::Host,
        rd_refused_punycode_look_alike: "https://xn--gd-bmcb.com/" => Refused::Host,
        rd_refused_fullwidth_dot_suffix: "https://good.com\u{ff0e}evil.com/" => Refused::Host,
        rd_refused_non_default_port: "https://good.com:8443/" => Refused::Host,
        rd_refused_other_port_than_configured: "https://ports.good.com:9443/" => Refused::Host,
        rd_refused_encoded_host: "https://%65vil.com/" => Refused::Host,
        rd_refused_ip_not_listed: "https://127.0.0.2/" => Refused::Host,
        rd_refused_no_host: "https:///evil.com" => Refused::Host,
        rd_refused_empty: "" => Refused::Scheme,
        rd_refused_garbage: "not a url" => Refused::Characters,
        rd_refused_unparsable_port: "https://good.com:99999/" => Refused::Unparsable,
    }

    #[test]
    fn rd_refused_too_long() {
        let rd = format!("https://good.com/{}", "a".repeat(MAX_RD_LEN));
        assert_eq!(check(&rd), Err(Refused::TooLong));
    }

    #[test]
    fn rd_over_http_only_when_cookies_are_not_secure() {
        let rd = "http://good.com/app";
        assert_eq!(
            ReturnTo::parse(rd, &allowed(), true).map(|r| r.as_str().to_string()),
            Ok(rd.to_string())
        );
        assert_eq!(ReturnTo::parse(rd, &allowed(), false), Err(Refused::Scheme));
        assert_eq!(
            ReturnTo::parse("https://good.com/", &[], true),
            Err(Refused::Host)
        );
    }
}
