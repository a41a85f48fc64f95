//! Passkeys (WebAuthn): the relying-party id and the origin assertions must come from.

use super::reader::{bad, Reader, SettingError};
use super::server::ServerSettings;

/// Where passkeys are valid. The origin is `public_url`'s; the relying-party id is
/// `webauthn_rp_id` when set (a parent domain of `public_url`'s host, for deployments
/// that share sessions with `cookie_domain`), else that host itself. A `public_url`
/// whose host is an IP address has no relying-party id: browsers refuse WebAuthn
/// there, and the passkey parts of the pages say so.
#[derive(Debug, Clone)]
pub struct PasskeySettings {
    /// `None`: passkeys are unavailable (an IP-address `public_url`).
    pub rp_id: Option<String>,
    /// `public_url`'s origin (scheme, host, port).
    pub origin: url::Url,
}

impl PasskeySettings {
    pub(super) fn read(r: &Reader, server: &ServerSettings) -> Result<Self, SettingError> {
        const NAME: &str = "webauthn_rp_id";
        let origin = url::Url::parse(&server.public_url)
            .map_err(|e| bad("public_url", format!("is not a URL: {e}")))?;
        let host = match origin.host() {
            Some(url::Host::Domain(d)) => Some(d.to_ascii_lowercase()),
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) | None => None,
        };
        let rp_id =
            match (r.optional_text(NAME)?, host) {
                (None, host) => host,
                (Some(raw), Some(host)) => Some(rp_id_for(&raw, &host)?),
                (Some(_), None) => return Err(bad(
                    NAME,
                    "needs a public_url with a host name (passkeys do not work on an IP address)",
                )),
            };
        Ok(PasskeySettings { rp_id, origin })
    }
}

/// `raw` as a relying-party id for `host`: `host` itself, or a parent domain of it of
/// two labels or more (`example.com` for `login.example.com`), lower case.
fn rp_id_for(raw: &str, host: &str) -> Result<String, SettingError> {
    let id = raw.trim().trim_start_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let suffix = id == host || (id.contains('.') && host.ends_with(&format!(".{id}")));
    if !suffix || !id.split('.').all(label_ok) {
        return Err(bad(
            "webauthn_rp_id",
            format!("must be public_url's host {host:?} or a parent domain of it, got {raw:?}"),
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rp_id_is_the_host_or_a_parent_domain_of_it() {
        let host = "login.example.com";
        assert_eq!(
            rp_id_for("example.com", host).ok().as_deref(),
            Some("example.com")
        );
        assert_eq!(
            rp_id_for(".Example.COM", host).ok().as_deref(),
            Some("example.com")
        );
        assert_eq!(rp_id_for(host, host).ok().as_deref(), Some(host));
        for wrong in [
            "com",
            "other.com",
            "ample.com",
            "xlogin.example.com",
            "",
            "exa mple.com",
        ] {
            assert!(rp_id_for(wrong, host).is_err(), "{wrong}");
        }
    }
}
