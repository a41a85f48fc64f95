//! Where a sign-in goes back to: `NextPath`, a local `?next=` typed so redirects are
//! built with `uri!`, its bound (the longest authorization request the consent page
//! sends to the sign-in page), and `sign_in_first` for a signed-out visitor of a
//! signed-in page.

use rocket::form::{self, FromFormField, ValueField};
use rocket::http::uri::fmt::{Formatter, FromUriParam, Query, UriDisplay};
use rocket::http::uri::Origin;
use rocket::http::RawStr;
use rocket::response::Redirect;
use rocket::uri;
use serde::Serialize;

/// The longest `state`, `nonce` or `redirect_uri`-like parameter of an authorization
/// request kept.
pub(super) const MAX_PARAM: usize = 512;

/// The longest `prompt` kept (every value OpenID Connect defines, space-separated).
pub(super) const MAX_PROMPT: usize = 64;

/// The longest path an authorization request that passes `check` comes back to after
/// signing in (`request_path` in `oauth.rs`, whose `check` keeps each parameter to
/// these caps): its known parameters only, each at its cap and every
/// byte percent-encoded (three bytes), so `NextPath` always takes it.
const MAX_REQUEST_PATH: usize = {
    let pct = 3;
    let digits = 20; // an i64 or u64
    "/oauth2/authorize?".len()
        + "response_type=code&".len()
        + "client_id=&".len()
        + pct * 64
        + "redirect_uri=&".len()
        + pct * crate::services::oidc::clients::MAX_URI
        + "scope=&state=&nonce=&".len()
        + 3 * pct * MAX_PARAM
        + "code_challenge=&code_challenge_method=S256&".len()
        + 43
        + "prompt=&".len()
        + pct * MAX_PROMPT
        + "max_age=&".len()
        + digits
        + "signed_in_after=".len()
        + pct * crate::services::oidc::reauth::MAX_MARKER
};

/// Where to go after signing in: a path on this site only (never `//host`, a scheme,
/// a backslash or control characters), and only one a `Location` header carries as it
/// is (Rocket's URI parser: no space, quote, `<`, `|` in the path, no non-ASCII), so
/// the redirect is known good before a session starts. Anything else in `?next=` is
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextPath(Origin<'static>);

/// The longest `next`: every valid authorization request fits (`MAX_REQUEST_PATH`,
/// computed from its parameters' caps), and a bound stays.
pub const MAX_NEXT: usize = if MAX_REQUEST_PATH > 512 {
    MAX_REQUEST_PATH
} else {
    512
};

impl NextPath {
    pub fn parse(n: &str) -> Option<NextPath> {
        let local = n.starts_with('/')
            && !n.starts_with("//")
            && !n.starts_with("/\\")
            && n.len() <= MAX_NEXT
            && !n.chars().any(|c| c.is_control() || c == '\\');
        if !local {
            return None;
        }
        Origin::parse_owned(n.to_string()).ok().map(NextPath)
    }

    /// The redirect there: it cannot fail, the path was parsed as a URI already.
    pub fn redirect(self) -> Redirect {
        Redirect::to(self.0)
    }
}

impl std::fmt::Display for NextPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for NextPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'v> FromFormField<'v> for NextPath {
    fn from_value(field: ValueField<'v>) -> form::Result<'v, Self> {
        NextPath::parse(field.value)
            .ok_or_else(|| form::Error::validation("not a local path").into())
    }
}

/// In a query, `/` stays readable (`/login?next=/devices`, RFC 3986 §3.4); every other
/// character is encoded as Rocket encodes any query value.
impl UriDisplay<Query> for NextPath {
    fn fmt(&self, f: &mut Formatter<'_, Query>) -> std::fmt::Result {
        let segments: Vec<_> = self
            .0
            .to_string()
            .split('/')
            .map(|s| RawStr::new(s).percent_encode().to_string())
            .collect();
        f.write_raw(segments.join("/"))
    }
}

impl FromUriParam<Query, NextPath> for NextPath {
    type Target = NextPath;

    fn from_uri_param(next: NextPath) -> NextPath {
        next
    }
}

/// For a signed-out visitor of a signed-in page: sign in, then come back to `page`.
pub(super) fn sign_in_first(page: Origin<'_>) -> Redirect {
    let back = NextPath::parse(page.path().as_str());
    Redirect::to(uri!(super::auth::login_page(back, _)))
}

#[cfg(test)]
mod tests {
    use super::NextPath;

    #[test]
    fn next_is_a_local_path_a_location_header_carries() {
        for ok in [
            "/devices",
            "/account/password",
            "/devices?tab=all",
            "/a%20b",
        ] {
            let next = NextPath::parse(ok).unwrap_or_else(|| panic!("{ok}"));
            assert_eq!(serde_json::to_value(&next).ok(), Some(ok.into()));
        }
        for refused in [
            "devices",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "/\t/evil.example",
            "/devices x",
            "/a\"b",
            "/a|b",
            "/<script>",
            "/ü",
            "/devices#top",
        ] {
            assert_eq!(NextPath::parse(refused), None, "{refused}");
        }
        // Bounded: as long as the longest valid authorization request, no longer.
        let long = format!("/{}", "a".repeat(super::MAX_NEXT - 1));
        assert!(NextPath::parse(&long).is_some());
        assert_eq!(NextPath::parse(&format!("{long}a")), None);
    }
}
