//! Rate limits: named quotas over the store's sliding-window log, one script call per
//! check. An attempt is recorded against every quota at once, or against none when
//! any is full, so a burst of concurrent attempts gets exactly the quota through.

use crate::clock::now_ms;
use crate::config::{Quota, Settings};
use crate::crypto::{random_token, sha256_hex};
use crate::error::AppError;
use crate::report::Report;
use crate::store::{RateDecision, RateKey, Store};

/// One recorded attempt; a sign-in that succeeds takes it back.
pub struct Attempt {
    quotas: Vec<RateKey>,
    member: String,
}

fn quota(store: &Store, scope: &str, subject: &str, q: Quota) -> RateKey {
    RateKey {
        // Subjects are hashed: keys hold no e-mail addresses and stay a fixed size.
        key: store
            .keys()
            .rate(scope, &sha256_hex(subject.as_bytes())[..32]),
        limit: q.limit,
        window_ms: q.window.as_millis() as i64,
    }
}

async fn acquire(store: &Store, quotas: Vec<RateKey>) -> Result<Attempt, AppError> {
    let member = random_token();
    match store.rate_acquire(&quotas, &member, now_ms()).await? {
        RateDecision::Allowed => Ok(Attempt { quotas, member }),
        RateDecision::Limited { retry_after } => Err(AppError::Throttled { retry_after }),
    }
}

/// A sign-in (page or API): counts against the account and the client IP.
pub async fn sign_in(
    store: &Store,
    settings: &Settings,
    email_normalized: &str,
    ip: &str,
) -> Result<Attempt, AppError> {
    acquire(
        store,
        vec![
            quota(
                store,
                "login:acct",
                email_normalized,
                settings.limits.login_account,
            ),
            quota(store, "login:ip", ip, settings.limits.login_ip),
        ],
    )
    .await
}

/// A wrong reset code counts against the client IP's sign-in budget: guessing codes
/// across many accounts is guessing passwords by another name.
pub async fn reset_code_try(
    store: &Store,
    settings: &Settings,
    ip: &str,
) -> Result<Attempt, AppError> {
    acquire(
        store,
        vec![quota(store, "login:ip", ip, settings.limits.login_ip)],
    )
    .await
}

/// A password-reset request: counts against the account and the client IP.
pub async fn reset_request(
    store: &Store,
    settings: &Settings,
    email_normalized: &str,
    ip: &str,
) -> Result<Attempt, AppError> {
    acquire(
        store,
        vec![
            quota(
                store,
                "reset:acct",
                email_normalized,
                settings.limits.reset_account,
            ),
            quota(store, "reset:ip", ip, settings.limits.reset_ip),
        ],
    )
    .await
}

impl Attempt {
    /// The attempt was not a failure: take it back from every quota.
    pub async fn succeeded(self, store: &Store) {
        if let Err(e) = store.rate_release(&self.quotas, &self.member).await {
            // The attempt stays counted; that errs on the safe side.
            tracing::warn!(error = %Report(&e), "could not release a rate-limit attempt");
        }
    }
}
