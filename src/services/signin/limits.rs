//! Rate limits: named quotas over the store's sliding-window log, one script call per
//! check. An attempt is recorded against every quota at once, or against none when
//! any is full, so a burst of concurrent attempts gets exactly the quota through.
//!
//! Each check answers `Ok(Ok(attempt))`, `Ok(Err(Throttled))` (the caller answers
//! 429 its own way), or `Err(StoreError)` (the store did not answer).
//!
//! Who a sign-in counts against depends on where it comes from:
//! - a stranger (no trusted-browser cookie for this account): failures per account, per client
//!   IP and per network (IPv4 /24, IPv6 /64, so many addresses of one network cannot
//!   together do what one may not);
//! - a browser with a trusted-browser cookie for the account
//!   (`crate::services::signin::trusted_browsers`): its own failure budget instead, so
//!   strangers filling the account's quota do not lock it out;
//! - both: every password verification, right or wrong, against the client IP's hashing
//!   budget (`hash:ip`), which a right password does not take back.
//!
//! A second factor's one-time code counts against the same failure quotas as a
//! password (`second_factor`): a wrong code is a failed sign-in, and a throttled
//! account or address gets no more code guesses than password guesses.

use std::net::IpAddr;
use std::time::Duration;

use uuid::Uuid;

use crate::config::{LimitSettings, Quota};
use crate::store::{KeyNames, RateDecision, RateKey, RateLimits, Store, StoreResult};
use crate::support::clock::now_ms;
use crate::support::crypto::{random_token, sha256_hex};
use crate::support::input::Email;
use crate::support::report::Report;

/// New-device mails one account gets in an hour at most: a sign-in is never throttled
/// for being right, so without this each new `client_name` was another mail.
pub const NEW_DEVICE_MAILS_PER_HOUR: u32 = 3;
pub const NEW_DEVICE_MAIL_WINDOW: Duration = Duration::from_secs(3600);
/// Address changes one account may start (each mails a code) per hour.
pub const EMAIL_CHANGES_PER_HOUR: u32 = 5;

/// A quota is full: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many attempts; retry after {retry_after:?}")]
pub struct Throttled {
    pub retry_after: Duration,
}

/// One recorded attempt. A sign-in that succeeds takes it back from the failure
/// quotas (`succeeded`); one that did no work at all takes it back from every quota
/// (`abandoned`).
pub struct Attempt {
    failures: Vec<RateKey>,
    counted: Vec<RateKey>,
    member: String,
}

pub type Checked = StoreResult<Result<Attempt, Throttled>>;

/// The key of `scope`'s quota for `subject`. Subjects are hashed: keys hold no e-mail
/// addresses and stay a fixed size.
pub fn quota_key(keys: &KeyNames, scope: &str, subject: &str) -> String {
    keys.rate(scope, &sha256_hex(subject.as_bytes())[..32])
}

fn quota(store: &Store, scope: &str, subject: &str, q: Quota) -> RateKey {
    RateKey {
        key: quota_key(store.key_names(), scope, subject),
        limit: q.limit,
        window_ms: q.window.as_millis() as i64,
    }
}

/// A failed client authentication at `/oauth2/token`, `/oauth2/revoke` or
/// `/oauth2/introspect` from `ip`, naming `client_id` (when it named one): counted per
/// client id (`oauth:client`) and per address (`oauth:ip`), each against the sign-in
/// quota per address (`login_limit_ip` in `login_limit_window`). A full quota is the
/// answer to give instead of `invalid_client`. Only failures are counted: a client
/// that proves itself is never counted or refused, so one app's failures (or an
/// attacker's in its name) never stop another app or the app itself; and a bad code
/// or refresh token (`invalid_grant`) is no guess worth counting (256 bits), while
/// anyone can make an app redeem one of their choosing.
pub async fn oauth_client_failure(
    store: &Store,
    limits: &LimitSettings,
    ip: &str,
    client_id: Option<&str>,
) -> Checked {
    let mut quotas = vec![quota(store, "oauth:ip", ip, limits.login_ip)];
    if let Some(id) = client_id {
        quotas.push(quota(store, "oauth:client", id, limits.login_ip));
    }
    acquire(store, quotas, vec![]).await
}

/// A scrape of `/metrics` from `ip`: a wrong token is a guess at it, counted against
/// the address like a failed sign-in (`login_limit_ip` in `login_limit_window`, in a
/// scope of its own, `metrics:ip`); the right token takes its attempt back.
pub async fn metrics_scrape(store: &Store, limits: &LimitSettings, ip: &str) -> Checked {
    let q = quota(store, "metrics:ip", ip, limits.login_ip);
    acquire(store, vec![q], vec![]).await
}

/// Records one attempt in `failures` and `counted` together, or in none.
async fn acquire(store: &Store, failures: Vec<RateKey>, counted: Vec<RateKey>) -> Checked {
    let member = random_token();
    let all: Vec<RateKey> = failures.iter().chain(&counted).cloned().collect();
    Ok(match store.rate_acquire(&all, &member, now_ms()).await? {
        RateDecision::Allowed => Ok(Attempt {
            failures,
            counted,
            member,
        }),
        RateDecision::Limited { retry_after } => Err(Throttled { retry_after }),
    })
}

/// The network an address belongs to, for the per-network budget: IPv4 by /24, IPv6
/// by /64 (what one customer is usually given). Anything else is its own network.
pub fn network_of(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Err(_) => ip.to_string(),
    }
}

/// Where a sign-in or reset request comes from, as the limiter sees it.
pub enum Source<'a> {
    Stranger {
        email: &'a Email,
        ip: &'a str,
    },
    /// A browser the account trusts (its cookie for the account, a nonce the store
    /// still holds): the cookie's nonce.
    TrustedBrowser {
        nonce: &'a str,
        ip: &'a str,
    },
}

impl<'a> Source<'a> {
    /// The client address the attempt came from.
    pub fn ip(&self) -> &'a str {
        match self {
            Source::Stranger { ip, .. } | Source::TrustedBrowser { ip, .. } => ip,
        }
    }
}

/// The sign-in failure quotas `source` counts against, and its client IP.
fn sign_in_failures<'a>(
    store: &Store,
    limits: &LimitSettings,
    source: Source<'a>,
) -> (Vec<RateKey>, &'a str) {
    match source {
        Source::Stranger { email, ip } => (
            vec![
                quota(
                    store,
                    "login:acct",
                    &email.normalized(),
                    limits.login_account,
                ),
                quota(store, "login:ip", ip, limits.login_ip),
                quota(store, "login:net", &network_of(ip), limits.login_network),
            ],
            ip,
        ),
        Source::TrustedBrowser { nonce, ip } => (
            vec![quota(store, "login:dev", nonce, limits.login_account)],
            ip,
        ),
    }
}

/// A sign-in's password check (page, change-password form or API).
pub async fn sign_in(store: &Store, limits: &LimitSettings, source: Source<'_>) -> Checked {
    let (failures, ip) = sign_in_failures(store, limits, source);
    let hashing = vec![quota(store, "hash:ip", ip, limits.hash_ip)];
    acquire(store, failures, hashing).await
}

/// A sign-in's one-time code (the code page, or the API's `otp`): the same failure
/// quotas as a password, taken back when the code is right. No hash, so no hashing
/// budget.
pub async fn second_factor(store: &Store, limits: &LimitSettings, source: Source<'_>) -> Checked {
    let (failures, _) = sign_in_failures(store, limits, source);
    acquire(store, failures, vec![]).await
}

/// A passkey assertion whose credential names no account: the client IP's and its
/// network's sign-in failure quotas (no account to count against).
pub async fn unknown_credential(store: &Store, limits: &LimitSettings, ip: &str) -> Checked {
    let failures = vec![
        quota(store, "login:ip", ip, limits.login_ip),
        quota(store, "login:net", &network_of(ip), limits.login_network),
    ];
    acquire(store, failures, vec![]).await
}

/// A wrong reset code counts against the client IP's sign-in budget: guessing codes
/// across many accounts is guessing passwords by another name.
pub async fn reset_code_try(store: &Store, limits: &LimitSettings, ip: &str) -> Checked {
    let q = quota(store, "login:ip", ip, limits.login_ip);
    acquire(store, vec![q], vec![]).await
}

/// A password-reset request: a stranger counts against the account and the client IP;
/// a browser with the account's trusted-browser cookie against its own budget.
pub async fn reset_request(store: &Store, limits: &LimitSettings, source: Source<'_>) -> Checked {
    let quotas = match source {
        Source::Stranger { email, ip } => vec![
            quota(
                store,
                "reset:acct",
                &email.normalized(),
                limits.reset_account,
            ),
            quota(store, "reset:ip", ip, limits.reset_ip),
        ],
        Source::TrustedBrowser { nonce, .. } => {
            vec![quota(store, "reset:dev", nonce, limits.reset_account)]
        }
    };
    acquire(store, vec![], quotas).await
}

/// A new account (a password hash): counts against the client IP.
pub async fn register(store: &Store, limits: &LimitSettings, ip: &str) -> Checked {
    let q = quota(store, "register:ip", ip, limits.register_ip);
    acquire(store, vec![], vec![q]).await
}

/// A new-device mail to this account.
pub async fn new_device_mail(store: &Store, user_id: &Uuid) -> Checked {
    let q = Quota {
        limit: NEW_DEVICE_MAILS_PER_HOUR,
        window: NEW_DEVICE_MAIL_WINDOW,
    };
    let key = quota(store, "mail:dev", &user_id.to_string(), q);
    acquire(store, vec![], vec![key]).await
}

/// An address change of this account (a code mailed to an address it names), counted
/// whether or not the address gets the mail, so the count tells nothing about it.
pub async fn email_change(store: &Store, user_id: &Uuid) -> Checked {
    let q = Quota {
        limit: EMAIL_CHANGES_PER_HOUR,
        window: NEW_DEVICE_MAIL_WINDOW,
    };
    let key = quota(store, "mail:email", &user_id.to_string(), q);
    acquire(store, vec![], vec![key]).await
}

/// Address-verification mails one account gets in an hour at most (registration's
/// and every resend).
pub const VERIFICATION_MAILS_PER_HOUR: u32 = 3;
pub const VERIFICATION_MAIL_WINDOW: Duration = Duration::from_secs(3600);

/// An address-verification mail to this account (`verify:acct`), and, when a client
/// asked for it again (`ip`), against that client's address too (`verify:ip`, the
/// reset quota per address): a resend is a mail sent at a stranger's request.
pub async fn verification_mail(
    store: &Store,
    limits: &LimitSettings,
    user_id: &Uuid,
    ip: Option<&str>,
) -> Checked {
    let per_account = Quota {
        limit: VERIFICATION_MAILS_PER_HOUR,
        window: VERIFICATION_MAIL_WINDOW,
    };
    let mut quotas = vec![quota(
        store,
        "verify:acct",
        &user_id.to_string(),
        per_account,
    )];
    if let Some(ip) = ip {
        quotas.push(quota(store, "verify:ip", ip, limits.reset_ip));
    }
    acquire(store, vec![], quotas).await
}

impl Attempt {
    /// The attempt was not a failure: take it back from the failure quotas. What it
    /// cost (a password hash) stays counted.
    pub async fn succeeded(self, store: &Store) {
        release(store, &self.failures, &self.member).await;
    }

    /// Nothing was done for this attempt (the hasher was busy, or the client left
    /// before it started): take it back from every quota.
    pub async fn abandoned(self, store: &Store) {
        let all: Vec<RateKey> = self.failures.into_iter().chain(self.counted).collect();
        release(store, &all, &self.member).await;
    }
}

async fn release(store: &Store, quotas: &[RateKey], member: &str) {
    if quotas.is_empty() {
        return;
    }
    if let Err(e) = store.rate_release(quotas, member).await {
        // The attempt stays counted; that errs on the safe side.
        tracing::warn!(error = %Report(&e), "could not release a rate-limit attempt");
    }
}

#[cfg(test)]
mod tests {
    use super::network_of;

    #[test]
    fn addresses_are_grouped_by_network() {
        assert_eq!(network_of("203.0.113.7"), "203.0.113.0/24");
        assert_eq!(network_of("203.0.113.250"), network_of("203.0.113.1"));
        assert_ne!(network_of("203.0.113.7"), network_of("203.0.114.7"));
        assert_eq!(network_of("2001:db8:1:2:aa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            network_of("2001:db8:1:2::ffff"),
            network_of("2001:db8:1:2::1")
        );
        assert_ne!(network_of("2001:db8:1:3::1"), network_of("2001:db8:1:2::1"));
        assert_eq!(network_of("unknown"), "unknown");
    }
}
