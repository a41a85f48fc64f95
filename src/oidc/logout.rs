//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the `id_token_hint`
//! checked against our keys, and where a user may be sent afterwards. The page is
//! `web::oauth_logout`.

use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use url::Url;

use super::claims::{IdClaims, ACCESS_TYP};
use super::keys::Keyring;
use crate::accounts::ClientRecord;
use crate::sessions::is_sid;
use crate::tokens::TokenError;

const MAX_HINT_LEN: usize = 4096;

/// Checks an `id_token_hint`: an id_token we signed (RS256 only, a `kid` of ours, the
/// signature, `iss`), for an app session (`sid`). Its expiry is not checked: the
/// specification asks the OP to take id_tokens whose `exp` has passed, since an app
/// signs out long after it signed in (§2, "even when the exp time has passed"). An
/// access token is not an id_token (`typ` `at+jwt` is refused).
pub async fn verify_id_token_hint(
    keyring: &Keyring,
    issuer: &str,
    token: &str,
) -> Result<IdClaims, TokenError> {
    if token.is_empty() || token.len() > MAX_HINT_LEN || token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(TokenError::Algorithm);
    }
    if header.crit.is_some() || header.typ.as_deref() == Some(ACCESS_TYP) {
        return Err(TokenError::Invalid("not an id_token"));
    }
    let kid = header
        .kid
        .filter(|k| k.len() <= 64)
        .ok_or(TokenError::Invalid("unknown kid"))?;
    let key = keyring
        .decoding_key(&kid)
        .await
        .ok_or(TokenError::Invalid("unknown kid"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["iss", "aud", "sub"]);
    validation.set_issuer(&[issuer]);
    let claims = decode::<IdClaims>(token, &key, &validation)
        .map_err(TokenError::Rejected)?
        .claims;
    if !is_sid(&claims.sid) {
        return Err(TokenError::Invalid("malformed sid"));
    }
    Ok(claims)
}

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
