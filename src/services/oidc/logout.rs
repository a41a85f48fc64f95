//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): where a user may be
//! sent afterwards. The `id_token_hint` is checked by `claims::verify_id_token_hint`;
//! the page is `web::oauth_logout`.

use url::Url;

use crate::accounts::ClientRecord;

/// Where to send the browser after signing out: `uri` only when it is one of the
/// client's registered post-logout URIs, character for character, with `state` added.
pub fn post_logout_target(
    client: &ClientRecord,
    uri: Option<&str>,
    state: Option<&str>,
) -> Option<String> {
    let uri = uri?;
    if !client.post_logout_uris.iter().any(|u| u == uri) {
        return None;
    }
    let mut url = Url::parse(uri).ok()?;
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> ClientRecord {
        ClientRecord {
            client_id: "c".repeat(22),
            name: "App".into(),
            secret_hash: None,
            redirect_uris: vec![],
            post_logout_uris: uris.iter().map(|u| u.to_string()).collect(),
            created_at: 0,
            id_token_signed_response_alg: "RS256".into(),
        }
    }

    #[test]
    fn only_a_registered_uri_exactly_as_registered_is_a_target() {
        let c = client(&[
            "https://app.example.com/bye",
            "https://app.example.com/out?x=1",
        ]);
        assert_eq!(
            post_logout_target(&c, Some("https://app.example.com/bye"), Some("s 1")).as_deref(),
            Some("https://app.example.com/bye?state=s+1")
        );
        assert_eq!(
            post_logout_target(&c, Some("https://app.example.com/out?x=1"), None).as_deref(),
            Some("https://app.example.com/out?x=1")
        );
        for other in [
            "https://app.example.com/bye/",
            "https://app.example.com/Bye",
            "https://app.example.com/bye?next=https://evil.example",
            "https://app.example.com.evil.example/bye",
            "https://evil.example/bye",
            "//evil.example/bye",
            "",
        ] {
            assert_eq!(post_logout_target(&c, Some(other), None), None, "{other}");
        }
        assert_eq!(post_logout_target(&c, None, Some("s")), None);
    }
}
