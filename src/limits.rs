//! Rate limits: named quotas over the store's sliding-window log, one script call per
//! check. An attempt is recorded against every quota at once, or against none when
//! any is full, so a burst of concurrent attempts gets exactly the quota through.
//!
//! Each check answers `Ok(Ok(attempt))`, `Ok(Err(Throttled))` (the caller answers
//! 429 its own way), or `Err(StoreError)` (the store did not answer).

use std::time::Duration;

use uuid::Uuid;

use crate::clock::now_ms;
use crate::config::{LimitSettings, Quota};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::Email;
use crate::notices::{NEW_DEVICE_MAILS_PER_HOUR, NEW_DEVICE_MAIL_WINDOW};
use crate::report::Report;
use crate::store::{RateDecision, RateKey, Store, StoreResult};

/// A quota is full: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many attempts; retry after {retry_after:?}")]
pub struct Throttled {
    pub retry_after: Duration,
}

/// One recorded attempt; a sign-in that succeeds takes it back.
pub struct Attempt {
    quotas: Vec<RateKey>,
    member: String,
}

pub type Checked = StoreResult<Result<Attempt, Throttled>>;

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

async fn acquire(store: &Store, quotas: Vec<RateKey>) -> Checked {
    let member = random_token();
    Ok(
        match store.rate_acquire(&quotas, &member, now_ms()).await? {
            RateDecision::Allowed => Ok(Attempt { quotas, member }),
            RateDecision::Limited { retry_after } => Err(Throttled { retry_after }),
        },
    )
}

/// An account and the client IP, counted together under `scope:acct` and `scope:ip`.
async fn account_and_ip(
    store: &Store,
    scope: &str,
    (account, ip): (Quota, Quota),
    email: &Email,
    client_ip: &str,
) -> Checked {
    let quotas = vec![
        quota(
            store,
            &format!("{scope}:acct"),
            &email.normalized(),
            account,
        ),
        quota(store, &format!("{scope}:ip"), client_ip, ip),
    ];
    acquire(store, quotas).await
}

/// A sign-in (page or API): counts against the account and the client IP.
pub async fn sign_in(store: &Store, limits: &LimitSettings, email: &Email, ip: &str) -> Checked {
    let quotas = (limits.login_account, limits.login_ip);
    account_and_ip(store, "login", quotas, email, ip).await
}

/// A wrong reset code counts against the client IP's sign-in budget: guessing codes
/// across many accounts is guessing passwords by another name.
pub async fn reset_code_try(store: &Store, limits: &LimitSettings, ip: &str) -> Checked {
    acquire(store, vec![quota(store, "login:ip", ip, limits.login_ip)]).await
}

/// A password-reset request: counts against the account and the client IP.
pub async fn reset_request(
    store: &Store,
    limits: &LimitSettings,
    email: &Email,
    ip: &str,
) -> Checked {
    let quotas = (limits.reset_account, limits.reset_ip);
    account_and_ip(store, "reset", quotas, email, ip).await
}

/// A new-device mail to this account.
pub async fn new_device_mail(store: &Store, user_id: &Uuid) -> Checked {
    let q = Quota {
        limit: NEW_DEVICE_MAILS_PER_HOUR,
        window: NEW_DEVICE_MAIL_WINDOW,
    };
    acquire(
        store,
        vec![quota(store, "mail:dev", &user_id.to_string(), q)],
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
