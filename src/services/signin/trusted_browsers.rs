//! Trusted browsers (OWASP's "device cookie" defence against lockout): a browser that has
//! signed in to an account before gets a failure budget of its own for that account,
//! so strangers who fill the account's quota do not lock the owner out, while they
//! stay throttled exactly as before.
//!
//! - Every successful sign-in in a browser (and a new account's first) sets a cookie
//!   naming the account and a random nonce, `UID.NONCE`, as a Rocket private cookie
//!   (encrypted and authenticated under `secret_key`), `HttpOnly`, `SameSite=Lax`,
//!   `Secure` in secure mode, for [`TRUST_TTL`]. A browser that already had one for
//!   this account keeps its nonce.
//! - The store keeps each account's trusted nonces (`P:{UID}:dev`), at most
//!   [`BROWSERS_PER_ACCOUNT`] (the least recently used is dropped) and each for
//!   [`TRUST_TTL`] after its last sign-in. A new password (change or reset) clears them:
//!   a cookie is worth something only while the password it was earned with holds.
//! - A sign-in or reset request that presents a cookie for the account it names, whose
//!   nonce the store still trusts, counts against that nonce's own quota instead of the
//!   account's, IP's and network's (`limits::Source::TrustedBrowser`); its failures lock out
//!   that cookie in turn. Anything else (no cookie, a forged or stale one, one for
//!   another account) is a stranger.
//!
//! The API has no trusted-browser cookie: a program signs in with the password grant once and
//! then lives on its refresh token, which no failure quota touches.

use std::time::Duration;

use uuid::Uuid;

use super::limits::Source;
use crate::accounts::User;
use crate::store::{Store, StoreResult, TrustedBrowsers};
use crate::support::clock::now_ms;
use crate::support::crypto::random_token;
use crate::support::input::Email;
use crate::support::report::Report;

/// How long a device stays trusted after its last sign-in (and its cookie lives).
pub const TRUST_TTL: Duration = Duration::from_secs(90 * 86_400);
/// Trusted devices per account at most.
pub const BROWSERS_PER_ACCOUNT: u32 = 10;

/// What a trusted-browser cookie says: the account it was earned for, and its nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserClaim {
    pub user_id: Uuid,
    pub nonce: String,
}

impl BrowserClaim {
    /// Parses `UID.NONCE` (the decrypted cookie value); anything else is no claim.
    pub fn parse(value: &str) -> Option<BrowserClaim> {
        let (user_id, nonce) = crate::support::crypto::uid_and_token(value)?;
        Some(BrowserClaim {
            user_id,
            nonce: nonce.to_string(),
        })
    }

    pub fn value(&self) -> String {
        format!("{}.{}", self.user_id, self.nonce)
    }
}

/// Who a request counts as for `user` (the account the typed email names, if any): the
/// trusted browser its cookie names, or a stranger.
pub async fn source<'a>(
    store: &Store,
    claim: Option<&'a BrowserClaim>,
    user: Option<&User>,
    email: &'a Email,
    ip: &'a str,
) -> StoreResult<Source<'a>> {
    let stranger = Source::Stranger { email, ip };
    let (Some(claim), Some(user)) = (claim, user) else {
        return Ok(stranger);
    };
    if claim.user_id != user.id
        || !store
            .browser_trusted(&user.id, &claim.nonce, now_ms())
            .await?
    {
        return Ok(stranger);
    }
    Ok(Source::TrustedBrowser {
        nonce: &claim.nonce,
        ip,
    })
}

/// After a successful sign-in in a browser: trusts this browser for `user` (keeping
/// its nonce when its cookie was already this account's) and answers the cookie to
/// set. `None` when the store did not answer: the sign-in stands without one.
pub async fn remember(
    store: &Store,
    user: &User,
    had: Option<&BrowserClaim>,
) -> Option<BrowserClaim> {
    let claim = match had {
        Some(c) if c.user_id == user.id => c.clone(),
        _ => BrowserClaim {
            user_id: user.id,
            nonce: random_token(),
        },
    };
    let ttl_ms = TRUST_TTL.as_millis() as i64;
    match store
        .trust_browser(
            &user.id,
            &claim.nonce,
            BROWSERS_PER_ACCOUNT,
            ttl_ms,
            now_ms(),
        )
        .await
    {
        Ok(()) => Some(claim),
        Err(e) => {
            tracing::warn!(error = %Report(&e), user = %user.id, "could not trust this device");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BrowserClaim;

    #[test]
    fn a_claim_reads_back_what_was_written_and_nothing_else() {
        let claim = BrowserClaim {
            user_id: uuid::Uuid::now_v7(),
            nonce: crate::support::crypto::random_token(),
        };
        assert_eq!(BrowserClaim::parse(&claim.value()), Some(claim.clone()));
        for bad in ["", "x.y", &format!("{}.short", claim.user_id), &claim.nonce] {
            assert_eq!(BrowserClaim::parse(bad), None, "{bad}");
        }
    }
}
