//! Forward authentication's one rule that is not about sessions: where `rd` may send a
//! user after sign-in (`ReturnTo`), against `forward_auth_domains` (`AllowedHost`).
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

use url::{Host, Url};

/// Longest `rd` followed; a longer one is not an address a proxy made.
const MAX_RD_LEN: usize = 2048;

/// One `forward_auth_domains` entry: a host (a DNS name or an IP address), exact or, with
/// a leading dot, every name under it (`.example.com` matches `app.example.com`, not
/// `example.com` and not `badexample.com`). An optional port: `host:8443` only that
/// port, `host:*` any port; without one only the scheme's default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// Normalised as `url` normalises a URL's host (lower case, punycode).
    host: String,
    subdomains: bool,
    port: PortRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortRule {
    Default,
    Exactly(u16),
    Any,
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<AllowedHost, String> {
        let entry = entry.trim();
        let wrong = || {
            format!("{entry:?} is not a host (example.com or .example.com, optionally :port or :*)")
        };
        let (subdomains, rest) = match entry.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let (host, port) = split_port(rest).ok_or_else(wrong)?;
        // Parsed as the host of a URL, so it is normalised exactly as `rd`'s host is.
        let url = Url::parse(&format!("https://{host}/")).map_err(|_| wrong())?;
        let parsed = url.host_str().ok_or_else(wrong)?.to_string();
        let is_name = matches!(url.host(), Some(Host::Domain(_)));
        if host.is_empty()
            || host.contains(['/', '@', '*', '?', '#', '\\'])
            || parsed.ends_with('.')
        {
            return Err(wrong());
        }
        if subdomains && !is_name {
            return Err(format!("{entry:?}: only a DNS name can have sub-domains"));
        }
        Ok(AllowedHost {
            host: parsed,
            subdomains,
            port,
        })
    }

    fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host_ok = if self.subdomains {
            matches!(url.host(), Some(Host::Domain(_)))
                && host
                    .strip_suffix(self.host.as_str())
                    .is_some_and(|label| label.len() > 1 && label.ends_with('.'))
        } else {
            host == self.host
        };
        let port_ok = match self.port {
            PortRule::Default => url.port().is_none(),
            PortRule::Exactly(p) => url.port_or_known_default() == Some(p),
            PortRule::Any => true,
        };
        host_ok && port_ok
    }
}

/// `host`, `host:port`, `host:*`, `[v6]:port`: the host and its port rule.
fn split_port(s: &str) -> Option<(&str, PortRule)> {
    let (host, port) = match s.rsplit_once(':') {
        // An IPv6 address without a port: its colons are inside the brackets.
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (s, None),
    };
    let rule = match port {
        None => PortRule::Default,
        Some("*") => PortRule::Any,
        Some(p) => PortRule::Exactly(p.parse().ok().filter(|p| *p > 0)?),
    };
    Some((host, rule))
}

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

    #[test]
    fn allowed_hosts_refuse_what_is_not_a_host() {
        for bad in [
            "*.good.com",
            "good.com/app",
            "user@good.com",
            "",
            ".",
            "good.com.",
            ".127.0.0.1",
            "good.com:0",
            "good.com:x",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad:?}");
        }
        let upper = AllowedHost::parse("GOOD.com").expect("upper case");
        assert_eq!(upper, AllowedHost::parse("good.com").expect("lower case"));
    }
}
