//! Registered apps: making one (`latchkey clients add`), checking its redirect URIs,
//! and authenticating it at the token endpoint (and at revocation and introspection).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use url::Url;

use super::keys::Alg;
use crate::accounts::{AccountError, Accounts, ClientRecord};
use crate::support::clock::now_ms;
use crate::support::crypto::{constant_time_eq, random_bytes, random_token, sha256_hex};
use crate::support::input::{Label, LabelError};

/// The longest app name kept (it labels sessions: at most 64 bytes).
pub const MAX_NAME: usize = 64;
pub const MAX_URI: usize = 512;

/// A redirect (or post-logout) URI we accept at registration: absolute, no fragment,
/// no user info, https, or http only to this machine (RFC 8252 §7.3 loopback, and
/// `localhost`), at most 512 bytes, and as written (the string a client must send
/// byte for byte).
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_URI {
        return Err(format!("a redirect URI may be at most {MAX_URI} bytes"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{uri:?}: no spaces or control characters"));
    }
    let parsed = Url::parse(uri).map_err(|e| format!("{uri:?}: not an absolute URL ({e})"))?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(format!(
            "{uri:?}: a redirect URI has no fragment (RFC 6749 §3.1.2)"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{uri:?}: no user name or password in the URI"));
    }
    let host = parsed.host_str().unwrap_or_default();
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(()),
        "http"
            if matches!(host, "localhost" | "127.0.0.1" | "[::1]")
                || host.ends_with(".localhost") =>
        {
            Ok(())
        }
        "http" => Err(format!(
            "{uri:?}: http is allowed only to localhost; use https"
        )),
        _ => Err(format!(
            "{uri:?}: the scheme must be https (or http to localhost)"
        )),
    }
}

/// The origin (`scheme://host[:port]`) of a checked redirect URI, for the consent
/// page's `form-action`.
pub fn origin_of(uri: &str) -> Option<String> {
    let u = Url::parse(uri).ok()?;
    match u.origin() {
        url::Origin::Tuple(..) => Some(u.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// A new client id: 128 random bits in URL-safe base64 (22 characters) that never
/// starts with `-`, so that no command line takes it for an option (`latchkey clients
/// remove ID`). The one draw in 64 that would is drawn again: the rest stay uniform.
fn new_client_id() -> String {
    loop {
        let id = URL_SAFE_NO_PAD.encode(random_bytes(16));
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// A new app as `latchkey clients add` made it: the secret is shown once.
#[derive(Debug, serde::Serialize)]
pub struct NewClient {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("the account database failed")]
    Accounts(#[from] AccountError),
}

pub async fn add(
    accounts: &Accounts,
    name: &str,
    redirect_uris: &[String],
    public: bool,
    post_logout_uris: &[String],
    id_token_alg: Option<&str>,
) -> Result<NewClient, ClientError> {
    // OpenID Connect Registration §2: RS256 when the client names none.
    let id_token_alg = match id_token_alg {
        None => Alg::Rs256,
        Some(name) => Alg::parse(name).ok_or_else(|| {
            ClientError::Invalid(format!(
                "--id-token-signed-response-alg must be one of {}",
                Alg::ALL.map(Alg::name).join(", ")
            ))
        })?,
    };
    // The name labels the app's sessions: the rule of every label a client supplies.
    let name = match Label::parse(name) {
        Ok(Some(name)) if name.as_str().len() <= MAX_NAME => name,
        Ok(_) | Err(LabelError::TooLong) => {
            return Err(ClientError::Invalid(format!(
                "the name must be 1 to {MAX_NAME} bytes of printable characters"
            )))
        }
        Err(e) => return Err(ClientError::Invalid(e.describe("the name"))),
    };
    if redirect_uris.is_empty() {
        return Err(ClientError::Invalid(
            "at least one --redirect-uri is needed".into(),
        ));
    }
    for uri in redirect_uris.iter().chain(post_logout_uris) {
        check_redirect_uri(uri).map_err(ClientError::Invalid)?;
    }
    let client_id = new_client_id();
    let secret = (!public).then(random_token);
    let dedup = |v: &[String]| {
        let mut out: Vec<String> = Vec::new();
        for u in v {
            if !out.contains(u) {
                out.push(u.clone());
            }
        }
        out
    };
    let record = ClientRecord {
        client_id: client_id.clone(),
        name: name.to_string(),
        secret_hash: secret.as_deref().map(|s| sha256_hex(s.as_bytes())),
        redirect_uris: dedup(redirect_uris),
        post_logout_uris: dedup(post_logout_uris),
        created_at: now_ms(),
        id_token_signed_response_alg: id_token_alg.name().to_string(),
    };
    accounts.insert_client(&record).await?;
    Ok(NewClient {
        client_id,
        client_secret: secret,
    })
}

/// How a client presented itself at the token endpoint.
#[derive(Debug, Default, Clone)]
pub struct ClientCredentials {
    /// From `Authorization: Basic` (client_secret_basic).
    pub basic: Option<(String, String)>,
    /// `client_id` and `client_secret` form fields (client_secret_post, or a public
    /// client's `client_id` alone).
    pub form_id: Option<String>,
    pub form_secret: Option<String>,
    /// An `Authorization` header was sent but is not Basic credentials.
    pub bad_header: bool,
}

impl ClientCredentials {
    /// Reads an `Authorization: Basic` header (RFC 6749 §2.3.1: id and secret
    /// form-urlencoded before base64).
    pub fn from_header(header: Option<&str>) -> ClientCredentials {
        let Some(h) = header else {
            return ClientCredentials::default();
        };
        let basic = h
            .strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))
            .and_then(|b| STANDARD.decode(b.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                let (id, secret) = s.split_once(':')?;
                let dec = |v: &str| {
                    url::form_urlencoded::parse(format!("v={v}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                };
                Some((dec(id)?, dec(secret)?))
            });
        ClientCredentials {
            bad_header: basic.is_none(),
            basic,
            ..ClientCredentials::default()
        }
    }
}

/// Why a client was not authenticated (RFC 6749 §5.2 `invalid_client`, 401).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("client authentication failed")]
    Failed,
    #[error("the account database failed")]
    Accounts(#[from] AccountError),
}

/// The one client authentication: `client_secret_basic`, `client_secret_post`, or a
/// public client's `client_id` alone (it proves itself with PKCE instead). One method
/// per request (RFC 6749 §2.3); a confidential client must send its secret; the
/// secret is compared (as SHA-256) in constant time.
pub async fn authenticate(
    accounts: &Accounts,
    creds: &ClientCredentials,
) -> Result<ClientRecord, AuthError> {
    if creds.bad_header || (creds.basic.is_some() && creds.form_secret.is_some()) {
        return Err(AuthError::Failed);
    }
    let (id, secret) = match (&creds.basic, &creds.form_id) {
        (Some((id, secret)), form) => {
            if form.as_ref().is_some_and(|f| f != id) {
                return Err(AuthError::Failed);
            }
            (id.clone(), Some(secret.clone()))
        }
        (None, Some(id)) => (id.clone(), creds.form_secret.clone()),
        (None, None) => return Err(AuthError::Failed),
    };
    if id.is_empty() || id.len() > 64 {
        return Err(AuthError::Failed);
    }
    let Some(client) = accounts.find_client(&id).await? else {
        return Err(AuthError::Failed);
    };
    match (&client.secret_hash, secret) {
        (None, None) => Ok(client),
        (Some(hash), Some(secret)) if constant_time_eq(hash, &sha256_hex(secret.as_bytes())) => {
            Ok(client)
        }
        _ => Err(AuthError::Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_client_id_never_starts_with_a_hyphen() {
        let ids: std::collections::HashSet<String> = (0..4096).map(|_| new_client_id()).collect();
        // Drawn as before, about 64 of 4,096 would start with '-'.
        assert_eq!(ids.len(), 4096, "every id is new");
        for id in &ids {
            assert_eq!(id.len(), 22, "{id}");
            assert!(!id.starts_with('-'), "{id}");
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
        assert!(
            ids.iter().any(|id| id.starts_with('_')),
            "only '-' is kept out"
        );
    }

    #[test]
    fn redirect_uris_are_absolute_https_or_local_http_without_fragments() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "http://localhost:8080/cb",
            "http://127.0.0.1:1234/cb",
            "http://[::1]:1234/cb",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/callback",
            "app.example.com/cb",
            "http://app.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://user:pw@app.example.com/cb",
            "javascript:alert(1)",
            "https://app.example.com/c b",
            "ftp://app.example.com/",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20id:s%3Acret"));
        let c = ClientCredentials::from_header(Some(&header));
        assert_eq!(c.basic, Some(("my id".into(), "s:cret".into())));
        assert!(ClientCredentials::from_header(Some("Bearer x")).bad_header);
    }
}
